"""How far a compiled train step's gradients are from eager mode's, by the activation at the sites (CPU, seconds).

Eager mode with ``grad_state="uint8"`` keeps 8-bit slopes where the activation overwrites its pre-activation (an
in-place ReLU), and reads the pre-activation the activation keeps anyway elsewhere (GELU, SiLU, Hardswish); a
compiled step leaves what to save to AOTAutograd and always keeps 8-bit slopes. Each row: the relative distance
(norm of the difference over the norm) of the backbone's gradients, compiled (``aot_eager``) against eager uint8,
and each against float64's (an exact copy of the pre-activation), on a two-site network.

    python benchmarks/compiled_slopes.py
"""

from __future__ import annotations

import argparse
import copy
import warnings

import torch
import torch.nn.functional as F
from torch import nn

import neuroview as nv


def _grads(net, x, y, compiled: bool, dtype=torch.float32) -> torch.Tensor:
    net = copy.deepcopy(net).to(dtype).train()
    torch._dynamo.reset()
    f = torch.compile(net, backend="aot_eager") if compiled else net
    F.cross_entropy(f(x.to(dtype)), y).backward()
    return torch.cat([p.grad.double().flatten() for p in net.backbone.parameters() if p.grad is not None])


def row(name: str, act) -> str:
    torch.manual_seed(1)
    bb = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), act(), nn.Conv2d(8, 8, 3, padding=1), act(),
                       nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    x, y = torch.randn(8, 3, 9, 9), torch.arange(8) % 5
    net = nv.wrap(bb, 5, example_input=x, grad_state="uint8")
    exact = _grads(net, x, y, False, torch.float64)
    eager, compiled = _grads(net, x, y, False), _grads(net, x, y, True)

    def rel(a, b):
        return ((a - b).norm() / b.norm()).item()

    return f"| {name} | {rel(compiled, eager):.1e} | {rel(eager, exact):.1e} | {rel(compiled, exact):.1e} |"


def main(argv=None) -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    warnings.simplefilter("ignore")
    print("| activation | compiled vs eager uint8 | eager uint8 vs float64 | compiled vs float64 |")
    print("|---|---:|---:|---:|")
    for name, act in (("ReLU(inplace=True)", lambda: nn.ReLU(inplace=True)), ("GELU", nn.GELU), ("SiLU", nn.SiLU),
                      ("Hardswish", nn.Hardswish)):
        print(row(name, act))


if __name__ == "__main__":
    main()
