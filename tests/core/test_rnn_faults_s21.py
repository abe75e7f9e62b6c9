"""P2 probe of the NeuroView-RNN wrappers (findings 1, 2, 4, 6, 7, 8): each test failed before its fix.

Known answers come from torch's own modules run apart: ``nn.GRU``'s ``h_n`` of each series run alone at its own
length, a single-layer GRU's output, a state dict loaded into another network.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import neuroview as nv


def _h_n(rnn: nn.RNNBase, x: torch.Tensor, lengths) -> torch.Tensor:
    """``[B, D * H]``: the last layer's final state of each direction, each series run alone at its own length."""
    out = []
    for i, n in enumerate(lengths):
        state = rnn(x[i:i + 1, :n])[1]
        h = state[0] if isinstance(state, tuple) else state  # LSTM: (h_n, c_n)
        d = 2 if rnn.bidirectional else 1
        out.append(h[-d:, 0].reshape(-1))
    return torch.stack(out)


# ------------------------------------------------------------------- finding 2: net.rnn replaced after wrapping
SWAPS = {
    "two layers": (nn.GRU(2, 4, num_layers=2, batch_first=True), r"num_layers 1 -> 2"),
    "bidirectional": (nn.GRU(2, 4, bidirectional=True, batch_first=True), r"bidirectional False -> True"),
    "time-first": (nn.GRU(2, 4), r"batch_first True -> False"),
    "an LSTM": (nn.LSTM(2, 4, batch_first=True), r"class 'GRU' -> 'LSTM'"),
}


@pytest.mark.parametrize("swap", sorted(SWAPS))
@pytest.mark.parametrize("make", [lambda r: nv.NeuroViewRNN(r, 3, max_len=5), lambda r: nv.RNNClassifier(r, 3)],
                         ids=["neuroview", "standard"])
def test_an_rnn_of_other_settings_put_in_place_after_wrapping_is_refused(make, swap):
    """It was run by the templates of the rnn it replaced: a 2-layer GRU's first layer only, a bidirectional one's
    forward direction only, a time-first one read batch-first; an LSTM failed in a bare broadcast error."""
    torch.manual_seed(0)
    new, what = SWAPS[swap]
    net = make(nn.GRU(2, 4, batch_first=True)).eval()
    wrapper = type(net).__name__
    with pytest.raises(ValueError, match=rf"^rnn: the module put in net.rnn's place after wrapping \(a "
                                         rf"{type(new).__name__}\) differs from the rnn this {wrapper} was built on "
                                         rf"\({what}\).*build a new {wrapper} around the new rnn"):
        net.rnn = new
    net._modules["rnn"] = new  # past the assignment (add_module, _modules): refused at the next pass
    with pytest.raises(ValueError, match=rf"rnn: the module put in net.rnn's place .*\({what}\)"):
        net(torch.randn(3, 5, 2))


def test_an_rnn_subclass_with_its_own_forward_put_in_place_is_refused():
    """Its forward would never run: the plain GRU's templates ran its weights."""
    class Scaled(nn.GRU):
        def forward(self, x, hx=None):
            return super().forward(x * 0.5, hx)

    net = nv.NeuroViewRNN(nn.GRU(2, 4, batch_first=True), 3, max_len=5)
    with pytest.raises(ValueError, match=r"\(class 'GRU' -> '.*Scaled'\)"):
        net.rnn = Scaled(2, 4, batch_first=True)


def test_an_rnn_of_the_same_settings_put_in_place_is_run_with_its_own_weights():
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(2, 4, batch_first=True), 3, max_len=5).eval()
    std = nv.RNNClassifier(nn.GRU(2, 4, batch_first=True), 3).eval()
    x, new = torch.randn(3, 5, 2), nn.GRU(2, 4, batch_first=True)
    with torch.no_grad():
        assert not torch.allclose(net.features(x)[:, 0, 0], new(x)[0], atol=1e-3)
        net.rnn, std.rnn = new, new
        torch.testing.assert_close(net.features(x)[:, 0, 0], new(x)[0])  # [B, T, H]: layer 0, forward
        torch.testing.assert_close(std.last_state(x), new(x)[1][0])


class Encoder(nn.Module):
    """A user module without size attributes: its width shows only in its states."""

    def __init__(self, hidden: int):
        super().__init__()
        self.gru, self.input_size = nn.GRU(2, hidden, batch_first=True), 2

    def forward(self, x):
        return self.gru(x)[0]


def test_a_user_module_of_another_width_put_in_place_is_refused_by_its_states():
    """The classifier read 6 features a step as if 4: a bare size mismatch in the head, naming neither."""
    net = nv.NeuroViewRNN(Encoder(4), 3, max_len=5)
    net.rnn = Encoder(6)  # its class and attributes agree: only its states tell
    with pytest.raises(ValueError, match=r"rnn: Encoder returned states of 1 layers, 1 directions and 6 features "
                                         r"\(\[B, T, L, D, H\] \(3, 5, 1, 1, 6\)\), the network was built \(by the dry "
                                         r"run\) for 1, 1 and 4"):
        net(torch.randn(3, 5, 2))


# ---------------------------------------- finding 4: a user module returning a bidirectional GRU's own output
class BiEncoder(nn.Module):
    """Packs by lengths and returns what ``nn.GRU(bidirectional=True)`` returns: ``[B, T, 2H]``."""

    def __init__(self, layers: int = 1, unflatten: bool = False):
        super().__init__()
        self.gru, self.input_size, self.unflatten = nn.GRU(3, 4, layers, batch_first=True, bidirectional=True), 3, unflatten

    def forward(self, x, lengths):
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out = pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=x.shape[1])[0]
        return out.unflatten(-1, (2, 4))[:, :, None] if self.unflatten else out  # [B, T, 1, 2, H] said by the module


def test_a_user_module_returning_a_bidirectional_grus_output_gives_that_grus_final_states():
    """The backward half was read at the last valid step (its state after one step), 0.48 off nn.GRU's h_n."""
    torch.manual_seed(0)
    enc = BiEncoder().eval()
    std = nv.RNNClassifier(enc, 2).eval()
    x, lengths = torch.randn(4, 7, 3), [7, 3, 5, 7]
    with torch.no_grad():
        torch.testing.assert_close(std.last_state(x, torch.tensor(lengths)), _h_n(enc.gru, x, lengths))
        torch.testing.assert_close(std.last_state(x), _h_n(enc.gru, x, [7] * 4))


def test_a_user_module_of_other_non_causal_states_is_read_at_the_last_valid_step_as_before():
    """A 2-layer bidirectional GRU's output cannot be told from a conv front end's look-ahead (R5 finding 1): it is
    read at each series' last valid step, as before c3f3aaa; returned as [B, T, L, D, H] it gives the GRU's h_n."""
    torch.manual_seed(0)
    enc = BiEncoder(layers=2).eval()
    std = nv.RNNClassifier(enc, 2).eval()
    x, lengths = torch.randn(4, 7, 3), [7, 3, 5, 7]
    with torch.no_grad():
        out = enc(x, torch.tensor(lengths))
        torch.testing.assert_close(std.last_state(x, torch.tensor(lengths)), out[torch.arange(4), torch.tensor(lengths) - 1])
    nv.NeuroViewRNN(BiEncoder(layers=2), 2, max_len=7)  # it reads every state as given: exact as it was
    enc = BiEncoder(layers=2, unflatten=True).eval()  # [B, T, L, D, H]: the backward direction read at step 0
    std = nv.RNNClassifier(enc, 2).eval()
    with torch.no_grad():
        torch.testing.assert_close(std.last_state(x, torch.tensor(lengths)), _h_n(enc.gru, x, lengths))


def test_a_causal_user_module_is_still_read_at_the_last_valid_step():
    torch.manual_seed(0)
    enc = Encoder(4).eval()
    std = nv.RNNClassifier(enc, 2).eval()
    x, lengths = torch.randn(4, 7, 2), [7, 3, 5, 1]
    with torch.no_grad():
        torch.testing.assert_close(std.last_state(x, torch.tensor(lengths)), _h_n(enc.gru, x, lengths))


# ------------------------------------------------- finding 6: a one-direction subclass with its own forward
class ScaledGRU(nn.GRU):
    def forward(self, x, hx=None):
        return super().forward(x * 0.5, hx)


def test_a_one_direction_subclass_with_its_own_forward_runs_with_lengths_in_the_standard_classifier():
    """Every batch with lengths was packed: the subclass' forward failed on the PackedSequence (can't multiply sequence
    by non-int of type 'float'), in the user's own code."""
    torch.manual_seed(0)
    rnn = ScaledGRU(2, 4, batch_first=True).eval()
    plain = nn.GRU(2, 4, batch_first=True)
    plain.load_state_dict(rnn.state_dict())
    x, lengths = torch.randn(4, 6, 2), [6, 3, 5, 2]
    std = nv.RNNClassifier(rnn, 3).eval()
    with torch.no_grad():
        torch.testing.assert_close(std.last_state(x, torch.tensor(lengths)), _h_n(plain, x * 0.5, lengths))


@pytest.mark.parametrize("rnn", [nn.GRU(2, 4, num_layers=2, batch_first=True), nn.LSTM(2, 4, proj_size=3),
                                 nn.GRU(2, 4, bidirectional=True, num_layers=2)], ids=["gru2", "lstm-proj", "bigru2"])
def test_the_standard_classifier_reads_the_final_state_of_each_series(rnn):
    torch.manual_seed(0)
    std = nv.RNNClassifier(rnn, 3).eval()
    x, lengths = torch.randn(4, 6, 2), [6, 3, 5, 1]
    bf = rnn.batch_first
    with torch.no_grad():
        got = std.last_state(x if bf else x.transpose(0, 1), torch.tensor(lengths))
        rnn.batch_first = True  # the reference runs each series alone, batch-first
        try:
            want = _h_n(rnn, x, lengths)
        finally:
            rnn.batch_first = bf
    torch.testing.assert_close(got, want)


def test_a_bidirectional_subclass_failing_on_the_packed_sequence_gives_each_series_h_n():
    """070bed3 refused it (TypeError: ... failed on a PackedSequence ...): run on each series alone, both directions
    read where nn.GRU's h_n holds them."""
    torch.manual_seed(0)
    rnn = ScaledGRU(2, 4, batch_first=True, bidirectional=True).eval()
    plain = nn.GRU(2, 4, batch_first=True, bidirectional=True)
    plain.load_state_dict(rnn.state_dict())
    x, lengths = torch.randn(4, 6, 2), [6, 3, 5, 2]
    with torch.no_grad():
        got = nv.RNNClassifier(rnn, 3).eval().last_state(x, torch.tensor(lengths))
        torch.testing.assert_close(got, _h_n(plain, x * 0.5, lengths))


# ---------------------------------------------- finding 7: the shape the caller passed, and the channels-first hint
@pytest.mark.parametrize("make", [lambda r: nv.NeuroViewRNN(r, 3, max_len=150), lambda r: nv.RNNClassifier(r, 3)],
                         ids=["neuroview", "standard"])
def test_a_channels_first_batch_is_named_with_the_shape_given_and_the_transpose(make):
    """A time-first network quoted its own transpose, (1, 8, 150) 'as [B, T, F]', and neither said to transpose."""
    x = torch.randn(8, 1, 150)  # a data module's [B, C, T]
    with pytest.raises(ValueError, match=r"^x: expected 1 features in the last dim \[B, T, F\], got shape \(8, 1, 150\) "
                                         r"as \[B, T, F\]; x looks channels-first \[B, C, T\] as the data modules give "
                                         r"it: pass x.transpose\(1, 2\)$"):
        make(nn.GRU(1, 4, batch_first=True))(x)
    with pytest.raises(ValueError, match=r"^x: expected 1 features in the last dim \[T, B, F\], got shape \(8, 1, 150\) "
                                         r"as \[T, B, F\]; .*: pass x.permute\(2, 0, 1\)$"):
        make(nn.GRU(1, 4))(x)
    with pytest.raises(ValueError, match=r"^x: expected 1 features in the last dim \[B, T, F\], got shape \(8, 5, 150\) "
                                         r"as \[B, T, F\]$"):  # no channel axis of the input size: no guess
        make(nn.GRU(1, 4, batch_first=True))(torch.randn(8, 5, 150))
    with pytest.raises(ValueError, match=r"^x: expected a non-empty batch of non-empty sequences, got shape \(0, 8, 1\) "
                                         r"as \[T, B, F\]$"):
        make(nn.GRU(1, 4))(torch.randn(0, 8, 1))


# -------------------------------------------- finding 8: a checkpoint of another RNN kind or another proj_size
@pytest.mark.parametrize("saved, built, match", [
    (nn.GRU(2, 4), nn.LSTM(2, 4), r"rnn: the state dict was saved from a NeuroView-RNN over nn.GRU, the model's rnn is "
                                   r"an nn.LSTM \(LSTM\): .*build the network over an nn.GRU"),
    (nn.LSTM(2, 4), nn.RNN(2, 4), r"saved from a NeuroView-RNN over nn.LSTM, the model's rnn is an nn.RNN"),
    (nn.LSTM(2, 4, proj_size=2), nn.LSTM(2, 4), r"hidden_size, and proj_size=2 \(its weight_hr_l0\)"),
    (nn.LSTM(2, 4), nn.LSTM(2, 4, proj_size=2), r"hidden_size, and proj_size=0 \(it has no weight_hr_\*\)"),
    (nn.LSTM(2, 4, proj_size=2), nn.LSTM(2, 4, proj_size=1), r"hidden_size, and proj_size=2 \(its weight_hr_l0\)"),
], ids=["gru-lstm", "lstm-rnn", "proj-none", "none-proj", "proj2-proj1"])
def test_a_checkpoint_of_another_rnn_kind_or_proj_size_names_what_differs(saved, built, match):
    """A GRU's checkpoint in an LSTM network gave torch's gate-size mismatches only; a proj_size difference was
    answered with 'num_layers, bidirectional and hidden_size'."""
    sd = nv.NeuroViewRNN(saved, 3, max_len=5).state_dict()
    with pytest.raises(RuntimeError, match=match):
        nv.NeuroViewRNN(built, 3, max_len=5).load_state_dict(sd)


def test_a_checkpoint_of_a_subclass_or_the_same_kind_loads():
    torch.manual_seed(0)
    a, b = nv.NeuroViewRNN(ScaledGRU(2, 4), 3, max_len=5), nv.NeuroViewRNN(nn.GRU(2, 4), 3, max_len=5)
    sd = a.state_dict()
    assert sd._metadata[""]["rnn"] == "ScaledGRU"
    b.load_state_dict(sd)  # its weights are a GRU's
    torch.testing.assert_close(b.rnn.weight_hh_l0, a.rnn.weight_hh_l0)


# ======================================================= R5's review of c3f3aaa: regressions undone, each test failed
# ------------------------------------------------ R5 finding 1: a user module with a short look-ahead (CRNN, smoothing)
class CRNN(nn.Module):
    """A Conv1d (padding=1: each step sees the next) before a one-direction GRU: its [B, T, H] is the GRU's output."""

    def __init__(self):
        super().__init__()
        self.conv, self.gru, self.input_size = nn.Conv1d(2, 3, 3, padding=1), nn.GRU(3, 4, batch_first=True), 2

    def forward(self, x):
        return self.gru(self.conv(x.transpose(1, 2)).transpose(1, 2))[0]


def test_a_user_module_with_a_short_look_ahead_is_read_at_the_last_step_as_before():
    """Refused by c3f3aaa as 'not causal' (a multi-layer bidirectional RNN's output?); before, and now, its last state
    is the GRU's h_n."""
    torch.manual_seed(0)
    enc = CRNN().eval()
    std = nv.RNNClassifier(enc, 2).eval()
    assert (std.num_directions, std.hidden_size) == (1, 4)
    x = torch.randn(3, 16, 2)
    with torch.no_grad():
        want = enc.gru(enc.conv(x.transpose(1, 2)).transpose(1, 2))[1][0]  # torch's own h_n: [B, H]
        torch.testing.assert_close(std.last_state(x), want)


# --------------------------------------- R5 finding 2: series of exact zeros beside padding that varies (real data)
@pytest.mark.parametrize("make", ["neuroview", "standard"])
def test_a_silent_series_over_a_reused_buffer_or_a_prefix_is_read_not_refused(make):
    """A spike-count series silent at its valid steps, its padding a reused buffer's old values (or its own future,
    in a prefix curve net(x, lengths=k)): c3f3aaa refused the whole batch as 'padded at the start'."""
    torch.manual_seed(0)
    gru = nn.GRU(2, 4, batch_first=True).eval()
    x = torch.randn(3, 8, 2)
    x[1, :3] = 0.0  # silent for its 3 valid steps; steps 3.. hold other values (padding, or the series' future)
    lengths = [8, 3, 5]
    with torch.no_grad():
        if make == "standard":
            std = nv.RNNClassifier(gru, 3).eval()
            torch.testing.assert_close(std.last_state(x, torch.tensor(lengths)), _h_n(gru, x, lengths))
            torch.testing.assert_close(std.last_state(x, torch.tensor([3, 3, 3])), _h_n(gru, x, [3, 3, 3]))
            return
        net = nv.NeuroViewRNN(gru, 3, max_len=8).eval()
        h = net.features(x, torch.tensor(lengths))[:, 0, 0]  # [B, T, H]: layer 0, forward direction
        for i, n in enumerate(lengths):
            torch.testing.assert_close(h[i, :n], gru(x[i:i + 1, :n])[0][0])
            assert (h[i, n:] == 0).all()
        exp = net.explain(x, torch.tensor(lengths))
        torch.testing.assert_close(exp.logits, net(x, torch.tensor(lengths)))


# -------------------------------------------------- R5 finding 3: net.rnn = torch.compile(net.rnn), same settings
@pytest.mark.parametrize("make", [lambda r: nv.NeuroViewRNN(r, 3, max_len=5), lambda r: nv.RNNClassifier(r, 3)],
                         ids=["neuroview", "standard"])
def test_a_compiled_rnn_of_the_same_settings_runs_as_before(make):
    """Refused by c3f3aaa under the class name '_forward_unimplemented' (torch.compile's wrapper has no forward)."""
    torch.manual_seed(0)
    gru = nn.GRU(2, 4, num_layers=2, batch_first=True)
    net = make(gru).eval()
    x, lengths = torch.randn(3, 5, 2), torch.tensor([5, 2, 4])
    with torch.no_grad():
        before = net(x, lengths)
        net.rnn = torch.compile(net.rnn, backend="eager")
        torch.testing.assert_close(net(x, lengths), before)


def test_a_compiled_rnn_of_other_settings_is_named_by_its_class_and_the_advice_keeps_its_layers():
    net = nv.NeuroViewRNN(nn.GRU(2, 4, batch_first=True), 3, max_len=5)
    with pytest.raises(ValueError, match=r"\(a torch.compile of a GRU\) differs from the rnn this NeuroViewRNN was built "
                                         r"on \(num_layers 1 -> 2\).*around the new rnn itself, not a torch.compile of "
                                         r"it \(compile the network instead: torch.compile\(net\)\)"):
        net.rnn = torch.compile(nn.GRU(2, 4, num_layers=2, batch_first=True), backend="eager")
    with pytest.raises(ValueError, match=r"\(class 'GRU' -> 'LSTM'\)"):
        net.rnn = torch.compile(nn.LSTM(2, 4, batch_first=True), backend="eager")


# ---------------------------- R5 finding 4: an nn.GRU subclass or hook that changes its output: h_n is read, as before
class NormGRU(nn.GRU):
    """Normalizes its per-step output, as a tensor only (a PackedSequence fails in layer_norm); h_n as nn.GRU gives it."""

    def forward(self, x, hx=None):
        out, h = super().forward(x, hx)
        return torch.nn.functional.layer_norm(out, out.shape[-1:]), h


class NormLSTM(nn.LSTM):
    """The same over an LSTM: (h_n, c_n) as nn.LSTM gives them."""

    def forward(self, x, hx=None):
        out, state = super().forward(x, hx)
        return torch.nn.functional.layer_norm(out, out.shape[-1:]), state


def _changed(kind: str, plain: nn.RNNBase) -> nn.RNNBase:
    """``plain``'s weights in a subclass whose forward, or under a hook that, changes the output and fails on a
    PackedSequence (S4 finding 1: the earlier ones accepted it, so the fallback was never reached)."""
    if kind == "subclass":
        make = NormLSTM if isinstance(plain, nn.LSTM) else NormGRU
        rnn = make(plain.input_size, plain.hidden_size, batch_first=plain.batch_first, bidirectional=plain.bidirectional)
    else:
        rnn = type(plain)(plain.input_size, plain.hidden_size, batch_first=plain.batch_first,
                          bidirectional=plain.bidirectional)
        rnn.register_forward_hook(lambda m, i, o: (torch.tanh(o[0]), o[1]))  # torch.tanh(PackedSequence) fails
    rnn.load_state_dict(plain.state_dict())
    return rnn


RNNS = {"gru": lambda: nn.GRU(2, 4, batch_first=True), "bigru": lambda: nn.GRU(2, 4, batch_first=True, bidirectional=True),
        "lstm-time-first": lambda: nn.LSTM(2, 4), "bilstm": lambda: nn.LSTM(2, 4, batch_first=True, bidirectional=True)}


@pytest.mark.parametrize("rnn", sorted(RNNS))
@pytest.mark.parametrize("kind", ["subclass", "hook"])
def test_the_standard_classifier_reads_h_n_of_an_rnn_that_changes_its_output(kind, rnn):
    """c3f3aaa read the (normalized, hooked) output at the last step instead: other logits for the same weights. With
    several lengths the packed call failed and 070bed3 read the changed output at each series' last valid step
    (a full-length series' state moved with its batch-mates' lengths); a bidirectional one was refused."""
    torch.manual_seed(0)
    plain = RNNS[rnn]()
    changed, bf = _changed(kind, plain), plain.batch_first
    std = nv.RNNClassifier(changed, 3).eval()
    x, lengths = torch.randn(5, 6, 2), [6, 3, 5, 3, 1]
    with torch.no_grad():
        plain.batch_first = True  # the reference runs each series alone, batch-first
        try:
            want, full = _h_n(plain, x, lengths), _h_n(plain, x, [6] * 5)
        finally:
            plain.batch_first = bf
        def given(v):  # noqa: E306
            return v if bf else v.transpose(0, 1)
        torch.testing.assert_close(std.last_state(given(x)), full)
        torch.testing.assert_close(std.last_state(given(x), torch.tensor(lengths)), want)
        torch.testing.assert_close(std.last_state(given(x), torch.tensor(lengths)), want)  # the second batch too
        # a full-length series' state does not move with its batch-mates' lengths
        torch.testing.assert_close(std.last_state(given(x), torch.tensor([6, 2, 2, 4, 6]))[0], full[0])


def test_the_fallback_trains_with_the_gradients_of_each_series_run_alone():
    torch.manual_seed(0)
    plain = nn.GRU(2, 4, batch_first=True)
    changed = _changed("subclass", plain)
    std = nv.RNNClassifier(changed, 3).train()
    x, lengths = torch.randn(4, 6, 2), [6, 3, 5, 3]
    std.last_state(x, torch.tensor(lengths)).pow(2).sum().backward()
    _h_n(plain, x, lengths).pow(2).sum().backward()
    for name, p in plain.named_parameters():
        torch.testing.assert_close(dict(changed.named_parameters())[name].grad, p.grad)


def test_the_packed_call_is_not_tried_again_once_it_failed_and_a_new_rnn_is_tried():
    """070bed3 handed every batch with lengths to the packed call first: a whole GRU pass that failed in the user's
    norm, then the tensor call (a pre-hook ran twice a forward)."""
    torch.manual_seed(0)
    rnn, seen = NormGRU(2, 4, batch_first=True), []
    rnn.register_forward_pre_hook(lambda m, a: seen.append(type(a[0]).__name__))
    std = nv.RNNClassifier(rnn, 3).eval()
    x, lengths = torch.randn(4, 6, 2), torch.tensor([6, 3, 5, 3])
    with torch.no_grad():
        std(x, lengths)
        assert seen == ["PackedSequence", "Tensor", "Tensor", "Tensor"]  # then one call per distinct length: 3, 5, 6
        seen.clear()
        std(x, lengths)
        assert seen == ["Tensor", "Tensor", "Tensor"]
        # another rnn of the same class put in place is handed the PackedSequence again (it may accept it)
        other = NormGRU(2, 4, batch_first=True)
        other.forward = nn.GRU.forward.__get__(other)  # (an instance attribute: the class, and the config, are the same)
        other.register_forward_pre_hook(lambda m, a: seen.append(type(a[0]).__name__))
        std.rnn = other
        seen.clear()
        std(x, lengths)
        assert seen == ["PackedSequence"]


# ------------------------------------- S4 finding 2: a hooked GRU compiled in place runs its hooks in NeuroViewRNN
def test_a_hooked_rnn_compiled_in_place_still_runs_its_hook():
    """hooked() read the OptimizedModule's own (empty) hook dicts: the layer-by-layer path ran, the hook skipped
    (logits 0.4 off those before compiling)."""
    torch.manual_seed(0)
    plain = nn.GRU(2, 4, batch_first=True)
    g = nn.GRU(2, 4, batch_first=True)
    g.load_state_dict(plain.state_dict())
    g.register_forward_hook(lambda m, i, o: (torch.tanh(3 * o[0]), o[1]))
    net = nv.NeuroViewRNN(g, 3, max_len=6).eval()
    x = torch.randn(3, 6, 2)
    with torch.no_grad():
        net.rnn = torch.compile(net.rnn, backend="eager")
        torch.testing.assert_close(net.features(x)[:, 0, 0], torch.tanh(3 * plain(x)[0]))


# -------------------------------------------------- R5 finding 6: a user module's [B, T, 2H] read as two directions
def test_a_user_modules_bidirectional_output_is_reported_as_two_directions():
    std = nv.RNNClassifier(BiEncoder(), 2)
    assert (std.num_directions, std.hidden_size, std.classifier.in_features) == (2, 4, 8)
    assert "directions=2, hidden=4" in repr(std)
