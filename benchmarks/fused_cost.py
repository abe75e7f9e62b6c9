"""The fused one-pass site kernel on the GPU (issue 25, item 1): eager time and CUDA kernels per site,
with and without it. Run on an H200 on 2026-12-04 (ResNet-50 and EfficientNet-B0 in its time: README, "On the
GPU"; results/fused_cost_gpu*.md); ConvNeXt-T and ViT-B/16 on the kernel are unmeasured. Those runs had NeuroView's
finite check and cuDNN's autotuner off; it now takes gpu_cost.py's setting (``bash benchmarks/device_check.sh``
phase 4, or the command below). The kernel itself is checked under Triton's CPU interpreter (tests/core/test_fused.py).

ResNet-50, EfficientNet-B0, ConvNeXt-T and ViT-B/16 (built as benchmarks/gpu_cost.py builds them),
1,000 classes, ``hard`` codes, eager, fp32 and bf16 autocast; one NeuroView network, its code path
switched by ``NEUROVIEW_FUSED`` (``0``: the torch code, ``1``: the Triton kernel where it applies):

  - agreement: the eval codes of both paths (``torch.equal``, and the largest difference), and the
    first layer's weight gradient of one train step (relative difference: the 4-bit slope state may
    differ by one step where float32 rounding straddles a midpoint);
  - ``kernel_calls``: how many site passes took the kernel, per path, in the agreement check (eval
    codes and one train step: twice the number of sites on the fused path, none on the torch one);
  - time, medians of interleaved rounds: explain (``explain(x).for_class()``) and train step
    (forward, cross-entropy, backward, SGD), each path over the standard network's forward / step;
  - CUDA kernels (``torch.profiler``, device events: kernels, memsets and copies) of one explain and
    one train step per path, minus the standard network's, per site (goal: at most one extra in
    eager mode), and the extra kernels by name.

Setting: gpu_cost.py's options and defaults (NeuroView's finite check on, cuDNN's autotuner on,
TF32 matmuls off, recorded in the meta), so that a "torch" row here is measured as gpu_cost's
rows are. Runs before 2026-12-06 forced the finite check off and left the autotuner off.

    python benchmarks/fused_cost.py                      # GPU, ~1-2 min on an H200; -> results/fused_cost_gpu.{json,md}
    python benchmarks/fused_cost.py --models resnet50 --precisions bf16 --repeats 3
    python benchmarks/fused_cost.py --small              # CPU smoke run at toy size: the kernel never runs on CPU
                                                         # (both paths are the torch code); checks the script only
Without CUDA, a run without ``--small`` or ``--out`` refuses: results/fused_cost_gpu.json holds the GPU figures (so
does ``--out fused_cost_gpu`` or ``--out ""``); a run refuses a results file that holds another machine's figures
(meta ``device_name``: an H100's run into the H200's fused_cost_gpu.json): a run writes the whole file.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

import gpu_cost
from gpu_cost import autocast, build_pair, sync, timed_rounds, train_step
from neuroview.core import fused

OUT = Path(__file__).parent / "results"


@contextlib.contextmanager
def path(on: bool):
    """The code path of every site: the fused kernel (where it applies) or the torch code."""
    old = os.environ.get("NEUROVIEW_FUSED")
    os.environ["NEUROVIEW_FUSED"] = "1" if on else "0"
    try:
        yield
    finally:
        if old is None:
            del os.environ["NEUROVIEW_FUSED"]
        else:
            os.environ["NEUROVIEW_FUSED"] = old


def device_kernels(fn, device) -> collections.Counter:
    """Device-side events (kernels, memsets, copies) that ``fn`` runs, by name (CPU: aten operations)."""
    acts = [ProfilerActivity.CUDA] if device.type == "cuda" else [ProfilerActivity.CPU]
    sync(device)
    with profile(activities=acts) as prof:
        fn()
        sync(device)
    if device.type == "cuda":
        events = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    else:
        events = [e for e in prof.events() if e.name.startswith("aten::") and not e.cpu_children]
    return collections.Counter(e.name[:80] for e in events)


def agreement(net, x, y, opt, device, prec) -> dict:
    """Codes and one step's first-layer gradient of both paths, from the same weights."""
    out, calls = {}, {False: 0, True: 0}
    real = fused.site_code

    def counted(*a, **k):
        calls[on] += 1
        return real(*a, **k)

    fused.site_code = counted
    try:
        for on in (False, True):
            with path(on), torch.no_grad(), autocast(device, prec):
                codes = net.eval().codes(x).float()
            with path(on):
                state = {k: v.clone() for k, v in net.state_dict().items()}
                net.train()
                opt.zero_grad(set_to_none=True)
                torch.manual_seed(0)  # the same dropout and stochastic-depth draws on both paths (EfficientNet)
                with autocast(device, prec):
                    loss = torch.nn.functional.cross_entropy(net(x).float(), y)
                loss.backward()
                w = next(p for p in net.parameters() if p.grad is not None)
                out[on] = (codes, w.grad.detach().float().clone())
                net.load_state_dict(state)  # BatchNorm statistics moved: back to where both paths start
    finally:
        fused.site_code = real
    (c0, g0), (c1, g1) = out[False], out[True]
    return {"codes_equal": bool(torch.equal(c0, c1)), "codes_max_abs_diff": float((c0 - c1).abs().max()),
            "grad_rel_diff": float((g0 - g1).norm() / g0.norm().clamp_min(1e-30)),
            # eval codes and one train step: every site twice on the fused path, never on the torch one
            "kernel_calls": {"torch": calls[False], "fused": calls[True]}, "sites": len(net.sites)}


def measure(name: str, prec: str, args, device, x, y) -> dict:
    std, net, source = build_pair(name, args, device, x)
    sites = len(net.sites)
    opts = {k: torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9) for k, m in (("standard", std), ("neuroview", net))}
    rec = {"source": source, "sites": sites, "units": net.num_units,
           "agreement": agreement(net, x, y, opts["neuroview"], device, prec)}

    def fwd():
        with torch.no_grad(), autocast(device, prec):
            std.eval()(x)

    def explain(on):
        with path(on), autocast(device, prec):
            net.explain(x).for_class()

    def step(on):
        with path(on):
            train_step(net, opts["neuroview"], x, y, device, prec)

    jobs = {"standard/forward": fwd, "standard/train_step": lambda: train_step(std, opts["standard"], x, y, device, prec),
            "torch/explain": lambda: explain(False), "fused/explain": lambda: explain(True),
            "torch/train_step": lambda: step(False), "fused/train_step": lambda: step(True)}
    times = timed_rounds(jobs, args.repeats, args.warmup, device)
    med = {k: statistics.median(v) for k, v in times.items()}
    rec["median_seconds"] = med
    rec["ratios"] = {f"{p}/{w}": med[f"{p}/{w}"] / med[f"standard/{'forward' if w == 'explain' else 'train_step'}"]
                     for p in ("torch", "fused") for w in ("explain", "train_step")}
    counts = {k: device_kernels(fn, device) for k, fn in jobs.items()}
    k = {key: sum(c.values()) for key, c in counts.items()}
    rec["kernels"] = k
    rec["extra_kernels_per_site"] = {
        f"{p}/{w}": (k[f"{p}/{w}"] - k[f"standard/{'forward' if w == 'explain' else 'train_step'}"]) / sites
        for p in ("torch", "fused") for w in ("explain", "train_step")}
    base = {"explain": counts["standard/forward"], "train_step": counts["standard/train_step"]}
    rec["extra_kernels_by_name"] = {
        f"{p}/{w}": {n: v for n, v in (counts[f"{p}/{w}"] - base[w]).most_common(12)}
        for p in ("torch", "fused") for w in ("explain", "train_step")}
    return rec


def markdown(res: dict) -> str:
    m = res["meta"]
    lines = [f"{m['device_name']}, batch {m['batch']}, {m['size']}x{m['size']}, {m['classes']} classes, `hard` codes, eager; "
             f"medians of {m['repeats']} interleaved rounds; torch {m['torch']}, triton {m['triton']}; measured {m['date']}; "
             f"{setting_text(m)}. "
             f"`{m['command']}`", ""]
    if m["smoke"]:
        lines += ["**CPU smoke run: the fused kernel never runs on CPU, both paths are the torch code. Not GPU figures.**", ""]
    lines += ["| model | precision | codes equal | grad rel. diff | fused calls / sites | explain / forward: torch → fused | "
              "train step / standard: torch → fused | extra kernels per site, explain: torch → fused | train step: torch → fused |",
              "|---|---|---|---|---|---|---|---|---|"]
    for name, per in res["models"].items():
        for prec, r in per.items():
            if "error" in r:
                lines.append(f"| {name} | {prec} | {r['error'][:200]} | | | | | | |")
                continue
            a, ra, ke = r["agreement"], r["ratios"], r["extra_kernels_per_site"]
            lines.append(f"| {name} | {prec} | {a['codes_equal']} | {a['grad_rel_diff']:.1e} | "
                         f"{a['kernel_calls']['fused']} / {2 * a['sites']} | "
                         f"{ra['torch/explain']:.2f} → {ra['fused/explain']:.2f} | {ra['torch/train_step']:.2f} → "
                         f"{ra['fused/train_step']:.2f} | {ke['torch/explain']:.1f} → {ke['fused/explain']:.1f} | "
                         f"{ke['torch/train_step']:.1f} → {ke['fused/train_step']:.1f} |")
    return "\n".join(lines) + "\n"


def setting_text(m: dict) -> str:
    """The setting in words; results written before these keys were recorded ran without the finite check
    and with cuDNN's autotuner at torch's default (off)."""
    if "check_finite" not in m:
        return "setting not recorded (an older run: finite check off, cudnn.benchmark at torch's default, off)"
    return (f"finite check {'on' if m['check_finite'] else 'off'}, cudnn.benchmark {m['cudnn_benchmark']}, "
            f"TF32 matmul {m['tf32_matmul']}, channels_last {m['channels_last']}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=list(gpu_cost.MODELS), choices=gpu_cost.MODELS)
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--source", default="auto", choices=["auto", "torchvision", "own"])
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--max-seconds", type=float, default=0, help="skip models that would start after this many seconds (0: no limit)")
    p.add_argument("--small", action="store_true", help="CPU smoke run: batch 2, 64x64, widths / 8, 2 rounds, 1 thread")
    # gpu_cost's options and defaults (finite check on, cuDNN autotuner on, TF32 matmuls off), so that a
    # torch-path row here and a gpu_cost row are measured in the same setting
    gpu_cost.add_setting_args(p)
    p.add_argument("--out", default=None, help="results file stem (default fused_cost_gpu, or fused_cost_cpu_small "
                                               "with --small; needed without CUDA and --small; a file of another "
                                               "machine's is refused); device_check.sh writes a dated one per GPU, "
                                               "fused_cost_gpu_<date>[_<gpu>], keeping earlier runs")
    args = p.parse_args(argv)
    if args.small:
        args.batch, args.size, args.width, args.source, args.repeats, args.warmup = 2, 64, 0.125, "own", 2, 1
        torch.set_num_threads(1)
    device = torch.device("cuda" if torch.cuda.is_available() and not args.small else "cpu")
    if device.type != "cuda" and args.out is None and not args.small:  # fused_cost_gpu.json: the GPU figures README links
        print("--out: expected a results name for CPU figures (the default, results/fused_cost_gpu.json, holds GPU "
              "figures), got none, and no CUDA device here (torch.cuda.is_available(): False); pass --small for a CPU "
              "smoke run, or --out NAME", file=sys.stderr)
        raise SystemExit(2)
    stem = args.out if args.out is not None else ("fused_cost_cpu_small" if args.small else "fused_cost_gpu")
    machine = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    gpu_cost.check_out(OUT, stem, device, machine)  # no --merge here: a run writes the whole file
    settings = gpu_cost.apply_settings(args, device)
    try:
        import triton
        tv = triton.__version__
    except ImportError:
        tv = None
    res = {"meta": {"smoke": args.small, "device_name": machine,
                    "batch": args.batch, "size": args.size, "classes": args.classes, "repeats": args.repeats,
                    "torch": torch.__version__, "triton": tv, "date": time.strftime("%Y-%m-%d"), **settings,
                    "command": "python benchmarks/fused_cost.py " + " ".join(sys.argv[1:] if argv is None else argv)},
           "models": {}}
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    if args.channels_last:  # as gpu_cost lays it out
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, args.classes, (args.batch,), device=device)
    t0 = time.perf_counter()
    for name in args.models:
        for prec in args.precisions:
            if args.max_seconds and time.perf_counter() - t0 > args.max_seconds:
                res["models"].setdefault(name, {})[prec] = {"error": "skipped: --max-seconds spent"}
                continue
            try:
                r = measure(name, prec, args, device, x, y)
            except Exception as e:  # a failure is a result too; the other models still run
                r = {"error": f"{type(e).__name__}: {e}"[:500]}
            res["models"].setdefault(name, {})[prec] = r
            print(name, prec, json.dumps({k: r.get(k) for k in ("agreement", "ratios", "extra_kernels_per_site", "error")}), flush=True)
            gpu_cost.free(device)
            OUT.mkdir(exist_ok=True)
            (OUT / f"{stem}.json").write_text(json.dumps(res, indent=2) + "\n")
            (OUT / f"{stem}.md").write_text(markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
