"""Wrap every modern backbone of torchvision and timm with no hints, and check its units and its exactness.

For each classification architecture (torchvision: every name of
``torchvision.models.list_models(module=torchvision.models)``; timm: one model per model module,
i.e. per architecture family, ``timm.list_modules()``), built with random weights:

  1. the plain model runs once in eval at its default input size (timm: ``pretrained_cfg
     ["input_size"]``; torchvision: the crop size of its default weights' transforms, e.g. 299
     for inception_v3, or the model's own ``image_size``; else 224), batch 2, with this script's
     own hooks on every module (not the package's): for every module call, the shape of its input
     and the layer that produced that input (the Conv/Linear/norm whose output *is* that tensor;
     else the norm whose own forward is calling it, as timm's BatchNormAct2d calls its activation;
     else the last such layer to run before it), and again at a second input size (1.25x,
     rounded up to a multiple of 32) when the model accepts one;
  2. ``nv.wrap(model, num_classes=10)``, no hints; a train step on the 2 samples (the first
     batch finds the sites; forward, cross-entropy, backward, SGD step);
  3. ``explain`` in eval, and a separate eval forward ``net(x)``.

Checks, each model classified right / wrong / error with a one-line reason:
  (a) right units, by this script's own rule, not the wrapper's: every site's unit count and dim
      must be the ones the data-flow trace of benchmarks/unit_flow.py gives its input (a layer's
      units followed op by op: concatenations add, permutes move, reshapes keep, splits divide)
      or, where the trace loses them, the ones the layer reading the activation's output reads
      (a Conv's in_channels, a Linear's in_features); a site neither places is "unverified"
      (counted per model in ``sites_by_flow``; the table's "flow-verified" column counts models
      with none), and is still checked against the layer that produced its input when that
      layer's output *is* the input (or encloses the call); a token or position axis is never
      the unit axis (the count along ``Site.axis`` is the same at the second input size);
      samples never mix (a sample's codes alone equal its codes in the batch);
  (b) exact: ``for_class().sum(-1) + bias[target] == net.eval()(x)[target]`` to 1e-4 of max |logit|,
      at both input sizes;
  (c) the train step's loss is finite and some gradient reaches the backbone.
``error`` says where it failed and whose fault it is (``model``: the plain network itself fails
on this input; ``neuroview``: wrapping, training or explaining it fails). Where the error names an
override (``layers=`` for a network of functional activations, ``unit_axis=`` for a site whose
units the wrapper cannot place), the model is checked again with it (the unit axis taken from the
trace) and the table says what that gives. ``--small`` runs each model at the smallest of 64, 96,
... 256 pixels it takes (rebuilt for it when its builder takes ``image_size``/``img_size``): the
CPU sweep, with ``--timm-pick smallest``.

Each model runs in a worker process, restarted after a crash or after ``--model-timeout``
seconds; models with more than ``--max-params`` parameters (counted on the meta device, before
anything is allocated) are skipped and listed; the sweep stops starting models after
``--max-seconds``. Results are rewritten after every model; ``--resume`` keeps the models already
in the file. Writes benchmarks/results/sweep_backbones.json and .md.

    python benchmarks/sweep_backbones.py --device cuda --libraries torchvision     # ~80 models, ~3-5 min on a GPU
    python benchmarks/sweep_backbones.py --device cuda --libraries timm --resume   # ~90 families, ~5-8 min, same file
    python benchmarks/sweep_backbones.py --device cuda --resume                    # whatever the budget left out
    nice python benchmarks/sweep_backbones.py --small --timm-pick smallest --max-seconds 0   # CPU, one core, ~1 h
    python benchmarks/sweep_backbones.py --selftest                               # hand-written look-alikes, CPU, < 1 min
                                                       # -> results/sweep_backbones_selftest.json (checks the checker)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
import weakref
from collections import defaultdict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import unit_flow  # noqa: E402  (next to this script)
from _cache import read_cache, write_cache  # noqa: E402 - resumable caches, written whole

HERE = Path(__file__).resolve().parent
OUT = HERE / "results"
MARK = "@@RESULT "


# =============================================================== the checks (importable, no timing)
def feature_count(m: nn.Module) -> int | None:
    """Feature count of a layer whose outputs carry units (written here, independently of the package)."""
    if isinstance(m, nn.modules.conv._ConvNd):
        return m.out_channels
    if isinstance(m, nn.Linear):
        return m.out_features
    if isinstance(m, nn.modules.batchnorm._NormBase):
        return m.num_features
    if isinstance(m, nn.GroupNorm):
        return m.num_channels
    if isinstance(m, nn.LayerNorm) and len(m.normalized_shape):
        return m.normalized_shape[-1]
    return None


def probe(model: nn.Module, x: Tensor) -> dict[str, list[dict]]:
    """Run ``model(x)`` (eval, no grad) with hooks on every module; for every call of every module:
    its input shape and the layer that produced the input. ``how`` says how that layer was found:
    ``identity`` (the input is that layer's output tensor), ``enclosing`` (the call happens inside
    that layer's own forward, as timm's BatchNormAct2d applies its activation child to its
    normalized output), ``last`` (the last feature layer to finish before), ``none`` (none ran)."""
    outputs: dict[int, tuple] = {}
    last: list = [None]
    running: list[tuple[str, int]] = []  # feature layers whose forward is under way, outermost first
    calls: dict[str, list[dict]] = defaultdict(list)
    handles = []

    def pre(mod, args, name):
        z = args[0] if args and isinstance(args[0], Tensor) else None
        rec = {"shape": tuple(z.shape) if z is not None else None, "producer": None, "features": None, "how": "none"}
        if z is not None:
            hit = outputs.get(id(z))
            around = [(n, f) for n, f in running if name.startswith(n + ".")]
            if hit is not None and hit[0]() is z:
                rec.update(producer=hit[2], features=hit[1], how="identity")
            elif around:
                rec.update(producer=around[-1][0], features=around[-1][1], how="enclosing")
            elif last[0] is not None:
                rec.update(producer=last[0][1], features=last[0][0], how="last")
        calls[name].append(rec)
        f = feature_count(mod)
        if f is not None:
            running.append((name, f))

    def post(mod, args, out, name):
        f = feature_count(mod)
        if f is not None:
            if running and running[-1][0] == name:
                running.pop()
            if isinstance(out, Tensor):
                outputs[id(out)] = (weakref.ref(out), f, name)
                last[0] = (f, name)

    for name, m in model.named_modules():
        handles.append(m.register_forward_pre_hook(lambda mod, a, n=name: pre(mod, a, n)))
        handles.append(m.register_forward_hook(lambda mod, a, o, n=name: post(mod, a, o, n)))
    was = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        model.train(was)
        for h in handles:
            h.remove()
    return dict(calls)


def second_size(size: tuple[int, ...]) -> tuple[int, ...]:
    """1.25x the spatial size, rounded up to a multiple of 32."""
    return (size[0], *[max(32, math.ceil(s * 1.25 / 32) * 32) for s in size[1:]])


def _short(e: BaseException, n: int = 240) -> str:
    msg = " ".join(f"{type(e).__name__}: {e}".split())
    return msg if len(msg) <= n else msg[: n - 3] + "..."


def _call_index(site) -> int:
    return int(site.name[len(site.module) + 1:]) if site.name != site.module else 0


def _exact_gap(net, x: Tensor) -> tuple[float, float]:
    """(gap to a separate eval forward, gap to explain's own logits), relative to max |logit|."""
    exp = net.explain(x)
    with torch.no_grad():
        logits = net.eval()(x).float()
    t = exp.targets()
    rows = torch.arange(len(t), device=t.device)
    recon = exp.for_class(t).sum(-1) + exp.bias[t]
    scale = logits.abs().max().clamp_min(1e-30)
    return float((recon - logits[rows, t]).abs().max() / scale), float((recon - exp.logits[rows, t]).abs().max() / scale)


def check_model(model: nn.Module, input_size, *, device="cpu", num_classes: int = 10, wrap_kwargs: dict | None = None,
                second: bool | tuple = True, rtol: float = 1e-4, seed: int = 0) -> dict:
    """Wrap ``model`` (no hints unless ``wrap_kwargs``), train one step, explain, and check (a), (b), (c)
    of the module docstring. Returns a dict with ``status`` (right / wrong / error), ``reason`` and details."""
    import neuroview as nv

    size = tuple(int(s) for s in input_size)
    res: dict = {"input_size": list(size)}

    def done(status, reason, stage=None, blame=None):
        res.update(status=status, reason=reason)
        if stage:
            res.update(stage=stage, blame=blame)
        return res

    torch.manual_seed(seed)
    device = torch.device(device)
    model = model.to(device)
    x = torch.randn(2, *size, device=device)
    y = torch.arange(2, device=device) % num_classes
    # 1. the plain model, with our own hooks, at both sizes
    try:
        calls = probe(model, x)
        flow = unit_flow.trace(model, x)  # the sweep's own rule for where units are (benchmarks/unit_flow.py)
    except Exception as e:
        return done("error", f"the plain model fails at input {list(size)}: {_short(e)}", "model", "model")
    size2 = second_size(size) if second is True else (tuple(second) if second else None)
    calls2 = None
    if size2 and size2 != size:
        x2 = torch.randn(2, *size2, device=device)
        try:
            calls2 = probe(model, x2)
            res["second_size"] = list(size2)
        except Exception as e:
            res["second_size_note"] = f"the plain model rejects {list(size2)} ({_short(e, 100)}): one size only"
    # 2. wrap, no hints; a train step on the first batch finds the sites
    try:
        net = nv.wrap(model, num_classes, **(wrap_kwargs or {}))
    except Exception as e:
        res["message"] = f"{type(e).__name__}: {e}"[:2000]  # whole: the override it names is at its end
        return done("error", f"wrap: {_short(e)}", "wrap", "neuroview")
    try:
        net.train()
        loss = F.cross_entropy(net(x), y)
        opt = torch.optim.SGD(net.parameters(), lr=1e-3)  # after the first batch: the classifier exists now
        loss.backward()
        opt.step()
    except Exception as e:
        blame = "neuroview"
        try:
            model.train()
            with torch.no_grad():
                model(x)  # the backbone's site hooks record only while the wrapper runs
        except Exception as e2:
            blame, e = "model", e2
        res["message"] = f"{type(e).__name__}: {e}"[:2000]
        return done("error", f"train step: {_short(e)}", "train", blame)
    sites = net.sites
    res.update(sites=len(sites), units=net.num_units,
               axes={str(a): sum(s.axis == a for s in sites) for a in sorted({s.axis for s in sites})})
    if net.left_out:
        res["left_out"] = [f"{n} ({t})" for n, t in net.left_out[:8]] + (["..."] if len(net.left_out) > 8 else [])
    grads = [p.grad for n, p in net.backbone.named_parameters() if p.grad is not None]
    res["loss_finite"] = bool(torch.isfinite(loss).item())
    res["backbone_grad"] = bool(any(g.abs().sum() > 0 for g in grads))
    # 3. explain in eval, against a separate eval forward
    try:
        res["gap"], res["gap_explain"] = _exact_gap(net, x)
    except Exception as e:
        return done("error", f"explain: {_short(e)}", "explain", "neuroview")

    # (a) units, site by site, against the plain model's own record
    problems, expected, by_order, enclosed = [], 0, 0, 0
    verdicts = {"right": 0, "wrong": 0, "unverified": 0}  # per site, by the flow (benchmarks/unit_flow.py)
    for s in sites:
        k = _call_index(s)
        seen = calls.get(s.module, [])
        if k >= len(seen) or seen[k]["shape"] is None:
            problems.append(f"site {s.name} is not a call of the plain model")
            continue
        c = seen[k]
        shape, feats = c["shape"], c["features"]
        if feats is None:  # nothing ran before: the input itself, channels first
            feats = shape[1]
        by_order += c["how"] == "last"
        enclosed += c["how"] == "enclosing"
        expected += feats
        along = shape[s.axis]
        positions = math.prod(shape[1:]) // max(1, feats)  # per unit, were the units the producer's features
        seen_flow = flow.get(s.module, [])
        v, why = (unit_flow.verdict(s.axis, s.channels, seen_flow[k]["shape"], seen_flow[k]["expect"], seen_flow[k]["consumer"])
                  if k < len(seen_flow) else ("unverified", "not traced"))
        verdicts[v] += 1
        if s.channels != along:
            problems.append(f"site {s.name}: {s.channels} units but its input has {along} along axis {s.axis}")
        elif v == "wrong":
            problems.append(f"site {s.name}: {why}")
        elif v == "unverified" and c["how"] != "last" and s.channels != feats:
            what = " (its tokens/positions)" if s.channels == positions else ""
            problems.append(f"site {s.name}: {s.channels} units{what} but {c['producer']} produced {feats} features "
                            f"(input {list(shape)}, axis {s.axis})")
        if calls2 is not None:
            seen2 = calls2.get(s.module, [])
            if k < len(seen2) and seen2[k]["shape"] is not None and seen2[k]["shape"][s.axis] != s.channels:
                problems.append(f"site {s.name}: {s.channels} units at {list(size)} but {seen2[k]['shape'][s.axis]} "
                                f"along axis {s.axis} at {list(size2)} (a position axis)")
    res.update(expected_units=expected, producers_by_order=by_order, producers_enclosing=enclosed,
               sites_by_flow=verdicts)
    # samples never mix: a sample's codes alone equal its codes in the batch (hard codes: a flipped
    # bit of a near-zero pre-activation is rounding, a changed unit in more than 1% is mixing)
    try:
        with torch.no_grad():
            net.eval()
            alone, together = net.codes(x[:1]).float(), net.codes(x)[:1].float()
        res["batch_mixing"] = float(((alone - together).abs() > 1e-3).float().mean())
        if res["batch_mixing"] > 0.01:
            problems.append(f"codes of sample 0 change with its batch-mate in {res['batch_mixing']:.1%} of the units")
    except Exception as e:
        problems.append(f"codes of one sample alone fail: {_short(e, 160)}")
    # the second size through the wrapped network: same units, still exact
    if calls2 is not None:
        try:
            res["gap_second_size"], _ = _exact_gap(net, torch.randn(2, *size2, device=device))
        except Exception as e:
            problems.append(f"explain at the second size {list(size2)} fails: {_short(e, 160)}")
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return done("wrong", problems[0] + more)
    # (b) exactness, (c) training signal
    if not res["gap"] <= rtol:
        return done("wrong", f"not exact: |for_class().sum + bias - logit| = {res['gap']:.1e} of max |logit| (> {rtol:g})"
                    + (f"; against explain's own logits {res['gap_explain']:.1e}" if res["gap_explain"] <= rtol else ""))
    if res.get("gap_second_size", 0.0) > rtol:
        return done("wrong", f"not exact at {list(size2)}: {res['gap_second_size']:.1e} of max |logit|")
    if not res["loss_finite"]:
        return done("wrong", "the train step's loss is not finite")
    if not res["backbone_grad"]:
        return done("wrong", "no gradient reaches the backbone in the train step")
    note = f"{len(sites)} sites, {net.num_units} units (axes {res['axes']})"
    if verdicts["unverified"]:
        note += f"; {verdicts['unverified']} site(s) unverified by the flow"
    if calls2 is None:
        note += "; one input size"
    if net.left_out:
        note += f"; {len(net.left_out)} activation-like module(s) left out, e.g. {res['left_out'][0]}"
    return done("right", note)


# =============================================================== look-alikes for --selftest
def _selftest_models() -> dict:
    """name: (builder, input size, wrap kwargs, expected status). Built lazily, in the worker."""
    import vision_models as vm

    class Plain(nn.Sequential):
        def __init__(self):
            super().__init__(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                             nn.Flatten(), nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 1000))

    class BatchNormAct2d(nn.BatchNorm2d):
        """timm's BatchNormAct2d: a BatchNorm whose forward also applies its child activation."""

        def __init__(self, c):
            super().__init__(c)
            self.act = nn.ReLU(inplace=True)

        def forward(self, x):
            return self.act(super().forward(x))

    class BNAct(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(3, 8, 3, 2, 1), BatchNormAct2d(8)
            self.conv2, self.bn2 = nn.Conv2d(8, 12, 3, 2, 1), BatchNormAct2d(12)
            self.head = nn.Linear(12, 1000)

        def forward(self, x):
            return self.head(self.bn2(self.conv2(self.bn1(self.conv1(x)))).mean((2, 3)))

    class DenseLike(nn.Module):
        """DenseNet as timm builds it: a BatchNormAct2d reads the concatenation of the earlier layers' maps,
        so no layer's output *is* the activation's input, and the last conv to run has fewer features."""

        def __init__(self):
            super().__init__()
            self.conv0 = nn.Conv2d(3, 16, 3, 2, 1)
            self.conv1 = nn.Conv2d(16, 8, 3, padding=1)
            self.norm1 = BatchNormAct2d(24)
            self.head = nn.Linear(24, 1000)

        def forward(self, x):
            x = self.conv0(x)
            return self.head(self.norm1(torch.cat([x, self.conv1(x)], 1)).mean((2, 3)))

    class MixerBlock(nn.Module):
        """MLP-Mixer: a token-mixing MLP on [B, C, N] (its units: hidden token features), then channel mixing."""

        def __init__(self, tokens, dim):
            super().__init__()
            self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
            self.tok = nn.Sequential(nn.Linear(tokens, 2 * tokens), nn.GELU(), nn.Linear(2 * tokens, tokens))
            self.ch = nn.Sequential(nn.Linear(dim, 3 * dim), nn.GELU(), nn.Linear(3 * dim, dim))

        def forward(self, x):
            x = x + self.tok(self.norm1(x).transpose(1, 2)).transpose(1, 2)
            return x + self.ch(self.norm2(x))

    class Mixer(nn.Module):
        def __init__(self, size=32, patch=8, dim=12):
            super().__init__()
            self.stem = nn.Conv2d(3, dim, patch, patch)
            self.blocks = nn.Sequential(*[MixerBlock((size // patch) ** 2, dim) for _ in range(2)])
            self.head = nn.Linear(dim, 1000)

        def forward(self, x):
            return self.head(self.blocks(self.stem(x).flatten(2).transpose(1, 2)).mean(1))

    class Functional(nn.Module):
        """Activations called as functions (torchvision's inception_v3 and googlenet do this): no site to find."""

        def __init__(self):
            super().__init__()
            self.conv, self.fc = nn.Conv2d(3, 8, 3), nn.Linear(8, 1000)

        def forward(self, x):
            return self.fc(F.relu(self.conv(x)).mean((2, 3)))

    def small_vit():
        return vm.VisionTransformer(image_size=32, patch=8, depth=2, heads=2, dim=16, hidden=40, num_classes=1000)

    return {
        "plain_cnn": (Plain, (3, 32, 32), None, "right"),
        "resnet50_like": (lambda: vm.resnet50(width=0.125), (3, 64, 64), None, "right"),
        "efficientnet_b0_like": (lambda: vm.efficientnet_b0(width=0.125), (3, 64, 64), None, "right"),
        "convnext_tiny_like": (lambda: vm.convnext_tiny(width=0.125), (3, 64, 64), None, "right"),
        "vit_class_token_like": (small_vit, (3, 32, 32), None, "right"),
        "vit_b_16_like": (lambda: vm.vit_b_16(width=0.0625, image_size=64), (3, 64, 64), None, "right"),
        "mixer_like": (Mixer, (3, 32, 32), None, "right"),
        "timm_bnact_like": (BNAct, (3, 32, 32), None, "right"),
        # no expectation: reported as it comes out (timm's densenet, dpn fail this way in a CPU run of timm's source)
        "timm_densenet_concat_bnact_like": (DenseLike, (3, 32, 32), None, None),
        # negative controls: the checker must say so
        "functional_relu_only": (Functional, (3, 16, 16), None, "error"),
        "vit_tokens_forced_as_units": (small_vit, (3, 32, 32),
                                       {"unit_axis": {"layers.0.mlp.1": 1, "layers.1.mlp.1": 1}}, "wrong"),
    }


# =============================================================== building library models (worker side)
def _num_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _meta_params(fn) -> int | None:
    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _num_params(fn())
    except Exception:
        return None


def _build_on(fn, device: torch.device) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if device.type != "cpu":
            try:
                with torch.device(device):
                    return fn().to(device)
            except Exception:
                pass
        return fn().to(device)


def _tv_size(name: str, model: nn.Module) -> tuple[int, int, int]:
    """torchvision: the crop size of the default weights' transforms; a model's own ``image_size`` wins."""
    import torchvision

    size = 224
    try:
        crop = torchvision.models.get_model_weights(name).DEFAULT.transforms().crop_size
        size = int(crop[0] if isinstance(crop, (list, tuple)) else crop)
    except Exception:
        pass
    if isinstance(getattr(model, "image_size", None), int):
        size = model.image_size
    return (3, size, size)


def _timm_size(model: nn.Module) -> tuple[int, ...]:
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None) or {}
    return tuple(cfg.get("input_size", (3, 224, 224)))


#: the small input sizes --small tries, smallest first (CPU time): the first the model runs at, below its default
SMALL = (64, 96, 128, 160, 192, 224, 256)


def _smallest(model: nn.Module, size: tuple, sized, device: torch.device) -> tuple[nn.Module, tuple]:
    """The model and the smallest of :data:`SMALL` below its default ``size`` it runs at (batch 2, train and eval);
    a model built for one input size (a ViT's position table) is rebuilt for the small one when its
    builder takes ``image_size`` / ``img_size``."""
    for s in (s for s in SMALL if s < size[-1]):
        for build in (None, sized):
            try:
                m = model if build is None else _build_on(lambda: build(s), device)
                xs = torch.randn(2, size[0], *[s] * (len(size) - 1), device=device)
                with torch.no_grad():  # train mode too: Inception's auxiliary head runs only there
                    m.train()(xs)
                    m.eval()(xs)
                return m, tuple(xs.shape[1:])
            except Exception:
                continue
    return model, size


def run_job(job: dict, device: torch.device, max_params: float) -> dict:
    """One model: pick and build it, check it. ``job``: {"lib", "name"} (timm: name is a model module)."""
    lib, name = job["lib"], job["name"]
    out = {"lib": lib, "name": name}
    t0 = time.perf_counter()
    wrap_kwargs, expect = None, None
    try:
        if lib == "selftest":
            builder, size, wrap_kwargs, expect = _selftest_models()[name]
            fn, out["model"] = builder, name
        elif lib == "torchvision":
            import torchvision

            fn, out["model"] = (lambda: torchvision.models.get_model(name, weights=None)), name
        elif lib == "timm":
            import timm

            names = timm.list_models(module=name)
            out["family_size"] = len(names)
            pick, bigger = None, []
            candidates = names
            if job.get("model") in names and not job["model"].startswith("test_"):  # an earlier run's (--picks-from)
                candidates = [job["model"]]
            elif job.get("pick") == "smallest":
                counts = [(_meta_params(lambda n=n: timm.create_model(n, pretrained=False)), n) for n in names]
                known = sorted((c, n) for c, n in counts if c is not None)
                candidates = [n for _, n in known] + [n for c, n in counts if c is None]
                # timm's test_* models are a few-channel toys of the family: a real member when there is one
                candidates = [n for n in candidates if not n.startswith("test_")] + [n for n in candidates if n.startswith("test_")]
            for n in candidates:
                c = _meta_params(lambda n=n: timm.create_model(n, pretrained=False))
                if c is None or c <= max_params:
                    pick = n
                    break
                bigger.append(n)
            if pick is None:
                return {**out, "status": "skipped", "reason": f"every model of the family has > {max_params / 1e6:.0f} M parameters"}
            out["model"] = pick
            if bigger:
                out["passed_over"] = bigger[:5]
            fn = lambda: timm.create_model(pick, pretrained=False)  # noqa: E731
        else:
            raise ValueError(f"unknown library {lib!r}")
        n = _meta_params(fn)
        if n is not None and n > max_params:
            return {**out, "params": n, "status": "skipped", "reason": f"{n / 1e6:.0f} M parameters > --max-params"}
        model = _build_on(fn, device)
        out["params"] = _num_params(model)
        if out["params"] > max_params:
            return {**out, "status": "skipped", "reason": f"{out['params'] / 1e6:.0f} M parameters > --max-params"}
        if lib == "torchvision":
            size = _tv_size(name, model)
            sized = lambda s: torchvision.models.get_model(name, weights=None, image_size=s)  # noqa: E731 (ViTs)
        elif lib == "timm":
            size = _timm_size(model)
            sized = lambda s: timm.create_model(out["model"], pretrained=False, img_size=s)  # noqa: E731
        if job.get("small") and lib != "selftest":
            out["default_size"] = list(size)
            model, size = _smallest(model, size, sized, device)
    except Exception as e:
        return {**out, "status": "error", "reason": f"build: {_short(e)}", "stage": "build", "blame": "model",
                "seconds": round(time.perf_counter() - t0, 1)}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out.update(check_model(model, size, device=device, wrap_kwargs=wrap_kwargs))
    except Exception as e:  # a bug of this script, or something unforeseen: keep the sweep going
        out.update(status="error", reason=f"check: {_short(e)}", stage="check", blame="sweep",
                   traceback=traceback.format_exc()[-800:])
    if out.get("status") == "error" and out.get("blame") == "neuroview" and lib != "selftest":
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _try_override(model, size, device, out)
        except Exception as e:
            out["override"] = f"could not be tried: {_short(e, 120)}"
    if expect is not None:
        out["expected"] = expect
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def _norms_called(model: nn.Module, size, device) -> list[str]:
    """The names of the BatchNorm modules an eval forward of ``model`` calls, in module order."""
    called, handles = set(), []
    for n, m in model.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            handles.append(m.register_forward_hook(lambda mod, i, o, n=n: called.add(n)))
    was = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.randn(2, *size, device=device))
    finally:
        model.train(was)
        for h in handles:
            h.remove()
    return [n for n, m in model.named_modules() if n in called]


def _try_override(model: nn.Module, size, device, out: dict, tries: int = 8) -> None:
    """A clear error names an override (``layers=`` or ``unit_axis=``): check the model again with it,
    filled in from this script's own trace (benchmarks/unit_flow.py), so the table says whether that
    override makes it right. Records ``out["override"]`` (what was passed) and ``out["with_override"]``."""
    import re

    kw: dict = {}
    flow = None
    for _ in range(tries):
        msg = (out if not kw else out["with_override"]).get("message", "")
        if "found no activation module" in msg and "layers" not in kw:
            # the norms' outputs are the pre-activations of a network that calls F.relu after each: those an eval
            # forward calls (the sites are found in eval mode; GoogLeNet's auxiliary heads run only while training)
            kw["layers"] = _norms_called(model, size, device)
        elif "unit_axis=" in msg and (hit := re.search(r"site '([^']+)'", msg)) is not None:
            name = hit.group(1)
            if name in kw.get("unit_axis", {}):  # named again: the override did not take
                break
            module, _, k = name.partition(":")
            flow = flow or unit_flow.trace(model, torch.randn(2, *size, device=device))
            calls = flow.get(module, [])
            rec = calls[int(k or 0)] if int(k or 0) < len(calls) else None
            where = rec and (rec["expect"] or rec["consumer"])
            if not where or where[1] not in (1, len(rec["shape"]) - 1):
                out["override"] = {**kw, "stopped_at": f"the trace cannot place the units of {name}"}
                return
            axes = kw.setdefault("unit_axis", {})
            axes[name] = 1 if where[1] == 1 else -1
            # the same module in the other blocks (blocks.7.mlp.act for blocks.0.mlp.act): one retry, not one per block
            pattern = re.sub(r"[0-9]+", "[0-9]+", re.escape(module))
            for other, recs in flow.items():
                w = (recs[0]["expect"] or recs[0]["consumer"]) if recs and recs[0]["shape"] else None
                if other != module and re.fullmatch(pattern, other) and w and w[1] in (1, len(recs[0]["shape"]) - 1):
                    axes.setdefault(other, 1 if w[1] == 1 else -1)
        else:
            break
        r = check_model(model, size, device=device, wrap_kwargs=kw)
        out["with_override"] = {k: r.get(k) for k in ("status", "reason", "sites", "units", "sites_by_flow", "message")}
        if r["status"] != "error":
            break
    if kw:
        out["override"] = {k: (v if k != "layers" else f"{len(v)} BatchNorm modules") for k, v in kw.items()}


def worker(args) -> None:
    """Read jobs (JSON lines) on stdin, answer each with one MARK line on stdout."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        # explain and the separate eval forward must see the same pre-activations: a flipped hard code is a real gap
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    for line in sys.stdin:
        job = json.loads(line)
        res = run_job(job, device, args.max_params)
        sys.stdout.write(MARK + json.dumps(res) + "\n")
        sys.stdout.flush()
        if device.type == "cuda":
            torch.cuda.empty_cache()


# =============================================================== the parent: jobs, worker, report
class Worker:
    def __init__(self, args):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--device", args.device,
               "--max-params", str(args.max_params)] + (["--threads", str(args.threads)] if args.threads else [])
        self.err = tempfile.TemporaryFile()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, text=True,
                                     bufsize=1, env=env)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            if line.startswith(MARK):
                self.lines.put(json.loads(line[len(MARK):]))
        self.lines.put(None)  # the worker ended

    def ask(self, job: dict, timeout: float) -> dict | None:
        """The worker's answer; None after ``timeout`` seconds or when the worker died (see :meth:`why`)."""
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            return None

    def why(self) -> str:
        self.err.seek(0)
        tail = self.err.read()[-600:].decode(errors="replace").strip().splitlines()
        return tail[-1] if tail else f"exit code {self.proc.poll()}"

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()  # our own child, by its handle
            self.proc.wait()
        self.err.close()


def list_jobs(args) -> tuple[list[dict], dict]:
    jobs, libs = [], {}
    if args.selftest:
        jobs, libs = [{"lib": "selftest", "name": n} for n in _selftest_models()], {"selftest": "benchmarks/sweep_backbones.py"}
    if not args.selftest and "torchvision" in args.libraries:
        try:
            import torchvision

            libs["torchvision"] = torchvision.__version__
            jobs += [{"lib": "torchvision", "name": n, "small": args.small} for n in torchvision.models.list_models(module=torchvision.models)]
        except ImportError:
            pass
    if not args.selftest and "timm" in args.libraries:
        try:
            import timm

            libs["timm"] = timm.__version__
            jobs += [{"lib": "timm", "name": m, "pick": args.timm_pick, "small": args.small} for m in timm.list_modules()]
        except ImportError:
            pass
    if args.only:
        jobs = [j for j in jobs if any(o in j["name"] for o in args.only)]
    if args.picks_from:  # the timm models an earlier run picked: counting every family's parameters takes minutes
        picked = json.loads(Path(args.picks_from).read_text())["results"]
        for j in jobs:
            model = picked.get(f"{j['lib']}:{j['name']}", {}).get("model")
            if j["lib"] == "timm" and model:
                j["model"] = model
    return jobs, libs


def _describe_override(o) -> str:
    if not isinstance(o, dict):
        return str(o)
    parts = [f"layers=[{o['layers']}]"] if "layers" in o else []
    if "unit_axis" in o:
        ua = o["unit_axis"]
        parts.append("unit_axis={" + ", ".join(f"{k!r}: {v}" for k, v in list(ua.items())[:2]) + (", ..." if len(ua) > 2 else "") + "}")
    if "stopped_at" in o:
        parts.append(o["stopped_at"])
    return "; ".join(parts)


def markdown(res: dict) -> str:
    meta, rows = res["meta"], list(res["results"].values())
    lines = [f"**{meta['note']}**", ""] if meta.get("note") else []
    if meta.get("selftest"):
        lines += ["**Self-test on hand-written look-alikes (CPU): it checks the checker, including two negative controls "
                  "that must come out `error` and `wrong` (marked \"expected\"); rows with no expectation are reported as "
                  "they come out. No torchvision or timm model was run.**", ""]
    lines += [f"Device {meta['device']}, torch {meta['torch']}, libraries {meta['libraries']}; batch 2, `nv.wrap(model, 10)` "
              f"with no hints, random weights; models over {meta['max_params'] / 1e6:.0f} M parameters skipped.", "",
              "Units are graded by the sweep's own data-flow trace (benchmarks/unit_flow.py), not the wrapper's rule; "
              "\"flow-verified\": right with every site's units confirmed by the trace (the others have sites it cannot "
              "place, checked only by the second input size and the producing layer where that is the input's own producer).", "",
              "| library | models | right | (flow-verified) | wrong | error | (right with the override it names) | skipped |",
              "|---|---|---|---|---|---|---|---|"]
    by_lib = defaultdict(list)
    for r in rows:
        by_lib[r["lib"]].append(r)
    for lib, rs in by_lib.items():
        c = {s: sum(r["status"] == s for r in rs) for s in ("right", "wrong", "error", "skipped")}
        verified = sum(r["status"] == "right" and not r.get("sites_by_flow", {}).get("unverified", 1) for r in rs)
        fixed = sum(r["status"] == "error" and r.get("with_override", {}).get("status") == "right" for r in rs)
        lines.append(f"| {lib} | {len(rs)} | {c['right']} | {verified} | {c['wrong']} | {c['error']} | {fixed} | {c['skipped']} |")
    bad = [r for r in rows if r["status"] in ("wrong", "error")]
    if bad:
        lines += ["", "| model | status | stage (whose fault) | reason |", "|---|---|---|---|"]
        for r in bad:
            who = f"{r.get('stage', '')} ({r.get('blame', '')})" if r.get("stage") else ""
            exp = f" (expected {r['expected']})" if "expected" in r else ""
            why = r["reason"]
            if isinstance(r.get("override"), dict) and "stopped_at" in r["override"] and not r.get("with_override"):
                why += f" -- {r['override']['stopped_at']} either"
            if r.get("with_override"):
                o = r["with_override"]
                why += f" -- with the override it names ({_describe_override(r.get('override'))}): **{o['status']}**" + (
                    f" ({o['reason']})" if o["status"] != "right" else f" ({o.get('units')} units)")
            lines.append(f"| {r['lib']}:{r.get('model', r['name'])} | {r['status']}{exp} | {who} | {why.replace('|', '/')} |")
    skipped = [r for r in rows if r["status"] == "skipped"]
    if skipped:
        lines += ["", "Skipped: " + "; ".join(f"{r['lib']}:{r.get('model', r['name'])} ({r['reason']})" for r in skipped) + "."]
    right = [r for r in rows if r["status"] == "right"]
    if right:
        lines += ["", "Right: " + ", ".join(f"{r['lib']}:{r.get('model', r['name'])} ({r.get('units', '?')} units)" for r in right) + "."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--libraries", nargs="+", default=["torchvision", "timm"], choices=["torchvision", "timm"])
    p.add_argument("--selftest", action="store_true", help="sweep the hand-written look-alikes instead of the libraries")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="CPU threads of the worker (default: 1 on CPU, torch's on GPU)")
    p.add_argument("--max-params", type=float, default=300e6)
    p.add_argument("--model-timeout", type=float, default=None, help="seconds per model (default 90 on GPU, 300 on CPU)")
    p.add_argument("--max-seconds", type=float, default=480.0,
                   help="start no model after this many seconds (0: no limit); with the model timeout, a run ends "
                        "within ~10 min")
    p.add_argument("--timm-pick", default="first-fit", choices=["first-fit", "smallest"],
                   help="which model of a timm family: the first (alphabetically) within --max-params, or the smallest")
    p.add_argument("--only", nargs="+", default=None, help="only names (torchvision) or families (timm) containing these")
    p.add_argument("--small", action="store_true", help="run each model at the smallest input of 64, 96, ... 256 it "
                   "takes (rebuilt for it when its builder takes image_size/img_size): CPU sweeps")
    p.add_argument("--picks-from", default=None, help="a results file whose timm picks (one model per family) to reuse")
    p.add_argument("--resume", action="store_true", help="keep the models already in the results file, run the rest")
    p.add_argument("--out", default=None, help="results file stem (default sweep_backbones, or sweep_backbones_selftest)")
    p.add_argument("--note", default=None, help="a line on how this run was made, kept in the results and shown first")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads is None and args.device == "cpu":
        args.threads = 1  # shared cores: more OpenMP threads than free cores run far slower
    if args.worker:
        worker(args)
        return 0
    jobs, libs = list_jobs(args)
    if not args.selftest and not libs:
        print("sweep_backbones: neither torchvision nor timm is importable here, so there is nothing to sweep "
              "(nothing written). Run it where they are installed, or run --selftest to check the checker on "
              "hand-written look-alikes.")
        return 0
    timeout = args.model_timeout or (90.0 if args.device.startswith("cuda") else 300.0)
    stem = args.out or ("sweep_backbones_selftest" if args.selftest else "sweep_backbones")
    path = OUT / f"{stem}.json"
    res = {"results": {}}
    if args.resume and path.is_file():
        res = read_cache(path)
    res["meta"] = {"selftest": args.selftest, "device": args.device, "torch": torch.__version__,
                   "libraries": {**res.get("meta", {}).get("libraries", {}), **libs}, "max_params": args.max_params,
                   "timm_pick": args.timm_pick, "small": args.small, "model_timeout": timeout, "rtol": 1e-4, "batch": 2, "num_classes": 10,
                   "command": "python benchmarks/sweep_backbones.py " + " ".join(sys.argv[1:] if argv is None else argv)}
    if args.note:
        res["meta"]["note"] = args.note
    OUT.mkdir(exist_ok=True)

    def save():
        write_cache(path, json.dumps(res, indent=2) + "\n")
        write_cache(path.with_suffix(".md"), markdown(res))

    t0 = time.perf_counter()
    todo = [j for j in jobs if f"{j['lib']}:{j['name']}" not in res["results"]]
    w = None
    for i, job in enumerate(todo):
        key = f"{job['lib']}:{job['name']}"
        if args.max_seconds and time.perf_counter() - t0 > args.max_seconds:
            print(f"time budget of {args.max_seconds:.0f} s spent: {len(todo) - i} models not started (--resume continues)")
            res["meta"]["not_started"] = [f"{j['lib']}:{j['name']}" for j in todo[i:]]
            break
        w = w or Worker(args)
        t = time.perf_counter()
        out = w.ask(job, timeout)
        if out is None:
            why = "timeout" if w.proc.poll() is None else "worker died"
            reason = f"no answer within {timeout:.0f} s" if why == "timeout" else f"the worker process died: {w.why()}"
            out = {**job, "status": "error", "reason": reason, "stage": why, "blame": "unknown",
                   "seconds": round(time.perf_counter() - t, 1)}
            w.close()
            w = None
        out.pop("pick", None)
        out.pop("small", None)
        if out.get("model") is None and job.get("model"):
            out["model"] = job["model"]
        res["results"][key] = out
        print(f"[{i + 1}/{len(todo)}] {key}{' -> ' + out['model'] if out.get('model', job['name']) != job['name'] else ''}: "
              f"{out['status']} ({out.get('seconds', '?')} s) {out['reason']}", flush=True)
        save()
    else:
        res["meta"].pop("not_started", None)
    if w is not None:
        w.close()
    res["meta"]["seconds"] = round(time.perf_counter() - t0, 1)
    save()
    print(markdown(res))
    print(f"wrote {path} and .md")
    if args.selftest:
        off = [k for k, r in res["results"].items() if r.get("expected") and r["status"] != r["expected"]]
        if off:
            print(f"self-test: {off} did not come out as expected")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
