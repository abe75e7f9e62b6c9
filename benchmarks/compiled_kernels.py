"""Kernels per site inside the compiled graph: what Inductor launches for NeuroView over the standard network.

Issue 25 asks that under ``torch.compile`` the codes cost no kernel of their own ("none inside the
compiled graph"): the code of a site and its mean over positions should fuse into the kernels
Inductor already writes for the activation. This counts, on CPU (Inductor's C++ backend), the
kernels Inductor generates (``torch._inductor.metrics.generated_kernel_count``) for

- the forward in eval mode (the logits; NeuroView's read every site's code), and
- one train step (forward and backward graphs),

as the kernel launches in the wrapper code of the compiled graphs (Inductor's C++ kernels, extern
kernels such as convolutions, aten fallbacks),

of the standard network and of NeuroView's wrap of the same weights, and reports the difference
per site; and the bytes the compiled train step saves for backward (activations, counted as
``saved_bytes.py`` counts them: AOTAutograd's compiled function saves through the same hooks), the
state AOTAutograd's partitioner chose to keep rather than recompute. Kernel counts depend mostly on
the graph (ResNet-50's NeuroView step: 213 kernels at width 1/8 and 64x64, 214 at full size and
224x224; ViT-B/16's attention takes other kernels at full size, 297 for the standard step against
285), so the models are the look-alikes of ``vision_models.py`` at a small width and input by default; ``--width 1 --size 224`` gives the bytes at the size ``saved_bytes.py``
counts eager mode's. Counts only: no time is measured here (``gpu_cost.py`` times the compiled step
on a GPU).

    python benchmarks/compiled_kernels.py                  # the four models, width 1/8, 64x64
    python benchmarks/compiled_kernels.py --models resnet50 --width 0.25
    python benchmarks/compiled_kernels.py --width 1 --size 224 --classes 1000 --out benchmarks/results/compiled_kernels_224
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import vision_models  # noqa: E402
from saved_bytes import saved_bytes  # noqa: E402

import neuroview as nv  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "compiled_kernels.json"
NAMES = {"resnet50": "ResNet-50", "efficientnet_b0": "EfficientNet-B0", "convnext_tiny": "ConvNeXt-T", "vit_b_16": "ViT-B/16"}


#: a kernel launched by a compiled graph's wrapper: an Inductor kernel (C++ or Triton), an extern
#: kernel (convolution, matmul) or an aten fallback; definitions (``name = async_compile...``) do not match
CALL = re.compile(r"^\s+(?:\w+ = )?(cpp_fused_\w+|triton_\w+|extern_kernels\.\w+|torch\.ops\.aten\.\w+(?:\.\w+)?)(?:\.run)?\(",
                  re.M)


def generated(fn) -> int:
    """Kernels launched by the graphs Inductor compiles for ``fn``'s first (compiling) call: the calls
    in their wrapper code, read from a fresh Inductor cache folder (so nothing comes from an earlier
    compile). ``torch._inductor.metrics.generated_kernel_count`` counts loop nests inside the C++
    kernels, not launches: it gave 16 against 6 for a two-site conv-BN-ReLU network whose compiled
    forwards launch as many kernels each (3 C++ kernels, the same convolutions and matmul)."""
    torch._dynamo.reset()
    old = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="inductor_") as tmp:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tmp
        try:
            fn()
        finally:
            if old is None:
                os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
            else:
                os.environ["TORCHINDUCTOR_CACHE_DIR"] = old
        wrappers = [t for t in (p.read_text() for p in Path(tmp).rglob("*.py")) if "def call(" in t]
        return sum(len(CALL.findall(t.split("def call(", 1)[1])) for t in wrappers)


def counts(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, int]:
    """Kernels of the compiled forward and train step, and the bytes the compiled step saves for
    backward (``saved_bytes.py``'s count: the compiled graph saves through the same hooks)."""
    saved = {}

    def forward():
        m = torch.compile(model.eval())
        with torch.no_grad():
            m(x)

    def step():
        saved.update(saved_bytes(torch.compile(model.train()), x, y))

    return {"forward": generated(forward), "train_step": generated(step), "saved_bytes": saved["activations"]}


def measure(name: str, width: float, size: int, classes: int) -> dict:
    torch.manual_seed(0)
    std, _ = vision_models.build(name, source="own", num_classes=classes, width=width, image_size=size)
    x, y = torch.randn(2, 3, size, size), torch.randint(0, classes, (2,))
    net = nv.wrap(copy.deepcopy(std), classes, example_input=x)
    a, b = counts(std, x, y), counts(net, x, y)
    sites = len(net.sites)
    return {"model": NAMES[name], "sites": sites, "standard": a, "neuroview": b,
            "forward_extra_per_site": (b["forward"] - a["forward"]) / sites,
            "train_step_extra_per_site": (b["train_step"] - a["train_step"]) / sites,
            "saved_bytes_ratio": b["saved_bytes"] / a["saved_bytes"]}


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [f"Kernels launched by the graphs Inductor compiles on CPU (`{meta['command']}`, torch {meta['torch']}, width {meta['width']}, "
             f"{meta['size']}x{meta['size']}, batch 2): standard | NeuroView, and NeuroView's extra per site.", "",
             "| model | sites | forward | extra per site | train step (fwd + bwd) | extra per site | "
             "saved for backward, compiled step (activations) | NeuroView / standard |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s, n = r["standard"], r["neuroview"]
        lines.append(f"| {r['model']} | {r['sites']} | {s['forward']} \\| {n['forward']} | {r['forward_extra_per_site']:.2f} | "
                     f"{s['train_step']} \\| {n['train_step']} | {r['train_step_extra_per_site']:.2f} | "
                     f"{s['saved_bytes'] / 2**20:.2f} \\| {n['saved_bytes'] / 2**20:.2f} MiB | {r['saved_bytes_ratio']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=list(NAMES))
    p.add_argument("--width", type=float, default=0.125)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--out", default=str(OUT.with_suffix("")), help="path stem of the .json and .md files")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for name in args.models:
        rows.append(measure(name, args.width, args.size, args.classes))
        print(json.dumps(rows[-1]), flush=True)
    meta = {"command": "python benchmarks/compiled_kernels.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "torch": torch.__version__, "width": args.width, "size": args.size}
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(rows, meta))
    print(markdown(rows, meta))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
