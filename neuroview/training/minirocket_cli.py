"""``neuroview minirocket``: a NeuroView-MiniRocket zoo entry fitted on a data set (:func:`.ridge.minirocket`),
and with ``--max-k90`` its sparse variant, both ready for ``neuroview explain``.

May import every layer below training; ``neuroview.data`` and the zoo inside the functions (Lightning
data modules import slowly).
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]

#: The library's argument names in the refusals this command prints, and the options that gave them.
_OPTIONS = {"num_features": "--num-features", "max_k90": "--max-k90", "seed": "--seed", "folds": "--folds"}


def data_spec(data: str, normalize: str | bool = "sample") -> dict:
    """The data-module spec of ``--data``: a JSON spec as given, its files absolute; a UCR/UEA set, ``mnist1d`` or an
    ``.npz``/``.csv``/``.tsv`` path: the whole training split (no validation carved: the penalty is
    chosen by leave-one-out), each series z-normalized by itself (``normalize="sample"``, as the
    ``ucr_*`` recipes: MiniRocket's biases are quantiles of one series' values, so raw recordings of
    different scales would each meet biases of another scale; ``False``: as they are), variable
    lengths stretched to the longest."""
    import json  # noqa: PLC0415
    import os  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from .. import data as datasets  # noqa: PLC0415
    from .data_arg import path_kind  # noqa: PLC0415
    from .spec_files import absolute_spec  # noqa: PLC0415

    if data.lstrip().startswith("{"):
        try:  # its files absolute, as a plain path's: explain --model from another folder reads the same file
            return absolute_spec(json.loads(data))
        except (json.JSONDecodeError, RecursionError) as e:  # the parser's message alone named no option
            raise ValueError(f"--data: expected a JSON data-module spec, got {data!r} ({e})") from None
    raw = {"val_fraction": 0.0, "normalize": normalize}
    if kind := path_kind(data):  # FILE.NPZ, FILE.CSV (a copy from another system) too
        path = os.path.abspath(os.path.expanduser(data))  # "~/x.npz" quoted or after --data=: the home folder's
        if not Path(path).is_file():
            raise FileNotFoundError(f"--data: no such file {data!r}" + (f" ({path})" if path != data else ""))
        # absolute: a later command (explain) run from another folder reads the same file
        return {"class_path": f"neuroview.data.{kind}", "init_args": {"path": path, **raw, "resample": True}}
    if data.lower() == "mnist1d":
        return {"class_path": "neuroview.data.MNIST1DDataModule", "init_args": raw}
    if data in datasets.UCR_DATASETS:
        return {"class_path": "neuroview.data.UCRDataModule", "init_args": {"name": data, **raw, "resample": True}}
    raise ValueError(f"--data: expected mnist1d, one of {datasets.UCR_DATASETS}, an .npz, .csv or .tsv path or a "
                     f"JSON data-module spec, got {data!r}")


def _spec_of(args) -> dict:
    """The spec ``--data`` is read by under the options typed (for the advice of a refused ``--data.init_args.*``)."""
    return data_spec(args.data, False if args.normalize == "none" else "sample")


def main(argv: list[str] | None = None) -> int:
    from pathlib import Path  # noqa: PLC0415

    p = argparse.ArgumentParser(
        prog="neuroview minirocket", allow_abbrev=False,  # --num 84 was --num-features 84
        description="Fit MiniRocket (Dempster et al. 2021) as a NeuroView-CNN: its ~10,000 PPV features are the "
                    "units' codes, its ridge (penalty by leave-one-out on the training split) the global classifier, "
                    "so every logit splits exactly into per-kernel contributions. The test split is read once, to report.",
        epilog="example: neuroview minirocket --data ArrowHead --max-k90 10 --out runs/minirocket && "
               "neuroview explain --model nv_minirocket.arrowhead_sparse --zoo runs/minirocket --out report",
    )
    p.add_argument("--data", required=True, help="a UCR/UEA set aeon ships, mnist1d, an .npz, .csv or .tsv path, or a "
                                                 "JSON data-module spec")
    p.add_argument("--num-features", type=int, default=10_000, help="about this many features (default 10,000: 9,996)")
    p.add_argument("--seed", type=int, default=0, help="the draws of channel subsets and of the series each bias comes from")
    p.add_argument("--normalize", choices=["sample", "none"], default=None,
                   help="sample (default): each series z-normalized by itself, so its scale and offset do not matter; "
                        "none: the series as they are (sets normalized already); a JSON --data spec sets its own")
    p.add_argument("--max-k90", type=float, default=None,
                   help="also write <entry>_sparse: nv.sparsify with this readability budget (the zoo's CNNs use 10)")
    p.add_argument("--folds", type=int, default=None,
                   help="with --max-k90: the cross-validation folds on the training split the sparse head is chosen by "
                        "(default 5; a small split allows at most half its samples, each class at least 2; refused where --data "
                        "holds out a validation split, which then chooses)")
    p.add_argument("--out", default="runs/minirocket", help="a zoo folder to write the entries into (default runs/minirocket)")
    p.add_argument("--overwrite", action="store_true", help="replace entries of the same names already in --out")
    p.add_argument("--tag", default=None, help="the entries' tag: nv_minirocket.<tag> (and <tag>_sparse); default: the "
                                               "data set's name or the data file's stem")
    from .cli_hints import entry_tag, folds_advice, parse_args, said  # noqa: PLC0415
    from .sparsify_cli import as_option, expand_paths  # noqa: PLC0415

    args = expand_paths(parse_args(p, argv, "minirocket", _spec_of), "out")  # --out=~/x: no shell expanded it
    if args.folds is not None and args.max_k90 is None:  # it was ignored, silently
        p.error(f"--folds: the folds the sparse variant of --max-k90 is chosen by, got --folds {args.folds} without "
                "--max-k90; add --max-k90 <budget> (the zoo's CNNs use 10), or drop --folds")
    folds_given, args.folds = args.folds is not None, 5 if args.folds is None else args.folds
    tag = entry_tag(args.data) if args.tag is None else args.tag
    spec = None
    try:
        from ..zoo.pretrained import make_datamodule  # noqa: PLC0415
        from .data_arg import check_spec_args  # noqa: PLC0415

        _check_before(args, tag)
        spec = data_spec(args.data, False if args.normalize == "none" else "sample")
        check_spec_args(spec)  # a JSON spec's unknown key named, not the data module's bare TypeError
        dm = make_datamodule(spec)
        dm.setup("fit")
        if folds_given and args.max_k90 is not None:
            _check_folds(dm, args.folds)
        from .ridge import minirocket  # noqa: PLC0415

        net = minirocket(dm, num_features=args.num_features, seed=args.seed)
    except (ValueError, TypeError, FileNotFoundError, RuntimeError, ImportError) as e:  # ImportError: a missing extra (aeon)
        # the data modules' --data.init_args.*, refused here: the JSON spec of the same options instead
        print(f"neuroview minirocket: {said(as_option(str(e), _OPTIONS), 'minirocket', args.data, spec)}", file=sys.stderr)
        return 2
    sparse, failed = _sparse(net, dm, args)
    if failed is not None:
        failed = folds_advice(as_option(failed, _OPTIONS), "--max-k90")
        if _held(args.out, f"nv_minirocket.{tag}_sparse"):  # a new dense entry beside the earlier run's sparse one
            print(f"neuroview minirocket: {failed}. Nothing was written: {args.out} holds an earlier "
                  f"nv_minirocket.{tag}_sparse, not sparsified from the dense network fitted now", file=sys.stderr)
            return 2
    if not _write(args, tag, net, sparse, spec, dm):
        return 2
    if failed is not None:  # the dense fit is kept: it stands alone (the sparse one is refitted from it)
        print(f"neuroview minirocket: {failed}. The dense entry nv_minirocket.{tag} was written to {args.out}; its "
              f"sparse variant was not: a rerun into that --out needs --overwrite too (it replaces that dense entry), "
              "or pick another --out", file=sys.stderr)
        return 2
    import shlex  # noqa: PLC0415

    entry = f"nv_minirocket.{tag}{'_sparse' if sparse is not None else ''}"
    print(f"explain it with: neuroview explain --model {entry} --zoo {shlex.quote(str(Path(args.out)))} "
          f"--out {shlex.quote('report/' + entry)}")
    return 0


def _check_folds(dm, folds: int) -> None:
    """``--folds`` where the data module holds out a validation split: the sparse head is chosen there (as
    :func:`.sparsify.sparsify` does), so the folds would be ignored, silently (the manifest recorded ``folds: None``)."""
    from .._batch import own_val_split  # noqa: PLC0415

    if own_val_split(dm) is not None:
        carved = bool(getattr(dm, "val_fraction", 0) or 0)  # carved from the training split, not the file's own
        way = ("drop --folds, or set the spec's val_fraction to 0 to cross-validate" if carved else
               "drop --folds (the data's own validation split, its file's X_val or its val_path, chooses)")
        raise ValueError(f"--folds: the cross-validation folds on the training split, got --folds {folds} with --data "
                         f"holding out a validation split ({type(dm).__name__}), where the sparse head is chosen on that "
                         f"split and no folds are cut; {way}")


def _check_before(args, tag: str) -> None:
    """The options checked before the dense fit: ``--max-k90`` (a typo, ``--max-k90 0``, cost a fit and wrote its entry),
    the entries ``--out`` holds, ``--normalize`` beside a JSON spec."""
    from ..zoo.pretrained import refuse_existing  # noqa: PLC0415
    from .sparse_checks import check_budget  # noqa: PLC0415

    check_budget(None, args.max_k90)
    refuse_existing(args.out, [f"nv_minirocket.{tag}"] + [f"nv_minirocket.{tag}_sparse"] * (args.max_k90 is not None),
                    args.overwrite, "--tag" if args.tag is not None else "--data",
                    "pick a shorter --tag" if args.tag is not None else "the data's name or file stem makes the tag: "
                    "pass a shorter --tag", "pick another --out or pass --overwrite to replace it, or keep both: give "
                    "this run's entries a tag of their own with --tag <tag>")
    if args.normalize is not None and args.data.lstrip().startswith("{"):  # it was ignored, silently
        raise ValueError(f"--normalize: a JSON --data spec sets its own normalization (its init_args' normalize), "
                         f"got --normalize {args.normalize}; put it in the spec instead")


def _write(args, tag: str, net, sparse, spec: dict, dm) -> bool:
    """Score the entries on the test split and write them into ``--out``; False (said) where the write failed."""
    from pathlib import Path  # noqa: PLC0415

    from .zoo_out import not_written, written_meanwhile  # noqa: PLC0415

    out = Path(args.out)
    dm.setup("test")
    test = list(dm.test_dataloader())  # read once, for both entries
    saves = [_entry(model, name, net, spec, dm, test, args)
             for name, model in ((f"nv_minirocket.{tag}", net), (f"nv_minirocket.{tag}_sparse", sparse)) if model is not None]
    try:  # both entries as one write: a failed one never leaves the other new beside the earlier run's
        from ..zoo.pretrained import save_pretrained_all  # noqa: PLC0415

        save_pretrained_all([s for s, _ in saves], root=out, overwrite=args.overwrite)  # refused before the work unasked
    except OSError as e:  # --out made unwritable, or a disk filled, during the work: said, not a traceback
        print(f"neuroview minirocket: {not_written(args.out, e)}", file=sys.stderr)
        return False
    except ValueError as e:  # another run's entries of these names, saved meanwhile (a traceback advising overwrite=True)
        why = None if args.overwrite else written_meanwhile(args.out, [s["name"] for s, _ in saves], "--tag <tag>")
        print(f"neuroview minirocket: {why or e}", file=sys.stderr)
        return False
    for _, said in saves:
        print(f"{said}; wrote it to {out}")
    return True


def _sparse(net, dm, args):
    """``(the sparse network, None)`` of ``--max-k90`` (None without it), or ``(None, why it failed)``: the dense fit
    is written either way (a training split too small for the folds lost it)."""
    if args.max_k90 is None:
        return None, None
    from .sparsify import sparsify  # noqa: PLC0415

    try:
        return sparsify(net, dm, max_k90=args.max_k90, folds=args.folds), None
    except (ValueError, TypeError, RuntimeError) as e:
        return None, str(e)


def _held(out: str, name: str) -> bool:
    """Whether the zoo folder ``out`` holds the entry ``name`` already (an earlier run's, under ``--overwrite``)."""
    from ..zoo.pretrained import read_manifest  # noqa: PLC0415

    return name in read_manifest(out)


def _entry(model, name: str, dense, spec: dict, dm, test: list, args) -> tuple[dict, str]:
    """``(save_pretrained's arguments, what to print once written)`` of the entry ``name`` of ``model``."""
    from ..attribution.readability import readability  # noqa: PLC0415
    from ..data.file_record import RECORD, read_record  # noqa: PLC0415
    from ..zoo.evaluate import score_test_split  # noqa: PLC0415
    from .sparsify_cli import sparsify_record  # noqa: PLC0415

    r = readability(model, test, baseline="mean")
    # the file's training split as the ridge read it: explain --model re-carves the file, and refuses it changed since
    # (its rows reordered, it carved another "test" split holding series the ridge was fitted on, scored as unseen)
    record = read_record(dm, name)
    spec = spec | ({RECORD: record} if record else {})
    bb = dense.backbone
    kwargs = {"num_classes": dense.num_classes, "in_channels": bb.in_channels, "max_len": bb.input_length,
              "num_features": args.num_features, "seed": args.seed}
    save = dict(model=model, name=name, architecture="nv_minirocket", arch_kwargs=kwargs,
                dataset={"name": args.data, "split": "test", "data_module": spec, "class_names": [str(c) for c in dm.class_names]},
                recipe=None, seed=args.seed,
                metrics=score_test_split(model, dm) | {k: r[k] for k in ("k90", "top10_share", "units_per_class")},
                # the ridge is the dense entry's head; the sparse one's is a point of the path, recorded as
                # `neuroview sparsify` records it (the budget and deviance rule met or not, the folds, the path)
                extra={"ridge": {"alpha": dense.ridge.alpha, "train_acc": dense.ridge.train_acc}} if model is dense
                else {"sparsified_from": name.removesuffix("_sparse"), "sparsify": sparsify_record(model.sparsity_path)})
    return save, (f"{name}: test accuracy {r['accuracy']:.1f}%, {r['units_per_class']:.1f} units per class, "
                  f"k90 {r['k90']:g} against the mean code")
