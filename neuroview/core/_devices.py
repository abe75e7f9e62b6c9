"""Where a pass runs: the device of an input against its network's, and autocast on any device type.

A network and its input on the ``meta`` device (torch's shape inference) run through; an input on another device
than the network's parameters is named as ``x`` with both devices, where torch's own error named neither. Imports
only torch.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import Tensor, nn


def require_device(x: Tensor, module: nn.Module, what: str = "x") -> None:
    """A clear error where ``x`` lies on none of the devices of ``module``'s parameters (a ``meta`` x handed to a CPU
    network, a CUDA x to a CPU one): torch's own failed deep inside the pass ("Tensor.item() cannot be called on meta
    tensors", "Tensor on device cpu is not on the expected device meta!"), naming neither ``x`` nor the fix. A module
    spread over several devices passes an ``x`` on any of them (its first layer's is not known here).

    >>> require_device(torch.zeros(2, 3, device="meta"), nn.Linear(3, 2))
    Traceback (most recent call last):
    ...
    ValueError: x: on device meta, the model's parameters on cpu; move x (x.to('cpu')) or the model (model.to('meta'))
    """
    first = next(module.parameters(), None)  # one look on every pass: the whole set only where it differs
    if not isinstance(x, Tensor) or first is None or x.device == first.device:
        return
    devices = {p.device for p in module.parameters()}
    if x.device in devices:
        return
    on = " and ".join(sorted(map(str, devices)))
    fix = f"{what}.to({str(next(iter(devices)))!r})" if len(devices) == 1 else f"{what}.to(...)"
    raise ValueError(f"{what}: on device {x.device}, the model's parameters on {on}; move {what} ({fix}) or the model "
                     f"(model.to({str(x.device)!r}))")


def autocast_enabled(device_type: str) -> bool:
    """``torch.is_autocast_enabled(device_type)``, False for a device type autocast has none for (``meta``), where
    torch's query raised "unknown device type for autocast"."""
    return torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(device_type)


def autocast_off(device_type: str):
    """``torch.autocast(device_type, enabled=False)``, or nothing to turn off on a device type autocast has none for
    (``meta``: ``torch.autocast`` itself raised there)."""
    if not torch.amp.is_autocast_available(device_type):
        return nullcontext()
    return torch.autocast(device_type, enabled=False)
