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
from minirocket_reference import SETS  # noqa: E402
from minirocket_reference import load as load_set  # noqa: E402
from _cache import read_cache, write_cache  # noqa: E402 - resumable caches, written whole


def _data(name: str, normalize: str | None = None):
    """``(arrays, class names, training batches, test series tensor)``: the raw series as
    ``minirocket_reference.py`` reads them, or (``normalize="sample"``) as ``neuroview minirocket``
    reads them: through the data module of its ``data_spec`` (each series z-normalized by itself,
    variable lengths stretched to the longest training series)."""
    if normalize == "sample":
        from neuroview.training.minirocket_cli import data_spec
        from neuroview.zoo.pretrained import make_datamodule

        dm = make_datamodule(data_spec(name))
        dm.setup("fit"), dm.setup("test")
        split = lambda loader: [torch.cat(t) for t in zip(*[(b[0], b[-1]) for b in loader])]
        (xtr_t, ytr_i), (xte_t, yte_i) = split(dm._loader("train")), split(dm.test_dataloader())
        classes = np.arange(int(max(ytr_i.max(), yte_i.max())) + 1)
        arrays = (xtr_t.double().numpy(), ytr_i.numpy(), xte_t.double().numpy(), yte_i.numpy())
    else:
        xtr, ytr, xte, yte = load_set(name)
        classes = np.unique(ytr)
        to_int = {c: i for i, c in enumerate(classes)}
        ytr_i = torch.tensor([to_int[c] for c in ytr])
        xtr_t, xte_t = torch.tensor(xtr, dtype=torch.float32), torch.tensor(xte, dtype=torch.float32)
        arrays = (xtr, ytr, xte, yte)
    batches = [(xtr_t[i:i + 256], ytr_i[i:i + 256]) for i in range(0, len(xtr_t), 256)]
    return arrays, classes, batches, xte_t


def _logits(net, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([net(x[i:i + 64]) for i in range(0, len(x), 64)])


def sparse(name: str, seed: int) -> dict:
    """``nv.sparsify`` of the seed's network under the zoo's CNN budget (k90 <= 10 on the training
    split's median decision), chosen by 5-fold cross-validation on the training split: its test
    accuracy, units per class and the test decisions' median k90 against the training mean code."""
    import neuroview as nv

    (_, _, _, yte), classes, batches, xte_t = _data(name)
    net = nv.minirocket(batches, num_classes=len(classes), seed=seed)
    t0 = time.perf_counter()
    sp = nv.sparsify(net, batches, max_k90=10)
    secs = time.perf_counter() - t0
    pred = classes[_logits(sp, xte_t).argmax(1).numpy()]
    k90 = torch.cat([sp.explain(xte_t[i:i + 64], baseline="mean").k90(per_sample=True) for i in range(0, len(xte_t), 64)])
    return {"acc": float((pred == yte).mean()), "units_per_class": float(nv.units_per_class(sp).float().mean()),
            "k90": float(k90.float().quantile(0.5)), "seconds": round(secs, 1)}


def picture(name: str = "ArrowHead", seed: int = 0, out: Path = ROOT / "docs" / "img" / "nv_minirocket_arrowhead.png") -> Path:
    """The waterfall of the first test series' decision by the sparse network (against the training
    mean code), each bar with its kernel's top training series and the window it reads there."""
    import neuroview as nv
    from neuroview.attribution.gallery import waterfall_units
    from neuroview.viz import plots

    (_, ytr, _, yte), classes, batches, xte_t = _data(name)
    sp = nv.sparsify(nv.minirocket(batches, num_classes=len(classes), seed=seed), batches, max_k90=10)
    exp = sp.explain(xte_t[:1], baseline="mean")
    gallery = nv.unit_gallery(sp, batches, waterfall_units(exp, [0]), k=4)
    label = int(np.flatnonzero(classes == yte[0])[0])
    names = sp.backbone.unit_names()  # each bar named by its kernel, dilation and bias
    fig = plots.waterfall(exp, 0, class_names=[str(c) for c in classes], label=label, gallery=gallery, unit_names=names)
    fig.savefig(out, dpi=90, bbox_inches="tight")
    return out


def rescaled(name: str = "GunPoint", num_features: int = 840) -> dict:
    """Test accuracy with every series (training and test) times a random factor in [0.1, 10] plus a
    random offset in [-5, 5], against the series as they are, each read raw and z-normalized by
    itself (``NpzDataModule(normalize=False | "sample")``): what ``neuroview minirocket``'s default is for."""
    import tempfile

    import neuroview as nv
    from neuroview.data import NpzDataModule

    xtr, ytr, xte, yte = load_set(name)
    rng = np.random.default_rng(0)
    scale = lambda x: (x * rng.uniform(0.1, 10, (len(x), 1, 1)) + rng.uniform(-5, 5, (len(x), 1, 1))).astype(np.float32)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for tag, a, b in (("as is", xtr.astype(np.float32), xte.astype(np.float32)), ("rescaled", scale(xtr), scale(xte))):
            np.savez(f"{tmp}/{tag}.npz", X=a, y=ytr, X_test=b, y_test=yte)
            for norm in ("sample", False):
                dm = NpzDataModule(f"{tmp}/{tag}.npz", val_fraction=0.0, normalize=norm)
                net = nv.minirocket(dm, num_features=num_features)
                dm.setup("test")
                hits = torch.cat([(net(x).argmax(1) == y).float() for x, y in dm.test_dataloader()])
                out[f"{tag}, {'z-normalized' if norm else 'raw'}"] = round(100 * float(hits.mean()), 1)
    return out


def run(name: str, seed: int, normalize: str | None = None) -> dict:
    import neuroview as nv
    from aeon.classification.convolution_based import MiniRocketClassifier

    (xtr, ytr, xte, yte), classes, batches, xte_t = _data(name, normalize)
    t0 = time.perf_counter()
    net = nv.minirocket(batches, num_classes=len(classes), seed=seed)
    fit_s = time.perf_counter() - t0
    logits = _logits(net, xte_t)
    with torch.no_grad():
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
    return {"set": name, "seed": seed, "normalize": normalize, "acc": float((pred == yte).mean()), "aeon_acc": float((ref == yte).mean()),
            "agreement": float((pred == ref).mean()), "alpha": net.ridge.alpha, "train_acc": net.ridge.train_acc / 100,
            "units": net.num_units, "feature_diff": feat_diff, "features_differing": feat_share, "explain_gap": gap,
            "fit_seconds": round(fit_s, 1), "aeon_seconds": round(aeon_s, 1), "test_size": int(len(yte))}


def table(results: dict) -> str:
    """The Markdown table of the cached runs (``docs_tables.py`` puts it into the README)."""
    rows = ["| set | NeuroView-MiniRocket | aeon MiniRocket | agreement | each series z-normalized: NeuroView / aeon | "
            "sparse (k90 <= 10) | units/class | k90 (test) | seeds |", "|---|---|---|---|---|---|---|---|---|"]
    pm = lambda xs: f"{100 * statistics.fmean(xs):.1f} ± {100 * statistics.pstdev(xs):.1f}"
    for name in SETS:
        rs = [r for k, r in sorted(results.items()) if r["set"] == name and not r.get("normalize")]
        ns = [r for k, r in sorted(results.items()) if r["set"] == name and r.get("normalize") == "sample"]
        if not rs:
            continue
        sp = [r["sparse"] for r in rs if "sparse" in r]
        sparse_cols = (f"{pm([x['acc'] for x in sp])} ({len(sp)}) | {statistics.fmean(x['units_per_class'] for x in sp):.1f} | "
                       f"{statistics.median(x['k90'] for x in sp):g}") if sp else "n/a | | "
        rows.append(f"| {name} | {pm([r['acc'] for r in rs])} | {pm([r['aeon_acc'] for r in rs])} | "
                    f"{100 * statistics.fmean(r['agreement'] for r in rs):.1f}% | "
                    f"{pm([r['acc'] for r in ns]) + ' / ' + pm([r['aeon_acc'] for r in ns]) + f' ({len(ns)})' if ns else 'n/a'} | "
                    f"{sparse_cols} | {len(rs)} |")
    return "\n".join(rows)


_MINE: set[str] = set()  # the runs this process made or completed


def _save(results: dict, key: str) -> None:
    """Write this process's runs into the cache as it is on disk now (another run may have written since)."""
    _MINE.add(key)
    merged = load()
    merged.update({k: results[k] for k in _MINE})
    write_cache(OUT, json.dumps(dict(sorted(merged.items())), indent=1) + "\n")


def load() -> dict:
    return read_cache(OUT)


def report(results: dict) -> str:
    worst = max((r["feature_diff"] for r in results.values()), default=0.0)
    share = max((r["features_differing"] for r in results.values()), default=0.0)
    gap = max((r["explain_gap"] for r in results.values()), default=0.0)
    return ("# NeuroView-MiniRocket against aeon's MiniRocket\n\n`python benchmarks/ucr_nv_minirocket.py --sparse`: test "
            "accuracy %, mean ± std over seeds (the same seed for both); agreement: test series both classify "
            "alike; sparse: `nv.sparsify(net, train, max_k90=10)` (the rule chosen by 5-fold cross-validation on the "
            "training split), its units per class (mean over seeds) and the median k90 of its test decisions "
            "against the training mean code (median over seeds).\n\n" + table(results)
            + f"\n\nThe features with aeon's parameters, on 64 test series a run: largest difference {worst:.2g} (a "
            f"proportion of positions), at most {100 * share:.3f}% of features differing (aeon's float32 sums against the exact "
            f"convolution here, float64 rounded once); "
            f"the largest gap between an explanation's sum and its logit: {gap:.2g}.\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", nargs="+", default=list(SETS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--report", action="store_true", help="write the table from the cache only")
    p.add_argument("--normalize", choices=["sample"], default=None,
                   help="the series as `neuroview minirocket` reads them (each z-normalized by itself, variable "
                        "lengths stretched), for both classifiers: runs kept apart, @sample")
    p.add_argument("--rescaled", action="store_true", help="GunPoint with every series rescaled and shifted at random, "
                                                            "raw and z-normalized, and stop")
    p.add_argument("--picture", action="store_true", help="draw docs/img/nv_minirocket_arrowhead.png and stop")
    p.add_argument("--sparse", action="store_true", help="also nv.sparsify each network under the zoo's budget (k90 <= 10)")
    args = p.parse_args(argv)
    if args.rescaled:
        print(f"GunPoint, 840 features, test accuracy %: {rescaled()}")
        return 0
    if args.picture:
        print(f"wrote {picture()}")
        return 0
    results = load()
    if not args.report:
        torch.set_num_threads(1)
        for name in args.sets:
            for seed in args.seeds:
                key = f"{name}@{seed}" + (f"@{args.normalize}" if args.normalize else "")
                if key not in results:
                    results[key] = r = run(name, seed, args.normalize)
                    print(f"{key}: NeuroView-MiniRocket {100 * r['acc']:.1f}, aeon {100 * r['aeon_acc']:.1f}, agreement "
                          f"{100 * r['agreement']:.1f}% (fit {r['fit_seconds']} s, aeon {r['aeon_seconds']} s)", flush=True)
                    _save(results, key)
                if args.sparse and not args.normalize and "sparse" not in results[key]:
                    results[key]["sparse"] = sp = sparse(name, seed)
                    print(f"{key}: sparse {100 * sp['acc']:.1f}, {sp['units_per_class']:.1f} units per class, "
                          f"k90 {sp['k90']:g} ({sp['seconds']} s)", flush=True)
                    _save(results, key)
    OUT.with_suffix(".md").write_text(report(results))
    print(report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
