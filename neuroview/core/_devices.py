"""Where a pass runs: the device of an input against its network's, and autocast on any device type.

A network and its input on the ``meta`` device (torch's shape inference) run through; an input on ``meta`` handed to a
network off it, or the reverse, is named as ``x`` with both devices, where torch's own error named neither (other
device pairs are torch's to judge). Imports only torch.
"""

from __future__ import annotations

import itertools
from contextlib import nullcontext

import torch
from torch import Tensor, nn


def require_device(x: Tensor, module: nn.Module, what: str = "x") -> None:
    """A clear error where a pass of ``module`` on ``x`` cannot run and torch's own error named neither ``x`` nor the fix:
    ``x`` on ``meta`` (no values) and none of ``module``'s parameters or buffers there ("Tensor.item() cannot be called on
    meta tensors"), or all of them on ``meta`` and ``x`` on a real device ("Tensor on device cpu is not on the expected
    device meta!"). A module of buffers only (fixed filters) is judged by its buffers. Any other pair is torch's to judge:
    a backbone may move its input itself (``x.to(self.weight.device)`` in its forward), and a module spread over devices
    may read ``x`` on any of them.

    >>> require_device(torch.zeros(2, 3, device="meta"), nn.Linear(3, 2))
    Traceback (most recent call last):
    ...
    ValueError: x: on device meta, the model's parameters on cpu; move x (x.to('cpu')) or the model (model.to('meta'))
    """
    first = next(_tensors(module), None)  # one look on every pass: the whole set only where meta meets a real device
    if not isinstance(x, Tensor) or first is None or x.device == first.device:
        return
    meta = x.device.type == "meta"
    if not meta and first.device.type != "meta":  # two real devices: torch's own error, or a forward that moves x
        return
    devices = {t.device for t in _tensors(module)}
    if any((d.type == "meta") == meta for d in devices):  # a module partly on x's side of meta: torch's to judge
        return
    kind = "parameters" if next(module.parameters(), None) is not None else "buffers"
    on = " and ".join(sorted(map(str, devices)))
    fix = f"{what}.to({str(next(iter(devices)))!r})" if len(devices) == 1 else f"{what}.to(...)"
    if not meta:  # the model on meta holds no values: model.to('cpu') fails in torch ("Cannot copy out of meta tensor")
        raise ValueError(f"{what}: on device {x.device}, the model's {kind} on meta; move {what} ({what}.to('meta')) for "
                         f"shape inference, or to run it on {x.device.type} build or load the model there "
                         f"(model.to_empty(device={x.device.type!r}), then load its weights): model.to({x.device.type!r}) "
                         f"cannot copy out of meta, which holds no values")
    raise ValueError(f"{what}: on device {x.device}, the model's {kind} on {on}; move {what} ({fix}) or the model "
                     f"(model.to({str(x.device)!r}))")


def _tensors(module: nn.Module):
    """``module``'s parameters, then its buffers."""
    return itertools.chain(module.parameters(), module.buffers())


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
