"""LITE's training step on the CPU with its depthwise convolutions' input gradient taken as a forward
convolution (:class:`neuroview.zoo.architectures.timeseries.DepthwiseConv1d`) against oneDNN's own
depthwise backward (``FAST_DEPTHWISE_BACKWARD = False``).

One train step (cross-entropy, AdamW) of one standard LITE and one NeuroView LITE, one thread, the two
settings interleaved round by round in one run (machine noise hits both), medians. Gradients agree
to float rounding (``tests/zoo/test_depthwise.py``); this measures only the time.

    python benchmarks/depthwise_cost.py
    python benchmarks/depthwise_cost.py --shapes 5x150 16x150 27x250 --rounds 40

Writes ``benchmarks/results/depthwise_cost.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import neuroview as nv
from neuroview.zoo.architectures import timeseries

OUT = Path(__file__).parent / "results" / "depthwise_cost.json"


def _step(arch: str, batch: int, length: int):
    torch.manual_seed(0)
    net = nv.create_model(arch, num_classes=2, in_channels=1).train()
    x, y = torch.randn(batch, 1, length), torch.arange(batch) % 2
    net(x)  # a NeuroView network finds its sites
    opt = torch.optim.AdamW(net.parameters(), 1e-3)

    def step():
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def measure(arch: str, batch: int, length: int, rounds: int) -> dict:
    step = _step(arch, batch, length)
    times = {True: [], False: []}
    try:
        for fast in (True, False):  # warm-up
            timeseries.FAST_DEPTHWISE_BACKWARD = fast
            for _ in range(3):
                step()
        for _ in range(rounds):
            for fast in (False, True):
                timeseries.FAST_DEPTHWISE_BACKWARD = fast
                t = time.perf_counter()
                step()
                times[fast].append(time.perf_counter() - t)
    finally:
        timeseries.FAST_DEPTHWISE_BACKWARD = True
    native, fast = statistics.median(times[False]), statistics.median(times[True])
    return {"arch": arch, "batch": batch, "length": length, "rounds": rounds,
            "native_ms": 1e3 * native, "fast_ms": 1e3 * fast, "ratio": fast / native}


def table(rows: list[dict]) -> str:
    lines = ["| network | batch x length | oneDNN's backward (ms) | as a forward convolution (ms) | ratio |",
             "|---|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['arch']} | {r['batch']} x {r['length']} | {r['native_ms']:.1f} | {r['fast_ms']:.1f} | "
                     f"{r['ratio']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shapes", nargs="+", default=["5x150", "16x150", "27x250", "5x500"], help="BATCHxLENGTH")
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes]
    rows = [measure(a, b, t, args.rounds) for b, t in shapes for a in ("lite", "nv_lite")]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"device": "cpu, 1 thread", "torch": torch.__version__, "rows": rows}, indent=1) + "\n")
    print(f"cpu, 1 thread, torch {torch.__version__}\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
