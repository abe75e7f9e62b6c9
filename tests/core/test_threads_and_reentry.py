"""Two threads with one network, a network called again inside its own pass, and what the site search reads.

The README promises that two threads can explain with one network: the modes explain sets, a batched ensemble's
one grouped network, an ablation and a site search in one thread are no other thread's. Each thread here is
stopped at a forward hook at a chosen point (events, not sleeps), so every interleaving is the same each run.
"""

import threading
import warnings

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.attribution.ablation import ablate_units
from neuroview.core._utils import restore_modes

WAIT = 20  # seconds an event is waited for at most: a thread that never arrives fails the test, not the run


def _bn_net() -> nv.NeuroViewCNN:
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.3),
                       nn.Conv2d(4, 5, 3, padding=1), nn.ReLU())
    net = nv.NeuroViewCNN(bb, 3, input_shape=(1, 6, 6)).train()
    with torch.no_grad():
        net(torch.rand(8, 1, 6, 6))
    return net


def _run(fn, *args) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def body():
        try:
            out["value"] = fn(*args)
        except BaseException as e:  # noqa: BLE001 - handed to the test
            out["error"] = e
    t = threading.Thread(target=body)
    t.start()
    return t, out


def test_two_threads_explaining_a_training_network_leave_its_modes_and_statistics():
    """Thread 1 enters explain, thread 2 enters too, thread 1 finishes first: it gave the training mode back while
    thread 2's pass ran (BatchNorm's statistics moved, dropout on), and thread 2 then gave back eval mode for good."""
    net, x = _bn_net(), torch.rand(4, 1, 6, 6)
    want = net.explain(x).logits
    stats = net.backbone[1].running_mean.clone(), int(net.backbone[1].num_batches_tracked)
    arrived = {n: threading.Event() for n in ("t1", "t2")}
    go = {n: threading.Event() for n in ("t1", "t2")}

    def pause(module, args, output):  # each thread waits after the first conv, before the BatchNorm
        name = threading.current_thread().name
        if name in go:
            arrived[name].set()
            assert go[name].wait(WAIT)
    h = net.backbone[0].register_forward_hook(pause)
    try:
        out = {}
        threads = {n: threading.Thread(target=lambda n=n: out.__setitem__(n, net.explain(x)), name=n) for n in go}
        threads["t1"].start()
        assert arrived["t1"].wait(WAIT)
        threads["t2"].start()
        assert arrived["t2"].wait(WAIT)
        go["t1"].set()
        threads["t1"].join(WAIT)
        go["t2"].set()
        threads["t2"].join(WAIT)
    finally:
        for e in go.values():
            e.set()
        h.remove()
    for n in go:
        torch.testing.assert_close(out[n].logits, want, msg=f"thread {n}'s explanation")
    assert {n: m.training for n, m in net.named_modules() if not m.training} == {}
    torch.testing.assert_close(net.backbone[1].running_mean, stats[0])
    assert int(net.backbone[1].num_batches_tracked) == stats[1]


def test_modes_held_twice_come_back_once_the_last_lets_go_and_restore_twice_is_once():
    net = _bn_net()
    first = restore_modes(net)
    net.eval()
    second = restore_modes(net)
    first()
    first()  # again: no second release (it let go of the other's hold)
    assert not any(m.training for m in net.modules())
    second()
    assert all(m.training for m in net.modules())
    second()
    assert all(m.training for m in net.modules())


def test_a_batched_ensemble_runs_one_threads_call_of_its_grouped_network_at_a_time():
    """The grouped network is one shell whose modes and tensors each call sets: a second thread's call entered it
    while the first one's pass was half way (other logits, and first calls failed with IndexError or KeyError).
    (Stopped inside the first call, this test gives the second one a second to enter: it must not.)"""
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lite = nv.create_model("nv_lite", num_classes=3, in_channels=1, members=3, batched=True).eval()
    x1, x2 = torch.randn(2, 1, 40), torch.randn(3, 1, 40)
    want1, want2 = lite(x1), lite(x2)
    main, entered, other = threading.current_thread(), threading.Event(), {}

    def inside(module, args, output):
        if threading.current_thread() is not main:
            entered.set()
        elif "thread" not in other:  # the main thread's call, half way: a second thread calls
            other["thread"], other["out"] = _run(lite, x2)
            other["overlapped"] = entered.wait(1.0)
    h = dict(lite._pass.shell.net.backbone.named_modules())["bn"].register_forward_hook(inside)
    try:
        got1 = lite(x1)
        other["thread"].join(WAIT)
    finally:
        h.remove()
    assert not other["overlapped"], "a second thread's call ran inside the first one's grouped pass"
    assert "error" not in other["out"], other["out"].get("error")
    torch.testing.assert_close(got1, want1)
    torch.testing.assert_close(other["out"]["value"], want2)


def _relu_net() -> nv.NeuroViewCNN:
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
    return nv.NeuroViewCNN(bb, 3, input_shape=(1, 8, 8)).eval()


def test_an_ablation_applies_to_the_passes_of_the_thread_that_entered_it_only():
    net, x = _relu_net(), torch.rand(4, 1, 8, 8)
    ref = net.explain(x)
    with ablate_units(net, list(range(8))):
        t, out = _run(net.explain, x)
        t.join(WAIT)
        here = net.explain(x)
    assert "error" not in out, out.get("error")
    torch.testing.assert_close(out["value"].codes, ref.codes)  # another thread's explain: not ablated
    assert bool((here.codes[:, :8] == 0).all()) and not torch.equal(here.codes, ref.codes)  # this thread's: ablated
    # a per-sample mask of 64 rows: another thread's 4 samples are no error of its
    with ablate_units(net, torch.ones(64, net.num_units, dtype=torch.bool)):
        t, out = _run(net.explain, x)
        t.join(WAIT)
    assert "error" not in out, out.get("error")
    assert net._codes_hook is None


def test_ablations_left_in_another_order_than_entered_keep_the_one_still_entered():
    """Threads leave their ablations in any order: the first to leave took the other's codes hook with it, and the
    last put the first one's back for good."""
    net, x = _relu_net(), torch.rand(4, 1, 8, 8)
    first, second = ablate_units(net, [0]), ablate_units(net, [1])
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    codes = net.codes(x)
    second.__exit__(None, None, None)
    assert bool((codes[:, 1] == 0).all()) and bool((codes[:, 0] != 0).any())
    assert net._codes_hook is None
    torch.testing.assert_close(net.codes(x), _relu_net().codes(x))


def test_finding_a_second_wrappers_sites_beside_a_pass_of_the_same_backbone_in_another_thread():
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 3, padding=1), nn.ReLU(),
                       nn.Flatten(), nn.Linear(180, 3))
    net1 = nv.wrap(bb, 3, input_shape=(1, 6, 6)).eval()
    x = torch.rand(7, 1, 6, 6)
    want = net1(x)
    main, other = threading.current_thread(), {}

    def inside(module, args, output):  # the search's first pass, half way: another thread runs net1 to its end
        if threading.current_thread() is main and not other:
            t, other["out"] = _run(net1, x)
            t.join(WAIT)
    h = bb[0].register_forward_hook(inside)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net2 = nv.wrap(bb, 3, input_shape=(1, 6, 6))
    finally:
        h.remove()
    assert "error" not in other["out"], other["out"].get("error")
    torch.testing.assert_close(other["out"]["value"], want)
    assert [(s.name, s.channels) for s in net2.sites] == [(s.name, s.channels) for s in net1.sites]


def test_a_network_called_again_from_a_hook_on_its_own_backbone_records_each_pass_apart():
    """A monitor scoring a reference batch whenever a layer runs: the outer pass read the inner one's site calls as
    its own ("its forward pass took another path than when its sites were found")."""
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 3, padding=1), nn.ReLU())
    net = nv.wrap(bb, 3, input_shape=(1, 6, 6)).eval()
    other = nv.wrap(bb, 3, input_shape=(1, 6, 6), layers=["3"]).eval()
    x, x2 = torch.rand(4, 1, 6, 6), torch.rand(4, 1, 6, 6)
    want, want2, want_other = net(x), net(x2), other.explain(x2).codes
    seen, busy = {}, []

    def monitor(call):
        def hook(module, args, output):
            if not busy:  # the inner pass runs this layer too
                busy.append(1)
                try:
                    seen["inner"] = call()
                finally:
                    busy.pop()
        return hook
    h = bb[1].register_forward_hook(monitor(lambda: net(x2)))
    try:
        got = net(x)
    finally:
        h.remove()
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(seen["inner"], want2)
    h = bb[3].register_forward_hook(monitor(lambda: other.explain(x2).codes))
    try:
        exp = net.explain(x)
    finally:
        h.remove()
    torch.testing.assert_close(exp.logits, want)
    torch.testing.assert_close(seen["inner"], want_other)


class _Cat(nn.Module):
    def __init__(self, how: str):
        super().__init__()
        self.how = how
        self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 6, 3, padding=1)
        self.act, self.c, self.act2 = nn.ReLU(), nn.Conv2d(10, 5, 1), nn.ReLU()

    def forward(self, x):
        parts = [self.a(x), self.b(x)]
        h = torch.cat(parts, axis=1) if self.how == "cat" else torch.concatenate(parts, axis=1)
        return self.act2(self.c(self.act(h)))


@pytest.mark.parametrize("how", ["cat", "concatenate"])
def test_a_concatenation_along_axis_1_gives_the_site_after_it_its_channels(how):
    """torch.cat(parts, axis=1) was read as a cat along dim 0: the site got the first part's 4 channels, which fit
    the map's width W=4, and its units were read along the last dim."""
    x = torch.randn(6, 3, 7, 4)
    net = nv.wrap(_Cat(how), 3, example_input=x).eval()
    site = net.sites[0]
    assert (site.name, site.channels, site.axis) == ("act", 10, 1)


class _Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.act, self.g = nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Sigmoid()

    def forward(self, x):
        h = self.act(self.conv(x))
        return h * self.g(h.sum((1, 2, 3)))[:, None, None, None]  # one gate value per sample


def test_an_activation_of_one_value_per_sample_is_left_out_with_a_warning():
    x = torch.randn(8, 1, 8, 8)
    with pytest.warns(UserWarning, match=r"\['g'\] are applied to one value per sample.*layers=\[\.\.\.\]"):
        net = nv.wrap(_Gated(), 3, example_input=x).eval()
    assert [s.name for s in net.sites] == ["act"]
    exp = net.explain(x)
    torch.testing.assert_close(exp.for_class(0).sum(-1) + exp.bias[0], net(x)[:, 0])
    with pytest.raises(ValueError, match=r"layers: site 'g' is applied to one value per sample \(shape \(2,\) on the 2 "
                                         r"samples the sites are found on\).*leave it out of layers=\[\.\.\.\]"):
        nv.wrap(_Gated(), 3, example_input=x, layers=["act", "g"])
