"""An ensemble's members in one batched pass: every layer one call over all members.

Five members run one after another cost five passes of small kernels; on a GPU a small step is
launch-bound, so most of that is waiting. A backbone that has a grouped form
(``backbone.grouped(k)``: the members' layers side by side, each convolution grouped by member,
channels member-major; LITE has one, :class:`~neuroview.zoo.architectures.timeseries.GroupedLITE`)
runs all ``k`` members at once. :class:`BatchedPass` fills that grouped network with the members'
own tensors at each call (``torch.func.functional_call`` over their concatenation, which autograd
differentiates back to each member), so the members stay the model: their parameters are what
the optimizer steps, the state dict saves and DDP reduces. BatchNorm's running statistics are
written back into every member after a training pass. NeuroView members' codes come from the
grouped network wrapped as one NeuroViewCNN (its sites found once, checked against the members');
each member then decides with its own head on its own units. Logits, gradients and statistics
equal the members' own to float rounding (``tests/core/test_batched.py``).

Imports only torch and :mod:`neuroview.core`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.func import functional_call

from .cnn import NeuroViewCNN

__all__ = ["BatchedPass"]


def _backbone(member: nn.Module) -> nn.Module:
    return member.backbone if isinstance(member, NeuroViewCNN) else member


def why_not_batchable(members: list[nn.Module]) -> str | None:
    """Why the members cannot run in one grouped pass (no grouped form, shapes or NeuroView settings
    that differ), or None where they can."""
    first = _backbone(members[0])
    if not callable(getattr(first, "grouped", None)):
        return f"{type(first).__name__} has no grouped form (.grouped(k), as LITE's)"
    if not isinstance(members[0], NeuroViewCNN) and not isinstance(getattr(members[0], "fc", None), nn.Linear):
        return f"{type(members[0]).__name__} has no linear head .fc to decide with"
    shapes = [{n: t.shape for n, t in _backbone(m).state_dict().items()} for m in members]
    if any(s != shapes[0] for s in shapes[1:]):
        return "the members differ in shape (their tensors cannot be laid side by side)"
    if isinstance(members[0], NeuroViewCNN):
        keys = [(m.quantizer, m.tau, m.grad_state, m.stop_early, tuple(sorted(m.unit_axis.items()))) for m in members]
        if any(k != keys[0] for k in keys[1:]):
            return "the members' NeuroView settings (quantizer, tau, grad_state ...) differ"
    return None


class BatchedPass:
    """The grouped network of ``k`` members, filled with their tensors at each call (see the module docstring).

    Not an ``nn.Module`` of the ensemble: it holds no state of its own that counts (placeholders),
    is rebuilt where the members' device or dtype changes, and never enters a state dict.
    """

    def __init__(self, members: list[nn.Module], x: Tensor):
        m0, self.k = members[0], len(members)
        p = next(_backbone(m0).parameters())
        shell = _backbone(m0).grouped(self.k).to(device=p.device, dtype=p.dtype)
        self.key = (p.device, p.dtype)
        self.nv = isinstance(m0, NeuroViewCNN)
        if self.nv:
            shell = NeuroViewCNN(shell, m0.num_classes, quantizer=m0.quantizer, tau=m0.tau, grad_state=m0.grad_state,
                                 unit_axis=m0.unit_axis, stop_early=m0.stop_early).to(device=p.device, dtype=p.dtype)
            shell.check_finite = m0.check_finite
            with torch.no_grad():
                shell.eval().discover(x)
            want = [(s.name, s.channels * self.k, s.points, s.from_input, s.axis) for s in m0.sites]
            got = [(s.name, s.channels, s.points, s.from_input, s.axis) for s in shell.sites]
            if got != want:
                raise RuntimeError(f"batched: the grouped network's sites {got} are not the members' {want} laid side by "
                                   "side (a grouped form that does not mirror its network); pass batched=False")
            widths = [s.channels for s in m0.sites]
            # the grouped codes are site-major, member-major inside each site: member i's columns, in
            # its own order, so that one gather and a split give every member its codes
            offs = [sum(widths[:j]) * self.k for j in range(len(widths))]
            self.perm = torch.tensor([offs[j] + i * w + u for i in range(self.k) for j, w in enumerate(widths)
                                      for u in range(w)], device=p.device)
            self.units = sum(widths)
        self.shell = _Codes(shell) if self.nv else shell
        inner = shell.backbone if self.nv else shell
        self.params = [n for n, _ in inner.named_parameters()]
        self.buffers = [n for n, _ in inner.named_buffers()]
        # what a training pass writes: the BatchNorms' statistics (LITE's fixed filters, buffers too, never change)
        self.stats = [f"{name}.{b}" if name else b for name, mod in inner.named_modules()
                      if isinstance(mod, nn.modules.batchnorm._BatchNorm) for b, _ in mod.named_buffers(recurse=False)]
        self.prefix = "net.backbone." if self.nv else ""

    def _sync_modes(self, m0: nn.Module) -> bool:
        """Each layer of the grouped network in its member counterpart's mode (a frozen BatchNorm stays
        frozen), each BatchNorm with its momentum and eps (precise BN sets ``momentum=None`` for a pass).
        Whether a BatchNorm will update its statistics."""
        inner, src = (self.shell.net.backbone, m0.backbone) if self.nv else (self.shell, m0)
        mods = dict(src.named_modules())
        updates = False
        for name, mod in inner.named_modules():
            twin = mods.get(name)
            mod.training = twin.training if twin is not None else src.training
            if isinstance(mod, nn.modules.batchnorm._BatchNorm) and twin is not None:
                mod.momentum, mod.eps = twin.momentum, twin.eps
                updates |= mod.training and mod.track_running_stats
        if self.nv:
            self.shell.training = self.shell.net.training = m0.training
        return updates

    def __call__(self, members: list[nn.Module], x: Tensor) -> list[Tensor]:
        """Each member's features: its codes ``[B, U]`` (NeuroView members) or its pooled features."""
        bbs = [_backbone(m) for m in members]
        updates = self._sync_modes(members[0])
        tensors = {self.prefix + n: torch.cat([b.get_parameter(n) for b in bbs]) for n in self.params}
        for n in self.buffers:  # a scalar (num_batches_tracked) is every member's: a copy of the first's
            first = bbs[0].get_buffer(n)
            tensors[self.prefix + n] = first.clone() if first.dim() == 0 else torch.cat([b.get_buffer(n) for b in bbs])
        out = functional_call(self.shell, tensors, (x,))
        if updates:  # BatchNorm updated the concatenated statistics in place: back to each member
            dst, src = [], []
            for n in self.stats:
                t = tensors[self.prefix + n]
                for i, b in enumerate(bbs):
                    dst.append(b.get_buffer(n))
                    src.append(t if t.dim() == 0 else t.chunk(self.k)[i])
            with torch.no_grad():
                torch._foreach_copy_(dst, src)  # one multi-tensor launch on a GPU, where the step is launch-bound
        if not self.nv:
            return list(out.chunk(self.k, dim=1))
        # one gather (one scatter in backward) where a split and a concatenation per site and member
        # launched k times as many kernels, and zeros for every chunk a member does not read
        return list(out.index_select(1, self.perm).split(self.units, dim=1))


class _Codes(nn.Module):
    """A NeuroViewCNN whose forward is its codes: what ``functional_call`` runs for NeuroView members."""

    def __init__(self, net: NeuroViewCNN):
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net.codes(x)
