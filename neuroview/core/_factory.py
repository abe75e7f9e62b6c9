"""``factory_kwargs``: the device and dtype of a module, for the tensors and layers made to go with it.

Shared by the CNN and RNN wrappers; imports torch only.
"""

from __future__ import annotations

from torch import nn


def factory_kwargs(module: nn.Module) -> dict:
    """``{"device", "dtype"}`` of ``module``'s first floating parameter or, lacking one, buffer; ``{}`` if neither."""
    p = next(iter(module.parameters()), None)
    if p is None:
        p = next(iter(module.buffers()), None)
    return {"device": p.device, "dtype": p.dtype} if p is not None and p.is_floating_point() else {}
