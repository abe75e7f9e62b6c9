"""A run that fits its training split in training mode and not in eval mode: BatchNorm's running statistics.

Trains one recipe run as ``ucr_accuracy.py`` does (one thread, the test split unread until the end)
and keeps its final weights, then scores them on the training split (in order, no augmentation) and
on the test split three ways:

- eval mode, the running statistics the run ended with (what the tables report);
- training mode, each batch normalized by its own statistics (what the training loss saw; the
  training split only, in shuffled batches as in training);
- eval mode after the running statistics are recomputed over the training split with the final
  weights (every BatchNorm's cumulative average over one pass, as precise BN does:
  ``neuroview.training.callbacks.recompute_batchnorm``, what the ``PreciseBatchNorm`` callback runs).

    nice -n 5 python benchmarks/bn_gap.py --recipe recipes/ucr_cnn.yaml --set OSULeaf --seed 1

Each result is kept in ``benchmarks/results/bn_gap.json`` under ``<recipe>@<set>@<seed>``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from reproduce_zoo import RESULTS, train  # noqa: E402
from ucr_accuracy import overrides  # noqa: E402

_BN = (nn.modules.batchnorm._BatchNorm,)
OUT = RESULTS / "bn_gap.json"


@torch.no_grad()
def accuracy(model: nn.Module, loader, train_mode: bool = False) -> float:
    """Share of ``loader``'s samples ``model`` classifies right, in eval mode
    (:func:`neuroview.zoo.evaluate.evaluate`), or with every module in training mode (BatchNorm on
    each batch's statistics; its running statistics kept as they were)."""
    from neuroview.zoo.evaluate import evaluate

    if not train_mode:
        right, seen = evaluate(model, loader)
        return right / seen
    from neuroview.zoo.evaluate import predict

    saved = {m: (m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone())
             for m in model.modules() if isinstance(m, _BN) and m.track_running_stats}
    model.train()
    right = seen = 0
    try:
        for batch in loader:
            z, y = predict(model, batch)
            right += int((z.argmax(1) == y).sum())
            seen += len(y)
    finally:
        for m, (mean, var, n) in saved.items():
            m.running_mean.copy_(mean)
            m.running_var.copy_(var)
            m.num_batches_tracked.copy_(n)
        model.eval()
    return right / seen


def recompute_statistics(model: nn.Module, loader) -> int:
    """Replace the running statistics of every BatchNorm (and of a NeuroView head's ``CodeNorm``)
    by their average over one pass of ``loader`` with the current weights, as the recipe option
    ``PreciseBatchNorm`` does at the end of training; returns how many layers there were. The model
    is left in eval mode."""
    from neuroview.training.callbacks import recompute_batchnorm
    from neuroview.zoo.evaluate import predict

    model.train()
    try:
        return len(recompute_batchnorm(model, loader, lambda batch: predict(model, batch)))
    finally:
        model.eval()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default="recipes/ucr_cnn.yaml")
    p.add_argument("--set", default="OSULeaf")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    from neuroview.zoo import pretrained as zoo

    torch.set_num_threads(1)
    r = train(args.recipe, args.seed, extra=overrides(args.set), threads=1)
    model = r["model"].eval()
    dm = zoo.make_datamodule(r["data"])
    dm.setup("fit")
    train_loader, shuffled = dm._loader("train"), dm.train_dataloader()
    dm.setup("test")
    out = {"recipe": args.recipe, "set": args.set, "seed": args.seed, "train_loss": r["fit"]["train_loss"],
           "test_acc_reported": r["metrics"]["test_acc"]}
    for split, loader in (("train", train_loader), ("test", dm.test_dataloader())):
        out[f"{split}_eval"] = accuracy(model, loader)
    torch.manual_seed(0)
    out["train_batch_stats"] = accuracy(model, shuffled, train_mode=True)
    out["batchnorms"] = recompute_statistics(model, shuffled)
    for split, loader in (("train", train_loader), ("test", dm.test_dataloader())):
        out[f"{split}_recomputed"] = accuracy(model, loader)
    print(json.dumps(out, indent=1))
    from neuroview._io import atomic_write

    kept = json.loads(OUT.read_text()) if OUT.is_file() else {}
    kept[f"{Path(args.recipe).stem}@{args.set}@{args.seed}"] = out
    atomic_write(OUT, (json.dumps(dict(sorted(kept.items())), indent=1) + "\n").encode())


if __name__ == "__main__":
    main()
