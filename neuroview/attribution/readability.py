"""How readable a network's decisions are, over a data set: k90 and the top-10 share per decision
(:meth:`neuroview.Explanation.k90`), and how many units each class reads.

k90 of one decision is the number of contributions, largest ``|value|`` first, that make up 90% of
the sum of ``|contributions|`` to the explained logit (here the predicted one); a data set's k90 is
the median over its samples. For a NeuroView-RNN a contribution is one hidden state, and
``k90_steps`` counts time steps (each the sum of its hidden states' contributions); a series' steps past its end
(padding: against a baseline each adds the constant ``-W baseline``) count as one item, their sum, in both
(``Explanation.k90``): an 8-step series never needs more than 9.

>>> import torch, neuroview as nv
>>> from torch import nn
>>> net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 8, 3), nn.ReLU()), 3, input_shape=(1, 12)).eval()
>>> r = readability(net, [(torch.randn(10, 1, 12), torch.randint(0, 3, (10,)))], baseline=None)
>>> sorted(r)
['accuracy', 'baseline', 'features', 'k90', 'samples', 'top10_share', 'units_per_class']

Imports: torch, :mod:`neuroview.core` and :mod:`neuroview._batch`.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor, nn

from .._batch import as_batches, check_lengths, filled, in_order, kept_generators, refuse_lengths, series_input, unpack
from ..core._utils import batch_labels, factory, named_samples, own_rng, require_built, require_neuroview
from ..core.rnn import NeuroViewRNN

__all__ = ["readability", "units_per_class"]


@torch.no_grad()
def units_per_class(net: nn.Module) -> Tensor:
    """``[C]`` how many features (units, hidden states) each class's logit reads: its nonzero effective weights."""
    require_neuroview(net)
    return (net.effective_classifier()[0] != 0).sum(1)


@torch.no_grad()
def readability(net: nn.Module, batches: Iterable, *, baseline: Tensor | str | None = "mean") -> dict:
    """Median k90 and top-10 share of the predicted logits over ``batches`` (``(x, y)`` or
    ``(x, lengths, y)`` as the data modules give them), the accuracy, and the mean units per class.

    ``"accuracy"`` is a *percentage* (72.5 for 29 of 40 right; None without labels), as ``SparsityPath.val_acc`` and
    ``tolerance`` (points) read; :class:`~neuroview.training.retrofit.RetrofitResult` and the deletion curves give a
    fraction (0.725). ``lengths`` count input samples (a windowed RNN's ``exp.lengths`` counts steps: not those). A
    NeuroView-CNN reads each series whole; a NeuroView-MiniRocket given padded series is refused (its codes would count
    the padding as data), as :func:`neuroview.sparsify` and :func:`neuroview.mean_codes` refuse them.

    ``baseline``: the reference the contributions are taken against (``net.explain``'s): the
    readability of a decision depends on it, so it is part of the answer.

    A DataLoader is read whole, in order and unaugmented (:func:`neuroview._batch.in_order`: a training loader's
    shuffle, dropped last batch and augmentation left out), but one that draws a random subsample
    (``RandomSampler(num_samples=k)``, or with replacement) as it draws it; the batches carry labels all or none.
    """
    require_neuroview(net)
    require_built(net)  # else its first batch builds a random head on the caller's network, and this reads it
    if hasattr(batches, "setup") and hasattr(batches, "test_dataloader"):  # a data module: which split is not ours to pick
        raise ValueError(f"batches: expected an iterable of batches (x, y) or (x, lengths, y), got a data module "
                         f"({type(batches).__name__}); pass one of its loaders, e.g. dm.test_dataloader()")
    rnn = isinstance(net, NeuroViewRNN)
    ks, shares, steps, correct, total, labelled = [], [], [], 0, 0, None
    device = factory(net).get("device")
    batches = in_order(as_batches(batches, "batches"), what="batches")  # whole and unaugmented, as mean_codes reads
    with own_rng(device), kept_generators(batches):  # a loader draws its seed from the caller's generator
        for j, batch in enumerate(batches):  # j: the batch as the user counts them, empty ones too
            if not any(True for _ in filled([batch])):  # 0 samples: no end of the data, nothing to read
                continue
            x, lengths, y = unpack(batch, device, "batches", net)  # single samples named as such, as `batches`
            if not isinstance(x, Tensor):  # an RNN's numpy batch was blamed on its layout ("expected channels-first")
                raise TypeError(f"x: expected a torch.Tensor, got {type(x).__name__} (the samples of a batch of batches; "
                                "convert them, torch.as_tensor(x), as the data modules give tensors)")
            xs = series_input(x, net, "batches") if rnn else x
            # (x, y, other) read as (x, lengths, y) scored against `other`; an RNN's own check named `lengths`
            lengths = check_lengths(lengths, x, "batches", y)
            if not rnn:  # a CNN reads each series whole; a MiniRocket's codes then count padding: refused, as by sparsify
                refuse_lengths(net, lengths, "batches", x)
            if labelled is not None and labelled != (y is not None):  # an accuracy over some of the samples
                was, now = ("with", "without") if labelled else ("without", "with")
                raise ValueError(f"batches: expected every batch to carry labels or none, got batches {was} labels, "
                                 f"then one {now} them at sample {sum(map(len, ks))}")
            labelled = y is not None
            with named_samples("batches", j, ks):  # a NaN named as a sample of the data, not in `x`
                exp = (net.explain(xs, lengths=lengths, baseline=baseline) if rnn else net.explain(x, baseline=baseline))
            ks.append(exp.k90(per_sample=True))
            shares.append(exp.top_share(10, per_sample=True))
            if rnn:
                steps.append(exp.k90(per_sample=True, level="steps"))
            if y is not None:
                y = batch_labels(y, len(exp.predicted), exp.logits.shape[1], "batches").to(exp.predicted.device)
                correct += int((exp.predicted == y).sum())
                total += len(y)
    if not ks:
        raise ValueError("batches: expected at least one batch, got none")
    k = torch.cat(ks).float()
    out = {
        "k90": float(k.quantile(0.5)),
        "top10_share": float(torch.cat(shares).float().quantile(0.5)),
        "units_per_class": float(units_per_class(net).float().mean()),
        "features": int(net.effective_classifier()[0].shape[1]),
        "accuracy": 100.0 * correct / total if total else None,
        "samples": len(k),
        "baseline": baseline if isinstance(baseline, str) or baseline is None else "tensor",
    }
    if rnn:
        out["k90_steps"] = float(torch.cat(steps).float().quantile(0.5))
        w = net.effective_classifier()[0].reshape(net.num_classes, *net.feature_shape)
        out["steps_per_class"] = float((w != 0).any(-1).any(1).any(1).sum(-1).float().mean())
    return out
