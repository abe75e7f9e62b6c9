"""The result of ``net.explain(x)``: tensors whose sums reproduce the logits exactly.

Both NeuroView families decide with one linear map, ``logits = W f(x) + b``, so every logit
splits into per-feature contributions ``W[c, i] * f_i(x)``. :class:`Explanation` holds that
split; :class:`CNNExplanation` adds the unit bookkeeping and spatial maps of NeuroView-CNN,
:class:`RNNExplanation` the time axis of NeuroView-RNN.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class Explanation:
    """Exact decomposition of a batch of logits.

    ``contributions`` has shape ``[B, C, ...]`` and satisfies
    ``contributions.flatten(2).sum(-1) + bias == logits`` to float tolerance.

    >>> exp = Explanation(torch.tensor([[1.0, 2.0]]), torch.tensor([0.5, -0.5]),
    ...                   torch.tensor([[[0.25, 0.25], [1.0, 1.5]]]), torch.ones(1, 2))
    >>> exp.residual().abs().max().item()
    0.0
    """

    logits: Tensor  # [B, C]
    bias: Tensor  # [C]
    contributions: Tensor  # [B, C, ...]
    codes: Tensor  # [B, ...]: the features the global classifier reads

    @property
    def num_classes(self) -> int:
        return self.logits.shape[1]

    @property
    def predicted(self) -> Tensor:
        """``[B]`` predicted class of each sample."""
        return self.logits.argmax(1)

    def residual(self) -> Tensor:
        """``[B, C]`` logits minus (bias + summed contributions): zero up to rounding."""
        return self.logits - (self.contributions.flatten(2).sum(-1) + self.bias)

    def for_class(self, target: Tensor | int | None = None) -> Tensor:
        """Contributions to one class per sample, ``[B, ...]``.

        ``target`` is an int (same class for all samples), a ``[B]`` tensor of classes, or
        ``None`` for each sample's predicted class.
        """
        target = self.targets(target)
        return self.contributions[torch.arange(len(target), device=target.device), target]

    def targets(self, target: Tensor | int | None = None) -> Tensor:
        """``[B]`` class per sample from an int, a ``[B]`` tensor, or ``None`` (the predicted class)."""
        b = self.logits.shape[0]
        if target is None:
            return self.predicted
        if isinstance(target, int):
            _check_class(target, self.num_classes)
            return torch.full((b,), target, dtype=torch.long, device=self.logits.device)
        target = torch.as_tensor(target, device=self.logits.device).long()
        if target.shape != (b,):
            raise ValueError(f"target: expected an int or a tensor of shape [{b}], got shape {tuple(target.shape)}")
        if len(target) and (target.min() < 0 or target.max() >= self.num_classes):
            raise ValueError(f"target: classes must lie in [0, {self.num_classes}), got {target.tolist()}")
        return target

    # Importance as data; the code lives in neuroview.attribution.export (imported late: it imports this module).
    def to_records(self, class_names=None) -> list[dict]:
        """Long table of the contributions, one dict per number (see :func:`neuroview.attribution.export.explanation_records`)."""
        from ..attribution.export import explanation_records  # noqa: PLC0415

        return explanation_records(self, class_names)

    def to_frame(self, class_names=None):
        """:meth:`to_records` as a pandas DataFrame; raises ImportError without pandas."""
        from ..attribution.export import to_frame  # noqa: PLC0415

        return to_frame(self.to_records(class_names))

    def save(self, path) -> None:
        """Write ``path`` (safetensors) and its ``.json`` sidecar, atomically; no pickle."""
        from ..attribution.export import save_explanation  # noqa: PLC0415

        save_explanation(self, path)

    @classmethod
    def load(cls, path, *, device="cpu") -> "Explanation":
        """Read what :meth:`save` wrote, as the kind of explanation that was saved."""
        from ..attribution.export import load_explanation  # noqa: PLC0415

        exp = load_explanation(path, device=device)
        if not isinstance(exp, cls):
            raise TypeError(f"path: holds a {type(exp).__name__}, expected a {cls.__name__}; use Explanation.load")
        return exp


def _check_class(c: int, num_classes: int) -> None:
    if not 0 <= c < num_classes:
        raise ValueError(f"target: expected a class index in [0, {num_classes}), got {c}")


@dataclass
class CNNExplanation(Explanation):
    """Per-unit explanation of a NeuroView-CNN.

    ``contributions`` is ``[B, C, U]``; ``units[u]`` is the ``(site name, channel)`` of unit
    ``u``; ``site_slices[name]`` the slice of the code vector that belongs to a site;
    ``code_maps[name]`` (when asked for) the code of each unit at each position, ``[B, C_s, *spatial]``.
    """

    units: list[tuple[str, int]] = field(default_factory=list)
    site_slices: dict[str, slice] = field(default_factory=dict)
    code_maps: dict[str, Tensor] | None = None
    weight: Tensor | None = None  # [C, U]: the effective global classifier weight

    def by_site(self) -> Tensor:
        """``[B, C, S]`` contributions summed per site (in site order, see ``site_slices``)."""
        return torch.stack([self.contributions[..., s].sum(-1) for s in self.site_slices.values()], -1)

    def topk(self, k: int = 5, target: Tensor | int | None = None) -> tuple[Tensor, list[list[tuple[str, int]]]]:
        """The ``k`` units that add most to ``target``'s logit for each sample.

        Returns the values ``[B, k]`` and, per sample, the ``(site, channel)`` of each unit.
        """
        vals, idx = self.for_class(target).topk(min(k, self.contributions.shape[-1]), dim=-1)
        return vals, [[self.units[i] for i in row] for row in idx.tolist()]

    def spatial_map(self, site: str, target: Tensor | int | None = None) -> Tensor:
        """Per-unit, per-position contributions of ``site`` to ``target``'s logit.

        Shape ``[B, C_s, *spatial]``: the unit's code map times its weight divided by the
        number of positions, so ``map.flatten(2).sum(-1)`` equals the unit's contribution.
        Needs ``explain(x, maps=True)``.
        """
        if self.code_maps is None or self.weight is None:
            raise ValueError("spatial_map: this explanation has no code maps; call net.explain(x, maps=True)")
        if site not in self.code_maps:
            raise KeyError(f"site: expected one of {list(self.code_maps)}, got {site!r}")
        cmap = self.code_maps[site]
        w = self.weight[self.targets(target)][:, self.site_slices[site]]  # [B, C_s]
        n_pos = cmap[0, 0].numel()
        return cmap * (w / n_pos).reshape(*w.shape, *([1] * (cmap.dim() - 2)))


@dataclass
class RNNExplanation(Explanation):
    """Per-time-step explanation of a NeuroView-RNN.

    ``contributions`` is ``[B, C, L, D, T, H]`` (layer, direction, step, hidden feature);
    ``time_importance`` is ``[B, C, T]``: the contributions of each step summed over layers,
    directions and features. Padded steps contribute exactly zero.
    """

    time_importance: Tensor | None = None  # [B, C, T]
    lengths: Tensor | None = None  # [B]
    weight: Tensor | None = field(default=None, repr=False)  # [C, L, D, T, H], when contributions are lazy

    # ``contributions`` may be passed as None together with ``weight``: the [B, C, L, D, T, H]
    # product is then formed on first use. explain() does so because that tensor dominates its
    # cost for cheap RNNs, and time_importance (a matmul) does not need it.
    @property
    def contributions(self) -> Tensor:
        if self._contributions is None:
            if self.weight is None:
                raise ValueError("contributions: this explanation holds neither contributions nor the classifier weight")
            self._contributions = self.codes[:, None] * self.weight[None]
        return self._contributions

    @contributions.setter
    def contributions(self, value: Tensor | None) -> None:
        self._contributions = value

    def layer_time(self) -> Tensor:
        """``[B, C, L, T]``: per-layer, per-step contributions (both directions summed)."""
        return self.contributions.sum(dim=(3, 5))

    def direction_time(self) -> Tensor:
        """``[B, C, L, D, T]``: per-layer, per-direction, per-step contributions."""
        return self.contributions.sum(dim=5)
