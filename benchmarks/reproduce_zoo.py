"""Train the zoo from its recipes, export checkpoints, check them, and build the accuracy table.

Every zoo entry is one recipe run once: ``neuroview fit --config <recipe> --seed_everything <seed>``
(in a temporary folder), the model of the **last** epoch (no selection on the test split), scored
on the full test split of the recipe's data module.

    # re-train every manifest entry from its recipe and seed, compare with the manifest
    nice -n 10 python benchmarks/reproduce_zoo.py
    # only re-score the committed weights (no training): must agree exactly
    python benchmarks/reproduce_zoo.py --no-train
    # (re)create entries: train seed 0 of these recipes and write checkpoints/ + manifest.json
    nice -n 10 python benchmarks/reproduce_zoo.py --export recipes/digits_small_cnn.yaml recipes/digits_nv_small_cnn.yaml
    # the README table: every recipe of the manifest with seeds 0 1 2 (runs are cached in
    # benchmarks/results/zoo_runs.json with the version of the recipe they trained, the SHA-256 of
    # what it sets: a recipe whose settings were edited is trained again, a comment edit keeps its
    # runs), MiniRocket from benchmarks/results/minirocket.json
    nice -n 10 python benchmarks/reproduce_zoo.py --table --seeds 0 1 2

Tolerance of a re-trained entry: ``TOLERANCE`` (2 accuracy points, or 2 test samples on the
small sets, whichever is larger). CPU runs of the same seed, torch version and thread count
reproduce bit for bit; another thread count or BLAS changes float summation order, which moves
a few borderline test samples, and the std over seeds (see the table) is of that order.
"""

from __future__ import annotations

import argparse
import csv
import glob
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from _cache import read_cache  # names a cut-short results file and what to do (a sibling: this script's folder)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
RUNS = RESULTS / "zoo_runs.json"
#: The version (:func:`recipe_sha`: what the file sets, blind to comments and layout) of each recipe whose runs in
#: zoo_runs.json were recorded before a run kept its recipe's ``sha``: each is the version of the recipe at the commit
#: its runs record (runs that record none: the oldest commit whose zoo_runs.json holds them as they are now), checked
#: with git for every run on 2026-12-07 (/tmp/s19/M7/legacy_shas.py). A run counts for its recipe only while the file
#: still sets the same (:func:`run_sha`): an edit of a comment keeps its runs, an edit of a setting does not.
LEGACY_SHAS = {
    "recipes/digits_nv_small_cnn.yaml": "372aa9caf619aee5", "recipes/digits_nv_vit_tiny.yaml": "0df8ef06d1efd973",
    "recipes/digits_small_cnn.yaml": "d066aaa46aebdb83", "recipes/digits_vit_tiny.yaml": "b67bb1c951760a19",
    "recipes/gunpoint_fcn1d.yaml": "7489192af2a3e8d3", "recipes/gunpoint_gru.yaml": "36a3f4644009f240",
    "recipes/gunpoint_nv_fcn1d.yaml": "ed3107c5b18a48e1", "recipes/gunpoint_nv_gru.yaml": "731cbcf4a2740b74",
    "recipes/japanesevowels_lstm.yaml": "1af18610d4c082b0", "recipes/japanesevowels_nv_lstm.yaml": "6e2665b010a6318c",
    "recipes/mnist1d_cnn1d.yaml": "368e4cf9b5d7b970", "recipes/mnist1d_nv_cnn1d.yaml": "4e45904f4481fe4a"}
#: The recipe version each zoo entry exported before an entry kept its ``training.recipe_sha`` was trained from: its
#: recipe at the oldest commit whose manifest holds the entry's weights (checked with git as above).
ENTRY_SHAS = {
    "fcn1d.gunpoint": "7489192af2a3e8d3", "lstm.japanesevowels": "1af18610d4c082b0",
    "nv_fcn1d.gunpoint": "ed3107c5b18a48e1", "nv_lstm.japanesevowels": "6e2665b010a6318c",
    "nv_small_cnn.digits": "372aa9caf619aee5", "nv_small_cnn.mnist1d": "4e45904f4481fe4a",
    "nv_vit_tiny.digits": "0df8ef06d1efd973", "small_cnn.digits": "d066aaa46aebdb83",
    "small_cnn.mnist1d": "368e4cf9b5d7b970", "vit_tiny.digits": "b67bb1c951760a19"}
TOLERANCE = 0.02  # accuracy (fraction); see the module docstring
TAGS = {"DigitsDataModule": "digits", "MNIST1DDataModule": "mnist1d"}


def recipe_sha(recipe: str, root: Path | None = None) -> str:
    """The version of ``recipe`` (a path under ``root``, default this script's checkout): the SHA-256 prefix of what it
    sets (its parsed YAML as JSON, keys sorted), so that an edit of a comment or of the layout keeps its runs."""
    data = yaml.safe_load(((root or ROOT) / recipe).read_text())
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def run_sha(run: dict) -> str | None:
    """The recipe version a zoo_runs.json run was trained from (:data:`LEGACY_SHAS` for runs that did not record it)."""
    return run.get("sha") or LEGACY_SHAS.get(run["recipe"])


def entry_sha(name: str, entry: dict) -> str | None:
    """The recipe version manifest entry ``name`` was trained from (:data:`ENTRY_SHAS` for entries that did not record
    it; None where nothing says)."""
    return entry.get("training", {}).get("recipe_sha") or ENTRY_SHAS.get(name)


def _tag(data_cfg: dict) -> str:
    cls = data_cfg["class_path"].rsplit(".", 1)[-1]
    if cls == "UCRDataModule":
        return data_cfg["init_args"]["name"].lower()
    return TAGS.get(cls, cls.removesuffix("DataModule").lower())


def zoo_recipe(entry: dict) -> str:
    """``entry``'s recipe as it was trained: the working tree's file, or where the recipe has changed since
    the entry was trained (its ``training.recipe_commit``: the ``ucr_*`` recipes after issue 24's budget from
    the training loss and per-series normalization, which the zoo's time-series entries were not re-trained
    with), a temporary copy of the file at that commit (read with git)."""
    commit = entry.get("training", {}).get("recipe_commit")
    if commit is None:
        return entry["recipe"]
    old = subprocess.run(["git", "show", f"{commit}:{entry['recipe']}"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    if (ROOT / entry["recipe"]).read_text() == old:
        return entry["recipe"]
    path = Path(tempfile.mkdtemp(prefix="zoo_recipe_")) / Path(entry["recipe"]).name
    path.write_text(old)
    return str(path)


def recipe_arguments(entry: dict) -> list[str]:
    """The command-line arguments a manifest entry was trained with beyond its recipe and seed
    (the data set of a ``ucr_*`` recipe, for one), read from its training command; and the surrogate
    gradient's state (``training.grad_state``) of an entry trained before today's default."""
    import shlex

    words, out, i = shlex.split(entry["training"]["command"])[2:], [], 0  # after "neuroview fit"
    while i < len(words):
        if words[i] in ("--config", "--seed_everything"):  # train()'s own arguments
            i += 2
            continue
        out.append(words[i])
        i += 1
    if entry["training"].get("grad_state"):  # trained before the 4-bit default (eceb1a3): the state it had
        out += ["--model.model_kwargs.grad_state", entry["training"]["grad_state"]]
    return out


def train(recipe: str, seed: int, extra: list[str] | None = None, threads: int | None = None, split: str = "test") -> dict:
    """Run one recipe with one seed; return the plain model, its arguments, data spec, the metrics of
    ``split`` (``"test"``, or ``"val"``: the validation split carved from the training split, and
    then the test split is never read) and the end of training: the epochs it completed and the steps it
    ran, why it stopped (``fit["stopped"]``: "max", "plateau", "time" or "other", read from its last
    checkpoint: :func:`stop_reason`), its last epoch's training loss and the final weights' accuracy on
    the training split it was fit on (eval mode); ``budget``: its max_epochs and max_steps."""
    import torch

    from neuroview.zoo import pretrained as zoo
    from neuroview.training.module import NeuroViewModule
    from neuroview.zoo.evaluate import evaluate

    with tempfile.TemporaryDirectory(prefix="zoo_run_") as tmp:
        cmd = [sys.executable, "-m", "neuroview.cli", "fit", "--config", str(ROOT / recipe),
               "--seed_everything", str(seed), "--trainer.default_root_dir", tmp,
               "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
               "--test_after_fit", "false", *(extra or [])]  # scored below, on the exported weights
        env = dict(os.environ)
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{recipe} seed {seed}: neuroview fit failed:\n{proc.stderr[-3000:]}")
        seconds = time.perf_counter() - t0
        configs = glob.glob(os.path.join(tmp, "**", "config.yaml"), recursive=True)
        with open(configs[0]) as f:
            cfg = yaml.safe_load(f)
        last = os.path.join(tmp, "checkpoints", "last.ckpt")
        # The zoo promises the last epoch's weights: check it (Lightning 2.6's own last.ckpt lagged
        # behind at the best epoch before neuroview.training.callbacks.Checkpoint).
        ckpt = torch.load(last, map_location="cpu", weights_only=False)
        end = _end_of_training(tmp)
        if ckpt["epoch"] != end["last_epoch"]:
            raise RuntimeError(f"{recipe} seed {seed}: last.ckpt holds epoch {ckpt['epoch']}, expected the last, {end['last_epoch']}")
        stopped, epochs = stop_reason(ckpt, cfg)
        if stopped == "other" and not _stops_early(cfg):
            raise RuntimeError(f"{recipe} seed {seed}: stopped at step {ckpt['global_step']}, epoch {ckpt['epoch']}, "
                               f"before its maximum ({_budget(cfg)}), with nothing to stop it")
        module = NeuroViewModule.load_from_checkpoint(last, map_location="cpu")
    hp = module.hparams
    model = module.model.eval()
    # The builder's own arguments, so that create_model(architecture, **arch_kwargs) rebuilds it
    # without Lightning: the data's shape routed as the module's build_model routes it, then model_kwargs.
    from neuroview.zoo.build import arch_kwargs as route

    arch_kwargs = route(hp.arch, num_classes=hp.num_classes, in_channels=hp.in_channels, max_len=hp.max_len,
                        model_kwargs=hp.model_kwargs)
    data_spec = {"class_path": cfg["data"]["class_path"], "init_args": cfg["data"].get("init_args", {})}
    dm = zoo.make_datamodule(data_spec)
    torch.manual_seed(0)
    if split == "test":
        metrics = zoo.score_test_split(model, dm)
    else:
        dm.setup("fit")
        c, n = evaluate(model, dm.val_dataloader())
        metrics = {"val_acc": c / n, "val_size": n}
    dm.setup("fit")
    c, n = evaluate(model, dm._loader("train"))  # the training split in order, without augmentation
    fit = {"train_acc": c / n, "train_size": n, "train_loss": end["train_loss"], "stopped": stopped}
    return {"model": model, "arch": hp.arch, "arch_kwargs": arch_kwargs, "data": data_spec, "tag": _tag(data_spec),
            "metrics": metrics, "epochs": epochs, "steps": ckpt["global_step"], "seconds": seconds, "fit": fit,
            "threads": threads, "budget": _budget(cfg), "mid_epoch": ckpt.get("neuroview_mid_epoch") is not None}


def _budget(cfg: dict) -> dict:
    """The run's ``max_epochs`` and ``max_steps`` (-1: none), as its config gave them."""
    return {k: cfg["trainer"].get(k) or -1 for k in ("max_epochs", "max_steps")}


def stop_reason(ckpt: dict, cfg: dict) -> tuple[str, int]:
    """Why a run ended and the epochs it completed, read from its ``last.ckpt`` (``ckpt``) and its config: ``"max"``
    (its max_epochs or max_steps), ``"plateau"`` (its EarlyStopping fired: the loss stopped improving), ``"time"``
    (``--trainer.max_time``), else ``"other"`` (another rule of EarlyStopping, another callback). Not "plateau" for
    any stop before the maximum: a run that max_time cut was recorded so, and its cut epoch counted as one."""
    from neuroview.training.resume_checks import early_stops, stopped

    mid_epoch = ckpt.get("neuroview_mid_epoch") is not None
    done = ckpt["epoch"] + (not mid_epoch)  # saved mid-epoch (max_time, max_steps): not done
    budget = _budget(cfg)
    # by epochs only at the last epoch's end: a max_time cut within it is no max
    if (budget["max_steps"] > 0 and ckpt["global_step"] >= budget["max_steps"]) or (
            budget["max_epochs"] > 0 and ckpt["epoch"] >= budget["max_epochs"] - 1 and not mid_epoch):
        return "max", done
    fired = [s for s in early_stops(ckpt.get("callbacks")).values() if stopped(s)]
    if fired:  # stopping_reason 3: patience exhausted (no reason saved before Lightning 2.6: the patience it had)
        return ("plateau" if fired[0].get("stopping_reason") in (None, 3) else "other"), done
    return ("time" if cfg["trainer"].get("max_time") else "other"), done


def training_record(run: dict, command: str, sha: str | None = None) -> dict:
    """A zoo entry's ``training``: the run's budget (``max_epochs``, and ``max_steps`` where it has one), the epochs
    and steps it ran, why it stopped (:func:`stop_reason`), the weights kept (the last epoch's, or the last step's
    where the run ended within an epoch: max_steps, max_time), its command and the recipe version it trained
    (``recipe_sha``, :func:`recipe_sha`: docs_tables' check names an entry of an older version than its seeds)."""
    budget = {k: v for k, v in run["budget"].items() if v > 0}  # -1: none (max_epochs of a max_steps-only recipe)
    return {**budget, "epochs": run["epochs"], "steps": run["steps"], "stopped": run["fit"]["stopped"],
            "checkpoint": "last step" if run.get("mid_epoch") else "last epoch", "seconds": round(run["seconds"], 1),
            "command": command, **({"recipe_sha": sha} if sha else {})}


def _end_of_training(run_dir: str) -> dict:
    """The last epoch of a run's CSV log (``logs/version_*/metrics.csv``) and its mean training loss."""
    rows = []
    for path in glob.glob(os.path.join(run_dir, "logs", "*", "metrics.csv")):
        with open(path, newline="") as f:
            rows += [r for r in csv.DictReader(f) if r.get("train_loss_epoch")]
    if not rows:
        raise RuntimeError(f"{run_dir}: no train_loss_epoch in the run's metrics.csv")
    last = max(rows, key=lambda r: int(r["epoch"]))
    return {"last_epoch": int(last["epoch"]), "train_loss": float(last["train_loss_epoch"])}


def _stops_early(cfg: dict) -> bool:
    """Whether the run's configuration has a callback that may stop it before its maximum."""
    return any("EarlyStopping" in str(c.get("class_path", "")) for c in cfg["trainer"].get("callbacks") or []
               if isinstance(c, dict))


def export(recipe: str, seed: int, threads: int | None) -> None:
    from neuroview.zoo import pretrained as zoo

    sha = recipe_sha(recipe)  # the version trained: taken as the fit reads the recipe, not when the run ends
    run = train(recipe, seed, threads=threads)
    name = f"{run['arch']}.{run['tag']}"
    from neuroview.zoo.pretrained import make_datamodule

    # the names of the classes its outputs index: explain and sparsify refuse other data that numbers other ones
    dataset = {"name": run["tag"], "data_module": run["data"], "split": "test",
               "class_names": make_datamodule(run["data"]).class_names}
    m = run["metrics"]
    entry = zoo.save_pretrained(
        run["model"], name, architecture=run["arch"], arch_kwargs=run["arch_kwargs"], dataset=dataset,
        recipe=recipe, seed=seed, metrics=m, overwrite=True,  # re-training an entry re-exports it
        extra={"training": training_record(run, f"neuroview fit --config {recipe} --seed_everything {seed}", sha)},
    )
    print(f"{name}: test {100 * m['test_acc']:.2f}% ({m['test_size']}), slice {100 * m['slice_acc']:.2f}% "
          f"({m['slice_size']}), {entry['num_params']:,} params, {entry['size_bytes'] / 1e6:.2f} MB, {run['seconds']:.0f} s")
    _record(recipe, seed, run, sha)


def provenance() -> dict:
    """The code a run was made with: the commit of the working tree (``+dirty`` where tracked files
    other than the results differ from it) and the day. A cached run is of its commit's code, not of the code now."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!benchmarks/results"],
                           cwd=ROOT, capture_output=True, text=True).stdout.strip()  # the runs' own results file aside
    return {"commit": (head or "unknown") + ("+dirty" if dirty else ""), "date": time.strftime("%Y-%m-%d")}


def _record(recipe: str, seed: int, run: dict, sha: str) -> None:
    from neuroview.zoo.pretrained import _locked

    with _locked(RESULTS):  # parallel runs record into one file
        _record_unlocked(recipe, seed, run, sha)


def _record_unlocked(recipe: str, seed: int, run: dict, sha: str) -> None:
    """Keep ``run`` (seed ``seed`` of version ``sha`` of ``recipe``) in zoo_runs.json, in place of any earlier run of
    that recipe and seed: the tables count only runs of the recipe as it is (:func:`run_sha`)."""
    from neuroview._io import atomic_write  # the one temp-and-rename writer

    import torch

    runs = read_cache(RUNS)
    runs[f"{recipe}@{seed}"] = {"recipe": recipe, "seed": seed, "sha": sha, "arch": run["arch"], "tag": run["tag"],
                                "test_acc": run["metrics"]["test_acc"], "test_size": run["metrics"]["test_size"],
                                "seconds": round(run["seconds"], 1), **provenance(), "torch": torch.__version__,
                                "omp_threads": run.get("threads"),
                                "train_acc": run["fit"]["train_acc"]}
    atomic_write(RUNS, (json.dumps(dict(sorted(runs.items())), indent=2) + "\n").encode())


def reproduce(names: list[str], train_again: bool, threads: int | None) -> int:
    from neuroview.zoo import pretrained as zoo

    entries = zoo.read_manifest()
    bad = 0
    print(f"{'entry':32s} {'manifest':>9s} {'now':>9s} {'diff':>7s}  verdict")
    for name in names or sorted(entries):
        e = entries[name]
        want = e["metrics"]["test_acc"]
        if train_again:
            got = train(zoo_recipe(e), e["seed"], extra=recipe_arguments(e), threads=threads)["metrics"]["test_acc"]
            tol = max(TOLERANCE, 2 / e["metrics"]["test_size"])
        else:
            got = zoo.score_test_split(zoo.load_pretrained(name), zoo.make_datamodule(e["dataset"]["data_module"]))["test_acc"]
            tol = 1 / e["metrics"]["test_size"]  # the same weights: at most one borderline sample may flip
        ok = abs(got - want) <= tol + 1e-9
        bad += not ok
        print(f"{name:32s} {100 * want:8.2f}% {100 * got:8.2f}% {100 * (got - want):+6.2f}  {'ok' if ok else 'OUTSIDE'} (tolerance {100 * tol:.2f})")
    return 1 if bad else 0


def table(recipes: list[str], seeds: list[int], threads: int | None, retrain: bool) -> str:
    """The accuracy table over ``seeds``, training each seed that has no run of its recipe as the file is now
    (its :func:`recipe_sha`: a run of an edited recipe is of another recipe, and is trained again)."""
    runs = read_cache(RUNS)
    shas = {recipe: recipe_sha(recipe) for recipe in recipes}
    for recipe in recipes:
        for seed in seeds:
            cached = runs.get(f"{recipe}@{seed}")
            if cached is not None and run_sha(cached) == shas[recipe] and not retrain:
                continue
            shas[recipe] = recipe_sha(recipe)  # the version this run trains
            run = train(recipe, seed, threads=threads)
            print(f"{recipe} seed {seed}: {100 * run['metrics']['test_acc']:.2f}% ({run['seconds']:.0f} s)", flush=True)
            _record(recipe, seed, run, shas[recipe])
            runs = read_cache(RUNS)
    mini = read_cache(RESULTS / "minirocket.json")
    by_tag: dict[str, list] = {}
    for recipe in recipes:
        rs = [runs[f"{recipe}@{s}"] for s in seeds
              if f"{recipe}@{s}" in runs and run_sha(runs[f"{recipe}@{s}"]) == shas[recipe]]
        if rs:
            by_tag.setdefault(rs[0]["tag"], []).append((rs[0]["arch"], recipe, [r["test_acc"] for r in rs]))

    def fmt(accs: list[float]) -> str:
        if not accs:
            return "-"
        mean = 100 * statistics.fmean(accs)
        std = 100 * statistics.pstdev(accs) if len(accs) > 1 else 0.0
        return f"{mean:.1f} ± {std:.1f}"

    lines = ["| dataset | standard | accuracy | NeuroView | accuracy | MiniRocket |",
             "|---|---|---|---|---|---|"]
    for tag, rows in by_tag.items():
        std_rows = [r for r in rows if not r[0].startswith("nv_")]
        nv_rows = [r for r in rows if r[0].startswith("nv_")]
        ref = mini.get(tag)
        ref_s = f"{100 * ref['mean']:.1f} ± {100 * ref['std']:.1f}" if ref else "-"
        for i in range(max(len(std_rows), len(nv_rows))):
            s = std_rows[i] if i < len(std_rows) else None
            n = nv_rows[i] if i < len(nv_rows) else None
            lines.append(f"| {tag if i == 0 else ''} | {s[0] if s else '-'} | {fmt(s[2]) if s else '-'} | "
                         f"{n[0] if n else '-'} | {fmt(n[2]) if n else '-'} | {ref_s if i == 0 else ''} |")
    n_seeds = len(seeds)
    lines.append("")
    lines.append(f"Test accuracy in %, mean ± population std over seeds {' '.join(map(str, seeds))} ({n_seeds} runs each), "
                 "last epoch of each recipe.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="manifest entries to reproduce (default: all)")
    p.add_argument("--no-train", action="store_true", help="only re-score the committed weights on the full test split")
    p.add_argument("--export", nargs="+", metavar="RECIPE", help="train these recipes and write their zoo entries")
    p.add_argument("--seed", type=int, default=0, help="seed of exported entries")
    p.add_argument("--table", action="store_true", help="train every manifest recipe but the ucr_* ones "
                   "(ucr_accuracy.py runs those) with --seeds and print the accuracy table")
    p.add_argument("--recipes", nargs="+", default=None, help="recipes of the table (default: those of the manifest)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--retrain", action="store_true", help="with --table: ignore cached runs")
    p.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS of each training run")
    args = p.parse_args(argv)
    if args.export:
        for recipe in args.export:
            export(recipe, args.seed, args.threads)
        return 0
    if args.table:
        from neuroview.zoo import pretrained as zoo

        # the ucr_* recipes run on many sets: their rows are benchmarks/ucr_accuracy.py's runs of the entries' own
        # versions (docs_tables reads them there), so the table trains them only when --recipes names them
        recipes = args.recipes or sorted({e["recipe"] for e in zoo.read_manifest().values()
                                          if not Path(e["recipe"]).name.startswith("ucr_")})
        print(table(recipes, args.seeds, args.threads, args.retrain))
        return 0
    return reproduce(args.names, not args.no_train, args.threads)


if __name__ == "__main__":
    sys.exit(main())
