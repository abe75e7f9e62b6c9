"""``neuroview explain``: importance of a trained network as pictures, tables and one web page.

This module is the command line, :func:`main`: it finds the model (a zoo name, a Lightning
checkpoint, or an architecture and its weights) and the data (an offline set by name), then
calls :func:`write_report` (:mod:`.report_writer`), which computes the report's data
(:mod:`.report_data`) and renders its page (:mod:`.report_page`); those names are re-exported here.

Imports: torch, every lower subpackage (data, zoo and training only inside the functions that
need them: Lightning is slow to import) and the viz modules named above.

>>> import torch, tempfile, neuroview as nv
>>> from torch import nn
>>> net = nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()), 3, input_shape=(1, 8, 8)).eval()
>>> out = tempfile.mkdtemp()
>>> files = write_report(net, torch.rand(6, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2]), out, progress=False, examples=1)
>>> "index.html" in files and "unit_importance.csv" in files
True
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

import torch
from torch import nn

from .._batch import check_reads
from ..attribution.importance import is_cnn, is_rnn
from ..core._utils import as_labels
from .report_data import check_out as _check_out, explain_batches, model_layout as _model_layout, pick_examples
from ..training.sparsify import mean_codes
from .explain_options import as_typed, check_model_args, data_options, model_options
from .report_rows import add_file_rows
from .report_text import check_requirements
from .report_writer import recover_out, write_report

__all__ = ["write_report", "explain_batches", "pick_examples", "main"]


# ---------------------------------------------------------------------- command line
EXAMPLE_SPEC = '{"class_path": "neuroview.data.CsvDataModule", "init_args": {"path": "new.csv", "header": true}}'
DATA_HELP = ("digits | mnist1d | a UCR/UEA set aeon ships (GunPoint, ItalyPowerDemand, BasicMotions, JapaneseVowels, "
             "ArrowHead, OSULeaf, ACSF1, PickupGestureWiimoteZ, UnitTest) | PATH.npz | PATH.csv or .tsv (one series a row, "
             "the label first) | mnist:ROOT | cifar10:ROOT | a JSON data-module spec, for a file's options: '"
             + EXAMPLE_SPEC + "'")


def data_module(spec: str):
    """A :mod:`neuroview.data` module from a short name (see ``DATA_HELP``); offline sets need no ROOT."""
    from .. import data as D  # noqa: PLC0415 - Lightning is slow to import

    if spec.lstrip().startswith("{"):  # a file's format (header, channels, ...): argparse has no --data.init_args.*
        from ..training.data_arg import datamodule_for  # noqa: PLC0415 - neuroview.data classes only, as fit's

        return datamodule_for(spec)  # its keys checked there (check_spec_args): every unknown one named, not a TypeError
    if spec == "digits":
        return D.DigitsDataModule()
    if spec == "mnist1d":
        return D.MNIST1DDataModule()
    if spec in D.UCR_DATASETS:
        return D.UCRDataModule(spec)
    from ..training.data_arg import path_kind  # noqa: PLC0415

    if file := path_kind(spec):  # FILE.NPZ, FILE.CSV (a copy from another system) too, as NpzDataModule reads it
        return getattr(D, file)(spec)
    kind, _, root = spec.partition(":")
    if kind == "mnist" and root:
        return D.MNISTDataModule(root)
    if kind == "cifar10" and root:
        return D.CIFAR10DataModule(root)
    found = f" (a file, but its suffix {Path(spec).suffix!r} is none of .npz, .csv, .tsv)" if os.path.isfile(spec) else ""
    raise ValueError(f"--data: expected {DATA_HELP}; got {spec!r}{found}")


def guess_data(model: nn.Module) -> str:
    """The offline set a model's input fits, when nothing says what it was trained on."""
    if is_cnn(model):
        shape = _input_shape(model)
        if len(shape) == 3 and shape[0] == 1:
            return "digits"
        if len(shape) == 2 and shape[0] == 1 and model.num_classes == 10:
            return "mnist1d"
    if is_rnn(model) and model.input_size == 1 and model.num_classes == 10 and model.max_len >= 40:
        return "mnist1d"
    raise ValueError("--data: cannot tell which data this model was trained on; pass --data "
                     f"({DATA_HELP})")


def _input_shape(model: nn.Module) -> tuple[int, ...]:
    """``(C, *spatial)`` of one input; a network that has not seen data yet (sites found on the first
    batch, as after loading a Lightning checkpoint) gives its first convolution's channels and rank."""
    if getattr(model, "input_shape", None) is not None:
        return tuple(model.input_shape)
    conv = next((m for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)), None)
    return () if conv is None else (conv.in_channels,) + (0,) * (conv.weight.dim() - 2)


def load_batch(dm, split: str, limit: int, seed: int = 0, *, indices: bool = False) -> tuple:
    """``(x, lengths, y)`` of up to ``limit`` samples of a split, channels-first as the data
    modules give them; a random subset (by ``seed``) when the split is larger, in the split's order.
    ``indices=True``: ``(x, lengths, y, index)``, ``index [B]`` each sample's index in the split
    (what the report's ``sample_indices`` and ``predictions.csv``'s ``split_index`` record)."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"--split: expected train, val or test, got {split!r}")
    dm.setup("test")
    splits = dm._prepared_splits() if hasattr(dm, "_prepared_splits") else None
    if splits is not None and split not in splits:  # was a bare KeyError: 'val'
        raise ValueError(f"--split: {split}: the data has no {'validation' if split == 'val' else split} split "
                         f"(val_fraction {float(getattr(dm, 'val_fraction', 0) or 0):g}); use {' or '.join(k for k in ('train', 'val', 'test') if k in splits)}")
    ds = dm._dataset(split)
    idx = torch.arange(len(ds))
    if len(ds) > limit:
        idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[:limit].sort().values
    items = [ds[int(i)] for i in idx]
    x = torch.stack([it[0] for it in items])
    y = as_labels(torch.stack([torch.as_tensor(it[-1]) for it in items]), "data", getattr(dm, "num_classes", None))
    lengths = torch.stack([torch.as_tensor(it[1]) for it in items]).long() if len(items[0]) == 3 else None
    return (x, lengths, y, idx) if indices else (x, lengths, y)


def resolve_model(args) -> tuple[nn.Module, dict, dict | None]:
    """The network the command line names, facts about it for the report, and the data module
    it was trained on (``{"class_path": ..., "init_args": ...}``) when its checkpoint says."""
    from ..zoo import create_model, list_models  # noqa: PLC0415

    if args.weights and not (weights := Path(args.weights).expanduser()).is_file():  # first: it was said after --model's
        raise FileNotFoundError(f"--weights: weight file {str(weights)!r} is {'a folder' if weights.is_dir() else 'missing'}")
    if args.weights and Path(args.weights).suffix == ".ckpt":  # a checkpoint rebuilds its own model, as --ckpt
        _built_as(args.weights, args.model, {})
        if args.model_args:
            raise ValueError("--model-args: a Lightning checkpoint (.ckpt) rebuilds its own model from its hyper-parameters")
        args.ckpt = args.weights
    if args.ckpt:
        from ..data.read_as import checkpoint_data  # noqa: PLC0415
        from ..training.ckpt_file import not_a_file  # noqa: PLC0415
        from ..training.module import load_module  # noqa: PLC0415 - Lightning only for Lightning checkpoints

        path, what = Path(args.ckpt).expanduser(), "--weights" if args.weights else "--ckpt"  # the option typed
        if not path.is_file():  # a run's folder was "no such file"
            raise FileNotFoundError(f"{what}: expected a Lightning checkpoint written by `neuroview fit`, got {str(path)!r} {not_a_file(path)}")
        module = load_module(path, what=what)
        about = {"model": module.hparams.get("arch", type(module.model).__name__), "checkpoint": str(path)}
        return module.model.eval(), about, checkpoint_data(path)
    try:
        kwargs = json.loads(args.model_args) if args.model_args else {}
    except (json.JSONDecodeError, RecursionError) as e:  # the parser's message alone named no option; RecursionError: nested
        shown = repr(args.model_args) if len(args.model_args) <= 200 else f"{args.model_args[:60]!r}... ({len(args.model_args)} characters)"
        raise ValueError(f"--model-args: expected a JSON object of builder arguments, got {shown} ({e})") from None
    if not isinstance(kwargs, dict):
        raise ValueError(f"--model-args: expected a JSON object of builder arguments, got {args.model_args!r}")
    check_model_args(kwargs, args.zoo)  # create_model's own (pretrained, root): Python's "multiple values", unnamed
    if args.weights:
        from ..zoo.weights import load_weights  # noqa: PLC0415

        built = _built_as(args.weights, args.model, kwargs)  # a file that records its architecture names it first
        arch, tag, _ = args.model.partition(".")
        if tag and arch in list_models():  # create_model's words, "pass pretrained=True", are no option of explain's
            raise ValueError(f"--model: {args.model!r} is a trained entry, which brings its own weights; with --weights "
                             f"give the architecture: --model {arch}")
        model = create_model(args.model, **built)
        _check_explainable(model, args.model)
        # the whole network (a backbone alone would leave the head at its random init, and the report would explain it);
        # --model-args say what its record leaves out (an earlier zoo release's norm_floor), as load_weights(arch_kwargs=)
        load_weights(model, args.weights, what="--weights", pickles=True, arch_kwargs=kwargs or None)
        return model.eval(), {"model": args.model, "weights": str(args.weights)}, _recorded_data(args.weights)
    model = create_model(args.model, pretrained=True, **kwargs, **({"root": args.zoo} if args.zoo else {}))
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    about = {"model": cfg.get("name", args.model), "weights": "zoo checkpoint"}
    if args.zoo:  # a folder of the user's: the same entry name there is another network than the installed one's
        about["zoo"] = str(Path(args.zoo).resolve())
    if cfg.get("metrics", {}).get("test_acc") is not None:
        about["zoo test accuracy"] = f"{100 * cfg['metrics']['test_acc']:.2f}%"
    return model.eval(), about, cfg.get("dataset")


def _recorded_data(path: str, key: str = "neuroview.data") -> dict | list | None:
    """The data a weight file says its head was fitted on, as it was read: a ``neuroview retrofit --out`` file's
    ``neuroview.data``, a Lightning checkpoint's data module; ``None`` where it says none (read by the defaults).
    ``key="neuroview.classes"``: the names of the classes its outputs index, where the file records them."""
    if str(path).endswith(".ckpt") and key == "neuroview.data":
        from ..data.read_as import checkpoint_data  # noqa: PLC0415

        return checkpoint_data(path)
    if not str(path).endswith(".safetensors"):
        return None
    from safetensors import safe_open  # noqa: PLC0415

    try:
        with safe_open(str(path), "pt") as f:  # the header only
            spec = json.loads((f.metadata() or {}).get(key, "null"))
    except Exception:  # noqa: BLE001 - an unreadable file is named by the load that follows
        return None
    if key == "neuroview.classes":
        return [str(c) for c in spec] if isinstance(spec, list) else None
    return spec if isinstance(spec, dict) and "class_path" in spec else None


def _built_as(path: str, arch: str, kwargs: dict) -> dict:
    """The builder arguments of ``--weights``: what the file says it was built with (a zoo-format
    ``.safetensors``' ``neuroview.arch_kwargs``, a ``neuroview retrofit --out`` file's, a ``.ckpt``'s
    hyper-parameters) under ``--model-args``, which must agree. Built with the defaults, a file trained
    with ``quantizer: soft`` loaded into a ``hard`` network and explained another function."""
    from ..zoo.pretrained import _plain  # noqa: PLC0415
    from ..zoo.weights import build_facts  # noqa: PLC0415

    saved_arch, saved = build_facts(path)
    if saved_arch is not None and saved_arch != arch:
        raise ValueError(f"--model: {Path(path).name} holds a {saved_arch!r}, not a {arch!r}; pass --model {saved_arch}")
    clash = {k: (v, saved[k]) for k, v in kwargs.items() if k in saved and _plain(v) != _plain(saved[k])}
    if clash:
        detail = ", ".join(f"{k}={v!r} (the weights: {w!r})" for k, (v, w) in clash.items())
        raise ValueError(f"--model-args: {Path(path).name} was built with other arguments: {detail}")
    return {**saved, **kwargs}


def _check_explainable(model: nn.Module, name: str) -> None:
    if not hasattr(model, "explain"):
        raise ValueError(f"--model/--ckpt: {name} is a standard network with no exact explanation; "
                         "use its NeuroView variant (nv_*)")


def resolve_data(spec: str | None, trained_on: dict | None, model: nn.Module, split: str = "test",
                 classes: list | None = None, source: tuple[str, str] = ("data", "the model")) -> tuple[object, str]:
    """``(data module, its name)``: ``--data`` when given (read as ``trained_on`` was: its ``normalize``
    and ``resample``, and a file of its own module in its format; a file that is not the model's training data read
    whole, as ``neuroview test``/``predict`` read it, with no validation split unless ``split`` is ``val``), else what
    the checkpoint was trained on (carved as ``fit`` carved it; its file moved: said by ``source``, the option and the
    words of what recorded it), else the offline set the model's input fits."""
    if spec:  # read as the model's own training data was (normalize, resample, a file's format), not by the defaults
        from ..training.data_arg import explained_data  # noqa: PLC0415

        return explained_data(data_module, spec, trained_on, split, classes), spec
    if trained_on:
        from ..training.spec_files import recorded_datamodule  # noqa: PLC0415 - only neuroview.data classes

        # a zoo entry's dataset is {"name", "data_module": {class_path, init_args}}; a checkpoint's is the module spec
        module = trained_on.get("data_module", trained_on)
        if not module:
            raise ValueError(f"data: the model does not say what data it was trained on ({trained_on.get('name')!r}); "
                             "pass --data (digits, mnist1d, a UCR set, a .npz path or a JSON data-module spec)")
        name = trained_on.get("name") or module.get("init_args", {}).get("name") or module["class_path"].rsplit(".", 1)[-1]
        return recorded_datamodule(module, *source), str(name)
    guess = guess_data(model)
    return data_module(guess), guess


def _data_file(dm) -> dict:
    """``{"data file": path}`` of a data module that reads a file of the user's (.npz, CSV): its name alone
    ("NpzDataModule", a recorded name) said nothing of which file."""
    path = getattr(dm, "path", None) if type(dm).__name__ in ("NpzDataModule", "CsvDataModule") else None
    return {"data file": str(Path(path).resolve())} if path else {}


def _report_baseline(model: nn.Module, dm, other: bool, trained_on: dict | None, no_gallery: bool) -> tuple:
    """``(baseline, its words or None)`` of ``neuroview explain``: the mean code of the model's own training split.
    Other data (``--data``) is explained against it where that data can be read again (against the other data's own
    training split a decision read as the other file's average sample: the bias 0.2 off); ``--no-gallery`` computes
    it here (``write_report`` took the normalization's running estimate, up to 0.16 off the bias); else ``"auto"``:
    from the galleries' data."""
    if other and trained_on:
        from ..zoo.pretrained import make_datamodule  # noqa: PLC0415

        try:
            own = make_datamodule(trained_on.get("data_module", trained_on))
            own = dm if type(own) is type(dm) and dict(own.hparams) == dict(dm.hparams) else own  # the same split: loaded once
            return mean_codes(model, own), "the mean code of the model's own training split"
        except Exception as e:  # noqa: BLE001 - a file moved: said on the page and here
            warnings.warn(f"baseline: the model's training data cannot be read again ({type(e).__name__}: {e}); "
                          "contributions are taken against the mean code of --data's training split", UserWarning)
            return mean_codes(model, dm), "the mean code of --data's training split (the model's own cannot be read)"
    if no_gallery:
        return mean_codes(model, dm), "the training split's mean code"
    return "auto", None


def _parse(p: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``p``'s arguments, ``--out`` and ``--zoo`` ``~``-expanded; ``--data.init_args.header true``, as fit takes it, is
    told how explain takes a file's options: the JSON spec of ``--data`` itself with the options typed, as minirocket
    and sparsify tell it (a fixed ``new.csv`` example, whatever ``--data`` was, did not run as printed)."""
    from ..training.cli_hints import parse_args  # noqa: PLC0415

    args = parse_args(p, argv, "explain")
    args.out, args.zoo = (os.path.expanduser(v) if v else v for v in (args.out, args.zoo))  # --out=~/r: no shell expanded it
    return args


def _check_counts(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The counts of the command line at least 1 (``--examples``: 0); ``--seed`` one torch's generator takes."""
    if not 0 <= args.seed < 2 ** 64:  # torch's bare "Overflow when unpacking long long", once the model and data were read
        p.error(f"--seed: expected an int in [0, 2**64) (which samples are drawn), got {args.seed}")
    for option, value, least in (("--samples", args.samples, 1), ("--batch-size", args.batch_size, 1),
                                 ("--examples", args.examples, 0), ("--gallery-samples", args.gallery_samples, 1),
                                 ("--dpi", args.dpi, 1)):
        if value is not None and value < least:  # --batch-size 0 ended in a ZeroDivisionError, --examples -1 read as 0
            p.error(f"{option}: expected {'a positive number' if least else 'a number >= 0'}, got {value}")


def _model_classes(args, trained_on: dict | None) -> list | None:
    """The names the model's outputs index: as `neuroview fit` recorded them, the zoo entry's, or a weight file's."""
    from ..data.read_as import checkpoint_classes  # noqa: PLC0415

    if args.ckpt:
        return checkpoint_classes(args.ckpt)
    return (trained_on or {}).get("class_names") or (_recorded_data(args.weights, "neuroview.classes") if args.weights else None)


def _hold(dm, args, trained_on: dict | None) -> None:
    """``dm`` held to the model's record of its own training file: changed since (carved otherwise), refused when read."""
    from ..data.file_record import hold_to_checkpoint, hold_to_spec  # noqa: PLC0415

    hold_to_checkpoint(dm, args.ckpt)
    # a zoo entry's, given by --data; a --weights file's data spec is trained_on itself (it was never held)
    hold_to_spec(dm, (trained_on or {}).get("data_module", trained_on) if args.model else None,
                 f"the weight file {args.weights}" if args.weights else None)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="neuroview explain", allow_abbrev=False,  # --mod x was --model x
        description="Explain a NeuroView network on data: figures (PNG), tables (CSV/JSON), the explanation "
                    "(safetensors) and an index.html that opens offline.",
        epilog="example: neuroview explain --model nv_small_cnn --weights runs/w.safetensors --data digits --out report/",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="a zoo name (neuroview.list_models()); its trained checkpoint, or --weights")
    src.add_argument("--ckpt", help="a Lightning checkpoint written by `neuroview fit` (rebuilds its own model)")
    p.add_argument("--weights", help="with --model: weights to load (.safetensors, .pt state dict, or a .ckpt)")
    p.add_argument("--zoo", help="with --model: a zoo folder of your own (e.g. what `neuroview sparsify --out` wrote)")
    p.add_argument("--model-args", help='with --model: builder arguments as JSON, e.g. \'{"widths": [8, 16]}\'')
    p.add_argument("--data", help=f"{DATA_HELP}. Default: what the checkpoint or zoo entry says, else the offline set the model's input fits. Other data is read as the model's own was (its normalize and resample; a CSV or .npz like its own in that file's format)")
    p.add_argument("--split", default="test", help="train, val or test (default: test)")
    p.add_argument("--samples", type=int, default=256, help="how many samples to explain (default 256)")
    p.add_argument("--examples", type=int, default=4, help="samples with per-sample figures (default 4)")
    p.add_argument("--batch-size", type=int, default=64, help="samples explained at a time (default 64)")
    p.add_argument("--seed", type=int, default=0, help="which samples, when the split has more than --samples")
    p.add_argument("--dpi", type=int, default=100)
    p.add_argument("--gallery-samples", type=int, default=None,
                   help="training samples read for the units' galleries (default: the whole training split)")
    p.add_argument("--no-gallery", action="store_true", help="no galleries of the waterfalls' units")
    p.add_argument("--out", required=True, help="folder to write; must be empty or new unless --overwrite")
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = _parse(p, argv)
    _check_counts(p, args)
    if (args.weights or args.model_args) and not args.model:
        p.error("--weights/--model-args: only with --model (a --ckpt rebuilds its own model)")
    if args.zoo and (args.ckpt or args.weights):  # it was ignored, silently
        p.error(f"--zoo: only with --model alone (a zoo entry's folder); a {'--ckpt' if args.ckpt else '--weights'} "
                f"file is read as it is, got --zoo {args.zoo}")
    if args.no_gallery and args.gallery_samples is not None:
        p.error(f"--gallery-samples: the galleries' training samples; --no-gallery writes none, got --gallery-samples "
                f"{args.gallery_samples}")
    options = model_options(args)  # the arguments of create_model's refusals, as typed
    try:
        check_requirements()  # before the model loads: a missing extra is named at once
        recover_out(Path(args.out))  # a report killed on the way: --out put back as it was, its temporary folders gone
        _check_out(Path(args.out), args.overwrite)
        model, about, trained_on = resolve_model(args)
        options = data_options(args)  # from here a root:, path: or name: is a data module's
        _check_explainable(model, about["model"])
        from ..data.read_as import check_classes  # noqa: PLC0415

        classes = _model_classes(args, trained_on)
        source = ("--weights" if args.weights else "--ckpt" if args.ckpt else "--model",  # what recorded the data
                  f"the {'checkpoint' if args.ckpt else 'weight file' if args.weights else 'zoo entry'} {args.ckpt or args.weights or args.model!r}")
        dm, spec = resolve_data(args.data, trained_on, model, args.split, classes, source)
        _hold(dm, args, trained_on)

        check_classes(dm, classes, f"--data: {spec}")
        if dm.num_classes != model.num_classes:
            raise ValueError(f"--data: {spec} has {dm.num_classes} classes ({', '.join(map(str, dm.class_names[:8]))}), the "
                             f"model {model.num_classes}; pass the data it was trained on")
        x, lengths, y, index = load_batch(dm, args.split, args.samples, args.seed, indices=True)
        check_reads(model, x, lengths, f"--data: {spec}")
        if is_rnn(model):  # data modules give [B, C, T]; the RNN reads [B, T, F]
            x = _model_layout(model, x.transpose(1, 2))
        from ..data.read_as import read_options  # noqa: PLC0415 - neuroview.data (Lightning) only where data is read

        about |= {"data": spec, "split": args.split, "read_as": read_options(dm)} | _data_file(dm)
        base, words = _report_baseline(model, dm, bool(args.data), trained_on, args.no_gallery)
        about |= {"baseline": words} if words else {}
        # a CNN reads padded series whole (check_reads refused those it cannot): its lengths are no input to explain
        files = write_report(model, x, y, args.out, lengths=lengths if is_rnn(model) else None,
                             class_names=dm.class_names, examples=args.examples, overwrite=args.overwrite,
                             progress=not args.no_progress, batch_size=args.batch_size, about=about, dpi=args.dpi,
                             gallery_data=None if args.no_gallery else dm, gallery_samples=args.gallery_samples,
                             sample_indices=index, baseline=base)
        add_file_rows(Path(args.out), dm, args.split, index, gallery=not args.no_gallery)
    except (ValueError, TypeError, OSError, ImportError) as e:  # OSError: --out on a full disk, a read-only folder, ...; TypeError: --model-args
        from ..training.cli_hints import said  # noqa: PLC0415 - a file option asked for: the JSON spec, not the reader's (--data.init_args.*), which explain refuses

        print(f"neuroview explain: {said(as_typed(str(e), options, args.zoo), 'explain', args.data)}", file=sys.stderr)
        return 2
    print(f"wrote {len(files)} files to {args.out}; open {Path(args.out) / 'index.html'}")
    return 0
