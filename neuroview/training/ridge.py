"""The global classifier fitted in closed form: a ridge, its penalty chosen by leave-one-out.

:func:`fit_ridge_head` freezes a NeuroView network, computes the codes (CNN) or hidden states (RNN)
of the training split once, standardizes them, and fits the global classifier as a ridge
regression onto ``+-1`` class targets (scikit-learn's ``RidgeClassifierCV``): the penalty is the
one of ``alphas`` with the lowest exact leave-one-out squared error over the training split (one
eigendecomposition of the samples' Gram matrix serves every penalty), the intercept is not
penalized. The result is one linear map over the features, so ``explain`` sums to its logits.

:func:`fit_minirocket` fits a NeuroView-MiniRocket (``nv_minirocket``) as MiniRocket is published:
the biases from the training series, then this ridge (``alphas``: 10 values from 1e-3 to 1e3);
:func:`minirocket` builds one from the data first.

>>> import torch, neuroview as nv
>>> g = torch.Generator().manual_seed(0)
>>> x = torch.randn(40, 1, 60, generator=g); y = (x[:, 0, 20:30].mean(1) > 0).long()
>>> net = nv.minirocket([(x, y)], num_features=840)
>>> net.ridge.alpha in net.ridge.alphas, net.num_units
(True, 840)

May import ``neuroview.core``, the leaf modules and the zoo's architectures.
"""

from __future__ import annotations

import copy
import math
import numbers
import sys
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .._batch import kept_generators, outside_inference_mode, refuse_lengths, unpack
from ..core._utils import as_labels, factory, named_samples, require_finite, require_neuroview
from ..core.cnn import NeuroViewCNN
from .classes_checked import classes_checked
from .sparse_checks import ONE_BASED, check_label_range, check_labels, counted_from_1
from .sparsify import _batches, _features, derived_cfg

__all__ = ["ALPHAS", "RidgeFit", "fit_ridge_head", "fit_minirocket", "minirocket", "ridge_loo"]

#: MiniRocket's penalties: ``numpy.logspace(-3, 3, 10)``
ALPHAS = tuple(float(a) for a in torch.logspace(-3, 3, 10, dtype=torch.float64))


@dataclass(frozen=True)
class RidgeFit:
    """How the head was fitted: the penalties tried, each one's leave-one-out mean squared error,
    the one kept, and the accuracy on the training split (%)."""

    alphas: tuple[float, ...]
    loo_mse: tuple[float, ...]
    alpha: float
    train_acc: float


def ridge_loo(z: Tensor, y: Tensor, num_classes: int, alphas=ALPHAS) -> tuple[Tensor, Tensor, int, Tensor]:
    """``(W [C, F], b [C], index of the penalty kept, leave-one-out MSE of each [A])``: the ridge
    ``min ||Y - b - z W^T||^2 + alpha ||W||^2`` onto targets ``Y = +-1`` (one column per class) on
    centred features ``z [N, F]``, in float64, ``alpha`` the first of ``alphas`` with the lowest exact
    leave-one-out error ``mean(((Y - Y_hat) / (1 - h))^2)`` (``h``: the hat matrix' diagonal, the
    unpenalized intercept's ``1 / N`` included). One eigendecomposition serves every penalty: of the
    ``N x N`` Gram matrix where there are fewer samples than features, else of the ``F x F`` one
    (scikit-learn's ``RidgeClassifierCV`` chooses by shape too): 20,000 series of MiniRocket's 9,996
    features need the second."""
    z, n = z.double(), z.shape[0]
    t = 2.0 * torch.nn.functional.one_hot(y, num_classes).double() - 1.0
    ybar = t.mean(0)
    dual = n <= z.shape[1]
    lam, q = torch.linalg.eigh(z @ z.T if dual else z.T @ z)
    # eigenvalues within rounding of 0 are 0: centring leaves the Gram matrix a null direction (the intercept's,
    # ~1e-12 after rounding), whose shrink lam / (lam + a) ~1e-9 at a = 1e-3 is of the order of 1 - h itself
    # (the leave-one-out errors were off by ~1/a^2 and the penalty kept could differ from the exact LOO's)
    kept = lam > lam.shape[0] * torch.finfo(lam.dtype).eps * lam.max().clamp_min(0)
    lam = torch.where(kept, lam, torch.zeros_like(lam))
    # dual: z z^T = q diag(lam) q^T, the fit's scores q diag(lam / (lam + a)) q^T; primal: z^T z = q diag(lam)
    # q^T, u = z q, the scores u diag(1 / (lam + a)) u^T. Either way u_j (or q_j) and a shrink per eigenvalue,
    # 0 on the directions dropped above.
    u = q if dual else z @ q
    uty = u.T @ (t - ybar)
    mse = []
    for a in alphas:
        s = torch.where(kept, lam / (lam + a) if dual else 1.0 / (lam + a), torch.zeros_like(lam))
        h = (u.square() @ s + 1.0 / n).clamp_max(1 - 1e-12)
        resid = (t - ybar) - u @ (s[:, None] * uty)
        mse.append(float((resid / (1 - h)[:, None]).square().mean()))
    best = min(range(len(alphas)), key=lambda i: (mse[i], i))
    shrunk = torch.where(kept[:, None], uty / (lam + alphas[best])[:, None], torch.zeros_like(uty))
    w = z.T @ (q @ shrunk) if dual else q @ shrunk
    return w.T, ybar, best, torch.tensor(mse, dtype=torch.float64)


def _alphas(alphas) -> tuple[float, ...]:
    """``alphas`` as penalties: a lone number (a numpy or 0-d torch scalar too) or a sequence of them, each > 0."""
    lone = isinstance(alphas, numbers.Real) or (isinstance(alphas, Tensor) and alphas.dim() == 0)
    given = (alphas,) if lone and not isinstance(alphas, bool) else alphas
    try:  # a lone number was a bare "'float' object is not iterable"
        out = tuple(float(a) for a in given)
    except (TypeError, ValueError):
        out = None
    if not out or any(not 0 < a < math.inf for a in out):
        raise ValueError(f"alphas: expected one or more penalties > 0, finite (a number or a sequence of them), got {given!r}")
    return out


@outside_inference_mode
def fit_ridge_head(net: nn.Module, train, *, alphas=ALPHAS) -> nn.Module:
    """A copy of ``net`` whose global classifier is the ridge of :func:`ridge_loo` on the training
    split's standardized features; ``net`` is never changed. ``train``: a data module (its training
    split) or batches ``(x, y)`` / ``(x, lengths, y)``. ``out.ridge`` is a :class:`RidgeFit`. A training split
    without a sample of each of the network's classes is refused, as :func:`neuroview.sparsify` refuses it (the
    ridge gave such a class a fixed logit of -1: never predicted)."""
    alphas = _alphas(alphas)
    if getattr(net, "members", None) is not None and getattr(net, "classifier", None) is None:  # an Ensemble
        raise ValueError("net: an Ensemble deciding with its members' mean has no global head to fit; fit each member "
                         "(Ensemble([fit_ridge_head(m, train) for m in ens.members])), or nv.sparsify(ens, ...) for one head")
    require_neuroview(net)  # another model: a bare AttributeError on its codes
    train = classes_checked(net, train, "train")  # a data module of the classes net records, in order
    out = copy.deepcopy(net).eval()
    derived_cfg(out, "refitted_from")  # its head is another than the entry's, which its metrics describe
    batches = _batches(train, "train")
    # a loader's own generators kept here: _features sees the checked batches, no longer the loader
    with torch.random.fork_rng(devices=[]), kept_generators(batches):  # a head built at the first batch draws its
        f, y = _features(out, _one_length(out, batches), "train")  # (replaced) initial weights
    check_labels(y, out.num_classes)  # as nv.sparsify: a class never seen gets a head that never predicts it
    var, mean = torch.var_mean(f.double(), dim=0, unbiased=False)
    std = torch.where(var > 0, var.sqrt(), torch.ones_like(var))  # scikit-learn's StandardScaler
    z = (f.double() - mean) / std
    w, b, best, mse = ridge_loo(z, y, out.num_classes, alphas)
    with torch.no_grad():
        # logits = (w / std) (f - mean) + b. The head's normalization keeps the training statistics, so that
        # unit_importance(standardized=True) is the weight on each code's own scale (it read 1 where they were
        # folded into the weights); the classifier's weight is (w / std) over the normalization's eval scale
        # (its variance floored, plus eps), which gives back w / std applied to the codes
        weight = w / std
        if out.norm is not None:
            out.norm.running_mean.copy_(mean)
            out.norm.running_var.copy_(var)
            out.norm.num_batches_tracked.fill_(1)
            weight, shift = weight / out.norm.scale(torch.float64), torch.zeros_like(b)
        else:
            shift = (w / std) @ mean
        if getattr(out, "step_shared", None) is not None:
            out.step_shared.weight.zero_()  # an RNN's shared part, added to the weight: the classifier alone holds the ridge
        out.classifier.weight.copy_(weight.to(out.classifier.weight.dtype))
        out.classifier.bias.copy_((b - shift).to(out.classifier.bias.dtype))
    acc = 100.0 * float(((z @ w.T + b).argmax(1) == y).double().mean())
    for stale in ("finetuned", "sparsity_path"):  # records of a head this fit replaced (sparsify's, its fine-tuning)
        out.__dict__.pop(stale, None)
    out.ridge = RidgeFit(alphas, tuple(mse.tolist()), alphas[best], acc)
    return out


def _one_length(net: nn.Module, batches):
    """``batches`` as they come, a batch with lengths refused where ``net`` is a MiniRocket: its codes read the
    padding as data (what :func:`fit_minirocket` refuses too)."""
    for batch in batches:
        x, lengths, _ = unpack(batch)
        refuse_lengths(net, lengths, "train", x)
        yield batch


def _series(train, seed: int, dtype: torch.dtype = torch.float32, num_classes: int | None = None,
            layout: str = "channels_first") -> tuple[Tensor, Tensor | None]:
    """Every training series ``[N, C, T]`` of ``train``'s batches (in ``dtype``, the network's: MiniRocket's is float32,
    where float64 series, numpy's default, failed only after the biases were fitted) and their labels (None
    where a batch has none), in order, read once with the global RNG seeded by ``seed`` in a fork: a loader that
    shuffles from it (a ``DataLoader(shuffle=True)``) gives the same order for a seed (each bias comes from a series
    drawn by its index, as in aeon's MiniRocket), and the caller's RNG is left as it was. Bool labels: classes 0 and 1
    where ``num_classes`` (the network's, where known) is 2, else refused (``as_labels``). ``layout="channels_last"``:
    each batch ``[B, T, C]`` read as ``[B, C, T]``."""
    with _seeded(seed):
        return _read_series(train, num_classes, dtype, layout)


@contextmanager
def _seeded(seed: int):
    """The global RNG seeded with ``seed`` inside, as it was after."""
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)
        yield


def _read_series(train, num_classes: int | None, dtype: torch.dtype, layout: str) -> tuple[Tensor, Tensor | None]:
    xs, ys = [], []
    for batch in _batches(train, "train"):
        x, lengths, y = unpack(batch)
        x = torch.as_tensor(x)
        if x.dim() != 3:  # a bare IndexError at x.shape[2]
            raise ValueError(f"train: expected series [B, C, T] (channels first, as the data modules give them), got "
                             f"a batch of shape {tuple(x.shape)}" + (" (one channel: x[:, None])" if x.dim() == 2 else ""))
        x = x.transpose(1, 2) if layout == "channels_last" else x
        refuse_lengths(None, lengths, "train", x)  # None: the MiniRocket fitted (or built) from these; whole lengths pass
        with named_samples("train", len(xs), sum(len(a) for a in xs)):  # MiniRocket's own "x: ... NaN" named no sample
            require_finite(x)
        x = _in_dtype(x, dtype, len(xs), sum(len(a) for a in xs))
        if xs and x.shape[1:] != xs[0].shape[1:]:  # a bare torch.cat error
            raise ValueError(f"train: expected series of one shape [C, T] in every batch (MiniRocket reads one length), got "
                             f"{list(xs[0].shape[1:])} in the first batch and {list(x.shape[1:])} in batch {len(xs) + 1}"
                             + (" (a variable-length set: stretch its series, UCRDataModule(resample=True))"
                                if x.shape[1] == xs[0].shape[1] else ""))
        xs.append(x)
        ys.append(None if y is None else as_labels(y, "train", num_classes))
    if not xs:
        raise ValueError("train: expected at least one batch, got an empty loader")
    y = None if any(y is None for y in ys) else torch.cat(ys)
    if y is not None and len(y) and int(y.min()) < 0:  # read as num_classes = max + 1, refused as that number
        raise ValueError(f"train: labels must be class indices >= 0, got {sorted(torch.unique(y).tolist())}")
    return torch.cat(xs), y


@outside_inference_mode
def fit_minirocket(net: NeuroViewCNN, train, *, alphas=ALPHAS) -> NeuroViewCNN:
    """A copy of the NeuroView-MiniRocket ``net`` (``create_model("nv_minirocket", ...)``) with its
    biases fitted on the training series and its classifier by :func:`fit_ridge_head`."""
    from ..zoo.architectures.rocket import MiniRocket

    if not isinstance(net, NeuroViewCNN) or not isinstance(net.backbone, MiniRocket):
        raise ValueError(f"net: expected a NeuroView-CNN around MiniRocket (nv_minirocket), got {type(net).__name__}"
                         + (f" around {type(net.backbone).__name__}" if isinstance(net, NeuroViewCNN) else ""))
    train = classes_checked(net, train, "train")  # before its series become plain batches, which name no classes
    return _fit(net, *_series(train, net.backbone.seed, factory(net.backbone).get("dtype", torch.float32), net.num_classes),
                alphas)


def _fit(net: NeuroViewCNN, x: Tensor, y: Tensor | None, alphas) -> NeuroViewCNN:
    """The biases from the series ``x``, then the ridge on the same ``(x, y)``: the training split is read once."""
    out = copy.deepcopy(net)
    out.backbone.fit(x)
    return fit_ridge_head(out, [(x, y)], alphas=alphas)


@outside_inference_mode
def minirocket(train, *, num_classes: int | None = None, num_features: int = 10_000, seed: int = 0,
               alphas=ALPHAS, layout: str = "auto") -> NeuroViewCNN:
    """A NeuroView-MiniRocket fitted on ``train``: channels and length from its series, classes from
    ``num_classes`` (default: the data module's, else the largest label + 1), ``seed`` the draws. A class of those
    the training split holds no sample of is refused (naming where ``num_classes`` came from), before any fitting.
    Series of more channels than steps (``[B, 100, 12]``, as channels-last ``[B, T, C]`` series are; or as many, above
    one) are refused under ``layout="auto"``, as ``NpzDataModule`` refuses such a file (a user's own data module or
    loader included; one of neuroview's data modules, or its loader, read its file by its own ``layout`` already):
    ``layout="channels_first"`` reads them as given (channels-first sets of more channels than steps, such as UEA's
    FaceDetection, need it), ``layout="channels_last"`` transposes each batch ``[B, T, C]`` to ``[B, C, T]``."""
    from ..zoo.api import create_model

    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 32:
        raise ValueError(f"seed: expected an int in [0, 2**32) (the draws of the kernels' biases), got {seed!r}")
    _alphas(alphas)  # before the data is read and the biases fitted
    if layout not in ("auto", "channels_first", "channels_last"):
        raise ValueError(f"layout: expected 'auto', 'channels_first' or 'channels_last', got {layout!r}")
    if layout == "channels_last" and _read_by_layout(train):  # it serves [B, C, T]: transposed, steps read as channels
        raise ValueError(f"layout: {type(train).__name__} serves series channels first [B, C, T] already, got "
                         "layout='channels_last'; give the file's layout to its data module (NpzDataModule(path, "
                         "layout='channels_last')) and leave this one 'auto'")
    # read in the dtype create_model builds the network in (the default dtype): float32 series met a float64
    # network under torch.set_default_dtype(torch.float64), an error telling the user to convert x
    x, y = _series(train, seed, torch.get_default_dtype(), getattr(train, "num_classes", None) if num_classes is None
                   else num_classes, layout)
    if y is None:  # first: num_classes given (or the data module's) reads no labels either (torch.unique(None) failed)
        raise ValueError("train: expected batches (x, y) or (x, lengths, y) with labels, got bare inputs")
    if len(torch.unique(y)) < 2:  # every label 0 read as num_classes=1, refused as an argument never passed
        raise ValueError(f"train: expected samples of at least 2 classes, got only class {torch.unique(y).tolist()}")
    given = "num_classes" if num_classes is not None else "the data module's num_classes"
    if num_classes is None:
        num_classes = getattr(train, "num_classes", None) or int(y.max()) + 1
        given = given if getattr(train, "num_classes", None) else "the largest label + 1: num_classes"
    if isinstance(num_classes, int) and not isinstance(num_classes, bool):  # else create_model names it
        _check_classes(torch.unique(y).tolist(), num_classes, given)
    if not _read_by_layout(train):  # neuroview's data modules read their files by their own layout rule already
        _check_layout(x, layout)
    if x.shape[2] < 9:  # read off the series: MiniRocket's own error named input_length, an argument never passed
        raise ValueError(f"train: MiniRocket needs series of at least 9 steps (its kernels' length), got series of "
                         f"{x.shape[2]} steps (pad or resample them to 9 or more, e.g. torch.nn.functional.interpolate("
                         "x, size=9, mode='linear'))")
    with _seeded(seed):  # the standard head's initial weights (unused): one state dict for a seed
        net = create_model("nv_minirocket", num_classes=num_classes, in_channels=x.shape[1], max_len=x.shape[2],
                           num_features=num_features, seed=seed)
    return _fit(net, x, y, alphas)


def _in_dtype(x: Tensor, dtype: torch.dtype, batch: int, before: int) -> Tensor:
    """The finite batch ``x`` (number ``batch``, ``before`` samples read before it) in the network's ``dtype``; a value
    beyond its range (``1e39`` of a float64 batch, ``inf`` in float32) named by its sample, where it was refused as a
    NaN or Inf of an ``x`` never passed."""
    out = x.to(dtype)
    if not out.is_floating_point() or bool(torch.isfinite(out).all()):
        return out
    rows = (~torch.isfinite(out)).flatten(1).any(1).nonzero().flatten().tolist()
    at = [before + i for i in rows]
    top = float(x.abs().max())
    raise ValueError(f"train: sample{'s' if len(at) > 1 else ''} {at[0] if len(at) == 1 else at[:5]}"
                     f"{' and more' if len(at) > 5 else ''} (batch {batch}, counted from 0 in the order read) "
                     f"overflow{'' if len(at) > 1 else 's'} {str(dtype).removeprefix('torch.')}, the network's dtype "
                     f"(largest |value| {top:.3g}, above its {torch.finfo(dtype).max:.3g}); scale the series down (or "
                     "normalize them) first")


def _read_by_layout(train) -> bool:
    """Whether ``train`` is served by neuroview's data classes (an ``ArrayDataModule`` or one of its loaders), whose
    files were read by their own ``layout`` rule: a data module of the user's own, or its loader, has none."""
    arrays, batches = sys.modules.get("neuroview.data.arrays"), sys.modules.get("neuroview.data.batches")
    # not imported: nothing is one of theirs (and Lightning imports slowly)
    return ((arrays is not None and isinstance(train, arrays.ArrayDataModule))
            or (batches is not None and isinstance(getattr(train, "dataset", None), batches.ArrayDataset)))


def _check_layout(x: Tensor, layout: str) -> None:
    """Series ``x [N, C, T]`` of a loader refused where ``layout`` is ``"auto"`` and they hold more channels than steps
    (or as many, more than one): read so, channels-last series ``[N, T, C]`` were fitted as T channels of C steps,
    without a word (and a 3-channel set was told to stretch its 3 "steps" to 9), as ``NpzDataModule`` refuses."""
    c, t = x.shape[1], x.shape[2]
    if layout == "auto" and (c > t or c == t > 1):
        why = ("more channels than steps, as channels-last [B, T, C] series would be" if c > t else
               "as many channels as steps, which tells neither layout")
        raise ValueError(f"train: expected series [B, C, T] (channels first), got series of shape {[c, t]}: {c} channels "
                         f"of {t} steps, {why}; pass layout='channels_last' if they are [B, T, C] ({t} channels of {c} "
                         f"steps: each batch is transposed), or layout='channels_first' if they are {c} channels (UEA "
                         "sets such as FaceDetection hold more channels than steps)")


def _check_classes(held: list[int], num_classes: int, given: str) -> None:
    """:func:`minirocket`'s labels ``held`` (sorted) against ``num_classes`` (from ``given``), before the biases are
    fitted: the range first (labels 1..3 for num_classes=3 were told of an absent class 0 and to pass num_classes=3,
    the same error again), then every class held (:func:`.sparse_checks.check_labels` refuses it too, without naming
    the source). Labels 1..C-1 are told to pass ``y - 1``; the classes held as num_classes only where they are 0..k-1."""
    check_label_range(held, num_classes, f"the classes of {given}={num_classes}")
    absent = sorted(set(range(num_classes)) - set(held))
    if not absent:
        return
    got = f"train: expected samples of each of the {num_classes} classes of {given}={num_classes}, got none of "
    if counted_from_1(held, num_classes):  # read from the largest label, y - 1 makes its own count right
        with_count = "" if given.startswith("the largest") else f" with num_classes={num_classes - 1}"
        raise ValueError(f"{got}class [0] and labels 1..{num_classes - 1}: {ONE_BASED}{with_count}. A head fitted "
                         "without a class never predicts it (nv.sparsify refuses it too): if class 0 is a class of "
                         "its own, pass the whole training split")
    k = len(held)
    other = (f"or the classes it holds as num_classes={k}" if held == list(range(k)) else
             f"or number the {k} classes it holds 0..{k - 1} (torch.unique(y, return_inverse=True)[1])")
    raise ValueError(f"{got}class{'es' if len(absent) > 1 else ''} {absent[:10]}; a head fitted without them never "
                     f"predicts them (nv.sparsify refuses it too): pass the whole training split, {other}")
