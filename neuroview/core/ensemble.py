"""An ensemble whose members' logits are averaged; of NeuroView-CNNs, it is still one exact NeuroView decision.

InceptionTime and LITETime, as published, are ensembles of five networks trained apart. Their
average is interpretable by construction when the members are NeuroView-CNNs: member ``m``
decides ``W_m c_m(x) + b_m``, so the mean of ``k`` members is

    logits = sum_m (W_m / k) c_m(x) + mean_m b_m

one linear classifier over the unit codes of all members. :meth:`Ensemble.explain` gives that
decision's per-unit contributions (unit ``u`` of member ``m`` is ``("members.m.<site>", channel)``),
and they sum to the ensemble's logits exactly, as a single NeuroView-CNN's do.

The logits are averaged, not the softmax probabilities (which the papers average): an average of
probabilities is not linear in the codes, so it would have no exact decomposition. The standard
counterpart averages logits too, so the pair still differs only in what each member decides with.

Training keeps the members independent: :meth:`member_logits` gives each member's own logits,
and the loss is the sum of the members' own losses (the Lightning module does so), so each member's
gradient is exactly what it would be trained alone on the same batches.

``batched=True`` computes the members in one batched pass where their backbone has a grouped form
(LITE: :mod:`neuroview.core.batched`): the same logits and gradients, each layer one call over all
members instead of one per member. It falls back to the members one by one wherever something
watches their own modules (a forward hook of yours, a global module hook, an outer ``nv.wrap`` of the
ensemble, :func:`neuroview.attribution.ablation.ablate_units`), where their settings come to differ
(with the warning of construction), and ``explain`` with code maps runs them so; a setting changed on
every member alike (``tau``; ``ens.tau = v`` sets every member's: :mod:`neuroview.core.ensemble_checks`)
rebuilds the pass, as a member added or removed does. ``batched="auto"`` batches on an accelerator,
where a small step is launch-bound, and runs the members apart on the CPU, where a step is compute and
the grouped pass paid nothing or cost (``benchmarks/ensemble_cost.py``: five LITEs' step 0.83x apart at 5
series of 150 steps, 1.00x at 16, 1.26x at ACSF1's 10 of 1,460).

A **global head** replaces that average with one classifier over every member's units, as a NeuroView-CNN's own
head reads its units: ``logits = W norm(codes) + b`` with ``codes`` all members' codes in member order.
:func:`neuroview.sparsify` builds it (:meth:`Ensemble.build_head`) and fits it sparse, so that a class reads few
units of the five members together; the members' own heads are then left unused, and :meth:`member_logits` refuses
(the decision is no longer theirs). Exactness is the same: ``explain`` sums to the logit.

>>> import torch, neuroview as nv
>>> net = nv.create_model("nv_lite", num_classes=3, members=2).eval()
>>> x = torch.randn(4, 1, 40)
>>> exp = net.explain(x)
>>> exp.codes.shape, bool((exp.for_class(0).sum(-1) + exp.bias[0] - net(x)[:, 0]).abs().max() < 1e-5)
(torch.Size([4, 388]), True)
>>> exp.units[194]
('members.1.fixed_relu', 0)

Imports only torch and :mod:`neuroview.core`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._utils import explaining, factory, own_rng, refuse_own_hooks
from .batched import BatchedPass, current_pass, grouped_fold, grouped_heads, pass_lock, watched, why_not_batchable
from .cnn import NeuroViewCNN
from .edits import each_member, require_members_unedited
from .ensemble_checks import NV_ONLY, SETTINGS, NotNeuroView, checked_members, layout, num_classes as member_classes, pass_setting, read_setting  # noqa: E501
from .ensemble_head_load import match_head
from .explanation import CNNExplanation
from .guards import Guarded
from .pass_checks import traced_apart
from .head import CodeNorm, decide, fold, folded_logits, head_dtype
from .head_classes import NUM_CLASSES, ensemble_classes, global_head_width, set_ensemble_classes
from .head_stats import mean_features
from .own_decision import require_own_decision
from .readable import resolve_baseline
from .refusals import refuse_single_batch, refuse_single_members
from .rnn_reach import one_warning

__all__ = ["Ensemble", "members_loss"]


def members_loss(z: Tensor, y: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """The sum of the members' own mean cross-entropies, ``sum_m CE(z[m], y)`` for ``z [k, B, C]``
    (:meth:`Ensemble.member_logits`), as one cross-entropy over the ``k * B`` rows: each member's
    gradient is the one it gets trained alone (a mean over the members would scale it by 1/k), in one
    op where a loss per member launched ``k``.

    >>> z, y = torch.randn(3, 4, 2), torch.tensor([0, 1, 1, 0])
    >>> bool(torch.isclose(members_loss(z, y), sum(F.cross_entropy(zm, y) for zm in z)))
    True
    """
    k = z.shape[0]
    return F.cross_entropy(z.flatten(0, 1), y.repeat(k), label_smoothing=label_smoothing) * k


class Ensemble(Guarded):
    """``k`` networks of one architecture whose logits are averaged (see the module docstring).

    Args:
        members: the networks, each mapping ``x [B, C, ...]`` to logits ``[B, num_classes]``; all NeuroView-CNNs (then
            the ensemble explains itself) or none; RNNs of one ``batch_first`` (``ens.batch_first``: each reads one ``x``).
        batched: compute the members in one batched pass where their backbone has a grouped form (as
            LITE's; see the module docstring; else a warning, and they run one by one); ``"auto"``: so
            on an accelerator, one by one on the CPU (no warning where there is no grouped form). The
            model, its state dict and its numbers are the same.
    """

    def __init__(self, members: Sequence[nn.Module], batched: bool | str = False):
        super().__init__()
        members, classes, batched = checked_members(members, batched)
        why = why_not_batchable(members) if batched else None
        if why is not None:  # how, not what: the same numbers either way, so a recipe's batched fits any architecture
            if batched is True:
                warnings.warn(f"batched: {why}; the members run one by one", stacklevel=2)
            batched = False
        self.members = nn.ModuleList(members)
        self.batched = batched
        self._pass: BatchedPass | None = None  # built on the first batched call; never in the state dict
        self.num_classes = classes
        self.norm: CodeNorm | None = None  # the global head (build_head); None: the mean of the members' logits
        self.classifier: nn.Linear | None = None

    @property
    def neuroview(self) -> bool:
        """Whether the members are NeuroView-CNNs (and the ensemble explains itself)."""
        return isinstance(self.members[0], NeuroViewCNN)

    def _nv(self, what: str) -> None:
        if not self.neuroview:
            raise NotNeuroView(f"{what}: needs NeuroView-CNN members; these are {type(self.members[0]).__name__}s")

    def __len__(self) -> int:
        return len(self.members)

    # ---------------------------------------------------------------- forward
    def member_logits(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``[k, B, C]``: each member's own logits (what each member is trained on); ``lengths`` as in ``forward``."""
        if self.classifier is not None:
            raise RuntimeError("member_logits: this ensemble decides with one global head over every member's units "
                               "(nv.sparsify built it), not with its members' own logits; train it with "
                               "nv.finetune_sparse, or train the ensemble before sparsifying it")
        layout(self.members)  # RNN members of one layout (a member replaced since construction too): each reads this x
        if lengths is not None:
            if self.neuroview:
                raise TypeError("lengths: the members are NeuroView-CNNs, which read no lengths")
            with one_warning(self.members, self):  # RNN members: once a call, not once a member
                return torch.stack(each_member(self.members, lambda _, m: m(x, lengths=lengths)))
        refuse_single_members(self, x)  # a training batch of one their heads refuse: before any member runs, batched or not
        feats = self._batched(x)
        if feats is None:
            with one_warning(self.members, self):
                return torch.stack(each_member(self.members, lambda _, m: m(x)))
        logits = grouped_heads(list(self.members), feats)  # every head in one product where they can be
        if logits is not None:
            return logits
        return torch.stack([m.head(f) if self.neuroview else m.fc(f) for m, f in zip(self.members, self._split(feats))])

    def _split(self, feats: Tensor) -> list[Tensor]:
        """The batched pass's ``[B, k * U]`` as each member's part."""
        return list(feats.chunk(len(self), dim=1))

    def _batched(self, x: Tensor, eval_mode: bool = False) -> Tensor | None:
        """``[B, k * U]``: every member's codes (pooled features, standard members), member after member,
        from one batched pass, or None where the members must run one by one: not ``batched``, something
        else watching their modules, or settings that now differ (:func:`~neuroview.core.batched.current_pass`)."""
        if not self.batched or (self.batched == "auto" and x.device.type == "cpu") or watched(list(self.members)):
            return None
        if traced_apart(self):  # the members' own pass names what torch.jit.trace / torch.export cannot take
            return None
        if not eval_mode and not self._same_modes():  # the grouped network has one mode a layer: member 0's
            return None
        lock = pass_lock(self)  # one grouped network, set for each call: one thread's call at a time
        with lock if lock is not None else contextlib.nullcontext():
            self._pass = p = current_pass(self._pass, list(self.members), x, warn=self.batched is True)
            return None if p is None else p(list(self.members), x, eval_mode)

    def _same_modes(self) -> bool:
        """Whether every member has each of its modules in the same train/eval mode as the others (one
        member frozen, or one BatchNorm of one, ran in member 0's mode in the batched pass: other logits)."""
        modes = [[mod.training for mod in m.modules()] for m in self.members]
        return all(s == modes[0] for s in modes[1:])

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The mean of the members' logits (or the global head's decision); ``lengths`` is handed to each member
        (recurrent members of variable-length series; one by one, as they were given)."""
        require_members_unedited(self)  # the batched pass skips the members' own checks: an edit named by member
        if lengths is not None:
            return self.member_logits(x, lengths).mean(0)
        if self.classifier is not None:  # a training batch of one the global head refuses: before any member runs
            refuse_single_batch([self], x.shape[0] if isinstance(x, Tensor) and x.dim() > 1 else 2)
            return decide(self._head_width(self.codes(x)), self.classifier, self.norm)
        return self.member_logits(x).mean(0)

    _head_width = global_head_width
    # its global head's, else its members' (which must agree): a member's head put in place for another task
    num_classes = property(lambda self: ensemble_classes(self, member_classes),
                           lambda self, v: set_ensemble_classes(self, v, member_classes), doc=NUM_CLASSES.__doc__)

    # ------------------------------------------------- NeuroView members: global head
    def build_head(self, num_units: int) -> None:
        """Build a global head over ``num_units`` codes (every member's units): a normalization and
        one linear classifier that then decide in place of the mean of the members' logits.
        :func:`neuroview.sparsify` builds and fits it; loading a state dict that has one builds it."""
        self._nv("build_head")
        if self.classifier is None:
            kw = factory(self.members[0])
            # its initial weights are replaced (by the fit, or the weights loaded): the caller's RNG is not drawn from
            with own_rng(kw.get("device")):
                self.norm = CodeNorm(num_units, **kw).train(self.training)
                self.classifier = nn.Linear(num_units, self.num_classes, **kw).train(self.training)
        elif self.classifier.in_features != num_units:
            raise ValueError(f"num_units: the global head reads {self.classifier.in_features} codes, got {num_units}")

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # a sparsified ensemble's file builds its global head, a dense ensemble's drops it (ensemble_head_load)
        match_head(self, state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ------------------------------------------ NeuroView members: lazy sites
    def __getattr__(self, name: str):
        # a property's own AttributeError (NotNeuroView: hasattr answers False), which nn.Module's lookup replaced
        if name in NV_ONLY and "_modules" in self.__dict__ and "members" in self._modules and not self.neuroview:
            raise NotNeuroView(f"{name}: the members are not NeuroView-CNNs (an ensemble of standard networks or RNNs: "
                               f"these are {type(self.members[0]).__name__}s)")
        if name in (*SETTINGS, "batch_first") and "_modules" in self.__dict__ and "members" in self._modules:
            return read_setting(self.members, name)  # the members' common value (ens.tau read back what they ignored)
        return super().__getattr__(name)

    def __setattr__(self, name: str, value) -> None:
        if name in SETTINGS:  # every member's, checked by each (stored on the ensemble, it changed nothing)
            own = pass_setting(self.members, name, value)  # check_finite of members without it: kept here
            self.__dict__.pop(name, None)  # an older ensemble's value kept here hid the members'
            self.__dict__.update(own)
            return
        super().__setattr__(name, value)

    def __setstate__(self, state: dict) -> None:
        # an ensemble pickled before its settings reached its members kept them here (ens.tau = v), where they hide
        # the members' values for good (__getattr__ is not asked); the members' own are what they compute with
        super().__setstate__(state)
        members = self.__dict__.get("_modules", {}).get("members")
        for name in SETTINGS:
            if name in self.__dict__ and members is not None and all(hasattr(m, name) for m in members):
                del self.__dict__[name]

    @property
    def sites(self):
        """The sites of every member, renamed ``members.<m>.<site>``; None until every member has
        found its own (on the first batch, as a NeuroView-CNN does). Only with NeuroView members."""
        if not self.neuroview:
            raise AttributeError("sites: the members are not NeuroView-CNNs")
        if any(m.sites is None for m in self.members):
            return None
        return [dataclasses.replace(s, name=f"members.{i}.{s.name}", module=f"members.{i}.backbone.{s.module}")
                for i, m in enumerate(self.members) for s in m.sites]

    @property
    def input_shape(self):
        self._nv("input_shape")
        return self.members[0].input_shape

    def discover(self, x: Tensor) -> list:
        """Find every member's sites on the batch ``x`` (and build its classifier)."""
        self._nv("discover")
        each_member(self.members, lambda _, m: m.discover(x) if m.sites is None else None)
        return self.sites

    # --------------------------------------------- the one linear decision
    def codes(self, x: Tensor) -> Tensor:
        """``[B, U]``: the unit codes of all members, in member order."""
        self._nv("codes")
        require_members_unedited(self)
        feats = self._batched(x)
        return feats if feats is not None else torch.cat(each_member(self.members, lambda _, m: m.codes(x)), dim=1)

    def effective_classifier(self) -> tuple[Tensor, Tensor]:
        """``(W [C, U], b [C])`` with ``logits == codes @ W.T + b`` in eval mode: each member's folded
        weights divided by the number of members, and the mean bias; or the global head, folded."""
        self._nv("effective_classifier")
        if self.classifier is not None:
            return fold(self.classifier, self.norm)
        ws, bs = zip(*(m.effective_classifier() for m in self.members))
        return torch.cat(ws, dim=1) / len(self), torch.stack(bs).mean(0)

    # read only _sites() and unit_importance(): a NeuroView-CNN's own, over the renamed sites
    units = NeuroViewCNN.units
    site_slices = NeuroViewCNN.site_slices
    num_units = NeuroViewCNN.num_units

    def _sites(self) -> list:
        self._nv("sites")
        sites = self.sites
        if sites is None:
            raise RuntimeError("sites: not found yet; they are found on the first batch: call net(x) once")
        return sites

    @torch.no_grad()
    def explain(self, x: Tensor, lengths: Tensor | None = None, *, target: Tensor | int | None = None,
                maps: bool = False, baseline: Tensor | str | None = None) -> CNNExplanation:
        """Exact per-unit explanation of the ensemble's decision (see :meth:`NeuroViewCNN.explain`):
        ``for_class(c).sum(-1) + bias[c] == net.eval()(x)[:, c]``; units of every member.
        ``baseline`` as for a NeuroView-CNN; a tensor covers the units of every member, in order. ``lengths``: refused
        by name, as the forward refuses it for these members (an RNN's call, ``explain(x, lengths)``, as the forward
        and the members take it: positional or by name)."""
        self._nv("explain")  # RNN members first: their ensemble has no explanation, with lengths or without
        if lengths is not None:
            raise TypeError("lengths: the members are NeuroView-CNNs, which read no lengths")
        refuse_own_hooks(self)
        if self.classifier is not None:
            return self._explain_global(x, target, maps, baseline)
        if not (baseline is None or isinstance(baseline, Tensor) or (isinstance(baseline, str) and baseline in ("zero", "mean"))):
            raise ValueError(f"baseline: expected None, 'zero', 'mean' or a tensor of every member's units, got {baseline!r}")
        bases = [baseline] * len(self)
        if isinstance(baseline, Tensor):
            if self.sites is None:
                self.discover(x)
            sizes = [m.num_units for m in self.members]
            # [U] or [1, U] (as resolve_baseline): another shape of as many values is another layout
            if tuple(baseline.shape) not in ((sum(sizes),), (1, sum(sizes))):
                raise ValueError(f"baseline: expected a tensor of shape [{sum(sizes)}] (every member's units), got shape {list(baseline.shape)}")
            bases = list(baseline.reshape(-1).split(sizes))
        k, feats = len(self), self._batched_eval(x, maps)
        folded = grouped_fold(list(self.members)) if feats is not None else None
        if folded is not None:  # every member's fold side by side: what the members' own explanations give
            dt = head_dtype(feats, folded[0])
            codes, w, b = feats.to(dt), folded[0].detach().to(dt), folded[1].detach().to(dt)
            weight, bias = w.transpose(0, 1).reshape(w.shape[1], -1) / k, b.mean(0)
            mean = mean_features([m.norm for m in self.members], baseline)  # 'mean' of statistics no batch set: said
            (base, bias), code_maps = resolve_baseline(baseline, mean, (weight.shape[1],), weight, bias), None
        else:
            exps = self._member_explanations(x, maps, bases, feats)
            codes = torch.cat([e.codes for e in exps], dim=1)
            weight = torch.cat([e.weight for e in exps], dim=1) / k
            bias = torch.stack([e.bias for e in exps]).mean(0)  # the logit of the baseline, when there is one
            base = None if exps[0].baseline is None else torch.cat([e.baseline for e in exps])
            code_maps = self._code_maps([e.code_maps for e in exps])
        logits = folded_logits(codes if base is None else codes - base, weight, bias)
        return self._explanation(x, code_maps, logits, bias, codes, weight, base, target)

    def _batched_eval(self, x: Tensor, maps: bool = False) -> Tensor | None:
        """:meth:`_batched` as in eval mode (the grouped network's layers in eval mode; the members' own modes untouched),
        or None: no batched pass, or code maps asked (those come from each member's own pass)."""
        return None if not self.batched or maps else self._batched(x, eval_mode=True)

    def _member_explanations(self, x: Tensor, maps: bool, bases: list, feats: Tensor | None = None) -> list[CNNExplanation]:
        """Each member's own explanation of ``x``: of its part of ``feats`` (the batched pass's codes, in eval mode)
        where given, else of its own pass."""
        if feats is None:
            return each_member(self.members, lambda i, m: m.explain(x, maps=maps, baseline=bases[i]))
        return [m._explain_codes(c, baseline=bm) for m, c, bm in zip(self.members, self._split(feats), bases)]

    def _explain_global(self, x: Tensor, target, maps: bool, baseline) -> CNNExplanation:
        """:meth:`explain` of a global head: the members' codes (and maps), the head's folded weights."""
        codes, code_maps = self._batched_eval(x, maps), None  # the batched pass's codes, or each member's own
        if codes is None:  # each member's own pass for its codes: its own head (and hooks on it) take no part, as in forward
            restore = explaining(self)
            try:
                pairs = each_member(self.members, lambda _, m: m._codes(x, maps=maps))
            finally:
                restore()
            codes = torch.cat([c for c, _ in pairs], dim=1)
            code_maps = self._code_maps([dict(zip((s.name for s in m.sites), cm)) if maps else None
                                         for m, (_, cm) in zip(self.members, pairs)])
        w, b = self.effective_classifier()
        dt = head_dtype(codes, w)
        codes, w, b = self._head_width(codes).to(dt), w.detach().to(dt), b.detach().to(dt)
        logits = folded_logits(codes, w, b)
        base, b = resolve_baseline(baseline, mean_features(self.norm, baseline), (w.shape[1],), w, b)
        return self._explanation(x, code_maps, logits, b, codes, w, base, target)

    @staticmethod
    def _code_maps(maps: list[dict | None]) -> dict | None:
        """The members' code maps (each one's, by site) under their ensemble names, or None where they have none."""
        return None if maps[0] is None else {f"members.{i}.{name}": v for i, m in enumerate(maps) for name, v in m.items()}

    def _explanation(self, x, code_maps, logits, bias, codes, weight, base, target) -> CNNExplanation:
        exp = CNNExplanation(logits=logits, bias=bias, codes=codes, weight=weight, units=self.units,
                             site_slices=self.site_slices, code_maps=code_maps, baseline=base)
        exp.target = exp.targets(target)
        require_own_decision(self, exp.logits, x)  # a subclass's own forward: its logits (the members' explain theirs)
        return exp

    @torch.no_grad()
    def unit_importance(self, standardized: bool = False) -> Tensor:
        """``[C, U]``: each member's :meth:`NeuroViewCNN.unit_importance` / their number (raw unless all normalize)."""
        self._nv("unit_importance")
        if self.classifier is not None:
            return NeuroViewCNN.unit_importance(self, standardized)
        std = standardized and all(m.norm is not None for m in self.members)  # importance.standardizes' answer
        return torch.cat([m.unit_importance(std) for m in self.members], dim=1) / len(self)

    site_importance = NeuroViewCNN.site_importance
    top_units = NeuroViewCNN.top_units
    unit_gallery = NeuroViewCNN.unit_gallery

    def extra_repr(self) -> str:
        return (f"members={len(self)}" + ("" if not self.batched else ", batched" if self.batched is True else ", batched=auto")
                + (", global head" if self.classifier is not None else ""))
