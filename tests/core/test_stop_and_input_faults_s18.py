"""Faults of session 18 (D2): the early stop and the hooks it unwinds, a replaced site module, torch.fx, a float batch
into a token-id network, a training batch of one, and the hooks' finalizers.

Hand-built models with known answers: a Linear backbone whose own head is a Linear of known FLOPs, a BatchNorm whose
running statistics are read before and after a refused call, a text CNN on token ids.

After the review of 930487d (R9): the stop path is checked anew on every pass (an FSDP unit a wrap policy put inside
the backbone, a module replaced), a backward in eval mode through an FSDP unit holding the stop is refused by name,
torch's always_call global hooks (ModTracker's) are handed the modules the stop unwound, and the skipped-hook warning
points at the caller's line and names the hooks and the backbone.

After the review of 46a3658 (R6): the pass always stops early (a user's forward hooks it skips are named once per
network), an FSDP unit holding the stop is refused only where a backward can follow, codes() of one training sample are
read, and the token-id advice is given only for a failure on indices of a float batch into a token-id network.
"""

from __future__ import annotations

import copy
import gc
import inspect
import os
import socket
import warnings
import weakref

import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torch.utils.module_tracker import ModuleTracker

from neuroview import Ensemble, NeuroViewCNN
from neuroview.core.hooks import Hook, PathChanged


def _mlp(out: int = 2) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, out))


def _net(classes: int = 5, out: int = 2, **kw) -> NeuroViewCNN:
    x = torch.randn(8, 4)
    return NeuroViewCNN(_mlp(out), num_classes=classes, example_input=x, **kw).eval()


# ------------------------------------------------------------------ finding 1: the stop and the hooks it unwinds
# (R6 review: the pass always stops; a user's forward hooks it skips are named once per network)
def test_forward_hooks_the_stop_skips_are_named_once_and_change_nothing():
    net, x = _net(), torch.randn(6, 4)
    ref = net(x)
    seen, always, pre, early = [], [], [], []
    hs = [net.backbone.register_forward_hook(lambda m, a, o: seen.append(o.shape)),
          net.backbone.register_forward_hook(lambda m, a, o: always.append(1), always_call=True),
          net.backbone.register_forward_pre_hook(lambda m, a: pre.append(a[0].shape)),
          net.backbone[0].register_forward_hook(lambda m, a, o: early.append(o.shape))]
    try:
        with pytest.warns(UserWarning, match=r"forward hooks: those on net.backbone do not run \(<lambda>; net.backbone: "
                                             r"Sequential\): the pass stops at net.backbone.2 before the backbone's "
                                             r"end.*stop_early=False"):
            out = net(x)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # once per network
            net(x), net.explain(x)
    finally:
        for h in hs:
            h.remove()
    assert seen == [] and always == []  # the backbone's end is never reached
    assert pre == [torch.Size([6, 4])] * 3 and early == [torch.Size([6, 3])] * 3  # before the stop: they run
    assert torch.equal(out, ref)


def test_module_tracker_and_flop_counter_see_the_modules_that_ran():
    net, x = _net(classes=5, out=2), torch.randn(6, 4)
    with ModuleTracker() as mt:
        net(x)
        assert mt.parents == {"Global"}  # the modules the stop unwound are popped
    with FlopCounterMode(display=False) as fc:
        net(x)
    counts = {k: sum(v.values()) for k, v in fc.get_flop_counts().items()}
    # what runs: the backbone's Linear(4, 3) (2 * B * 4 * 3) and the NeuroView head Linear(3, 5) (2 * B * 3 * 5); the
    # backbone's own head, Linear(3, 2), never runs, and nothing is booked to it
    with FlopCounterMode(display=False) as ref:
        net.backbone[:1](x)
    assert ref.get_total_flops() == 2 * 6 * 4 * 3
    assert "NeuroViewCNN.backbone.2" not in counts
    assert counts["NeuroViewCNN.backbone.0"] == counts["NeuroViewCNN.backbone"] == 2 * 6 * 4 * 3
    assert counts["NeuroViewCNN"] == fc.get_total_flops() == 2 * 6 * 4 * 3 + 2 * 6 * 3 * 5


def test_the_pass_stops_early_with_a_hook_on_the_stop_module_and_names_it():
    net, x = _net(), torch.randn(6, 4)
    head, ran = net.backbone[2], []
    plain = head.forward
    head.forward = lambda t: (ran.append(t.shape), plain(t))[1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no user hook: no warning
        assert net(x).shape == (6, 5) and ran == []  # the backbone's own head never runs
    out = []
    head.register_forward_hook(lambda m, a, o: out.append(o.shape))
    head.register_forward_pre_hook(lambda m, a: out.append("pre"))  # after the network's: skipped too
    with pytest.warns(UserWarning, match=r"those on net.backbone.2, net.backbone.2 \(forward-pre hooks registered "
                                         r"after the network's\) do not run"):
        net(x)
    assert ran == [] and out == []


def test_a_stop_that_varies_input_size_runs_under_a_profiler():
    # the backbone's own head takes only the size the sites were found on: the stop never reaches it
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 6 * 6, 2))
    net = NeuroViewCNN(bb, num_classes=3, example_input=torch.randn(4, 1, 8, 8)).eval()
    x = torch.randn(4, 1, 12, 12)
    ref = net(x)
    with FlopCounterMode(display=False):
        assert torch.equal(net(x), ref)
    with ModuleTracker():
        assert torch.equal(net(x), ref)


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
        # inference through the unit (no backward can follow) works, as it did: the plain network's logits
        plain, x = _net(), torch.randn(6, 4)
        net.eval()
        with torch.no_grad():
            assert torch.equal(net(x), plain(x))
        net.train()
        with torch.no_grad():
            assert torch.equal(net(x), plain.train()(x))
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


class _Gray(nn.Module):  # uint8 images; converts them itself
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv, self.act = nn.Conv2d(1, 2, 3), nn.ReLU()

    def forward(self, x):
        return self.act(self.conv(x.float() / 255)).mean((2, 3))


def test_a_uint8_image_network_gets_no_token_id_advice():
    x = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8)
    net = NeuroViewCNN(_Gray(), num_classes=3, example_input=x).eval()
    assert net(x.float()).shape == (4, 3)  # a float image runs
    net.backbone.conv = nn.Conv2d(2, 2, 3)  # the user's own edit: a failure that says nothing of x's dtype
    with pytest.raises(RuntimeError, match="channels") as e:
        net(x.float())
    assert "token ids" not in str(e.value) and "x.long()" not in str(e.value) and e.type is RuntimeError


class _TextHead(_TextCNN):  # token ids, and a failure after the embedding that has nothing to do with them
    def forward(self, ids):
        h = self.act(self.conv(self.emb(ids.long()).transpose(1, 2))).mean(-1)
        if ids.is_floating_point():
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied (6x3 and 4x2)")
        return h


def test_a_token_id_network_failing_elsewhere_on_a_float_batch_is_reraised_as_it_is():
    ids = torch.randint(0, 20, (6, 7))
    net = NeuroViewCNN(_TextHead(), num_classes=3, example_input=ids).eval()
    with pytest.raises(RuntimeError, match="mat1 and mat2") as e:
        net(ids.float())
    assert e.type is RuntimeError


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


def test_the_codes_of_one_training_sample_are_read_as_before():
    # codes() never reaches the head's normalization: one sample's codes, in training mode, as at eval
    net = NeuroViewCNN(_mlp(), num_classes=3, example_input=torch.randn(8, 4)).train()
    x = torch.randn(1, 4)
    relu = torch.relu(net.backbone[0](x))  # the site: one ReLU of 3 units, its on/off bits ("hard")
    assert torch.equal(net.codes(x), (relu > 0).float())
    with pytest.raises(ValueError, match="training batch of 1 sample cannot be normalized"):
        net(x)
    other = _mlp()
    with torch.no_grad():
        other[0].weight.neg_()  # each unit on where the first member's is off
    members = [NeuroViewCNN(bb, num_classes=3, example_input=torch.randn(8, 4)) for bb in (_mlp(), other)]
    ens = Ensemble(members).train()
    bits = (relu > 0).float()
    assert torch.equal(ens.codes(x), torch.cat([bits, (other[0](x) > 0).float()], dim=1))
    with pytest.raises(ValueError, match="training batch of 1 sample cannot be normalized"):
        ens(x)
    ens.build_head(6)
    ens.train()
    assert ens.codes(x).shape == (1, 6)
    with pytest.raises(ValueError, match="training batch of 1 sample cannot be normalized"):
        ens(x)  # the global head normalizes it
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
    bb = net.backbone
    assert _neuroview_hooks(bb) == 2  # the site's (on the ReLU) and the stop's (on the backbone's own head)
    del net
    gc.collect()
    assert _neuroview_hooks(bb) == 0  # the one finalizer left still takes them all off


def _neuroview_hooks(bb: nn.Module) -> int:
    return sum(isinstance(h, Hook) for m in bb.modules() for t in (m._forward_pre_hooks, m._forward_hooks)
               for h in t.values())


# ------------------------------------------------------------------ review of 930487d (R9)
@pytest.fixture
def fsdp(monkeypatch):
    """FSDP1 on one gloo process; the class."""
    if not dist.is_available():
        pytest.skip("torch.distributed")
    from torch.distributed.fsdp import FullyShardedDataParallel

    monkeypatch.setitem(os.environ, "MASTER_ADDR", "127.0.0.1")
    monkeypatch.setitem(os.environ, "MASTER_PORT", str(_free_port()))
    dist.init_process_group("gloo", rank=0, world_size=1)
    try:
        yield FullyShardedDataParallel
    finally:
        dist.destroy_process_group()


class _Body(nn.Module):  # the stop ('body.4', its own head) inside a Sequential that a type-based policy wraps
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2))

    def forward(self, x):
        return self.body(x)


def test_an_fsdp_unit_a_wrap_policy_puts_inside_the_backbone_is_refused_by_name(fsdp):
    from torch.distributed.fsdp.wrap import ModuleWrapPolicy

    x = torch.randn(8, 4)
    net = NeuroViewCNN(_Body(), 3, example_input=x)
    net(x)  # the stop path is known before the wrap, as when Lightning's fsdp strategy wraps a built network
    plain = copy.deepcopy(net).eval()
    assert net._stop == "body.4"
    model = fsdp(net, auto_wrap_policy=ModuleWrapPolicy({nn.Sequential}), device_id=torch.device("cpu"),
                 use_orig_params=True)
    assert type(net.backbone.body).__name__ == "FullyShardedDataParallel"
    model.eval()
    with torch.no_grad():  # inference through it: the unsharded network's logits
        assert torch.allclose(model(x), plain(x), atol=1e-6)
    model.train()
    with pytest.raises(TypeError, match=r"FSDP: net.backbone.body is an FSDP unit.*\('body.4'\).*whole network"):
        model(x)


def test_a_block_wrapped_by_hand_after_a_pass_is_refused_by_name(fsdp):
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2)))
    net, x = NeuroViewCNN(bb, 3, example_input=torch.randn(8, 4)).train(), torch.randn(6, 4)
    net(x)
    assert net._stop == "0.4"
    net.backbone[0] = fsdp(net.backbone[0], device_id=torch.device("cpu"), use_orig_params=True)
    with pytest.raises(TypeError, match=r"FSDP: net.backbone.0 is an FSDP unit.*\('0.4'\)"):
        net(x)


def test_a_backward_in_eval_mode_through_an_fsdp_unit_holding_the_stop_is_refused_by_name(fsdp):
    plain, net, x = _net(), _net(), torch.randn(6, 4)
    net.backbone = fsdp(net.backbone, device_id=torch.device("cpu"), use_orig_params=True)
    ref = plain(x)
    with torch.no_grad():
        assert torch.equal(net(x), ref)
    with torch.inference_mode():
        assert torch.equal(net(x), ref)
    xi = x.clone().requires_grad_()  # an input-gradient saliency map
    out = net(xi)
    assert torch.equal(out.detach(), ref)  # a forward with grad enabled (inference without no_grad) works
    with pytest.raises(TypeError, match=r"FSDP: net.backbone is an FSDP unit.*\('2'\).*in eval mode too"):
        out[:, 0].sum().backward()
    assert xi.grad is None


def test_a_module_on_the_stop_path_replaced_after_a_pass_is_checked_anew():
    # the stop module replaced: the new one carries no stop hook, so the pass runs whole and skips nothing
    net, x = _net(), torch.randn(6, 4)
    ref = net(x)
    head = nn.Linear(3, 2)
    head.load_state_dict(net.backbone[2].state_dict())
    net.backbone[2] = head
    ran = []
    net.backbone.register_forward_hook(lambda m, a, o: ran.append(o.shape))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = net(x)
    assert ran == [torch.Size([6, 2])] and torch.equal(out, ref)
    # a new holder of the same modules (the stop hook with them): the pass stops in it, and a hook on it is named
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)))
    net = NeuroViewCNN(bb, num_classes=5, example_input=torch.randn(8, 4)).eval()
    ref = net(x)
    assert net._stop == "0.2"
    net.backbone[0] = nn.Sequential(*net.backbone[0])
    seen = []
    net.backbone[0].register_forward_hook(lambda m, a, o: seen.append(o.shape))
    with pytest.warns(UserWarning, match=r"those on net.backbone.0 do not run \(<lambda>; net.backbone: Sequential\)"):
        out = net(x)
    assert seen == [] and torch.equal(out, ref)


def test_a_wrapper_put_around_the_stop_module_is_on_the_stop_path():
    # a one-child wrapper (as FSDP's, checkpoint_wrapper's are) around the module carrying the stop: the pass stops
    # inside it, so the wrapper is unwound too: its forward hooks are named, and ModuleTracker's stack is popped
    net, x = _net(), torch.randn(6, 4)
    ref = net(x)
    net.backbone[2] = nn.Sequential(net.backbone[2])
    ran = []
    net.backbone[2].register_forward_hook(lambda m, a, o: ran.append(o.shape))
    with pytest.warns(UserWarning, match=r"those on net.backbone.2 do not run \(<lambda>; net.backbone: Sequential\)"):
        out = net(x)
    assert ran == [] and torch.equal(out, ref)
    with ModuleTracker() as mt:
        net(x)
        assert mt.parents == {"Global"}


def test_global_always_call_hooks_are_handed_the_modules_the_stop_unwound():
    mod_tracker = pytest.importorskip("torch.distributed._tools.mod_tracker")
    net, x = _net(), torch.randn(6, 4)
    with mod_tracker.ModTracker() as t:  # MemTracker's, RuntimeEstimator's
        net(x)
        assert t.parents == {"Global"}
    always, plain = [], []
    hs = [torch.nn.modules.module.register_module_forward_hook(lambda m, a, o: always.append((m, o is None)),
                                                              always_call=True),
          torch.nn.modules.module.register_module_forward_hook(lambda m, a, o: plain.append(m))]
    try:
        net(x)
    finally:
        for h in hs:
            h.remove()
    bb = net.backbone
    # Linear(4, 3) and the ReLU return; the backbone's own head (where the pass stops), then the backbone, unwind
    assert [(m, none) for m, none in always if m in (bb, bb[2])] == [(bb[2], True), (bb, True)]
    assert (bb[0], False) in always and (bb[1], False) in always
    assert not any(m is bb or m is bb[2] for m in plain)  # a hook that reads the output is not called without one


class _Seq(nn.Sequential):
    pass


def test_the_skipped_hook_warning_points_at_the_callers_line_and_tells_networks_apart():
    x = torch.randn(6, 4)
    a = _net()
    b = NeuroViewCNN(_Seq(*_mlp()), num_classes=5, example_input=torch.randn(8, 4)).eval()

    def log(m, args, out):
        pass

    a.backbone.register_forward_hook(lambda m, args, out: None)
    b.backbone.register_forward_hook(log)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("default")  # Python's own: each text once per line
        for n in (a, b):
            n(x); line = inspect.currentframe().f_lineno  # noqa: E702
    said = [m for m in w if "forward hooks" in str(m.message)]
    assert [(m.filename, m.lineno) for m in said] == [(__file__, line)] * 2
    assert "(<lambda>; net.backbone: Sequential)" in str(said[0].message)
    assert "(log; net.backbone: _Seq)" in str(said[1].message)
