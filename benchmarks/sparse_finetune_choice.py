"""How long ``nv.finetune_sparse`` trains, chosen on held-out data.

``nv.finetune_sparse`` trains a sparse network's backbone further, its head's support fixed. The
number of epochs is chosen here on samples no network of the study has seen; no test split is read:

- every dense NeuroView entry of the zoo with a split held out from its training
  (``sparsify_choice._held_out_network``: the zoo's own network where its recipe holds one out,
  else its recipe re-trained with a quarter held out, seed 0; the weights are cached);
- sparsified as the zoo's sparse entries are, with the readability budget (10 units for a CNN; 10
  steps and 50 hidden states for an RNN), validation carved from the training part by 5-fold
  cross-validation;
- fine-tuned for each number of epochs in :data:`EPOCHS` (``FINETUNE_LR``, seed 0) on the training
  part, in each mode of ``finetune_sparse`` (:data:`MODES`), and scored on the held-out split
  against the dense network's own held-out accuracy.

The rule, written before the runs: the number of epochs with the most entries within 1 point of
their dense network on the held-out split; ties go to the higher mean gap, then to fewer epochs.

    nice -n 5 python benchmarks/sparse_finetune_choice.py          # every entry (cached one by one)
    python benchmarks/sparse_finetune_choice.py --report           # judge from the cache

Runs are cached in ``benchmarks/results/sparse_finetune_choice.json``; the report goes to
``benchmarks/results/sparse_finetune_choice.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "sparse_finetune_choice.json"
REPORT = RESULTS.with_suffix(".md")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cache import read_cache, write_cache  # noqa: E402 - resumable caches, written whole
EPOCHS = (0, 5, 10, 20, 40)
MODES = ("train", "eval")  # finetune_sparse's modes, each judged apart (train first: the default)
BUDGET = {"cnn": {"max_k90": 10}, "rnn": {"max_k90": 50, "max_k90_steps": 10}}  # sparsify_zoo's $BUDGET


def run(name: str, mode: str) -> dict:
    """One entry: dense and sparse held-out accuracy, and the sparse network's after each number of epochs."""
    import torch

    import neuroview as nv
    from sparsify_choice import _held_out_network
    from sparsify_zoo import is_rnn

    from neuroview.training.sparse_finetune import FINETUNE_LR

    net, dm = _held_out_network(name)
    train, held = list(dm._loader("train")), list(dm._loader("val"))
    t0 = time.perf_counter()
    sparse = nv.sparsify(net, train, None, **BUDGET["rnn" if is_rnn(name) else "cnn"])
    row = {"entry": name, "n_train": sum(len(b[-1]) for b in train), "n_held_out": sum(len(b[-1]) for b in held),
           "sparsify_seconds": round(time.perf_counter() - t0, 1), "lr": FINETUNE_LR, "path": str(sparse.sparsity_path),
           "dense": nv.readability(net, held, baseline=None)["accuracy"], "mode": mode, "epochs": {}}
    for epochs in EPOCHS:
        torch.manual_seed(0)
        t0 = time.perf_counter()
        tuned = nv.finetune_sparse(sparse, dm, epochs=epochs, lr=FINETUNE_LR, mode=mode)
        r = nv.readability(tuned, held, baseline=nv.mean_codes(tuned, train))
        row["epochs"][str(epochs)] = {"accuracy": r["accuracy"], "k90": r["k90"], "seconds": round(time.perf_counter() - t0, 1),
                                      "train_loss": tuned.finetuned["train_loss"][-1:]}
    return row


def judge(rows: dict) -> tuple[str, int]:
    """The report's table, and the number of epochs the rule keeps."""
    lines = ["| epochs | entries within 1 point | mean gap, points | worst gap | median k90 (held out) |",
             "|---:|---|---:|---:|---:|"]
    best = None
    for e in EPOCHS:
        gaps = [r["epochs"][str(e)]["accuracy"] - r["dense"] for r in rows.values()]
        k90 = [r["epochs"][str(e)]["k90"] for r in rows.values()]
        within = sum(g >= -1.0 for g in gaps)
        key = (within, statistics.fmean(gaps), -e)
        best = key if best is None or key > best else best
        lines.append(f"| {e} | {within}/{len(gaps)} | {statistics.fmean(gaps):+.2f} | {min(gaps):+.1f} | {statistics.median(k90):g} |")
    lines += ["", "Per entry, held-out accuracy (%): dense, then each number of epochs:", "",
              "| entry | held out | dense | " + " | ".join(f"{e}" for e in EPOCHS) + " |",
              "|---|---:|---:|" + "---:|" * len(EPOCHS)]
    for name, r in sorted(rows.items()):
        lines.append(f"| {name} | {r['n_held_out']} | {r['dense']:.1f} | "
                     + " | ".join(f"{r['epochs'][str(e)]['accuracy']:.1f}" for e in EPOCHS) + " |")
    return "\n".join(lines) + "\n", -best[2]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--entries", nargs="*", help="dense NeuroView entries (default: all)")
    p.add_argument("--report", action="store_true", help="judge from the cache; run nothing")
    p.add_argument("--modes", nargs="*", default=list(MODES), help="finetune_sparse's modes to run (default: both)")
    args = p.parse_args(argv)
    import torch

    from sparsify_zoo import dense_entries

    torch.set_num_threads(1)
    cache = read_cache(RESULTS)
    if not args.report:
        for mode in args.modes:
            for name in args.entries or dense_entries():
                if f"{name}:{mode}" in cache:
                    continue
                cache[f"{name}:{mode}"] = r = run(name, mode)
                write_cache(RESULTS, json.dumps(dict(sorted(cache.items())), indent=1) + "\n")
                print(f"{name} ({mode} mode): dense {r['dense']:.1f}% held out; sparse, by epochs: "
                      + ", ".join(f"{e} {v['accuracy']:.1f}" for e, v in r["epochs"].items()), flush=True)
    parts = ["# Sparse fine-tuning's epochs, judged on held-out data", "",
             "`python benchmarks/sparse_finetune_choice.py`: the rule in its docstring, for each mode of `finetune_sparse`.", ""]
    for mode in MODES:
        rows = {k.split(":")[0]: r for k, r in cache.items() if r.get("mode") == mode}
        if rows:
            text, kept = judge(rows)
            parts += [f"## mode={mode!r}", "", text, f"Kept: {kept} epochs ({len(rows)} entries).", ""]
            print(f"{mode} mode: kept {kept} epochs ({len(rows)} entries)")
    REPORT.write_text("\n".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
