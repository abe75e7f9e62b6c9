"""The five-member NeuroView LITE recipe made readable: one sparse head over every member's units.

For each set and seed, ``recipes/ucr_nv_cnn.yaml`` as it is (five members trained jointly) is trained
(``reproduce_zoo.train``; weights cached in ``benchmarks/.cache/sparse_ensemble``, not in git), then
``nv.sparsify`` with the zoo's readability budget and fine-tuning (``--max-k90 10`` and 5 epochs of
``nv.finetune_sparse``, as the zoo's sparse entries), validation from the training split only. The
test split is read once, afterwards: dense and sparse accuracy, units per class, the median k90 of
the test decisions (against the training mean code) and how many of the five members the sparse
head reads.

    nice -n 10 python benchmarks/sparse_ensemble.py --sets ArrowHead GunPoint --seeds 0 1 2
    python benchmarks/sparse_ensemble.py --table

Runs are cached one by one in ``benchmarks/results/sparse_ensemble.json`` under the recipe's
version (``ucr_accuracy._sha``), so the table fills over sittings.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from ucr_accuracy import _sha, overrides  # noqa: E402
from _cache import read_cache, write_cache  # noqa: E402 - resumable caches, written whole

RECIPE = "recipes/ucr_nv_cnn.yaml"
OUT = ROOT / "benchmarks" / "results" / "sparse_ensemble.json"
NETWORKS = ROOT / "benchmarks" / ".cache" / "sparse_ensemble"
MAX_K90, FINETUNE = 10, 5  # the zoo's sparse entries' budget and fine-tuning epochs (sparsify_zoo.py)


def _trained(dataset: str, seed: int):
    """``(the recipe's ensemble trained on dataset with seed, its data module)``, the weights cached."""
    import neuroview as nv
    from safetensors.torch import load_file, save_file

    from neuroview.zoo.pretrained import make_datamodule
    from reproduce_zoo import train

    path = NETWORKS / f"{dataset}@{seed}@{_sha(RECIPE)}.safetensors"
    meta = path.with_suffix(".json")
    if path.is_file() and meta.is_file():
        info = read_cache(meta)
        net = nv.create_model(info["arch"], **info["arch_kwargs"])
        net.load_state_dict(load_file(path))
    else:
        run = train(RECIPE, seed, extra=overrides(dataset), threads=1)
        net, info = run["model"], {"arch": run["arch"], "arch_kwargs": run["arch_kwargs"], "data": run["data"]}
        NETWORKS.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, str(path))
        write_cache(meta, json.dumps(info, indent=1) + "\n")  # after the weights: a meta names whole ones
    dm = make_datamodule(info["data"])
    dm.setup("fit")
    return net.eval(), dm


def measure(dataset: str, seed: int) -> dict:
    import torch

    import neuroview as nv

    torch.manual_seed(seed)
    sha = _sha(RECIPE)  # the version trained, taken before it trains (not when the run ends)
    net, dm = _trained(dataset, seed)
    sparse = nv.sparsify(net, dm, max_k90=MAX_K90)
    sparse = nv.finetune_sparse(sparse, dm, epochs=FINETUNE, max_k90=MAX_K90)
    test = list(dm.test_dataloader())
    dense, light = nv.readability(net, test, baseline=None), nv.readability(sparse, test, baseline="mean")
    read = (sparse.classifier.weight != 0).any(0).nonzero()[:, 0].tolist()
    members = sorted({sparse.units[i][0].split(".")[1] for i in read})
    return {"set": dataset, "seed": seed, "sha": sha, "dense_acc": dense["accuracy"],
            "dense_units": dense["units_per_class"], "sparse_acc": light["accuracy"],
            "units_per_class": light["units_per_class"], "k90": light["k90"], "members_read": len(members),
            "path": str(sparse.sparsity_path), "epochs_kept": sparse.finetuned["epochs_kept"]}


def load() -> dict:
    return read_cache(OUT)


def table(runs: dict) -> str:
    """Per set, mean ± std over the seeds of the recipe as it is now."""
    def fmt(v):
        return f"{statistics.fmean(v):.1f} ± {statistics.pstdev(v):.1f}"

    lines = ["| set | seeds | dense acc. | sparse acc. | drop, points | units/class (of 970) | k90 | members read |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    sha = _sha(RECIPE)
    for s in sorted({r["set"] for r in runs.values() if r["sha"] == sha}):
        rs = [r for r in runs.values() if r["set"] == s and r["sha"] == sha]
        d, p = [r["dense_acc"] for r in rs], [r["sparse_acc"] for r in rs]
        lines.append(f"| {s} | {len(rs)} | {fmt(d)} | {fmt(p)} | {fmt([a - b for a, b in zip(d, p)])} | "
                     f"{fmt([r['units_per_class'] for r in rs])} | {fmt([r['k90'] for r in rs])} | "
                     f"{fmt([r['members_read'] for r in rs])} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", nargs="*", default=["ArrowHead"])
    p.add_argument("--seeds", nargs="*", type=int, default=[0])
    p.add_argument("--table", action="store_true", help="print the table from the cache; run nothing")
    args = p.parse_args(argv)
    if not args.table:
        from neuroview.zoo.pretrained import _locked  # the zoo's file lock: runs of this script share the JSON

        for s in args.sets:
            for seed in args.seeds:
                key = f"{s}@{seed}@{_sha(RECIPE)}"
                if key in load():
                    continue
                row = measure(s, seed)
                print(json.dumps(row), flush=True)
                with _locked(OUT.parent):
                    runs = load() | {key: row}
                    write_cache(OUT, json.dumps(runs, indent=1, sort_keys=True) + "\n")
    print(table(load()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
