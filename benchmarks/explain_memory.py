"""Peak memory of ``explain`` at 1,000 classes and ~20,000 units, against the plain forward.

Before the lean explanation, ``explain`` built the dense ``[B, C, U]`` contribution tensor:
at batch 64, 1,000 classes and 20,480 units that is 64 x 1000 x 20480 x 4 B = 5.2 GB. Now it keeps
the codes ``[B, U]``, the effective weights ``[C, U]`` and the bias, and forms the contributions
of the predicted class ``[B, U]``. Measured on the CPU heap (glibc's mallinfo2 after every aten
op, as in cnn_cost.py), both in one run; writes benchmarks/results/explain_memory.json.

    python benchmarks/explain_memory.py
    python benchmarks/explain_memory.py --out /tmp/explain_memory   # a check: the committed json stays
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
from pathlib import Path

import torch
from torch import nn

import neuroview as nv
from cnn_cost import PeakHeap  # the same heap sampler as the cost benchmark

OUT = Path(__file__).parent / "results"


def backbone() -> nn.Module:
    # 5 stages of 4,096 channels on a 4x4 map: 20,480 units, in the range of a ResNet-50 (22,720)
    layers, c = [], 3
    for _ in range(5):
        layers += [nn.Conv2d(c, 4096, 1), nn.ReLU()]
        c = 4096
    return nn.Sequential(*layers)


def peak(fn) -> int:
    gc.collect()
    with PeakHeap() as ph:
        fn()
    return ph.peak - ph.base


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(OUT / "explain_memory"), help="path stem of the .json file")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(2)
    x = torch.randn(64, 3, 4, 4)
    net = nv.wrap(backbone(), num_classes=1000, example_input=x).eval()
    with torch.no_grad():
        net(x)  # warm-up: allocator and kernels
    net.explain(x)
    forward = peak(lambda: torch.no_grad()(net)(x))
    explain = peak(lambda: net.explain(x).for_class().sum())
    dense = 64 * 1000 * net.num_units * 4
    res = {"units": net.num_units, "classes": 1000, "batch": 64, "forward_peak_bytes": forward,
           "explain_peak_bytes": explain, "explain_over_forward": explain / forward,
           "dense_contributions_bytes": dense, "torch": torch.__version__,
           "command": " ".join(["python benchmarks/explain_memory.py", *(sys.argv[1:] if argv is None else argv)])}
    out = Path(args.out + ".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"{net.num_units} units, 1000 classes, batch 64: forward peak {forward / 2**20:.0f} MiB, "
          f"explain peak {explain / 2**20:.0f} MiB (x{explain / forward:.2f}); "
          f"the dense [B, C, U] tensor alone would be {dense / 2**30:.1f} GiB")


if __name__ == "__main__":
    main()
