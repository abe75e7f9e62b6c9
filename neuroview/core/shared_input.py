"""Whether an activation keeps its own input for backward, so that a site's surrogate gradient can share it.

The hard code's surrogate gradient needs each site's pre-activation ``z`` in backward. Where the
activation after the site is not in place and autograd saves its input ``z`` itself (GELU, SiLU,
Hardswish, Mish, ELU, LeakyReLU, Softplus, PReLU, ...), ``z`` is kept until backward anyway, and
the site keeps a reference to the same storage: no byte more, and the gradient is the same to the
bit as from a bfloat16 copy of ``z``. Where it saves its output (ReLU, Tanh, Sigmoid) or works in
place (``ReLU(inplace=True)``, ``SiLU(inplace=True)``, which saves a copy of its input), ``z`` is
overwritten or freed, and the site keeps its own state, the network's ``grad_state``
(:class:`neuroview.core.quantize._MeanCode`): by default the surrogate's slope at ``z`` in 4 bits,
half a byte per element (a bfloat16 copy of ``z``, 2 bytes, with ``grad_state="bf16"``).

Which case holds is not read from a table: it is what autograd does, probed once per module (and
mode) on one sample of the site's real input. If a module that probed as "keeps its input" later
changes ``z`` in place after all, autograd's version counter raises in backward: never a silently
wrong gradient.

Imports only torch.
"""

from __future__ import annotations

import weakref

import torch
from torch import Tensor, nn

# module -> {training: keeps its input}; weak, so a deleted backbone takes its entries with it
_PROBED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def keeps_input(module: nn.Module, z: Tensor) -> bool | None:
    """Whether ``module(z)`` leaves ``z`` unchanged and autograd saves ``z``'s own storage for its
    backward; ``None`` when not known yet and not probed now (inside ``torch.compile``'s trace,
    where the caller keeps its own copy)."""
    known, key = _PROBED.get(module, {}), (module.training, getattr(module, "inplace", None))  # inplace: switchable
    if key in known:
        return known[key]
    if torch.compiler.is_compiling() or not z.is_floating_point():
        return None
    answer = _probe(module, z)
    _PROBED.setdefault(module, {})[key] = answer
    return answer


def _probe(module: nn.Module, z: Tensor) -> bool:
    """One sample of ``z`` through ``module.forward`` (no hooks: the site's own hook must not
    fire again), with gradients on and autocast off; what autograd saved tells. Anything the
    probe cannot run or read (a module that needs more arguments, a tensor subclass without a
    storage) answers ``False``: the site keeps its own copy, as it always did."""
    try:
        return _saves_its_input(module, z)
    except Exception:  # noqa: BLE001
        return False


def _saves_its_input(module: nn.Module, z: Tensor) -> bool:
    sample = z.detach()[:1].clone().requires_grad_(True)
    probe = sample * 1  # not a leaf: an in-place activation may overwrite it
    ptr = probe.untyped_storage().data_ptr()
    saved: list[int] = []

    def pack(t: Tensor) -> Tensor:
        saved.append(t.untyped_storage().data_ptr())
        return t

    # the random state is put back: a random activation (RReLU) must draw what it drew without the probe
    rng = torch.random.fork_rng(devices=[z.device.index or 0] if z.is_cuda else [], device_type=z.device.type)
    with rng, torch.enable_grad(), torch.autocast(z.device.type, enabled=False), \
            torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        version = probe._version
        out = module.forward(probe)
    in_place = probe._version != version or (isinstance(out, Tensor) and out.untyped_storage().data_ptr() == ptr)
    return not in_place and ptr in saved
