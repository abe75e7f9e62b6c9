"""Faithfulness: does removing what an importance ranking calls important hurt the decision?

Two deletion tests, each comparing NeuroView's own importance with what users would use
instead, on the same network and the same data:

- **Unit ablation** (NeuroView-CNN, :func:`unit_ablation`): units are removed *inside* the
  backbone (see :func:`ablate_units`), most important first, and accuracy and the mean
  true-class logit are recorded as more are removed. Orders: ``neuroview`` (each sample's
  exact contributions to its true class), ``neuroview_global`` (the true class's standardized
  global weights, :meth:`NeuroViewCNN.unit_importance`), ``random`` (several seeds) and, when
  captum is installed, ``layer_grad_x_act`` / ``layer_conductance`` (Captum's
  LayerGradientXActivation / LayerConductance of the same units, summed over positions).
- **Time-step deletion** (RNNs, :func:`time_step_deletion`): the most important input steps
  are replaced by a baseline (zeros or each series' mean). Orders: ``neuroview`` (each
  sample's per-step contributions), ``neuroview_global`` (:meth:`NeuroViewRNN.time_importance`),
  ``random``, ``integrated_gradients`` (Captum, summed over features per step) and
  ``permutation`` (drop of the true-class logit when a step is swapped with another sample's).

The lower the area under a curve (:meth:`DeletionCurve.auc`, fraction removed on [0, 1]),
the sooner the order found what the decision rests on.

This module ranks (the scores of every order, and the comparisons above); removing units and
steps is :mod:`~neuroview.attribution.ablation`, the post-hoc baselines
:mod:`~neuroview.attribution.baselines`, the plot :mod:`neuroview.viz.faithfulness`. Their
public names are re-exported here. Imports: torch, :mod:`neuroview.core` and its own subpackage.

>>> import torch, neuroview as nv
>>> from torch import nn
>>> from neuroview.attribution.faithfulness import unit_ablation
>>> net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), 3, input_shape=(1, 16)).eval()
>>> x, y = torch.randn(32, 1, 16), torch.randint(0, 3, (32,))
>>> res = unit_ablation(net, x, y, methods=["neuroview", "random"], seeds=[0, 1])
>>> sorted(res.curves), res.curves["neuroview"].accuracy.shape   # 4 units: 0..4 removed
(['neuroview', 'random:0', 'random:1'], torch.Size([5]))
"""

from __future__ import annotations

import operator
import warnings
from typing import Sequence

import torch
from torch import Tensor, nn

from ..core._utils import is_bool
from ..core.cnn import NeuroViewCNN
from ..core.rnn import NeuroViewRNN
from . import ablation
from .ablation import (
    DeletionCurve, DeletionCurves, ablate_units, delete_steps, order_from_scores, split_lengths, step_deletion_curve,
    step_labels, unit_deletion_curve, valid_steps,
)
from .baselines import (
    captum_unit_scores, has_captum, integrated_gradients_scores, permutation_scores, sites_called_once,
)
from .checks import check_counts, check_seeds, check_sequences, check_xy, cnn_layout, eval_mode, lengths_of

__all__ = [
    "DeletionCurve", "DeletionCurves", "ablate_units", "unit_scores", "unit_deletion_curve", "unit_ablation",
    "delete_steps", "step_scores", "samples_of_steps", "step_deletion_curve", "time_step_deletion", "order_from_scores",
    "plot_deletion_curves", "UNIT_METHODS", "STEP_METHODS",
]

UNIT_METHODS = ("neuroview", "neuroview_global", "random", "layer_grad_x_act", "layer_conductance")
STEP_METHODS = ("neuroview", "neuroview_global", "random", "integrated_gradients", "permutation")
_CAPTUM = {"layer_grad_x_act", "layer_conductance", "integrated_gradients"}
_NO_CAPTUM = "captum is not installed (pip install 'neuroview[bench]')"
#: the note ``neuroview_global`` gets on a network without normalization (``DeletionCurves.notes``)
UNSTANDARDIZED = ("the network has no normalization (normalize=False), so no running std of its codes: the "
                  "global order ranks the raw effective weights, not standardized ones")
#: the note a Captum unit order gets on a network with ``hard`` codes (``DeletionCurves.notes``)
HARD_SURROGATE = ("the network's codes are 'hard': Captum differentiates the straight-through surrogate of the "
                  "code (a sigmoid), so it attributes the soft network, not this one")


def __getattr__(name: str):
    # plot_deletion_curves moved to neuroview.viz.faithfulness (matplotlib lives in viz, above
    # this layer); the old name still answers, with the function viz registered on import.
    if name == "plot_deletion_curves":
        return ablation.plotter()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _check_methods(methods, allowed: tuple[str, ...]) -> list[str]:
    """``methods`` as a list (all of ``allowed`` when None), refusing unknown names and an empty list (no curve at all,
    an empty table or plot downstream without a word, where ``seeds=[]`` was refused)."""
    if isinstance(methods, str):  # "neuroview": one name, not its letters
        return _check_methods([methods], allowed)
    try:
        methods = list(allowed if methods is None else methods)
    except TypeError:
        raise TypeError(f"methods: expected a list of names from {allowed} or None, got {type(methods).__name__} "
                        f"{methods!r:.60}") from None
    if not methods:
        raise ValueError(f"methods: expected at least one name from {allowed}, got none; pass methods=None for all of "
                         "them")
    bad = [m for m in methods if m not in allowed]
    if bad:
        raise ValueError(f"methods: expected names from {allowed}, got {bad}")
    return methods


def _need_captum(method: str) -> None:
    # has_captum is looked up here, at call time, so that a test can patch it on this module
    if not has_captum():
        raise ImportError(f"method={method!r} needs captum (pip install 'neuroview[bench]')")


# -------------------------------------------------------------------------- unit ablation
def unit_scores(net: NeuroViewCNN, x: Tensor, y: Tensor, method: str, *, seed: int = 0, n_steps: int = 50,
                batch_size: int = 256) -> Tensor:
    """``[B, U]`` importance of each unit of a NeuroView-CNN for each sample's true class ``y`` by ``method``.

    ``neuroview``: the exact contributions ``W[y, u] * c_u(x)``; ``neuroview_global``: the
    standardized weights ``unit_importance(standardized=True)[y]``, the weight times the running
    std of the unit's code kept by the network's normalization. A network built with
    ``normalize=False`` keeps no such statistics: there these are the raw effective weights, and
    units whose codes vary on different scales (different sites) are ranked as if they varied
    alike; a UserWarning says so, and :func:`unit_ablation` notes it in ``.notes`` (:data:`UNSTANDARDIZED`);
    ``random``: uniform noise;
    ``layer_grad_x_act`` / ``layer_conductance`` (captum): the attribution of each site's
    unit (its pre-activation when the code is read from there, else its output) to ``y``,
    summed over positions (LayerConductance with ``n_steps`` and a zero baseline). On ``hard``
    codes (the default quantizer) Captum differentiates the straight-through surrogate of the
    on/off code (a sigmoid), not the step function the network computes: its scores are those
    of the ``soft`` network (LayerConductance's completeness holds for that network, not for
    this one). :func:`unit_ablation` notes it in ``.notes``. Runs in eval mode; every submodule
    is left in the mode it was in.

    >>> import torch, neuroview as nv
    >>> from torch import nn
    >>> net = nv.NeuroViewCNN(nn.Sequential(nn.Linear(4, 6), nn.ReLU()), 3).eval()
    >>> unit_scores(net, torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1]), "neuroview").shape
    torch.Size([5, 6])
    """
    if not isinstance(net, NeuroViewCNN):
        hint = " (a NeuroViewRNN's importance is per step: step_scores)" if isinstance(net, NeuroViewRNN) else ""
        raise TypeError(f"net: expected a NeuroViewCNN, got {type(net).__name__}{hint}")
    rank, layout = cnn_layout(net)
    y = check_xy(x, y, net.num_classes, rank=rank, layout=layout)  # x's rank first: one image's channels are no batch
    n_steps, batch_size = check_counts(n_steps=n_steps, batch_size=batch_size)
    if method not in UNIT_METHODS:
        raise ValueError(f"method: expected one of {UNIT_METHODS}, got {method!r}")
    with eval_mode(net):
        if method == "neuroview":
            return torch.cat([net.explain(xb).for_class(yb)
                              for xb, yb in zip(x.split(batch_size), y.split(batch_size))])
        if method == "neuroview_global":
            if net.norm is None:
                warnings.warn(f"method='neuroview_global': {UNSTANDARDIZED}", stacklevel=2)
            return net.unit_importance(standardized=True).to(x.device)[y]
        if method == "random":
            return torch.rand(len(y), net.num_units, generator=torch.Generator().manual_seed(seed)).to(x.device)
        _need_captum(method)
        why = sites_called_once(net)
        if why:
            raise ValueError(f"method={method!r}: {why}; compare on a network whose activation modules are each called once")
        return captum_unit_scores(net, x, y, method, n_steps, batch_size)


def unit_ablation(net: NeuroViewCNN, x: Tensor, y: Tensor, *, methods: Sequence[str] | None = None,
                  seeds: Sequence[int] = (0, 1, 2), steps: int = 20, n_steps: int = 50,
                  batch_size: int = 256) -> DeletionCurves:
    """Unit-ablation curves of several orders (default: every method that can run here).

    Captum methods are skipped, with the reason in ``.skipped``, when captum is not installed
    or a site module is called more than once; an explicitly requested one raises instead. On a
    network with ``hard`` codes the Captum curves that run carry :data:`HARD_SURROGATE` in
    ``.notes`` (they rank the units of the soft network; see :func:`unit_scores`), and on one
    without normalization the global order carries :data:`UNSTANDARDIZED`.
    """
    if not isinstance(net, NeuroViewCNN):
        raise TypeError(f"net: expected a NeuroViewCNN, got {type(net).__name__}")
    rank, layout = cnn_layout(net)
    check_xy(x, y, net.num_classes, rank=rank, layout=layout)
    steps, n_steps, batch_size = check_counts(steps=steps, n_steps=n_steps, batch_size=batch_size)
    explicit = methods is not None
    methods = _check_methods(methods, UNIT_METHODS)
    seeds = check_seeds(seeds, methods)
    curves, skipped, notes = {}, {}, {}
    with eval_mode(net):
        for m in methods:
            if m in _CAPTUM and not explicit:
                why = _NO_CAPTUM if not has_captum() else sites_called_once(net)
                if why:
                    skipped[m] = why
                    continue
            if m in _CAPTUM and net.quantizer == "hard":
                notes[m] = HARD_SURROGATE
            if m == "neuroview_global" and net.norm is None:
                notes[m] = UNSTANDARDIZED
            for seed in (seeds if m == "random" else [0]):
                scores = unit_scores(net, x, y, m, seed=seed, n_steps=n_steps, batch_size=batch_size)
                name = f"random:{seed}" if m == "random" else m
                curves[name] = unit_deletion_curve(net, x, y, order_from_scores(scores, seed), steps=steps,
                                                   batch_size=batch_size, method=name)
    return DeletionCurves("units", curves, skipped, notes)


# ------------------------------------------------------------------------ time steps
def step_scores(net: nn.Module, x: Tensor, y: Tensor, method: str, *, lengths: Tensor | None = None, seed: int = 0,
                baseline="zero", n_steps: int = 50, repeats: int = 1, batch_size: int = 256) -> Tensor:
    """``[B, T]`` importance of each input step of batch-first ``x [B, T, F]`` for the true class ``y``.

    ``neuroview``: each sample's exact step contributions (``explain(...).time_importance``);
    ``neuroview_global``: ``time_importance()[y]`` (the norm of the step's weights);
    ``random``; ``integrated_gradients`` (captum, from ``baseline``, summed over features);
    ``permutation``: the drop of the true-class logit when step t is swapped with the same
    step of other samples (a random permutation of the batch; ``repeats`` averaged). Steps past
    a sequence's length get ``-inf`` so they come last. The NeuroView methods need a
    NeuroViewRNN; the others take any network called as ``net(x[, lengths])`` (the labels are
    checked against ``net.num_classes``, or the width of its logits). Runs in eval mode; every
    submodule is left in the mode it was in.

    >>> import torch, neuroview as nv
    >>> from torch import nn
    >>> net = nv.NeuroViewRNN(nn.GRU(2, 4, batch_first=True), 3, max_len=10).eval()
    >>> step_scores(net, torch.randn(5, 10, 2), torch.tensor([0, 1, 2, 0, 1]), "permutation").shape
    torch.Size([5, 10])
    """
    if method not in STEP_METHODS:
        raise ValueError(f"method: expected one of {STEP_METHODS}, got {method!r}")
    n_steps, repeats, batch_size = check_counts(n_steps=n_steps, repeats=repeats, batch_size=batch_size)
    if method.startswith("neuroview") and not isinstance(net, NeuroViewRNN):
        raise TypeError(f"method={method!r}: needs a NeuroViewRNN, got {type(net).__name__}")
    check_sequences(x)  # before the labels: one series' steps are no batch (the error blamed y)
    y, lengths = step_labels(net, x, y, lengths)
    b, t, _ = x.shape
    with eval_mode(net):
        if method == "neuroview":
            with torch.no_grad():
                s = samples_of_steps(torch.cat([
                    net.explain(xb if net.batch_first else xb.transpose(0, 1), lb).time_importance[torch.arange(len(yb)), yb]
                    for xb, yb, lb in zip(x.split(batch_size), y.split(batch_size), split_lengths(lengths, b, batch_size))]),
                    net.window, t, lengths)
        elif method == "neuroview_global":
            s = samples_of_steps(net.time_importance().to(x.device)[y], net.window, t, lengths)
        elif method == "random":
            s = torch.rand(b, t, generator=torch.Generator().manual_seed(seed)).to(x.device)
        elif method == "permutation":
            s = permutation_scores(net, x, y, lengths, seed, repeats, batch_size)
        else:
            _need_captum(method)
            s = integrated_gradients_scores(net, x, y, lengths, baseline, n_steps, batch_size)
    return torch.where(valid_steps(x, lengths), s, s.new_full((), float("-inf")))


def samples_of_steps(scores: Tensor, window: int, t: int, lengths: Tensor | None = None) -> Tensor:
    """Per-step scores ``[B, steps]`` of a network that reads ``window`` samples per step, as
    per-sample scores ``[B, t]``: each sample gets its step's score over the number of real samples
    in that step (``window``, fewer in a step that runs past the ``t`` samples of the input or past
    the series' length in ``lengths``), so the real samples of a step sum to it.

    ``window`` is a positive int, ``t`` an int in ``[1, steps * window]`` (the samples the steps cover) and
    ``lengths`` (optional) one whole number (an int, or a float such as ``9.0``) of at least 1 per row of ``scores``;
    a length above ``t`` is cut to ``t`` (the first ``t`` samples of a longer series); anything else is refused by
    name. The columns past a series' length are no real samples and hold no promise (:func:`step_scores` sets them to
    ``-inf``).

    >>> samples_of_steps(torch.tensor([[3.0, 6.0]]), 3, 5).tolist()
    [[1.0, 1.0, 1.0, 3.0, 3.0]]
    """
    want = "scores: expected a tensor [B, steps] (one score per step of each series), got"
    if not isinstance(scores, Tensor):
        raise TypeError(f"{want} {type(scores).__name__}")
    if scores.dim() != 2:  # [steps] came back as [1, t], [B, steps, 1] as [B, steps, window]
        raise ValueError(f"{want} shape {tuple(scores.shape)}")
    (window,) = check_counts(window=window)
    steps = scores.shape[-1]
    t = _check_t(t, steps, window)
    if lengths is not None:  # 0 gave a step more than its score, a batch of the wrong size rows of no series
        lengths = lengths_of(_cut(lengths, t), scores.shape[0], t, scores.device, rows="row of scores", span="t")
    if window == 1:
        return scores[..., :t]
    starts = torch.arange(steps, device=scores.device) * window  # each step's first sample
    ends = torch.full((1,), t, device=scores.device) if lengths is None else lengths
    real = (ends[:, None] - starts).clamp(1, window)  # [1 or B, steps]; a step past the end: any count (it is cut)
    return (scores / real.to(scores.dtype)).repeat_interleave(window, -1)[..., :t]


def _cut(lengths, t: int):
    """``lengths`` above ``t`` cut to ``t`` and whole-number floats as ints, as before the checks (``lengths_of``
    refuses what is left: a count, a length below 1, no numbers); a fraction is refused here, by name."""
    try:
        v = torch.as_tensor(lengths)
    except (TypeError, ValueError, RuntimeError):
        return lengths
    if v.dtype.is_floating_point:
        frac = v[~(torch.isfinite(v) & (v == v.round()))]
        if frac.numel():  # 6.5 samples: no whole step count, and no guess
            raise ValueError(f"lengths: expected whole numbers of samples, got {frac[:3].tolist()[0]:g}"
                             f"{' and more' if frac.numel() > 1 else ''}")
        v = v.long()
    return v.clamp(max=t) if not (v.dtype.is_complex or v.dtype == torch.bool or v.dtype.is_floating_point) else v


def _check_t(t, steps: int, window: int) -> int:
    """``t`` as an int in ``[1, steps * window]``: more gave fewer columns than promised, 0 none."""
    try:
        n = None if is_bool(t) else operator.index(t)
    except TypeError:
        n = None
    if n is None or not 1 <= n <= steps * window:
        raise ValueError(f"t: expected an int in [1, {steps * window}] (the samples of the {steps} steps of window "
                         f"{window}), got {t!r}")
    return n


def time_step_deletion(net: nn.Module, x: Tensor, y: Tensor, *, lengths: Tensor | None = None,
                       methods: Sequence[str] | None = None, seeds: Sequence[int] = (0, 1, 2), baseline="zero",
                       steps: int = 20, n_steps: int = 50, repeats: int = 1, batch_size: int = 256) -> DeletionCurves:
    """Time-step deletion curves of several orders on batch-first ``x [B, T, F]``.

    Default methods: every one that can run (the NeuroView ones need a NeuroViewRNN,
    ``integrated_gradients`` needs captum); what was skipped, and why, is in ``.skipped``.
    """
    check_sequences(x)  # before the labels: one series' steps are no batch (the error blamed y)
    y, lengths = step_labels(net, x, y, lengths)
    steps, n_steps, repeats, batch_size = check_counts(steps=steps, n_steps=n_steps, repeats=repeats,
                                                       batch_size=batch_size)
    explicit = methods is not None
    methods = _check_methods(methods, STEP_METHODS)
    seeds = check_seeds(seeds, methods)
    curves, skipped = {}, {}
    with eval_mode(net):
        for m in methods:
            if not explicit:
                if m in _CAPTUM and not has_captum():
                    skipped[m] = _NO_CAPTUM
                    continue
                if m.startswith("neuroview") and not isinstance(net, NeuroViewRNN):
                    skipped[m] = f"needs a NeuroViewRNN, got {type(net).__name__}"
                    continue
            for seed in (seeds if m == "random" else [0]):
                scores = step_scores(net, x, y, m, lengths=lengths, seed=seed, baseline=baseline, n_steps=n_steps,
                                     repeats=repeats, batch_size=batch_size)
                name = f"random:{seed}" if m == "random" else m
                curves[name] = step_deletion_curve(net, x, y, order_from_scores(scores, seed), lengths=lengths,
                                                   baseline=baseline, steps=steps, batch_size=batch_size, method=name)
    return DeletionCurves("steps", curves, skipped)
