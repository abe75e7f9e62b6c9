"""Probe s20 faults in the head's fold and the site search.

- ``effective_classifier()`` handed back the classifier's live Parameters when the head has no normalization
  (``normalize=False``, the ``nv_gru.*`` zoo entries): editing "the effective weights" edited the network. Its first
  fix detached them, which cut a user's penalty on them off the classifier (review R1-1): a copy that keeps the graph.
- A first batch that requires grad (2 samples, or copies of one) had torch warn "Converting a tensor with
  requires_grad=True to a scalar" at the site search's own line.
- An ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` running after the last activation site (a CRNN) was cut off the decision
  and frozen without a word, where a functional ``relu`` in its place is warned of.
  Its first fix judged by the order modules start in (review R1-2..4): an RNN branch, or a CRNN run twice, were cut
  off unsaid, an RNN a nested NeuroViewRNN trains was called frozen, and the advice (``nv.wrap(model.rnn, ...)``)
  dropped the front end. The warning now names the RNNs the reach pass froze, and a route that runs.
  Judged by autograd alone it named a frozen pretrained encoder run under ``torch.no_grad()`` or ``.detach()``ed,
  whose states the sites read by value (review R8-1): each candidate is now checked by value too.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import neuroview as nv


def _cnn(normalize: bool) -> nv.NeuroViewCNN:
    """A 2-unit CNN whose codes are known: conv weight 1, bias 0, one ReLU site, 'none' quantizer (codes = mean ReLU
    output per channel); classifier set by hand to W = [[1, 2], [3, 4], [5, 6]], b = [0.5, -0.5, 1]."""
    conv = nn.Conv1d(1, 2, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[1.0]], [[-1.0]]]))
        conv.bias.zero_()
    bb = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(2, 3))
    net = nv.wrap(bb, 3, quantizer="none", normalize=normalize, example_input=torch.randn(4, 1, 5))
    with torch.no_grad():
        net.classifier.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
        net.classifier.bias.copy_(torch.tensor([0.5, -0.5, 1.0]))
    return net.eval()


W0 = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
B0 = torch.tensor([0.5, -0.5, 1.0])


@pytest.mark.parametrize("normalize", [False, True])
def test_effective_classifier_is_a_copy_that_editing_leaves_the_network_alone(normalize):
    net = _cnn(normalize)
    x = torch.tensor([[[1.0, -2.0, 3.0, 0.0, -1.0]]])
    codes = torch.tensor([[4.0 / 5, 3.0 / 5]])  # mean relu(x), mean relu(-x): known by hand
    before = net(x).clone()
    w, b = net.effective_classifier()
    if not normalize:  # the folded map is the classifier itself: known by hand
        torch.testing.assert_close(before, codes @ W0.T + B0)
        torch.testing.assert_close((w, b), (W0, B0))
    assert w.requires_grad and b.requires_grad  # in the graph: a penalty on them trains the classifier (below)
    assert w.untyped_storage().data_ptr() != net.classifier.weight.untyped_storage().data_ptr()
    assert b.untyped_storage().data_ptr() != net.classifier.bias.untyped_storage().data_ptr()
    w[w.abs() < 4] = 0  # in place, without detach(): allowed on a copy in the graph, and no business of the network
    b.zero_()
    torch.testing.assert_close(net.classifier.weight.detach(), W0)
    torch.testing.assert_close(net.classifier.bias.detach(), B0)
    torch.testing.assert_close(net(x), before)


@pytest.mark.parametrize("normalize", [False, True])
def test_a_penalty_on_the_effective_classifier_trains_the_classifier(normalize):
    """A user's own L1 on the weights the decision uses, plus a sum of the biases: its gradient reaches the classifier.
    Known by hand: without a normalization W' = W, b' = b, so d/dW = sign(W) = 1, d/db = 1. With one (mean mu = [2, -1],
    variance [4, 16]: scale s = 1 / sqrt(var + eps) ~ [1/2, 1/4]) W' = W s, b' = b - W' mu, so
    d/dW[c, u] = s[u] (sign(W[c, u]) - mu[u]) = [-1/2, 1/2] per row, and d/db = 1."""
    net = _cnn(normalize)
    if normalize:
        with torch.no_grad():
            net.norm.running_mean.copy_(torch.tensor([2.0, -1.0]))
            net.norm.running_var.copy_(torch.tensor([4.0, 16.0]))
    w, b = net.effective_classifier()
    (w.abs().sum() + b.sum()).backward()
    want = torch.tensor([-0.5, 0.5]).expand(3, 2) if normalize else torch.ones(3, 2)
    l1 = torch.tensor([0.5, 0.25]).expand(3, 2) if normalize else torch.ones(3, 2)  # d sum|W'| / dW = s sign(W)
    torch.testing.assert_close(net.classifier.weight.grad, want, atol=1e-5, rtol=0)
    torch.testing.assert_close(net.classifier.bias.grad, torch.ones(3))
    # added to the cross-entropy, the penalty moves the gradient (it was silently ignored)
    x, y = torch.tensor([[[1.0, -2.0, 3.0, 0.0, -1.0]]]), torch.tensor([1])
    net.zero_grad()
    nn.functional.cross_entropy(net(x), y).backward()
    ce = net.classifier.weight.grad.clone()
    net.zero_grad()
    w, _ = net.effective_classifier()
    (nn.functional.cross_entropy(net(x), y) + w.abs().sum()).backward()
    torch.testing.assert_close(net.classifier.weight.grad - ce, l1, atol=1e-5, rtol=0)


def test_rnn_effective_classifier_keeps_the_graph_and_shared_steps_too():
    """Without a normalization, d sum(|W'|) / dW = sign(W); with shared_steps W' = W + S / T spread over the steps,
    so the shared part's gradient is sign summed over the T steps of each feature, / T."""
    torch.manual_seed(0)
    net = nv.wrap(nn.GRU(2, 3, batch_first=True), 2, max_len=4, normalize=False, shared_steps=True)
    with torch.no_grad():
        net.classifier.weight.copy_(torch.arange(24.0).reshape(2, 12) / 10 + 0.05)  # all positive
        net.step_shared.weight.zero_()
    w, b = net.effective_classifier()
    (w.abs().sum() + 2 * b.sum()).backward()
    torch.testing.assert_close(net.classifier.weight.grad, torch.ones(2, 12))
    torch.testing.assert_close(net.step_shared.weight.grad, torch.ones(2, 3))  # 4 steps x 1/4
    torch.testing.assert_close(net.classifier.bias.grad, torch.full((2,), 2.0))


def test_eval_mode_decision_still_trains_the_classifier():
    """decide() at eval reads the fold with its gradient (finetune_sparse(mode="eval") trains through it)."""
    net = _cnn(False)
    x = torch.tensor([[[1.0, -2.0, 3.0, 0.0, -1.0]]])
    net(x)[0, 2].backward()  # d logit_2 / dW[2] = codes, d / db[2] = 1
    torch.testing.assert_close(net.classifier.weight.grad, torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.8, 0.6]]))
    torch.testing.assert_close(net.classifier.bias.grad, torch.tensor([0.0, 0.0, 1.0]))


def test_rnn_effective_classifier_is_a_copy_without_normalization():
    torch.manual_seed(0)
    net = nv.wrap(nn.GRU(2, 3, batch_first=True), 2, max_len=4, normalize=False)
    xs = torch.randn(3, 4, 2)
    net(xs)
    net.eval()
    with torch.no_grad():
        net.classifier.weight.copy_(torch.arange(24.0).reshape(2, 12) / 10)
        net.classifier.bias.copy_(torch.tensor([1.0, -1.0]))
    before = net(xs).clone()
    w, b = net.effective_classifier()
    torch.testing.assert_close((w, b), (torch.arange(24.0).reshape(2, 12) / 10, torch.tensor([1.0, -1.0])))
    w.mul_(0.5)
    b.zero_()
    torch.testing.assert_close(net(xs), before)
    torch.testing.assert_close(net.classifier.bias.detach(), torch.tensor([1.0, -1.0]))


@pytest.mark.parametrize("first", ["two", "one", "copies"])
def test_a_first_batch_that_requires_grad_draws_no_torch_warning(first):
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    x = {"two": torch.rand(2, 1, 6, 6), "one": torch.rand(1, 1, 6, 6),
         "copies": torch.rand(1, 1, 6, 6).expand(3, 1, 6, 6).clone()}[first].requires_grad_(True)
    net = nv.wrap(bb, 3, normalize=False)
    was = torch.is_warn_always_enabled()
    torch.set_warn_always(True)  # torch warns of it once a process: every case here, whatever ran before
    try:
        with warnings.catch_warnings(record=True) as got:
            warnings.simplefilter("always")
            out = net(x)
    finally:
        torch.set_warn_always(was)
    assert [str(w.message) for w in got] == []
    out.sum().backward()  # the input's gradient still flows
    assert x.grad is not None and x.grad.shape == x.shape


class _CRNN(nn.Module):
    """A conv front end (one nn.ReLU site), then an RNN doing the sequence modelling, then a Linear head."""

    def __init__(self, rnn: nn.Module, before: nn.Module | None = None):
        super().__init__()
        self.pre = before  # an RNN ahead of the sites, whose states the sites do read
        self.conv, self.act, self.rnn, self.fc = nn.Conv1d(2, 4, 3, padding=1), nn.ReLU(), rnn, nn.Linear(6, 3)

    def forward(self, x):
        if self.pre is not None:
            x = self.pre(x.transpose(1, 2))[0].transpose(1, 2)
        o = self.rnn(self.act(self.conv(x)).transpose(1, 2))[0]
        return self.fc(o[:, -1])


def _wrap(model, **kw):
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        net = nv.wrap(model, 3, **kw)
        net(torch.randn(4, 2, 8))
    return net, [str(w.message) for w in got]


def _cut(said: list[str]) -> list[str]:
    return [s for s in said if "NeuroViewCNN does not read an RNN's states" in s]


def _rnn_said(said: list[str]) -> list[str]:
    """Any warning naming an RNN (the commit's 'runs ... after its last site' and this one's)."""
    return [s for s in said if any(f"({k})" in s for k in ("GRU", "LSTM", "RNN"))]


def _frozen_and_unread(net, rnn: nn.Module, x: torch.Tensor) -> None:
    """What the warning says is so: ``rnn`` is frozen and scrambling its weights leaves the decision alone."""
    assert not any(p.requires_grad for p in rnn.parameters())
    before = net.eval()(x).clone()
    with torch.no_grad():
        for p in rnn.parameters():
            p.normal_()
    torch.testing.assert_close(net(x), before)


@pytest.mark.parametrize("kind", [nn.GRU, nn.LSTM, nn.RNN])
def test_an_rnn_after_the_last_site_is_warned_of_with_a_route_that_runs(kind):
    model = _CRNN(kind(4, 6, batch_first=True))
    net, said = _wrap(model)
    cut = _cut(said)
    assert len(cut) == 1, said
    assert f"the decision reads no state of 'rnn' ({kind.__name__})" in cut[0] and "layers=[...]" in cut[0]
    # the route: NeuroViewRNN over the RNN with its front end as its input, with the real class count
    assert "nv.NeuroViewRNN(m, 3, max_len=...)" in cut[0] and "num_classes" not in cut[0], cut[0]
    assert "front end" in cut[0] and "net.unwrap()" in cut[0] and "nv.wrap(model.rnn" not in cut[0]
    _frozen_and_unread(net, model.rnn, torch.randn(4, 2, 8))
    # followed: the module it describes runs on the model's own series, and the RNN trains in it
    net.unwrap()
    rnet = nv.NeuroViewRNN(_Front(model), 3, max_len=8, input_size=2)
    rnet(torch.randn(4, 8, 2)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.rnn.parameters())
    assert model.conv.weight.grad is not None


class _Front(nn.Module):
    """What the advice asks of the user: the CRNN's front end and its RNN, x [B, T, F] in, the states [B, T, H] out."""

    def __init__(self, crnn: _CRNN):
        super().__init__()
        self.crnn = crnn

    def forward(self, x):
        c = self.crnn
        return c.rnn(c.act(c.conv(x.transpose(1, 2))).transpose(1, 2))[0]


class _TwoBranch(nn.Module):
    """A GRU branch read by no site (it runs first) beside a conv branch, both into one head."""

    def __init__(self):
        super().__init__()
        self.gru, self.conv, self.act, self.fc = nn.GRU(2, 6, batch_first=True), nn.Conv1d(2, 4, 3, padding=1), nn.ReLU(), nn.Linear(10, 3)

    def forward(self, x):
        return self.fc(torch.cat([self.gru(x.transpose(1, 2))[0][:, -1], self.act(self.conv(x)).mean(-1)], 1))


class _Twice(nn.Module):
    """A CRNN feature extractor run on x and on x reversed in time (test-time augmentation): its GRU's first call
    starts before the second call's site."""

    def __init__(self):
        super().__init__()
        self.features, self.fc = _CRNN(nn.GRU(4, 6, batch_first=True)), nn.Identity()
        self.features.fc = nn.Identity()

    def forward(self, x):
        return self.features(x)[:, :3] + self.features(x.flip(-1))[:, :3]


@pytest.mark.parametrize("model, name", [(_TwoBranch, "gru"), (_Twice, "features.rnn")], ids=["branch", "twice"])
def test_an_rnn_cut_off_whatever_its_place_in_the_module_order_is_warned_of(model, name):
    torch.manual_seed(0)
    model = model()
    net, said = _wrap(model)
    cut = _cut(said)
    assert len(cut) == 1 and f"the decision reads no state of '{name}' (GRU)" in cut[0], said
    _frozen_and_unread(net, model.get_submodule(name), torch.randn(4, 2, 8))


class _T(nn.Module):
    def forward(self, x):
        return x.transpose(1, 2)


def test_an_rnn_a_nested_neuroview_rnn_reads_is_not_called_frozen():
    torch.manual_seed(0)
    inner = nv.wrap(nn.GRU(4, 6, batch_first=True), 3, max_len=8)
    net, said = _wrap(nn.Sequential(nn.Conv1d(2, 4, 3, padding=1), nn.ReLU(), _T(), inner))
    assert not _rnn_said(said) and net.frozen == (), said
    assert all(p.requires_grad for p in inner.rnn.parameters())  # it trains: nothing to warn of


def test_an_rnn_inside_a_nested_neuroview_cnn_is_left_to_it():
    """An inner CRNN told its sites (layers=["act"]): the outer default wrap reads only those, and leaves its GRU to it."""
    torch.manual_seed(0)
    model = _CRNN(nn.GRU(4, 6, batch_first=True))
    inner, said = _wrap(model, layers=["act"])
    outer, said = _wrap(nn.Sequential(inner))
    assert not _rnn_said(said), said
    assert not any(p.requires_grad for p in model.rnn.parameters())  # cut off by both: frozen as before


def test_named_sites_silence_it_and_an_rnn_before_the_sites_is_no_finding():
    _, said = _wrap(_CRNN(nn.GRU(4, 6, batch_first=True)), layers=["act"])
    assert not _rnn_said(said), said
    # a GRU ahead of the sites (the sites read its states) and a plain tail: nothing to say
    model = _CRNN(_First(nn.Identity()), before=nn.GRU(2, 2, batch_first=True))
    model.fc = nn.Linear(4, 3)
    net, said = _wrap(model)
    assert not _rnn_said(said), said
    assert all(p.requires_grad for p in model.pre.parameters())


def test_the_rnn_cut_off_is_the_one_named_not_the_first_in_the_model():
    model = _CRNN(nn.LSTM(4, 6, batch_first=True), before=nn.GRU(2, 2, batch_first=True))
    _, said = _wrap(model)
    cut = _cut(said)
    assert len(_rnn_said(said)) == len(cut) == 1, said
    assert "no state of 'rnn' (LSTM)" in cut[0] and "'pre'" not in cut[0], said
    assert all(p.requires_grad for p in model.pre.parameters())


class _First(nn.Module):
    """Returns ``(module(x),)``: a tail shaped like an RNN's output without one."""

    def __init__(self, m: nn.Module):
        super().__init__()
        self.m = m

    def forward(self, x):
        return (self.m(x),)


class _Encoder(nn.Module):
    """A frozen pretrained GRU encoder run the usual ways (under ``torch.no_grad()``, or its output ``.detach()``ed),
    read by one conv + ReLU site: no gradient of the decision reaches the GRU, yet the site reads its states by value.
    ``read``: ``"out"`` (every step's states), ``"h_n"`` (the last hidden state only, the tuple's second item) or
    ``"norm"`` (every step's states through a LayerNorm, which removes any constant added to them)."""

    def __init__(self, mode: str, read: str = "out"):
        super().__init__()
        self.mode, self.read = mode, read
        self.rnn = nn.GRU(2, 8, batch_first=True)
        self.ln = nn.LayerNorm(8)
        self.conv, self.act = nn.Conv1d(8, 6, 3, padding=1), nn.ReLU()
        self.pool, self.fc = nn.AdaptiveAvgPool1d(1), nn.Linear(6, 3)

    def _states(self, x):
        out, h_n = self.rnn(x.transpose(1, 2))
        if self.read == "h_n":  # [1, B, 8] -> [B, 8, 1], repeated over the steps: a per-series code
            return h_n[-1].unsqueeze(-1).expand(-1, -1, x.shape[-1])
        return (self.ln(out) if self.read == "norm" else out).transpose(1, 2)

    def forward(self, x):  # x [B, C, T]
        if self.mode == "no_grad":
            with torch.no_grad():
                h = self._states(x)
        else:  # "detach", or "grad": read as any layer is (the reach pass sees it)
            h = self._states(x).detach() if self.mode == "detach" else self._states(x)
        return self.fc(self.pool(self.act(self.conv(h))).flatten(1))


def _moves_the_decision(net, rnn: nn.Module, x: torch.Tensor) -> float:
    """How far scrambling ``rnn``'s weights moves the logits: its states take part in the decision where it is > 0."""
    before = net.eval()(x).clone()
    with torch.no_grad():
        for p in rnn.parameters():
            p.add_(torch.randn_like(p))
    return (net(x) - before).abs().max().item()


@pytest.mark.parametrize("read", ["out", "h_n", "norm"])
@pytest.mark.parametrize("mode", ["no_grad", "detach"])
@pytest.mark.parametrize("user_froze", [True, False], ids=["user_froze", "trainable"])
def test_a_frozen_encoder_whose_states_the_sites_read_is_not_warned_of(mode, read, user_froze):
    """Review R8-1: judged by autograd only, it was said "no site's units depend on it ... its states take no part in
    the decision", with advice to replace the network. The sites read it by value: scrambling it moves the logits."""
    torch.manual_seed(0)
    model = _Encoder(mode, read)
    if user_froze:
        model.rnn.requires_grad_(False)
    net, said = _wrap(model)
    assert not _rnn_said(said), said
    assert [s.name for s in net.sites] == ["act"]
    assert _moves_the_decision(net, model.rnn, torch.randn(4, 2, 8)) > 1e-3  # what the warning denied


class _NoGradBranch(_TwoBranch):
    """``_TwoBranch`` with its GRU run under ``torch.no_grad()``: still read by no site (only by the head after them)."""

    def forward(self, x):
        with torch.no_grad():
            g = self.gru(x.transpose(1, 2))[0][:, -1]
        return self.fc(torch.cat([g, self.act(self.conv(x)).mean(-1)], 1))


class _NoGradTail(_CRNN):
    """A CRNN whose RNN after the last site runs under ``torch.no_grad()``: no site reads it, whatever grad mode."""

    def forward(self, x):
        a = self.act(self.conv(x)).transpose(1, 2)
        with torch.no_grad():
            o = self.rnn(a)[0]
        return self.fc(o[:, -1])


@pytest.mark.parametrize("model, name", [(_NoGradBranch, "gru"),
                                         (lambda: _NoGradTail(nn.LSTM(4, 6, batch_first=True)), "rnn")],
                         ids=["branch", "tail"])
def test_an_rnn_under_no_grad_that_no_site_reads_is_still_warned_of(model, name):
    torch.manual_seed(0)
    model = model()
    net, said = _wrap(model)
    cut = _cut(said)
    assert len(cut) == 1 and f"the decision reads no state of '{name}'" in cut[0], said
    _frozen_and_unread(net, model.get_submodule(name), torch.randn(4, 2, 8))


def test_the_value_check_leaves_the_caller_s_random_state_and_modes_alone():
    """The check runs the backbone twice more (with a nudge drawn from its own generator), only where an RNN is a
    candidate: the caller's random stream after the wrap is the one a wrap without a candidate leaves."""
    torch.manual_seed(0)
    read = _Encoder("no_grad")
    plain = _Encoder("grad")
    plain.load_state_dict(read.state_dict())
    after = []
    for model in (read, plain):
        model.train()
        torch.manual_seed(1)
        net, said = _wrap(model)
        after.append(torch.rand(3))
        assert not _rnn_said(said) and all(m.training for m in model.modules()), said
    assert torch.equal(*after)
