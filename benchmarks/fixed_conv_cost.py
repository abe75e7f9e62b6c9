"""What the exact fixed convolutions cost on this machine: LITE's hand-crafted filters and MiniRocket's kernels
convolved in float64 and rounded once (``neuroview.zoo.architectures.fixed.exact_conv1d``) against the float32
convolution they replaced, in one process, interleaved rounds, medians (a noisy machine moves both alike).

    python benchmarks/fixed_conv_cost.py            # one thread; writes benchmarks/results/fixed_conv_cost.json

Rows: a NeuroView LITE train step (Adam, batch 16; one network at T = 150 and 500, five members at T = 150) and
MiniRocket's features (9,996 of them; 1,000 series of 40 steps, 200 of 251), each as exact / float32.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "fixed_conv_cost.json"


def _float32_fixed(self, x):  # the path before: nn.Conv1d's own float32 (or autocast) convolution
    return nn.Conv1d.forward(self, x)


def _float32_rocket(self, x, j, weight=None, groups=1):
    d = self.dilations[j]
    w = self.weight[j] if weight is None else weight
    with torch.autocast(x.device.type, enabled=False):
        return F.conv1d(x, w.to(x.dtype), dilation=d, padding=4 * d, groups=groups)


def _ratio(run, patch, rounds: int) -> tuple[float, float]:
    """(exact / float32, float32 seconds) of ``run()``, with ``patch(True)`` / ``patch(False)`` choosing the path."""
    times = {True: [], False: []}
    for _ in range(rounds):
        for exact in (True, False):
            patch(exact)
            t = time.perf_counter()
            run()
            times[exact].append(time.perf_counter() - t)
    patch(True)
    a, b = statistics.median(times[True]), statistics.median(times[False])
    return a / b, b


def lite(members: int, t: int, rounds: int) -> dict:
    import neuroview as nv
    from neuroview.zoo.architectures.fixed import FixedConv1d

    exact = FixedConv1d.forward
    torch.manual_seed(0)
    net = nv.create_model("nv_lite", num_classes=2, in_channels=1, **({"members": members} if members > 1 else {}))
    x, y = torch.randn(16, 1, t), torch.randint(0, 2, (16,))
    net(x)
    opt = torch.optim.Adam(net.parameters())

    def steps():
        for _ in range(5):
            opt.zero_grad()
            F.cross_entropy(net(x), y).backward()
            opt.step()

    steps()  # warm
    r, base = _ratio(steps, lambda e: setattr(FixedConv1d, "forward", exact if e else _float32_fixed), rounds)
    return {"what": f"nv_lite train step, {members} member(s), T = {t}, batch 16", "exact_over_float32": round(r, 3),
            "float32_ms": round(base / 5 * 1e3, 1)}


def minirocket(n: int, t: int, rounds: int) -> dict:
    import neuroview as nv
    from neuroview.zoo.architectures.rocket import MiniRocket

    exact = MiniRocket._convolve
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 1, t, generator=g)
    net = nv.minirocket([(x, (x[:, 0, :5].mean(1) > 0).long())])
    step = net.backbone.cpu_batch

    def features():
        with torch.no_grad():
            for i in range(0, n, step):
                net.codes(x[i:i + step])

    r, base = _ratio(features, lambda e: setattr(MiniRocket, "_convolve", exact if e else _float32_rocket), rounds)
    return {"what": f"MiniRocket features, {n} series of {t}", "exact_over_float32": round(r, 3),
            "float32_ms": round(base * 1e3, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = [lite(1, 150, args.rounds), lite(5, 150, args.rounds), lite(1, 500, args.rounds),
            minirocket(1000, 40, max(3, args.rounds // 2)), minirocket(200, 251, max(3, args.rounds // 2))]
    for r in rows:
        print(f"{r['what']}: exact / float32 = {r['exact_over_float32']:.3f} (float32 {r['float32_ms']} ms)", flush=True)
    OUT.write_text(json.dumps({"meta": {"torch": torch.__version__, "threads": args.threads, "rounds": args.rounds,
                                        "date": time.strftime("%Y-%m-%d")}, "rows": rows}, indent=1) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
