"""Retrofit every standard zoo entry and record what the explanation costs it.

For each standard entry of ``checkpoints/manifest.json`` (or the ones named), the retrofit of
``neuroview retrofit ENTRY`` with its defaults (backbone frozen, only the global classifier
fitted: the logistic regression of weight decay 1e-4 on the standardized codes, by full-batch
L-BFGS to convergence, at most 1,000 iterations; seed 0), on one thread; the results go to
``benchmarks/results/retrofit.json``, each with the sha256 of the weights it was computed from,
and ``docs_tables.py`` renders the table of ``checkpoints/README.md`` from them (re-running this
for an entry whose weights changed).

The figures depend on nothing but the weights and the data: the training split is read in order
and without augmentation, the fit is the objective's optimum (from zero weights, deterministic),
and ``retrofit`` leaves torch's global generator as it found it, so the bare command prints the
same figures.

    python benchmarks/retrofit_zoo.py                       # every standard entry, ~20 s
    python benchmarks/retrofit_zoo.py small_cnn.digits

Imports torch and neuroview.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def retrofit_entry(root: Path, name: str) -> dict:
    """The retrofit of zoo entry ``name`` as ``neuroview retrofit`` runs it, seeded; its record."""
    import torch

    from neuroview import RNNClassifier
    from neuroview.training.retrofit import retrofit
    from neuroview.zoo.pretrained import load_pretrained, make_datamodule

    model = load_pretrained(name, root=root / "checkpoints")
    dm = make_datamodule(model.pretrained_cfg["dataset"]["data_module"])
    dm.setup("fit")
    is_rnn = isinstance(model, (RNNClassifier, torch.nn.RNNBase))
    res = retrofit(model, dm, dm, max_len=dm.max_len if is_rnn else None, seed=0)  # the command's defaults
    print(f"retrofit of {name}: {res}", flush=True)
    return {"sha256": model.pretrained_cfg["sha256"], "standard_acc": res.standard_acc,
            "neuroview_acc": res.neuroview_acc, "test_size": res.test_size}


def refresh(root: Path, names: list[str]) -> None:
    """Retrofit ``names`` and record them in ``benchmarks/results/retrofit.json`` (others kept,
    entries gone from the manifest dropped)."""
    import torch

    torch.set_num_threads(1)  # the figures are measured with one thread, like the zoo's training
    manifest = json.loads((root / "checkpoints" / "manifest.json").read_text())["entries"]
    path = root / "benchmarks" / "results" / "retrofit.json"
    results = {k: v for k, v in (json.loads(path.read_text()) if path.is_file() else {}).items() if k in manifest}
    for name in names:
        results[name] = retrofit_entry(root, name)
    from neuroview._io import atomic_write  # the other entries' records are in it too: never half written

    atomic_write(path, (json.dumps(dict(sorted(results.items())), indent=2) + "\n").encode())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="standard zoo entries (default: all of them)")
    p.add_argument("--root", type=Path, default=ROOT, help="the checkout (default: this script's)")
    args = p.parse_args(argv)
    manifest = json.loads((args.root / "checkpoints" / "manifest.json").read_text())["entries"]
    names = args.names or sorted(n for n, e in manifest.items() if not e["architecture"].startswith("nv_"))
    refresh(args.root, names)
    return 0


if __name__ == "__main__":
    sys.exit(main())
