"""The one product every view of an explanation reduces its codes and weight with, autocast off.

``by_site``, ``site_magnitudes``, ``time_importance``, ``layer_time``, ``direction_time`` and ``layer_magnitudes`` sum
``W[c, u] * (code_u - baseline_u)`` over some of the features with a matmul or an einsum, which CPU and CUDA autocast
run in bfloat16 / float16: read inside ``torch.autocast`` (an eval loop's usual block) they came back in half precision,
off the logit by about 1% of it, while ``for_class`` (elementwise) stayed exact. Each goes through :func:`product`, as
explain()'s own head does, so a view added later cannot forget it. Kept apart from :mod:`neuroview.core.explanation`
(at its size limit). Imports only torch and core helpers.

>>> with torch.autocast("cpu", dtype=torch.bfloat16):
...     product("bu,cu->bc", torch.ones(2, 3), torch.ones(4, 3)).dtype
torch.float32
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._devices import autocast_off

__all__ = ["product"]


def product(equation: str, codes: Tensor, weight: Tensor) -> Tensor:
    """``torch.einsum(equation, codes, weight)`` with autocast off on ``codes``' device type: in the operands' own dtype
    (float32 for a network explained in float32, under any autocast), the numbers of the same product outside it."""
    with autocast_off(codes.device.type):
        return torch.einsum(equation, codes, weight)
