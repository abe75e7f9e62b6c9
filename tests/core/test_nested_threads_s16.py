"""A NeuroView network inside a model another one wraps, a monitor hook on a lazy network's first batch, and a
backbone that runs branches on worker threads (a probe of 2026-12-06, tmp/probes/threads findings 1-4).

Expected values come from networks built alone (the same seeds, no outer wrap, no hook, no threads) or from the
hand-written shapes of the tiny models here, not from the code under test."""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from torch import nn

import neuroview as nv

X = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(3))
Y = torch.arange(16) % 3


def _inner(**kw) -> nv.NeuroViewCNN:
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU())
    return nv.NeuroViewCNN(bb, num_classes=3, example_input=X[:3], **kw)


class _Outer(nn.Module):
    """A user's module: a stem of its own, then a NeuroView network (and optionally a layer after it)."""

    def __init__(self, inner: nn.Module, post: bool = False):
        super().__init__()
        self.pre, self.inner = nn.Sequential(nn.Conv2d(1, 1, 1), nn.Tanh()), inner
        self.post = nn.Linear(3, 2) if post else None

    def forward(self, x):
        out = self.inner(self.pre(x))
        return self.post(out) if self.post is not None else out


def _train_head(net: nn.Module, steps: int = 3) -> float:
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.5)
    w0 = net.classifier.weight.detach().clone()
    net.train()
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(net(X), Y).backward()
        opt.step()
    return float((net.classifier.weight - w0).abs().max())


# ----------------------------------------------------------------------------------------------- finding 1
def test_an_outer_wrap_leaves_the_inner_networks_head_trainable():
    alone = _inner()
    assert alone.classifier.weight.requires_grad and _train_head(alone) > 0.01  # what training the inner does
    inner = _inner()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outer = nv.wrap(_Outer(inner, post=True), 2)
        outer(X)
    # the outer decision stops inside the inner network: its `post` is unreached, the inner head is not the outer's
    assert "backbone.post" in outer.unreached
    assert not any(u.startswith("backbone.inner.classifier") for u in outer.unreached), outer.unreached
    assert inner.classifier.weight.requires_grad and inner.classifier.bias.requires_grad
    assert _train_head(inner) > 0.01  # (it stayed exactly where it was: 0.0)
    outer.eval()
    assert torch.allclose(outer.explain(X).logits, outer(X), atol=1e-5)


def test_an_outer_wrap_leaves_a_nested_rnn_network_trainable():
    torch.manual_seed(0)
    rnn = nv.NeuroViewRNN(nn.GRU(2, 3, batch_first=True), num_classes=2, max_len=36)

    class StemThenRnn(nn.Module):  # the outer's only site is `act`: the RNN after it is no part of its decision
        def __init__(self):
            super().__init__()
            self.conv, self.act, self.rnn = nn.Conv2d(1, 2, 3), nn.ReLU(), rnn

        def forward(self, x):
            return self.rnn(self.act(self.conv(x)).flatten(2).transpose(1, 2))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outer = nv.wrap(StemThenRnn(), 2, example_input=X[:4])
    assert [s.name for s in outer.sites] == ["act"]
    assert all(p.requires_grad for p in rnn.parameters()), [n for n, p in rnn.named_parameters() if not p.requires_grad]
    assert not any(u.startswith("backbone.rnn") for u in outer.unreached), outer.unreached


# ----------------------------------------------------------------------------------------------- finding 4
def test_training_the_outer_network_leaves_the_inner_heads_statistics_alone():
    inner = _inner().eval()
    want = inner.explain(X).logits.clone()
    before = {k: v.clone() for k, v in inner.state_dict().items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outer = nv.NeuroViewCNN(_Outer(inner, post=True), num_classes=2)
        outer(X)
    assert outer._stop == "inner.norm"  # the outer decision ends where the inner head starts, in either mode
    ran: list = []
    outer.backbone.post.register_forward_pre_hook(lambda m, a: ran.append(m.training))
    outer.eval()(X)
    outer.train()
    with torch.no_grad():
        outer(X)
    logits = outer(X)
    logits.sum().backward()  # the outer trains as before
    assert logits.shape == (16, 2) and outer.classifier.weight.grad is not None
    assert ran == []  # what comes after the inner network runs in neither mode
    changed = [k for k, v in inner.state_dict().items() if not torch.equal(v, before[k])]
    assert changed == [], changed  # its CodeNorm's running statistics moved: 0.02 on its explanations
    inner.eval()
    assert torch.equal(inner.explain(X).logits, want)
    assert float(before["norm.num_batches_tracked"]) == 0
    # trained alone, the inner network still normalizes its own codes (its norm runs in its own pass)
    inner.train()
    with torch.no_grad():
        inner(X)
    assert int(inner.norm.num_batches_tracked) == 1
    outer.eval()
    assert torch.allclose(outer.explain(X).logits, outer(X), atol=1e-5)


def test_a_lazy_network_held_as_a_layer_finds_its_sites_inside_the_outer_wraps_first_batch():
    # (zoo CNNs are lazy) its own search and reach passes ran inside the outer's first search pass only: "x: the
    # backbone calls other modules for 3 samples than for 2"
    torch.manual_seed(0)
    inner = nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU()), num_classes=3)
    ref = _inner()  # the same backbone, built alone
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outer = nv.wrap(_Outer(inner), 2)
        outer(X)
    assert [(s.name, s.channels) for s in outer.sites] == [("pre.1", 1), ("inner.backbone.1", 4), ("inner.backbone.3", 4)]
    assert [s.name for s in inner.sites] == ["1", "3"] and outer._stop == "inner.norm" and outer.unreached == []
    h = outer.backbone.pre(X)
    assert torch.allclose(outer.codes(X)[:, 1:], ref.codes(h)) and torch.allclose(inner.codes(h), ref.codes(h))
    before = {k: v.clone() for k, v in inner.state_dict().items()}
    outer.train()
    with torch.no_grad():
        outer(X)
    assert all(torch.equal(v, before[k]) for k, v in inner.state_dict().items())
    assert inner.classifier.weight.requires_grad


# ----------------------------------------------------------------------------------------------- finding 3
def _bb(head: bool = False) -> nn.Sequential:
    torch.manual_seed(0)
    layers = [nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers, *([nn.Flatten(), nn.Linear(180, 3)] if head else []))


def _monitor(call, seen: list):
    busy: list = []

    def hook(module, args, output):
        if not busy:  # its own pass runs this layer too
            busy.append(1)
            try:
                seen.append(call())
            finally:
                busy.pop()
    return hook


@pytest.mark.parametrize("head", [False, True])  # with a head, the monitor's pass leaves the backbone by StopForward
def test_a_monitor_hook_calling_a_network_of_the_backbone_leaves_a_lazy_networks_first_batch_alone(head):
    x, x2 = torch.rand(4, 1, 6, 6), torch.rand(4, 1, 6, 6)
    ref = nv.wrap(_bb(head), 3)
    ref(x)
    want, want2 = ref.codes(x), ref.codes(x2)

    def first_batch_beside(built_other: bool):  # the lazy `net`'s first batch, a monitor on bb[1] calling a network
        bb, seen = _bb(head), []
        other = nv.wrap(bb, 3, input_shape=(1, 6, 6)).eval() if built_other else None
        net = nv.wrap(bb, 3)
        h = bb[1].register_forward_hook(_monitor(lambda: (net if other is None else other).codes(x2), seen))
        try:
            net(x)
        finally:
            h.remove()
        assert [(s.name, s.channels) for s in net.sites] == [("1", 4), ("3", 5)]
        assert net.unreached == (["backbone.5"] if head else [])
        assert seen and all(torch.allclose(s, want2) for s in seen)
        assert torch.allclose(net.codes(x), want)

    first_batch_beside(False)  # A: the network itself (was: the backbone calls other modules for 3 samples than 2)
    first_batch_beside(True)  # B: another network of the backbone, built already (was: the activation '3' runs
    # inside the activation '1')


def test_a_pre_hook_on_the_backbone_calling_a_network_of_it_is_no_part_of_the_search():
    x, x2 = torch.rand(4, 1, 6, 6), torch.rand(4, 1, 6, 6)
    bb, seen = _bb(), []
    other = nv.wrap(bb, 3, input_shape=(1, 6, 6)).eval()
    want2 = other.codes(x2)
    busy: list = []

    def pre(module, args):
        if not busy:
            busy.append(1)
            try:
                seen.append(other.codes(x2))
            finally:
                busy.pop()
    h = bb.register_forward_pre_hook(pre)
    try:
        net = nv.wrap(bb, 3, example_input=x)
    finally:
        h.remove()
    assert [(s.name, s.channels) for s in net.sites] == [("1", 4), ("3", 5)]
    assert seen and all(torch.allclose(s, want2) for s in seen)


# ----------------------------------------------------------------------------------------------- finding 2
POOL = ThreadPoolExecutor(2)


class _Branchy(nn.Module):
    def __init__(self, threaded: bool):
        super().__init__()
        self.threaded = threaded
        self.stem, self.stem_act = nn.Conv2d(1, 4, 3), nn.ReLU()
        self.a, self.a_act = nn.Conv2d(4, 3, 1), nn.ReLU()
        self.b, self.b_act = nn.Conv2d(4, 5, 1), nn.ReLU()
        self.head_conv, self.head_act = nn.Conv2d(8, 6, 1), nn.ReLU()

    def forward(self, x):
        h = self.stem_act(self.stem(x))
        fa, fb = (lambda: self.a_act(self.a(h))), (lambda: self.b_act(self.b(h)))
        if self.threaded:
            ra, rb = POOL.submit(fa), POOL.submit(fb)
            pa, pb = ra.result(), rb.result()
        else:
            pa, pb = fa(), fb()
        return self.head_act(self.head_conv(torch.cat([pa, pb], 1)))


def test_branches_run_on_worker_threads_are_refused_by_name_at_the_site_search():
    torch.manual_seed(0)
    inline = nv.wrap(_Branchy(False), 3, example_input=X[:4])
    assert inline.num_units == 4 + 3 + 5 + 6  # every branch read when they run in the calling thread
    torch.manual_seed(0)
    with pytest.raises(ValueError, match=r"backbone: the activations \['a_act', 'b_act'\] ran on another thread during "
                                         r"the backbone's pass .*run those branches in the calling thread, or pass "
                                         r"layers=\[\.\.\.\]"):
        nv.wrap(_Branchy(True), 3, example_input=X[:4])  # (sites ['stem_act', 'head_act'], 10 of 18 units, unsaid)
    torch.manual_seed(0)
    named = nv.wrap(_Branchy(True), 3, example_input=X[:4], layers=["stem_act", "head_act"])  # the fix it names
    assert [s.name for s in named.sites] == ["stem_act", "head_act"] and named.num_units == 10


# ------------------------------------------------------------------ review of the nested/threads commit (rev16), 1, 2, 5
class _MultiScale(nn.Module):
    """A multi-scale backbone: its forward calls itself once, on a coarser copy of its input."""

    def __init__(self):
        super().__init__()
        self.conv, self.act = nn.Conv2d(3, 3, 3, padding=1), nn.ReLU()

    def forward(self, x):
        y = self.act(self.conv(x))
        if x.shape[-1] > 8:
            y = y + nn.functional.interpolate(self(nn.functional.avg_pool2d(x, 2)), size=x.shape[-2:])
        return y


def test_a_backbone_whose_forward_calls_itself_is_one_pass_with_both_calls_sites():
    torch.manual_seed(0)
    bb, x = _MultiScale(), torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    net = nv.wrap(bb, 2, example_input=x[:2]).eval()
    assert [(s.name, s.channels) for s in net.sites] == [("act", 3), ("act:1", 3)] and net.num_units == 6
    with torch.no_grad():  # hard codes by hand: the on-share of each channel, at the full scale, then the coarse one
        want = torch.cat([(bb.conv(x) > 0).float().mean((2, 3)), (bb.conv(nn.functional.avg_pool2d(x, 2)) > 0).float().mean((2, 3))], 1)
        assert torch.allclose(net.codes(x), want)
        assert net(x).shape == (4, 2)


def test_a_hook_calling_a_network_of_a_recursive_backbone_is_still_no_part_of_its_search():
    torch.manual_seed(0)
    bb, x = _MultiScale(), torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    other, seen = nv.wrap(bb, 2, example_input=x[:2]).eval(), []
    h = bb.conv.register_forward_hook(_monitor(lambda: other.codes(x[:1]), seen))
    try:
        net = nv.wrap(bb, 2, example_input=x[:2])
    finally:
        h.remove()
    assert [s.name for s in net.sites] == ["act", "act:1"] and seen


def test_another_thread_serving_a_network_of_part_of_the_backbone_does_not_refuse_the_wrap():
    import threading
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU())
    part = nv.wrap(m[:2], 3, example_input=X[:2]).eval()  # its backbone is a piece of m: it calls m[1] too
    served: list = []

    def serve(module, args, output):  # while m's search runs, another thread serves `part` (m[1] runs there)
        t = threading.Thread(target=lambda: served.append(part.codes(X[:2])))
        t.start()
        t.join()
    h = m[2].register_forward_hook(serve)
    try:
        net = nv.wrap(m, 3, example_input=X[:4])  # ValueError: the activation ['1'] ran on another thread
    finally:
        h.remove()
    assert [(s.name, s.channels) for s in net.sites] == [("1", 4), ("3", 4)] and len(served) >= 2
    with torch.no_grad():
        assert torch.allclose(served[0], (m[0](X[:2]) > 0).float().mean((2, 3)))


def test_an_eval_forward_checks_the_plain_head_once(monkeypatch):
    import neuroview.core.head as head
    net, calls = _inner().eval(), []
    real = head.plain_head
    monkeypatch.setattr(head, "plain_head", lambda *a: (calls.append(1), real(*a))[1])
    with torch.no_grad():
        net(X[:2])
    assert len(calls) == 1
