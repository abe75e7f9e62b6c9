"""NeuroView-RNN: exact per-step explanations, variable length, layer-by-layer equivalence, errors."""

import copy
import io

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import neuroview as nv
from neuroview.core.explanation import RNNExplanation

KINDS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


@pytest.fixture(autouse=True)
def _one_thread():
    # Tensors here are tiny: a second OpenMP thread only adds start-up and, on a busy machine,
    # spin-wait time (oneDNN's LSTM went from ms to seconds per call on 2 shared cores).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _warm(net, x, lengths=None, steps=3):
    """A few train-mode passes so the folded normalization is not the identity."""
    net.train()
    with torch.no_grad():
        for _ in range(steps):
            net(x * 2 + 0.5, lengths)
    return net.eval()


def _data(b, t, f, *, batch_first, ragged, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, t, f, generator=g)
    lengths = torch.randint(1, t + 1, (b,), generator=g) if ragged else None
    if ragged:
        lengths[0] = t  # a full-length one too
        lengths[1] = 1
    return (x if batch_first else x.transpose(0, 1)), lengths


# ------------------------------------------------------------------ closed form
def test_closed_form_hand_set_weights():
    # h_t = relu(x_t + 0.5 h_{t-1}): for x = (1, 2, 0) the states are 1, 2.5, 1.25
    rnn = nn.RNN(1, 1, nonlinearity="relu", bias=False, batch_first=True)
    with torch.no_grad():
        rnn.weight_ih_l0.fill_(1.0)
        rnn.weight_hh_l0.fill_(0.5)
    net = nv.NeuroViewRNN(rnn, 2, max_len=4, normalize=False)
    with torch.no_grad():
        net.classifier.weight.copy_(torch.tensor([[1.0, 2.0, 3.0, 4.0], [-1.0, 0.0, 1.0, 10.0]]))
        net.classifier.bias.copy_(torch.tensor([0.5, -0.5]))
    x = torch.tensor([[[1.0], [2.0], [0.0], [7.0]]])
    exp = net.explain(x, lengths=torch.tensor([3]))
    h = torch.tensor([1.0, 2.5, 1.25, 0.0])  # step 3 is padding: exactly 0
    want = torch.stack([net.classifier.weight[0] * h, net.classifier.weight[1] * h])
    assert isinstance(exp, RNNExplanation)
    assert exp.contributions.shape == (1, 2, 1, 1, 4, 1)
    assert torch.equal(exp.contributions[0, :, 0, 0, :, 0], want)
    assert torch.equal(exp.time_importance[0], want)
    assert torch.allclose(exp.logits[0], torch.tensor([1 + 5 + 3.75 + 0.5, -1 + 1.25 - 0.5]))
    assert exp.lengths.tolist() == [3]


def test_closed_form_folded_normalization():
    rnn = nn.RNN(1, 1, nonlinearity="relu", bias=False, batch_first=True)
    with torch.no_grad():
        rnn.weight_ih_l0.fill_(1.0)
        rnn.weight_hh_l0.fill_(0.0)
    net = nv.NeuroViewRNN(rnn, 2, max_len=2).eval()
    with torch.no_grad():
        net.classifier.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, -1.0]]))
        net.classifier.bias.zero_()
        net.norm.running_mean.copy_(torch.tensor([1.0, 2.0]))
        net.norm.running_var.copy_(torch.tensor([4.0, 16.0]) - net.norm.eps)
    w, b = net.effective_classifier()
    assert torch.allclose(w, torch.tensor([[0.5, 0.5], [1.5, -0.25]]))
    assert torch.allclose(b, torch.tensor([-0.5 - 1.0, -1.5 + 0.5]))
    # A padded step contributes 0; its mean shift stays in the (input-independent) bias.
    exp = net.explain(torch.tensor([[[3.0], [9.0]]]), lengths=torch.tensor([1]))
    assert torch.equal(exp.time_importance[0], torch.tensor([[1.5, 0.0], [4.5, 0.0]]))
    assert torch.allclose(exp.logits[0], torch.tensor([1.5 - 1.5, 4.5 - 1.0]))
    assert exp.residual().abs().max() < 1e-6


# ------------------------------------------------------------------ exactness
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("ragged", [False, True])
def test_explain_is_exact(kind, layers, bidirectional, batch_first, ragged):
    torch.manual_seed(layers)
    rnn = KINDS[kind](3, 4, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first, dropout=0.2 if layers > 1 else 0.0)
    net = nv.NeuroViewRNN(rnn, 3, max_len=9)
    x, lengths = _data(5, 7, 3, batch_first=batch_first, ragged=ragged)
    _warm(net, x, lengths)
    exp = net.explain(x, lengths=lengths)
    d = 2 if bidirectional else 1
    assert exp.contributions.shape == (5, 3, layers, d, 9, 4)
    assert exp.time_importance.shape == (5, 3, 9)
    assert exp.layer_time().shape == (5, 3, layers, 9)
    assert exp.direction_time().shape == (5, 3, layers, d, 9)
    with torch.no_grad():  # same ops in eval mode: bit for bit (with grad on, oneDNN may round differently)
        assert torch.equal(exp.logits, net(x, lengths))
    assert torch.allclose(exp.logits, net(x, lengths), atol=1e-6)
    assert exp.residual().abs().max() < 1e-5
    assert torch.allclose(exp.time_importance.sum(-1) + exp.bias, exp.logits, atol=1e-5)
    assert torch.allclose(exp.layer_time().sum(2), exp.time_importance, atol=1e-6)
    steps = torch.arange(9)
    lengths = torch.full((5,), 7) if lengths is None else lengths
    padded = steps[None] >= lengths[:, None]  # [B, T], includes steps 7, 8 past T
    assert (exp.contributions.permute(0, 4, 1, 2, 3, 5)[padded] == 0).all()
    assert (exp.time_importance.transpose(1, 2)[padded] == 0).all()


@pytest.mark.parametrize("kind", list(KINDS))
def test_padded_steps_change_nothing(kind):
    torch.manual_seed(0)
    net = _warm(nv.NeuroViewRNN(KINDS[kind](2, 5, num_layers=2, bidirectional=True, batch_first=True), 2, max_len=12),
                torch.randn(6, 12, 2))
    x = torch.randn(3, 8, 2)
    lengths = torch.tensor([8, 5, 2])
    junk = x.clone()
    for i, n in enumerate(lengths):
        junk[i, n:] = float("nan") if i == 1 else 1e3  # padding may hold anything
    longer = torch.cat([junk, torch.full((3, 4, 2), 5.0)], 1)  # more padding, still <= max_len
    ref = net.explain(x, lengths=lengths)
    for other in (junk, longer):
        got = net.explain(other, lengths=lengths)
        assert torch.allclose(got.logits, ref.logits, atol=1e-6)
        assert torch.allclose(got.contributions, ref.contributions, atol=1e-6)
    # each sequence alone, unpadded, gives the same explanation
    for i, n in enumerate(lengths):
        alone = net.explain(x[i : i + 1, :n])
        assert torch.allclose(alone.contributions[0], ref.contributions[i], atol=1e-6)


def test_packed_sequence_input_matches_lengths():
    torch.manual_seed(0)
    rnn = nn.LSTM(3, 4, num_layers=2, bidirectional=True)  # [T, B, F]
    net = _warm(nv.NeuroViewRNN(rnn, 2, max_len=10), torch.randn(10, 4, 3))
    x, lengths = torch.randn(6, 4, 3), torch.tensor([6, 3, 1, 5])
    packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
    a, b = net.explain(packed), net.explain(x, lengths=lengths)
    assert torch.allclose(a.contributions, b.contributions, atol=1e-6)
    assert torch.equal(a.lengths.cpu(), lengths)
    assert torch.allclose(net(packed), net(x, lengths), atol=1e-6)


# ------------------------------------------------------------------ same computation as the original
@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("ragged", [False, True])
def test_layers_reproduce_multilayer_lstm(ragged):
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 6, num_layers=3, bidirectional=True, batch_first=True, proj_size=4, dropout=0.5).eval()
    net = nv.NeuroViewRNN(lstm, 2, max_len=8).eval()
    x, lengths = _data(4, 8, 3, batch_first=True, ragged=ragged)
    h = net.features(x, lengths)  # [B, L, D, T, H]
    assert h.shape == (4, 3, 2, 8, 4)
    if ragged:
        from torch.nn.utils.rnn import pad_packed_sequence

        out = pad_packed_sequence(lstm(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))[0],
                                  batch_first=True, total_length=8)[0]
    else:
        out = lstm(x)[0]  # [B, T, D * H]: the last layer only
    last = h[:, -1].transpose(1, 2).reshape(4, 8, 8)
    assert torch.allclose(last, out, atol=1e-6)
    # the first layer is what a one-layer LSTM with the same weights computes
    one = nn.LSTM(3, 6, bidirectional=True, batch_first=True, proj_size=4)
    one.load_state_dict({k: v for k, v in lstm.state_dict().items() if "_l0" in k})
    first = net.features(x)[:, 0].transpose(1, 2).reshape(4, 8, 8)
    assert torch.allclose(first, one(x)[0], atol=1e-6)


def test_wrap_shares_weights_and_trains():
    gru = nn.GRU(2, 4, num_layers=2, dropout=0.3, batch_first=True)
    net = nv.wrap(gru, num_classes=3, max_len=6)
    assert isinstance(net, nv.NeuroViewRNN) and net.unwrap() is gru
    assert {id(p) for p in gru.parameters()} <= {id(p) for p in net.parameters()}
    net.train()
    loss = net(torch.randn(5, 6, 2), torch.tensor([6, 2, 3, 6, 1])).logsumexp(1).mean()
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in gru.parameters())
    assert gru.weight_ih_l1.grad.abs().sum() > 0


# ------------------------------------------------------------------ global importance
def test_time_importance_global():
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(2, 3, num_layers=2, bidirectional=True, batch_first=True), 4, max_len=5)
    _warm(net, torch.randn(8, 5, 2))
    w = net.effective_classifier()[0].reshape(4, 2, 2, 5, 3)
    assert torch.allclose(net.time_importance(), w.square().sum((1, 2, 4)).sqrt())
    assert torch.allclose(net.time_importance(per_layer=True), w.square().sum((2, 4)).sqrt())
    assert torch.allclose(net.time_importance("sum"), w.sum((1, 2, 4)))
    assert torch.allclose(net.time_importance("abs", per_layer=True), w.abs().sum((2, 4)))
    assert net.time_importance(per_layer=True).shape == (4, 2, 5)
    with pytest.raises(ValueError, match="reduce"):
        net.time_importance("max")


def test_learns_the_step_that_decides():
    # The class is the sign of step 3 of 10; the per-step weights must single it out.
    torch.manual_seed(0)
    x = torch.randn(256, 10, 1)
    y = (x[:, 3, 0] > 0).long()
    net = nv.NeuroViewRNN(nn.GRU(1, 8, batch_first=True), 2, max_len=10)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(60):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    net.eval()
    assert (net(x).argmax(1) == y).float().mean() > 0.95
    assert net.time_importance().sum(0).argmax().item() == 3
    exp = net.explain(x[:32])
    assert (exp.for_class().abs().sum((1, 2, 4)).argmax(-1) == 3).float().mean() > 0.8


# ------------------------------------------------------------------ standard counterpart
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("bidirectional", [False, True])
def test_standard_counterpart_last_state(kind, bidirectional):
    torch.manual_seed(0)
    rnn = KINDS[kind](3, 4, num_layers=2, bidirectional=bidirectional, batch_first=True)
    std = nv.RNNClassifier(rnn, 3).eval()
    x, lengths = _data(5, 7, 3, batch_first=True, ragged=True)
    got = std.last_state(x, lengths)
    assert got.shape == (5, 4 * (2 if bidirectional else 1))
    h = nv.NeuroViewRNN(rnn, 3, max_len=7).features(x, lengths)[:, -1]  # [B, D, T, H]
    want = [h[torch.arange(5), 0, lengths - 1]] + ([h[:, 1, 0]] if bidirectional else [])
    assert torch.allclose(got, torch.cat(want, -1), atol=1e-6)
    for i, n in enumerate(lengths):  # each sequence alone, unpadded
        assert torch.allclose(std(x[i : i + 1, :n]), std(x, lengths)[i : i + 1], atol=1e-5)


# ------------------------------------------------------------------ user modules
class _Conv(nn.Module):
    """A causal per-step encoder that is not an nn.RNN: [B, T, F] -> [B, T, H]."""

    input_size = 2

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 5, 3, padding=2)

    def forward(self, x):
        return torch.tanh(self.conv(x.transpose(1, 2))[..., : x.shape[1]]).transpose(1, 2)


class _Stacked(nn.Module):
    """Returns [B, T, L, D, H] and honours lengths."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.GRU(3, 4, batch_first=True), nn.GRU(4, 4, batch_first=True)

    def forward(self, x, lengths=None):
        h1 = self.a(x)[0]
        return torch.stack([h1, self.b(h1)[0]], 2)[:, :, :, None]


def test_user_module_protocol():
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(_Conv(), 2, max_len=6)
    assert net.feature_shape == (1, 1, 6, 5)
    x = torch.randn(4, 6, 2)
    _warm(net, x)
    exp = net.explain(x, lengths=torch.tensor([6, 4, 3, 1]))
    assert exp.residual().abs().max() < 1e-5 and exp.time_importance[3, :, 1:].eq(0).all()
    net2 = nv.NeuroViewRNN(_Stacked(), 3, max_len=5, input_size=3)
    assert net2.feature_shape == (2, 1, 5, 4)
    exp2 = net2.explain(torch.randn(2, 5, 3), lengths=torch.tensor([5, 2]))
    assert exp2.residual().abs().max() < 1e-5
    assert nv.RNNClassifier(_Stacked(), 3, input_size=3)(torch.randn(2, 5, 3)).shape == (2, 3)


def test_user_module_errors():
    with pytest.raises(ValueError, match="input_size"):
        nv.NeuroViewRNN(nn.Linear(3, 4), 2, max_len=5)
    with pytest.raises(TypeError, match="cell"):
        nv.NeuroViewRNN(nn.GRUCell(3, 4), 2, max_len=5, input_size=3)


class _Flat(nn.Module):
    def forward(self, x):
        return x.mean(1)


def test_user_module_bad_output():
    with pytest.raises(ValueError, match=r"rnn: expected its forward to return per-step hidden states"):
        nv.NeuroViewRNN(_Flat(), 2, max_len=5, input_size=3)


# ------------------------------------------------------------------ errors
@pytest.fixture
def gru_net():
    return nv.NeuroViewRNN(nn.GRU(3, 4, batch_first=True), 2, max_len=6)


def test_errors_input(gru_net):
    x = torch.randn(2, 6, 3)
    with pytest.raises(ValueError, match=r"x: expected 3 features .* got shape \(2, 6, 4\)"):
        gru_net(torch.randn(2, 6, 4))
    with pytest.raises(ValueError, match=r"x: expected a tensor of rank 3"):
        gru_net(torch.randn(6, 3))
    with pytest.raises(ValueError, match=r"x: sequences have 7 steps, more than max_len=6"):
        gru_net(torch.randn(2, 7, 3))
    with pytest.raises(ValueError, match=r"x: a sequence has 7 steps, more than max_len=6"):
        gru_net(torch.randn(2, 8, 3), lengths=torch.tensor([7, 2]))
    gru_net(torch.randn(2, 8, 3), lengths=torch.tensor([6, 2]))  # only padding past max_len: fine
    with pytest.raises(ValueError, match=r"lengths: expected values in \[1, 6\].*got min 0"):
        gru_net(x, lengths=torch.tensor([0, 3]))
    with pytest.raises(ValueError, match=r"lengths: expected values in \[1, 6\].*max 9"):
        gru_net(x, lengths=torch.tensor([9, 3]))
    with pytest.raises(ValueError, match=r"lengths: expected an integer tensor of shape \[2\]"):
        gru_net(x, lengths=torch.tensor([3]))
    with pytest.raises(ValueError, match=r"lengths: expected an integer tensor"):
        gru_net(x, lengths=torch.tensor([3.0, 2.0]))
    bad = x.clone()
    bad[1, 2, 0] = float("nan")
    with pytest.raises(ValueError, match=r"x: contains NaN or Inf in its valid steps \(1 of 36 values\)"):
        gru_net(bad)
    with pytest.raises(ValueError, match=r"x: contains NaN"):
        gru_net.explain(bad, lengths=torch.tensor([6, 3]))
    gru_net(bad, lengths=torch.tensor([6, 2]))  # NaN only in padding: fine
    with pytest.raises(TypeError, match=r"x: expected a torch.Tensor"):
        gru_net(x.numpy())
    with pytest.raises(ValueError, match="lengths: a PackedSequence"):
        gru_net(pack_padded_sequence(x, torch.tensor([6, 3]), batch_first=True), lengths=torch.tensor([6, 3]))


def test_errors_construction():
    with pytest.raises(ValueError, match="max_len: expected a positive int"):
        nv.NeuroViewRNN(nn.GRU(3, 4), 2, max_len=0)
    with pytest.raises(TypeError, match="max_len"):
        nv.NeuroViewRNN(nn.GRU(3, 4), 2)
    with pytest.raises(ValueError, match="num_classes: expected an int >= 2"):
        nv.NeuroViewRNN(nn.GRU(3, 4), 1, max_len=5)
    with pytest.raises(ValueError, match="batch_first"):
        nv.NeuroViewRNN(nn.GRU(3, 4), 2, max_len=5, batch_first=True)
    net = nv.NeuroViewRNN(nn.GRU(3, 4), 2, max_len=5)
    with pytest.raises(TypeError, match="already a NeuroViewRNN"):
        nv.NeuroViewRNN(net, 2, max_len=5)


# ------------------------------------------------------------------ module plumbing
def test_state_dict_deepcopy_dtype_and_mode():
    torch.manual_seed(0)
    make = lambda: nv.NeuroViewRNN(nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True), 2, max_len=6)
    net = _warm(make(), torch.randn(4, 6, 3))
    x, lengths = torch.randn(3, 6, 3), torch.tensor([6, 4, 1])
    ref = net(x, lengths)
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    buf.seek(0)
    other = make()
    other.load_state_dict(torch.load(buf))
    assert torch.equal(other.eval()(x, lengths), ref)
    twin = copy.deepcopy(net)
    assert torch.equal(twin(x, lengths), ref)
    with torch.no_grad():
        twin.rnn.weight_ih_l1.zero_()  # the copy has its own weights
    assert torch.equal(net(x, lengths), ref) and not torch.equal(twin(x, lengths), ref)
    wide = copy.deepcopy(net).to(torch.float64)
    exp = wide.explain(x.double(), lengths)
    assert exp.contributions.dtype == torch.float64 and exp.residual().abs().max() < 1e-12
    assert torch.allclose(exp.logits.float(), ref, atol=1e-5)
    net.train()
    net.explain(x)
    assert net.training  # explain restores the mode
    assert "max_len=6" in repr(net)


def test_feature_dropout_is_training_only():
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(2, 3, batch_first=True), 2, max_len=5, dropout=0.5)
    x = torch.randn(4, 5, 2)
    _warm(net, x)
    exp = net.explain(x)
    assert exp.residual().abs().max() < 1e-5
    with torch.no_grad():
        assert torch.equal(net.eval()(x), exp.logits)
        assert not torch.allclose(net.train()(x), net.train()(x))
    std = nv.RNNClassifier(nn.GRU(2, 3, batch_first=True), 2, dropout=0.5).eval()
    assert torch.equal(std(x), std(x))
    with pytest.raises(ValueError, match=r"dropout: expected a probability in \[0, 1\), got 1.0"):
        nv.NeuroViewRNN(nn.GRU(2, 3), 2, max_len=5, dropout=1.0)


# ---------------------------------------------------------------------- windows
def test_window_closed_form():
    # window 2: h_k = relu(x_2k + 10 x_2k+1 + 0.5 h_k-1); x = (1, 2, 3 | padding): windows (1, 2), (3, 0)
    rnn = nn.RNN(2, 1, nonlinearity="relu", bias=False, batch_first=True)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.tensor([[1.0, 10.0]]))
        rnn.weight_hh_l0.fill_(0.5)
    net = nv.NeuroViewRNN(rnn, 2, max_len=5, normalize=False, window=2)
    assert (net.input_size, net.steps, net.feature_shape) == (1, 3, (1, 1, 3, 1))
    with torch.no_grad():
        net.classifier.weight.copy_(torch.tensor([[1.0, 2.0, 3.0], [0.0, -1.0, 5.0]]))
        net.classifier.bias.zero_()
    x = torch.tensor([[[1.0], [2.0], [3.0], [99.0], [99.0]]])
    exp = net.explain(x, lengths=torch.tensor([3]))
    h = torch.tensor([21.0, 3 + 10.5, 0.0])  # the third window lies past the sequence: exactly 0
    assert torch.equal(exp.time_importance[0, 0], torch.tensor([1.0, 2.0, 3.0]) * h)
    assert exp.lengths.tolist() == [2]
    assert torch.allclose(exp.logits, net(x, torch.tensor([3])))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_window_equals_folding_by_hand(kind):
    # a windowed network is the plain one fed [B, T / w, w * F]: same weights, same logits
    torch.manual_seed(0)
    rnn = KINDS[kind](2 * 3, 5, batch_first=True, bidirectional=True)
    win = _warm(nv.NeuroViewRNN(rnn, 3, max_len=12, window=3), torch.randn(4, 12, 2))
    plain = nv.NeuroViewRNN(rnn, 3, max_len=4)
    plain.load_state_dict(dict(win.state_dict()))  # a plain dict carries no record: the folding is deliberate
    plain.eval()
    x = torch.randn(4, 12, 2)
    assert torch.allclose(win(x), plain(x.reshape(4, 4, 6)), atol=1e-6)
    exp = win.explain(x, torch.tensor([12, 7, 3, 1]))
    assert torch.allclose(exp.contributions.flatten(2).sum(-1) + exp.bias, exp.logits, atol=1e-5)
    assert exp.lengths.tolist() == [4, 3, 1, 1]
    std, std_plain = nv.RNNClassifier(rnn, 3, window=3), nv.RNNClassifier(rnn, 3)
    std_plain.load_state_dict(dict(std.state_dict()))
    lengths = torch.tensor([12, 7, 3, 1])
    x = torch.where(torch.arange(12)[None, :, None] < lengths[:, None, None], x, 0.0)  # what the window reads past the end
    assert torch.allclose(std(x, lengths), std_plain(x.reshape(4, 4, 6), torch.tensor([4, 3, 1, 1])), atol=1e-6)


def test_window_errors():
    with pytest.raises(ValueError, match=r"window: the RNN's input_size \(5\).*window=2"):
        nv.NeuroViewRNN(nn.GRU(5, 4), 2, max_len=10, window=2)
    with pytest.raises(ValueError, match="window: expected a positive int"):
        nv.RNNClassifier(nn.GRU(4, 4), 2, window=0)
    net = nv.NeuroViewRNN(nn.GRU(4, 4, batch_first=True), 2, max_len=10, window=2)
    with pytest.raises(ValueError, match="x: expected 2 features"):
        net(torch.randn(1, 10, 4))
    with pytest.raises(ValueError, match="more than max_len=10"):
        net(torch.randn(1, 11, 2))
