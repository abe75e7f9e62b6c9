"""``neuroview sparsify``: a sparse zoo entry from a zoo entry or a Lightning checkpoint (:func:`.sparsify.sparsify`).

May import every layer below training; ``neuroview.data`` and the zoo inside the functions (Lightning
data modules import slowly).
"""

from __future__ import annotations

import argparse
import os
import sys

from .._batch import check_reads, unpack
from .sparse_checks import check_options, check_seed
from .sparse_name import check_data_name, data_suffix, other_data, own_data
from .sparsify import DEVIANCE, sparsify
from .sparsify_source import check_source
from .sparse_finetune import finetune_sparse
from .zoo_out import not_written, written_meanwhile  # noqa: F401 - not_written: retrofit and the tests take it from here

__all__ = ["main"]

#: What ``--seed`` sets, as its help and its refusal say it
SEED = "the cross-validation folds' shuffle, and --finetune's shuffle and dropout"


def _source(source: str, data: str | None, zoo: str | None = None):
    """``(network, data module, what a zoo entry of it says)`` of a zoo entry name or a Lightning checkpoint."""
    from pathlib import Path  # noqa: PLC0415

    from ..zoo import create_model  # noqa: PLC0415
    from ..zoo.build import arch_kwargs  # noqa: PLC0415
    from .data_arg import check_spec_args  # noqa: PLC0415
    from .spec_files import recorded_datamodule  # noqa: PLC0415 - its file moved: said naming the source and --data

    check_spec_args(data)  # a JSON spec's unknown key, before the source is read
    if _is_checkpoint(source):
        from .module import load_module  # noqa: PLC0415

        if not Path(source).is_file():
            raise FileNotFoundError(f"source: no such checkpoint {source!r}")
        # read first: an empty, truncated or pickle-needing file was answered "does not say what data", asking for --data
        module = load_module(source, what="source")
        hp = module.hparams
        trained_on = _checkpoint_data(source)  # what `neuroview fit` trained it on, as its data module saved it
        if data is None:
            _check_rebuildable(source, trained_on)
            dm, name = recorded_datamodule(trained_on, "source", f"the checkpoint {source!r}"), trained_on["init_args"].get("name") or trained_on["class_path"].rsplit(".", 1)[1]
            dataset = {"name": str(name), "split": "test", "data_module": trained_on, "class_names": list(dm.class_names)}
        else:
            from ..data.read_as import check_classes, checkpoint_classes  # noqa: PLC0415

            dm = _data_module(data, trained_on)
            check_classes(dm, checkpoint_classes(source), f"--data: {data}")
            dataset = {"name": data, "split": "test", "data_module": _data_spec(data, dm, trained_on),
                       "class_names": list(dm.class_names)}
        kw = arch_kwargs(hp["arch"], num_classes=hp["num_classes"], in_channels=hp["in_channels"],
                         max_len=hp.get("max_len"), model_kwargs=hp.get("model_kwargs"))
        seed, training = _run_record(source)
        entry = {"architecture": hp["arch"], "arch_kwargs": kw, "recipe": None, "seed": seed, "dataset": dataset,
                 "training": training}
        from ..data.file_record import hold_to_checkpoint  # noqa: PLC0415

        hold_to_checkpoint(dm, source)  # its own training file, changed since (carved otherwise), refused when read
        return module.model.eval(), dm, entry, Path(source).stem
    net = create_model(source, pretrained=True, **({"root": zoo} if zoo else {}))
    entry = net.pretrained_cfg
    if not data:
        return net, recorded_datamodule(entry["dataset"]["data_module"], "source", f"the zoo entry {source!r}"), entry, source.split(".", 1)[1]
    from ..data.read_as import check_classes  # noqa: PLC0415

    dm = _data_module(data, entry["dataset"])  # the entry records the data it was sparsified and scored on, not its source's
    check_classes(dm, entry["dataset"].get("class_names"), f"--data: {data}")
    dataset = {"name": data, "split": "test", "data_module": _data_spec(data, dm, entry["dataset"].get("data_module")),
               "class_names": list(dm.class_names)}
    return net, dm, {**entry, "dataset": dataset}, source.split(".", 1)[1]


def _is_checkpoint(source: str) -> bool:
    """A ``neuroview fit`` checkpoint by its name: ``.ckpt``, ``.CKPT`` (a copy from another system) too."""
    return source.lower().endswith(".ckpt")


def _entry_name(args, entry: dict, tag: str, own: dict | None = None) -> str:
    """``--name``, checked before the work; else ``<architecture>.<tag>_sparse``, where a zoo entry sparsified on
    other data than its own (``own``: the dataset the source entry records) also names that data
    (``nv_lite.gunpoint_italypowerdemand_sparse``), so that the name does not promise the source's data set."""
    import re  # noqa: PLC0415

    from ..zoo.pretrained import check_entry_name  # noqa: PLC0415

    arch = entry["architecture"]
    if args.name is not None:  # save_pretrained's own rule (a name is a file in --out, never a path), said before the work
        return check_entry_name(args.name, arch, "--name")
    tag = re.sub(r"[^A-Za-z0-9_.-]+", "_", tag)  # a checkpoint's file name may hold spaces or other characters
    if args.data is None or _is_checkpoint(args.source) or own_data(entry["dataset"]["data_module"], own):
        return f"{arch}.{tag}_sparse"  # the entry's own data (own_data: named as the help says); a checkpoint by its file
    return f"{arch}.{tag}_{data_suffix(entry['dataset']['data_module'], args.data)}_sparse"  # a JSON's: name and hash


def _held_advice(args, arch: str, entry: dict | None = None, name: str = "") -> str:
    """What to do where ``--out`` holds the entry's name already. A checkpoint's default name is its file's, which runs
    share (each `neuroview fit` writes a last.ckpt): ``--name`` first, ``--overwrite`` would delete the other run's entry;
    so too where the held entry was made from other data (another file of the same stem): it would replace that result."""
    own = f"give this run's entry a name of its own with --name {arch}.<tag>"
    if entry is not None and not args.overwrite and (why := other_data(args.out, name, entry["dataset"]["data_module"])):
        return f"{why}: {own}, or pick another --out (--overwrite would replace that other data's result)"
    if args.name is None and _is_checkpoint(args.source):
        return (f"its name comes from the checkpoint's file name ({os.path.basename(args.source)!r}), not from its run: "
                f"{own}, or pick another --out (--overwrite would replace the earlier run's entry)")
    return f"pick another --out or pass --overwrite to replace it, or keep both: {own}"


def _data_module(data: str, trained_on: dict | None = None):
    """``--data``'s data module, read as the source's own training data was (:func:`.data_arg.data_module`)."""
    from .data_arg import data_module  # noqa: PLC0415

    check_data_name(data)  # a name: "data: expected ..." of datamodule_for named no option and no set meant
    return data_module(data, trained_on)


DATA_FORMS = "digits, mnist1d, GunPoint, a .npz, .csv or .tsv path or a JSON data-module spec"


def _check_rebuildable(source: str, trained_on: dict | None) -> None:
    """A checkpoint whose training data neuroview can rebuild, else a refusal asking for ``--data`` that says what the
    checkpoint records: no data arguments at all, or arguments but no class of ``neuroview.data`` (a ``pl.Trainer``
    checkpoint from before neuroview recorded it, or a data module of the user's own, never imported: by LightningCLI's
    ``_class_path``, it was refused as "dataset: ...", a key the user never typed)."""
    cls = (trained_on or {}).get("class_path")
    if isinstance(cls, str) and cls.rpartition(".")[0] == "neuroview.data":
        return
    if trained_on is None and _checkpoint_data(source, unnamed=True) is None:
        raise ValueError("--data: this checkpoint does not say what data it was trained on (written before data "
                         f"modules saved their arguments); pass --data ({DATA_FORMS})")
    what = (f"its class {cls!r} is not one of neuroview.data's" if cls else
            "a pl.Trainer checkpoint from before neuroview recorded the class, or a data module of your own")
    raise ValueError(f"--data: this checkpoint records its data arguments but no data module neuroview can rebuild "
                     f"({what}); pass --data ({DATA_FORMS})")


def _checkpoint_data(path: str, unnamed: bool = False) -> dict | None:
    from ..data.read_as import checkpoint_data  # noqa: PLC0415

    return checkpoint_data(path, unnamed)


def _data_spec(data: str, dm, trained: dict | None = None) -> dict:
    """The data-module spec of ``--data`` as the sparse entry's manifest keeps it (``neuroview explain`` rebuilds
    the data from it): a JSON spec as given, its files absolute (:func:`.spec_files.absolute_spec`); a name or an
    ``.npz``, ``.csv`` or ``.tsv`` path as the module it made, with its splits' options and, as ``read_like``,
    ``trained``: the spec of the data the source was trained on, whose channel statistics and series length it was read
    by (rebuilt from the file alone, it was read by its own)."""
    from .data_arg import check_spec_args  # noqa: PLC0415
    from .spec_files import absolute_spec  # noqa: PLC0415

    if data.lstrip().startswith("{"):  # checked, its class_path as the commands build it (a short name in full)
        return absolute_spec(check_spec_args(data))  # its relative path read from the later command's folder otherwise
    import os  # noqa: PLC0415

    name = type(dm).__name__  # a path as an absolute one: a later command run from another folder reads the same file
    args = {"path": os.path.abspath(os.path.expanduser(data))} if name in ("NpzDataModule", "CsvDataModule") else {"name": data} if name == "UCRDataModule" else {}
    from ..data.read_as import SAME_DATA, read_options  # noqa: PLC0415

    read_as = read_options(dm)  # as it was read (read_as_trained): normalize, resample, a CSV's channels, ...
    splits = {k: str(v) if isinstance(v, os.PathLike) else v  # seed, fractions, a test file: the same splits
              for k, v in ((k, getattr(dm, k)) for k in SAME_DATA if hasattr(dm, k))}
    spec = {"class_path": f"neuroview.data.{name}", "init_args": {**args, **splits, **read_as}}
    return spec | ({"read_like": trained} if isinstance(trained, dict) and "class_path" in trained else {})


def main(argv: list[str] | None = None) -> int:
    from ..zoo.pretrained import refuse_existing  # noqa: PLC0415

    p = argparse.ArgumentParser(
        prog="neuroview sparsify", allow_abbrev=False,  # --tol 2 was --tolerance 2
        description="Refit a NeuroView network's global classifier so that each class reads few units "
                    "(few steps for an RNN), within --tolerance accuracy points on validation data carved "
                    "from the training split; the test split is read once, to report.",
        epilog="example: neuroview sparsify nv_lite.gunpoint --max-k90 10 --out runs/sparse && "
               "neuroview explain --model nv_lite.gunpoint_sparse --zoo runs/sparse --out report",
    )
    p.add_argument("source", help="a zoo entry (e.g. nv_lite.gunpoint; `neuroview zoo 'nv_*'` lists them) or a "
                                   "Lightning checkpoint of `neuroview fit` (.ckpt)")
    p.add_argument("--data", default=None, help="digits, mnist1d, a UCR set, a .npz, .csv or .tsv path or a JSON data-module spec "
                                                "(default: the zoo entry's or the checkpoint's own; other data is read as it was: its normalize and resample, and a file of its own module in its format)")
    p.add_argument("--tolerance", type=float, default=1.0, help="accuracy points the sparse head may lose on validation (default 1)")
    p.add_argument("--deviance", type=float, default=DEVIANCE,
                   help=f"the share of the path's drop in validation loss a point must keep (default {DEVIANCE:g})")
    p.add_argument("--max-k90", type=float, default=None,
                   help="a readability budget: keep only points whose decisions on the training split (the predicted "
                        "logit, against the training mean code) need at most this many contributions for 90%% of their "
                        "evidence (the zoo's CNN entries use 10; default: none)")
    p.add_argument("--max-k90-steps", type=float, default=None,
                   help="an RNN's budget in time steps (each step's hidden states summed); with --max-k90 a point "
                        "must meet both (the zoo's RNN entries: --max-k90 50 --max-k90-steps 10 --max-steps-per-class 10)")
    p.add_argument("--k90-quantile", type=float, default=0.5,
                   help="the share of the training decisions a budget holds for: 0.5 the median (default), 1 every one")
    p.add_argument("--max-units-per-class", type=int, help="a cap on the units (hidden states) any class reads")
    p.add_argument("--max-steps-per-class", type=int, help="an RNN's cap on the time steps any class reads")
    p.add_argument("--distill", type=float, help="fit the path to the dense network's probabilities at this temperature")
    p.add_argument("--finetune", type=int, default=0,
                   help="epochs of nv.finetune_sparse afterwards: the backbone learns to serve the units the sparse "
                        "head reads, its support fixed, within the budget (default 0: the backbone stays as it was; the "
                        "zoo's sparse entries use 5, chosen on held-out data)")
    p.add_argument("--groups", default=None, help="unit (CNN default), step (RNN default) or hidden")
    p.add_argument("--seed", type=int, default=0, help=f"{SEED} (default 0; an int in [0, 2**64))")
    p.add_argument("--folds", type=int, default=5, help="the cross-validation folds on the training split, where the data "
                                                        "has no validation split (default 5; at most half the samples)")
    p.add_argument("--out", default="runs/sparse", help="a zoo folder to write the sparse entry into (default runs/sparse)")
    p.add_argument("--name", default=None,
                   help="the sparse entry's name, <architecture>.<tag> (default: a zoo entry's name plus _sparse, or "
                        "<architecture>.<checkpoint file stem>_sparse for a .ckpt; with --data other than a zoo entry's own, "
                        "<source>_<data>_sparse, <data> a JSON spec's set and a short hash of the spec)")
    p.add_argument("--overwrite", action="store_true", help="replace an entry of the same name already in --out")
    p.add_argument("--zoo", default=None, help="the zoo folder the source entry is read from (default: the installed "
                                                "zoo; e.g. what an earlier `neuroview sparsify --out` or `minirocket --out` "
                                                "wrote: a folder with a manifest.json)")
    from .cli_hints import folds_advice, parse_args, said  # noqa: PLC0415

    args = expand_paths(parse_args(p, argv, "sparsify", _file_spec), "out", "zoo")
    if args.finetune < 0:  # refused before the work (it was refused as `epochs` once the path had been walked)
        p.error(f"--finetune: expected epochs >= 0, got {args.finetune}")
    try:
        if args.zoo and _is_checkpoint(args.source):
            raise ValueError("--zoo: the folder a zoo entry is read from; a checkpoint (.ckpt) is read as it is")
        check_source(args.source, args.zoo)  # a weight file, a folder: before any name is looked up
        check_options(args.tolerance, args.groups, args.deviance, args.max_k90, args.max_k90_steps, args.k90_quantile,
                      args.max_units_per_class, args.max_steps_per_class, args.distill)  # before the source is read
        check_seed(args.seed, SEED)  # what it sets here: the folds, and --finetune's shuffle and dropout
        net, dm, entry, tag = _source(args.source, args.data, args.zoo)
        name = _entry_name(args, entry, tag, (getattr(net, "pretrained_cfg", None) or {}).get("dataset"))
        refuse_existing(args.out, [name], args.overwrite, "--name" if args.name is not None else "name",  # before the work
                        "pick a shorter one" if args.name is not None else "name the entry with a shorter --name",
                        _held_advice(args, entry["architecture"], entry, name))
        dm.setup("fit")
        x, lengths, _ = unpack(next(iter(dm._loader("train"))))
        check_reads(net, x, lengths, f"--data: {args.data or entry['dataset']['name']}")
        sparse = sparsify(net, dm, tolerance=args.tolerance, groups=args.groups, seed=args.seed,
                          deviance=args.deviance, max_k90=args.max_k90, max_k90_steps=args.max_k90_steps,
                          k90_quantile=args.k90_quantile, max_units_per_class=args.max_units_per_class,
                          max_steps_per_class=args.max_steps_per_class, distill=args.distill, folds=args.folds)
        if args.finetune:
            sparse = finetune_sparse(sparse, dm, epochs=args.finetune, seed=args.seed, max_k90=args.max_k90,
                                     max_k90_steps=args.max_k90_steps, k90_quantile=args.k90_quantile)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as e:  # ImportError: a missing extra (aeon)
        message = folds_advice(as_option(str(e), _OPTIONS))  # --data.init_args.*, refused here: the JSON spec instead
        print(f"neuroview sparsify: {said(message, 'sparsify', args.data, _file_spec(args))}", file=sys.stderr)
        return 2
    return _saved(args, net, sparse, dm, entry, name)


def _saved(args, net, sparse, dm, entry: dict, name: str) -> int:
    """0 where :func:`_write` wrote the entry; 2, said in one line, where the save failed after the work."""
    try:
        _write(args, net, sparse, dm, entry, name)
    except OSError as e:  # --out made unwritable, or a disk filled, during the work: said, not a traceback
        print(f"neuroview sparsify: {not_written(args.out, e)}", file=sys.stderr)
        return 2
    except ValueError as e:  # another run's entry of that name, saved meanwhile (it was a traceback advising overwrite=True)
        why = None if args.overwrite else written_meanwhile(args.out, [name], f"--name {entry['architecture']}.<tag>")
        print(f"neuroview sparsify: {why or as_option(str(e), _OPTIONS)}", file=sys.stderr)
        return 2
    return 0


def _file_spec(args) -> dict | None:
    """The spec ``--data FILE`` is read by, as the sparse entry would record it (the source's reading options and
    ``read_like``: a JSON spec gets none of them unsaid), for a hint; None where that cannot be told."""
    from ..zoo.pretrained import get_entry  # noqa: PLC0415

    try:
        trained = (_checkpoint_data(args.source) if _is_checkpoint(args.source) else
                   get_entry(args.source, args.zoo)[1]["dataset"])
        spec = trained.get("data_module", trained) if isinstance(trained, dict) else None
        return _data_spec(args.data, _data_module(args.data, trained), spec)
    except (ValueError, TypeError, KeyError, OSError):
        return None


def expand_paths(args, *names: str):
    """``args`` with the folder options ``names`` (``--out``, ``--zoo``) ``~``-expanded: no shell expands ``--out=~/x``,
    a quoted ``'~/x'`` or one in a job file, and ``./~/x`` was written (or read) instead of the home folder's."""
    import os  # noqa: PLC0415

    for name in names:
        if isinstance(getattr(args, name, None), str):
            setattr(args, name, os.path.expanduser(getattr(args, name)))
    return args


def _write(args, net, sparse, dm, entry: dict, name: str) -> None:
    """Report the dense and sparse networks on the test split and write ``name`` into ``--out``."""
    from pathlib import Path  # noqa: PLC0415

    from ..attribution.readability import readability  # noqa: PLC0415
    from ..data.file_record import RECORD, read_record  # noqa: PLC0415
    from ..zoo.evaluate import score_test_split  # noqa: PLC0415
    from ..zoo.pretrained import save_pretrained  # noqa: PLC0415
    from .sparse_callback import sparse_arch_kwargs  # noqa: PLC0415 - it imports Lightning

    path = sparse.sparsity_path
    print(path)
    kept, tuned_seed = (sparse.finetuned["epochs_kept"], sparse.finetuned["seed"]) if args.finetune else (None, None)
    if args.finetune:  # a budget may keep fewer epochs than asked, or none: then the entry is the head before fine-tuning
        print(f"fine-tuned {kept} of {args.finetune} epochs" + ("" if kept == args.finetune else
              " (the readability budget was broken after them)" if kept else
              " (the readability budget was broken after the first: the entry is the sparse head before fine-tuning)"))
    test = list(dm.test_dataloader())
    dense, light = readability(net, test, baseline=None), readability(sparse, test, baseline="mean")
    steps = f", {light['k90_steps']:g} steps" if "k90_steps" in light else ""
    print(f"test split: dense {dense['accuracy']:.1f}% ({dense['units_per_class']:.0f} units per class), sparse "
          f"{light['accuracy']:.1f}% ({light['units_per_class']:.1f} per class, k90 {light['k90']:g}{steps} against the mean code)")
    # the sparse head standardizes its features, and holds the shared part of a shared_steps head in its own weight
    kwargs = sparse_arch_kwargs(entry["arch_kwargs"])  # the Sparsify callback's rule: one place
    out, record = Path(args.out), read_record(dm, name)  # the file's training split as read: changed since, refused
    dataset = entry["dataset"] | ({"data_module": {**entry["dataset"]["data_module"], RECORD: record}} if record else {})
    save_pretrained(sparse, name, architecture=entry["architecture"], arch_kwargs=kwargs, dataset=dataset,
                    recipe=entry.get("recipe"), seed=entry.get("seed"), root=out, overwrite=args.overwrite,
                    metrics=score_test_split(sparse, dm) | {k: light[k] for k in ("k90", "k90_steps", "top10_share", "units_per_class")
                                                           if k in light},
                    extra={"sparsified_from": args.source, **_recipe_commit(entry),
                           "sparsify": sparsify_record(path, finetune=args.finetune, kept=kept, finetune_seed=tuned_seed)})
    import shlex  # noqa: PLC0415

    print(f"wrote {name} to {out}; explain it with: neuroview explain --model {shlex.quote(name)} --zoo "
          f"{shlex.quote(str(out))} --out {shlex.quote('report/' + name)}")


#: The library's argument names in the refusals this command prints, and the options that gave them.
_OPTIONS = {"name": "source", "epochs": "--finetune", **{k: "--" + k.replace("_", "-") for k in (
    "tolerance", "deviance", "max_k90", "max_k90_steps", "k90_quantile", "max_units_per_class", "max_steps_per_class",
    "distill", "groups", "seed", "folds")}}


def as_option(message: str, options: dict[str, str]) -> str:
    """``message`` whose leading ``name:`` is a library function's argument, with the option the user typed for it
    (``options[name]``) said at its end: ``k90_quantile: expected ... (option --k90-quantile)``."""
    head, sep, _ = message.partition(": ")
    if not sep or head not in options:
        return message
    given = options[head]
    return f"{message} ({'option' if given.startswith('-') else 'argument'} {given})"


def sparsify_record(path, finetune: int = 0, kept: int | None = None, finetune_seed: int | None = None) -> dict:
    """A sparse entry's ``sparsify`` record (its manifest's), from the :class:`.sparsity_path.SparsityPath` the network
    was chosen on: the options it was sparsified under, whether the chosen point met the deviance rule and the budget
    (``False``: :func:`.sparsify.sparsify` kept the nearest point, and warned), the folds and their seed, and the path;
    ``finetune``/``kept``/``finetune_seed``: the epochs of :func:`.sparse_finetune.finetune_sparse` asked for and kept,
    and its seed (None: not fine-tuned)."""
    return {"tolerance": path.tolerance, "deviance": path.deviance, "max_k90": path.max_k90,
            "max_k90_steps": path.max_k90_steps, "k90_quantile": path.k90_quantile,
            "max_units_per_class": path.max_units_per_class, "max_steps_per_class": path.max_steps_per_class,
            "finetune": finetune, "finetune_epochs_kept": kept, "finetune_seed": finetune_seed, "distill": path.distill,
            "groups": path.groups, "seed": path.seed, "folds": path.folds,  # folds None: a validation split
            "deviance_met": path.deviance_met, "budget_met": path.budget_met, "path": path.to_records()}


def _recipe_commit(entry: dict) -> dict:
    """``{"training": {"recipe_commit": ...}}`` where the source was trained with its recipe as of another commit; a
    checkpoint's run: :func:`_run_record`'s."""
    if "checkpoint" in (training := entry.get("training") or {}):
        return {"training": training}
    commit = training.get("recipe_commit")
    return {"training": {"recipe_commit": commit}} if commit else {}


def _run_record(source: str) -> tuple[int | None, dict]:
    """``(seed, training record)`` of a ``neuroview fit`` checkpoint: the run's ``seed_everything`` where it records it
    (``neuroview_seed``), else None; the record names the checkpoint and says what it does not record, and why."""
    import os  # noqa: PLC0415

    from ..zoo.weights import read_checkpoint  # noqa: PLC0415

    seed = read_checkpoint(source, "source").get("neuroview_seed")
    seed = seed if isinstance(seed, int) and not isinstance(seed, bool) else None
    missing = {"recipe": "a checkpoint keeps the run's options as resolved (its hyper-parameters and data module), not "
                         "the recipe file they came from"}
    if seed is None:
        missing["seed"] = ("the checkpoint records no seed_everything (written before `neuroview fit` recorded it, or a "
                           "run with seed_everything: false)")
    return seed, {"checkpoint": os.path.abspath(source), "not_recorded": missing}
