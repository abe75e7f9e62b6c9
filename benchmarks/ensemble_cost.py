"""What the five-member NeuroView LITE (``recipes/ucr_nv_cnn.yaml``) costs against one network, and where.

One training step as the Lightning module takes it (each member's own logits, the sum of their
losses, AdamW) and one ``explain``, for one network and for ``--members`` (5) of them, at the
recipe's batch sizes (a tenth of the training series: 4 to 5 on the small UCR sets, up to 64),
series of 150 steps (GunPoint's length). Measured in one run, the two interleaved round by round
(so machine noise hits both); medians. Then the share of one network's step spent in convolutions
(``torch.profiler``, self CPU time of the aten convolution ops): where that share is large, the step
is compute, and running the members in one batched pass (grouped convolutions) would save little.

On the GPU (``accelerator`` here is whatever ``torch.cuda.is_available()`` says) the small step is
launch-bound instead, which is where a batched pass pays: ``Ensemble(batched=True)`` (the
``batched`` column: the members' train step in one grouped pass, :mod:`neuroview.core.batched`).
The same on the standard backbone: one train step of ``--members`` standard LITEs run apart, and
batched, each against one standard LITE.

    python benchmarks/ensemble_cost.py                      # one thread, the CPU
    python benchmarks/ensemble_cost.py --batches 5 16 64 --rounds 30

Writes ``benchmarks/results/ensemble_cost.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import neuroview as nv
from neuroview.core.ensemble import members_loss

OUT = Path(__file__).parent / "results" / "ensemble_cost.json"
LAUNCHES_OUT = OUT.with_name("ensemble_launches.json")
HOST_OUT = OUT.with_name("ensemble_host.json")
COMPILED_OUT = OUT.with_name("ensemble_compiled.json")
CONV_OPS = ("aten::convolution_backward", "aten::mkldnn_convolution", "aten::_slow_conv2d_forward",
            "aten::_slow_conv2d_backward", "aten::cudnn_convolution", "aten::_convolution", "aten::thnn_conv2d")


def _jobs(members: int, batch: int, length: int, device: torch.device, batched: bool = False, foreach=None,
          compile: str | None = None, fused: bool = False):
    """``(train step, explain)`` closures of a network of ``members`` on one fixed batch (``batched``:
    the members in one batched pass, ``Ensemble(batched=True)``; ``foreach``: AdamW's; ``fused``: AdamW's
    fused update instead; ``compile``: the loss, forward and backward, under ``torch.compile`` with that
    mode, or the ``aot_eager`` backend)."""
    torch.manual_seed(0)
    kw = {"batched": True} if batched else {}
    net = nv.create_model("nv_lite", num_classes=2, in_channels=1, members=members, **kw).to(device)
    x, y = torch.randn(batch, 1, length, device=device), torch.arange(batch, device=device) % 2
    net.train()(x)  # sites found, heads built; training mode from here on (explain restores it), as in Lightning's loop
    opt = torch.optim.AdamW(net.parameters(), 1e-3, **({"fused": True} if fused else {"foreach": foreach}))

    def loss_of(x, y):  # as the Lightning module: the members' losses in one (members_loss), one network's own
        return members_loss(net.member_logits(x), y) if members > 1 else F.cross_entropy(net(x), y)
    if compile:
        loss_of = torch.compile(loss_of, **({"backend": compile} if compile == "aot_eager" else {"mode": compile}))

    def step():
        if compile == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()  # a new step: the graphs' last outputs may be overwritten
        loss = loss_of(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def explain():
        net.explain(x)

    return step, explain


def _std_steps(members: int, batch: int, length: int, device: torch.device, foreach=None):
    """Train steps of one standard LITE, of ``members`` of them apart, and of them in one batched pass."""
    x, y = torch.randn(batch, 1, length, device=device), torch.arange(batch, device=device) % 2

    def stepper(k: int, batched: bool = False):
        torch.manual_seed(0)
        kw = {"members": k, "batched": batched} if k > 1 else {}
        net = nv.create_model("lite", num_classes=2, in_channels=1, **kw).to(device).train()
        opt = torch.optim.AdamW(net.parameters(), 1e-3, foreach=foreach)

        def step():
            loss = members_loss(net.member_logits(x), y) if k > 1 else F.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return step

    return stepper(1), stepper(members), stepper(members, batched=True)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(fn, device: torch.device) -> float:
    _sync(device)
    t = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t


def conv_share(step, device: torch.device, n: int = 10) -> float:
    """The share of ``step``'s self CPU time in convolution ops (forward and backward)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(n):
            step()
        _sync(device)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    return sum(e.self_cpu_time_total for e in events if e.key in CONV_OPS) / total


def measure(batch: int, members: int, length: int, rounds: int, device: torch.device) -> dict:
    one, many = _jobs(1, batch, length, device), _jobs(members, batch, length, device)
    batched = _jobs(members, batch, length, device, batched=True)
    jobs = {"step_1": one[0], "step_k": many[0], "explain_1": one[1], "explain_k": many[1],
            "step_batched": batched[0], "explain_batched": batched[1]}
    jobs.update(zip(("std_1", "std_k", "std_grouped"), _std_steps(members, batch, length, device)))
    med = _interleaved(jobs, rounds, device)
    return {"batch": batch, "members": members, "length": length, "rounds": rounds,
            "step_ms_one": 1e3 * med["step_1"], "step_ratio": med["step_k"] / med["step_1"],
            "explain_ms_one": 1e3 * med["explain_1"], "explain_ratio": med["explain_k"] / med["explain_1"],
            "conv_share_one": conv_share(one[0], device), "std_step_ms_one": 1e3 * med["std_1"],
            "std_apart_ratio": med["std_k"] / med["std_1"], "std_grouped_ratio": med["std_grouped"] / med["std_1"],
            "batched_ratio": med["step_batched"] / med["step_1"], "explain_batched_ratio": med["explain_batched"] / med["explain_1"]}


def _interleaved(jobs: dict, rounds: int, device: torch.device, warm: int = 3) -> dict[str, float]:
    """Median seconds of each job over ``rounds`` interleaved rounds (machine noise hits every job of a
    round alike), after ``warm`` calls of each."""
    for fn in jobs.values():
        for _ in range(warm):
            fn()
    times = {k: [] for k in jobs}
    for _ in range(rounds):
        for k, fn in jobs.items():
            times[k].append(_timed(fn, device))
    return {k: statistics.median(v) for k, v in times.items()}


def compiled_table(batch: int, members: int, length: int, rounds: int, device: torch.device, mode: str,
                   fused: bool = False) -> dict:
    """One train step with its forward and backward compiled (``mode``; ``reduce-overhead`` replays CUDA
    graphs, so a launch-bound step stops waiting on its host; the optimizer stays outside them, ``fused``:
    AdamW's fused update, whose host work is a quarter of the multi-tensor one's: ``--host``): one network,
    ``members`` apart and grouped; compile time kept apart (the first calls), then medians of
    interleaved rounds."""
    jobs, compile_s = {}, {}
    for key, m, b in (("one", 1, False), ("apart", members, False), ("grouped", members, True)):
        step = _jobs(m, batch, length, device, batched=b, compile=mode, fused=fused)[0]
        t = time.perf_counter()
        for _ in range(3):  # compiles, then (reduce-overhead) records the graphs
            step()
        _sync(device)
        jobs[key], compile_s[key] = step, time.perf_counter() - t
    ms = {k: 1e3 * v for k, v in _interleaved(jobs, rounds, device, warm=0).items()}
    return {"batch": batch, "members": members, "length": length, "rounds": rounds, "mode": mode,
            "optimizer": "AdamW(fused)" if fused else "AdamW(foreach on CUDA)",
            "step_ms": ms, "over_one": {k: v / ms["one"] for k, v in ms.items()}, "compile_seconds": compile_s}


def host_table(members: int, rounds: int) -> dict:
    """What one train step and one ``explain`` cost the CPU where the GPU waits on it: on inputs so small
    (2 series of 16 steps) that the arithmetic is nothing, a step's time is its Python and dispatch, what a
    launch-bound GPU step pays beside its launches. One network, ``members`` apart and grouped
    (NeuroView LITE; train steps of the standard LITE too); medians of interleaved rounds, one thread."""
    cpu = torch.device("cpu")
    jobs = {}
    for key, m, b in (("one", 1, False), ("apart", members, False), ("grouped", members, True)):
        jobs[f"nv {key}: step"], jobs[f"nv {key}: explain"] = _jobs(m, 2, 16, cpu, batched=b, foreach=True)
    std = _std_steps(members, 2, 16, cpu, foreach=True)
    jobs.update(zip(("standard one: step", "standard apart: step", "standard grouped: step"), std))
    ms = {k: 1e3 * v for k, v in _interleaved(jobs, rounds, cpu).items()}
    ratio = {k: v / ms[k.replace("apart", "one").replace("grouped", "one")] for k, v in ms.items()}
    return {"members": members, "rounds": rounds, "batch": 2, "length": 16, "ms": ms, "over_one": ratio,
            "adamw_step_ms": _adamw_host(members, rounds)}


def _adamw_host(members: int, rounds: int) -> dict:
    """AdamW's step alone over one network's parameters and ``members``' (gradients set), its
    multi-tensor update against its fused one: the host work the optimizer adds to every step,
    outside any CUDA graph of the forward and backward."""
    out = {}
    for key, m in (("one", 1), ("members", members)):
        net = nv.create_model("nv_lite", num_classes=2, in_channels=1, members=m)
        net(torch.randn(2, 1, 16))
        params = [p for p in net.parameters() if p.requires_grad]
        for p in params:
            p.grad = torch.randn_like(p)
        for kind in ("foreach", "fused"):
            opt = torch.optim.AdamW(params, 1e-3, **{kind: True})
            for _ in range(3):
                opt.step()
            out[f"{key} ({len(params)} tensors), {kind}"] = 1e3 * statistics.median(
                _timed(opt.step, torch.device("cpu")) for _ in range(max(rounds, 50)))
    return out


#: ops that launch no kernel: allocations, metadata, profiler markers (views are told by their schema;
#: _unsafe_view is one that is not marked so)
_NO_KERNEL = ("empty", "empty_strided", "new_empty", "new_empty_strided", "detach", "lift_fresh", "set_", "resize_", "_unsafe_view",
              "_local_scalar_dense", "promote_types", "_record_function_enter_new", "_record_function_exit")


#: how many tensors one CUDA multi-tensor (``_foreach_*``) launch takes, by the number of tensor lists it
#: reads and writes (``depth_to_max_tensors`` in ATen's MultiTensorApply.cuh, built for CUDA 12; for
#: CUDA 13 it is 770, 448, 336, 252, 210: there every multi-tensor op of these steps is one launch)
_FOREACH_MAX_TENSORS = {1: 110, 2: 64, 3: 48, 4: 36, 5: 30}


def launches(step) -> collections.Counter:
    """The aten ops one call of ``step`` runs that would launch a kernel on a GPU (views and allocations
    left out; AdamW with ``foreach``, its CUDA default, so its update is a few multi-tensor ops here too;
    a multi-tensor op counts the launches CUDA splits its lists into, so five members' 75 parameters
    count more than one network's 15): a count of launches, not of time, so the CPU tells what a
    launch-bound GPU step pays for."""
    from torch.utils._python_dispatch import TorchDispatchMode

    seen: collections.Counter = collections.Counter()

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = func.overloadpacket.__name__
            if not func.is_view and name not in _NO_KERNEL:
                seen[name] += _foreach_launches(name, args) if name.startswith("_foreach_") else 1
            return func(*args, **(kwargs or {}))

    step()  # warm: heads built, optimizer state allocated
    with Count():
        step()
    return seen


def _foreach_launches(name: str, args) -> int:
    """CUDA launches of the multi-tensor op ``name`` on ``args``: its lists, in chunks of what one launch
    takes (an in-place op writes the first list it reads; an out-of-place one writes a list of its own)."""
    lists = [a for a in args if isinstance(a, (list, tuple)) and a and isinstance(a[0], torch.Tensor)]
    if not lists:
        return 1
    depth = len(lists) + (0 if name.endswith("_") else 1)
    return -(-len(lists[0]) // _FOREACH_MAX_TENSORS[min(depth, 5)])


def launch_table(members: int, batch: int, length: int) -> dict:
    """Launches of one train step: NeuroView LITE one / members apart / batched, standard likewise; and
    of one NeuroView ``explain``."""
    cpu = torch.device("cpu")
    steps = {"nv, one": _jobs(1, batch, length, cpu, foreach=True)[0],
             "nv, apart": _jobs(members, batch, length, cpu, foreach=True)[0],
             "nv, batched": _jobs(members, batch, length, cpu, batched=True, foreach=True)[0]}
    steps.update(zip(("standard, one", "standard, apart", "standard, batched"),
                     _std_steps(members, batch, length, cpu, foreach=True)))
    counts = {k: launches(fn) for k, fn in steps.items()}
    explains = {k: launches(_jobs(m, batch, length, cpu, batched=b)[1])
                for k, m, b in (("nv, one", 1, False), ("nv, apart", members, False), ("nv, batched", members, True))}
    extra = counts["nv, batched"] - counts["nv, one"]
    return {"members": members, "batch": batch, "totals": {k: sum(c.values()) for k, c in counts.items()},
            "batched_over_one_by_op": dict(extra.most_common(12)),
            "explain_totals": {k: sum(c.values()) for k, c in explains.items()}}


def table(rows: list[dict]) -> str:
    lines = ["| batch | one network, train step (ms) | members / one, train step | batched=True / one, train step | "
             "one network, explain (ms) | members / one, explain | batched=True / one, explain | "
             "convolutions' share of one step | standard LITE: members apart / one, train step | batched / one |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        def ratio(key: str) -> str:  # rows written before a column was measured have none
            return f"{r[key]:.2f}" if key in r else "–"
        lines.append(f"| {r['batch']} | {r['step_ms_one']:.1f} | {r['step_ratio']:.2f} | {ratio('batched_ratio')} | "
                     f"{r['explain_ms_one']:.1f} | {r['explain_ratio']:.2f} | {ratio('explain_batched_ratio')} | "
                     f"{100 * r['conv_share_one']:.0f}% | "
                     f"{ratio('std_apart_ratio')} | {ratio('std_grouped_ratio')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, nargs="+", default=[5, 16])
    p.add_argument("--members", type=int, default=5)
    p.add_argument("--length", type=int, default=150)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--threads", type=int, default=1, help="intra-op threads on the CPU (the table runs use 1)")
    p.add_argument("--out", type=Path, default=None,
                   help=f"the JSON written, default results/{OUT.name} (--launches: {LAUNCHES_OUT.name}, --host: "
                        f"{HOST_OUT.name}, --compile: {COMPILED_OUT.name})")
    p.add_argument("--launches", action="store_true",
                   help="count the kernels one train step launches (on the CPU, no timing) and write them to --out")
    p.add_argument("--compile", default=None, metavar="MODE",
                   help="time train steps with forward and backward under torch.compile (a mode: reduce-overhead for "
                        "CUDA graphs, default, ...; or aot_eager) and write them to --out")
    p.add_argument("--fused-adamw", action="store_true", help="with --compile: AdamW's fused update")
    p.add_argument("--host", action="store_true",
                   help="time a step and an explain on inputs too small to compute (the CPU's share of a "
                        "launch-bound GPU step) and write them to --out")
    args = p.parse_args(argv)
    args.out = args.out or (LAUNCHES_OUT if args.launches else HOST_OUT if args.host else
                            COMPILED_OUT if args.compile else OUT)  # never over another mode's figures
    torch.set_num_threads(args.threads)
    if args.compile:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        rows = [compiled_table(b, args.members, args.length, args.rounds, device, args.compile, args.fused_adamw)
                for b in args.batches]
        where = torch.cuda.get_device_name(0) if device.type == "cuda" else f"cpu, {args.threads} thread(s)"
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"device": where, "torch": torch.__version__, "rows": rows}, indent=1) + "\n")
        for r in rows:
            print(f"batch {r['batch']}, {r['mode']}: " + ", ".join(f"{k} {v:.2f}x" for k, v in r["over_one"].items())
                  + f" (one network {r['step_ms']['one']:.2f} ms; compile {r['compile_seconds']})")
        return 0
    if args.host:
        res = host_table(args.members, args.rounds) | {"torch": torch.__version__, "threads": args.threads}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=1) + "\n")
        for k, v in res["ms"].items():
            print(f"{k}: {v:.2f} ms, {res['over_one'][k]:.2f}x one")
        for k, v in res["adamw_step_ms"].items():
            print(f"AdamW step, {k}: {v:.3f} ms")
        return 0
    if args.launches:
        res = {"torch": torch.__version__, "length": args.length,
               "rows": [launch_table(args.members, b, args.length) for b in args.batches]}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=1) + "\n")
        for r in res["rows"]:
            print(f"batch {r['batch']}: train step {r['totals']}\n  batched over one, by op: {r['batched_over_one_by_op']}"
                  f"\n  explain {r['explain_totals']}")
        return 0
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rows = [measure(b, args.members, args.length, args.rounds, device) for b in args.batches]
    where = torch.cuda.get_device_name(0) if device.type == "cuda" else f"cpu, {args.threads} thread(s)"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"device": where, "torch": torch.__version__, "rows": rows}, indent=1) + "\n")
    print(f"{where}, torch {torch.__version__}, {args.members} members, series of {args.length} steps\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
