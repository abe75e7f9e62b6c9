"""Sparse variants of the zoo's NeuroView entries, made from the dense ones by ``nv.sparsify``.

For every dense NeuroView entry of ``checkpoints/manifest.json`` (seed 0: the zoo's own weights;
other seeds: the entry's recipe re-trained by ``reproduce_zoo.train``), the head is refitted on the
training split with the defaults of ``nv.sparsify`` (validation from the training split: the data
module's validation split when it has one, else 5-fold cross-validation; the test split is read
once, afterwards, to report). Measured on the full test split, for the dense and the sparse head:
accuracy, units per class, and the median k90 and top-10 share of the predicted logit, against the
training mean code (``nv.mean_codes``, exact; what the pictures show) and against zero.

    nice -n 10 python benchmarks/sparsify_zoo.py                   # seed 0 of every entry, cached
    nice -n 10 python benchmarks/sparsify_zoo.py --seeds 1 2 --entries nv_lite.gunpoint
    nice -n 10 python benchmarks/sparsify_zoo.py $BUDGET          # with the zoo's readability budget
    python benchmarks/sparsify_zoo.py --export $BUDGET            # write <entry>_sparse into the zoo
    python benchmarks/sparsify_zoo.py --dense-readability         # only the dense entries' readability
    nice -n 10 python benchmarks/sparsify_zoo.py --recentre       # the fine-tuned sparse entries' spreads, no training

with ``BUDGET="--max-k90 10 --rnn-max-k90 50 --max-k90-steps 10 --max-steps-per-class 10 --finetune 5"``.
The zoo's sparse entries are made with a readability budget, issue 22's goal: the most accurate point on
validation whose training decisions need at most 10 contributions for 90% of their evidence (a CNN: 10
units; an RNN: 10 time steps and 50 hidden states, each class capped at 10 steps, so that no decision on
any data reads more); then 5 epochs of ``nv.finetune_sparse`` (chosen on
held-out data, ``benchmarks/sparse_finetune_choice.py``). The runs with sparsify's default rule (no budget), and
the RNNs' earlier runs within 10 hidden states, are kept beside them for comparison.

Runs are cached one by one in ``benchmarks/results/sparsify_zoo.json`` (key: entry, seed, budget), so
the table fills over several sittings. ``--export`` (seed 0 only) writes the sparse checkpoints and
their manifest entries, and adds the dense entries' readability to their own ``metrics``.

``--recentre`` brings the fine-tuned sparse entries exported before ``nv.finetune_sparse`` re-estimated the head's
standardization on the fine-tuned codes (ee8d37c) to what it returns now, without training: :func:`recentre`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "sparsify_zoo.json"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cache import read_cache, write_cache  # noqa: E402 - resumable caches, written whole
from _sparse_records import finetune_kept, recentre_names, spread_off  # noqa: E402 - --recentre's record, words, names


def dense_entries() -> list[str]:
    from neuroview.zoo.pretrained import read_manifest

    return sorted(n for n, e in read_manifest().items() if n.startswith("nv_") and not n.endswith("_sparse"))


def sparse_entries() -> list[str]:
    from neuroview.zoo.pretrained import read_manifest

    return sorted(n for n, e in read_manifest().items() if n.startswith("nv_") and n.endswith("_sparse")
                  and "sparsified_from" in e)


NETWORKS = ROOT / "benchmarks" / ".cache" / "sparsify_zoo"  # re-trained seeds' weights (not in git)


def _retrained(name: str, entry: dict, seed: int, more: tuple[str, ...] = (), folder: Path = NETWORKS):
    """``name``'s recipe re-trained with ``seed`` (the recipe the zoo was trained with, and ``more``
    arguments), its weights cached in ``folder`` by entry, seed, recipe text and arguments, so that
    another point rule does not train it again."""
    import neuroview as nv
    from safetensors.torch import load_file, save_file

    from reproduce_zoo import recipe_arguments, train, zoo_recipe

    recipe, extra = zoo_recipe(entry), [*recipe_arguments(entry), *more]
    sha = hashlib.sha256((ROOT / recipe).read_bytes() + " ".join(extra).encode()).hexdigest()[:12]
    path = folder / f"{name}@{seed}@{sha}.safetensors"
    if path.is_file():
        net = nv.create_model(entry["architecture"], **entry["arch_kwargs"])  # the entry's own shape (an RNN's max_len)
        net.load_state_dict(load_file(path))
        return net.eval()
    net = train(recipe, seed, extra=extra, threads=1)["model"].eval()
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, str(path))
    return net


def _network(name: str, seed: int):
    """``(dense network, its data module, manifest entry)`` of ``name`` for ``seed``."""
    import neuroview as nv
    from neuroview.zoo.pretrained import get_entry, make_datamodule

    _, entry = get_entry(name)
    if seed == entry.get("seed", 0):
        net = nv.create_model(name, pretrained=True)
    else:
        net = _retrained(name, entry, seed)
    dm = make_datamodule(entry["dataset"]["data_module"])
    dm.setup("fit")
    return net, dm, entry


def measure(name: str, seed: int, max_k90: float | None = None,
            max_k90_steps: float | None = None, q: float = 0.5, finetune: int = 0,
            mode: str = "train", upc: int | None = None, spc: int | None = None) -> tuple[dict, object, object]:
    """One entry and seed: the dense and sparse figures, and the sparse network (for export)."""
    import torch

    import neuroview as nv

    torch.manual_seed(seed)
    net, dm, entry = _network(name, seed)
    t0 = time.perf_counter()
    sparse = nv.sparsify(net, dm, max_k90=max_k90, max_k90_steps=max_k90_steps, k90_quantile=q,
                         max_units_per_class=upc, max_steps_per_class=spc)
    seconds = time.perf_counter() - t0
    if finetune:
        sparse = nv.finetune_sparse(sparse, dm, epochs=finetune, mode=mode, max_k90=max_k90,
                                    max_k90_steps=max_k90_steps, k90_quantile=q)  # the budget still holds
    test = list(dm.test_dataloader())
    from neuroview.training.sparsify import DEVIANCE, RELAXED

    row = {"entry": name, "seed": seed, "sparsify_seconds": round(seconds, 1), "path": str(sparse.sparsity_path),
           "deviance": DEVIANCE, "relaxed": RELAXED, "max_k90": max_k90, "max_k90_steps": max_k90_steps, "k90_quantile": q,
           "finetune": finetune, "finetune_seconds": round(time.perf_counter() - t0 - seconds, 1),
           "finetune_mode": mode if finetune else None,
           "finetune_epochs_kept": sparse.finetuned["epochs_kept"] if finetune else None,
           "max_units_per_class": upc, "max_steps_per_class": spc}
    for kind, model in (("dense", net), ("sparse", sparse)):
        row[kind] = readable(model, dm, test)
    return row, sparse, entry


def readable(model, dm, test: list) -> dict:
    """``model``'s readability on the batches ``test``, against the exact training mean code of ``dm``
    (``nv.mean_codes``: a dense network's ``baseline="mean"`` reads its normalization's running estimate,
    up to 0.06 off that mean) and against zero."""
    import neuroview as nv

    mean = nv.readability(model, test, baseline=nv.mean_codes(model, dm))
    zero = nv.readability(model, test, baseline=None)
    out = {**mean, "k90_zero": zero["k90"], "top10_share_zero": zero["top10_share"]}
    out.pop("baseline", None)
    return out


def dense_readability(names: list[str]) -> None:
    """Each dense entry's readability (its zoo weights, on its test split, :func:`readable`) into its manifest
    ``metrics``, without sparsifying anything: ``--dense-readability``."""
    from neuroview.zoo.pretrained import get_entry

    for name in names:
        net, dm, _ = _network(name, get_entry(name)[1].get("seed", 0))
        new = _readable(readable(net, dm, list(dm.test_dataloader())))
        old = _merge_metrics(name, new)
        print(f"{name}: k90 {old.get('k90')} -> {new['k90']}, top-10 share {old.get('top10_share')} -> "
              f"{new['top10_share']}", flush=True)


def _merge_metrics(name: str, metrics: dict) -> dict:
    """Merge ``metrics`` into the manifest entry ``name``'s own, under the zoo's lock, keeping the rest of the
    manifest (keys added by hand too); returns the entry's metrics as they were."""
    from neuroview._io import atomic_write
    from neuroview.zoo.manifest_io import locked, read_document
    from neuroview.zoo.pretrained import MANIFEST, checkpoints_dir

    root = checkpoints_dir()
    with locked(root):
        doc = read_document(root / MANIFEST)
        before = doc["entries"][name]["metrics"]
        doc["entries"][name]["metrics"] = before | metrics
        doc["entries"] = dict(sorted(doc["entries"].items()))
        atomic_write(root / MANIFEST, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())
    return before


def export(name: str, sparse, entry: dict, row: dict) -> None:
    """Write ``<name>_sparse`` (weights and manifest entry), and the dense entry's readability."""
    from neuroview.zoo.pretrained import make_datamodule, save_pretrained, score_test_split

    kwargs = dict(entry["arch_kwargs"])
    if kwargs.get("normalize") is False:  # sparsify standardizes the features; the fold keeps it one linear map
        kwargs["normalize"] = True
    dm = make_datamodule(entry["dataset"]["data_module"])
    metrics = score_test_split(sparse, dm) | _readable(row["sparse"])
    save_pretrained(sparse, f"{name}_sparse", architecture=entry["architecture"], arch_kwargs=kwargs,
                    dataset=entry["dataset"], recipe=entry["recipe"], seed=entry.get("seed"), metrics=metrics,
                    overwrite=True,  # --export re-exports the sparse entry of this run
                    extra={"sparsified_from": name, "training": {
                        **({"recipe_commit": entry["training"]["recipe_commit"]} if entry["training"].get("recipe_commit") else {}),
                        "command": f"python benchmarks/sparsify_zoo.py --entries {name} --export"
                                   + (f" --max-k90 {row['max_k90']:g}" if row.get("max_k90") else "")
                                   + (f" --max-k90-steps {row['max_k90_steps']:g}" if row.get("max_k90_steps") else "")
                                   + (f" --k90-quantile {row['k90_quantile']:g}" if row.get("k90_quantile", 0.5) != 0.5 else "")
                                   + (f" --finetune {row['finetune']}" if row.get("finetune") else "")
                                   + (" --finetune-mode eval" if row.get("finetune_mode") == "eval" else "")
                                   + (f" --max-units-per-class {row['max_units_per_class']}" if row.get("max_units_per_class") else "")
                                   + (f" --max-steps-per-class {row['max_steps_per_class']}" if row.get("max_steps_per_class") else ""),
                        "path": row["path"], "seconds": row["sparsify_seconds"], "max_k90": row.get("max_k90"),
                        "max_k90_steps": row.get("max_k90_steps"),
                        "k90_quantile": row.get("k90_quantile", 0.5), "finetune": row.get("finetune", 0),
                        "finetune_epochs_kept": row.get("finetune_epochs_kept"),  # the budget may keep fewer
                        "finetune_mode": row.get("finetune_mode"), "max_units_per_class": row.get("max_units_per_class"),
                        "max_steps_per_class": row.get("max_steps_per_class")}})
    _merge_metrics(name, _readable(row["dense"]))


def recentre(name: str) -> str:
    """Re-estimate the fine-tuned sparse entry ``name``'s head standardization as ``nv.finetune_sparse`` now ends (its
    ``_recentre`` on the data module: the training split read whole, in order, unaugmented, no batch dropped, so no
    seed or order matters), and write the weights back if they move: refused unless every test logit stays (float
    rounding) and every prediction with it. The file keeps its safetensors metadata; the manifest entry takes the new
    ``sha256`` and ``size_bytes``, and a recorded metric only where the re-centred network's own differs from the
    loaded one's (told; a metric that already differed from the manifest is told, not rewritten). Returns what it did."""
    import copy

    import torch
    from safetensors import safe_open

    import neuroview as nv
    from neuroview._batch import call_model, unpack
    from neuroview._io import atomic_write_all, safetensors_bytes
    from neuroview.core._utils import own_rng
    from neuroview.training.sparse_finetune import _recentre
    from neuroview.zoo.manifest_io import locked, read_document
    from neuroview.zoo.pretrained import MANIFEST, checkpoints_dir, get_entry, make_datamodule, score_test_split

    _, entry = get_entry(name)
    net = nv.create_model(name, pretrained=True).eval()
    dm = make_datamodule(entry["dataset"]["data_module"])
    dm.setup("fit")
    new = copy.deepcopy(net)
    with own_rng():
        _recentre(new, dm)  # as finetune_sparse calls it: the data module itself (`_batches(train, "train")`)
    old_norm, new_norm = net.norm, new.norm
    off = spread_off(old_norm.running_var, new_norm.running_var)
    if not finetune_kept(entry):  # finetune_sparse re-centres only after an epoch kept: sparsify's statistics, as exported
        return (f"skipped: no fine-tuning epoch kept; its statistics are sparsify's, estimated at export on the whole "
                f"training split's codes, and the codes its weights give now put its stored spreads (std) off by up to "
                f"{off:.3g}x (1: none; more: the code computation changed since its export, not re-centred here)")
    if (torch.allclose(new_norm.running_var, old_norm.running_var, rtol=1e-5, atol=1e-9)
            and torch.allclose(new_norm.running_mean, old_norm.running_mean, rtol=1e-5, atol=1e-9)):
        return "unchanged: its spreads are the fine-tuned codes' already"
    worst, n = 0.0, 0
    with torch.no_grad():
        for batch in dm.test_dataloader():
            x, lengths, _ = unpack(batch)
            a, b = call_model(net, x, lengths), call_model(new, x, lengths)
            scale = float(a.abs().max().clamp_min(1.0))
            worst, n = max(worst, float((a - b).abs().max()) / scale), n + len(a)
            if worst > 1e-4 or not torch.equal(a.argmax(1), b.argmax(1)):
                raise SystemExit(f"{name}: the re-centred head changes the decision (test logits off by {worst:.3g} of "
                                 "their largest, or a prediction moved); nothing written")
    recorded, after = entry["metrics"], _metrics(new, dm, score_test_split)
    # the loaded network measured only where the re-centred one differs from the record: which of the two moved
    before = after if all(recorded.get(k) == v for k, v in after.items()) else _metrics(net, dm, score_test_split)
    drift = {k: (recorded.get(k), v) for k, v in before.items() if recorded.get(k) != v}
    moved = {k: (before[k], v) for k, v in after.items() if before.get(k) != v}
    old_state, state = net.state_dict(), {k: v.detach().to("cpu").contiguous().clone() for k, v in new.state_dict().items()}
    changed = sorted(k for k in state if not torch.equal(state[k], old_state[k].cpu()))
    if not set(changed) <= {"norm.running_mean", "norm.running_var", "classifier.weight", "classifier.bias"}:
        raise SystemExit(f"{name}: re-centring changed {changed}, more than the head and its statistics; nothing written")
    root = checkpoints_dir()
    path = root / entry["file"]
    with safe_open(str(path), framework="pt") as f:
        meta, keys = f.metadata(), set(f.keys())
    if keys != set(state) or meta.get("neuroview.name") != name:
        raise SystemExit(f"{name}: its file holds {sorted(keys ^ set(state))} beside the loaded network's tensors, or "
                         f"is named {meta.get('neuroview.name')!r}; nothing written")
    data = safetensors_bytes(state, metadata=meta)  # the file's own metadata (what export wrote), verbatim
    with locked(root):
        doc = read_document(root / MANIFEST)
        e = doc["entries"][name]
        if e["sha256"] != entry["sha256"]:
            raise SystemExit(f"{name}: the manifest entry changed while it was re-centred; run again")
        e["sha256"], e["size_bytes"] = hashlib.sha256(data).hexdigest(), len(data)
        e["metrics"] = recorded | {k: v for k, (_, v) in moved.items()}
        atomic_write_all({path: data, root / MANIFEST: (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()})
    return (f"re-centred: stored spreads (std) off by up to {off:.3g}x, test logits within {worst:.2g} of their largest "
            f"({n} series), predictions identical; metrics moved by it: {moved or 'none'}; "
            f"loaded metrics that already differed from the manifest: {drift or 'none'}")


def _metrics(model, dm, score) -> dict:
    """The manifest's test figures of ``model`` as ``export`` measures them (accuracy, readability)."""
    return score(model, dm) | _readable(readable(model, dm, list(dm.test_dataloader())))


def _readable(r: dict) -> dict:
    keys = ("k90", "top10_share", "units_per_class", "k90_zero", "k90_steps", "steps_per_class")
    return {k: round(r[k], 4) for k in keys if r.get(k) is not None}


def run_key(name: str, seed: int, max_k90: float | None = None, max_k90_steps: float | None = None,
            q: float = 0.5, finetune: int = 0, mode: str = "train", upc: int | None = None, spc: int | None = None) -> str:
    """The cache key of one run: ``<entry>:<seed>``, and ``:k90<=<budget>`` (``:steps<=<budget>``)
    for a budgeted one, ``:q<share>`` where the budget holds for another share than the median,
    ``:ft<epochs>`` where the sparse network was fine-tuned (``nv.finetune_sparse``, within the budget;
    ``:ft<epochs>eval`` in its eval mode; the first runs, without the budget, are kept as ``:ft<epochs>free``),
    and ``:upc<=<cap>`` / ``:spc<=<cap>`` for caps on the units (steps) any class reads."""
    return (f"{name}:{seed}" + (f":k90<={max_k90:g}" if max_k90 is not None else "")
            + (f":steps<={max_k90_steps:g}" if max_k90_steps is not None else "") + (f":q{q:g}" if q != 0.5 else "")
            + (f":ft{finetune}" + ("eval" if mode == "eval" else "") if finetune else "")
            + (f":upc<={upc}" if upc is not None else "") + (f":spc<={spc}" if spc is not None else ""))


def is_rnn(name: str) -> bool:
    return name.split(".")[0] in ("nv_gru", "nv_lstm", "nv_rnn")


def budget(name: str, args) -> tuple:
    """``(max_k90, max_k90_steps, k90_quantile, finetune, finetune mode, max units per class, max steps
    per class)`` of ``name``: an RNN's own where ``--rnn-max-k90`` / ``--max-k90-steps`` /
    ``--max-steps-per-class`` give them."""
    rest = (args.k90_quantile, args.finetune, args.finetune_mode, args.max_units_per_class)
    if not is_rnn(name):
        return args.max_k90, None, *rest, None
    k90 = args.rnn_max_k90 if args.rnn_max_k90 is not None else args.max_k90
    return k90, args.max_k90_steps, *rest, args.max_steps_per_class


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--entries", nargs="*", help="dense NeuroView entries (default: all); with --recentre, their "
                   "sparse entries, named either way")
    p.add_argument("--seeds", nargs="*", type=int, default=[0])
    p.add_argument("--export", action="store_true", help="seed 0: write the sparse entries into the zoo")
    p.add_argument("--dense-readability", action="store_true",
                   help="only refresh the dense entries' readability in the manifest (exact training mean code)")
    p.add_argument("--recentre", action="store_true", help="re-estimate the fine-tuned sparse entries' head statistics "
                   "on their fine-tuned codes, as nv.finetune_sparse now does (no training; decisions unchanged)")
    p.add_argument("--redo", action="store_true", help="ignore cached runs")
    p.add_argument("--max-k90", type=float, default=None,
                   help="sparsify's readability budget (the zoo's CNN entries: 10); cached apart from the default rule's runs")
    p.add_argument("--rnn-max-k90", type=float, default=None, help="the RNN entries' budget in hidden states (default: --max-k90)")
    p.add_argument("--max-k90-steps", type=float, default=None, help="the RNN entries' budget in time steps")
    p.add_argument("--k90-quantile", type=float, default=0.5, help="the share of training decisions the budget holds for")
    p.add_argument("--finetune", type=int, default=0, help="epochs of nv.finetune_sparse after sparsify (default 0: none)")
    p.add_argument("--finetune-mode", default="train", choices=("train", "eval"), help="nv.finetune_sparse's mode")
    p.add_argument("--max-units-per-class", type=int, default=None, help="a cap on the features any class reads")
    p.add_argument("--max-steps-per-class", type=int, default=None, help="the RNN entries' cap on the steps any class reads")
    args = p.parse_args(argv)
    import torch

    if args.recentre:
        torch.set_num_threads(1)
        try:
            names = recentre_names(args.entries, sparse_entries()) if args.entries else sparse_entries()
        except ValueError as e:
            p.error(f"--entries: expected sparse entries of the zoo (or their dense entries' names), got {e} "
                    f"(for --recentre: {', '.join(sparse_entries())})")
        for name in names:
            print(f"{name}: {recentre(name)}", flush=True)
        return 0

    if args.dense_readability:
        torch.set_num_threads(1)
        dense_readability(args.entries or dense_entries())
        return 0

    from neuroview.training.sparsify import DEVIANCE, RELAXED

    torch.set_num_threads(1)
    cache = read_cache(RESULTS)
    for name in args.entries or dense_entries():
        for seed in args.seeds:
            key = run_key(name, seed, *budget(name, args))
            # a run made with another point rule (sparsify's deviance, its refit's ridge: 1e-2 before "relaxed" was kept) is stale
            fresh = key in cache and cache[key].get("deviance") == DEVIANCE and cache[key].get("relaxed", 1e-2) == RELAXED
            if fresh and not args.redo and not args.export:
                continue
            row, sparse, entry = measure(name, seed, *budget(name, args))
            cache[key] = row
            write_cache(RESULTS, json.dumps(dict(sorted(cache.items())), indent=1) + "\n")
            d, s = row["dense"], row["sparse"]
            print(f"{key}: dense {d['accuracy']:.1f}% k90 {d['k90']:g} | sparse {s['accuracy']:.1f}% k90 {s['k90']:g} "
                  f"({s['units_per_class']:.1f} per class) in {row['sparsify_seconds']} s", flush=True)
            if args.export and seed == 0:
                export(name, sparse, entry, row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
