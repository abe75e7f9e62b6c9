"""What NeuroView costs on ImageNet-size backbones on the GPU, against the standard networks.

ResNet-50, EfficientNet-B0, ConvNeXt-T and ViT-B/16 (torchvision's builders with random weights
when ``import torchvision`` works, else the compact look-alikes of benchmarks/vision_models.py),
1,000 classes, ``nv.wrap(model, 1000)`` with the default ``hard`` codes. Measured in one run, the
standard network and its NeuroView variant side by side, in fp32 and under bf16 autocast:

  - ``explain(x).for_class()`` time / the standard network's forward (both eval, no grad);
  - NeuroView train step / standard train step (forward, cross-entropy, backward, SGD step);
  - peak train-step memory, NeuroView / standard (``torch.cuda.max_memory_allocated``, reset
    before each step; the other network's weights and optimizer state are subtracted, so each
    side counts its own weights, gradients, momentum and activations);
  - the exactness gap ``max |for_class().sum(-1) + bias[t] - logits[t]| / max |logits|`` of
    ``explain`` under fp32, bf16 and fp16 autocast (the contract: <= 1e-5), and the same gap
    against a separate eval forward ``net(x)``;
  - ``torch.compile``: graph breaks (``torch._dynamo.explain``, train mode), compile time (the
    first compiled train step), and compiled NeuroView step / compiled standard step.

Timing: warm-up calls first, then interleaved rounds (every job once per round, so drifts hit
all alike), each call CUDA-synchronized before and after; medians over the rounds. All eager
measurements of all models come first, the compile phase last; the JSON is rewritten after
every phase, and ``--max-seconds`` skips (and says so) what would not fit, so a run cut short
still leaves its figures. Writes benchmarks/results/gpu_cost.json and .md.

    python benchmarks/gpu_cost.py                  # GPU: 4 models x fp32/bf16, compile in bf16; ~5-7 min on an H200
    python benchmarks/gpu_cost.py --no-compile     # eager only, ~2 min
    python benchmarks/gpu_cost.py --compile-only --merge --models vit_b_16   # a compile the budget skipped, added
    python benchmarks/gpu_cost.py --models resnet50 vit_b_16 --compile-precisions fp32 bf16
    python benchmarks/gpu_cost.py --small          # CPU smoke run at toy size (batch 4, 64x64, widths / 8, 1 thread,
                                                   # compile of resnet50 only, aot_eager backend), ~1-2 min (more on busy cores)
                                                   # -> results/gpu_cost_cpu_small.json: checks the script, not GPU figures
    python benchmarks/gpu_cost.py --device cpu --out gpu_cost_cpu   # CPU figures, into a file of their own: without
                                                   # CUDA, a run without --small or --out refuses (gpu_cost.json holds
                                                   # the GPU figures README links), as does --out gpu_cost or --out ""
Without ``--merge``, a run refuses a results file that holds another machine's figures (meta ``device_name``: an
H100's run into the H200's gpu_cost.json) and names both: a run writes the whole file. ``--device cuda`` without CUDA
refuses in one line.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import neuroview as nv
import vision_models
from _cache import read_cache, write_cache  # resumable caches, written whole (next to this script)

OUT = Path(__file__).parent / "results"
MODELS = ("resnet50", "efficientnet_b0", "convnext_tiny", "vit_b_16")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


# --------------------------------------------------------------------------- helpers
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[precision])


def train_step(net: nn.Module, opt: torch.optim.Optimizer, x, y, device, precision: str) -> None:
    net.train()
    opt.zero_grad(set_to_none=True)
    with autocast(device, precision):
        logits = net(x)
    F.cross_entropy(logits.float(), y).backward()
    opt.step()


def timed_rounds(jobs: dict, rounds: int, warmup: int, device: torch.device) -> dict[str, list[float]]:
    """Seconds per call of every job: ``warmup`` untimed calls each, then ``rounds`` interleaved rounds."""
    for fn in jobs.values():
        for _ in range(warmup):
            fn()
    sync(device)
    times = {k: [] for k in jobs}
    for _ in range(rounds):
        for k, fn in jobs.items():
            sync(device)
            t = time.perf_counter()
            fn()
            sync(device)
            times[k].append(time.perf_counter() - t)
    return times


def own_bytes(net: nn.Module, opt: torch.optim.Optimizer) -> int:
    """Bytes of a network's own parameters, gradients and optimizer state."""
    seen, total = set(), 0
    tensors = [p for p in net.parameters()] + [p.grad for p in net.parameters() if p.grad is not None]
    tensors += [v for s in opt.state.values() for v in s.values() if torch.is_tensor(v)]
    for t in tensors:
        if id(t) not in seen:
            seen.add(id(t))
            total += t.numel() * t.element_size()
    return total


def peak_train_bytes(step, net, opt, device) -> dict:
    """Peak memory of one train step of ``net``, counting only its own weights/grads/optimizer state
    (everything else resident before the step, e.g. the other network, is subtracted)."""
    step()  # gradients and momentum buffers exist before we measure
    gc.collect()
    static = own_bytes(net, opt)
    if device.type == "cuda":
        sync(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        sync(device)
        above = torch.cuda.max_memory_allocated(device) - base
        how = "torch.cuda.max_memory_allocated"
    else:
        from cnn_cost import PeakHeap  # glibc heap sampled after every aten op (CPU)

        with PeakHeap() as ph:
            step()
        above = ph.peak - ph.base
        how = "CPU heap (mallinfo2 after every aten op, benchmarks/cnn_cost.py)"
    return {"peak": static + above, "static": static, "above_static": above, "how": how}


def gap(exp, logits=None) -> float:
    """``max |for_class().sum(-1) + bias[t] - logits[t]| / max |logits|`` (explain's own logits by default)."""
    t = exp.targets()
    ref = exp.logits if logits is None else logits.float()
    rows = torch.arange(len(t), device=t.device)
    err = (exp.for_class(t).sum(-1) + exp.bias[t] - ref[rows, t]).abs().max()
    return float(err / ref.abs().max().clamp_min(1e-30))


class Budget:
    def __init__(self, seconds: float | None):
        self.t0, self.seconds = time.perf_counter(), seconds
        self.last_compile = 0.0  # duration of the last compile phase: the estimate for the next

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def left(self) -> float:
        return float("inf") if self.seconds is None else self.seconds - self.elapsed()


def add_setting_args(p: argparse.ArgumentParser) -> None:
    """The options that set how NeuroView and the backends run; benchmarks/fused_cost.py takes the same,
    with the same defaults, so that rows of the two scripts are measured in the same setting."""
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--tf32", action="store_true", help="allow TF32 matmuls (PyTorch's default: convolutions only)")
    p.add_argument("--no-cudnn-benchmark", action="store_true")
    p.add_argument("--no-check-finite", action="store_true", help="skip the input NaN check (a host sync per forward)")


def apply_settings(args, device: torch.device) -> dict:
    """Sets cuDNN's autotuner and TF32 as ``args`` says (CUDA only) and returns the record of the
    setting for the results' meta (the same keys in gpu_cost and fused_cost)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not args.no_cudnn_benchmark
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
    return {"cudnn_benchmark": torch.backends.cudnn.benchmark if device.type == "cuda" else None,
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "tf32_conv": torch.backends.cudnn.allow_tf32,
            "channels_last": args.channels_last, "check_finite": not args.no_check_finite, "quantizer": "hard",
            "optimizer": "SGD(lr=1e-3, momentum=0.9)"}


GPU_STEMS = ("gpu_cost", "fused_cost_gpu")  # the GPU figures README links (an H200's): a CPU run never writes them


def _refuse(message: str) -> None:
    print(message, file=sys.stderr)
    raise SystemExit(2)


def check_out(out: Path, stem: str, device: torch.device, machine: str, merged: bool = False, hint: str = "") -> None:
    """Exit 2 in one line, before any work, where ``out/stem.json`` is not this run's to write: an empty name (an unset
    shell variable), a CPU run into the GPU files README links, or (without ``--merge``: a run rewrites the whole file)
    a file of another machine (its meta's ``device_name``, not ``machine``) or of none it records. ``merged``: the run
    adds to the file (``--merge``, which checks the machine itself); ``hint``: that way out, for the refusal."""
    if not stem.strip():
        _refuse(f"--out: expected a results file name, got {stem!r} (an unset shell variable gives an empty one); "
                "pass --out NAME, or leave --out out for the default")
    path = out / f"{stem}.json"
    shown = path.relative_to(out.parent) if path.is_relative_to(out.parent) else path
    gpu = [s for s in GPU_STEMS if path.resolve() == (out / f"{s}.json").resolve()]
    if gpu and device.type != "cuda":
        _refuse(f"--out: expected a file for {device} figures, got {stem!r}: results/{gpu[0]}.json holds the GPU "
                f"figures README links (torch.cuda.is_available(): {torch.cuda.is_available()}); pass --out NAME "
                "for a file of their own, or --small for a CPU smoke run")
    if merged or not path.is_file():
        return
    try:
        meta = json.loads(path.read_text())["meta"]
        had, when = meta["device_name"], meta.get("date") or "date not recorded"
    except (ValueError, KeyError, TypeError):
        _refuse(f"--out: {shown} records no machine (no meta.device_name), this run is on {machine}: a run would write "
                "over figures it cannot tell are this machine's; pass --out NAME for a file of its own, or delete it")
    if had != machine:
        _refuse(f"--out: {shown} holds {had} figures ({when}), this run is on {machine}; pass --out NAME for a file "
                f"of its own{hint}")


# --------------------------------------------------------------------------- phases
def build_pair(name: str, args, device: torch.device, x: torch.Tensor):
    """The standard network and its NeuroView variant (same initial weights), on ``device``."""
    torch.manual_seed(0)
    std, source = vision_models.build(name, source=args.source, num_classes=args.classes, width=args.width,
                                      image_size=args.size)
    backbone = copy.deepcopy(std)  # copied before wrapping, so the standard network carries no hooks
    std, backbone = std.to(device), backbone.to(device)
    if args.channels_last:
        std, backbone = std.to(memory_format=torch.channels_last), backbone.to(memory_format=torch.channels_last)
    net = nv.wrap(backbone, args.classes, example_input=x)  # sites found on the real batch, before any optimizer
    net.check_finite = not args.no_check_finite
    return std, net, source


def measure(prec: str, std, net, opts, device, x, y, args) -> dict:
    """Eager timings (interleaved rounds) and peak train memory of both networks in one precision."""

    def fwd():
        with torch.no_grad(), autocast(device, prec):
            std.eval()(x)

    def explain():
        with autocast(device, prec):
            net.explain(x).for_class()

    steps = {k: (lambda k=k, m=m: train_step(m, opts[k], x, y, device, prec)) for k, m in (("standard", std), ("neuroview", net))}
    jobs = {"standard/forward": fwd, "neuroview/explain": explain,
            "standard/train_step": steps["standard"], "neuroview/train_step": steps["neuroview"]}
    times = timed_rounds(jobs, args.repeats, args.warmup, device)
    med = {k: statistics.median(v) for k, v in times.items()}
    mem = {k: peak_train_bytes(steps[k], m, opts[k], device) for k, m in (("standard", std), ("neuroview", net))}
    return {
        "median_seconds": med, "all_seconds": times, "peak_train_bytes": mem,
        "ratios": {"explain_over_forward": med["neuroview/explain"] / med["standard/forward"],
                   "train_step_ratio": med["neuroview/train_step"] / med["standard/train_step"],
                   "peak_memory_ratio": mem["neuroview"]["peak"] / mem["standard"]["peak"],
                   "activation_memory_ratio": mem["neuroview"]["above_static"] / max(1, mem["standard"]["above_static"])},
    }


def eager_phase(name: str, args, device, x, y, budget: Budget, res: dict, save) -> None:
    std, net, source = build_pair(name, args, device, x)
    entry = res["models"].setdefault(name, {})
    for k in ("skipped", "error"):  # an earlier run's (--merge): measured now
        entry.pop(k, None)
    entry.update({"source": source, "params_standard": vision_models.num_params(std),
                  "params_neuroview": sum(p.numel() for p in net.parameters()),
                  "head_params": net.classifier.weight.numel() + net.classifier.bias.numel(),
                  "sites": len(net.sites), "units": net.num_units,
                  "unit_axes": sorted({s.axis for s in net.sites})})
    opts = {"standard": torch.optim.SGD(std.parameters(), lr=1e-3, momentum=0.9),
            "neuroview": torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)}
    entry.setdefault("precisions", {})
    for prec in args.precisions:
        if budget.left() < args.phase_seconds:
            if "ratios" not in entry["precisions"].get(prec, {}):  # keeps an earlier run's figures (--merge)
                entry["precisions"][prec] = {"skipped": f"time budget (--max-seconds {args.max_seconds}) spent"}
            continue
        t0 = time.perf_counter()
        try:
            entry["precisions"][prec] = measure(prec, std, net, opts, device, x, y, args)
        except Exception as e:  # e.g. out of memory: recorded, and the other phases still run
            entry["precisions"][prec] = {"error": f"{type(e).__name__}: {e}"[:500]}
            free(device)
        entry["precisions"][prec]["seconds"] = round(time.perf_counter() - t0, 1)
        print(f"{name} {prec}: " + ", ".join(f"{k} {v:.2f}" for k, v in entry["precisions"][prec].get("ratios", {}).items())
              + entry["precisions"][prec].get("error", ""), flush=True)
        save()
    # exactness under autocast (eval), and against a separate eval forward
    ex = {}
    for prec in ("fp32", "bf16", "fp16"):
        try:
            with autocast(device, prec):
                exp = net.explain(x)
                with torch.no_grad():
                    logits = net.eval()(x)
            ex[prec] = {"gap": gap(exp), "gap_vs_forward": gap(exp, logits), "max_abs_logit": float(exp.logits.abs().max()),
                        "within_1e-5": gap(exp) <= 1e-5}
        except Exception as e:  # e.g. fp16 autocast not supported on this device
            ex[prec] = {"error": f"{type(e).__name__}: {e}"[:300]}
    entry["exactness"] = ex
    print(f"{name} exactness: " + ", ".join(f"{p} {v.get('gap', v.get('error'))}" for p, v in ex.items()), flush=True)
    save()


def breaks(model: nn.Module, x, device, prec: str) -> dict:
    torch._dynamo.reset()
    model.train()
    with autocast(device, prec):
        out = torch._dynamo.explain(model)(x)
    return {"graphs": out.graph_count, "graph_breaks": out.graph_break_count,
            "break_reasons": [str(r.reason)[:200] for r in out.break_reasons[:3]]}


def compile_one(name: str, prec: str, args, device, x, y) -> dict:
    """Graph breaks, compile time and compiled step ratio of one model in one precision."""
    std, net, _ = build_pair(name, args, device, x)
    rec = {"backend": args.compile_backend,
           "dynamo_explain": {"neuroview": breaks(net, x, device, prec), "standard": breaks(std, x, device, prec)}}
    torch._dynamo.reset()
    opts = {"standard": torch.optim.SGD(std.parameters(), lr=1e-3, momentum=0.9),
            "neuroview": torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)}
    compiled = {"standard": torch.compile(std, backend=args.compile_backend),
                "neuroview": torch.compile(net, backend=args.compile_backend)}
    steps = {k: (lambda k=k: train_step(compiled[k], opts[k], x, y, device, prec)) for k in compiled}
    first = {}
    for k, step in steps.items():
        sync(device)
        t = time.perf_counter()
        step()  # the first call compiles (forward and backward graphs)
        sync(device)
        first[k] = time.perf_counter() - t
    rec["compile_seconds"] = first
    times = timed_rounds({f"{k}/train_step": s for k, s in steps.items()}, args.compile_repeats, args.warmup, device)
    med = {k: statistics.median(v) for k, v in times.items()}
    rec["median_seconds"] = med
    rec["compiled_train_step_ratio"] = med["neuroview/train_step"] / med["standard/train_step"]
    return rec


def free(device) -> None:
    torch._dynamo.reset()
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def compile_phase(name: str, args, device, x, y, budget: Budget, res: dict, save) -> None:
    entry = res["models"].setdefault(name, {}).setdefault("compile", {})
    for prec in args.compile_precisions:
        # a phase starts only if the budget leaves room for it: --compile-seconds, or the last phase's duration
        need = max(args.compile_seconds, 1.1 * budget.last_compile)
        if budget.left() < need:
            if "compiled_train_step_ratio" in entry.get(prec, {}):  # an earlier run's figures (--merge) stay
                continue
            entry[prec] = {"skipped": f"time budget (--max-seconds {args.max_seconds}): {budget.left():.0f} s left, "
                                      f"a compile phase needs ~{need:.0f} s; run again with --compile-only --merge"}
            save()
            continue
        t0 = time.perf_counter()
        try:
            rec = compile_one(name, prec, args, device, x, y)
        except Exception as e:  # a compile failure is a result too; the other models still run
            rec = {"backend": args.compile_backend, "error": f"{type(e).__name__}: {e}"[:500]}
        rec["seconds"] = round(time.perf_counter() - t0, 1)
        budget.last_compile = rec["seconds"]
        entry[prec] = rec
        d = rec.get("dynamo_explain", {}).get("neuroview", {})
        print(f"{name} compile {prec}: NV {d.get('graphs')} graph(s), {d.get('graph_breaks')} break(s); compile s "
              f"{ {k: round(v) for k, v in rec.get('compile_seconds', {}).items()} }; ratio "
              f"{rec.get('compiled_train_step_ratio', rec.get('error'))}", flush=True)
        save()
        free(device)


# --------------------------------------------------------------------------- report
def _f(v, fmt="{:.2f}"):
    return fmt.format(v) if isinstance(v, (int, float)) else "–"


def markdown(res: dict) -> str:
    m = res["meta"]
    dates = ", ".join(sorted({str(d) for d in m.get("earlier_dates", []) + [m.get("date", "?")]}))  # merged runs'
    head = []
    if m["smoke"]:
        head += ["**CPU smoke run at toy size (batch {batch}, {size}x{size}, widths x{width:g}, {device}): it checks that the "
                 "script runs; these are not GPU figures.**".format(**m), ""]
    head += [f"{m['device_name']}, batch {m['batch']}, {m['size']}x{m['size']}, {m['classes']} classes, NeuroView "
             f"`hard` codes; medians of {m['repeats']} interleaved rounds (compiled: {m.get('compile_repeats', 10)}); "
             f"torch {m['torch']}; measured {dates}.", "",
             "| model | precision | units | explain / forward | train step / standard | peak train memory / standard | "
             "compile: NV graphs / breaks | compile s (NV / std) | compiled step / compiled standard |",
             "|---|---|---|---|---|---|---|---|---|"]
    order, notes = ["fp32", "bf16", "fp16"], []
    for name, e in res["models"].items():
        if "error" in e or "skipped" in e:
            head.append(f"| {name} | – | {e.get('units', '–')} | {e.get('error', e.get('skipped'))} | | | | | |")
        for prec in sorted(set(e.get("precisions", {})) | set(e.get("compile", {})), key=order.index):
            r = e.get("precisions", {}).get(prec, {})
            ra = r.get("ratios", {})
            c = e.get("compile", {}).get(prec, {})
            d, ds = (c.get("dynamo_explain", {}).get(k, {}) for k in ("neuroview", "standard"))
            cs = c.get("compile_seconds", {})
            comp = f"{d['graphs']} / {d['graph_breaks']} (std {ds['graphs']} / {ds['graph_breaks']})" if d and ds else "–"
            ratio = "error" if "error" in c else c.get("skipped") and "skipped" or _f(c.get("compiled_train_step_ratio"))
            note = "; ".join(f"{what}: {v[k]}" for what, v in (("eager", r), ("compile", c)) for k in ("error", "skipped") if k in v)
            head.append(f"| {name} | {prec} | {e.get('units', '–')} | {_f(ra.get('explain_over_forward'))} | "
                        f"{_f(ra.get('train_step_ratio'))} | {_f(ra.get('peak_memory_ratio'))} | {comp} | "
                        f"{_f(cs.get('neuroview'), '{:.0f}')} / {_f(cs.get('standard'), '{:.0f}')} | {ratio} |")
            if note:
                notes.append(f"- {name} {prec}: {note}")
    head += [""] + notes if notes else []
    head += ["", "Exactness of `explain` under autocast: max |for_class().sum(-1) + bias[t] - logits[t]| / max |logits| "
             "(contract: <= 1e-5).", "", "| model | fp32 | bf16 | fp16 |", "|---|---|---|---|"]
    for name, e in res["models"].items():
        ex = e.get("exactness", {})
        cells = [(_f(ex[p].get("gap"), "{:.1e}") if "gap" in ex.get(p, {}) else ("error" if p in ex else "–"))
                 for p in ("fp32", "bf16", "fp16")]
        head.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(head) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16", "fp16"])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=15, help="interleaved timing rounds; medians are reported")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--source", default="auto", choices=["auto", "torchvision", "own"],
                   help="auto: torchvision's builders when importable (and --width 1), else benchmarks/vision_models.py")
    p.add_argument("--width", type=float, default=1.0, help="channel multiplier of our own definitions")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--compile-only", action="store_true", help="skip the eager phases (with --merge: add compile figures)")
    p.add_argument("--merge", action="store_true",
                   help="update the results file of an earlier run (same batch and size) instead of starting afresh")
    p.add_argument("--compile-precisions", nargs="+", default=["bf16"], choices=["fp32", "bf16"])
    p.add_argument("--compile-models", nargs="+", default=None, choices=MODELS,
                   help="models to compile (default: all of --models; with --small: resnet50)")
    p.add_argument("--compile-backend", default="inductor")
    p.add_argument("--compile-repeats", type=int, default=10)
    p.add_argument("--max-seconds", type=float, default=420.0,
                   help="skip phases that would start after this many seconds (0: no limit)")
    p.add_argument("--phase-seconds", type=float, default=20.0, help="time an eager phase needs to be started")
    p.add_argument("--compile-seconds", type=float, default=90.0,
                   help="time left that a compile phase needs to be started (or the last one's duration, if longer)")
    add_setting_args(p)
    p.add_argument("--small", action="store_true",
                   help="CPU smoke run: batch 4, 64x64, widths / 8, 2 rounds, 1 warm-up, compile with aot_eager")
    p.add_argument("--out", default=None, help="results file stem (default gpu_cost, or gpu_cost_cpu_small with --small); "
                                               "needed on a device other than CUDA without --small; a file of "
                                               "another machine's is refused without --merge")
    args = p.parse_args(argv)
    if args.small:
        args.batch, args.size, args.repeats, args.warmup = 4, 64, 2, 1
        args.width, args.source, args.compile_repeats = 0.125, "own", 2
        args.compile_backend = "aot_eager" if args.compile_backend == "inductor" else args.compile_backend
        args.device = "cpu" if args.device == "auto" else args.device
        args.phase_seconds = args.compile_seconds = 0.0
        args.max_seconds = 0
        args.compile_models = args.compile_models or ["resnet50"]
        args.threads = args.threads or 1  # the 2 cores here are shared: 2 OpenMP threads under load run 100x slower
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        _refuse(f"--device: expected a CUDA device torch can use, got {args.device!r} (torch.cuda.is_available(): "
                f"{torch.cuda.is_available()}, device_count(): {torch.cuda.device_count()}); pass --device cpu with "
                "--out NAME for CPU figures, or --small for a CPU smoke run")
    stem = args.out if args.out is not None else ("gpu_cost_cpu_small" if args.small else "gpu_cost")
    if device.type != "cuda" and args.out is None and not args.small:  # results/gpu_cost.json: the GPU figures README links
        print(f"--device: expected a CUDA device for results/{stem}.json (GPU figures), got {device} "
              f"(torch.cuda.is_available(): {torch.cuda.is_available()}); pass --small for a CPU smoke run, or "
              "--out NAME for CPU figures in a file of their own", file=sys.stderr)
        raise SystemExit(2)
    if args.threads:
        torch.set_num_threads(args.threads)
    machine = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    check_out(OUT, stem, device, machine, args.merge, " (with --merge: add to this machine's earlier run in it)")
    settings = apply_settings(args, device)
    budget = Budget(args.max_seconds or None)

    try:
        import torchvision
        tv = torchvision.__version__
    except ImportError:
        tv = None
    meta = {"smoke": args.small, "device": str(device),
            "device_name": machine,
            "batch": args.batch, "size": args.size, "classes": args.classes, "width": args.width, "repeats": args.repeats,
            "warmup": args.warmup, "torch": torch.__version__, "torchvision": tv, "cuda": torch.version.cuda,
            **settings, "compile_repeats": args.compile_repeats, "date": time.strftime("%Y-%m-%d"), "command": "python benchmarks/gpu_cost.py " + " ".join(sys.argv[1:] if argv is None else argv)}
    if args.small:
        meta["note"] = ("CPU smoke run at toy size, to check the script: NOT GPU figures. Our own definitions at 1/8 width, "
                        "64x64 input, batch 4, 2 rounds, 1 thread (shared cores); compile of resnet50 only, with the aot_eager "
                        "backend (no inductor code generation). Ratios at this size say nothing about the GPU: the "
                        "1,000-class head dominates a 1/8-width network's weights, and CPU timings here are noisy.")
    res = {"meta": meta, "models": {}}
    OUT.mkdir(exist_ok=True)
    if args.merge and (OUT / f"{stem}.json").is_file():
        old = read_cache(OUT / f"{stem}.json")
        # rows of one table share their setting too (finite check, cuDNN autotuner, TF32, layout)
        # and their machine: the meta names one GPU and torch for every row (an H100's rows under an H200's name)
        keys = ["device", "device_name", "torch", "batch", "size", "classes", "width", "check_finite",
                "cudnn_benchmark", "tf32_matmul", "channels_last"]
        keys += [] if args.compile_only else ["repeats"]  # rows of one table are medians of as many rounds
        keys += [] if args.no_compile else ["compile_repeats"]
        same = {k: (old["meta"].get(k), meta[k]) for k in keys}
        if any(a != b for a, b in same.values()):
            raise SystemExit(f"--merge: the earlier run differs in {[k for k, (a, b) in same.items() if a != b]} "
                             f"(earlier, now): {same}; write another file (--out) instead")
        res["models"] = old["models"]
        if args.compile_only:  # the eager figures, and the rounds they are medians of, are the earlier run's
            meta["repeats"] = old["meta"]["repeats"]
        if args.no_compile:  # the compile figures, likewise
            meta["compile_repeats"] = old["meta"].get("compile_repeats", meta["compile_repeats"])
        meta["earlier_dates"] = old["meta"].get("earlier_dates", []) + [old["meta"].get("date")]
        meta["earlier_commands"] = old["meta"].get("earlier_commands", []) + [old["meta"]["command"]]

    def save():
        res["meta"]["elapsed_seconds"] = round(budget.elapsed(), 1)
        write_cache(OUT / f"{stem}.json", json.dumps(res, indent=2) + "\n")
        write_cache(OUT / f"{stem}.md", markdown(res))

    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    if args.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, args.classes, (args.batch,), device=device)
    for name in [] if args.compile_only else args.models:
        if budget.left() < args.phase_seconds:
            entry = res["models"].setdefault(name, {})
            if "precisions" not in entry:  # a skip never replaces an earlier run's figures (--merge)
                entry["skipped"] = f"time budget (--max-seconds {args.max_seconds}) spent"
            continue
        try:
            eager_phase(name, args, device, x, y, budget, res, save)
        except Exception as e:  # building or wrapping failed, or out of memory: recorded, the others still run
            res["models"].setdefault(name, {})["error"] = f"{type(e).__name__}: {e}"[:500]
            print(f"{name}: {res['models'][name]['error']}", flush=True)
        free(device)
    if not args.no_compile:
        for name in [m for m in (args.compile_models or args.models) if m in args.models]:  # in the order asked
            compile_phase(name, args, device, x, y, budget, res, save)
    save()
    print(markdown(res))
    print(f"wrote {OUT / stem}.json and .md in {budget.elapsed():.0f} s")


if __name__ == "__main__":
    main()
