"""Sparsify: the same NeuroView network with a global classifier that reads few units.

A dense NeuroView decision is exact but leans on half of all units. :func:`sparsify` freezes the
backbone, computes the codes (CNN) or hidden states (RNN) of the training split once, and refits
the global classifier along a regularization path (:mod:`.glm`: L1, or a sparse group lasso whose
groups are time steps or hidden units for an RNN), from all-zero weights to nearly dense. It keeps
the sparsest point whose validation accuracy is within ``tolerance`` points of the reference, and
whose validation cross-entropy keeps ``deviance`` (99%) of the largest drop the path achieves (the
accuracy of validation carved from the training split saturates: the backbone has seen those
samples, and on small sets the first two or three units already score 100% there). 99% and
plain L1 for RNNs were chosen on held-out data (``benchmarks/sparsify_choice.py``). With
``max_k90`` (a readability budget) only points whose decisions need that few contributions count,
and the most accurate of them is kept when none meets the rule; where no point meets the budget, the
one of smallest k90, with a warning (``sparse.sparsity_path.budget_met`` False). A point counts only
where every class reads at least one unit. The reference:

- with ``val`` data (held out from the dense network's training): the dense network's own
  accuracy on it; the path is fitted on all of ``train`` and scored on ``val``;
- without it, validation is carved from the training split by ``folds``-fold cross-validation:
  every fold fits the path on the other folds and scores the held-out one; the reference is the
  path's best point where every class reads a unit, scored the same way (the dense network has seen those samples, so its own
  accuracy on them says nothing). The chosen penalty is then refitted on the whole training split.

An :class:`~neuroview.core.ensemble.Ensemble` of NeuroView-CNNs (a recipe's ``members: 5``) gets
one global head over the units of all its members in place of the mean of their own heads
(:meth:`~neuroview.core.ensemble.Ensemble.build_head`): a class then reads few units of any member.

The test split is never read. The result is still one linear map (normalization folded in at
eval), so ``explain`` still sums to the logit; ``sparse.sparsity_path`` keeps the path as data
(:class:`SparsityPath`, with ``.plot()``). The network given is never changed.

``l1_classifier`` / ``group_l1_classifier`` of the Lightning module penalize the classifier during
training instead: they shrink weights but leave most of them small and nonzero (a subgradient
step never lands on 0), so they make a decision lean on fewer units without reading fewer.

>>> import torch, neuroview as nv
>>> from torch import nn
>>> net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 16, 3), nn.ReLU()), 2, input_shape=(1, 20)).eval()
>>> x = torch.randn(60, 1, 20); y = (x[:, 0, 5:10].mean(1) > 0).long()
>>> sparse = nv.sparsify(net, [(x, y)], tolerance=5.0)
>>> sparse is not net, bool(sparse.sparsity_path.units_per_class[sparse.sparsity_path.chosen] <= 16)
(True, True)

May import ``neuroview.core`` and the leaf modules; ``neuroview.data`` and the zoo only inside the command line's functions.
"""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import Iterable

import torch
from torch import Tensor, nn

from .._batch import (check_lengths, filled, kept_generators, outside_inference_mode, own_val_split, refuse_lengths,
                      series_input, split_batches, unpack)
from ..core._utils import batch_labels, factory, named_samples, own_rng, require_finite, require_neuroview, restore_modes
from ..core.ensemble import Ensemble
from ..core.head import CodeNorm
from ..core.hooks import keep_unwrapped
from ..core.own_decision import require_codes_decide
from ..attribution.readability import units_per_class  # noqa: F401 - re-exported
from ..core.head_k90 import head_k90 as _k90  # (sparse_finetune.training_k90 reads it here)
from ..core.rnn import NeuroViewRNN
from .classes_checked import classes_checked
from .glm import iter_path, lambda_grid, relax, soft_targets
from .sparse_checks import (check_args, check_built, check_codes, check_labels, check_path, check_val, check_val_labels,
                            read_input, warn_unmet)
from .sparsity_path import (SparsityPath, Walk as _Walk, cap_weights, choose_point, group_ids, point_accuracy,  # noqa: F401
                            point_losses, point_sparsity, register_plotter, stratified_folds, walked_path)

__all__ = ["sparsify", "SparsityPath", "mean_codes", "units_per_class"]

# chosen on data no network of the study had seen (benchmarks/sparsify_choice.py): 15 of 16 zoo entries within 1 point
# of the dense network there, against 12 of 16 at 0.95
DEVIANCE = 0.99
# the relaxed refit's ridge, chosen on held-out data, 3 training seeds (benchmarks/sparsify_budget_choice.py): no budget,
# 43 of 48 runs within 1 point of the dense network (38 at 1e-2, ~39 units/class against 19); the zoo's budget, 41 (37 at 1)
RELAXED = 0.1

# ------------------------------------------------------------------- features
def _is_rnn(net: nn.Module) -> bool:
    return isinstance(net, NeuroViewRNN)


@torch.no_grad()
def derived_cfg(model: nn.Module, key: str) -> nn.Module:
    """A copy's ``pretrained_cfg``: ``{key: <the zoo entry's name>}``, not that entry's file, sha256 and metrics (another
    network's: a sparse copy read 37 units a class under the dense entry's 194); ``{key: <the file>}`` for a network
    another file was loaded into (``{"loaded_from": ...}``). A copy of a copy keeps its own."""
    from ..zoo._loaded_record import derive  # noqa: PLC0415 - the zoo's rule of its records, in one place
    return derive(model, key)  # a network loaded with another file: {key: that file} (it recorded it as loaded)


def _features(net: nn.Module, batches: Iterable, what: str, labels: bool = True,
              lengths: list | None = None) -> tuple[Tensor, Tensor | None]:
    """``(features [N, F] float32 at least, y [N])`` of every batch, in eval mode (the network's modes kept);
    ``labels=False``: batches may come without labels, and y is None. ``lengths`` (an RNN's): a list that gets each
    batch's series' lengths in steps (the steps past them are padding, one item of k90, :mod:`~neuroview.core.head_k90`)."""
    restore, unwrap, feats, ys = restore_modes(net), lambda: None, [], []  # modes (a train() override gets its call)
    try:  # everything after the hold inside: a hold never let go would keep the network's modes from coming back
        unwrap, device = keep_unwrapped(net), factory(net).get("device")  # no hooks
        net.eval()
        # no graph: frozen codes (a trained backbone's kept every batch's: 1.5 GB for 3,000 digits, fit_ridge_head)
        with own_rng(device), kept_generators(batches), torch.no_grad():  # a loader draws its seed from the caller's
            for j, batch in enumerate(filled(batches)):
                with named_samples(what, j, feats):  # a NaN named as a sample of the data, not in `x`
                    f, y = _batch_features(net, batch, device, what, labels, lengths, check=j == 0 and what == "train")
                feats.append(f), ys.append(y)  # y None without labels
    finally:
        restore(), unwrap()
    if not feats:
        raise ValueError(f"{what}: expected at least one batch, got an empty loader")
    return torch.cat(feats), torch.cat(ys) if labels else None


def _batch_features(net, batch, device, what: str, labels: bool, out=None, check=False) -> tuple[Tensor, Tensor | None]:
    """:func:`_features` of one batch; ``check``: a subclass's own forward or head must decide as its codes do."""
    x, lengths, y = unpack(batch, device, what, net)  # loaders give CPU batches; single samples named as `what`
    x = read_input(x)  # a bf16-true / 64-true run's cast, where the Sparsify callback asks for it (sparse_checks.read_as)
    if y is None and labels:
        raise ValueError(f"{what}: expected batches (x, y) or (x, lengths, y) with labels, got bare inputs")
    xs = series_input(x, net, what) if _is_rnn(net) else x
    lengths = check_lengths(lengths, x, what, y)  # (x, y, lengths) named so, not as an RNN's `lengths` of labels
    if _is_rnn(net):
        f, n = net._features(xs, lengths)  # (features(), with each series' length in steps)
        f = f.flatten(1)
        if out is not None:
            out.append(n)
    else:  # a backbone may ask for smaller batches on a CPU (MiniRocket: huge sites)
        refuse_lengths(net, lengths, what, x)  # MiniRocket's codes counted the padding as data
        step = getattr(getattr(net, "backbone", None), "cpu_batch", None) if isinstance(x, Tensor) and x.device.type == "cpu" else None
        if step and getattr(net, "check_finite", True):  # a NaN's rows named in x, not in one of its chunks
            require_finite(x)
        f = torch.cat([net.codes(x[i:i + step]) for i in range(0, len(x), step)]) if step else net.codes(x)
    f = f.to(torch.promote_types(f.dtype, torch.float32))  # float64 codes keep their mean
    if check:  # (one batch tells; a plain class pays one identity test: neuroview.core.own_decision)
        require_codes_decide(net, f, xs, lengths if _is_rnn(net) else None, what=what)
    return f, batch_labels(y, len(f), net.num_classes, what).to(f.device) if labels else None


def _batches(data, split: str, strict: str | None = None):
    """``data``'s whole ``split`` in order, unaugmented (:func:`neuroview._batch.split_batches`)."""
    return split_batches(data, split, split, strict)


def mean_codes(net: nn.Module, train) -> Tensor:
    """The training split's mean code ``[U]`` (CNN) or mean hidden states ``[L, D, T, H]`` (RNN):
    the honest baseline of ``net.explain(x, baseline=...)``. ``train`` as in :func:`sparsify` (labels
    not needed: batches of bare inputs too)."""
    require_neuroview(net)
    check_built(net)  # else its first batch builds a random head on the caller's network
    f, _ = _features(net, _batches(train, "train"), "train", labels=False)
    m = f.mean(0)
    return m.reshape(net.feature_shape) if _is_rnn(net) else m


# ------------------------------------------------------------------- the path
def _group_ids(net: nn.Module, groups: str) -> Tensor | None:
    return group_ids(net, groups, _is_rnn(net))  # (:func:`.sparsity_path.group_ids`)


#: Training samples from which the cross-validation folds' paths advance side by side: below it the
#: products are too small for the threads' hand-offs (``benchmarks/sparsify_cost.py --zoo``, 2 cores,
#: medians: nv_lite.mnist1d's 4,000 series 25.2 s -> 17.4 s, nv_small_cnn.digits' 1,295 1.56 s -> 1.53 s,
#: nv_lite.gunpoint's 50 1.5 s -> 2.6 s, nv_gru.gunpoint's 2.5 s -> 4.4 s; the heads equal to the bit).
_POOL_ROWS = 1024


@contextmanager
def _one_thread(device: torch.device, fits: int = 1, rows: int = 0):
    """On a CPU the solver runs on one thread: its products are small (samples x features in use),
    and the threads' synchronization cost more than they gave (5x slower with 2 threads on a busy
    2-core machine). Yields ``advance(paths)``, the next point of each path: with ``rows`` (training
    samples) at least :data:`_POOL_ROWS` the paths advance side by side, one Python thread each (up to
    the caller's thread count), every product still on one thread, so the points are the same to the bit."""
    threads = torch.get_num_threads()
    workers = min(fits, threads) if device.type == "cpu" and rows >= _POOL_ROWS else 1
    if device.type == "cpu":
        torch.set_num_threads(1)
    pool = ThreadPoolExecutor(workers) if workers > 1 else None
    try:
        yield (lambda paths: [next(f) for f in paths]) if pool is None else (lambda paths: list(pool.map(next, paths)))
    finally:
        if pool is not None:
            pool.shutdown()
        torch.set_num_threads(threads)


def _points(z: Tensor, y: Tensor, fit: dict, l2: float | None, cap=None):
    """The path's points one by one, each cut to the caps per class (``cap``, :func:`.sparsity_path.cap_weights`)
    and refitted on its own support (:func:`.glm.relax`) unless ``l2`` is None."""
    for w, b in iter_path(z, y, **fit):
        w = w if cap is None else cap(w)
        yield (w, b) if l2 is None else relax(z, y, w, b, l2=l2)


def _validate(net, norm, z, y, val_feats, fit, relaxed, folds, seed, cap=None, t=None):
    """``(path on all of z, validation accuracy [P], validation losses [P, N], reference, how)``:
    scored on ``val_feats`` (``(features, labels)`` of the validation batches) when there are some, else by cross-validation on ``z`` itself. Points
    are fitted to ``t`` (``[N, C]`` soft targets) where given, else to ``y``; scored against ``y``.

    The path is walked point by point (every fold in step), every one of ``fit["lambdas"]``: the rule reads the whole
    path. It stopped once the validation loss had levelled off for three points with the reference reached, and kept a
    point the rule on the whole path does not (a later, denser point lowers the least loss, the deviance rule's
    yardstick: nv_gru.italypowerdemand's 5 features a class kept 0.953 of the drop, where the rule picks 47). No
    stop is sound without the later points: their loss and their sparsity (a lasso's active set can shrink) are
    known only once they are fitted, which is the walk's cost."""
    t = y if t is None else t
    if val_feats is not None:
        vf, vy = val_feats
        with torch.no_grad():
            vz = norm(vf).float()
            # the folded, eval-mode decision, without switching the caller's network to eval
            w, b = net.effective_classifier()
            reference = 100.0 * float(((vf @ w.T.to(vf.dtype) + b.to(vf.dtype)).argmax(1) == vy).float().mean())
        how = f"{len(vy)} validation samples; reference: the dense network on them"
        fits, scored = [_points(z, t, fit, relaxed, cap)], [(vz, vy)]
    else:
        counts = torch.bincount(y)
        if len(y) < 2 * folds or int(counts[counts > 0].min()) < 2:
            raise ValueError(f"train: {len(y)} samples ({counts.tolist()} per class) are too few to carve {folds}-fold "
                             "validation from (at least 2 per class and 2 per fold); pass val= or fewer folds=")
        reference, held = None, stratified_folds(y, folds, seed)  # the path's best point, once it is walked
        how = f"{folds}-fold cross-validation on the {len(y)} training samples; reference: the path's best point"
        fits, scored = [], []
        for h in held:
            keep = torch.ones(len(y), dtype=torch.bool)
            keep[h] = False
            fits.append(_points(z[keep], t[keep], fit, relaxed, cap))
            scored.append((z[h], y[h]))
        fits.append(_points(z, t, fit, relaxed, cap))  # the path on all of the training split: the one kept
    path, accs, losses = [], [], []
    with _one_thread(z.device, len(fits), len(z)) as advance:
        for _ in fit["lambdas"]:
            pts = advance(fits)
            n = sum(len(t) for _, t in scored)
            accs.append(sum(float(point_accuracy([pt], v, t)[0]) * len(t) for pt, (v, t) in zip(pts, scored)) / n)
            losses.append(torch.cat([point_losses([pt], v, t)[0] for pt, (v, t) in zip(pts, scored)]))
            path.append(pts[-1])
    return path, torch.tensor(accs), torch.stack(losses), reference, how


def _walk(net, train, val, *, groups, l1_ratio, relaxed, points, ratio, folds, max_iter, seed, q=0.5,
          caps=(None, None), distill=None) -> _Walk:
    """The regularization path of ``net``'s head on ``train``, scored on validation (see :func:`sparsify`)."""
    check_path(l1_ratio, relaxed, points, ratio, max_iter, seed)
    classes_checked(net, train, "train"), classes_checked(net, val, "val")  # data modules of the classes net records
    once = "so that each sample is read once (a sampler drawing one twice put it in two cross-validation folds)"
    lengths: list = []
    feats, y = _features(net, _batches(train, "train", once), "train", lengths=lengths)
    check_labels(y, net.num_classes)
    check_codes(feats)
    # without val: a data module's own validation split where it has one (a neuroview one's, a user's val_dataloader)
    val_batches = (_batches(val, "val", once) if val is not None else
                   _batches(train, "val") if hasattr(train, "_loader") else own_val_split(train))
    check_val(val, val_batches)
    val_feats = None if val_batches is None else _features(net, val_batches, "val")
    if val_feats is not None:  # a data module's split may hold none of a small class: warned; batches given: refused
        module = val is None or callable(getattr(val, "val_dataloader", None))
        check_val_labels(val_feats[1], net.num_classes, module=module)
    sparse = copy.deepcopy(net).eval()
    for stale in ("finetuned", "ridge"):  # a fine-tuned or ridge-fitted network's records: its head is refitted here
        sparse.__dict__.pop(stale, None)
    derived_cfg(sparse, "sparsified_from")
    if _is_rnn(sparse):
        sparse.merge_shared()  # one weight per hidden state (shared_steps), which the path replaces
    if isinstance(sparse, Ensemble) and sparse.classifier is None:
        sparse.build_head(feats.shape[1])  # one head over every member's units, in place of their mean
    if sparse.norm is None:  # the path is fitted on standardized features; the fold keeps it one linear map
        sparse.norm = CodeNorm(feats.shape[1], device=feats.device, dtype=feats.dtype)
    with torch.autocast(feats.device.type, enabled=False):  # the solver in float32 under a caller's autocast too
        return _path(net, sparse, feats, y, val_feats, groups=groups, l1_ratio=l1_ratio, points=points, ratio=ratio,
                     fit_args=(relaxed, folds, seed), max_iter=max_iter, q=q, caps=caps, distill=distill,
                     lengths=torch.cat(lengths) if lengths else None)


def _path(net, sparse, feats, y, val_feats, *, groups, l1_ratio, points, ratio, fit_args, max_iter, q, caps,
          distill, lengths=None) -> _Walk:
    """:func:`_walk`'s path on the training features, the sparse copy's normalization set to theirs; ``lengths``: an
    RNN's training series' lengths in steps (their padding is one item of k90, as ``exp.k90`` counts it)."""
    a = float(l1_ratio) if l1_ratio is not None else 1.0
    norm = sparse.norm
    with torch.no_grad():
        norm.running_mean.copy_(feats.mean(0))
        norm.running_var.copy_(feats.var(0, unbiased=False))
        norm.num_batches_tracked.fill_(1)
        norm.eval()
        z = norm(feats).float()
    t, gid = None, _group_ids(net, groups)
    with _one_thread(z.device), torch.no_grad():  # the grid's products too: the same to the bit on any thread count
        if distill is not None:  # the dense network's own probabilities (its folded decision) in place of the labels
            w, b = net.effective_classifier()
            t = soft_targets(feats @ w.T.to(feats.dtype) + b.to(feats.dtype), distill)  # stable at a tiny T
        lambdas = lambda_grid(z, y if t is None else t, net.num_classes, groups=gid, l1_ratio=a, points=points, ratio=ratio)
    fit = dict(num_classes=net.num_classes, lambdas=lambdas, groups=gid, l1_ratio=a, max_iter=max_iter)
    steps = _group_ids(net, "step") if _is_rnn(net) else None
    cap = None if caps == (None, None) else partial(cap_weights, steps=steps, max_units=caps[0], max_steps=caps[1])
    relaxed, folds, seed = fit_args
    path, val_acc, val_loss, reference, how = _validate(net, norm, z, y, val_feats, fit, relaxed, folds, seed, cap, t)
    units, grp, fewest = point_sparsity([w for w, _ in path], gid)
    if reference is None:  # cross-validation: the path's best point, of those where every class reads a unit if any
        reference = float(val_acc[fewest > 0].max() if bool((fewest > 0).any()) else val_acc.max())
    k90 = torch.stack([_k90(pt, z, steps, lengths=lengths, level="features").float().quantile(q) for pt in path])
    k90_steps = None if steps is None else torch.stack([_k90(pt, z, steps, lengths=lengths).float().quantile(q) for pt in path])
    return _Walk(sparse, z, y, path, lambdas[: len(path)], val_acc, val_loss, k90, k90_steps, reference, how, units, grp, fewest)


@outside_inference_mode
def sparsify(net: nn.Module, train, val=None, *, tolerance: float = 1.0, groups: str | None = None,
             l1_ratio: float | None = None, relaxed: float | None = RELAXED, points: int = 25, ratio: float = 1e-2,
             folds: int = 5, max_iter: int = 300, seed: int = 0, deviance: float = DEVIANCE,
             max_k90: float | None = None, max_k90_steps: float | None = None, k90_quantile: float = 0.5,
             max_units_per_class: int | None = None, max_steps_per_class: int | None = None,
             distill: float | None = None) -> nn.Module:
    """A copy of ``net`` whose global classifier reads few units (few steps for an RNN), at least one per class
    (a class that reads none has a constant logit; where no point reads one per class, one that reads any, warned).

    Args:
        net: a trained NeuroViewCNN, NeuroViewRNN or Ensemble of NeuroView-CNNs (then one global head
            over all members' units replaces the mean of theirs), its classifier built (one wrapped lazily is
            refused until trained) and finite (NaN or Inf, a diverged run's, is refused: its decisions are the
            reference); never changed (the result is a deep copy).
        train: the training split: a data module of :mod:`neuroview.data` (its training split, unshuffled, without
            augmentation) or an iterable of batches ``(x, y)`` / ``(x, lengths, y)`` as the data modules give them.
        val: validation batches held out from ``net``'s training, of all its classes (a data module gives its
            validation split where it has one, a user's its ``val_dataloader()``); ``None``: cross-validation.
        tolerance: accuracy points the sparse head may lose against the reference on validation.
        deviance: the share of the path's largest drop in validation cross-entropy (from no unit to its best point) a
            point must keep. Validation carved from the training split saturates in accuracy (the backbone has seen
            those samples), and the loss still tells the points apart. 0.99 was chosen on held-out data
            (``benchmarks/sparsify_choice.py``: every zoo network trained with a split held out, the path walked with
            cross-validation on the rest, each rule judged on the held-out split): 15 of 16 entries within 1 point of
            the dense network at 0.99, 12 of 16 at 0.95, which reads about 40% as many units.
        max_k90: a readability budget: keep only points whose decisions need at most this many contributions for 90% of
            their evidence (the median k90 of the point's head, fitted on all of ``train``, over the training split's
            decisions: predicted logit, against the training mean code; hidden states for an RNN. k90 reads no label,
            and it matches the test split's: nv_lite.gunpoint 10 against 10, nv_lite.mnist1d 10 against 10). Among them
            the rule above, else the most accurate on validation: the budget wins over ``tolerance``, and the path's
            validation accuracy (``sparse.sparsity_path``) says what it cost. Where no point meets it, the point of
            smallest k90 (the most accurate of those), with a warning; ``sparse.sparsity_path.budget_met`` is then
            False. The zoo's CNN entries use 10.
        max_k90_steps: an RNN's budget in time steps (k90 of each step's summed hidden states, ``explain(...)
            .k90(level="steps")``); with ``max_k90`` a point meets both (the zoo's RNNs: 10 steps, 50 states).
        k90_quantile: the share of the training split's decisions a budget holds for: 0.5 the
            median decision (default), 0.9 nine in ten, 1.0 every one. A report draws single
            decisions; with the median some of them need more than the budget.
        max_units_per_class, max_steps_per_class: caps on the features (an RNN's steps) a class reads: every
            point, in every fold, is cut to them before its refit (:func:`.sparsity_path.cap_weights`).
        groups: ``"unit"`` (CNN default: each weight alone, L1), ``"step"`` (RNN default: all hidden states of one step,
            every layer and direction, so a decision reads few steps) or ``"hidden"`` (one hidden unit over every step).
        l1_ratio: the L1 share of the sparse group lasso; below 1 the group part makes a whole
            group enter at once. Default 1.0 (plain L1; groups then only count what is read),
            chosen on the same held-out data: at 0.97 five of the six RNNs read 1.4x to 4x as many
            hidden states (ArrowHead's GRU fewer), and nv_gru.basicmotions lost 12.5 points.
        relaxed: each point's weights are refitted on the units the path chose (:func:`.glm.relax`) with a fixed ridge
            ``relaxed / 2 * ||W||^2`` on the mean cross-entropy, in standardized units, in place of the path's L1
            shrinkage. Not scaled to the point's penalty: at the dense end of the path, or on few, weak units, it can
            shrink more than the path did and cost accuracy (a cross-validated reference moves with it). ``None`` keeps
            the path's own weights: compare both on validation data when in doubt. 0.1 was chosen on held-out data for
            the zoo's networks (``benchmarks/sparsify_budget_choice.py``, 16 entries x 3 seeds) over 1e-2 and 1: 41 of
            48 runs within 1 point under the zoo's budget as 1e-2, 43 against 38 without one (then reading a median 39
            units per class against 19).
        points, ratio: the path's length, and its last penalty over its first (the densest point).
        distill: a temperature: the path fits the dense network's class probabilities on the training
            split (``softmax(logits / distill)``) in place of the labels, still scored against them. None
            (default): the labels; held out, T = 1, 4, 16 kept 32, 30, 27 of 36 runs within 1 point, labels 32.
        folds, max_iter, seed: the cross-validation folds, the solver's steps per point (the dense end
            of a path on separable codes never converges: its weights grow without bound), the folds' shuffle.
    """
    groups = check_args(net, tolerance, groups, folds, deviance, max_k90, max_k90_steps, k90_quantile,
                        max_units_per_class, max_steps_per_class, distill)
    run = _walk(net, train, val, groups=groups, l1_ratio=l1_ratio, relaxed=relaxed, points=points, ratio=ratio,
                folds=folds, max_iter=max_iter, seed=seed, q=float(k90_quantile),
                caps=(max_units_per_class, max_steps_per_class), distill=distill)
    # one budget: each point's use of it (k90 over its limit, the larger of the two), within at <= 1
    use = [k / m for k, m in ((run.k90, max_k90), (run.k90_steps, max_k90_steps)) if m is not None]
    chosen = choose_point(run.val_acc, run.val_loss, run.units, run.reference, tolerance, deviance, groups=run.grp,
                          k90=torch.stack(use).amax(0) if use else None, max_k90=1.0 if use else None, fewest=run.fewest)
    sparse, (w, b), head = run.sparse, run.path[chosen], run.sparse.classifier
    with torch.no_grad():
        head.weight.copy_(w.to(head.weight.dtype)), head.bias.copy_(b.to(head.bias.dtype))
    sparse.sparsity_path = walked_path(
        run, chosen, tolerance=float(tolerance), groups=groups, max_k90=None if max_k90 is None else float(max_k90),
        max_k90_steps=None if max_k90_steps is None else float(max_k90_steps), k90_quantile=float(k90_quantile),
        max_units_per_class=max_units_per_class, max_steps_per_class=max_steps_per_class, distill=distill,
        deviance=float(deviance), folds=int(folds) if run.cross_validated else None, seed=int(seed))
    warn_unmet(sparse.sparsity_path)
    return sparse.eval()
