"""Faults of session 18 (D2): the early stop and the hooks it unwinds, a replaced site module, torch.fx, a float batch
into a token-id network, a training batch of one, and the hooks' finalizers.

Hand-built models with known answers: a Linear backbone whose own head is a Linear of known FLOPs, a BatchNorm whose
running statistics are read before and after a refused call, a text CNN on token ids.
"""

from __future__ import annotations

import gc
import os
import socket
import weakref

import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torch.utils.module_tracker import ModuleTracker

from neuroview import NeuroViewCNN
from neuroview.core.hooks import PathChanged


def _mlp(out: int = 2) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, out))


def _net(classes: int = 5, out: int = 2, **kw) -> NeuroViewCNN:
    x = torch.randn(8, 4)
    return NeuroViewCNN(_mlp(out), num_classes=classes, example_input=x, **kw).eval()


# ------------------------------------------------------------------ finding 1: the stop and the hooks it unwinds
def test_forward_hooks_on_the_backbone_run_and_change_nothing():
    net, x = _net(), torch.randn(6, 4)
    ref = net(x)
    seen, always = [], []
    h1 = net.backbone.register_forward_hook(lambda m, a, o: seen.append(o.shape))
    h2 = net.backbone.register_forward_hook(lambda m, a, o: always.append(1), always_call=True)
    try:
        out = net(x)
        net.explain(x)
    finally:
        h1.remove(), h2.remove()
    # the backbone's own output: [6, 2] (its head, Linear(3, 2)), once per call
    assert seen == [torch.Size([6, 2])] * 2 and always == [1, 1]
    assert torch.equal(out, ref)


def test_module_tracker_and_flop_counter_see_the_modules_that_ran():
    net, x = _net(classes=5, out=2), torch.randn(6, 4)
    with ModuleTracker() as mt:
        net(x)
        assert mt.parents == {"Global"}
    with FlopCounterMode(display=False) as fc:
        net(x)
    counts = {k: sum(v.values()) for k, v in fc.get_flop_counts().items()}
    # backbone.2 is the backbone's own Linear(3, 2): 2 * B * 3 * 2 FLOPs, not the NeuroView head's 2 * B * 3 * 5
    assert counts["NeuroViewCNN.backbone.2"] == 2 * 6 * 3 * 2
    assert counts["NeuroViewCNN.backbone.0"] == 2 * 6 * 4 * 3
    assert counts["NeuroViewCNN"] == 2 * 6 * 4 * 3 + 2 * 6 * 3 * 2 + 2 * 6 * 3 * 5


def test_without_hooks_the_pass_still_stops_early():
    net, x = _net(), torch.randn(6, 4)
    head, ran = net.backbone[2], []
    plain = head.forward
    head.forward = lambda t: (ran.append(t.shape), plain(t))[1]
    assert net(x).shape == (6, 5) and ran == []  # the backbone's own head never runs
    out = []
    head.register_forward_hook(lambda m, a, o: out.append(o.shape))
    net(x)  # with a forward hook on the module the pass stops at, it runs whole, the hook too
    assert ran == [torch.Size([6, 3])] and out == [torch.Size([6, 2])]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed")
def test_fsdp_unit_holding_the_stop_is_refused_by_name(monkeypatch):
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    monkeypatch.setitem(os.environ, "MASTER_ADDR", "127.0.0.1")
    monkeypatch.setitem(os.environ, "MASTER_PORT", str(_free_port()))
    dist.init_process_group("gloo", rank=0, world_size=1)
    try:
        net = _net().train()
        net.backbone = FSDP(net.backbone, device_id=torch.device("cpu"), use_orig_params=True)
        with pytest.raises(TypeError, match=r"FSDP: net.backbone is an FSDP unit.*'2'.*whole network as one unit"):
            net(torch.randn(6, 4))
    finally:
        dist.destroy_process_group()


# ------------------------------------------------------------------ finding 4: a site module replaced after wrapping
def test_a_replaced_site_module_is_named_with_the_fix():
    net, x = _net(), torch.randn(6, 4)
    ref = net(x)
    net.backbone[1] = nn.ReLU()  # an equal, fresh module: the hooks are on the old one
    with pytest.raises(PathChanged, match=r"modules \['1'\] were replaced after the sites were found.*nv.wrap"):
        net(x)
    again = NeuroViewCNN(net.unwrap(), num_classes=5, example_input=x)  # the route the message gives
    again.load_state_dict(net.state_dict())
    assert torch.equal(again.eval()(x), ref)


# ------------------------------------------------------------------ finding 5: torch.fx
def test_torch_fx_is_refused_by_name():
    net = _net()
    with pytest.raises(TypeError, match=r"torch.fx.symbolic_trace: a NeuroViewCNN cannot be traced.*torch.export"):
        torch.fx.symbolic_trace(net)


# ------------------------------------------------------------------ P3 finding 7: a float batch into token ids
class _TextCNN(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.conv, self.act = nn.Embedding(20, 4), nn.Conv1d(4, 3, 2), nn.ReLU()

    def forward(self, ids):
        return self.act(self.conv(self.emb(ids).transpose(1, 2))).mean(-1)


def test_a_float_batch_into_a_token_id_network_names_x_and_both_dtypes():
    ids = torch.randint(0, 20, (6, 7))
    net = NeuroViewCNN(_TextCNN(), num_classes=3, example_input=ids).eval()
    ref = net(ids)
    with pytest.raises(ValueError, match=r"^x: .*expected integer token ids \(x of torch.int64.*got torch.float32: "
                                         r"pass x.long\(\)"):
        net(ids.float())
    assert torch.equal(net(ids.float().long()), ref)


# ------------------------------------------------------------------ P5 finding 3: a training batch of one
def test_a_training_batch_of_one_is_refused_before_the_backbone_runs():
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2))
    net = NeuroViewCNN(bb, num_classes=3, example_input=torch.randn(8, 4)).train()
    net(torch.randn(8, 4))
    mean, n = bb[1].running_mean.clone(), int(bb[1].num_batches_tracked)
    with pytest.raises(ValueError, match="training batch of 1 sample cannot be normalized"):
        net(torch.randn(1, 4) * 10)
    assert torch.equal(bb[1].running_mean, mean) and int(bb[1].num_batches_tracked) == n
    net.eval()(torch.randn(1, 4))  # at eval a single sample is fine
    NeuroViewCNN(_mlp(), num_classes=3, example_input=torch.randn(8, 4), normalize=False).train()(torch.randn(1, 4))


# ------------------------------------------------------------------ P5 finding 5: one finalizer per network
def _finalizers(net) -> int:
    return sum(1 for f in list(weakref.finalize._registry) if (p := f.peek()) is not None and p[0] is net)


def test_reinstalling_hooks_keeps_one_finalizer():
    net, x = _net(), torch.randn(6, 4)
    net(x)
    before = _finalizers(net)
    for _ in range(10):
        net.quantizer = "none"
        net(x)
        net.quantizer = "hard"
        net(x)
        net.unwrap()
        net(x)
    assert _finalizers(net) == before
    ref = net(x)
    del net
    gc.collect()
    assert ref.shape == (6, 5)
