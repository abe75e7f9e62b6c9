"""Test accuracy of zoo entries trained with each surrogate-gradient state (``grad_state``), same recipes and seeds.

A site whose activation does not keep the pre-activation (ReLU, in-place activations) keeps its
own state for the code's surrogate gradient (:class:`neuroview.core.quantize._MeanCode`): a
bfloat16 copy of ``z`` (``bf16``, the state before), or the surrogate's slope rounded to 8 or 4
bits (``uint8``, ``uint4``). This trains zoo entries whose sites are such ReLUs with each state,
by the recipe the zoo was trained with (as ``benchmarks/reproduce_zoo.py`` does) and only
``model_kwargs.grad_state`` changed, one thread per run, and reports mean ± std of the test
accuracy over the seeds (the claim: the compact state is within one std of ``bf16``).

The entries: ``nv_small_cnn.digits`` (``soft`` codes: the exact gradient of the soft code is what
is rounded), ``nv_lite.gunpoint`` and ``nv_lite.arrowhead`` (``hard`` codes, LITE's in-place
ReLUs). ``nv_fcn1d.gunpoint`` trains with ``quantizer: none``, which has no surrogate: left out.

Runs are cached in benchmarks/results/grad_state.json (a rerun skips what is done); the table
goes to benchmarks/results/grad_state.md.

    nice -n 10 python benchmarks/grad_state.py                   # 3 entries x 3 seeds x 3 states, ~30 min
    python benchmarks/grad_state.py --states bf16 uint4 --entries nv_lite.gunpoint --seeds 0
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
import reproduce_zoo as rz  # noqa: E402
from _cache import read_cache, write_cache  # noqa: E402 - resumable caches, written whole

OUT = rz.RESULTS / "grad_state.json"
ENTRIES = ("nv_small_cnn.digits", "nv_lite.gunpoint", "nv_lite.arrowhead")


def recipe_with_state(entry: dict, state: str, folder: str) -> str:
    """A copy of ``entry``'s zoo recipe in ``folder`` with ``model.model_kwargs.grad_state = state``."""
    path = Path(rz.zoo_recipe(entry))
    cfg = yaml.safe_load(path.read_text() if path.is_absolute() else (rz.ROOT / path).read_text())
    cfg["model"]["model_kwargs"] = dict(cfg["model"].get("model_kwargs") or {}, grad_state=state)
    out = Path(folder) / path.name
    out.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return str(out)


def run(entries: list[str], seeds: list[int], states: list[str], threads: int) -> dict:
    from neuroview.zoo import pretrained as zoo

    manifest = zoo.read_manifest()
    runs = read_cache(OUT)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=rz.ROOT, capture_output=True, text=True).stdout.strip()
    for seed in seeds:  # seed-major: an interrupted run still has every entry and state of the first seeds
        for name in entries:
            for state in states:
                key = f"{name}@{seed}@{state}"
                if key in runs:
                    continue
                e = manifest[name]
                with tempfile.TemporaryDirectory(prefix="grad_state_") as tmp:
                    r = rz.train(recipe_with_state(e, state, tmp), seed, extra=rz.recipe_arguments(e), threads=threads)
                runs[key] = {"entry": name, "seed": seed, "grad_state": state, "test_acc": r["metrics"]["test_acc"],
                             "test_size": r["metrics"]["test_size"], "train_acc": r["fit"]["train_acc"],
                             "train_loss": r["fit"]["train_loss"], "seconds": round(r["seconds"], 1),
                             "commit": commit, "threads": threads, "date": time.strftime("%Y-%m-%d")}
                write_cache(OUT, json.dumps(dict(sorted(runs.items())), indent=1) + "\n")
                print(f"{key}: {100 * r['metrics']['test_acc']:.2f}% ({r['seconds']:.0f} s)", flush=True)
    return runs


def table(runs: dict, entries: list[str], seeds: list[int], states: list[str]) -> str:
    def fmt(accs: list[float]) -> str:
        if not accs:
            return "–"
        return f"{100 * statistics.fmean(accs):.1f} ± {100 * statistics.pstdev(accs):.1f} ({len(accs)})"

    lines = ["| entry | " + " | ".join(f"`{s}`" for s in states) + " |", "|---|" + "---|" * len(states)]
    for name in entries:
        cells = [fmt([runs[k]["test_acc"] for s in seeds if (k := f"{name}@{s}@{state}") in runs]) for state in states]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", f"Test accuracy in %, mean ± population std over seeds {' '.join(map(str, seeds))} (runs), the zoo's "
              "recipe with only `model_kwargs.grad_state` changed, the last epoch's weights, one thread "
              "(`python benchmarks/grad_state.py`; runs in benchmarks/results/grad_state.json)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--entries", nargs="+", default=list(ENTRIES))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--states", nargs="+", default=["bf16", "uint8", "uint4"], choices=("bf16", "uint8", "uint4"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--table-only", action="store_true", help="print the table of the cached runs")
    args = p.parse_args(argv)
    runs = read_cache(OUT) if args.table_only else run(args.entries, args.seeds, args.states, args.threads)
    md = table(runs, args.entries, args.seeds, args.states)
    if not args.table_only:
        OUT.with_suffix(".md").write_text(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
