"""Property tests (hypothesis): random small CNNs and RNNs are exact and survive a state-dict round trip.

A bounded number of examples keeps this file in the default run; hypothesis shrinks any failure
to the smallest architecture that breaks the identity.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import neuroview as nv

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

ACTS = [nn.ReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.LeakyReLU, nn.ReLU6, nn.Hardswish]
CONV = {1: nn.Conv1d, 2: nn.Conv2d}
RNNS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
SETTINGS = settings(max_examples=15, deadline=None, derandomize=True)


class _Convs(nn.Module):
    """Conv -> activation blocks; with ``shared`` one activation module is called after every conv."""

    def __init__(self, dims, in_ch, widths, kernels, acts, shared):
        super().__init__()
        chans = [in_ch, *widths]
        self.convs = nn.ModuleList(CONV[dims](a, b, k, padding=k // 2) for a, b, k in zip(chans, chans[1:], kernels))
        self.acts = nn.ModuleList([ACTS[acts[0]]()] if shared else [ACTS[a]() for a in acts])

    def forward(self, x):
        for i, conv in enumerate(self.convs):
            x = self.acts[0 if len(self.acts) == 1 else i](conv(x))
        return x


@st.composite
def cnn_specs(draw):
    depth = draw(st.integers(1, 3))
    return dict(
        dims=draw(st.sampled_from([1, 2])),
        in_ch=draw(st.integers(1, 3)),
        widths=draw(st.lists(st.integers(1, 6), min_size=depth, max_size=depth)),
        kernels=draw(st.lists(st.sampled_from([1, 3, 5]), min_size=depth, max_size=depth)),
        acts=draw(st.lists(st.integers(0, len(ACTS) - 1), min_size=depth, max_size=depth)),
        shared=draw(st.booleans()),
        quantizer=draw(st.sampled_from(["hard", "soft", "none"])),
        classes=draw(st.integers(2, 4)),
        seed=draw(st.integers(0, 2**16)),
    )


def _cnn(spec):
    backbone = _Convs(spec["dims"], spec["in_ch"], spec["widths"], spec["kernels"], spec["acts"], spec["shared"])
    return nv.NeuroViewCNN(backbone, spec["classes"], quantizer=spec["quantizer"])


def _close(a, b):
    torch.testing.assert_close(a, b, rtol=0, atol=1e-4 * max(1.0, float(b.abs().max())))


@SETTINGS
@given(cnn_specs())
def test_random_cnn_is_exact_and_round_trips(spec):
    torch.manual_seed(spec["seed"])
    net = _cnn(spec)
    x = torch.randn(5, spec["in_ch"], *([7] * spec["dims"]))
    if net.sites is None:  # a lazy wrap: its classifier is built now, so that the optimizer holds it
        net.discover(x)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    net.train()
    for _ in range(2):  # so the folded normalization and the classifier are not at their initial values
        opt.zero_grad()
        F.cross_entropy(net(x), torch.arange(5) % spec["classes"]).backward()
        opt.step()
    net.eval()
    exp = net.explain(x)
    with torch.no_grad():
        logits = net(x)
    _close(exp.logits, logits)
    _close(exp.contributions.sum(-1) + exp.bias, exp.logits)
    assert exp.contributions.shape == (5, spec["classes"], net.num_units)

    torch.manual_seed(spec["seed"] + 1)
    fresh = _cnn(spec)
    fresh.load_state_dict(net.state_dict())
    fresh.eval()
    with torch.no_grad():
        assert torch.equal(fresh(x), logits)


@st.composite
def rnn_specs(draw):
    batch = draw(st.integers(1, 4))
    t = draw(st.integers(1, 6))
    return dict(
        kind=draw(st.sampled_from(sorted(RNNS))),
        layers=draw(st.integers(1, 3)),
        bidirectional=draw(st.booleans()),
        batch_first=draw(st.booleans()),
        features=draw(st.integers(1, 3)),
        hidden=draw(st.integers(1, 5)),
        t=t,
        extra=draw(st.integers(0, 2)),  # max_len beyond T: steps that exist for no sample
        lengths=draw(st.lists(st.integers(1, t), min_size=batch, max_size=batch)),
        classes=draw(st.integers(2, 4)),
        seed=draw(st.integers(0, 2**16)),
    )


def _rnn(spec):
    rnn = RNNS[spec["kind"]](spec["features"], spec["hidden"], num_layers=spec["layers"],
                             bidirectional=spec["bidirectional"], batch_first=spec["batch_first"])
    return nv.NeuroViewRNN(rnn, spec["classes"], max_len=spec["t"] + spec["extra"])


@SETTINGS
@given(rnn_specs())
def test_random_rnn_is_exact_padding_is_zero_and_round_trips(spec):
    torch.manual_seed(spec["seed"])
    net = _rnn(spec)
    b, t = len(spec["lengths"]), spec["t"]
    lengths = torch.tensor(spec["lengths"])
    x = torch.randn(b, t, spec["features"])
    x[torch.arange(t) >= lengths[:, None]] = float("nan")  # padding may hold anything
    if not spec["batch_first"]:
        x = x.transpose(0, 1)
    clean = torch.nan_to_num(x, nan=0.0)
    net.train()
    warm = torch.cat([clean, -clean], dim=0 if spec["batch_first"] else 1)  # >1 value per channel, even at B = T = 1
    with torch.no_grad():
        for _ in range(2):  # running statistics of the folded normalization
            net(warm * 2 + 0.5, lengths.repeat(2))
    net.eval()
    exp = net.explain(x, lengths=lengths)
    with torch.no_grad():
        logits = net(x, lengths)
    _close(exp.logits, logits)
    _close(exp.contributions.flatten(2).sum(-1) + exp.bias, exp.logits)
    _close(exp.time_importance.sum(-1) + exp.bias, exp.logits)
    steps = torch.arange(t + spec["extra"])
    pad = steps[None, :] >= lengths[:, None]  # [B, max_len]
    assert exp.time_importance.permute(0, 2, 1)[pad].eq(0).all(), "a padded step has a contribution"

    torch.manual_seed(spec["seed"] + 1)
    fresh = _rnn(spec)
    fresh.load_state_dict(net.state_dict())
    fresh.eval()
    with torch.no_grad():
        assert torch.equal(fresh(x, lengths), logits)


# ------------------------------------------------ a sample's codes never depend on its batch-mates
def _look_alikes():
    """Every look-alike backbone of tests/core, with the input sizes it takes."""
    import test_backbones as tb
    import test_sites as ts

    out = {name: (factory, sizes[0]) for name, (factory, sizes, _) in tb.CASES.items()}
    out.update({
        "position_bias_table": (tb.PositionBiasMLP, (3, 6, 6)),
        "windows_in_the_batch": (tb.WindowConv, (3, 8, 8)),
        "norm_act_dense": (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), tb.DenseLayer(4, 3), tb.DenseLayer(7, 3)), (3, 8, 8)),
        "sequence_first": (ts.SequenceFirst, (3, 10)),
        "concatenation": (ts.CatReLU, (3, 12, 8)),
        "positions_folded_ahead": (ts.PositionsFolded, (3, 10)),
    })
    return out


LOOK_ALIKES = _look_alikes()


@SETTINGS
@given(name=st.sampled_from(sorted(LOOK_ALIKES)), batch=st.integers(2, 5), data=st.data(),
       quantizer=st.sampled_from(["hard", "soft", "none"]), first=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_a_samples_codes_and_explanation_are_the_same_alone_and_in_a_batch(name, batch, data, quantizer, first, seed):
    torch.manual_seed(seed)
    factory, size = LOOK_ALIKES[name]
    net = nv.wrap(factory(), 3, quantizer=quantizer)
    net.eval()(torch.randn(first, *size))  # the first batch finds the sites, whatever its size
    x = torch.randn(batch, *size)
    i = data.draw(st.integers(0, batch - 1))
    alone, together = net.explain(x[i:i + 1], target=1), net.explain(x, target=1)
    torch.testing.assert_close(together.codes[i:i + 1], alone.codes, rtol=0, atol=1e-5)
    torch.testing.assert_close(together.for_class(1)[i:i + 1], alone.for_class(1), rtol=0, atol=1e-5)
    torch.testing.assert_close(together.logits[i:i + 1], alone.logits, rtol=0, atol=1e-5)
