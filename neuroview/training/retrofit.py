"""Retrofit: make an already trained standard network explainable, and say what it costs.

The trained network's backbone is wrapped (:func:`neuroview.core.wrap`), frozen (``requires_grad=False``; the network
comes back in eval mode: BatchNorm reads its running statistics, no dropout; ``net.train()`` turns those back on, as
for any module, and :func:`neuroview.finetune_sparse` keeps such a backbone in eval mode), and only the global linear
classifier over all unit codes (CNN) or all hidden steps (RNN) is fitted. Because the backbone no longer changes, its
codes are computed once per training sample and the classifier is fitted on them: a logistic regression (mean
cross-entropy plus ``weight_decay / 2 * ||W||^2``, the bias free) on the standardized codes, solved to convergence by
full-batch L-BFGS in float64, seconds on a CPU: the result is that objective's optimum, whatever the number of samples
or their order. The report gives the standard network's test accuracy, the NeuroView one's (both from one pass over
the test batches), and the difference: the accuracy the exact explanation costs.

>>> import torch, neuroview as nv
>>> std = nv.create_model("small_cnn", widths=(8, 16)).eval()      # pretend it is trained
>>> x, y = torch.randn(64, 1, 8, 8), torch.randint(0, 10, (64,))
>>> res = nv.retrofit(std, [(x, y)], [(x, y)])
>>> type(res.model).__name__, res.model.num_units
('NeuroViewCNN', 24)

Command line: ``neuroview retrofit small_cnn.digits`` (a zoo entry, with its own data) or
``neuroview retrofit my_weights.safetensors --arch small_cnn --data digits``. With Lightning,
the same is ``neuroview fit --config recipes/<nv recipe>.yaml --model.init_weights <weights>
--model.freeze_backbone true``, which trains the head by gradient steps through the backbone.

May import ``neuroview.core``, ``neuroview.zoo``, ``.sparsify``, ``.retrofit_checks`` and the leaf modules;
``neuroview.data`` and Lightning only inside the command line's functions (``import neuroview`` imports this module).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._batch import call_model, check_lengths, filled, kept_generators, series_input, unpack
from ..core._utils import batch_labels, factory, own_rng, positive_int
from ..core.cnn import NeuroViewCNN
from ..core.rnn import NeuroViewRNN, RNNClassifier
from ..core.wrap import wrap, wrap_rnn
from ..zoo import create_model
from ..zoo.weights import load_weights
from .classes_checked import classes_checked
from .data_arg import data_module, datamodule_for  # noqa: F401 - datamodule_for: its home before
from .retrofit_out import check_out, write_out
from .retrofit_checks import OutputCheck, check_train_labels, check_weights, standard_scores, task_classes
from .retrofit_checks import num_classes_of as _num_classes
from .sparse_checks import check_seed
from .spec_files import recorded_datamodule
from .sparsify_cli import as_option
from .sparsify import _batches, _features  # a split whole and in order (a user's module too)

__all__ = ["retrofit", "RetrofitResult", "main"]

#: what ``seed`` sets (the refusal of one out of range says it): a loader that shuffles or augments draws from it
SEED = "the global generator's seed while the batches are read"

#: the head's fit stops once no entry of the objective's gradient exceeds this (every zoo entry: 18 to 261 iterations)
TOL = 1e-6


@dataclass
class RetrofitResult:
    """What :func:`retrofit` gives back; accuracies are fractions in [0, 1] (``readability``'s is a percentage)."""

    model: nn.Module  # the NeuroView network (frozen backbone, fitted classifier), in eval mode (module docstring)
    standard_acc: float | None  # the trained network's test accuracy, a fraction (None: no test data, a bare nn.RNN/LSTM/GRU)
    neuroview_acc: float | None  # the NeuroView network's test accuracy, a fraction (0.725, not 72.5)
    train_acc: float  # the NeuroView network's accuracy on the codes it was fitted on, a fraction
    test_size: int

    @property
    def cost(self) -> float | None:
        """Accuracy points lost, ``100 * (standard_acc - neuroview_acc)`` (negative: NeuroView is more accurate)."""
        if self.standard_acc is None or self.neuroview_acc is None:
            return None
        return 100.0 * (self.standard_acc - self.neuroview_acc)

    def __str__(self) -> str:
        if self.neuroview_acc is None:
            return f"NeuroView train accuracy {100 * self.train_acc:.2f}% (no test data given)"
        if self.standard_acc is None:
            return (f"NeuroView {100 * self.neuroview_acc:.2f}% on {self.test_size} test samples (the standard network, "
                    "a bare recurrent layer, has no classifier of its own to compare)")
        return (f"standard {100 * self.standard_acc:.2f}%  NeuroView {100 * self.neuroview_acc:.2f}%  "
                f"cost of the explanation {self.cost:+.2f} points (on {self.test_size} test samples)")


def _train_codes(net: nn.Module, standard: nn.Module, train) -> tuple[Tensor, Tensor]:
    """The training split's codes (CNN) or hidden states (RNN) ``[N, F]`` and labels, checked: the standard network's
    output on the training batches (:class:`OutputCheck`), then every class of the network there (as ``fit_ridge_head``)."""
    batches, outputs = _batches(train, "train"), OutputCheck(standard, net)
    with kept_generators(batches), own_rng():  # as _features keeps them (the generator below hides the loader from it)
        feats, y = _features(net, outputs.read(filled(batches)), "train")
    outputs.check()  # after the codes: an input of another shape is named by their checks
    check_train_labels(y, net.num_classes, standard)  # after the output: a num_classes= of another task named as such
    return feats, y


@torch.no_grad()
def _test_accuracies(standard: nn.Module, net: nn.Module, batches) -> tuple[float | None, float | None, int]:
    """``(standard accuracy, NeuroView accuracy, samples)`` from one pass over the test ``batches`` (a generator,
    read once, gives both networks the same samples); the standard's is None where it is a bare nn.RNN/LSTM/GRU
    (its output is hidden states, not logits); ``(None, None, 0)`` without test data."""
    if batches is None:
        return None, None, 0
    own_head = not isinstance(standard, nn.RNNBase)
    device, right_std, right_nv, total = factory(net).get("device"), 0, 0, 0
    for batch in batches:
        x, lengths, y = unpack(batch, device)
        if isinstance(net, NeuroViewRNN):
            series_input(x, net, "test")  # a named error for series of another shape
        else:  # (x, y, other) is read as (x, lengths, y): scored against `other`, without a word
            check_lengths(lengths, x, "test")
        if y is None:
            raise ValueError("test: expected batches (x, y) or (x, lengths, y) with labels, got bare inputs")
        y = batch_labels(y, len(x), net.num_classes, "test")
        right_nv += int((call_model(net, x, lengths).argmax(-1) == y).sum())
        if own_head:  # read as its NeuroView variant reads x: a CNN whose forward takes lengths got [B, T, C]
            right_std += int((standard_scores(standard, net, x, lengths).argmax(-1) == y).sum())
        total += len(y)
    if total == 0:
        raise ValueError("test: expected at least one batch, got an empty loader")
    return (right_std / total if own_head else None), right_nv / total, total


def _check_args(model, epochs, weight_decay, seed, lr, batch_size) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a trained nn.Module, got {type(model).__name__}")
    if isinstance(model, (NeuroViewCNN, NeuroViewRNN)):
        raise TypeError(f"model: already a {type(model).__name__}; retrofit takes the standard network")
    check_weights(model)
    positive_int(epochs, "epochs")
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) or not 0 <= weight_decay < math.inf:
        raise ValueError(f"weight_decay: expected a finite number >= 0 (the L2 penalty weight_decay / 2 * ||W||^2), "
                         f"got {weight_decay!r}")
    check_seed(seed, SEED)  # torch's range, [0, 2**64), as sparsify's and explain's ([2**63, 2**64) was refused)
    unused = [k for k, v in (("lr", lr), ("batch_size", batch_size)) if v is not None]
    if unused:
        warnings.warn(f"{', '.join(unused)}: no longer used (ignored): the classifier is fitted to convergence by "
                      "full-batch L-BFGS, which takes no step size or batch size; drop the argument", FutureWarning, stacklevel=3)


def retrofit(
    model: nn.Module,
    train,
    test=None,
    *,
    num_classes: int | None = None,
    max_len: int | None = None,
    epochs: int = 1000,
    weight_decay: float = 1e-4,
    seed: int = 0,
    copy_model: bool = True,
    lr: float | None = None,
    batch_size: int | None = None,
    **wrap_kwargs,
) -> RetrofitResult:
    """Wrap a trained ``model``, freeze its backbone, fit only the global classifier, report the cost.

    Args:
        model: a trained standard network: any CNN (its activation modules become the sites), an ``nn.RNN``/
            ``nn.LSTM``/``nn.GRU`` (no classifier of its own: no standard accuracy), or an :class:`~neuroview.RNNClassifier`;
            its forward returns logits ``[B, num_classes]`` (checked on the training batches; one output ``[B, 1]``,
            ``[B]`` or a batch of one's ``[]`` is a task of 2 classes, read by its last module: an ``nn.Sigmoid``'s a
            probability, class 1 where > 0.5; an ``nn.LogSigmoid``'s a log-probability, class 1 where > log 0.5; else a
            logit, class 1 where > 0, refused where every training output lies in [0, 1] or every one is <= 0: no module
            tells a probability or a log-probability from it there), reading ``x`` as its NeuroView variant does.
        train, test: data modules of :mod:`neuroview.data`, or iterables of batches as they
            give them: ``(x, y)`` or ``(x, lengths, y)``, ``x`` channels-first (RNNs get
            ``x.transpose(1, 2)``); one batch ``(x, y)`` may be given alone. Each is read once
            (a generator or ``iter(loader)`` is fine); the test batches feed both networks in
            one pass. Training inputs are encoded once, so augmentation is not used. ``test``
            may be ``None`` (no report). Labels: class indices in ``[0, num_classes)`` (whole
            numbers stored as floats too; bools of a 2-class task as 0 and 1, of more refused), every class of the network
            in ``train``. A data module that names its classes must name those ``model`` records (a zoo entry's
            ``dataset.class_names``), in order: else the command line's error, before any work.
        num_classes: default: read from the model (``num_classes``, else its ``fc``/``classifier``/``head``:
            an nn.Linear or the last one of an nn.Sequential; a model that is an nn.Sequential: its last).
        max_len: RNNs only: the longest sequence the classifier reads.
        epochs: the most L-BFGS iterations (each a full pass over the codes); the fit stops as
            soon as no gradient entry exceeds ``1e-6`` (a warning where ``epochs`` ran out first).
        weight_decay: the L2 penalty ``weight_decay / 2 * ||W||^2`` on the classifier's weights.
        seed: an int in [0, 2**64), the global RNG's seed while the batches are read (a loader that shuffles or
            augments draws from it), in a fork: the caller's RNG is left as it was.
        copy_model: work on a deep copy, so the caller's network is never frozen or changed; the copy keeps its
            hooks (one may be part of what it computes), which then run on retrofit's batches and on the result's.
        lr, batch_size: no longer used (the AdamW fit's; a warning where given).
        wrap_kwargs: passed to :func:`neuroview.core.wrap` (``quantizer``, ``tau``, ``layers`` ...).
    """
    _check_args(model, epochs, weight_decay, seed, lr, batch_size)
    classes_checked(model, train, "train"), classes_checked(model, test, "test")  # data modules of the classes it records
    # torch.inference_mode() off (enable_grad cannot undo it): the fit's backward failed, and the copies were untrainable
    with torch.random.fork_rng(devices=[]), torch.inference_mode(False):
        standard = copy.deepcopy(model) if copy_model else model
        standard.eval()
        torch.random.default_generator.manual_seed(int(seed))  # a numpy int too
        net = _wrap_frozen(standard, num_classes, max_len, wrap_kwargs)
        feats, y = _train_codes(net, standard, train)
        _fit_head(net, feats, y, epochs=epochs, weight_decay=weight_decay)
        with torch.no_grad():
            train_acc = (net.head(feats).argmax(-1) == y).float().mean().item()
        std_acc, nv_acc, test_size = _test_accuracies(standard, net, None if test is None else _batches(test, "test"))
    return RetrofitResult(net, std_acc, nv_acc, train_acc, test_size)


def _wrap_frozen(standard: nn.Module, num_classes: int | None, max_len: int | None, wrap_kwargs: dict) -> nn.Module:
    """The NeuroView variant of ``standard`` around its very backbone, frozen and in eval mode."""
    n_cls = task_classes(standard, num_classes)
    backbone = standard.rnn if isinstance(standard, RNNClassifier) else standard
    if isinstance(backbone, nn.RNNBase) or isinstance(standard, RNNClassifier):
        if max_len is None:
            raise ValueError("max_len: an RNN's NeuroView classifier reads a fixed number of steps; pass max_len=")
        wrap_kwargs = wrap_kwargs | {"max_len": max_len}
    elif max_len is not None:
        raise ValueError(f"max_len: applies to RNNs only (the steps their classifier reads); the "
                         f"{type(standard).__name__} is not one, got max_len={max_len!r}")
    net = (wrap(backbone, n_cls, **wrap_kwargs) if backbone is standard  # an RNNClassifier's rnn (a user module
           else wrap_rnn(backbone, n_cls, like=standard, **wrap_kwargs))  # too, which wrap refuses): its window ...
    (net.rnn if isinstance(net, NeuroViewRNN) else net.backbone).requires_grad_(False)
    return net.eval()


def _fit_head(net: nn.Module, feats: Tensor, y: Tensor, *, epochs: int, weight_decay: float) -> None:
    """Fit ``net``'s global classifier on the frozen backbone's codes ``feats``: the multinomial logistic
    regression ``mean CE(z W^T + b, y) + weight_decay / 2 * ||W||^2`` on the standardized codes ``z``, from
    zero weights, by full-batch L-BFGS (strong Wolfe line search) in float64 until no gradient entry exceeds
    :data:`TOL` or ``epochs`` iterations."""
    if net.norm is not None:
        # the normalization's statistics are those of the training codes, exactly (not a running estimate)
        net.norm.running_mean.copy_(feats.mean(0))
        net.norm.running_var.copy_(feats.var(0, unbiased=False))
        net.norm.num_batches_tracked.fill_(1)
    net.eval()
    with torch.no_grad():
        z = (net.norm(feats) if net.norm is not None else feats).double()  # eval mode: the fixed standardization
        if getattr(net, "step_shared", None) is not None:
            net.step_shared.weight.zero_()  # an RNN's shared part of the weight: the classifier alone holds the fit
    w = z.new_zeros(net.num_classes, z.shape[1], requires_grad=True)
    b = z.new_zeros(net.num_classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=epochs, max_eval=2 * epochs + 10, tolerance_grad=TOL,
                            tolerance_change=0.0, history_size=20, line_search_fn="strong_wolfe")

    def objective() -> Tensor:
        opt.zero_grad(set_to_none=False)
        loss = F.cross_entropy(z @ w.T + b, y) + 0.5 * weight_decay * w.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(objective)
        objective()
    largest = max(float(w.grad.abs().max()), float(b.grad.abs().max()))
    if largest > TOL:
        warnings.warn(f"retrofit: the classifier's fit stopped after epochs={epochs} L-BFGS iterations with a gradient "
                      f"entry of {largest:.1e} (converged: <= {TOL:g}); pass a larger epochs", RuntimeWarning, stacklevel=3)
    with torch.no_grad():
        net.classifier.weight.copy_(w.to(net.classifier.weight.dtype))
        net.classifier.bias.copy_(b.to(net.classifier.bias.dtype))


# ---------------------------------------------------------------------------- CLI
def _is_entry(source: str) -> bool:
    """Whether ``source`` names a zoo entry rather than a weight file."""
    return not Path(source).exists() and not source.endswith((".safetensors", ".pt", ".pth", ".ckpt"))


def _check_folder(source: str) -> None:
    """A folder (a run's, its ``checkpoints/``, a zoo's) said as one, with a file in it to name: a ``.ckpt``, else a
    ``.safetensors`` or ``.pt`` (it was read as a weight file: --data, then --arch asked for, then none of it named)."""
    path = Path(source)
    if path.is_dir():
        from .ckpt_file import not_a_file  # noqa: PLC0415

        held = (s for s in (".ckpt", ".safetensors", ".pt", ".pth") for g in ("*", "checkpoints/*") if any(path.glob(g + s)))
        raise ValueError(f"source: expected a zoo entry, a weight file (.safetensors, .pt) or a Lightning checkpoint "
                         f"(.ckpt), got {source!r} {not_a_file(path, next(held, '.ckpt'))}")


def _load_standard(source: str, arch: str | None, arch_kwargs: dict | None):
    """``(model, what it was trained on or None)`` from a zoo entry name or a weight file: a zoo entry's ``dataset``,
    or for a Lightning checkpoint ``{"data_module": its saved spec, "class_names": its classes}``."""
    path = Path(source)
    if not _is_entry(source) and path.suffix != ".ckpt":
        if arch is None:
            raise ValueError(f"arch: a weight file ({path.name}) does not say its architecture; pass --arch (see `neuroview zoo --architectures`)")
        model = create_model(arch, **(arch_kwargs or {}))
        load_weights(model, path, what="source", pickles=True)  # a .pt state dict is read with weights_only=True
        return model, None
    given = [o for o, v in (("--arch", arch), ("--arch-kwargs", arch_kwargs)) if v is not None]
    if given:  # they were ignored, silently
        what = "a zoo entry" if _is_entry(source) else "a Lightning checkpoint, which records its own"
        raise ValueError(f"{given[0]}: applies to a .safetensors/.pt weight file only; {source} is {what}, got "
                         f"{given[0]} {arch if given[0] == '--arch' else json.dumps(arch_kwargs)}")
    if _is_entry(source):
        model = create_model(source, pretrained=True)
        return model, model.pretrained_cfg["dataset"]
    from ..data.read_as import checkpoint_classes, checkpoint_data  # noqa: PLC0415
    from .module import load_model  # noqa: PLC0415 - only Lightning checkpoints need Lightning

    return load_model(path, what="source"), {"data_module": checkpoint_data(path), "class_names": checkpoint_classes(path)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(allow_abbrev=False, prog="neuroview retrofit", description="Wrap a trained standard network, freeze its "
                                "backbone, fit only the global classifier, and report how much test accuracy the explanation costs.")
    p.add_argument("source", help="a zoo entry (e.g. small_cnn.digits) or a weight file (.safetensors, .pt state dict, Lightning .ckpt)")
    p.add_argument("--arch", help="architecture of a .safetensors/.pt file (see `neuroview zoo --architectures`)")
    p.add_argument("--arch-kwargs", default=None, help="JSON arguments of the architecture, e.g. '{\"widths\": [32, 64]}'")
    p.add_argument("--data", help="digits, mnist1d, a UCR set (GunPoint ...), a .npz, .csv or .tsv path or a JSON data-module spec; default: the "
                                         "zoo entry's (a name or path is read as the network was trained: its normalize and resample)")
    p.add_argument("--max-len", type=int, default=None, help="RNNs only: steps the classifier reads (default: the data's)")
    p.add_argument("--quantizer", default=None, help="CNNs: hard, soft or none (default: the library's)")
    p.add_argument("--epochs", type=int, default=1000, help="the most L-BFGS iterations of the classifier's fit (default 1000; it stops once converged)")
    p.add_argument("--lr", type=float, default=None, help=argparse.SUPPRESS)  # the AdamW fit's: no longer used
    p.add_argument("--seed", type=int, default=0, help=f"{SEED} (default 0; an int in [0, 2**64))")
    p.add_argument("--out", default=None, help="write the retrofitted network's weights here (.safetensors)")
    p.add_argument("--overwrite", action="store_true", help="replace --out where that file exists")
    args = p.parse_args(argv)
    try:  # before the model and data are read, as sparsify and explain check theirs
        check_seed(args.seed, SEED)
        _check_folder(args.source)  # before --data and --arch are asked for: it was read as a weight file
    except ValueError as e:
        print(f"neuroview retrofit: {as_option(str(e), {'seed': '--seed'})}", file=sys.stderr)
        return 2
    if why := check_out(args):  # before the fit: it could be the source itself, or a folder that cannot be written
        print(f"neuroview retrofit: out: {args.out} {why}", file=sys.stderr)
        return 2
    if args.data is None and not _is_entry(args.source) and not str(args.source).endswith(".ckpt"):
        p.error("--data is needed for a weight file (digits, mnist1d, GunPoint, ...); a .ckpt records its own")
    if args.lr is not None:
        print("neuroview retrofit: --lr is no longer used: the classifier is fitted to convergence by L-BFGS", file=sys.stderr)
    try:
        model, dm = _prepare(args)
        kw = {} if args.quantizer is None else {"quantizer": args.quantizer}
        res = retrofit(model, dm, dm, max_len=(args.max_len or dm.max_len) if isinstance(model, (RNNClassifier, nn.RNNBase))
                       else None, epochs=args.epochs, seed=args.seed, **kw)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as e:  # ImportError: a missing extra (aeon); an input refused by name: its message, as the other commands
        given = {"epochs": "--epochs", "seed": "--seed", "name": "--arch" if args.arch else "source"} | ({"quantizer": "--quantizer"} if args.quantizer else {})
        print(f"neuroview retrofit: {as_option(str(e), given)}", file=sys.stderr)  # the option typed, as sparsify says it
        return 2
    print(f"retrofit of {args.source}: {res}")
    return write_out(args, model, res.model, dm)


def _prepare(args) -> tuple[nn.Module, object]:
    """``(standard network, data module)`` of the command's arguments, each checked before any work: the JSON
    of ``--arch-kwargs``, ``--max-len`` on an RNN only, no more classes in the data than the network has."""
    try:
        arch_kwargs = None if args.arch_kwargs is None else json.loads(args.arch_kwargs)
    except (json.JSONDecodeError, RecursionError) as e:  # the parser's message alone named no option
        raise ValueError(f"--arch-kwargs: expected a JSON object, got {args.arch_kwargs!r} ({e})") from None
    if arch_kwargs is not None and not isinstance(arch_kwargs, dict):
        raise ValueError(f"--arch-kwargs: expected a JSON object of the architecture's arguments, got {args.arch_kwargs!r}")
    model, trained = _load_standard(args.source, args.arch, arch_kwargs)
    if args.max_len is not None and not isinstance(model, (RNNClassifier, nn.RNNBase)):
        raise ValueError(f"--max-len: applies to RNNs only (the steps their classifier reads); {args.source} is a "
                         f"{type(model).__name__}, got --max-len {args.max_len}")
    # a name or path is read as the network was trained (its normalize, resample), as explain and sparsify read it
    if args.data is None and not (trained or {}).get("data_module"):
        raise ValueError(f"--data: {args.source} records no data module it was trained on; pass --data")
    if args.data is not None:
        dm = data_module(args.data, trained)
    else:  # its training file moved: said naming the source and --data
        what = f"the {'checkpoint' if str(args.source).endswith('.ckpt') else 'zoo entry'} {args.source!r}"
        dm = recorded_datamodule(trained["data_module"], "source", what)
    if str(args.source).endswith(".ckpt"):  # its own training file, changed since fit (carved otherwise), refused
        from ..data.file_record import hold_to_checkpoint  # noqa: PLC0415

        hold_to_checkpoint(dm, args.source)
    dm.setup("fit")
    if args.data is not None:
        from ..data.read_as import check_classes  # noqa: PLC0415

        check_classes(dm, (trained or {}).get("class_names"), f"--data: {args.data}")
    have, need = _num_classes(model), getattr(dm, "num_classes", None)
    if isinstance(need, int) and need > have:
        raise ValueError(f"--data: its labels name {need} classes, the network's classifier {have}; pass the data "
                         "it was trained on (or weights of a network of as many classes)")
    return model, dm

if __name__ == "__main__":
    sys.exit(main())
