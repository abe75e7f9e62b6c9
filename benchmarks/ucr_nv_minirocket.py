"""NeuroView-MiniRocket against aeon's MiniRocket, on the same splits and seeds, in one run.

``nv.minirocket(train, seed=s)`` (``neuroview/training/ridge.py``) is MiniRocket's transform as a
NeuroView-CNN (its PPV features are the sites' hard codes averaged over positions) and MiniRocket's
ridge (penalty by leave-one-out from ``logspace(-3, 3, 10)``, standardized features) as the global
classifier. Nothing is chosen here: the penalty by leave-one-out on the training split, the rest
MiniRocket's published defaults. Each run fits both on the whole training split (raw series,
variable-length sets zero-padded to the longest, as ``minirocket_reference.py`` reads them), then
scores the test split once, and keeps the two networks' agreement (the share of test series both
classify alike), the features' largest difference (both with aeon's fitted parameters: 0 where the
transform is the same) and the explanation's largest gap to the logit.

    nice -n 10 python benchmarks/ucr_nv_minirocket.py                 # 9 sets x 3 seeds, cached run by run
    python benchmarks/ucr_nv_minirocket.py --report                   # the table from the cache

Writes ``benchmarks/results/ucr_nv_minirocket.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
OUT = ROOT / "benchmarks" / "results" / "ucr_nv_minirocket.json"
from minirocket_reference import SETS, load  # noqa: E402


def run(name: str, seed: int) -> dict:
    import neuroview as nv
    from aeon.classification.convolution_based import MiniRocketClassifier

    xtr, ytr, xte, yte = load(name)
    classes = np.unique(ytr)
    to_int = {c: i for i, c in enumerate(classes)}
    ytr_i = torch.tensor([to_int[c] for c in ytr])
    xtr_t, xte_t = torch.tensor(xtr, dtype=torch.float32), torch.tensor(xte, dtype=torch.float32)
    batches = [(xtr_t[i:i + 256], ytr_i[i:i + 256]) for i in range(0, len(xtr_t), 256)]
    t0 = time.perf_counter()
    net = nv.minirocket(batches, num_classes=len(classes), seed=seed)
    fit_s = time.perf_counter() - t0
    with torch.no_grad():
        logits = torch.cat([net(xte_t[i:i + 64]) for i in range(0, len(xte_t), 64)])
        exp = net.explain(xte_t[:64])
        gap = float((exp.for_class().sum(-1) + exp.bias[exp.target]
                     - exp.logits.gather(1, exp.target[:, None])[:, 0]).abs().max())
    pred = classes[logits.argmax(1).numpy()]
    t0 = time.perf_counter()
    clf = MiniRocketClassifier(random_state=seed).fit(xtr, ytr)
    aeon_s = time.perf_counter() - t0
    ref = clf.predict(xte)
    # the transform alone: aeon's features against the network's codes with aeon's parameters
    import copy

    twin = copy.deepcopy(net)
    twin.backbone.load_aeon(clf._transformer.parameters)
    with torch.no_grad():
        codes = twin.codes(xte_t[:64])[:, torch.argsort(twin.backbone.feature_order())]
    diff = np.abs(codes.numpy() - clf._transformer.transform(xte[:64].astype(np.float32)))
    feat_diff, feat_share = float(diff.max()), float((diff > 0).mean())
    return {"set": name, "seed": seed, "acc": float((pred == yte).mean()), "aeon_acc": float((ref == yte).mean()),
            "agreement": float((pred == ref).mean()), "alpha": net.ridge.alpha, "train_acc": net.ridge.train_acc / 100,
            "units": net.num_units, "feature_diff": feat_diff, "features_differing": feat_share, "explain_gap": gap,
            "fit_seconds": round(fit_s, 1), "aeon_seconds": round(aeon_s, 1), "test_size": int(len(yte))}


def report(results: dict) -> str:
    rows = ["| set | NeuroView-MiniRocket | aeon MiniRocket | agreement | seeds |", "|---|---|---|---|---|"]
    for name in SETS:
        rs = [r for k, r in sorted(results.items()) if r["set"] == name]
        if not rs:
            continue
        f = lambda key: f"{100 * statistics.fmean(r[key] for r in rs):.1f} ± {100 * statistics.pstdev(r[key] for r in rs):.1f}"
        rows.append(f"| {name} | {f('acc')} | {f('aeon_acc')} | "
                    f"{100 * statistics.fmean(r['agreement'] for r in rs):.1f}% | {len(rs)} |")
    worst = max((r["feature_diff"] for r in results.values()), default=0.0)
    share = max((r["features_differing"] for r in results.values()), default=0.0)
    gap = max((r["explain_gap"] for r in results.values()), default=0.0)
    return ("# NeuroView-MiniRocket against aeon's MiniRocket\n\n`python benchmarks/ucr_nv_minirocket.py`: test "
            "accuracy %, mean ± std over seeds (the same seed for both); agreement: test series both classify "
            "alike.\n\n" + "\n".join(rows) + f"\n\nThe features with aeon's parameters, on 64 test series a run: largest difference {worst:.2g} (a "
            f"proportion of positions), at most {100 * share:.3f}% of features differing (float32 sums in another order); "
            f"the largest gap between an explanation's sum and its logit: {gap:.2g}.\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", nargs="+", default=list(SETS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--report", action="store_true", help="write the table from the cache only")
    args = p.parse_args(argv)
    results = json.loads(OUT.read_text()) if OUT.is_file() else {}
    if not args.report:
        torch.set_num_threads(1)
        for name in args.sets:
            for seed in args.seeds:
                key = f"{name}@{seed}"
                if key in results:
                    continue
                results[key] = r = run(name, seed)
                print(f"{key}: NeuroView-MiniRocket {100 * r['acc']:.1f}, aeon {100 * r['aeon_acc']:.1f}, agreement "
                      f"{100 * r['agreement']:.1f}% (fit {r['fit_seconds']} s, aeon {r['aeon_seconds']} s)", flush=True)
                OUT.write_text(json.dumps(dict(sorted(results.items())), indent=1) + "\n")
    OUT.with_suffix(".md").write_text(report(results))
    print(report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
