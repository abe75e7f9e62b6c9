"""The result of ``net.explain(x)``: tensors whose sums reproduce the logits exactly.

Both NeuroView families decide with one linear map, ``logits = W f(x) + b``, so every logit splits into per-feature
contributions ``W[c, i] * f_i(x)``. An explanation keeps what the decision needs, the features ``codes [B, ...]``,
the effective weights ``weight [C, ...]`` and the bias, and forms contributions for the classes asked
(:meth:`Explanation.for_class`, ``[B, ...]``); the dense ``[B, C, ...]`` tensor is built only when ``contributions``
is read (a ResNet-50 at 1,000 classes and batch 128 would need 11.6 GB for it). :class:`CNNExplanation` adds the
unit bookkeeping and spatial maps of NeuroView-CNN, :class:`RNNExplanation` the time axis of NeuroView-RNN. Saving
and loading (safetensors plus a JSON sidecar, no pickle) live in :mod:`neuroview.core.saving`.
Imports only torch and core modules (:mod:`neuroview.core.saving`, :mod:`neuroview.core.records`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import Tensor

from . import saving
from ._utils import positive_int
from .explanation_bias import BaselineFollows, settle
from .explanation_checks import predicted_classes, table_names
from .explanation_given import built, check_given, check_set, public_names, public_new
from .explanation_rnn import held, settled_input_lengths, versions
from .explanation_sums import product  # every view's product, autocast off: exact inside torch.autocast too
from .explanation_targets import resolve_targets
from .readable import k_share
from .readable_items import fold_padding, top_share
from .records import class_labels, cnn_records, feature_records, records_frame, rnn_records, step_reads

__all__ = ["Explanation", "CNNExplanation", "RNNExplanation", "class_labels", "records_frame", "step_reads"]


@public_names  # contributions= fills _contributions (:mod:`~neuroview.core.explanation_given`)
@dataclass(eq=False)  # compared field by field, tensors of many values gave torch's bare error
class _Fields(BaselineFollows):
    logits: Tensor  # [B, C]
    bias: Tensor  # [C]
    # [B, C, ...] given (``contributions=``); None: formed from codes and weight when read. Its own name: what
    # dataclasses.replace copies is what was given, never a tensor formed from the old codes and weight
    _contributions: Tensor | None = field(default=None, repr=False)
    codes: Tensor | None = None  # [B, ...]: the features the global classifier reads
    weight: Tensor | None = field(default=None, repr=False)  # [C, ...]: the effective classifier weight
    target: Tensor | None = None  # [B]: the classes explain() was asked for (None: the predicted ones)
    # [...] (codes without the batch dim): the reference the contributions are taken against; None: zero codes. ``bias``
    # then holds ``b + W baseline``, the baseline's logit: derived again after replace or exp.baseline = (explanation_bias)
    baseline: Tensor | None = None

    def __post_init__(self) -> None:
        if self._contributions is None and (self.codes is None or self.weight is None):
            raise ValueError("contributions: pass them, or both codes and weight to form them from")
        check_given(self)  # [B, C, ...] of these logits
        settle(self)  # the baseline checked, and the bias its logit under this weight (a replace's copy too)


class Explanation(_Fields):
    """Exact decomposition of a batch of logits.

    ``for_class(c)`` has shape ``[B, ...]`` and ``contributions`` ``[B, C, ...]``; both satisfy
    ``contributions.flatten(2).sum(-1) + bias == logits`` to float tolerance.

    >>> exp = Explanation(torch.tensor([[1.0, 2.0]]), torch.tensor([0.5, -0.5]),
    ...                   torch.tensor([[[0.25, 0.25], [1.0, 1.5]]]), torch.ones(1, 2))
    >>> exp.residual().abs().max().item()
    0.0
    """

    _KINDS: dict[str, type["Explanation"]] = {}

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if not cls.__name__.startswith("_"):  # a class of fields only is no kind a file holds
            Explanation._KINDS[cls.__name__] = cls

    def __new__(cls, *args, **kw):  # a user's @dataclass subclass takes contributions= too (explanation_given)
        return public_new(cls)

    @property
    def contributions(self) -> Tensor:
        """``[B, C, ...]``, dense: formed from the codes and weight at each read, a new tensor (editing it changes
        no later answer); the one passed in where there are none. Prefer :meth:`for_class`."""
        return self._contributions if self._contributions is not None else self._delta()[:, None] * self.weight[None]

    def _delta(self) -> Tensor:
        """The codes relative to the baseline (the codes themselves against zero)."""
        return self.codes if self.baseline is None else self.codes - self.baseline

    def __repr__(self) -> str:
        # shapes only: a notebook cell showing an explanation must not build [B, C, ...] (nor print it)
        def shape(v):
            return f"[{', '.join(map(str, v.shape))}]" if isinstance(v, Tensor) else type(v).__name__
        parts = [f"{k}={shape(getattr(self, k))}" for k in ("logits", "codes", "weight", "baseline") if k != "baseline" or self.baseline is not None]
        return f"{type(self).__name__}({', '.join(parts)})"

    @contributions.setter
    def contributions(self, value: Tensor | None) -> None:
        check_set(self, "contributions", value)  # [B, C, ...] of the logits, as at construction
        self._contributions = value

    @property
    def num_classes(self) -> int:
        return self.logits.shape[1]

    @property
    def predicted(self) -> Tensor:
        """``[B]`` predicted class of each sample; refused where its logits hold NaN (:func:`predicted_classes`)."""
        return predicted_classes(self.logits)

    def residual(self, target: Tensor | int | None = None) -> Tensor:
        """Logits minus (bias + summed contributions): zero up to rounding. ``[B, C]`` from the dense contributions when
        ``target`` is None and they were passed in or built, else ``[B]`` for the classes of ``target`` (see :meth:`targets`)."""
        if target is None and self._contributions is not None:
            return self.logits - (self._contributions.flatten(2).sum(-1) + self.bias)
        t = self.targets(target)
        return self.logits[torch.arange(len(t), device=t.device), t] - (self.for_class(t).flatten(1).sum(-1) + self.bias[t])

    def for_class(self, target: Tensor | int | None = None) -> Tensor:
        """Contributions to one class per sample, ``[B, ...]``, without the dense tensor.

        ``target`` is an int (same class for all samples), a ``[B]`` tensor of classes, or
        ``None`` for the classes explain() was asked for (by default each sample's prediction).
        """
        t = self.targets(target)
        if self._contributions is not None:
            return self._contributions[torch.arange(len(t), device=t.device), t]
        return self._delta() * self.weight[t]

    # ------------------------------------------------------------ readability
    def k90(self, target: Tensor | int | None = None, *, per_sample: bool = False, level: str = "features") -> Tensor | float:
        """Readability of the explained logits: how many contributions, largest ``|value|`` first,
        make up 90% of the sum of ``|contributions|`` to ``target``'s logit (default: the classes
        explain() was asked for). The median over the batch, or ``[B]`` with ``per_sample``.
        A decision with no contribution at all counts 0, NaN or Inf ones are refused. ``level="steps"`` (RNNs) counts time
        steps, each the sum of its hidden states' contributions; an RNN's steps past a series' end (``lengths``) count as
        one item, their sum, at either level (:mod:`~neuroview.core.readable_items`). See :func:`k_share`."""
        k = k_share(self._items(target, level), 0.9, "contributions")
        return k if per_sample else float(k.float().quantile(0.5))

    def top_share(self, k: int = 10, target: Tensor | int | None = None, *, per_sample: bool = False,
                  level: str = "features") -> Tensor | float:
        """Share of the sum of ``|contributions|`` carried by the ``k`` largest, median over the batch
        (``[B]`` with ``per_sample``); 1.0 for a decision with no contribution at all; NaN or Inf ones are refused."""
        share = top_share(self._items(target, level), k)  # (:func:`~neuroview.core.readable_items.top_share`)
        return share if per_sample else float(share.quantile(0.5))

    def _items(self, target: Tensor | int | None, level: str = "features") -> Tensor:
        """``[B, N]``: the contributions k90 counts (every feature here; RNNs may count steps)."""
        if level != "features":
            raise ValueError(f"level: expected 'features' for a {type(self).__name__}, got {level!r}")
        return self.for_class(target).flatten(1)

    def targets(self, target: Tensor | int | None = None) -> Tensor:
        """``[B]`` class per sample from an int, a ``[B]`` tensor or array, or ``None`` (the asked or predicted class)."""
        if target is None:
            return self.target.clone() if self.target is not None else self.logits.argmax(1)  # (see predicted_classes)
        return resolve_targets(target, self.logits.shape[0], self.num_classes, self.logits.device)

    # ------------------------------------------------------------------ as data
    def to_records(self, class_names: Sequence | None = None, *, target: Tensor | int | None = None) -> list[dict]:
        """Long ("tidy") table of the contributions, one dict per number: ``sample, class, feature, contribution``
        here; units or steps in the subclasses. ``target`` None (the default): every class's rows, as ``by_site`` and
        ``direction_time`` read None; else each sample's rows for its class only (see :mod:`neuroview.core.records`):
        the explained classes (asked, else predicted) with ``target=exp.targets()``, which always resolves. Against a
        baseline a contribution is ``weight * (code - baseline)``, and ``bias`` the baseline's logit."""
        return feature_records(self, self._names(class_names), target)

    def _names(self, class_names: Sequence | None) -> list:
        return table_names(self.num_classes, class_names) if class_names is not None else list(range(self.num_classes))

    def to_frame(self, class_names: Sequence | None = None, *, target: Tensor | int | None = None):
        """:meth:`to_records` (``target`` too) as a pandas DataFrame; raises ImportError without pandas."""
        return records_frame(self.to_records(class_names, target=target))

    def save(self, path) -> None:
        """Write ``path`` (safetensors) and its ``.json`` sidecar, atomically; no pickle. The dense contributions
        are stored only where they were given (passed in or set; the sidecar's ``given`` lists them, and :meth:`load`
        gives them back as they were): formed ones follow from ``codes`` and ``weight``."""
        saving.save(path, type(self).__name__, *self._state())

    def _state(self) -> tuple[dict[str, Tensor], dict]:
        tensors = {"logits": self.logits, "bias": self.bias} | {
            k: getattr(self, k) for k in ("codes", "weight", "target", "baseline") if getattr(self, k) is not None}
        formed = self.weight is not None and self.codes is not None
        if not formed or self._contributions is not None:  # given ones stand in for what codes and weight form
            tensors["contributions"] = self.contributions
        return tensors, ({"given": ["contributions"]} if formed and self._contributions is not None else {})

    @classmethod
    def _from_state(cls, t: dict[str, Tensor], meta: dict, window: int | None = None) -> dict:
        kw = {k: t.get(k) for k in ("logits", "bias", "codes", "weight", "target", "contributions", "baseline")}
        given = "contributions" in (meta.get("given") if isinstance(meta.get("given"), list) else ())
        # a version 1 file stored formed ones beside codes and weight: left to them, as they always were
        return kw | ({"contributions": None} if kw["codes"] is not None and kw["weight"] is not None and not given else {})

    @classmethod
    def load(cls, path, *, device: str | torch.device = "cpu", window: int | None = None) -> "Explanation":
        """Read what :meth:`save` wrote, as the kind of explanation that was saved. ``window``: an RNN explanation's
        input samples per step, where a file of an earlier neuroview does not record it (refused without it)."""
        kind, tensors, meta = saving.load(path, list(Explanation._KINDS) + ["Explanation"], device=device)
        kind = Explanation._KINDS.get(kind, Explanation)
        if not issubclass(kind, cls):
            raise TypeError(f"path: holds a {kind.__name__}, expected a {cls.__name__}; use Explanation.load")
        if window is not None and not issubclass(kind, RNNExplanation):
            raise ValueError(f"window: {str(path)!r} holds a {kind.__name__}, which has no steps; leave window out")
        return built(kind, kind._from_state(tensors, meta, window), saving.paths(path, writing=False)[0])


@public_names
@dataclass(repr=False, eq=False)
class CNNExplanation(Explanation):
    """Per-unit explanation of a NeuroView-CNN.

    ``codes`` is ``[B, U]``, ``weight`` ``[C, U]``; ``units[u]`` is the ``(site name, channel)``
    of unit ``u``; ``site_slices[name]`` the slice of the code vector that belongs to a site;
    ``code_maps[name]`` (when asked for) the code of each unit at each position,
    ``[B, C_s, *positions]`` (units first, whatever the site's own layout: a token site's map is
    over its tokens).
    """

    units: list[tuple[str, int]] = field(default_factory=list)
    site_slices: dict[str, slice] = field(default_factory=dict)
    code_maps: dict[str, Tensor] | None = None

    def by_site(self, target: Tensor | int | None = None) -> Tensor:
        """Contributions summed per site (in site order, see ``site_slices``): ``[B, C, S]`` for
        every class, one ``[B, U_s] x [U_s, C]`` product per site (no dense tensor), or ``[B, S]``
        for ``target``'s class (see :meth:`for_class`)."""
        if target is not None:
            src = self.for_class(target)
            return torch.stack([src[..., s].sum(-1) for s in self.site_slices.values()], -1)
        if self._contributions is not None:
            return torch.stack([self._contributions[..., s].sum(-1) for s in self.site_slices.values()], -1)
        d = self._delta()  # against the baseline, as for_class: the sites then sum to the logit with bias
        return torch.stack([product("bu,cu->bc", d[:, s], self.weight[:, s]) for s in self.site_slices.values()], -1)

    def site_magnitudes(self) -> Tensor:
        """``[B, C, S]``: the sum of ``|contributions|`` of each site, one product per site
        (``|codes - baseline| @ |W|.T``), without the dense tensor."""
        if self._contributions is not None or self.codes is None or self.weight is None:  # given ones: theirs
            return torch.stack([self.contributions[..., s].abs().sum(-1) for s in self.site_slices.values()], -1)
        d, w = self._delta().abs(), self.weight.abs()
        return torch.stack([product("bu,cu->bc", d[:, s], w[:, s]) for s in self.site_slices.values()], -1)

    def topk(self, k: int = 5, target: Tensor | int | None = None) -> tuple[Tensor, list[list[tuple[str, int]]]]:
        """The ``k`` units adding most to each sample's ``target`` logit: values ``[B, min(k, U)]``, units (site, channel).
        Largest signed contribution first (k90, the waterfall: by |value|), ties to the lower unit (``topk(k)`` starts
        ``topk(k + 1)``); a unit adding exactly 0 (unread, off, at its baseline) after every other one, its value 0."""
        k = positive_int(k, "k")  # 0 gave empty rows, -1 torch's bare "selected index k out of range"
        contrib = self.for_class(target)  # zeros came above negative ones, in torch's order of ties (not by index)
        if contrib.dtype not in (torch.float32, torch.bfloat16, torch.float16):  # float64: two stable sorts of all U
            order = contrib.sort(dim=-1, descending=True, stable=True).indices  # NaN first, as topk; -0.0 is a zero: then
            zero = (contrib == 0).gather(-1, order).byte()  # the zeros last, each part kept in its order (ties by index)
            order = order.gather(-1, zero.sort(dim=-1, stable=True).indices)[..., :k]  # k above U: all U of them
        else:  # one torch.topk (the two sorts took 25x its time at U = 8192) of a key unique per unit, in the same order:
            s = contrib.detach().float().view(torch.int32)  # the value's float32 bits, as an int of the same order
            s = (s ^ ((s >> 31) & 0x7FFFFFFF)).masked_fill_(contrib.isnan(), 2 ** 31 - 1)  # (negatives flipped); NaN first,
            key = s.masked_fill_(contrib == 0, -2 ** 31).long() * 2 ** 31  # exact zeros (-0.0 too) after -inf; each tie
            order = key.sub_(torch.arange(key.shape[-1], device=key.device)).topk(min(k, key.shape[-1]), -1).indices  # by index
        return contrib.gather(-1, order), [[self.units[i] for i in r] for r in order.tolist()]

    def spatial_map(self, site: str, target: Tensor | int | None = None) -> Tensor:
        """Per-unit, per-position contributions of ``site`` to ``target``'s logit.

        Shape ``[B, C_s, *positions]``, as ``code_maps`` (``[B, C_s, H, W]`` at a units-last site over a grid,
        ConvNeXt's ``[B, H, W, C]``; ``[B, C_s, N]`` over tokens or folded windows; ``[B, C_s, 1]`` without positions): the unit's
        code map times its weight divided by the number of positions, so ``map.flatten(2).sum(-1)`` equals the
        unit's contribution. Needs ``explain(x, maps=True)``.
        """
        if self.code_maps is None or self.weight is None:
            raise ValueError("spatial_map: this explanation has no code maps; call net.explain(x, maps=True)")
        if site not in self.code_maps:
            raise KeyError(f"site: expected one of {list(self.code_maps)}, got {site!r}")
        cmap = self.code_maps[site]
        cmap = cmap.unsqueeze(-1) if cmap.dim() == 2 else cmap  # one position: the recipe above holds there too
        sl = self.site_slices[site]
        w = self.weight[self.targets(target)][:, sl]  # [B, C_s]
        n_pos, ones = cmap[0, 0].numel(), [1] * (cmap.dim() - 2)
        if self.baseline is not None:  # the unit's baseline code, taken evenly from every position
            cmap = cmap - self.baseline[sl].reshape(1, -1, *ones)
        return cmap * (w / n_pos).reshape(*w.shape, *ones)

    def to_records(self, class_names: Sequence | None = None, *, target: Tensor | int | None = None) -> list[dict]:
        """``sample, class, site, channel, code, contribution``, one row per (sample, class, unit; ``target``: see
        :meth:`Explanation.to_records`); against a baseline also ``baseline`` before ``contribution``: every row reads
        ``contribution == weight[class, unit] * (code - baseline)`` (:func:`~neuroview.core.records.cnn_records`)."""
        return cnn_records(self, self._names(class_names), target)

    def _state(self) -> tuple[dict[str, Tensor], dict]:
        return saving.with_units(*super()._state(), self.units, self.site_slices, self.code_maps)

    @classmethod
    def _from_state(cls, t: dict[str, Tensor], meta: dict, window: int | None = None) -> dict:
        kw = super()._from_state(t, meta)
        return kw | saving.unit_fields(meta, t, kw)  # checked against the tensors


@public_names
@dataclass(repr=False, eq=False)
class _RNNFields(Explanation):
    _time_importance: Tensor | None = field(default=None, repr=False)  # [B, C, T] given; None: formed when read
    lengths: Tensor | None = None  # [B] valid *steps* (not input samples): ceil(lengths / window) of explain(lengths=)'s
    window: int = 1  # input samples per step: step t reads samples [t * window, (t + 1) * window)
    max_len: int | None = None  # input samples the network reads: its last step may end (padded) before its window's end
    input_lengths: Tensor | None = None  # [B] input samples of each series (None: all max_len long, or window 1)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.input_lengths = settled_input_lengths(self)  # checked; None at window 1, or carried and not fitting


class RNNExplanation(_RNNFields):
    """Per-time-step explanation of a NeuroView-RNN: ``codes``, the hidden states ``[B, L, D, T, H]`` (layer, direction,
    step, feature), ``weight`` ``[C, L, D, T, H]``, ``contributions`` ``[B, C, L, D, T, H]``; ``time_importance``
    ``[B, C, T]`` sums each step's over layers, directions and features, formed at its first read and kept (its rows
    for one class per sample: :meth:`steps_for_class`). Padded steps (past ``lengths``) add exactly 0 against zero
    codes, the constant ``-W baseline`` against a baseline (k90 counts them as one item)."""

    @property
    def time_importance(self) -> Tensor:
        """``[B, C, T]``: the one given, else summed from given contributions (set, passed in, or alone), else formed
        from codes and weight at the first read and kept, the same tensor at later reads (memory only once read: at
        1,000 classes 488 MiB beside 4 MiB of codes); formed again where it, the codes, weight or baseline were edited
        or replaced. Saved and pickled where given (passed in or set), not where formed."""
        if self._time_importance is not None or self._contributions is not None or self.codes is None:
            return self._time_importance if self._time_importance is not None else self.contributions.sum(dim=(2, 3, 5))
        sources, kept = (self.codes, self.weight, self.baseline), self.__dict__.get("_kept")
        if kept and all(a is b for a, b in zip(kept[0], sources)) and versions(*sources, kept[1]) == kept[2]:
            return kept[1]
        b, n, (t, h) = len(self.codes), self.codes.shape[1] * self.codes.shape[2], self.codes.shape[3:]
        ti = product("bkth,ckth->bct", self._delta().reshape(b, n, t, h), self.weight.reshape(-1, n, t, h))  # explain()'s too
        # (not kept: a tensor that keeps no edit count, an inference tensor, or one in a graph a backward would free)
        self.__dict__["_kept"] = (sources, ti, v) if (v := versions(*sources, ti)) and not ti.requires_grad else None
        return ti

    @time_importance.setter
    def time_importance(self, value: Tensor | None) -> None:  # given: kept (and saved where nothing rebuilds it)
        check_set(self, "time_importance", value)
        self._time_importance = value

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_kept"}  # formed again where read

    def __setstate__(self, state: dict) -> None:  # pickled before d288c6c: explain's tensor was the field itself
        old = {} if "_time_importance" in state else {"_time_importance": state.get("time_importance")}
        super().__setstate__(held({k: v for k, v in state.items() if k != "time_importance"} | old))  # bias recorded

    def steps_for_class(self, target: Tensor | int | None = None) -> Tensor:
        """``[B, T]``: each step's contributions to ``target``'s class (see :meth:`for_class`): rows of
        :attr:`time_importance` (formed once, kept), so that ``k90`` / ``top_share(level="steps")`` read, to the bit,
        the numbers it shows (summed apart they were 1e-8 off: a count at the 90% boundary could differ)."""
        t = self.targets(target)
        return self.time_importance[torch.arange(len(t), device=t.device), t]

    def _items(self, target: Tensor | int | None, level: str = "features") -> Tensor:
        """``[B, N]``: the steps (hidden states) of each series apart, all its padding as one item, their sum (against
        a baseline each padded step adds ``-W baseline``: no step the series had; bias + items is still the logit)."""
        if level not in ("features", "steps"):
            raise ValueError(f"level: expected 'features' (hidden states) or 'steps', got {level!r}")
        if level == "steps":
            return fold_padding(self.steps_for_class(target), self.lengths, 1)
        return fold_padding(self.for_class(target), self.lengths, 3)  # [B, L, D, T, H]: steps on dim 3

    def layer_time(self) -> Tensor:
        """``[B, C, L, T]``: per-layer, per-step contributions (both directions summed)."""
        if self._contributions is not None or self.codes is None:
            return self.contributions.sum(dim=(3, 5))
        return product("bldth,cldth->bclt", self._delta(), self.weight)

    def direction_time(self, target: Tensor | int | None = None) -> Tensor:
        """``[B, C, L, D, T]``: per-layer, per-direction, per-step contributions; ``[B, L, D, T]`` to ``target``'s class
        (as :meth:`for_class`), without ``[B, C, ...]``: its rows to float rounding (summed in another order)."""
        if target is not None or self._contributions is not None or self.codes is None:  # summed over the features
            return (self.contributions if target is None else self.for_class(target)).sum(dim=-1)
        return product("bldth,cldth->bcldt", self._delta(), self.weight)

    def layer_magnitudes(self) -> Tensor:
        """``[B, C, L]``: the sum of ``|contributions|`` of each layer, without the dense tensor."""
        if self._contributions is not None or self.codes is None or self.weight is None:  # given ones: theirs
            return self.contributions.abs().sum(dim=(3, 4, 5))
        return product("blf,clf->bcl", self._delta().abs().flatten(2), self.weight.abs().flatten(2))

    def to_records(self, class_names: Sequence | None = None, *, target: Tensor | int | None = None) -> list[dict]:
        """``sample, class, layer, direction, step, contribution`` (summed over hidden features; ``target``: see
        :meth:`Explanation.to_records`); ``input_samples`` after ``step`` where a step reads a ``window`` of them (cut at
        the series' end, ``"padding"`` past it); against a baseline, ``padding`` (True past the series' end) before
        ``contribution`` (``records.rnn_records``)."""
        return rnn_records(self, self._names(class_names), target)

    def _state(self) -> tuple[dict[str, Tensor], dict]:
        tensors, meta = super()._state()  # a given time_importance kept, a formed one left to codes and weight
        if self._time_importance is not None and self.codes is not None and self.weight is not None:
            meta = meta | {"given": meta.get("given", []) + ["time_importance"]}
        return saving.with_steps(tensors, meta, self.lengths, self._time_importance, self.window, self.max_len,
                                 self.input_lengths)

    @classmethod
    def _from_state(cls, t: dict[str, Tensor], meta: dict, window: int | None = None) -> dict:
        return super()._from_state(t, meta) | {k: t.get(k) for k in ("time_importance", "lengths", "input_lengths")} | saving.steps(meta, window)
