"""What a NeuroView network keeps for backward, and how many kernels its sites add, counted exactly on CPU.

For torchvision's ResNet-50, EfficientNet-B0, ConvNeXt-T and ViT-B/16 (the look-alikes of
benchmarks/vision_models.py at width 1.0 when torchvision is not installed: the same modules,
layouts and tensor sizes), at 224x224, batch 2, 1,000 classes, fp32, NeuroView (``hard`` codes by
default) beside the standard network with the same weights, both in train mode:

  - **bytes saved for backward** in one train step (forward and loss): every tensor autograd
    saves passes through ``torch.autograd.graph.saved_tensors_hooks``; those backward reads are
    counted, each storage once (by its untyped storage's data pointer, at its full size), so a
    tensor saved by two nodes (a ReLU's output and the next convolution's input) is not counted
    twice, and one saved by a node off the loss's graph (freed before backward) not at all. Reported
    for activations (parameters left out: they are resident anyway, and do not grow with the
    batch) and in all;
  - **extra kernels per site**: the aten operations ``torch.profiler`` records on CPU, NeuroView
    minus standard, divided by the number of sites, in ``explain`` (against the standard
    network's eval forward; both stop nowhere else, but ``explain`` skips the backbone's own head
    and computes the global one) and in a train step (forward, loss, backward; no optimizer).
    A kernel is an aten operation that is neither a view nor an allocation and runs no such
    operation inside it (``aten::linear`` counts as its ``addmm``); the JSON lists the extra
    kernels by the outermost aten operation they run in.

Bytes, not time: the figures do not depend on the machine or its load. Writes
benchmarks/results/saved_bytes.json and .md.

    python benchmarks/saved_bytes.py                   # the four models, ~3 min on 1 thread
    python benchmarks/saved_bytes.py --models resnet50 --quantizer soft
    python benchmarks/saved_bytes.py --grad-state bf16 --out /tmp/sb  # a ReLU site's bfloat16 copy, as before
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from collections import Counter
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.profiler import ProfilerActivity, profile

import neuroview as nv
import vision_models

OUT = Path(__file__).parent / "results"
NAMES = {"resnet50": "ResNet-50", "efficientnet_b0": "EfficientNet-B0", "convnext_tiny": "ConvNeXt-T",
         "vit_b_16": "ViT-B/16"}
#: aten operations that launch no kernel: views, metadata, allocations
NOT_KERNELS = {
    "aten::view", "aten::_unsafe_view", "aten::as_strided", "aten::reshape", "aten::flatten", "aten::unflatten",
    "aten::expand", "aten::permute", "aten::transpose", "aten::t", "aten::unsqueeze", "aten::squeeze",
    "aten::select", "aten::slice", "aten::narrow", "aten::split", "aten::split_with_sizes", "aten::unbind",
    "aten::chunk", "aten::alias", "aten::detach", "aten::detach_", "aten::lift_fresh", "aten::movedim",
    "aten::empty", "aten::empty_like", "aten::empty_strided", "aten::resize_", "aten::result_type",
    "aten::is_nonzero", "aten::item", "aten::_local_scalar_dense", "aten::to", "aten::contiguous",
    "aten::set_", "aten::numel", "aten::size", "aten::stride", "aten::dim", "aten::_reshape_alias",
    "aten::expand_as", "aten::view_as", "aten::_has_compatible_shallow_copy_type", "aten::resolve_conj",
    "aten::resolve_neg", "aten::requires_grad_", "aten::_to_dense",
}


def saved_bytes(net: nn.Module, x: torch.Tensor, y: torch.Tensor, precision: str = "fp32") -> dict[str, int]:
    """Bytes of the storages autograd saves for the backward of one train step of ``net``, each
    storage once: ``{"activations": ..., "parameters": ..., "all": ...}``; ``precision="bf16"``:
    the forward under CPU autocast to bfloat16, whose bfloat16 copies of the weights count with
    the parameters (the standard network makes the same copies; they do not grow with the batch)."""
    params = {p.untyped_storage().data_ptr() for p in net.parameters()}
    storages: dict[int, int] = {}
    weights = set(params)  # the parameters, and autocast's bfloat16 copies of them

    def pack(t: torch.Tensor):
        if _cast_of_parameter(t, params):
            weights.add(t.untyped_storage().data_ptr())
        return t

    def unpack(t: torch.Tensor):
        # counted when backward reads it: a node off the loss's graph (the activation of the last
        # site, whose output nothing reads once NeuroView's pass stops) saves tensors that are freed
        # with its output, before backward
        s = t.untyped_storage()
        storages[s.data_ptr()] = max(storages.get(s.data_ptr(), 0), s.nbytes())
        return t

    net.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, unpack), \
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        loss = F.cross_entropy(net(x).float(), y)
    loss.backward()  # the graph ran: nothing saved was left out
    net.zero_grad(set_to_none=True)
    par = sum(n for p, n in storages.items() if p in weights)
    total = sum(storages.values())
    return {"activations": total - par, "parameters": par, "all": total, "storages": len(storages)}


def _cast_of_parameter(t: torch.Tensor, params: set[int]) -> bool:
    """Whether ``t`` is a dtype cast of a parameter (autocast's bfloat16 weight copy), or a view of one."""
    fn = (t._base if t._base is not None else t).grad_fn
    if fn is None or fn.name() != "ToCopyBackward0":
        return False
    return any(getattr(n, "variable", None) is not None and n.variable.untyped_storage().data_ptr() in params
               for n, _ in fn.next_functions if n is not None)


def is_kernel(e) -> bool:
    return e.name.startswith("aten::") and e.name not in NOT_KERNELS


def count_kernels(fn) -> Counter:
    """Kernels run by ``fn``, recorded by ``torch.profiler`` on CPU: aten operations that are
    neither views nor allocations (:data:`NOT_KERNELS`) and call no such operation inside them,
    counted under the name of the outermost aten operation they run in (``aten::sum``, not the
    ``aten::fill_`` it starts with)."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()

    def inner_kernel(e) -> bool:
        return any(is_kernel(c) or inner_kernel(c) for c in e.cpu_children)

    def outermost(e):
        top = e
        while e.cpu_parent is not None:
            e = e.cpu_parent
            if e.name.startswith("aten::"):
                top = e
        return top.name

    return Counter(outermost(e) for e in prof.events() if is_kernel(e) and not inner_kernel(e))


def kernel_counts(std: nn.Module, net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
    def forward():
        std.eval()
        with torch.no_grad():
            std(x)

    def step(m):
        def run():
            m.train()
            F.cross_entropy(m(x), y).backward()
            m.zero_grad(set_to_none=True)
        return run

    forward(), net.explain(x), step(std)(), step(net)()  # warm-up: one-time setup is not counted
    c = {"standard_forward": count_kernels(forward), "explain": count_kernels(lambda: net.explain(x)),
         "standard_train_step": count_kernels(step(std)), "neuroview_train_step": count_kernels(step(net))}
    k = {key: sum(v.values()) for key, v in c.items()}
    sites = len(net.sites)
    k["explain_extra_per_site"] = (k["explain"] - k["standard_forward"]) / sites
    k["train_step_extra_per_site"] = (k["neuroview_train_step"] - k["standard_train_step"]) / sites
    # which operations make the difference (NeuroView minus standard, by name; negative: fewer)
    for what, (a, b) in {"explain_extra_ops": ("explain", "standard_forward"),
                         "train_step_extra_ops": ("neuroview_train_step", "standard_train_step")}.items():
        diff = {n: c[a][n] - c[b][n] for n in set(c[a]) | set(c[b]) if c[a][n] != c[b][n]}
        k[what] = dict(sorted(diff.items(), key=lambda kv: -kv[1]))
    return k


def measure(name: str, args) -> dict:
    torch.manual_seed(0)
    std, source = vision_models.build(name, source=args.source, num_classes=args.classes, width=args.width,
                                      image_size=args.size)
    x = torch.randn(args.batch, 3, args.size, args.size)
    y = torch.randint(0, args.classes, (args.batch,))
    # the standard network stays unwrapped (no hooks on it); NeuroView wraps a copy of the same weights
    net = nv.wrap(copy.deepcopy(std), args.classes, quantizer=args.quantizer, grad_state=args.grad_state, example_input=x)
    t = time.perf_counter()
    b_std, b_nv = saved_bytes(std, x, y, args.precision), saved_bytes(net, x, y, args.precision)
    row = {"model": NAMES[name], "source": source, "sites": len(net.sites), "units": net.num_units,
           "saved_standard": b_std, "saved_neuroview": b_nv,
           "activations_ratio": b_nv["activations"] / b_std["activations"], "all_ratio": b_nv["all"] / b_std["all"]}
    if not args.no_kernels and args.precision == "fp32":  # kernels are counted in fp32 only
        row["kernels"] = kernel_counts(std, net, x, y)
    row["seconds"] = round(time.perf_counter() - t, 1)
    return row


def markdown(res: dict) -> str:
    m = res["meta"]
    lines = [f"Bytes saved for backward in one train step (forward and loss), NeuroView (`{m['quantizer']}` codes, "
             f"`grad_state={m.get('grad_state', 'bf16')!r}`) "
             f"over the standard network with the same weights, both in train mode; {m['size']}x{m['size']}, batch "
             f"{m['batch']}, {m['classes']} classes, {m.get('precision', 'fp32')}, CPU; each storage counted once. Kernels: aten operations "
             f"recorded by `torch.profiler` on CPU, NeuroView minus standard, per site (`{m['command']}`, torch {m['torch']}).",
             "", "| model | sites | saved, standard (MiB) | saved, NeuroView (MiB) | NeuroView / standard, activations "
             "(goal ≤ 1.10) | NeuroView / standard, with parameters | extra kernels per site, explain | extra kernels "
             "per site, train step |", "|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        k = r.get("kernels", {})
        f = (lambda key: f"{k[key]:.2f}" if key in k else "–")
        lines.append(f"| {r['model']} | {r['sites']} | {r['saved_standard']['activations'] / 2**20:.1f} | "
                     f"{r['saved_neuroview']['activations'] / 2**20:.1f} | {r['activations_ratio']:.3f} | "
                     f"{r['all_ratio']:.3f} | {f('explain_extra_per_site')} | {f('train_step_extra_per_site')} |")
    lines += ["", f"Models from {res['rows'][0]['source'] if res['rows'] else '?'}."]
    return "\n".join(lines)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=list(NAMES), choices=list(NAMES))
    p.add_argument("--quantizer", default="hard", choices=("hard", "soft"))
    p.add_argument("--grad-state", default="uint4", choices=("uint4", "uint8", "bf16"),
                   help="what a site keeps for its surrogate gradient where the activation does not keep z")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--source", default="auto", choices=("auto", "torchvision", "own"))
    p.add_argument("--width", type=float, default=1.0, help="channel scale of the look-alikes (1.0: the real networks)")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16"), help="bf16: forward under CPU autocast")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-kernels", action="store_true", help="bytes only")
    p.add_argument("--out", default=str(OUT / "saved_bytes"), help="path stem of the .json and .md files")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cmd = "python benchmarks/saved_bytes.py" + ("" if args.models == list(NAMES) else " --models " + " ".join(args.models)) + (
        "" if args.quantizer == "hard" else f" --quantizer {args.quantizer}") + ("" if args.width == 1 else f" --width {args.width:g}") + (
        "" if args.precision == "fp32" else f" --precision {args.precision}") + (" --no-kernels" if args.no_kernels else "") + (
        "" if args.grad_state == "uint4" else f" --grad-state {args.grad_state}")
    res = {"meta": {"command": cmd, "quantizer": args.quantizer, "grad_state": args.grad_state, "batch": args.batch, "size": args.size,
                    "classes": args.classes, "width": args.width, "precision": args.precision, "torch": torch.__version__, "date": time.strftime("%Y-%m-%d")}, "rows": []}
    for name in args.models:
        res["rows"].append(measure(name, args))
        r = res["rows"][-1]
        print(f"{r['model']}: activations x{r['activations_ratio']:.3f}, all x{r['all_ratio']:.3f}, "
              f"kernels {r.get('kernels')}", flush=True)
    stem = Path(args.out)
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(res, indent=1))
    md = markdown(res)
    stem.with_suffix(".md").write_text(md + "\n")
    print(md)
    return res


if __name__ == "__main__":
    main()
