"""``neuroview explain``: importance of a trained network as pictures, tables and one web page.

:func:`write_report` does the work on a model and a batch of data; :func:`main` is the command
line, which finds the model (a zoo name, a Lightning checkpoint, or an architecture and its
weights) and the data (an offline set by name) first.

>>> import torch, tempfile, neuroview as nv
>>> from torch import nn
>>> net = nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()), 3, input_shape=(1, 8, 8)).eval()
>>> out = tempfile.mkdtemp()
>>> files = write_report(net, torch.rand(6, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2]), out, progress=False, examples=1)
>>> "index.html" in files and "unit_importance.csv" in files
True
"""

from __future__ import annotations

import argparse
import html
import json
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor, nn

from .._version import __version__
from ..core.explanation import CNNExplanation, Explanation, RNNExplanation
from ..attribution.export import class_labels, layer_time_records, time_records, unit_records, write_csv, write_json
from ..attribution.importance import class_means, is_cnn, is_rnn, layer_shares

__all__ = ["write_report", "explain_batches", "pick_examples", "main"]


# ----------------------------------------------------------------------- computing
def _progress(total: int, desc: str, enabled: bool):
    """A tqdm bar on stderr when asked for and installed (Lightning brings it), else a no-op."""
    if enabled:
        try:
            from tqdm.auto import tqdm  # noqa: PLC0415

            return tqdm(total=total, desc=desc, unit="step", leave=False, file=sys.stderr)
        except ImportError:
            pass

    class _Silent:
        def update(self, n: int = 1) -> None: ...
        def set_description_str(self, s: str) -> None: ...
        def close(self) -> None: ...

    return _Silent()


def _batch_first(model: nn.Module, x: Tensor) -> Tensor:
    """An RNN's input in ``[B, T, F]`` whatever the model's own layout."""
    return x if getattr(model, "batch_first", True) else x.transpose(0, 1)


def _model_layout(model: nn.Module, xb: Tensor) -> Tensor:
    return xb if getattr(model, "batch_first", True) else xb.transpose(0, 1)


def explain_batches(model: nn.Module, x: Tensor, *, lengths: Tensor | None = None, batch_size: int = 64,
                    bar=None) -> Explanation:
    """``model.explain`` over ``x`` in batches, concatenated into one explanation (no code maps).

    ``x`` is in the model's own layout (an RNN's ``[T, B, F]`` when it is not batch-first).
    """
    rnn = is_rnn(model)
    xb = _batch_first(model, x) if rnn else x
    parts = []
    for start in range(0, xb.shape[0], batch_size):
        sl = slice(start, start + batch_size)
        if rnn:
            exp = model.explain(_model_layout(model, xb[sl]), lengths=None if lengths is None else lengths[sl])
        else:
            exp = model.explain(xb[sl])
        parts.append(exp)
        if bar is not None:
            bar.update(1)
    first = parts[0]
    cat = {k: torch.cat([getattr(p, k) for p in parts]) for k in ("logits", "contributions", "codes")}
    if isinstance(first, CNNExplanation):
        return CNNExplanation(**cat, bias=first.bias, units=first.units, site_slices=first.site_slices, weight=first.weight)
    if isinstance(first, RNNExplanation):
        # batches may stop at different lengths; the classifier's max_len is the same for all
        return RNNExplanation(**cat, bias=first.bias, time_importance=torch.cat([p.time_importance for p in parts]),
                              lengths=torch.cat([p.lengths for p in parts]))
    return Explanation(**cat, bias=first.bias)


def pick_examples(predicted: Tensor, y: Tensor | None, n: int) -> list[int]:
    """Up to ``n`` sample indices worth a per-sample figure: correct ones of distinct classes,
    and the first mistake when there is one (the most instructive picture of all)."""
    if n <= 0:
        return []
    if y is None:
        seen, out = set(), []
        for i, p in enumerate(predicted.tolist()):
            if p not in seen:
                seen.add(p)
                out.append(i)
        return out[:n]
    wrong = (predicted != y).nonzero().flatten().tolist()
    right, seen = [], set()
    for i in (predicted == y).nonzero().flatten().tolist():
        if int(y[i]) not in seen:
            seen.add(int(y[i]))
            right.append(i)
    picks = right[: n - 1] + wrong[:1] if wrong else right[:n]
    return sorted(picks)


@dataclass
class _Page:
    """What index.html lists: sections of captioned figures, and the data files."""

    title: str
    summary: list[str]
    figures: list[tuple[str, str, str]] = field(default_factory=list)  # (section, file, caption)
    data: list[tuple[str, str]] = field(default_factory=list)  # (file, description)


def _save(fig, path: Path, dpi: int) -> None:
    fig.savefig(path, dpi=dpi)
    fig.clear()  # figures hold their arrays; free them now rather than at garbage collection


def _check_out(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"out_dir: expected a folder, got the file {str(out_dir)!r}")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(
            f"out_dir: {str(out_dir)!r} is not empty; pick a new folder or pass overwrite=True (--overwrite) to write over it"
        )


def write_report(
    model: nn.Module,
    x: Tensor,
    y: Tensor | None,
    out_dir,
    *,
    lengths: Tensor | None = None,
    class_names: Sequence | None = None,
    examples: int = 4,
    overwrite: bool = False,
    progress: bool = True,
    batch_size: int = 64,
    title: str | None = None,
    about: dict | None = None,
    dpi: int = 100,
) -> list[str]:
    """Explain ``model`` on ``x`` (labels ``y``) and write figures, tables and ``index.html`` to ``out_dir``.

    Args:
        model: a NeuroViewCNN or NeuroViewRNN (anything with ``explain``); put in eval mode.
        x: inputs in the model's own layout; ``lengths`` for padded RNN sequences.
        y: true classes ``[B]`` or ``None``; with labels the per-class views average over the
            samples of each class, and the report gives the accuracy.
        class_names: one name per class (default ``0, 1, ...``).
        examples: how many samples get per-sample figures.
        overwrite: write into a non-empty ``out_dir``; refused otherwise.
        about: extra facts for the page and ``report.json`` (model name, data, split).

    Returns the names of the files written, ``index.html`` last. Every file named in the page
    is among them; images sit next to the page, so the folder opens in a browser offline.
    """
    from . import plots  # noqa: PLC0415 - matplotlib only when drawing

    if not hasattr(model, "explain"):
        raise TypeError(f"model: expected a NeuroView network with .explain (NeuroViewCNN, NeuroViewRNN), got {type(model).__name__}")
    if not isinstance(x, Tensor) or x.dim() < 2:
        raise TypeError(f"x: expected a batch tensor in the model's input layout, got {type(x).__name__ if not isinstance(x, Tensor) else tuple(x.shape)}")
    out = Path(out_dir)
    _check_out(out, overwrite)
    rnn, cnn = is_rnn(model), is_cnn(model)
    xb = _batch_first(model, x) if rnn else x
    n = xb.shape[0]
    if y is not None:
        y = torch.as_tensor(y).long().reshape(-1).cpu()
        if y.shape[0] != n:
            raise ValueError(f"y: expected {n} labels (one per sample of x), got {y.shape[0]}")
    num_classes = int(model.num_classes)
    names = [str(c) for c in class_names] if class_names is not None else [str(c) for c in range(num_classes)]
    cols = class_labels(num_classes, names)  # validates the names
    model.eval()
    out.mkdir(parents=True, exist_ok=True)

    n_batches = -(-n // batch_size)
    figures = 3 + 2 * min(examples, n)
    bar = _progress(n_batches + figures + 2, "explaining", progress)
    t0 = time.perf_counter()
    try:
        exp = explain_batches(model, x, lengths=lengths, batch_size=batch_size, bar=bar)
        explain_s = time.perf_counter() - t0
        for f in fields(exp):  # tables and pictures are made on the CPU, wherever the model runs
            if isinstance(getattr(exp, f.name), Tensor):
                setattr(exp, f.name, getattr(exp, f.name).detach().cpu())
        pred = exp.predicted.cpu()
        residual = float(exp.residual().abs().max())
        picks = pick_examples(pred, y, examples)
        files: list[str] = []
        lines = [f"{n} samples explained in {explain_s:.1f} s; prediction = bias + contributions, "
                 f"largest gap {residual:.2g} (float rounding)."]
        if y is not None:
            acc = float((pred == y).float().mean())
            lines.insert(0, f"Accuracy on these samples: {100 * acc:.1f}% ({int((pred == y).sum())}/{n}).")
        about = dict(about or {})
        page = _Page(title or f"NeuroView explanation: {about.get('model', type(model).__name__)}", lines)

        def figure(section: str, name: str, fig, caption: str) -> None:
            bar.set_description_str(f"drawing {name}")
            _save(fig, out / name, dpi)
            files.append(name)
            page.figures.append((section, name, caption))
            bar.update(1)

        def table(name: str, rows: list[dict], description: str) -> None:
            write_csv(out / name, rows)
            files.append(name)
            page.data.append((name, description))

        # ---- tables first: they are the numbers the figures draw
        pred_rows = []
        logits = exp.logits.detach().cpu().tolist()
        for i in range(n):
            row = {"sample": i, "true": names[int(y[i])] if y is not None else "", "predicted": names[int(pred[i])]}
            pred_rows.append(row | {f"logit {c}": v for c, v in zip(cols, logits[i])})
        table("predictions.csv", pred_rows, "one row per sample: true class, predicted class, and every logit")
        shares, layers = layer_shares(exp, y=y)
        table("layer_shares.csv", [{"class": c} | dict(zip(layers, row)) for c, row in zip(cols, shares.tolist())],
              "share of each class's |contributions| carried by each layer (rows sum to 1), averaged over the samples of the class")
        if cnn:
            table("unit_importance.csv", unit_records(model, names),
                  "one row per unit (site, channel): its standardized weight for each class, the numbers of the heatmap")
        if rnn:
            table("time_importance.csv", time_records(exp, names, y=y),
                  "one row per time step: the mean signed contribution to each class over the samples of that class")
            table("layer_time.csv", layer_time_records(exp, names, y=y),
                  "one row per (layer, step): the mean signed contribution to each class over the samples of that class")
            table("time_weights.csv", time_records(model, names),
                  "one row per time step: the global weight of each class (Euclidean norm over the step's hidden features)")
        exp.save(out / "explanation.safetensors")
        files += ["explanation.safetensors", "explanation.json"]
        page.data.append(("explanation.safetensors", "every contribution of every sample (safetensors): "
                          "neuroview.Explanation.load('explanation.safetensors')"))
        page.data.append(("explanation.json", "the explanation's metadata (units, sites, checksum)"))
        bar.update(1)

        # ---- figures
        S_GLOBAL, S_SAMPLES = "What the model looks for", "Single decisions"
        if cnn:
            figure(S_GLOBAL, "unit_heatmap.png", plots.unit_heatmap(model, class_names=names),
                   "Weight of every unit for every class, one panel per site (layer), units grouped by the class they "
                   "weigh most. Red units add to a class's logit when active, blue units take from it. Weights are "
                   "standardized (times the spread of the unit's code), so units of different layers compare.")
            figure(S_GLOBAL, "top_units.png", plots.top_units(model, k=5, class_names=names),
                   "The five units with the largest weight for each class, coloured by their site (layer).")
        if rnn:
            series = class_means(xb.cpu(), y, num_classes) if y is not None else xb.cpu().mean(0)
            figure(S_GLOBAL, "time_importance.png", plots.time_importance(exp, y=y, series=series, class_names=names),
                   "For each class, how much each time step adds to (red) or takes from (blue) that class's logit, "
                   "averaged over the samples of the class; grey: the class's mean input series.")
            figure(S_GLOBAL, "layer_time.png", plots.layer_time(exp, y=y, class_names=names),
                   "The same contributions split by layer: rows are layers, columns time steps.")
        figure(S_GLOBAL, "class_layer_summary.png", plots.class_layer_summary(exp, y=y, class_names=names),
               "How much of each class's decision each layer carries: the share of the absolute contributions to the "
               "class's logit that comes from each layer, on the samples of that class.")
        maps = None
        if cnn and picks:
            pick_t = torch.tensor(picks)
            maps = model.explain(x[pick_t], maps=True)
        for j, i in enumerate(picks):
            truth = f", true {names[int(y[i])]}" if y is not None else ""
            head = f"Sample {i} (predicted {names[int(pred[i])]}{truth})"
            label = int(y[i]) if y is not None else None
            figure(S_SAMPLES, f"waterfall_{i}.png", plots.waterfall(exp, i, class_names=names, label=label),
                   f"{head}: its predicted logit, built from the bias and the largest contributions "
                   f"({'units' if cnn else 'time steps'}); the last bar is the logit itself.")
            if cnn and maps is not None and xb.dim() in (3, 4):
                figure(S_SAMPLES, f"spatial_maps_{i}.png", plots.spatial_maps(maps, x[pick_t], j, class_names=names, label=label, sample_id=i),
                       f"{head}: where its top units add to the logit, over the input. Each map sums to the unit's contribution.")
            if rnn:
                length = int(exp.lengths[i]) if exp.lengths is not None else xb.shape[1]
                figure(S_SAMPLES, f"sample_time_{i}.png",
                       plots.sample_time(exp, i, label=label, series=xb[i, :length].cpu(), class_names=names),
                       f"{head}: per-step contributions to the predicted and the true class, the running logit "
                       "(bias plus the contributions so far), and the input.")

        about.setdefault("model", type(model).__name__)
        meta = {
            "neuroview": __version__,
            "kind": "cnn" if cnn else "rnn" if rnn else type(exp).__name__,
            **about,
            "samples": n,
            "class_names": names,
            "accuracy": float((pred == y).float().mean()) if y is not None else None,
            "max_abs_residual": residual,
            "examples": picks,
            "figures": [{"file": f, "section": s, "caption": c} for s, f, c in page.figures],
            "tables": [{"file": f, "description": d} for f, d in page.data],
        }
        write_json(out / "report.json", meta)
        files.append("report.json")
        page.data.append(("report.json", "what this report is: model, data, accuracy, and every file with its caption"))
        (out / "index.html").write_text(_html(page, about))
        files.append("index.html")
        bar.update(1)
    finally:
        bar.close()
    return files


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
figure{margin:1.5em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.92em;color:#444;margin-top:.3em}dl.about{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}
dl.about dt{font-weight:600}table{border-collapse:collapse}td{padding:.2em .8em;border-bottom:1px solid #eee;vertical-align:top}
code{background:#f5f5f5;padding:0 .2em}
"""


def _html(page: _Page, about: dict) -> str:
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{e(page.title)}</title><style>{_CSS}</style></head><body>", f"<h1>{e(page.title)}</h1>"]
    if about:
        parts.append('<dl class="about">' + "".join(f"<dt>{e(str(k))}</dt><dd>{e(str(v))}</dd>" for k, v in about.items()) + "</dl>")
    parts += [f"<p>{e(s)}</p>" for s in page.summary]
    parts.append("<p>NeuroView networks decide with one linear classifier over all their units (CNN) or time steps "
                 "(RNN), so every logit is exactly the bias plus one contribution per unit or step: nothing below is "
                 "an approximation.</p>")
    section = None
    for sec, name, caption in page.figures:
        if sec != section:
            parts.append(f"<h2>{e(sec)}</h2>")
            section = sec
        parts.append(f'<figure><img src="{e(name)}" alt="{e(caption)}" loading="lazy">'
                     f"<figcaption><b>{e(name)}</b>: {e(caption)}</figcaption></figure>")
    parts.append("<h2>Data</h2><table>")
    parts += [f'<tr><td><a href="{e(name)}">{e(name)}</a></td><td>{e(desc)}</td></tr>' for name, desc in page.data]
    parts.append("</table>")
    parts.append(f"<p><small>Written by neuroview {e(__version__)}. Tables are CSV (one header row); "
                 "<code>neuroview.attribution.export.read_csv</code> or pandas read them.</small></p></body></html>\n")
    return "\n".join(parts)


# ---------------------------------------------------------------------- command line
DATA_HELP = ("digits | mnist1d | a UCR/UEA set aeon ships (GunPoint, ItalyPowerDemand, BasicMotions, JapaneseVowels, "
             "ArrowHead, OSULeaf, ACSF1, PickupGestureWiimoteZ, UnitTest) | PATH.npz | mnist:ROOT | cifar10:ROOT")


def data_module(spec: str):
    """A :mod:`neuroview.data` module from a short name (see ``DATA_HELP``); offline sets need no ROOT."""
    from .. import data as D  # noqa: PLC0415 - Lightning is slow to import

    if spec == "digits":
        return D.DigitsDataModule()
    if spec == "mnist1d":
        return D.MNIST1DDataModule()
    if spec in D.UCR_DATASETS:
        return D.UCRDataModule(spec)
    if spec.endswith(".npz"):
        return D.NpzDataModule(spec)
    kind, _, root = spec.partition(":")
    if kind == "mnist" and root:
        return D.MNISTDataModule(root)
    if kind == "cifar10" and root:
        return D.CIFAR10DataModule(root)
    raise ValueError(f"--data: expected {DATA_HELP}; got {spec!r}")


def guess_data(model: nn.Module) -> str:
    """The offline set a model's input fits, when nothing says what it was trained on."""
    if is_cnn(model):
        shape = tuple(model.input_shape)
        if len(shape) == 3 and shape[0] == 1:
            return "digits"
        if len(shape) == 2 and shape[0] == 1 and model.num_classes == 10:
            return "mnist1d"
    if is_rnn(model) and model.input_size == 1 and model.num_classes == 10 and model.max_len >= 40:
        return "mnist1d"
    raise ValueError("--data: cannot tell which data this model was trained on; pass --data "
                     f"({DATA_HELP})")


def load_batch(dm, split: str, limit: int, seed: int = 0) -> tuple[Tensor, Tensor | None, Tensor]:
    """``(x, lengths, y)`` of up to ``limit`` samples of a split, channels-first as the data
    modules give them; a random subset (by ``seed``) when the split is larger."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"--split: expected train, val or test, got {split!r}")
    dm.setup("test")
    ds = dm._dataset(split)
    idx = torch.arange(len(ds))
    if len(ds) > limit:
        idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[:limit].sort().values
    items = [ds[int(i)] for i in idx]
    x = torch.stack([it[0] for it in items])
    y = torch.stack([torch.as_tensor(it[-1]) for it in items]).long()
    lengths = torch.stack([torch.as_tensor(it[1]) for it in items]).long() if len(items[0]) == 3 else None
    return x, lengths, y


def resolve_model(args) -> tuple[nn.Module, dict, dict | None]:
    """The network the command line names, facts about it for the report, and the data module
    it was trained on (``{"class_path": ..., "init_args": ...}``) when its checkpoint says."""
    from ..zoo import create_model  # noqa: PLC0415

    if args.ckpt:
        from ..training.module import load_module  # noqa: PLC0415 - Lightning only for Lightning checkpoints

        path = Path(args.ckpt)
        if not path.is_file():
            raise FileNotFoundError(f"--ckpt: expected a Lightning checkpoint written by `neuroview fit`, got {str(path)!r} (no such file)")
        module = load_module(path)
        about = {"model": module.hparams.get("arch", type(module.model).__name__), "checkpoint": str(path)}
        return module.model.eval(), about, _checkpoint_data(path)
    kwargs = json.loads(args.model_args) if args.model_args else {}
    if not isinstance(kwargs, dict):
        raise ValueError(f"--model-args: expected a JSON object of builder arguments, got {args.model_args!r}")
    if args.weights:
        from ..training.module import load_weights  # noqa: PLC0415

        model = create_model(args.model, **kwargs)
        _check_explainable(model, args.model)
        load_weights(model, args.weights)
        return model.eval(), {"model": args.model, "weights": str(args.weights)}, None
    model = create_model(args.model, pretrained=True, **kwargs)
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    about = {"model": cfg.get("name", args.model), "weights": "zoo checkpoint"}
    if cfg.get("metrics", {}).get("test_acc") is not None:
        about["zoo test accuracy"] = f"{100 * cfg['metrics']['test_acc']:.2f}%"
    return model.eval(), about, cfg.get("dataset")


def _check_explainable(model: nn.Module, name: str) -> None:
    if not hasattr(model, "explain"):
        raise ValueError(f"--model/--ckpt: {name} is a standard network with no exact explanation; "
                         "use its NeuroView variant (nv_*)")


def _checkpoint_data(path: Path) -> dict | None:
    """The data module a Lightning checkpoint was trained on, when the module saved its arguments."""
    try:
        hp = torch.load(path, map_location="cpu", weights_only=True).get("datamodule_hyper_parameters") or {}
    except Exception:  # noqa: BLE001 - a hint only; the model loaded already
        return None
    if "_class_path" not in hp:
        return None
    return {"class_path": hp["_class_path"], "init_args": {k: v for k, v in hp.items() if not k.startswith("_")}}


def resolve_data(spec: str | None, trained_on: dict | None, model: nn.Module) -> tuple[object, str]:
    """``(data module, its name)``: ``--data`` when given, else what the checkpoint was trained
    on, else the offline set the model's input fits."""
    if spec:
        return data_module(spec), spec
    if trained_on:
        from ..zoo.pretrained import make_datamodule  # noqa: PLC0415 - only neuroview.data classes, never arbitrary imports

        # a zoo entry's dataset is {"name", "data_module": {class_path, init_args}}; a checkpoint's is the module spec
        module = trained_on.get("data_module", trained_on)
        name = trained_on.get("name") or module.get("init_args", {}).get("name") or module["class_path"].rsplit(".", 1)[-1]
        return make_datamodule(module), str(name)
    guess = guess_data(model)
    return data_module(guess), guess


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="neuroview explain",
        description="Explain a NeuroView network on data: figures (PNG), tables (CSV/JSON), the explanation "
                    "(safetensors) and an index.html that opens offline.",
        epilog="example: neuroview explain --model nv_small_cnn --weights runs/w.safetensors --data digits --out report/",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="a zoo name (neuroview.list_models()); its trained checkpoint, or --weights")
    src.add_argument("--ckpt", help="a Lightning checkpoint written by `neuroview fit` (rebuilds its own model)")
    p.add_argument("--weights", help="with --model: weights to load (.safetensors, .pt state dict, or a .ckpt)")
    p.add_argument("--model-args", help='with --model: builder arguments as JSON, e.g. \'{"widths": [8, 16]}\'')
    p.add_argument("--data", help=f"{DATA_HELP}. Default: what the checkpoint says, else the offline set the model's input fits")
    p.add_argument("--split", default="test", help="train, val or test (default: test)")
    p.add_argument("--samples", type=int, default=256, help="how many samples to explain (default 256)")
    p.add_argument("--examples", type=int, default=4, help="samples with per-sample figures (default 4)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0, help="which samples, when the split has more than --samples")
    p.add_argument("--dpi", type=int, default=100)
    p.add_argument("--out", required=True, help="folder to write; must be empty or new unless --overwrite")
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if args.samples < 1:
        p.error(f"--samples: expected a positive number, got {args.samples}")
    if (args.weights or args.model_args) and not args.model:
        p.error("--weights/--model-args: only with --model (a --ckpt rebuilds its own model)")
    try:
        _check_out(Path(args.out), args.overwrite)
        model, about, trained_on = resolve_model(args)
        _check_explainable(model, about["model"])
        dm, spec = resolve_data(args.data, trained_on, model)
        if dm.num_classes != model.num_classes:
            raise ValueError(f"--data: {spec} has {dm.num_classes} classes, the model {model.num_classes}; pass the data it was trained on")
        x, lengths, y = load_batch(dm, args.split, args.samples, args.seed)
        if is_rnn(model):  # data modules give [B, C, T]; the RNN reads [B, T, F]
            x = _model_layout(model, x.transpose(1, 2))
        about |= {"data": spec, "split": args.split}
        files = write_report(model, x, y, args.out, lengths=lengths, class_names=dm.class_names,
                             examples=args.examples, overwrite=args.overwrite, progress=not args.no_progress,
                             batch_size=args.batch_size, about=about, dpi=args.dpi)
    except (ValueError, FileExistsError, FileNotFoundError, NotADirectoryError, ImportError) as e:
        print(f"neuroview explain: {e}", file=sys.stderr)
        return 2
    print(f"wrote {len(files)} files to {args.out}; open {Path(args.out) / 'index.html'}")
    return 0
