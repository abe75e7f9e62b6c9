"""How well a GRU's hidden states read, step by step or pooled over the steps: a diagnostic.

Trains a recipe (``ucr_nv_rnn`` or ``ucr_rnn``) on four fifths of a set's training split (stratified,
the data module's seed 0), then refits an L2-penalized logistic head (L-BFGS) on the network's frozen
hidden states, standardized, read four ways: every step (the NeuroView-GRU's own features), the
last step (what a GRU's head reads), their mean over the steps and their maximum; three penalties
each. Every head is scored on the fifth held out: the test split is never read. It tells whether a
recipe's gap lies in its states or in the head that reads them.

    nice -n 10 python benchmarks/rnn_head_probe.py --set ACSF1 --recipes recipes/ucr_nv_rnn.yaml recipes/ucr_rnn.yaml

Results: ``benchmarks/results/rnn_head_probe.json`` (key: recipe, set, seed; each with the recipe
version it trained, ``sha``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _cache import read_cache, write_cache  # noqa: E402 - resumable caches, written whole
OUT = ROOT / "benchmarks" / "results" / "rnn_head_probe.json"
READS = {
    "every step": lambda h: h.flatten(1),
    "last step": lambda h: h[:, :, :, -1].flatten(1),
    "mean over steps": lambda h: h.mean(3).flatten(1),
    "max over steps": lambda h: h.amax(3).flatten(1),
}
PENALTIES = (1e-4, 1e-2, 1.0)


def states(net, loader, max_len: int):
    """``([N, L, D, T, H] hidden states, [N] labels)`` of every batch: a standard GRU's read through a
    NeuroViewRNN that shares its weights (the states of every step)."""
    import torch

    from neuroview._batch import steps_first, unpack
    from neuroview.core.rnn import NeuroViewRNN

    reader = net if isinstance(net, NeuroViewRNN) else NeuroViewRNN(
        net.rnn, net.num_classes, max_len=max_len, window=net.window, normalize=False)
    hs, ys = [], []
    with torch.no_grad():
        for batch in loader:
            x, lengths, y = unpack(batch)
            hs.append(reader.features(steps_first(x), lengths))
            ys.append(y)
    return torch.cat(hs), torch.cat(ys)


def refit(ztr, ytr, zva, yva, penalty: float, num_classes: int) -> float:
    """Validation accuracy of an L2-penalized logistic head fitted on standardized ``ztr``."""
    import torch
    import torch.nn.functional as F

    mu, sd = ztr.mean(0), ztr.std(0) + 1e-3
    ztr, zva = (ztr - mu) / sd, (zva - mu) / sd
    w = torch.zeros(ztr.shape[1], num_classes, requires_grad=True)
    b = torch.zeros(num_classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=500, line_search_fn="strong_wolfe")

    def loss():
        opt.zero_grad()
        value = F.cross_entropy(ztr @ w + b, ytr) + penalty * w.square().sum()
        value.backward()
        return value

    opt.step(loss)
    return 100.0 * float(((zva @ w + b).argmax(1) == yva).float().mean())


def probe(recipe: str, dataset: str, seed: int) -> dict:
    import torch

    from neuroview.zoo import pretrained as zoo
    from reproduce_zoo import train
    from ucr_accuracy import _sha, overrides

    torch.set_num_threads(1)
    sha = _sha(recipe)  # the version trained (the recipe is read as the fit starts)
    r = train(recipe, seed, extra=overrides(dataset, 0.2), threads=1, split="val")
    dm = zoo.make_datamodule(r["data"])  # the data module the run trained on, its validation fifth included
    dm.setup("fit")
    net = r["model"].eval()
    (htr, ytr), (hva, yva) = states(net, dm._loader("train"), dm.max_len), states(net, dm._loader("val"), dm.max_len)
    heads = {f"{name} @ {p:g}": refit(read(htr), ytr, read(hva), yva, p, net.num_classes)
             for name, read in READS.items() for p in PENALTIES}
    return {"recipe": recipe, "sha": sha, "set": dataset, "seed": seed, "own head": 100.0 * r["metrics"]["val_acc"],
            "validation series": len(yva), "refitted heads": heads}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--set", default="ACSF1")
    p.add_argument("--recipes", nargs="+", default=["recipes/ucr_nv_rnn.yaml", "recipes/ucr_rnn.yaml"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    args = p.parse_args()
    results = read_cache(OUT)
    for recipe in args.recipes:
        for seed in args.seeds:
            rec = probe(recipe, args.set, seed)
            results[f"{Path(recipe).stem}@{args.set}@{seed}"] = rec
            write_cache(OUT, json.dumps(results, indent=2) + "\n")
            print(json.dumps(rec, indent=1), flush=True)


if __name__ == "__main__":
    main()
