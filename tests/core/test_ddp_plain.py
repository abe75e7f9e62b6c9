"""Plain DistributedDataParallel, without Lightning, on two CPU processes (gloo): the wrapper
itself freezes what its decision never reaches (the backbone's own head), and the head's
normalization combines the ranks' statistics as one process would on the whole batch."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

import neuroview as nv
from neuroview.core.head import CodeNorm


@contextmanager
def _two_ranks(rank: int, store: str):
    """This process as rank ``rank`` of a two-process gloo group, for the ``with``."""
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2,
                            timeout=timedelta(seconds=120))  # a rank left waiting fails, not hangs the run
    try:
        yield
        # both ranks done before either closes its connections: a rank that tore down while the
        # other still read from it aborted the other at exit (SIGABRT from gloo, seen once in a run)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _backbone() -> nn.Sequential:
    # a torchvision-like network: its own head (pool, flatten, fc) runs after the last site
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 3, 3), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 7))


def test_wrapper_freezes_what_the_decision_never_reaches():
    bb = _backbone()
    net = nv.wrap(bb, 3, example_input=torch.randn(2, 1, 7, 7))
    assert net.unreached == ["backbone.6"]
    assert not bb[6].weight.requires_grad and not bb[6].bias.requires_grad
    F.cross_entropy(net.train()(torch.randn(4, 1, 7, 7)), torch.arange(4) % 3).backward()
    # what DDP needs: every parameter that asks for a gradient gets one
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)
    assert net.unwrap() is bb and bb[6].weight.requires_grad and bb[6].bias.requires_grad  # given back as it was


def test_a_frozen_parameter_stays_frozen_after_unwrap():
    bb = _backbone()
    bb[6].bias.requires_grad_(False)  # the user's own choice, not the wrapper's
    net = nv.wrap(bb, 3, example_input=torch.randn(2, 1, 7, 7))
    net.unwrap()
    assert bb[6].weight.requires_grad and not bb[6].bias.requires_grad


def test_lazy_wrap_freezes_on_the_first_batch():
    bb = _backbone()
    net = nv.wrap(bb, 3)
    assert bb[6].weight.requires_grad  # sites not found yet
    net(torch.randn(2, 1, 7, 7))
    assert not bb[6].weight.requires_grad and net.unreached == ["backbone.6"]


def _data():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(16, 1, 7, 7, generator=g)
    x[8:] = x[8:] * 3 + 1
    return x, torch.arange(16) % 3


def _steps(net, x, y, n=3):
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    for _ in range(n):
        opt.zero_grad()
        F.cross_entropy(net.train()(x), y).backward()
        opt.step()


def _ddp_worker(rank: int, store: str, out: str) -> None:
    with _two_ranks(rank, store):
        net = nv.wrap(_backbone(), 3, example_input=torch.zeros(2, 1, 7, 7))
        ddp = nn.parallel.DistributedDataParallel(net)  # no find_unused_parameters
        x, y = _data()
        _steps(ddp, x[8 * rank: 8 * rank + 8], y[8 * rank: 8 * rank + 8])
        # DDP's reducer holds the process group: freed after the group is destroyed, it ran gloo's destructor with the
        # GIL held while a gloo thread waited for the GIL (a deadlock at exit, seen twice in a session): free it first
        del ddp
        w, b = net.eval().effective_classifier()
        torch.save({"w": w.detach(), "b": b.detach()}, f"{out}.{rank}")


def test_plain_ddp_trains_past_step_two(tmp_path):
    # on a wrapper that left the backbone's head trainable, DDP's second step raised
    # "Expected to have finished reduction in the prior iteration"
    mp.spawn(_ddp_worker, args=(str(tmp_path / "store"), str(tmp_path / "out")), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"out.{r}", weights_only=True) for r in (0, 1))
    one = nv.wrap(_backbone(), 3, example_input=torch.zeros(2, 1, 7, 7))
    x, y = _data()
    _steps(one, x, y)
    w, b = one.eval().effective_classifier()
    for r in (r0, r1):
        torch.testing.assert_close(r["w"], w.detach(), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(r["b"], b.detach(), rtol=1e-4, atol=1e-5)


def _features():
    # a small spread around a large mean: one-pass E[x^2] - E[x]^2 loses most of its digits
    g = torch.Generator().manual_seed(2)
    f = 1e4 + 1e-3 * torch.randn(16, 5, generator=g, dtype=torch.float64)
    f[8:] += 2e-3  # the ranks' halves differ
    return f, torch.randn(16, 5, generator=g, dtype=torch.float64)


def _norm_worker(rank: int, store: str, out: str) -> None:
    with _two_ranks(rank, store):
        f, c = _features()
        mine = slice(8 * rank, 8 * rank + 8)
        norm = CodeNorm(5, dtype=torch.float64).train()
        fr = f[mine].clone().requires_grad_(True)
        y = norm(fr)
        (y * c[mine]).sum().backward()  # the global loss is the sum of both ranks' losses
        torch.save({"y": y.detach(), "grad": fr.grad, "mean": norm.running_mean, "var": norm.running_var}, f"{out}.{rank}")


def test_ddp_statistics_equal_one_process_to_1e_6(tmp_path):
    mp.spawn(_norm_worker, args=(str(tmp_path / "store"), str(tmp_path / "out")), nprocs=2, join=True)
    r = [torch.load(tmp_path / f"out.{k}", weights_only=True) for k in (0, 1)]
    f, c = _features()
    f.requires_grad_(True)
    norm = CodeNorm(5, dtype=torch.float64).train()
    y = norm(f)
    (y * c).sum().backward()
    for k in ("mean", "var"):
        torch.testing.assert_close(r[0][k], r[1][k], rtol=0, atol=0)
    torch.testing.assert_close(r[0]["mean"], norm.running_mean, rtol=1e-6, atol=0)
    torch.testing.assert_close(r[0]["var"], norm.running_var, rtol=1e-6, atol=0)
    torch.testing.assert_close(torch.cat([r[0]["y"], r[1]["y"]]), y.detach(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(torch.cat([r[0]["grad"], r[1]["grad"]]), f.grad, rtol=1e-6, atol=1e-6)


def _ensemble_worker(rank: int, store: str, out: str) -> None:
    with _two_ranks(rank, store):
        torch.manual_seed(0)
        apart = nv.create_model("nv_lite", num_classes=3, in_channels=1, members=2)
        apart.eval()(torch.zeros(2, 1, 24))  # sites and heads, before DDP sees the parameters
        batched = nv.create_model("nv_lite", num_classes=3, in_channels=1, members=2, batched=True)
        batched.eval()(torch.zeros(2, 1, 24))  # its own sites found in one pass: the members' fc frozen
        batched.load_state_dict(apart.state_dict())
        g = torch.Generator().manual_seed(1)
        x, y = torch.randn(16, 1, 24, generator=g), torch.arange(16) % 3
        mine = slice(8 * rank, 8 * rank + 8)
        for name, net in (("apart", apart), ("batched", batched)):
            _steps(nn.parallel.DistributedDataParallel(net), x[mine], y[mine])
        torch.save({"apart": apart.state_dict(), "batched": batched.state_dict(), "pass": batched._pass is not None},
                   f"{out}.{rank}")


def test_ddp_trains_a_batched_ensemble_as_its_members_apart(tmp_path):
    mp.spawn(_ensemble_worker, args=(str(tmp_path / "store"), str(tmp_path / "out")), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"out.{r}", weights_only=True) for r in (0, 1))
    assert r0["pass"] and r1["pass"]
    for name, a in r0["apart"].items():
        if "running" in name or "num_batches" in name:
            continue  # a backbone BatchNorm's statistics are each rank's own (no SyncBatchNorm)
        torch.testing.assert_close(r1["apart"][name], a, msg=name)  # DDP kept the ranks' weights together
        torch.testing.assert_close(r0["batched"][name], a, rtol=1e-4, atol=1e-5, msg=name)  # and batched gives them too
        torch.testing.assert_close(r1["batched"][name], a, rtol=1e-4, atol=1e-5, msg=name)
