"""An ensemble's members in one batched pass: every layer one call over all members.

Five members run one after another cost five passes of small kernels; on a GPU a small step is launch-bound, so
most of that is waiting. A backbone that has a grouped form (``backbone.grouped(k)``: the members' layers side by
side, each convolution grouped by member, channels member-major; LITE has one,
:class:`~neuroview.zoo.architectures.timeseries.GroupedLITE`) runs all ``k`` members at once, where it mirrors them
(:func:`why_not_batchable`: the class's own forward, modules, settings and tensors). :class:`BatchedPass` fills that
grouped network with the members' own tensors at each call (``torch.func.functional_call`` over their concatenation,
which autograd differentiates back to each member), so the members stay the model: their parameters are what the
optimizer steps, the state dict saves and DDP reduces. BatchNorm's running statistics are written back into every
member after a training pass, each member's count counted on its own. NeuroView members' codes come from the grouped
network wrapped as one NeuroViewCNN (its sites found once, checked against the members'); each member then decides
with its own head on its own units, the heads side by side too (:func:`grouped_heads`: one batched product). Logits,
gradients and statistics equal the members' own to float rounding (``tests/core/test_batched.py``).

Imports only torch and :mod:`neuroview.core`.
"""

from __future__ import annotations

import threading
import warnings
import weakref

import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn.modules import module as _module

from ._utils import own_rng
from .cnn import NeuroViewCNN
from .discovery import DISCOVERING
from .ensemble_checks import distinct
from .head import CodeNorm, _batch_stats, head_dtype
from .batchable import _backbone, _settings, why_not_batchable
from .hooks import _ACTIVE, Hook
from .paths import watch_trainable

__all__ = ["BatchedPass", "current_pass", "grouped_fold", "grouped_heads", "pass_lock", "watched", "why_not_batchable"]


def watched(members: list[nn.Module]) -> bool:
    """Whether something outside the ensemble watches the members' own modules, which the grouped pass would not
    call: a NeuroView pass recording around this call (an outer wrap's hooks on them: ``nv.wrap(ensemble)``), an
    ablation, torch's global module hooks, or a hook of anyone's but the members' own NeuroView ones."""
    if getattr(_ACTIVE, "recs", ()) or any(getattr(m, "_codes_hook", None) is not None for m in members):
        return True  # (a member's own Hooks record only its own pass, and only while one is recording)
    if (_module._global_forward_hooks or _module._global_forward_pre_hooks or _module._global_backward_hooks
            or _module._global_backward_pre_hooks):
        return True
    return any(not isinstance(h, Hook) for m in members for mod in m.modules()
               for h in (*mod._forward_hooks.values(), *mod._forward_pre_hooks.values(),
                         *mod._backward_hooks.values(), *mod._backward_pre_hooks.values()))


def current_pass(cached: BatchedPass | None, members: list[nn.Module], x: Tensor, warn: bool) -> BatchedPass | None:
    """The grouped pass of the members as they are now: ``cached`` where they are still the members it was built for,
    with its device, dtype and settings, else a new one; None where :func:`why_not_batchable` now refuses them (then
    they run one by one; under ``batched=True`` with the warning the ensemble gives at construction)."""
    settings = [_settings(m) for m in members]
    p, nv = next(_backbone(members[0]).parameters()), isinstance(members[0], NeuroViewCNN)
    key = (p.device, p.dtype, settings[0], any(getattr(m, "check_finite", False) for m in members))
    # the same members too: a member appended or removed since (ens.members is a public ModuleList) left the grouped
    # network of the old count (torch's grouped-convolution error, or a PathChanged blaming the backbone); a pass
    # pickled with its ensemble before it recorded its members has none: rebuilt
    built_for = getattr(cached, "members", None)
    if (cached is not None and cached.key == key and cached.k == len(members) and built_for is not None
            and all(a is b for a, b in zip(built_for, members)) and all(s == settings[0] for s in settings[1:])
            and not (nv and any(m.sites is None for m in members))):
        return cached
    distinct(members)  # a member appended since construction may be one already there: [net] * k, refused as there
    why = why_not_batchable(members, settings, dtypes=False)  # batched=True may have been set after construction
    if why is not None:
        if warn:
            warnings.warn(f"batched: {why}; the members run one by one", stacklevel=4)
        return None
    if nv:
        members[0]._check_input(x)  # as a member's own pass does first: x of another dtype fails the discovery below
        with DISCOVERING:  # as a member's own first batch: another thread's pass may find its sites meanwhile
            for m in members:
                if m.sites is None:
                    m.discover(x)
    return _new_pass(members, x, key)


_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCKS_LOCK = threading.Lock()


def pass_lock(owner: nn.Module):
    """The lock of ``owner``'s grouped pass, held while it is built and while it runs: its one grouped network's
    modes and tensors are set for each call (two threads' calls read each other's). None under torch.compile, which
    traces the pass (a lock is no part of a graph). Kept apart from ``owner``: a lock has no copy (deepcopy, pickle)."""
    if torch.compiler.is_compiling():
        return None
    with _LOCKS_LOCK:
        return _LOCKS.setdefault(owner, threading.RLock())


@torch.compiler.disable  # built eagerly, once: under torch.compile its construction is no part of a graph
def _new_pass(members: list[nn.Module], x: Tensor, key: tuple) -> BatchedPass:
    # its layers' initial weights are the members' own, copied in: drawn from the caller's RNG, they moved a training
    # loader's shuffle (batched and apart trained on other batch orders; a resumed batched run left the uninterrupted one)
    with own_rng(x.device):
        return BatchedPass(members, x, key)


class BatchedPass:
    """The grouped network of ``k`` members, filled with their tensors at each call (see the module docstring).

    Not an ``nn.Module`` of the ensemble: it holds no state of its own that counts (placeholders), is rebuilt where
    the members' device, dtype or settings change (``key``: :func:`current_pass`), and never enters a state dict.
    """

    def __init__(self, members: list[nn.Module], x: Tensor, key: tuple):
        m0, self.k, self.key = members[0], len(members), key
        # whom it was built for, by weak reference: a member removed since is freed (its GPU memory) at once, not
        # held here until the next call rebuilds the pass; not pickled (a weak reference has no pickle): rebuilt then
        self._members = tuple(weakref.ref(m) for m in members)
        p = next(_backbone(m0).parameters())
        shell = _backbone(m0).grouped(self.k).to(device=p.device, dtype=p.dtype)
        self.nv = isinstance(m0, NeuroViewCNN)
        if self.nv:
            # the members' own sites (layers=...): the grouped network keeps their module names; only those
            # the members' forward calls (a named module that never runs is refused)
            called = {s.module for s in m0.sites} | {m for m, _ in m0.not_sites}
            shell = NeuroViewCNN(shell, m0.num_classes, quantizer=m0.quantizer, tau=m0.tau, grad_state=m0.grad_state,
                                 unit_axis=m0.unit_axis, stop_early=m0.stop_early,
                                 layers=[n for n, _, _ in m0._targets if n in called]).to(device=p.device, dtype=p.dtype)
            shell.check_finite = key[3]  # a NaN any member would refuse
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
        self.prefix = "net.backbone." if self.nv else ""

    @property
    def members(self) -> tuple[nn.Module | None, ...] | None:
        """The members it was built for (None for one freed since), or None where it does not know them: loaded from
        a pickle, or built before it recorded them (a pass pickled whole with its ensemble): then it is rebuilt."""
        refs = self.__dict__.get("_members")
        return None if refs is None else tuple(r() for r in refs)

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("_members", "members")}

    def _sync_modes(self, m0: nn.Module, eval_mode: bool = False) -> list[tuple[str, bool]]:
        """Each layer of the grouped network in its member counterpart's mode (a frozen BatchNorm stays
        frozen), or every layer in eval mode (``eval_mode``: what the members would be under
        ``eval()``, without switching theirs), each BatchNorm with its momentum and eps (precise BN
        sets ``momentum=None`` for a pass). The BatchNorms that will update their statistics (what a training
        pass writes; LITE's fixed filters, buffers too, never change): each one's name, and whether its
        average is cumulative (``momentum=None``)."""
        inner, src = (self.shell.net.backbone, m0.backbone) if self.nv else (self.shell, m0)
        mods = dict(src.named_modules())
        updates = []
        for name, mod in inner.named_modules():
            twin = mods.get(name)
            mod.training = False if eval_mode else twin.training if twin is not None else src.training
            if isinstance(mod, nn.modules.batchnorm._BatchNorm) and twin is not None:
                mod.momentum, mod.eps = twin.momentum, twin.eps
                if mod.training and mod.track_running_stats:
                    updates.append((f"{name}." if name else "", mod.momentum is None))
        if self.nv:
            self.shell.training = self.shell.net.training = m0.training and not eval_mode
        return updates

    def __call__(self, members: list[nn.Module], x: Tensor, eval_mode: bool = False) -> Tensor | None:
        """``[B, k * U]``: every member's codes (NeuroView members; pooled features otherwise), member
        after member, each in its own order: what ``torch.cat`` of the members' own would give; with
        ``eval_mode``, what they would give in eval mode (the members' own modes untouched). None where
        the members must run one by one (BatchNorm counts that differ under ``momentum=None``)."""
        bbs = [_backbone(m) for m in members]
        for m in members if self.nv and not eval_mode else ():  # as each member's own training pass does: an
            watch_trainable(m)  # unreached parameter made trainable again, named (the grouped network is no member)
        updates = self._sync_modes(members[0], eval_mode)
        # each member's tensors by name, read once a call (one walk of its modules, not one per name)
        params, bufs = [dict(b.named_parameters()) for b in bbs], [dict(b.named_buffers()) for b in bbs]
        counts = [f"{n}num_batches_tracked" for n, _ in updates]
        # momentum=None: a BatchNorm weighs the batch by 1 / (count + 1), and the grouped one has one count, member
        # 0's; members with other counts run one by one, exact (a rescaled update of each would round differently)
        if any(cum and not torch.equal(b[c], bufs[0][c]) for (_, cum), c in zip(updates, counts) for b in bufs[1:]):
            return None
        tensors = _side_by_side(self.params, params, self.prefix)
        scalars = [n for n in self.buffers if bufs[0][n].dim() == 0]
        tensors.update(_side_by_side([n for n in self.buffers if n not in scalars], bufs, self.prefix))
        for n in scalars:  # a scalar (num_batches_tracked) has one place: member 0's, counted on in place by the pass
            tensors[self.prefix + n] = bufs[0][n]
        out = functional_call(self.shell, tensors, (x,))
        if updates:  # BatchNorm updated the concatenated statistics in place: back to each member
            stats = [f"{n}{b}" for n, _ in updates for b in ("running_mean", "running_var")]
            dst = [b[n] for n in stats for b in bufs]
            src = [part for n in stats for part in tensors[self.prefix + n].chunk(self.k)]
            with torch.no_grad():
                torch._foreach_copy_(dst, src)  # one multi-tensor launch on a GPU, where the step is launch-bound
                if self.k > 1:  # every other member's own count, one on (member 0's counted in the pass)
                    torch._foreach_add_([b[c] for c in counts for b in bufs[1:]], 1)
        # NeuroView: one gather (one scatter in backward) puts each member's codes together, where a split
        # and a concatenation per site and member launched k times as many kernels
        return out.index_select(1, self.perm) if self.nv else out


def _side_by_side(names: list[str], members: list[dict[str, Tensor]], prefix: str) -> dict[str, Tensor]:
    """Each named tensor of every member (``members``: each one's tensors by name) concatenated along
    dim 0 (the grouped network's layout), all of them from one ``torch.cat`` of the flattened tensors
    (one launch, and one in backward, where a concatenation per tensor launched one each), one a dtype.
    Members converted apart since the ensemble was built (their dtypes differ): an error, not a promotion."""
    parts = {n: [m[n] for m in members] for n in names}
    out: dict[str, Tensor] = {}
    by_dtype: dict[torch.dtype, list[str]] = {}
    for n, ts in parts.items():
        if any(t.dtype != ts[0].dtype for t in ts):
            raise RuntimeError(f"batched: the members' {n} differ in dtype ({sorted({str(t.dtype) for t in ts})}); "
                               "convert every member alike (ensemble.to(dtype)), or pass batched=False")
        by_dtype.setdefault(ts[0].dtype, []).append(n)
    for group in by_dtype.values():
        flat = torch.cat([t.reshape(-1) for n in group for t in parts[n]])
        sizes = [sum(t.numel() for t in parts[n]) for n in group]
        for n, chunk in zip(group, flat.split(sizes)):
            ts = parts[n]
            out[prefix + n] = chunk.view(sum(t.shape[0] for t in ts), *ts[0].shape[1:])
    return out


def grouped_heads(members: list[nn.Module], feats: Tensor) -> Tensor | None:
    """``[k, B, C]``: each member's own head on its part of ``feats [B, k * U]`` (member-major), every
    member in one batched product, or None where the heads cannot be laid side by side (then each
    member's own head decides). The numbers of each member's own head to float rounding: a
    NeuroView member's :func:`~neuroview.core.head.decide` (batch statistics while training, written
    into each member's ``CodeNorm`` by multi-tensor ops; the folded map at eval; float32 at least,
    autocast off), a standard member's ``fc``. Where a step is launch-bound, the heads and their
    update then cost what one member's do."""
    nv = isinstance(members[0], NeuroViewCNN)
    fcs = [m.classifier if nv else getattr(m, "fc", None) for m in members]
    # nn.Linear's own product: a subclass's forward (a temperature) was replaced by the plain product
    if not all(type(fc) is nn.Linear and "forward" not in vars(fc) and fc.bias is not None for fc in fcs):
        return None
    k, b = len(members), feats.shape[0]
    u = feats.shape[1] // k  # sizes, not -1: an empty batch has no size to infer
    if not nv:  # nn.Linear, autocast and all
        w, bias = torch.stack([fc.weight for fc in fcs]), torch.stack([fc.bias for fc in fcs])
        return torch.baddbmm(bias.unsqueeze(-1), w, feats.view(b, k, u).permute(1, 2, 0)).transpose(1, 2)
    norms = [m.norm for m in members]
    modes = {fc.training for fc in fcs} | {n.training for n in norms if n is not None}
    if len(modes) > 1 or not _alike(norms, training=modes == {True}):
        return None
    if modes == {False}:  # each member's fold (head.fold), side by side
        w, bias = grouped_fold(members)
    else:
        w, bias = torch.stack([fc.weight for fc in fcs]), torch.stack([fc.bias for fc in fcs])  # [k, C, U], [k, C]
    with torch.autocast(feats.device.type, enabled=False):
        dt = head_dtype(feats, w)
        f, w, bias = feats.to(dt), w.to(dt), bias.to(dt)
        f = _normalize_in_training(norms, f, k) if norms[0] is not None and modes == {True} else f.view(b, k, u)
        # [k, C, B] = W f^T: the weights' gradient then comes out in their own layout (no copy per member)
        return torch.baddbmm(bias.unsqueeze(-1), w, f.permute(1, 2, 0)).transpose(1, 2)


def _alike(norms: list[CodeNorm | None], training: bool = False) -> bool:
    """Whether the members' normalizations can run side by side: none, or all with one floor and eps,
    and in training one momentum (not None: a cumulative average reads each member's own count)."""
    if all(n is None for n in norms):
        return True
    keys = {(n.floor, n.eps) + ((n.momentum,) if training else ()) for n in norms if n is not None}
    return all(n is not None for n in norms) and len(keys) == 1 and not (training and norms[0].momentum is None)


def grouped_fold(members: list[NeuroViewCNN]) -> tuple[Tensor, Tensor] | None:
    """``(W [k, C, U], b [k, C])``: every member's :meth:`~NeuroViewCNN.effective_classifier` (its
    eval-time decision, normalization folded in) side by side, or None where the members'
    normalizations differ in kind (then each folds its own)."""
    norms = [m.norm for m in members]
    if not _alike(norms):
        return None
    w, b = torch.stack([m.classifier.weight for m in members]), torch.stack([m.classifier.bias for m in members])
    if norms[0] is None:
        return w, b
    dt = torch.promote_types(w.dtype, torch.float32)  # as head.fold: w @ mu in bf16 would move the bias
    with torch.autocast(w.device.type, enabled=False):
        w = w.to(dt) * _scale(norms[0], torch.stack([n.running_var for n in norms]).to(dt)).unsqueeze(1)
        return w, b.to(dt) - (w @ torch.stack([n.running_mean for n in norms]).to(dt).unsqueeze(-1)).squeeze(-1)


def _scale(norm: CodeNorm, var: Tensor) -> Tensor:
    """``[k, U]``: :meth:`CodeNorm.scale` of ``k`` members' variances at once (each member's own floor)."""
    if norm.floor > 0:
        var = var.clamp_min(norm.floor * var.mean(-1, keepdim=True))
    return torch.rsqrt(var + norm.eps)


def _normalize_in_training(norms: list[CodeNorm], f: Tensor, k: int) -> Tensor:
    """``[B, k, U]``: :meth:`CodeNorm.forward` in training for ``k`` members' features side by side: the
    same batch statistics (all-reduced under DDP), the running ones updated by multi-tensor ops. A member whose batch
    statistics hold NaN or Inf keeps its running ones and its count, and says so, as its own CodeNorm does."""
    mean, var, n = _batch_stats(f)
    mean, var = mean.view(k, -1), var.view(k, -1)
    with torch.no_grad():
        unbiased = var.detach() * (n / (n - 1).clamp_min(1) if isinstance(n, Tensor) else n / max(n - 1, 1))
        ok = torch.isfinite(var.detach()).all(1)  # [k], no host sync: a NaN/Inf mean gives one (head_stats)
        rm, rv = [nm.running_mean for nm in norms], [nm.running_var for nm in norms]
        for run, stat in ((rm, mean.detach()), (rv, unbiased)):  # a lerp towards the running value itself keeps it
            torch._foreach_lerp_(run, list(torch.where(ok[:, None], stat.to(run[0].dtype), torch.stack(run)).unbind(0)),
                                 norms[0].momentum)
        for i, nm in enumerate(norms):  # each member's own note (its warning, its count of batches left out)
            nm._note_left_out(ok[i], mean[i].detach(), var[i].detach())
        torch._foreach_add_([nm.num_batches_tracked for nm in norms], list(ok.long().unbind(0)))
    return (f.view(f.shape[0], k, f.shape[1] // k) - mean) * _scale(norms[0], var)


class _Codes(nn.Module):
    """A NeuroViewCNN whose forward is its codes: what ``functional_call`` runs for NeuroView members."""

    def __init__(self, net: NeuroViewCNN):
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net.codes(x)
