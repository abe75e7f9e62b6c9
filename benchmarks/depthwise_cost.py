"""LITE's training step and forward on the CPU by the route its depthwise convolutions take
(:data:`neuroview.zoo.architectures.timeseries.CPU_DEPTHWISE`): ``native`` (oneDNN's own
``nn.Conv1d``, forward and backward), ``flipped`` (the input gradient as a forward convolution with the
flipped kernel) and ``phases`` (the default: forward, input and weight gradient each one plain
convolution over the dilation's phases, channels-last).

One train step (cross-entropy, AdamW) and one evaluation forward (``no_grad``) of one standard LITE
and one NeuroView LITE, and a train step of five NeuroView LITEs in one batched pass (the recipe's
``members: 5, batched: true``), one thread, the routes interleaved round by round in one run (machine
noise hits all three), medians. Outputs and gradients agree to float rounding
(``tests/zoo/test_depthwise.py``); this measures only the time.

    python benchmarks/depthwise_cost.py
    python benchmarks/depthwise_cost.py --shapes 5x150 16x150 10x1460 --rounds 20

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
from neuroview.core.ensemble import members_loss
from neuroview.zoo.architectures import timeseries
from _cache import write_cache  # read back by docs_tables.py: written whole (next to this script)

OUT = Path(__file__).parent / "results" / "depthwise_cost.json"


ROUTES = ("native", "flipped", "phases")
NETWORKS = (("lite", {}), ("nv_lite", {}), ("nv_lite x5 batched", {"members": 5, "batched": True}))


def _jobs(arch: str, batch: int, length: int):
    """``(train step, evaluation forward)`` of ``arch`` (``"nv_lite x5 batched"``: the recipe's five members)."""
    torch.manual_seed(0)
    kwargs = dict(NETWORKS)[arch]
    net = nv.create_model(arch.split()[0], num_classes=2, in_channels=1, **kwargs).train()
    x, y = torch.randn(batch, 1, length), torch.arange(batch) % 2
    net(x)  # a NeuroView network finds its sites
    opt = torch.optim.AdamW(net.parameters(), 1e-3)

    def step():
        net.train()
        loss = members_loss(net.member_logits(x), y) if kwargs else F.cross_entropy(net(x), y)  # as the Lightning module
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    @torch.no_grad()
    def forward():
        net.eval()(x)

    return step, forward


def measure(arch: str, batch: int, length: int, rounds: int, eval_forward: bool = True) -> dict:
    step, forward = _jobs(arch, batch, length)
    jobs = {"step": step, "forward": forward} if eval_forward else {"step": step}
    times = {(j, r): [] for j in jobs for r in ROUTES}
    try:
        for route in ROUTES:  # warm-up
            timeseries.CPU_DEPTHWISE = route
            for job in jobs.values():
                job(), job()
        for _ in range(rounds):
            for route in ROUTES:
                timeseries.CPU_DEPTHWISE = route
                for name, job in jobs.items():
                    t = time.perf_counter()
                    job()
                    times[name, route].append(time.perf_counter() - t)
    finally:
        timeseries.CPU_DEPTHWISE = "phases"
    row = {"arch": arch, "batch": batch, "length": length, "rounds": rounds}
    for (name, route), ts in times.items():
        row[f"{name}_{route}_ms"] = 1e3 * statistics.median(ts)
    return row


def table(rows: list[dict]) -> str:
    lines = ["| network | batch x length | train step, native (ms) | flipped / native | phases / native "
             "| forward, native (ms) | phases / native |", "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        n = r["step_native_ms"]
        fwd = (f"{r['forward_native_ms']:.1f} | {r['forward_phases_ms'] / r['forward_native_ms']:.2f}"
               if "forward_native_ms" in r else "– | –")
        lines.append(f"| {r['arch']} | {r['batch']} x {r['length']} | {n:.1f} | {r['step_flipped_ms'] / n:.2f} | "
                     f"{r['step_phases_ms'] / n:.2f} | {fwd} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shapes", nargs="+", default=["5x150", "16x150", "27x250", "10x1460"], help="BATCHxLENGTH")
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes]
    rows = [measure(a, b, t, args.rounds) for b, t in shapes for a, _ in NETWORKS]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_cache(args.out, json.dumps({"device": "cpu, 1 thread", "torch": torch.__version__, "rows": rows}, indent=1) + "\n")
    print(f"cpu, 1 thread, torch {torch.__version__}\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
