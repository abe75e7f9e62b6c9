"""Retrofit: make an already trained standard network explainable, and say what it costs.

The trained network's backbone is wrapped (:func:`neuroview.core.wrap`), frozen (weights *and*
BatchNorm statistics: it stays in eval mode), and only the global linear classifier over all
unit codes (CNN) or all hidden steps (RNN) is fitted. Because the backbone no longer changes,
its codes are computed once per training sample and the classifier is fitted on them: a
logistic regression, seconds on a CPU. The report gives the standard network's test accuracy,
the NeuroView one's, and the difference: the accuracy the exact explanation costs.

>>> import torch, neuroview as nv
>>> std = nv.create_model("small_cnn", widths=(8, 16)).eval()      # pretend it is trained
>>> x, y = torch.randn(64, 1, 8, 8), torch.randint(0, 10, (64,))
>>> res = nv.retrofit(std, [(x, y)], [(x, y)], epochs=5)
>>> type(res.model).__name__, res.model.num_units
('NeuroViewCNN', 24)

Command line: ``neuroview retrofit small_cnn.digits`` (a zoo entry, with its own data) or
``neuroview retrofit my_weights.safetensors --arch small_cnn --data digits``. With Lightning,
the same is ``neuroview fit --config recipes/<nv recipe>.yaml --model.init_weights <weights>
--model.freeze_backbone true``, which trains the head by gradient steps through the backbone.

May import ``neuroview.core``, ``neuroview.zoo`` and the leaf modules; ``neuroview.data`` and
Lightning only inside the command line's functions (``import neuroview`` imports this module).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import torch
import torch.nn.functional as F
from safetensors.torch import save as save_bytes
from torch import Tensor, nn

from .._batch import series_input, unpack
from .._io import atomic_write
from ..core._utils import factory
from ..core.cnn import NeuroViewCNN
from ..core.rnn import NeuroViewRNN, RNNClassifier
from ..core.wrap import wrap
from ..zoo import create_model
from ..zoo.evaluate import evaluate, make_datamodule
from ..zoo.weights import load_weights

__all__ = ["retrofit", "RetrofitResult", "main"]


@dataclass
class RetrofitResult:
    """What :func:`retrofit` gives back."""

    model: nn.Module  # the NeuroView network (frozen backbone, fitted classifier), in eval mode
    standard_acc: float | None  # the trained network's test accuracy (None without test data)
    neuroview_acc: float | None  # the NeuroView network's test accuracy
    train_acc: float  # the NeuroView network's accuracy on the codes it was fitted on
    test_size: int

    @property
    def cost(self) -> float | None:
        """Accuracy points lost to the explanation (negative: NeuroView is more accurate)."""
        if self.standard_acc is None or self.neuroview_acc is None:
            return None
        return 100.0 * (self.standard_acc - self.neuroview_acc)

    def __str__(self) -> str:
        if self.cost is None:
            return f"NeuroView train accuracy {100 * self.train_acc:.2f}% (no test data given)"
        return (f"standard {100 * self.standard_acc:.2f}%  NeuroView {100 * self.neuroview_acc:.2f}%  "
                f"cost of the explanation {self.cost:+.2f} points (on {self.test_size} test samples)")


def _num_classes(model: nn.Module) -> int:
    n = getattr(model, "num_classes", None)
    if isinstance(n, int):
        return n
    for attr in ("fc", "classifier", "head"):
        m = getattr(model, attr, None)
        if isinstance(m, nn.Linear):
            return m.out_features
    raise ValueError(f"num_classes: could not read it from the {type(model).__name__} (no num_classes, fc, classifier or head); pass num_classes=")


def _loader(data) -> Iterable:
    """A data module's whole training split, in order and without augmentation (its train_dataloader shuffles
    and drops the last partial batch: the head and its statistics missed 15 of digits' 1,295 samples);
    anything else is iterated as batches."""
    if hasattr(data, "_loader") and hasattr(data, "setup"):
        data.setup("fit")
        return data._loader("train")
    return data.train_dataloader() if hasattr(data, "train_dataloader") else data


@torch.no_grad()
def _features(net: nn.Module, loader: Iterable) -> tuple[Tensor, Tensor]:
    feats, ys, device = [], [], factory(net).get("device")
    for batch in loader:
        x, lengths, y = unpack(batch, device)
        if isinstance(net, NeuroViewRNN):
            f = net.features(series_input(x, net, "train"), lengths).flatten(1)
        else:
            f = net.codes(x)
        feats.append(f.float())
        ys.append(y)
    if not feats:
        raise ValueError("train: expected at least one batch, got an empty loader")
    return torch.cat(feats), torch.cat(ys)


def retrofit(
    model: nn.Module,
    train,
    test=None,
    *,
    num_classes: int | None = None,
    max_len: int | None = None,
    epochs: int = 100,
    lr: float = 1e-2,
    weight_decay: float = 1e-4,
    batch_size: int = 256,
    seed: int = 0,
    copy_model: bool = True,
    **wrap_kwargs,
) -> RetrofitResult:
    """Wrap a trained ``model``, freeze its backbone, fit only the global classifier, report the cost.

    Args:
        model: a trained standard network: any CNN (its activation modules become the sites),
            an ``nn.RNN``/``nn.LSTM``/``nn.GRU``, or an :class:`~neuroview.RNNClassifier`.
        train, test: data modules of :mod:`neuroview.data`, or iterables of batches as they
            give them: ``(x, y)`` or ``(x, lengths, y)``, ``x`` channels-first (RNNs get
            ``x.transpose(1, 2)``). Training inputs are encoded once, so augmentation is not
            used. ``test`` may be ``None`` (no report).
        num_classes: default: read from the model (``num_classes`` or its ``fc``/``classifier``).
        max_len: RNNs only: the longest sequence the classifier reads.
        epochs, lr, weight_decay, batch_size, seed: AdamW on the standardized codes, cosine
            schedule, deterministic for a given seed.
        copy_model: work on a deep copy, so the caller's network is never frozen or changed.
        wrap_kwargs: passed to :func:`neuroview.core.wrap` (``quantizer``, ``tau``, ``layers`` ...).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a trained nn.Module, got {type(model).__name__}")
    if isinstance(model, (NeuroViewCNN, NeuroViewRNN)):
        raise TypeError(f"model: already a {type(model).__name__}; retrofit takes the standard network")
    if epochs < 1 or not lr > 0:
        raise ValueError(f"epochs, lr: expected epochs >= 1 and lr > 0, got {epochs!r} and {lr!r}")
    standard = copy.deepcopy(model) if copy_model else model
    standard.eval()
    net = _wrap_frozen(standard, num_classes, max_len, wrap_kwargs)
    test_loader = test.test_dataloader() if hasattr(test, "test_dataloader") else test
    standard_acc, test_size = _accuracy(standard, test_loader)
    torch.manual_seed(seed)  # an iterable of batches that shuffles (a loader of your own) draws from the global RNG
    feats, y = _features(net, _loader(train))
    _fit_head(net, feats, y, epochs=epochs, lr=lr, weight_decay=weight_decay, batch_size=batch_size, seed=seed)
    with torch.no_grad():
        train_acc = (net.head(feats).argmax(-1) == y).float().mean().item()
    neuroview_acc, _ = _accuracy(net, test_loader)
    return RetrofitResult(net, standard_acc, neuroview_acc, train_acc, test_size)


def _wrap_frozen(standard: nn.Module, num_classes: int | None, max_len: int | None, wrap_kwargs: dict) -> nn.Module:
    """The NeuroView variant of ``standard`` around its very backbone, frozen and in eval mode."""
    n_cls = num_classes if num_classes is not None else _num_classes(standard)
    backbone = standard.rnn if isinstance(standard, RNNClassifier) else standard
    if isinstance(backbone, nn.RNNBase) or isinstance(standard, RNNClassifier):
        if max_len is None:
            raise ValueError("max_len: an RNN's NeuroView classifier reads a fixed number of steps; pass max_len=")
        wrap_kwargs = wrap_kwargs | {"max_len": max_len}
        if getattr(standard, "window", 1) > 1:  # the RNN reads windows of samples: so does its NeuroView variant
            wrap_kwargs = {"window": standard.window} | wrap_kwargs
    net = wrap(backbone, n_cls, **wrap_kwargs)
    body = net.rnn if isinstance(net, NeuroViewRNN) else net.backbone
    body.requires_grad_(False)
    return net.eval()


def _accuracy(model: nn.Module, loader: Iterable | None) -> tuple[float | None, int]:
    """``(accuracy, samples)`` on ``loader``; ``(None, 0)`` without one."""
    if loader is None:
        return None, 0
    correct, total = evaluate(model, loader)
    return correct / max(total, 1), total


def _fit_head(net: nn.Module, feats: Tensor, y: Tensor, *, epochs: int, lr: float, weight_decay: float,
              batch_size: int, seed: int) -> None:
    """Fit ``net``'s global classifier on the frozen backbone's codes ``feats``: AdamW, cosine schedule."""
    if net.norm is not None:
        # the normalization's statistics are those of the training codes, exactly (not a running estimate)
        net.norm.running_mean.copy_(feats.mean(0))
        net.norm.running_var.copy_(feats.var(0, unbiased=False))
        net.norm.num_batches_tracked.fill_(1)
    with torch.no_grad():
        z = net.norm(feats) if net.norm is not None else feats  # eval mode: the fixed standardization
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net.classifier.reset_parameters()
    head = [net.classifier] + ([net.norm] if net.norm is not None else [])
    opt = torch.optim.AdamW([p for m in head for p in m.parameters()], lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * math.ceil(len(y) / batch_size))
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=g).split(batch_size):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(net.classifier(z[idx]), y[idx]).backward()
            opt.step()
            sched.step()
    net.eval()


# ---------------------------------------------------------------------------- CLI
_DATA = {"digits": "DigitsDataModule", "mnist1d": "MNIST1DDataModule"}


def datamodule_for(name: str):
    """``digits``, ``mnist1d``, a UCR/UEA set aeon ships (``GunPoint`` ...), or a JSON data-module spec."""
    from .. import data  # noqa: PLC0415 - Lightning data modules import slowly; `import neuroview` must not wait

    if name.lstrip().startswith("{"):
        try:
            return make_datamodule(json.loads(name))
        except json.JSONDecodeError as e:  # the parser's message alone named no option
            raise ValueError(f"--data: expected a JSON data-module spec, got {name!r} ({e})") from None
    if name.lower() in _DATA:
        return getattr(data, _DATA[name.lower()])()
    if name in data.UCR_DATASETS:
        return data.UCRDataModule(name)
    raise ValueError(f"data: expected 'digits', 'mnist1d', one of {data.UCR_DATASETS} or a JSON "
                     f"{{'class_path': 'neuroview.data.X', 'init_args': {{...}}}}, got {name!r}")


def _is_entry(source: str) -> bool:
    """Whether ``source`` names a zoo entry rather than a weight file."""
    return not Path(source).exists() and not source.endswith((".safetensors", ".pt", ".pth", ".ckpt"))


def _load_standard(source: str, arch: str | None, arch_kwargs: dict):
    """``(model, data-module spec or None)`` from a zoo entry name or a weight file."""
    path = Path(source)
    if _is_entry(source):
        model = create_model(source, pretrained=True)
        return model, model.pretrained_cfg["dataset"]["data_module"]
    if path.suffix == ".ckpt":
        from .module import load_model  # noqa: PLC0415 - only Lightning checkpoints need Lightning

        return load_model(path, what="source"), None
    if arch is None:
        raise ValueError(f"arch: a weight file ({path.name}) does not say its architecture; pass --arch (see `neuroview zoo --architectures`)")
    model = create_model(arch, **arch_kwargs)
    load_weights(model, path, what="source", pickles=True)  # a .pt state dict is read with weights_only=True
    return model, None


def _built(std: nn.Module, net: nn.Module, args) -> dict[str, str]:
    """What ``--out`` records: its source, and how to rebuild it (``neuroview explain --model nv_<arch>
    --weights`` reads it) where that is one zoo builder's call: a CNN, its quantizer included."""
    meta = {"neuroview.retrofit_of": str(args.source)}
    cfg = getattr(std, "pretrained_cfg", None) or {}
    arch = cfg.get("architecture") or args.arch
    kwargs = dict(cfg.get("arch_kwargs") or json.loads(args.arch_kwargs))
    if arch and not isinstance(std, (RNNClassifier, nn.RNNBase)) and getattr(net, "quantizer", None) is not None:
        meta["neuroview.architecture"] = f"nv_{arch}"
        meta["neuroview.arch_kwargs"] = json.dumps({**kwargs, "quantizer": net.quantizer}, sort_keys=True)
    return meta


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="neuroview retrofit",
        description="Wrap a trained standard network, freeze its backbone, fit only the global classifier, "
                    "and report how much test accuracy the explanation costs.",
    )
    p.add_argument("source", help="a zoo entry (e.g. small_cnn.digits) or a weight file (.safetensors, .pt state dict, Lightning .ckpt)")
    p.add_argument("--arch", help="architecture of a .safetensors/.pt file (see `neuroview zoo --architectures`)")
    p.add_argument("--arch-kwargs", default="{}", help="JSON arguments of the architecture, e.g. '{\"widths\": [32, 64]}'")
    p.add_argument("--data", help="digits, mnist1d, a UCR set (GunPoint ...) or a JSON data-module spec; default: the zoo entry's")
    p.add_argument("--max-len", type=int, default=None, help="RNNs: steps the classifier reads (default: the data's)")
    p.add_argument("--quantizer", default=None, help="CNNs: hard, soft or none (default: the library's)")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="write the retrofitted network's weights here (.safetensors)")
    p.add_argument("--overwrite", action="store_true", help="replace --out where that file exists")
    args = p.parse_args(argv)
    out = Path(args.out) if args.out else None  # checked before the fit: it could be the source itself
    why = (None if out is None else "expected a .safetensors path (the weights are written as safetensors)"
           if out.suffix != ".safetensors" else "is a folder" if out.is_dir() else
           "exists; pick another path or pass --overwrite to replace it" if out.exists() and not args.overwrite else
           None if out.parent.is_dir() else f"its folder {out.parent} does not exist")
    if why:
        print(f"neuroview retrofit: out: {args.out} {why}", file=sys.stderr)
        return 2
    if args.data is None and not _is_entry(args.source):
        p.error("--data is needed for a weight file (digits, mnist1d, GunPoint, ...)")
    try:
        model, spec = _load_standard(args.source, args.arch, json.loads(args.arch_kwargs))
        dm = datamodule_for(args.data) if args.data is not None else make_datamodule(spec)
        dm.setup("fit")
        kw = {} if args.quantizer is None else {"quantizer": args.quantizer}
        is_rnn = isinstance(model, (RNNClassifier, nn.RNNBase))
        res = retrofit(model, dm, dm, max_len=(args.max_len or dm.max_len) if is_rnn else None, epochs=args.epochs,
                       lr=args.lr, seed=args.seed, **kw)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as e:  # ImportError: a missing extra (aeon); an input refused by name: its message, as the other commands
        print(f"neuroview retrofit: {e}", file=sys.stderr)
        return 2
    print(f"retrofit of {args.source}: {res}")
    if args.out:
        atomic_write(out, save_bytes({k: v.contiguous() for k, v in res.model.state_dict().items()},
                                     metadata=_built(model, res.model, args)))
        print(f"weights of the NeuroView network written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
