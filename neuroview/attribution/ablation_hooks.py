"""The hooks of :func:`~neuroview.attribution.ablation.ablate_units`: what zeroes the removed units' outputs and
codes (:class:`UnitAblation`), and the hook objects that carry it on the backbone's modules (:class:`AblationHook`),
kept apart from the deletion curves for room.

Imports: torch, einops and :mod:`neuroview.core`.
"""

from __future__ import annotations

import sys
import weakref

import torch
from einops import rearrange
from torch import Tensor, nn

from ..core.cnn import NeuroViewCNN
from ..core.hooks import _ACTIVE, CodesHooks
from ..core.recorder import sample_first
from ..core.search_scope import _CALL, _from_hook

__all__ = ["UnitAblation", "AblationHook"]


class UnitAblation:
    """The hooks of one :func:`ablate_units`: zero the removed units' outputs and codes."""

    def __init__(self, net: NeuroViewCNN, keep: Tensor):
        self.keep, self.sites = keep, net.sites
        self.slices = list(net.site_slices.values())
        self.by_module: dict[str, list[int]] = {}  # module name -> the sites (calls) it makes, in order
        for k, s in enumerate(net.sites):
            self.by_module.setdefault(s.module, []).append(k)
        # per pass, not per ablation: a pass run inside another (a hook of the user's calling the network again) counted
        # on the outer one's calls, and the rest of the outer pass ran unablated. Each network pass's recorder ->
        # (calls of each module so far, its batch), None for another network's pass (left as it is); a bare call of the
        # backbone (no network's pass running) counts on its own entry of ``calls``, by the frame of the call that
        # started it (a hook calling the model again, or a copy's, reset one shared count: review S27 R2 F2); ``bare``
        # where no such frame shows (a compiled call), which the backbone's pre-hook resets
        self.passes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.bare: tuple[dict[str, int], int | None] = ({}, None)
        self.calls: list[tuple[object, tuple[dict[str, int], int | None]]] = []  # (frame, state) of bare calls
        self.backbones: weakref.WeakSet = weakref.WeakSet()  # the backbones carrying it (the network's, copies')
        self.not_sites = set(net.not_sites)  # (module, call) pairs of calls that are no site (no sample axis)
        self.here, self.copies = None, []  # CodesHooks.enter's thread-local; (module, hook) of copies made inside

    def view(self, k: int, t: Tensor) -> Tensor:
        """Site ``k``'s keep mask, shaped to broadcast over its output ``t`` ``[B, channels, ...]``."""
        m = self.keep[..., self.slices[k]]
        if m.dim() == 2 and m.shape[0] != t.shape[0]:
            raise ValueError(f"units: a per-sample mask has {m.shape[0]} rows, the batch has {t.shape[0]} samples")
        m = m if m.dim() == 2 else m[None]
        return m.reshape(*m.shape, *([1] * (t.dim() - 2)))

    def reset(self, module, args) -> None:
        """The backbone's pre-hook: a bare call of it (no network's pass running) starts counting afresh. A network's
        pass counts on its own recorder's entry (:meth:`current`): a backbone that calls itself (a multi-scale
        network) is one pass, whose inner call's sites come after the outer's."""
        if not getattr(_ACTIVE, "recs", ()):
            self.bare = ({}, len(args[0]) if args and isinstance(args[0], Tensor) else None)

    def current(self) -> tuple[dict[str, int], int | None] | None:
        """The running pass this ablation acts on (its calls so far, its batch): the innermost network pass in this
        thread that is the ablated network's (or a copy's made inside: their codes hook holds this ablation), None
        where none is (another network over the same modules: a second wrapper, one over a part of the backbone)."""
        recs = getattr(_ACTIVE, "recs", ())
        return self.of_bare() if not recs else self.of_pass(recs)

    @torch._dynamo.disable
    def of_bare(self) -> tuple[dict[str, int], int | None]:
        """:meth:`current` in a bare call of a backbone carrying this ablation: the state of the call that started
        it, the innermost call of a backbone on the stack, or an outer call of the same backbone that calls it from its
        forward (a multi-scale network: one pass), not from a hook (a monitor scoring another batch: a pass of its own).
        Calls left (by an error too) are dropped; ``bare`` where no call shows (a compiled one's frames)."""
        frames, f = [], sys._getframe(1)
        while f is not None:
            frames.append(f)
            f = f.f_back
        calls = [i for i, g in enumerate(frames) if g.f_code is _CALL and g.f_locals.get("self") in self.backbones]
        if not calls:
            return self.bare
        root = calls[0]
        for outer in calls[1:]:  # the same backbone, called from its forward: the same pass
            if frames[outer].f_locals.get("self") is not frames[root].f_locals.get("self") or any(
                    _from_hook(g, frames[i + 1]) for i, g in enumerate(frames[root:outer], root)):
                break
            root = outer
        live = [frames[i] for i in calls]
        self.calls[:] = [(g, state) for g, state in self.calls if any(g is h for h in live)]
        for g, state in self.calls:
            if g is frames[root]:
                return state
        args = frames[root].f_locals.get("args") or ()
        state = ({}, len(args[0]) if args and isinstance(args[0], Tensor) else None)
        self.calls.append((frames[root], state))
        return state

    @torch._dynamo.disable
    def of_pass(self, recs: tuple) -> tuple[dict[str, int], int | None] | None:
        """:meth:`current` among the network passes ``recs``, out of what torch.compile traces: a guard on the size of
        the table of passes (which grows each pass) recompiled ``zero_output`` every pass, up to dynamo's limit."""
        for rec in reversed(recs):  # (an outer one: the ablated network's sites inside a network it holds)
            state = self.passes.get(rec, False)
            if state is False:
                state = self.passes[rec] = ({}, rec.batch) if ablated_by(rec.net, self.here) else None
            if state is not None:
                return state
        return None

    def zero_site(self, k: int, t: Tensor, batch: int | None) -> Tensor:
        """Site ``k``'s output ``t`` in the model's own layout, its removed units 0: the keep mask is laid
        along the site's units and samples where they were found (tokens ``[B, N, C]``, sequence-first
        ``[T, B, C]``, positions folded into the samples), not along dim 1 and dim 0 whatever the layout."""
        site = self.sites[k]
        m = self.keep[..., self.slices[k]]
        if m.dim() == 2 and m.shape[0] != batch:
            raise ValueError(f"units: a per-sample mask has {m.shape[0]} rows, the batch has {batch} samples")
        first = sample_first(t, site, batch)  # [B * k, ...], units on site.axis
        rows = m.repeat_interleave(len(first) // len(m), 0) if m.dim() == 2 else m[None]  # [B * k or 1, C]
        shape = [1] * first.dim()
        shape[0], shape[site.axis % first.dim()] = rows.shape
        kept = torch.where(rows.reshape(shape), first, first.new_zeros(()))
        if site.positions_first:
            kept = rearrange(kept, "(b k) ... -> (k b) ...", b=batch)
        return kept.movedim(0, site.sample_dim) if site.sample_dim else kept

    def zero_output(self, output, name: str):
        state = self.current()
        if state is None:  # another network's pass over these modules: not this ablation's
            return None
        calls, batch = state
        call = calls.get(name, 0)
        calls[name] = call + 1
        if (name, call) in self.not_sites:  # a parameter table's call, say: the module's sites are its other calls
            return None
        j = call - sum(1 for n, c in self.not_sites if n == name and c < call)  # the module's j-th site
        if j >= len(self.by_module[name]) or not isinstance(output, Tensor):
            return None  # a call that is no site: NeuroViewCNN's own check reports a changed path
        k = self.by_module[name][j]
        if bool(self.keep[..., self.slices[k]].all()):
            return None
        # where, not a product: an activation may give inf, and inf * 0 is NaN
        return self.zero_site(k, output, batch)

    def zero_codes(self, codes: Tensor, maps: list[Tensor]):
        keep = self.keep
        if keep.dim() == 2 and keep.shape[0] != codes.shape[0]:
            raise ValueError(f"units: a per-sample mask has {keep.shape[0]} rows, the batch has {codes.shape[0]} samples")
        codes = torch.where(keep, codes, codes.new_zeros(()))
        maps = [torch.where(self.view(k, m), m, m.new_zeros(())) for k, m in enumerate(maps)]
        return codes, maps


def ablated_by(net: NeuroViewCNN, here) -> bool:
    """Whether ``net``'s codes hook holds the ablation entered as ``here`` (the ablated network, a copy of it made
    inside the ``with``, a shallow copy sharing its hook)."""
    hook = getattr(net, "_codes_hook", None)
    while isinstance(hook, CodesHooks):
        if any(h is here for h, _ in hook.entered):
            return True
        hook = hook.previous
    return False


class AblationHook:
    """An ablation's hook on one module (``name`` None: the backbone's pre-hook), acting on that module only, in the
    thread that entered the ablation. A deepcopy of the module made inside the ``with`` (``copy.deepcopy``,
    ``nv.sparsify``) gets a hook on the copy, which the ``with``'s end takes off too (a copied lambda kept the units
    removed for good, in that thread only); a pickle inside the ``with`` is refused: it would save the ablation.
    The module is held weakly: a copy dropped inside the ``with`` is freed then, not kept, weights and all, by its
    hook in the ablation's list of copies until the ``with`` ends (a loop of copies grew without bound)."""

    __slots__ = ("ablation", "module", "name")

    def __init__(self, ablation: UnitAblation, module: nn.Module | None, name: str | None):
        self.ablation, self.name = ablation, name
        self.module = None if module is None else weakref.ref(module)
        if name is None and module is not None:
            ablation.backbones.add(module)

    def __call__(self, module, args, output=None):
        if module is not (self.module and self.module()) or not getattr(self.ablation.here, "on", False):
            return None
        return self.ablation.reset(module, args) if self.name is None else self.ablation.zero_output(output, self.name)

    def __deepcopy__(self, memo) -> AblationHook:
        # the module is copied before its hooks; a dead or absent one: a twin acting on nothing
        copied = memo.get(id(self.module())) if self.module is not None and self.module() is not None else None
        twin = AblationHook(self.ablation, copied, self.name)
        if copied is not None:  # dropped copies' entries go: a loop of copies keeps a list of the live ones
            self.ablation.copies[:] = [(r, h) for r, h in self.ablation.copies if r() is not None]
            self.ablation.copies.append((weakref.ref(copied), twin))
        return twin

    def __reduce__(self):
        raise TypeError("ablate_units: a network cannot be pickled (torch.save) inside the with, which would save its "
                        "units removed; save it after the with")
