"""NeuroView-RNN's wrapping routes (nv.wrap, nv.retrofit, the zoo's RNN builders): what a probe found (each failed
before its fix)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import neuroview as nv


class UM(nn.Module):
    """A user recurrent module (NeuroViewRNN's protocol: [B, T, F] -> [B, T, H])."""

    def __init__(self, input_size: int = 2):
        super().__init__()
        self.gru, self.input_size = nn.GRU(input_size, 4, batch_first=True), input_size

    def forward(self, x):
        return self.gru(x)[0]


class Packed(nn.Module):
    """Honours lengths by packing with PyTorch's default enforce_sorted=True: sorted batches only."""

    def __init__(self):
        super().__init__()
        self.gru, self.input_size = nn.GRU(3, 4, batch_first=True, bidirectional=True), 3

    def forward(self, x, lengths):
        p = pack_padded_sequence(x, lengths.cpu(), batch_first=True)
        return pad_packed_sequence(self.gru(p)[0], batch_first=True, total_length=x.shape[1])[0]


class FullOnly(nn.Module):
    """Takes lengths, but fails on any batch with a short series."""

    def __init__(self):
        super().__init__()
        self.gru, self.input_size = nn.GRU(3, 4, batch_first=True, bidirectional=True), 3

    def forward(self, x, lengths):
        if bool((lengths < x.shape[1]).any()):
            raise RuntimeError("no padded batches here")
        return self.gru(x)[0]


class GRUClassifier(nn.Module):
    def __init__(self, act: bool = False):
        super().__init__()
        self.gru, self.act, self.fc = nn.GRU(3, 4, batch_first=True), nn.Tanh() if act else nn.Identity(), nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.act(self.gru(x)[0])[:, -1])


def test_retrofit_of_an_rnn_classifier_over_a_user_module_builds_its_neuroview_rnn():
    """It failed with nv.wrap's 'max_len: a NeuroViewRNN argument ... nn.RNN, nn.LSTM or nn.GRU only'."""
    torch.manual_seed(0)
    std = nv.RNNClassifier(UM(4), num_classes=2, window=2)  # 2 features a sample, 2 samples a step
    x, y = torch.randn(20, 2, 6), torch.arange(20) % 2  # channels-first, as retrofit reads batches
    res = nv.retrofit(std, [(x, y)], [(x, y)], max_len=6)
    assert isinstance(res.model, nv.NeuroViewRNN) and isinstance(res.model.rnn, UM)
    assert res.model.window == 2 and res.model.steps == 3 and res.model.input_size == 2
    assert res.model(x.transpose(1, 2)).shape == (20, 2) and res.standard_acc is not None


def test_a_module_packing_with_enforce_sorted_is_told_to_pass_false_and_a_failing_one_is_reported():
    """The dry run swallowed torch's 'must be sorted' error: the module was refused as 'ignores its lengths ... (a
    backward direction reads it)'. Accepting it on sorted batches (a first fix) left a shuffled loader's batches to
    torch's raw error (the review): it is refused, naming enforce_sorted=False."""
    torch.manual_seed(0)
    x, lengths = torch.randn(3, 6, 3), torch.tensor([6, 4, 2])
    net = nv.NeuroViewRNN(Packed(), 2, max_len=6).eval()
    with pytest.raises(ValueError, match=r"lengths: Packed failed on padded series .*sorted.*needs "
                                         r"pack_padded_sequence\(\.\.\., enforce_sorted=False\)") as e:
        net(x, lengths=lengths)
    assert "backward direction" not in str(e.value)
    failing = nv.NeuroViewRNN(FullOnly(), 2, max_len=6).eval()
    with pytest.raises(ValueError, match=r"lengths: FullOnly failed on padded series .*\(RuntimeError: no padded "
                                         r"batches here\).*give series of one length") as e:
        failing(x, lengths=lengths)
    assert "backward direction" not in str(e.value) and "enforce_sorted" not in str(e.value)


def test_a_hook_or_own_forward_that_fails_on_the_packed_sequence_it_is_handed_is_told_why():
    """A bidirectional one-layer GRU with hooks (or its own forward) got a PackedSequence NeuroViewRNN built, only
    for batches with short series: bare TypeErrors (can't multiply sequence ..., layer_norm(): ... not PackedSequence)."""
    torch.manual_seed(0)
    g = nn.GRU(3, 4, batch_first=True, bidirectional=True)
    g.register_forward_pre_hook(lambda m, args: (args[0] * 0.5,) + tuple(args[1:]))
    net = nv.NeuroViewRNN(g, 2, max_len=6).eval()
    x = torch.randn(3, 6, 3)
    assert net(x, lengths=torch.tensor([6, 6, 6])).shape == (3, 2)  # one length: no packing, the hook runs
    with pytest.raises(TypeError, match=r"rnn: GRU's own forward or a hook on it failed on a PackedSequence \(TypeError: "
                                        r"can't multiply.*accept a PackedSequence, or give series of one length"):
        net(x, lengths=torch.tensor([6, 2, 4]))


@pytest.mark.parametrize("arch", ["gru", "nv_gru"])
def test_zoo_rnn_kwargs_it_sets_itself_are_refused_by_name(arch):
    """batch_first / input_size / nonlinearity on a GRU gave Python's 'got multiple values for keyword argument'."""
    kw = dict(num_classes=3, in_features=3, max_len=10, hidden_size=6)
    with pytest.raises(TypeError, match=r"batch_first: the zoo's gru builders make batch-first RNNs.*got batch_first=False"):
        nv.create_model(arch, batch_first=False, **kw)
    with pytest.raises(TypeError, match=r"input_size: the zoo's gru builders call it in_features.*pass in_features=3"):
        nv.create_model(arch, input_size=3, **kw)
    with pytest.raises(TypeError, match=r"nonlinearity: not an argument of the zoo's gru builders, nor one of nn.GRU's"):
        nv.create_model(arch, nonlinearity="relu", **kw)
    assert nv.create_model(arch, batch_first=True, bias=False, **kw).rnn.bias is False  # what it is anyway: taken
    assert nv.create_model("nv_rnn", nonlinearity="relu", **kw).rnn.nonlinearity == "relu"


def test_wrap_refuses_neuroview_cnn_arguments_for_an_rnn_by_name():
    """'NeuroViewRNN.__init__() got an unexpected keyword argument 'quantizer''."""
    for k, v in (("quantizer", "soft"), ("layers", ["x"]), ("tau", 0.5), ("unit_axis", {"a": 1})):
        with pytest.raises(TypeError, match=rf"{k}: a NeuroViewCNN argument, which a NeuroViewRNN \(of the GRU\) does not "
                                            r"take.*it takes batch_first, dropout, input_size, max_len"):
            nv.wrap(nn.GRU(2, 4), 2, max_len=5, **{k: v})


def test_wrap_of_a_model_holding_an_rnn_points_at_the_rnn_route():
    """A GRU + Linear head went to NeuroViewCNN, whose errors (no activation module, unit_axis) never named the RNN."""
    with pytest.raises(ValueError, match=r"found no activation module.*The model holds an nn.GRU at 'gru', .*wrap it "
                                         r"\(nv.wrap\(model.gru, 2, max_len=...\)\) or use nv.NeuroViewRNN"):
        nv.wrap(GRUClassifier(), 2)
    with pytest.raises(ValueError, match=r"unit_axis: .*The model holds an nn.GRU at 'gru'"):
        nv.wrap(GRUClassifier(act=True), 2, example_input=torch.randn(4, 7, 3))
    lazy = nv.wrap(GRUClassifier(act=True), 2)  # the sites found on the first batch: the same pointer (left at first)
    with pytest.raises(ValueError, match=r"unit_axis: .*The model holds an nn.GRU at 'gru'"):
        lazy(torch.randn(4, 7, 3))
    net = nv.wrap(nn.Sequential(nn.Conv1d(3, 4, 3), nn.ReLU()), 2)  # no RNN inside: as before
    assert type(net).__name__ == "NeuroViewCNN"


def test_wrap_of_a_neuroview_rnn_or_an_rnn_classifier_names_it_and_the_route_that_works():
    """'found no activation module ... F.relu', or (max_len=) a pointer to nv.NeuroViewRNN(model), which refuses."""
    rnn = nv.wrap(nn.GRU(2, 4, batch_first=True), 3, max_len=5)
    for kw in ({}, {"max_len": 5}):
        with pytest.raises(TypeError, match=r"model: already a NeuroViewRNN; wrap its .rnn instead"):
            nv.wrap(rnn, 3, **kw)
    with pytest.raises(TypeError, match=r"model: an RNNClassifier .*nv.wrap\(model.rnn, 3, max_len=..., window=2\).*"
                                        r"nv.retrofit\(model, train, max_len=...\)"):
        nv.wrap(nv.RNNClassifier(nn.GRU(4, 4, batch_first=True), 3, window=2), 3)
    std = nv.RNNClassifier(UM(4), 3, window=2)
    with pytest.raises(TypeError, match=r"nv.NeuroViewRNN\(model.rnn, 3, max_len=..., window=2, input_size=4, "
                                        r"batch_first=True\)") as e:
        nv.wrap(std, 3)
    assert "nv.wrap(model.rnn" not in str(e.value)
    net = nv.NeuroViewRNN(std.rnn, 3, max_len=6, window=2, input_size=4, batch_first=True)  # the route it names works
    assert net(torch.randn(2, 6, 2)).shape == (2, 3)


def test_retrofit_under_inference_mode_fits_an_ordinary_network():
    """PyTorch's bare 'element 0 of tensors does not require grad' from the classifier's fit (a Lightning test loop,
    a user's with block); the network it makes is one later steps can train, as nv.sparsify's and fit_ridge_head's."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(24, 2))
    std = nv.RNNClassifier(nn.GRU(1, 4, batch_first=True), 2)
    x, y = torch.randn(12, 1, 6), torch.arange(12) % 2
    plain = [nv.retrofit(model, [(x, y)], [(x, y)], num_classes=2), nv.retrofit(std, [(x, y)], [(x, y)], max_len=6)]
    with torch.inference_mode():
        xi, yi = x.clone(), y.clone()  # inference tensors
        inside = [nv.retrofit(model, [(xi, yi)], [(xi, yi)], num_classes=2),
                  nv.retrofit(std, [(xi, yi)], [(xi, yi)], max_len=6)]
    for a, b, xx in zip(plain, inside, (x, x.transpose(1, 2))):
        assert (a.neuroview_acc, a.train_acc) == (b.neuroview_acc, b.train_acc)
        torch.testing.assert_close(b.model.classifier.weight, a.model.classifier.weight)
        assert not any(t.is_inference() for t in [*b.model.parameters(), *b.model.buffers()])
        b.model.train().requires_grad_(True)
        nn.functional.cross_entropy(b.model(xx), y).backward()  # trainable afterwards


class LastOnly(nn.GRU):
    """Its own forward returns the last state h_n, not every step's: a protocol error, padded or not."""

    def forward(self, x, hx=None):
        return super().forward(x, hx)[1]


class CRNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.act = nn.Conv1d(2, 4, 3, padding=1), nn.ReLU()
        self.gru, self.fc = nn.GRU(4, 5, batch_first=True), nn.Linear(5, 3)

    def forward(self, x):
        return self.fc(self.gru(self.act(self.conv(x)).transpose(1, 2))[0][:, -1])


def test_the_review_s_messages_say_what_went_wrong():
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(LastOnly(3, 4, batch_first=True, bidirectional=True), 2, max_len=6).eval()
    for lengths in (None, torch.tensor([6, 2, 4])):  # not blamed on the PackedSequence it was handed
        with pytest.raises(ValueError, match=r"rnn: its own forward \(or a hook on it\) returned \(2, 3, 4\)"):
            net(torch.randn(3, 6, 3), lengths=lengths)
    with pytest.raises(TypeError, match=r"maxlen: not an argument of NeuroViewRNN \(did you mean max_len\?\)"):
        nv.wrap(nn.GRU(2, 4), 3, maxlen=5)
    with pytest.raises(ValueError, match=r"tau: expected a positive number, got -1.0$"):  # no RNN hint for an argument
        nv.wrap(CRNN(), 3, tau=-1.0)
