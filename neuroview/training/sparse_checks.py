"""The arguments of :func:`.sparsify.sparsify` and :func:`.sparse_finetune.finetune_sparse`, checked
with errors that name the argument, what was expected and what was given; and the dtype their batches are read in.

May import ``neuroview.core``.
"""

from __future__ import annotations

import numbers
import warnings
from contextlib import contextmanager
from contextvars import ContextVar

import torch
from torch import Tensor, nn

from .._batch import caller_stacklevel
from ..core._utils import require_built, wrapped_hint
from ..core.cnn import NeuroViewCNN
from ..core.ensemble import Ensemble
from ..core.rnn import NeuroViewRNN

__all__ = ["GROUPS", "ONE_BASED", "check_args", "check_budget", "check_built", "check_codes", "check_for_net",
           "check_head", "check_label_range", "check_labels", "check_net", "check_options", "check_path", "check_seed",
           "check_val", "check_val_labels", "counted_from_1", "read_as", "read_input", "warn_labels", "warn_unmet"]

GROUPS = ("unit", "step", "hidden")


def _kind(net: nn.Module) -> str:
    """What ``net`` is, for an error: ``Ensemble of LITE`` names the members too."""
    if isinstance(net, Ensemble):
        return f"an Ensemble of {type(net.members[0]).__name__}s"
    return type(net).__name__


def check_args(net, tolerance, groups, folds, deviance, max_k90=None, max_k90_steps=None, k90_quantile=0.5,
               max_units_per_class=None, max_steps_per_class=None, distill=None) -> str:
    """:func:`.sparsify.sparsify`'s arguments; returns the groups (the default of ``net``'s kind when None)."""
    check_net(net)
    check_built(net)
    check_head(net)  # its decisions are the reference the tolerance is measured from
    if not isinstance(folds, numbers.Integral) or isinstance(folds, bool) or folds < 2:
        raise ValueError(f"folds: expected an int >= 2, got {folds!r}")
    check_options(tolerance, groups, deviance, max_k90, max_k90_steps, k90_quantile, max_units_per_class,
                  max_steps_per_class, distill)
    check_for_net(net, groups, max_k90_steps, max_steps_per_class)
    return groups if groups is not None else ("step" if isinstance(net, NeuroViewRNN) else "unit")


def check_net(net) -> None:
    """A network :func:`.sparsify.sparsify` refits the head of (its kind only: built or not)."""
    if not _takes(net):  # one inside torch's wrappers (DDP, AveragedModel, torch.compile): the way to it named
        raise TypeError("net: expected a NeuroViewCNN, a NeuroViewRNN (nv.wrap(model, ...)) or an Ensemble of "
                        "NeuroView-CNNs" + (wrapped_hint(net, _takes) or f", got {_kind(net)}"))


def _takes(net) -> bool:
    return isinstance(net, (NeuroViewCNN, NeuroViewRNN)) or isinstance(net, Ensemble) and net.neuroview


def check_options(tolerance, groups, deviance, max_k90=None, max_k90_steps=None, k90_quantile=0.5,
                  max_units_per_class=None, max_steps_per_class=None, distill=None, seed=0) -> None:
    """:func:`.sparsify.sparsify`'s arguments that need no network: the ``Sparsify`` callback checks them when it is
    made, not after the whole fit (:func:`check_for_net` the rest, once the network is known); ``neuroview sparsify``
    before it reads the source (its ``--seed`` too)."""
    if isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Real) or not tolerance >= 0:
        raise ValueError(f"tolerance: expected accuracy points >= 0, got {tolerance!r}")
    if isinstance(deviance, bool) or not isinstance(deviance, numbers.Real) or not 0 <= deviance <= 1:
        raise ValueError(f"deviance: expected a share in [0, 1] of the path's drop in validation loss, got {deviance!r}")
    check_budget(None, max_k90, max_k90_steps, k90_quantile)
    if distill is not None and (isinstance(distill, bool) or not isinstance(distill, numbers.Real) or not 0 < distill < float("inf")):
        raise ValueError(f"distill: expected None or a temperature > 0, got {distill!r}")
    for name, value in (("max_units_per_class", max_units_per_class), ("max_steps_per_class", max_steps_per_class)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1):
            raise ValueError(f"{name}: expected None or an int >= 1, got {value!r}")
    if groups is not None and groups not in GROUPS:
        raise ValueError(f"groups: expected one of {GROUPS}, got {groups!r}")
    check_seed(seed)


def check_for_net(net, groups=None, max_k90_steps=None, max_steps_per_class=None) -> None:
    """The options that only an RNN takes, for ``net`` (built or not): refused before a fit, not after it."""
    rnn = isinstance(net, NeuroViewRNN)
    if max_k90_steps is not None and not rnn:
        raise ValueError(f"max_k90_steps: a budget in time steps needs a NeuroViewRNN, got {type(net).__name__} (use max_k90)")
    if max_steps_per_class is not None and not rnn:
        raise ValueError(f"max_steps_per_class: a cap in time steps needs a NeuroViewRNN, got {type(net).__name__} "
                         "(use max_units_per_class)")
    if groups is not None and groups != "unit" and not rnn:  # as .sparsity_path.group_ids says, once the codes were read
        raise ValueError(f"groups: a NeuroView-CNN's groups are its units ('unit'), got {groups!r}")


def check_seed(seed, what: str = "the folds' shuffle") -> None:
    """A seed: an int (a float was truncated without a word, a string failed in a bare ``int()``) in torch's range
    ``[0, 2**64)`` (``torch.Generator.manual_seed`` takes down to -2**63: -1 was the seed 2**64 - 1, recorded as -1;
    2**64 failed after the codes were computed, in torch's bare "Overflow when unpacking long long")."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"seed: expected an int ({what}), got {seed!r}")
    if not 0 <= seed < 2 ** 64:
        raise ValueError(f"seed: expected an int in [0, 2**64) ({what}), got {seed!r}")


check_built = require_built  # re-exported: sparsify's and finetune's name for it


def check_head(net, what: str = "net") -> None:
    """A ValueError naming ``what`` where ``net``'s effective classifier (its head, the normalization folded in) holds NaN
    or Inf (a diverged run's head): sparsify scored its reference from NaN logits, whose argmax reads a NaN as its class,
    so the tolerance meant nothing; finetune_sparse blamed its NaN loss on the learning rate. ``net``: built (:func:`check_built`)."""
    with torch.no_grad():
        w, b = net.effective_classifier()
    bad_w, bad_b = ~torch.isfinite(w), ~torch.isfinite(b)
    if not (bad_w.any() or bad_b.any()):
        return
    found = []
    if bad_w.any():
        c, u = (int(i) for i in bad_w.nonzero()[0])
        names = None if isinstance(net, NeuroViewRNN) else net.units  # a NeuroView-CNN's (site, channel); an RNN's features
        unit = f"unit {u} {names[u]!r}" if names is not None else f"feature {u}"
        found.append(f"{int(bad_w.sum())} of {w.numel()} weights (first: class {c}, {unit})")
    if bad_b.any():
        found.append(f"{int(bad_b.sum())} of {b.numel()} biases (first: class {int(bad_b.nonzero()[0, 0])})")
    raise ValueError(f"{what}: the global classifier (the head, its normalization folded in) holds NaN or Inf in "
                     f"{' and '.join(found)}: its decisions are no reference (argmax reads a NaN logit as its class); "
                     "check the network's weights (a diverged run: an earlier checkpoint, or a smaller learning rate)")


def check_budget(net, max_k90=None, max_k90_steps=None, k90_quantile=0.5) -> None:
    """A readability budget's arguments (:func:`.sparsify.sparsify`, :func:`.sparse_finetune.finetune_sparse`)."""
    for name, value, what in (("max_k90", max_k90, "contributions"), ("max_k90_steps", max_k90_steps, "steps")):
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 1):
            raise ValueError(f"{name}: expected None or a number of {what} per decision >= 1, got {value!r}")
    if isinstance(k90_quantile, bool) or not isinstance(k90_quantile, numbers.Real) or not 0 < k90_quantile <= 1:
        raise ValueError(f"k90_quantile: expected the share of decisions a budget holds for, in (0, 1], got {k90_quantile!r}")
    if net is not None:  # None: the values alone (:func:`check_options`); a network: finetune_sparse's ``sparse``
        check_for_net(net, max_k90_steps=max_k90_steps)
        check_head(net, "sparse")


def check_path(l1_ratio, relaxed, points, ratio, max_iter, seed) -> None:
    """The regularization path's settings (:func:`.sparsify.sparsify`): each refused by name, where a bad one
    reached torch or math bare (``points=1``: ``max(): Expected reduction dim``; ``ratio=0``: ``math domain
    error``) or fitted a useless head without a word (``relaxed=-1``: a negative ridge, one unit per class)."""
    def number(v) -> bool:
        return isinstance(v, numbers.Real) and not isinstance(v, bool) and v == v

    if l1_ratio is not None and not (number(l1_ratio) and 0 <= l1_ratio <= 1):
        raise ValueError(f"l1_ratio: expected None or the L1 share of the penalty, in [0, 1], got {l1_ratio!r}")
    if relaxed is not None and not (number(relaxed) and 0 <= relaxed < float("inf")):
        raise ValueError(f"relaxed: expected None or a ridge >= 0 for each point's refit, got {relaxed!r}")
    if isinstance(points, bool) or not isinstance(points, numbers.Integral) or points < 2:
        raise ValueError(f"points: expected an int >= 2 (the path's penalties, from no unit to the densest), got {points!r}")
    if not (number(ratio) and 0 < ratio < 1):
        raise ValueError(f"ratio: expected the path's last penalty over its first, in (0, 1), got {ratio!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 1:
        raise ValueError(f"max_iter: expected an int >= 1 (the solver's steps per point), got {max_iter!r}")
    check_seed(seed)


def check_labels(y: Tensor, num_classes: int) -> None:
    """The training split's labels: in ``[0, num_classes)``, at least 2 classes, and every class of the network (a
    head fitted without a class learns never to predict it). Labels counted from 1 (UCR's 1..C, the network sized as
    the largest label + 1) are told that the network's class 0 has no sample, and the two ways out: ``y - 1`` to a
    network of C classes (one trained on 1..C again), or samples of class 0. "pass the whole training split" was no
    fix for them, nor "pass y - 1, to a network of num_classes=C", which a trained network (retrofit's, sparsify's)
    cannot follow without training, and ``y - 1`` alone lacks class C."""
    held = sorted(torch.unique(y).tolist())
    check_label_range(held, num_classes, "the network's classes")
    if len(held) < 2:
        raise ValueError(f"train: expected samples of at least 2 classes, got only class {held}")
    absent = sorted(set(range(num_classes)) - set(held))
    if absent:
        got = f"train: expected samples of each of the network's {num_classes} classes, got none of "
        if counted_from_1(held, num_classes):
            c = num_classes - 1
            raise ValueError(f"{got}class [0] and labels 1..{c}: the network's class 0 has no sample (labels counted "
                             "from 1, the network sized as the largest label + 1?), and a head fitted without it never "
                             f"predicts it; y - 1 alone leaves class {c} without one. Pass y - 1 to a network of "
                             f"num_classes={c} (a network trained on labels 1..{c} has an output 0 nobody trained: train "
                             "it again on y - 1); or, if class 0 is a class of its own, samples of it (the whole "
                             "training split)")
        raise ValueError(f"{got}class{'es' if len(absent) > 1 else ''} {absent[:10]}; a head fitted without them never "
                         "predicts them: pass the whole training split")


#: the hint for labels counted from 1, as :func:`neuroview.core._utils.batch_labels` gives it
ONE_BASED = "labels counted from 1? pass y - 1"


def counted_from_1(held: list[int], num_classes: int) -> bool:
    """Whether the classes ``held`` (sorted) are those of ``num_classes`` counted from 1 with the count read as the
    largest label + 1: every class but 0 (labels 1..num_classes - 1)."""
    return held == list(range(1, num_classes))


def check_label_range(held: list[int], num_classes: int, whose: str, what: str = "train") -> None:
    """The labels ``held`` (sorted) in ``[0, num_classes)``; else an error naming them, with :data:`ONE_BASED` where
    they are exactly ``1 .. num_classes``. Before the absent classes: labels 1..3 for 3 classes lack class 0, and "pass
    the whole training split" was said of a label that no class of the network is. Labels 2..3 for 3 classes get no
    hint: ``y - 1`` is 1..2, told "counted from 1? pass y - 1" again (a user who had subtracted 1 already)."""
    if held and (held[0] < 0 or held[-1] >= num_classes):
        shown = f"{held[:20]}"[:-1] + (", ...]" if len(held) > 20 else "]")
        raise ValueError(f"{what}: labels must lie in [0, {num_classes}) ({whose}), got {shown}"
                         + (f" ({ONE_BASED})" if held == list(range(1, num_classes + 1)) else ""))


def warn_labels(seen: Tensor, num_classes: int, epochs: int) -> None:
    """Classes the fine-tuning's batches (:func:`.sparse_finetune.finetune_sparse`, ``seen`` their labels) never held
    in its ``epochs``, warned of: fine-tuning moves every decision toward the classes it sees (it trained on one class
    without a word). A warning, not :func:`check_labels`'s error: a few samples of one class are a use of its own."""
    absent = sorted(set(range(num_classes)) - set(torch.unique(seen).tolist()))
    if absent:
        warnings.warn(f"train: the fine-tuning's batches held no sample of class {absent} in {epochs} epoch(s) (nv.sparsify "
                      "refuses a training split without one): every decision moved toward the classes seen",
                      UserWarning, stacklevel=caller_stacklevel())


def check_val(val, batches) -> None:
    """``val`` given, and no validation batches from it: a data module that carves none (cross-validation unasked)."""
    if val is not None and batches is None:
        raise ValueError(f"val: expected validation batches, got a {type(val).__name__} that carves no validation split "
                         "(val_fraction 0); pass val=None for cross-validation on train, or a validation loader")


def check_val_labels(y: Tensor, num_classes: int, module: bool) -> None:
    """The validation labels: every class of the network, else a head that drops a class scores as well as one that
    reads it. Batches given as ``val``: refused; a data module's own split (``module``): warned, as its stratified
    split holds out none of a class too small for ``val_fraction`` (a documented use: ``sparsify(net, dm)``)."""
    absent = sorted(set(range(num_classes)) - set(torch.unique(y).tolist()))
    if not absent:
        return
    which = f"class{'es' if len(absent) > 1 else ''} {absent[:10]}"
    if not module:
        raise ValueError(f"val: expected samples of each of the network's {num_classes} classes, got none of {which} "
                         f"in its {len(y)} samples; a head scored without them may read none of their units: pass a "
                         "validation split of every class, or val=None for cross-validation on train")
    warnings.warn(f"val: the data module's validation split ({len(y)} samples) holds none of {which} of the network's "
                  f"{num_classes}: the sparse head is chosen without scoring them; pass val= batches of every class, "
                  "or val=None with a data module of no validation split (val_fraction=0) for cross-validation",
                  UserWarning, stacklevel=caller_stacklevel())


def check_codes(feats: Tensor) -> None:
    """The training split's features ``[N, F]``: a network whose codes never change (untrained, or every unit
    dead) leaves no head anything to tell the classes apart by (the path's first penalty is 0: ``math domain error``)."""
    if not bool((feats.var(0) > 0).any()):
        raise ValueError(f"train: the network's {feats.shape[1]} codes are the same for all {len(feats)} training samples "
                         "(no unit ever changes over them): no head can tell the classes apart; is the network trained?")


def warn_unmet(path) -> None:
    """Warn where the point :func:`.sparsity_path.choose_point` kept is over its readability budget (no point of
    the path met it: the smallest k90 was kept; ``path.budget_met`` records it), or, within its tolerance, misses
    the deviance rule (``path.deviance_met``; below the tolerance ``choose_point`` has warned already)."""
    i = path.chosen
    within = path.val_acc[i] >= path.reference - path.tolerance
    if path.deviance_met is False and path.budget_met is not False and within:
        loss = path.val_loss
        need = float(loss[0] - path.deviance * (loss[0] - loss.min()))
        reads = path.min_units_per_class > 0 if path.min_units_per_class is not None else path.units_per_class > 0
        wider = bool(((loss <= need) & reads).any())  # a point meets it, below the tolerance: a larger one lets it count
        warnings.warn(f"sparsify: the point kept misses the deviance rule: no point within tolerance={path.tolerance:g} "
                      f"points of the reference ({path.reference:.1f}%){' and the budget' if path.budget_met else ''} "
                      f"keeps deviance={path.deviance:g} of the path's drop in validation loss; kept the most accurate, "
                      f"{float(path.val_acc[i]):.1f}% on validation, loss {float(loss[i]):.4f} where the rule needs "
                      f"{need:.4f} (sparse.sparsity_path.deviance_met is False)"
                      + ("; a larger tolerance lets denser points that meet it count" if wider else ""),
                      UserWarning, stacklevel=caller_stacklevel())
    if path.budget_met is False:
        over = "; ".join(f"{name}: expected k90 within {m:g}{what}, the point kept has {k:g}"
                         for name, k, m, what in path._budgets() if k > m)
        warnings.warn(f"{over}. No point of the path (every class reading a unit) meets the budget: kept the one of "
                      "smallest k90 (the most accurate of those), over the budget (sparse.sparsity_path.budget_met is "
                      "False); cap every point at N units a class with max_units_per_class=N (an RNN: max_steps_per_class=N; "
                      "--max-units-per-class / --max-steps-per-class), raise the budget, or train the network to need "
                      "fewer units", UserWarning, stacklevel=caller_stacklevel())


#: the dtype a batch's floating-point ``x`` is cast to as sparsify reads it (:func:`read_as`); None: read as it comes
_READ_AS: ContextVar[torch.dtype | None] = ContextVar("neuroview_read_as", default=None)


@contextmanager
def read_as(dtype: torch.dtype | None):
    """Inside it, the batches :func:`.sparsify.sparsify` (and :func:`.sparsify.mean_codes`) read have their floating-point
    ``x`` cast to ``dtype`` (None: as they come), as Lightning casts each step's batch under ``precision="bf16-true"`` or
    ``"64-true"``: the ``Sparsify`` callback's refit. Outside it, an ``x`` of another dtype than the network's is
    refused by name, as ``net(x)`` refuses it (a cast nobody asked for is a guess)."""
    token = _READ_AS.set(dtype)
    try:
        yield
    finally:
        _READ_AS.reset(token)


def read_input(x):
    """``x`` as :func:`read_as` says to read it: cast where a dtype is set and ``x`` is floating-point, else as it is."""
    dtype = _READ_AS.get()
    return x.to(dtype) if dtype is not None and isinstance(x, Tensor) and x.is_floating_point() else x
