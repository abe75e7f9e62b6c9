"""The importance picture of every NeuroView zoo entry of the default time-series recipes.

For each manifest entry trained by ``recipes/ucr_nv_cnn.yaml`` or ``recipes/ucr_nv_rnn.yaml``:
the unit-class weights of a NeuroView-CNN (:func:`neuroview.viz.unit_heatmap`), or the per-step
weights of each class of a NeuroView-RNN (:func:`neuroview.viz.time_importance`, each class's mean
training series drawn underneath, averaged over the samples of each step's window). Written to
``docs/img/ucr/<entry>.png``, with ``docs/TIME_SERIES.md`` showing them all; no training, a
few seconds a picture.

    python benchmarks/ucr_pictures.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "img" / "ucr"
PAGE = ROOT / "docs" / "TIME_SERIES.md"
INTRO = """# The default time-series recipes: what each zoo entry looks at

One picture per NeuroView entry trained by `recipes/ucr_nv_cnn.yaml` (LITE) or
`recipes/ucr_nv_rnn.yaml` (GRU) as they were at commit {commit} (the zoo's entries: see the manifest's
`training.recipe_commit`), seed 0, on each development set; written by
`python benchmarks/ucr_pictures.py`. Accuracy over 3 seeds: the README's time-series table.

- **CNN** (unit heatmap): one panel per site (activation call), classes x units; the colour is the
  unit's standardized weight for the class (red: the unit's code raises that class's logit).
- **RNN** (per-step importance): one row per class; the height is how strongly each step's hidden
  state can move that class's logit (the norm of its weights), each class's mean training series
  underneath. A step is a window of samples where the series is longer than 50 steps.
"""
RECIPES = ("recipes/ucr_nv_cnn.yaml", "recipes/ucr_nv_rnn.yaml")


def class_means(dm, window: int):
    """``[C, steps, F]``: each class's mean training series, averaged over each window of samples; the split read
    whole and in order (the training loader shuffles and drops its last batch: a random series was left out)."""
    import torch

    from neuroview._batch import in_order
    from neuroview.attribution.importance import class_means as means, per_step

    batches = in_order(dm.train_dataloader(), strict="so that every series is counted once", what="dm.train_dataloader()")
    x, y = zip(*((b[0], b[-1]) for b in batches))
    xb = per_step(torch.cat(x).transpose(1, 2), window)  # [N, C, T] -> [N, steps, C]
    return means(xb, torch.cat(y), dm.num_classes)


def picture(name: str, entry: dict):
    import matplotlib

    matplotlib.use("Agg")
    import neuroview as nv
    from neuroview.viz import plots as viz
    from neuroview.zoo.evaluate import make_datamodule

    net = nv.create_model(name, pretrained=True)
    dm = make_datamodule(entry["dataset"]["data_module"])
    dm.setup("fit")
    names = dm.class_names
    title = f"{name}: {100 * entry['metrics']['test_acc']:.1f}% test accuracy"
    if entry["architecture"].startswith("nv_") and hasattr(net, "time_importance"):
        fig = viz.time_importance(net, series=class_means(dm, net.window), class_names=names)
        if net.window > 1:
            title += f" (a step is {net.window} samples)"
    else:
        import torch

        with torch.no_grad():
            net(next(iter(dm.train_dataloader()))[0])  # a loaded NeuroView-CNN finds its sites on its first batch
        fig = viz.unit_heatmap(net, class_names=names)
    fig.suptitle(title)
    return fig


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    from neuroview.zoo.pretrained import read_manifest

    args.out.mkdir(parents=True, exist_ok=True)
    entries = {name: entry for name, entry in read_manifest().items()  # the dense entries: a sparse variant
               if entry.get("recipe") in RECIPES and entry["architecture"].startswith("nv_")  # (sparsified_from)
               and "sparsified_from" not in entry}  # shares its recipe, and the README draws it
    commits = sorted({str((entry.get("training") or {}).get("recipe_commit")) for entry in entries.values()})
    lines = [INTRO.format(commit=" / ".join(commits))]  # the page said "as it was at" by hand; the script dropped it
    for name, entry in sorted(entries.items(), key=lambda kv: (kv[1]["recipe"] or "", kv[0])):
        fig = picture(name, entry)
        path = args.out / f"{name}.png"
        fig.savefig(path, dpi=72, bbox_inches="tight")
        print(path, flush=True)
        lines.append(f"## `{name}`\n\n![{name}](img/ucr/{path.name})\n")
    if args.out == OUT:
        PAGE.write_text("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
