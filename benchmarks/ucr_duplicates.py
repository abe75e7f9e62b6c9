"""Training series of different classes that are all but the same series: why a run cannot fit its split.

For an aeon set, links every two training series whose mean squared difference (per step, on the
series as the archive ships them) is below a threshold, and reports the groups of linked series that
hold more than one class, and the training accuracy a classifier would reach if it could not tell the
series of a group apart (each group given its most common class). ACSF1's runs end at 93-94% on
their own training split: 24 of its 100 training series, of 4 classes, lie within 1e-3 of each other.

    python benchmarks/ucr_duplicates.py ACSF1 --thresholds 1e-4 1e-3 1e-2
"""

from __future__ import annotations

import argparse

import numpy as np


def groups(x: np.ndarray, threshold: float) -> list[list[int]]:
    """Connected components of the series ``x [N, C, T]`` linked where their mean squared difference
    is below ``threshold``."""
    flat = x.reshape(len(x), -1).astype(np.float64)
    sq = (flat ** 2).sum(1)
    d = (sq[:, None] + sq[None, :] - 2 * flat @ flat.T) / flat.shape[1]
    parent = list(range(len(x)))

    def root(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in zip(*np.nonzero(np.triu(d < threshold, k=1))):
        parent[root(a)] = root(b)
    comps: dict[int, list[int]] = {}
    for a in range(len(x)):
        comps.setdefault(root(a), []).append(a)
    return list(comps.values())


def report(x: np.ndarray, y: np.ndarray, threshold: float) -> dict:
    """The mixed groups at ``threshold`` (size, classes) and the accuracy bound they set."""
    comps = groups(x, threshold)
    best = sum(np.unique(y[c], return_counts=True)[1].max() for c in comps)
    mixed = [(len(c), sorted(map(str, set(y[c])))) for c in comps if len(set(y[c])) > 1]
    return {"threshold": threshold, "mixed_groups": mixed, "series_in_mixed": sum(n for n, _ in mixed),
            "accuracy_bound": best / len(y)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name", help="an aeon classification set, e.g. ACSF1")
    p.add_argument("--thresholds", nargs="+", type=float, default=[1e-4, 1e-3, 1e-2])
    args = p.parse_args(argv)
    from aeon.datasets import load_classification

    x, y = load_classification(args.name, split="train")
    if not isinstance(x, np.ndarray) or x.ndim != 3:
        p.error(f"name: expected a set of equal-length series (an array [N, C, T]), got {args.name}, whose "
                f"series differ in length; series of different lengths have no step-by-step difference")
    y = np.asarray(y)
    for t in args.thresholds:
        r = report(x, y, t)
        print(f"{args.name}, mean squared difference < {t:g}: {r['series_in_mixed']} of {len(y)} training series in "
              f"groups of several classes {r['mixed_groups']}; told apart by nothing else, at most "
              f"{100 * r['accuracy_bound']:.0f}% of the training split")


if __name__ == "__main__":
    main()
