"""What ``nv.sparsify`` costs on a large problem: NeuroView-MiniRocket's 9,996 codes of MNIST-1D's
4,000 training series, where the zoo's problems are at most 4,000 x 224.

Measured in one run, on the same features:

  - the step's spectral norm of the solver (:func:`neuroview.training.glm._norm2`): an SVD
    (``torch.linalg.matrix_norm(ord=2)``, what every size used before) against subspace iteration
    (what sizes above ``glm._SVD_WORK`` use now), at 1,024 / 4,096 / all columns, and their values;
  - the walk of the regularization path with 5-fold cross-validation (``nv.sparsify(net, train,
    max_k90=10, points=P, ratio=R)``: the sparse part of the path by default) three ways: the SVD at
    every size on one thread (as before), subspace iteration on one thread, and subspace iteration
    with the folds' paths side by side on two threads; the three chosen heads compared (the first
    two equal to the solver's tolerance, the last two to the bit). On that part of the path the
    working set stays near 1,000 features, where an SVD takes under a second: what subspace
    iteration saves shows on the dense end (``--points 25 --ratio 0.01``, sparsify's own path; with
    the SVD that walk had not ended after 35 minutes).

Also (``--features``, alone) the training features that ``sparsify`` and ``nv.minirocket`` read, in
the data's batches of 256 and in the backbone's ``cpu_batch`` (its widest site at most 2^21 values
a call), one thread, interleaved rounds, medians, and whether the two are equal to the bit.

    nice -n 10 python benchmarks/sparsify_cost.py            # ~10 min on 2 cores; -> results/sparsify_cost.json
    python benchmarks/sparsify_cost.py --features            # ~3 min; -> results/sparsify_cost_features.json

And (``--zoo ENTRY ...``) zoo entries under their budget (``max_k90=10``; RNNs 50 hidden states, 10 steps
and at most 10 steps per class, as ``sparsify_zoo.py`` exports them), the folds walked one after another on one thread against side by side on two, interleaved
rounds, medians, and whether the heads are equal to the bit: where the threads pay and where their
hand-offs cost more (what sets ``sparsify._POOL_ROWS``).

    python benchmarks/sparsify_cost.py --zoo nv_lite.mnist1d nv_small_cnn.digits nv_lite.gunpoint nv_gru.gunpoint
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
OUT = ROOT / "benchmarks" / "results" / "sparsify_cost.json"


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, round(time.perf_counter() - t0, 2)


def main(argv: list[str] | None = None) -> int:
    import neuroview as nv
    from minirocket_reference import load
    from neuroview.training import glm
    from neuroview.training import sparsify as module
    from neuroview.training.sparsify import _batches, _features

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--points", type=int, default=12, help="points of the path (sparsify's default: 25)")
    p.add_argument("--ratio", type=float, default=0.1, help="the last penalty over the first (sparsify's default: 1e-2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--columns", type=int, nargs="+", default=[1024, 4096, 0], help="norms of the first columns (0: all)")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--features", action="store_true", help="time the feature pass in batches of 256 and cpu_batch, and stop")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--zoo", nargs="+", default=None, help="time zoo entries' sparsify, folds one by one or side by side, and stop")
    args = p.parse_args(argv)
    if args.zoo:
        return _zoo(args.zoo, args.rounds)
    torch.set_num_threads(1)
    xtr, ytr, _, _ = load("mnist1d")
    classes = np.unique(ytr)
    x = torch.tensor(xtr, dtype=torch.float32)
    y = torch.tensor(np.searchsorted(classes, ytr))
    batches = [(x[i:i + 256], y[i:i + 256]) for i in range(0, len(x), 256)]
    net, fit_s = _timed(lambda: nv.minirocket(batches, num_classes=len(classes), seed=args.seed))
    if args.features:
        return _feature_pass(net, batches, args.rounds)
    feats, _ = _features(net, _batches(batches, "train"), "train")
    z = ((feats - feats.mean(0)) / feats.std(0, unbiased=False).clamp_min(1e-12)).float()
    a = torch.cat([z, torch.ones(len(z), 1)], 1)
    norms = []
    for cols in [c or a.shape[1] for c in args.columns]:
        exact, svd_s = _timed(lambda: float(torch.linalg.matrix_norm(a[:, :cols], ord=2)) ** 2)
        old = glm._SVD_WORK
        glm._SVD_WORK = 0.0
        est, it_s = _timed(lambda: glm._norm2(a[:, :cols]))
        glm._SVD_WORK = old
        norms.append({"columns": cols, "svd_seconds": svd_s, "subspace_seconds": it_s, "estimate_over_exact": est / exact})
        print(norms[-1], flush=True)
    kw = dict(max_k90=10, points=args.points, ratio=args.ratio)
    runs = {}
    for name, work, threads in (("svd, 1 thread", float("inf"), 1), ("subspace, 1 thread", glm._SVD_WORK, 1),
                                ("subspace, folds side by side, 2 threads", glm._SVD_WORK, 2)):
        old = glm._SVD_WORK
        glm._SVD_WORK = work
        torch.set_num_threads(threads)
        sp, secs = _timed(lambda: nv.sparsify(net, batches, **kw))
        torch.set_num_threads(1)
        glm._SVD_WORK = old
        runs[name] = {"seconds": secs, "head": (sp.classifier.weight.detach().clone(), sp.classifier.bias.detach().clone()),
                      "units_per_class": float(nv.units_per_class(sp).float().mean()), "chosen": sp.sparsity_path.chosen}
        print(name, secs, "s", flush=True)
    (w1, b1), (w2, b2), (w3, b3) = (r.pop("head") for r in runs.values())
    res = {"features": list(feats.shape), "minirocket_fit_seconds": fit_s, "norms": norms, "sparsify": runs,
           "sparsify_args": kw, "folds": 5, "pool_rows": module._POOL_ROWS, "svd_work": glm._SVD_WORK,
           "svd_vs_subspace_heads_max_diff": float((w1 - w2).abs().max()), "same_support": bool(torch.equal(w1 != 0, w2 != 0)),
           "threads_equal_to_the_bit": bool(torch.equal(w2, w3) and torch.equal(b2, b3)),
           "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
           "torch": torch.__version__, "command": "python benchmarks/sparsify_cost.py " + " ".join(argv or sys.argv[1:])}
    args.out.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps({k: v for k, v in res.items() if k != "norms"}, indent=1))
    return 0


def _zoo(entries: list[str], rounds: int) -> int:
    import neuroview as nv
    import sparsify_zoo
    from neuroview.training import sparsify as module

    rows = {}
    for name in entries:
        net, dm, _ = sparsify_zoo._network(name, 0)
        rnn = isinstance(net, nv.NeuroViewRNN)
        kw = dict(max_k90=50, max_k90_steps=10, max_steps_per_class=10) if rnn else dict(max_k90=10)  # the zoo's budget
        times, heads, cache = {"one by one, 1 thread": [], "side by side, 2 threads": []}, {}, {}
        old_features, old_rows = module._features, module._POOL_ROWS
        # each split's features computed once (the first round, one thread): the same bits both ways
        module._features = lambda n, b, what: cache[what] if what in cache else cache.setdefault(what, old_features(n, b, what))
        try:
            for _ in range(rounds):
                for way, pool_rows, threads in (("one by one, 1 thread", float("inf"), 1), ("side by side, 2 threads", 0, 2)):
                    module._POOL_ROWS = pool_rows
                    torch.set_num_threads(threads)
                    sp, t = _timed(lambda: nv.sparsify(net, dm, **kw))
                    times[way].append(t)
                    heads[way] = sp.classifier.weight.detach().clone()
        finally:
            module._features, module._POOL_ROWS = old_features, old_rows
        med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
        rows[name] = {"training_samples": len(cache["train"][1]), "features": cache["train"][0].shape[1], "seconds": times, "median": med,
                      "threads_speedup": med["one by one, 1 thread"] / med["side by side, 2 threads"],
                      "equal_to_the_bit": bool(torch.equal(*heads.values())), "budget": kw}
        print(name, json.dumps(rows[name]), flush=True)
    res = {"entries": rows, "pool_rows": module._POOL_ROWS, "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
           "torch": torch.__version__, "command": "python benchmarks/sparsify_cost.py --zoo " + " ".join(entries)}
    OUT.with_name("sparsify_cost_zoo.json").write_text(json.dumps(res, indent=1) + "\n")
    return 0


def _feature_pass(net, batches, rounds: int) -> int:
    from neuroview.training.sparsify import _features
    from neuroview.zoo.architectures.rocket import MiniRocket

    cpu_batch = MiniRocket.cpu_batch
    ways = {"batches of 256": property(lambda self: None), "cpu_batch": cpu_batch}
    times, out = {k: [] for k in ways}, {}
    try:
        for _ in range(rounds):
            for name, prop in ways.items():
                MiniRocket.cpu_batch = prop
                out[name], t = _timed(lambda: _features(net, batches, "train")[0])
                times[name].append(t)
    finally:
        MiniRocket.cpu_batch = cpu_batch
    med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    res = {"series": sum(len(b[0]) for b in batches), "cpu_batch": net.backbone.cpu_batch, "seconds": times, "median": med,
           "speedup": med["batches of 256"] / med["cpu_batch"], "equal_to_the_bit": bool(torch.equal(*out.values())),
           "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, 1 thread", "torch": torch.__version__}
    OUT.with_name("sparsify_cost_features.json").write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
