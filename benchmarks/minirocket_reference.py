"""The outside reference for the zoo's time-series sets: aeon's MiniRocket, 3 seeds.

MiniRocket (Dempster et al. 2021) is a strong, fast, non-deep time-series classifier: 10,000
random convolution features and a ridge classifier. It is scored on exactly the train/test
splits the zoo's data modules use (the whole training split, the full test split). Its
randomness is the choice of kernels' biases/dilations: ``random_state`` = 0, 1, 2.

Variable-length series (JapaneseVowels, PickupGestureWiimoteZ) are zero-padded at the end to the
longest series, as in the equal-length version of the UEA archive; MiniRocket itself takes equal
lengths only. The sets: the development sets of the default time-series recipes (GunPoint,
ItalyPowerDemand, BasicMotions, JapaneseVowels, ArrowHead, MNIST-1D) and the other sets aeon
ships, which nobody tuned on (OSULeaf, ACSF1, PickupGestureWiimoteZ).

    nice -n 10 python benchmarks/minirocket_reference.py          # ~2 min on 2 cores
Writes benchmarks/results/minirocket.json ({tag: {mean, std, accs, seeds}}).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "results" / "minirocket.json"
SETS = ("GunPoint", "ItalyPowerDemand", "BasicMotions", "JapaneseVowels", "ArrowHead", "mnist1d",
        "OSULeaf", "ACSF1", "PickupGestureWiimoteZ")


def load(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``X_train [N, C, T], y_train, X_test, y_test`` as the zoo's data modules read them (not standardized)."""
    if name == "mnist1d":
        from neuroview.data import MNIST1DDataModule

        d = MNIST1DDataModule().load()
        (xtr, ytr), (xte, yte) = d["train"], d["test"]
        return xtr.astype(np.float64), np.asarray(ytr).astype(str), xte.astype(np.float64), np.asarray(yte).astype(str)
    from aeon.datasets import load_classification

    xtr, ytr = load_classification(name, split="train")
    xte, yte = load_classification(name, split="test")
    if isinstance(xtr, list) or isinstance(xte, list):
        t = max(a.shape[-1] for a in list(xtr) + list(xte))
        pad = lambda xs: np.stack([np.pad(np.asarray(a, dtype=np.float64), ((0, 0), (0, t - a.shape[-1]))) for a in xs])
        xtr, xte = pad(xtr), pad(xte)
    return np.asarray(xtr, dtype=np.float64), np.asarray(ytr), np.asarray(xte, dtype=np.float64), np.asarray(yte)


def main(argv: list[str] | None = None) -> int:
    from aeon.classification.convolution_based import MiniRocketClassifier

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", nargs="+", default=list(SETS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = p.parse_args(argv)
    results = json.loads(OUT.read_text()) if OUT.is_file() else {}
    for name in args.sets:
        xtr, ytr, xte, yte = load(name)
        accs = []
        t0 = time.perf_counter()
        for seed in args.seeds:
            clf = MiniRocketClassifier(random_state=seed).fit(xtr, ytr)
            accs.append(float((clf.predict(xte) == yte).mean()))
        tag = name.lower()
        results[tag] = {"mean": statistics.fmean(accs), "std": statistics.pstdev(accs), "accs": accs, "seeds": args.seeds,
                        "test_size": int(len(yte)), "classifier": "aeon MiniRocketClassifier(n_kernels=10000)"}
        print(f"{name}: MiniRocket {100 * results[tag]['mean']:.2f} ± {100 * results[tag]['std']:.2f} "
              f"({', '.join(f'{100 * a:.2f}' for a in accs)}) in {time.perf_counter() - t0:.0f} s", flush=True)
    from neuroview._io import atomic_write  # the earlier sets' results are in it too: never half written

    atomic_write(OUT, (json.dumps(dict(sorted(results.items())), indent=2) + "\n").encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
