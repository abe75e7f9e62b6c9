"""What NeuroView-CNN costs on a CIFAR-style ResNet-18 (batch 64, 32x32, 2 threads).

Measured in one run, interleaving the networks repeat by repeat so machine noise hits both, each
job setting the mode it measures every time it runs (so no job inherits another's mode):
  - explain(x) time / plain forward time of the standard network (both eval, no_grad);
  - NeuroView train-step time / standard train-step time (forward, backward, SGD step; both in
    train mode, BatchNorm on batch statistics);
  - peak heap memory of a train step, NeuroView / standard (sampled after every aten op
    through a TorchDispatchMode reading glibc's mallinfo2, so no timing run is disturbed).
Subnormal floats are flushed to zero where the CPU supports it (recorded in the meta): a gradient
fading into subnormals runs ~10x slower on x86 and would slow one side's train step for reasons that
have nothing to do with its cost (``--keep-denormals`` measures without it).
Writes benchmarks/results/cnn_cost.json and .md.

    python benchmarks/cnn_cost.py                     # all quantizers, ~5 min on 2 cores
    python benchmarks/cnn_cost.py --quantizers soft --repeats 3
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from neuroview.zoo import create_model
from _cache import write_cache  # read back by run_all.py: written whole (next to this script)

OUT = Path(__file__).parent / "results"


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


_libc = ctypes.CDLL(ctypes.util.find_library("c"))
_libc.mallinfo2.restype = _MallInfo2


def heap_in_use() -> int:
    m = _libc.mallinfo2()
    return m.uordblks + m.hblkhd  # small blocks in use + mmapped large blocks (tensors)


class PeakHeap(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.base = heap_in_use()
        self.peak = self.base

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.peak = max(self.peak, heap_in_use())
        return out


def train_step(net, opt, x, y):
    net.train()  # every time: a forward measured in between puts the network in eval mode
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(net(x), y).backward()
    opt.step()


def peak_train_memory(net, x, y) -> int:
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    train_step(net, opt, x, y)  # momentum buffers and grads exist before we measure
    gc.collect()
    with PeakHeap() as ph:
        train_step(net, opt, x, y)
    return ph.peak - ph.base


def timed(fn, n: int) -> float:
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n


def forward_eval(net, x) -> None:
    net.eval()
    with torch.no_grad():
        net(x)


def build_jobs(std, nets: dict, opts: dict, x, y) -> dict:
    """The timed jobs, in the order they run each round: the standard network's forward and train
    step, then each quantizer's explain and train step. Each job sets its own mode when it runs
    (forward: eval; explain: eval inside, modes restored; train step: train), so the two networks of
    a pair are always measured in the same mode whatever ran before (tests/test_benchmark_setup.py)."""
    jobs = {"standard/forward": lambda: forward_eval(std, x),
            "standard/train_step": lambda: train_step(std, opts["standard"], x, y)}
    for q, n in nets.items():
        jobs[f"{q}/explain"] = lambda n=n: n.explain(x)
        jobs[f"{q}/train_step"] = lambda q=q, n=n: train_step(n, opts[q], x, y)
    return jobs


def main(argv=None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quantizers", nargs="+", default=["hard", "soft", "none"])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=7, help="interleaved rounds; medians are reported")
    p.add_argument("--keep-denormals", action="store_true", help="do not flush subnormal floats to zero")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    # False where the CPU has no flush-to-zero: recorded, so a reader knows subnormals may have slowed a side
    # set both ways: an earlier main() in this process may have left flushing on; recorded as in force
    torch.set_flush_denormal(not args.keep_denormals)
    flush_denormal = (torch.tensor([1e-30]) * torch.tensor([1e-10])).item() == 0.0  # 1e-40: subnormal in float32
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, 32, 32)
    y = torch.randint(0, 10, (args.batch,))

    std = create_model("resnet18_cifar", num_classes=10)
    nets = {q: create_model("nv_resnet18_cifar", num_classes=10, quantizer=q) for q in args.quantizers}
    for n in nets.values():
        n.backbone.load_state_dict(std.state_dict())
        n.discover(x)  # sites and classifier from a real batch, before the optimizer is built
    opts = {k: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9) for k, m in [("standard", std), *nets.items()]}

    jobs = build_jobs(std, nets, opts, x, y)
    for fn in jobs.values():  # warm-up: allocator, kernels, one-time setup
        fn()
    times = {k: [] for k in jobs}
    for r in range(args.repeats):
        for k, fn in jobs.items():
            times[k].append(timed(fn, 2))
        print(f"round {r + 1}/{args.repeats}", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}

    mem = {"standard": peak_train_memory(std, x, y)}
    for q, n in nets.items():
        mem[q] = peak_train_memory(n, x, y)

    rows = {}
    for q in nets:
        rows[q] = {
            "explain_over_forward": med[f"{q}/explain"] / med["standard/forward"],
            "train_step_ratio": med[f"{q}/train_step"] / med["standard/train_step"],
            "peak_memory_ratio": mem[q] / mem["standard"],
        }
    meta = {"model": "resnet18_cifar (11.2 M params)", "batch": args.batch, "input": [3, 32, 32],
            "threads": args.threads, "repeats": args.repeats, "torch": torch.__version__,
            "load_average_end": [round(v, 1) for v in os.getloadavg()], "flush_denormal": flush_denormal,
            "quantizers": args.quantizers,  # the options as typed: the command reproduces the figures
            "command": ("python benchmarks/cnn_cost.py " + " ".join(sys.argv[1:] if argv is None else argv)).rstrip()}
    OUT.mkdir(exist_ok=True)
    write_cache(OUT / "cnn_cost.json", json.dumps(
        {"meta": meta, "median_seconds": med, "all_seconds": times, "peak_train_bytes": mem, "ratios": rows}, indent=2))
    lines = [
        f"ResNet-18 (CIFAR), batch {args.batch}, {args.threads} threads; standard forward "
        f"{1000 * med['standard/forward']:.0f} ms, train step {1000 * med['standard/train_step']:.0f} ms, "
        f"peak train-step heap {mem['standard'] / 2**20:.0f} MiB.",
        "",
        "| quantizer | explain / standard forward (goal ≤ 1.2) | train step / standard (goal ≤ 1.15) | peak memory / standard (goal ≤ 1.3) |",
        "|---|---|---|---|",
    ]
    for q, r in rows.items():
        lines.append(f"| {q} | {r['explain_over_forward']:.2f} | {r['train_step_ratio']:.2f} | {r['peak_memory_ratio']:.2f} |")
    table = "\n".join(lines)
    write_cache(OUT / "cnn_cost.md", table + "\n")
    print(table)


if __name__ == "__main__":
    main()
