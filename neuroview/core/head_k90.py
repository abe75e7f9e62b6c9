"""k90 of a linear head's decisions on given features, counted as an explanation counts them.

:func:`neuroview.sparsify` scores each point of its path, a head ``(w [C, F], b [C])``, on the standardized training
features (its budgets ``max_k90`` and ``max_k90_steps``): the predicted logit's contributions against the training mean,
as ``explain(x, baseline="mean")`` gives them for the sparse network. An RNN's steps past a series' end (padding) are
one item, their sum, at either level, as ``exp.k90`` counts them (:func:`~neuroview.core.readable_items.fold_padding`):
else a path's k90 and the chosen network's ``exp.k90(level="steps")`` disagreed on padded series.

Imports only torch and core helpers.

>>> import torch
>>> w, b = torch.ones(1, 4), torch.zeros(1)
>>> x = torch.tensor([[5.0, 1.0, 1.0, 1.0]])   # one feature a step; a series of 1 step, 3 steps of padding
>>> head_k90((w, b), x, torch.arange(4)), head_k90((w, b), x, torch.arange(4), lengths=torch.tensor([1]))
(tensor([4]), tensor([2]))
"""

from __future__ import annotations

import torch
from torch import Tensor

from .readable import k_share
from .readable_items import fold_padding

__all__ = ["head_k90"]


def head_k90(point: tuple[Tensor, Tensor], x: Tensor, steps: Tensor | None = None, mean: Tensor | None = None, *,
             lengths: Tensor | None = None, level: str = "steps") -> Tensor:
    """``[N]`` k90 of each decision of the head ``point`` (``(w [C, F], b [C])``) on features ``x [N, F]``: its
    predicted logit's contributions ``w[c, i] * (x[:, i] - mean[i])`` (``mean``: 0 where None, as for standardized
    features). With ``steps`` (``[F]``, the time step of each feature) an RNN's: ``level="steps"`` counts steps, each
    the sum of its features' contributions; ``"features"`` counts features. ``lengths`` (``[N]``, in steps): each
    series' steps past its end count as one item, their sum, at either level."""
    if level not in ("steps", "features"):
        raise ValueError(f"level: expected 'steps' or 'features', got {level!r}")
    w, b = point
    cols = (w != 0).any(0)
    if not bool(cols.any()):
        return torch.zeros(len(x), dtype=torch.long)
    pred = (x @ w.T + b).argmax(1)
    c = w[pred][:, cols] * (x[:, cols] if mean is None else x[:, cols] - mean[cols])
    if steps is None:
        return k_share(c, 0.9).cpu()
    at = steps.to(c.device)[cols.to(steps.device)]  # the step of each column read
    n = None if lengths is None else torch.as_tensor(lengths).reshape(-1).to(c.device)
    if level == "steps":
        c = c.new_zeros(len(x), int(steps.max()) + 1).index_add_(1, at, c)
        return k_share(fold_padding(c, n, 1), 0.9).cpu()
    # the columns in step order: those past series n's end are then its last ones, as many as its columns at a step
    # >= lengths[n], so fold_padding reads them as padding with each series' length counted in columns
    order = at.argsort(stable=True)
    n = None if n is None else torch.searchsorted(at[order].contiguous(), n.to(at.dtype))
    return k_share(fold_padding(c[:, order], n, 1), 0.9).cpu()
