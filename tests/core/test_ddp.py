"""DDP on two CPU processes (gloo): the code normalization sees the global batch, so every rank
keeps the same running statistics and the same folded classifier, equal to one process that sees
both ranks' samples. Runs in the default test run (a few seconds)."""

from __future__ import annotations

from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

import neuroview as nv


def _net() -> nv.NeuroViewCNN:
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 3, 3), nn.ReLU())
    return nv.NeuroViewCNN(backbone, 3, example_input=torch.zeros(2, 1, 7, 7))


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(16, 1, 7, 7, generator=g)
    x[8:] = x[8:] * 3 + 1  # the two ranks see differently distributed halves
    return x, torch.arange(16) % 3


def _steps(net, x, y, n=3):
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(n):
        opt.zero_grad()
        F.cross_entropy(net.train()(x), y).backward()
        opt.step()


def _worker(rank: int, store: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2,
                            timeout=timedelta(seconds=120))  # a rank left waiting fails, not hangs the run
    try:
        net = _net()
        ddp = nn.parallel.DistributedDataParallel(net)
        x, y = _data()
        mine = slice(8 * rank, 8 * rank + 8)
        # a global batch of 16 split 8 + 8; DDP averages gradients, each rank's loss is a mean over 8
        _steps(ddp, x[mine], y[mine])
        del ddp  # its reducer holds the group: freed after the group is destroyed, gloo's teardown can deadlock on the GIL
        w, b = net.eval().effective_classifier()
        torch.save({"mean": net.norm.running_mean, "var": net.norm.running_var, "w": w.detach(), "b": b.detach()},
                   f"{out}.{rank}")
        dist.barrier()  # both ranks done before either closes its connections (tests/core/test_ddp_plain.py)
    finally:
        dist.destroy_process_group()


def test_two_ranks_share_statistics_and_folded_weights(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path / "store"), str(tmp_path / "out")), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"out.{r}", weights_only=True) for r in (0, 1))
    for k in r0:
        torch.testing.assert_close(r0[k], r1[k], rtol=0, atol=0)  # identical on every rank
    one = _net()
    x, y = _data()
    _steps(one, x, y)  # one process, the whole batch of 16
    torch.testing.assert_close(r0["mean"], one.norm.running_mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(r0["var"], one.norm.running_var, rtol=1e-5, atol=1e-6)
    w, b = one.eval().effective_classifier()
    torch.testing.assert_close(r0["w"], w.detach(), rtol=1e-4, atol=1e-5)
