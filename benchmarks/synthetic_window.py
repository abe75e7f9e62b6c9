"""Ground truth for per-step importance: a synthetic set whose class lives only in a known window.

Every series is Gaussian noise (std 1) over ``--length`` steps; inside the window
(``[40, 60)`` of 100 by default) a class-dependent shape is added at a random offset and
amplitude: a bump up, a bump down, one sine cycle, its negative. Outside the window nothing
depends on the class. A network that decides well must find its evidence in the window, so for
each test decision (the predicted class) we measure the **share of its per-step evidence inside
the window**, ``sum_{t in window} |e_t| / sum_t |e_t|`` (uniform evidence scores 20%), for:

- NeuroView, dense (the trained network) and sparse (``nv.sparsify`` on the training split,
  chosen within 1 point of the dense accuracy on a validation set drawn apart; for the RNN with
  ``groups="step"``, a decision reads few steps): its exact per-step contributions, against zero
  features (``explain()``) and against the training split's mean features
  (``explain(baseline=mean)``, the mean computed exactly on the training split);
- Captum's Integrated Gradients of the same network and class, from a zero series (the noise
  mean), summed over features per step.

Per-step evidence: for the NeuroView-GRU, ``exp.time_importance`` (the contribution of the hidden
state of step t, which has read every input step up to t); for the NeuroView-FCN ("same" padding,
stride 1, so a code map position is an input step), the spatial maps ``exp.spatial_map(site)``
summed over units and sites (the code at position p has read a receptive field around p). Since
neither reads one input step alone, the table also gives the share inside the **reach** of the
window: the positions whose features change when only the window's input changes (found by
perturbing it), i.e. where evidence about the window can be at all.

Mean ± std over ``--seeds`` seeds of data and training (each seed: new series, new network).
Writes benchmarks/results/synthetic_window.json and .md.

    nice -n 10 python benchmarks/synthetic_window.py --threads 1     # 1.4 min on 2 cores (30 min before the solver capped its working set)
    python benchmarks/synthetic_window.py --quick                    # smoke run, seconds
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import torch
from torch import Tensor, nn

from neuroview.attribution.baselines import has_captum, integrated_gradients_scores
from neuroview.attribution.faithfulness import samples_of_steps
from neuroview.core.cnn import NeuroViewCNN
from neuroview.core.rnn import NeuroViewRNN
from neuroview.training.demo import train
from neuroview.zoo import create_model

from faithfulness import positive  # noqa: E402 - the same argparse type (--seeds 0 trained nothing, then failed)

OUT = Path(__file__).parent / "results"
SHAPES = ("bump up", "bump down", "sine cycle", "minus sine cycle")


# ------------------------------------------------------------------------------- data
def make_data(n: int, *, length: int = 100, window: tuple[int, int] = (40, 60), width: int = 12,
              amplitude: tuple[float, float] = (2.0, 3.0), noise: float = 1.0, classes: int = 4,
              seed: int = 0) -> tuple[Tensor, Tensor]:
    """``(x [n, 1, length], y [n])``, channels-first as the data modules give it.

    ``x = noise * N(0, 1) + a * shape_y(t - s)`` with the shape ``width`` steps long, its start
    ``s`` uniform such that it lies inside ``window``, ``a`` uniform in ``amplitude``; classes
    balanced. Outside the window ``x`` is the noise alone. Deterministic for a given ``seed``.
    """
    a, b = window
    if not (0 <= a and b <= length and b - a >= width and 1 <= classes <= len(SHAPES)):
        raise ValueError(f"window {window} must hold a shape of width {width} inside length {length}; classes <= {len(SHAPES)}")
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    y = y[torch.randperm(n, generator=g)]
    u = torch.linspace(0, 1, width)
    templates = torch.stack([torch.sin(math.pi * u), -torch.sin(math.pi * u),
                             torch.sin(2 * math.pi * u), -torch.sin(2 * math.pi * u)])[:classes]
    x = noise * torch.randn(n, length, generator=g)
    start = torch.randint(a, b - width + 1, (n,), generator=g)
    amp = amplitude[0] + (amplitude[1] - amplitude[0]) * torch.rand(n, generator=g)
    idx = start[:, None] + torch.arange(width)
    x.scatter_add_(1, idx, amp[:, None] * templates[y])
    return x[:, None, :], y


# --------------------------------------------------------------------------- evidence
def window_share(evidence: Tensor, window: tuple[int, int] | Tensor) -> Tensor:
    """``[B]``: the share of ``|evidence| [B, T]`` that lies inside ``window`` (a ``(start, stop)``
    pair, or a ``[T]`` bool mask); NaN for a sample whose evidence is all zero."""
    mag = evidence.abs()
    if isinstance(window, Tensor):
        inside = mag[:, window.to(torch.bool)].sum(1)
    else:
        inside = mag[:, window[0]:window[1]].sum(1)
    total = mag.sum(1)
    return torch.where(total > 0, inside / total.clamp_min(torch.finfo(mag.dtype).tiny), torch.full_like(total, float("nan")))


def _steps_first(net: nn.Module, x: Tensor) -> Tensor:
    return x.transpose(1, 2) if isinstance(net, NeuroViewRNN) else x


def neuroview_evidence(net: nn.Module, x: Tensor, baseline: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """``(evidence [B, T], predicted [B])``: the exact per-step contributions to each sample's
    predicted class of channels-first ``x [B, F, T]`` (against ``baseline`` features, or zero).

    RNN: ``time_importance`` (steps of ``window`` samples spread evenly over their samples);
    CNN: every site's spatial map summed over its units, one position per input step (a site
    whose positions are not the input's steps is refused: no honest mapping).
    """
    t = x.shape[-1]
    if isinstance(net, NeuroViewRNN):
        exp = net.explain(x.transpose(1, 2), baseline=baseline)
        ev = samples_of_steps(exp.time_importance[torch.arange(len(x)), exp.target], net.window, t)
        return ev, exp.target
    exp = net.explain(x, maps=True, baseline=baseline)
    ev = torch.zeros(len(x), t)
    for site in exp.site_slices:
        m = exp.spatial_map(site)  # [B, C_s, *positions]
        if m.dim() != 3 or m.shape[-1] != t:
            raise ValueError(f"site {site!r}: positions {list(m.shape[2:])} are not the input's {t} steps")
        ev += m.sum(1)
    return ev, exp.target


def ig_evidence(net: nn.Module, x: Tensor, target: Tensor, n_steps: int = 50) -> Tensor:
    """``[B, T]``: Integrated Gradients (Captum) of ``target`` from a zero series, summed over features."""
    model = net if isinstance(net, NeuroViewRNN) else _ChannelsFirst(net)
    return integrated_gradients_scores(model, x.transpose(1, 2), target, None, "zero", n_steps, 256)


class _ChannelsFirst(nn.Module):
    """A CNN called with ``[B, T, F]`` (the layout the IG adapter hands every network)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.transpose(1, 2))


@torch.no_grad()
def reach(net: nn.Module, x: Tensor, window: tuple[int, int], seed: int = 0) -> Tensor:
    """``[T]`` bool: the steps whose features change when only the window's input changes."""
    g = torch.Generator().manual_seed(seed)
    x2 = x.clone()
    x2[..., window[0]:window[1]] = torch.randn(x2[..., window[0]:window[1]].shape, generator=g)
    t = x.shape[-1]
    if isinstance(net, NeuroViewRNN):
        f1, f2 = (net.features(v.transpose(1, 2)) for v in (x, x2))  # [B, L, D, steps, H]
        per_step = (f1 - f2).abs().sum((0, 1, 2, 4)) > 0
        return samples_of_steps(per_step[None].float(), net.window, t)[0] > 0
    maps = [net.explain(v, maps=True).code_maps for v in (x, x2)]
    changed = torch.zeros(t, dtype=torch.bool)
    for site in maps[0]:
        changed |= ((maps[0][site] - maps[1][site]).abs().sum((0, 1)) > 0)
    return changed


@torch.no_grad()
def mean_features(net: nn.Module, x: Tensor, batch_size: int = 256) -> Tensor:
    """The training split's exact mean features (RNN ``[L, D, T, H]``) or codes (CNN ``[U]``)."""
    parts = [(net.features(xb.transpose(1, 2)) if isinstance(net, NeuroViewRNN) else net.codes(xb)).sum(0)
             for xb in x.split(batch_size)]
    return torch.stack(parts).sum(0) / len(x)


def used(net: nn.Module) -> float:
    """Mean over classes of the steps (RNN) or units (CNN) with a nonzero weight."""
    w = net.effective_classifier()[0].detach()
    if isinstance(net, NeuroViewRNN):
        w = w.reshape(net.num_classes, *net.feature_shape).abs().sum((1, 2, 4))  # [C, steps]
    return (w != 0).sum(-1).float().mean().item()


@torch.no_grad()
def accuracy(net: nn.Module, x: Tensor, y: Tensor) -> float:
    return (net.eval()(_steps_first(net, x)).argmax(-1) == y).float().mean().item()


# ------------------------------------------------------------------------------ models
def build(kind: str, length: int, classes: int) -> nn.Module:
    if kind == "gru":
        return create_model("nv_gru", num_classes=classes, in_features=1, max_len=length, hidden_size=32)
    # small widths: seconds a CPU epoch; kernels 8-5-3 and "same" padding as Wang et al.'s FCN
    return create_model("nv_fcn1d", num_classes=classes, in_channels=1, widths=(16, 32, 32), quantizer="none")


def sparsify(net: nn.Module, x: Tensor, y: Tensor, val: tuple[Tensor, Tensor], seed: int) -> tuple[nn.Module | None, str]:
    """``nv.sparsify`` on the training split, the sparsest point within 1 point of the dense
    network's accuracy on ``val``: series drawn apart from training and test (the generator
    has as many as we like, so no need to carve them from training by cross-validation)."""
    try:
        from neuroview import sparsify as nv_sparsify  # noqa: PLC0415
    except ImportError as e:
        return None, f"nv.sparsify unavailable ({e})"
    groups = "step" if isinstance(net, NeuroViewRNN) else None
    batches = list(zip(x.split(128), y.split(128)))  # channels-first, as the data modules give them
    try:
        return nv_sparsify(net, batches, [val], groups=groups, seed=seed).eval(), f"nv.sparsify(groups={groups!r})"
    except Exception as e:  # noqa: BLE001 - reported in the results (and printed), the dense rows still stand
        print(f"  nv.sparsify failed: {type(e).__name__}: {e}", flush=True)
        return None, f"nv.sparsify(groups={groups!r}) failed: {type(e).__name__}: {e}"


def run_seed(kind: str, seed: int, args) -> dict:
    window = (args.window_start, args.window_start + args.window)
    kw = dict(length=args.length, window=window, classes=args.classes)
    x_tr, y_tr = make_data(args.train, seed=10 * seed, **kw)
    x_te, y_te = make_data(args.test, seed=10 * seed + 1, **kw)
    val = make_data(args.val, seed=10 * seed + 2, **kw)
    torch.manual_seed(seed)
    net = build(kind, args.length, args.classes)
    t0 = time.perf_counter()
    train(net, _steps_first(net, x_tr), y_tr, epochs=args.epochs[kind], lr=3e-3, seed=seed)
    out = {"seed": seed, "train_seconds": round(time.perf_counter() - t0, 1), "accuracy": {"dense": accuracy(net, x_te, y_te)}}
    nets = {"dense": net}
    t0 = time.perf_counter()
    sparse, how = sparsify(net, x_tr, y_tr, val, seed)
    out["sparse"] = how
    if sparse is not None:
        nets["sparse"] = sparse
        out["sparsify_seconds"] = round(time.perf_counter() - t0, 1)
        out["accuracy"]["sparse"] = accuracy(sparse, x_te, y_te)
    out["used"] = {name: used(n) for name, n in nets.items()}
    mask = reach(net, x_te[:64], window)
    out["reach"] = [int(i) for i in mask.nonzero().flatten()[[0, -1]]]
    out["share"], out["share_reach"] = {}, {}

    def record(name: str, ev: Tensor) -> None:
        out["share"][name] = window_share(ev, window).nanmean().item()
        out["share_reach"][name] = window_share(ev, mask).nanmean().item()

    for name, n in nets.items():
        ev, pred = neuroview_evidence(n, x_te)
        record(f"NeuroView {name}, zero baseline", ev)
        record(f"NeuroView {name}, mean baseline", neuroview_evidence(n, x_te, mean_features(n, x_tr))[0])
        if has_captum():
            record(f"Integrated Gradients ({name} network)", ig_evidence(n, x_te, pred, args.n_steps))
    record("uniform (reference)", torch.ones(1, args.length))
    print(f"  {kind} seed {seed}: accuracy {out['accuracy']}, used {out['used']}, reach {out['reach']}", flush=True)
    for k, v in out["share"].items():
        print(f"    {k}: {v:.3f} in window, {out['share_reach'][k]:.3f} in reach", flush=True)
    return out


# ------------------------------------------------------------------------------ report
def _ms(values: list[float], pct: bool = True) -> str:
    f = 100 if pct else 1
    if len(values) == 1:
        return f"{f * values[0]:.1f}"
    return f"{f * statistics.mean(values):.1f} ± {f * statistics.stdev(values):.1f}"


def table(results: dict) -> str:
    lines = []
    for kind, runs in results.items():
        acc = {k: [r["accuracy"][k] for r in runs] for k in runs[0]["accuracy"]}
        use = {k: [r["used"][k] for r in runs] for k in runs[0]["used"]}
        what = "steps" if kind == "gru" else "units"
        head = "; ".join(f"{k} accuracy {_ms(v)}%, {_ms(use[k], False)} {what} per class" for k, v in acc.items())
        reach = sorted({tuple(r["reach"]) for r in runs})
        lines += [f"**NeuroView-{kind.upper()}** ({len(runs)} seeds): {head}; reach of the window: steps "
                  + ", ".join(f"[{a}, {b}]" for a, b in reach) + ".", "",
                  "| evidence | share in the window | share in the window's reach |", "|---|---|---|"]
        for name in runs[0]["share"]:
            lines.append(f"| {name} | {_ms([r['share'][name] for r in runs])}% | {_ms([r['share_reach'][name] for r in runs])}% |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["gru", "fcn"], choices=["gru", "fcn"])
    p.add_argument("--seeds", type=positive, default=3, help="seeds of data and training (at least 1)")
    p.add_argument("--train", type=int, default=1000)
    p.add_argument("--val", type=int, default=300, help="series for nv.sparsify's choice (never trained on)")
    p.add_argument("--test", type=int, default=500)
    p.add_argument("--length", type=int, default=100)
    p.add_argument("--window-start", type=int, default=40)
    p.add_argument("--window", type=int, default=20)
    p.add_argument("--classes", type=int, default=4)
    p.add_argument("--gru-epochs", type=int, default=30)
    p.add_argument("--fcn-epochs", type=int, default=20)
    p.add_argument("--n-steps", type=positive, default=50, help="Integrated Gradients steps")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="smoke run: 1 seed, small sets, few epochs")
    p.add_argument("--out", default=str(OUT / "synthetic_window"), help="results path without extension")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.train, args.val, args.test, args.gru_epochs, args.fcn_epochs, args.n_steps = 1, 200, 100, 100, 3, 3, 8
    args.epochs = {"gru": args.gru_epochs, "fcn": args.fcn_epochs}
    torch.set_num_threads(args.threads)
    t = time.perf_counter()
    results = {}
    for kind in args.models:
        results[kind] = [run_seed(kind, s, args) for s in range(args.seeds)]
    md = table(results)
    cmd = "python benchmarks/synthetic_window.py" + (" --quick" if args.quick else "")
    meta = {k: v for k, v in vars(args).items() if k != "out"} | {
        "window_steps": [args.window_start, args.window_start + args.window], "torch": torch.__version__,
        "minutes": round((time.perf_counter() - t) / 60, 1), "command": cmd}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    header = (f"Class only in steps [{args.window_start}, {args.window_start + args.window}) of {args.length}; "
              f"{args.train} training / {args.val} validation (sparsify's choice) / {args.test} test series per seed; `{cmd} --threads {args.threads}` "
              f"({meta['minutes']} min).\n\n")
    out.with_suffix(".md").write_text(header + md)
    print(md)
    return {"meta": meta, "results": results}


if __name__ == "__main__":
    main()
