"""The export and readme probes' NeuroView-RNN faults (s16): a state dict of a NeuroView-RNN over
``nn.RNN(nonlinearity='relu')`` loaded without a word into one over a tanh RNN; ``torch.export`` of an RNN called with
``lengths`` failed with torch's data-dependent error; ``net.unit_gallery(loader, units=...)``, the contract's keyword,
was a TypeError for an RNN (its argument was named ``steps``)."""

import warnings

import pytest
import torch
from torch import nn

import neuroview as nv


def _rnn_net(nonlinearity: str, seed: int = 0) -> nv.NeuroViewRNN:
    torch.manual_seed(seed)
    return nv.NeuroViewRNN(nn.RNN(2, 4, batch_first=True, nonlinearity=nonlinearity), num_classes=3, max_len=6).eval()


def _by_hand(net: nv.NeuroViewRNN, x: torch.Tensor) -> torch.Tensor:
    """The decision from the RNN's own weights, step by step: h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)."""
    r, act = net.rnn, torch.relu if net.rnn.nonlinearity == "relu" else torch.tanh
    h, states = torch.zeros(len(x), 4), []
    for t in range(x.shape[1]):
        h = act(x[:, t] @ r.weight_ih_l0.T + r.bias_ih_l0 + h @ r.weight_hh_l0.T + r.bias_hh_l0)
        states.append(h)
    w, b = net.effective_classifier()
    return torch.stack(states, 1).flatten(1) @ w.T + b


def test_the_two_nonlinearities_compute_other_functions_from_the_same_weights():
    x = torch.randn(5, 6, 2, generator=torch.Generator().manual_seed(1))
    relu, tanh = _rnn_net("relu"), _rnn_net("tanh")
    tanh.load_state_dict({k: v for k, v in relu.state_dict().items()}, strict=True)  # a plain dict: no record, loads
    with torch.no_grad():
        assert torch.allclose(relu(x), _by_hand(relu, x), atol=1e-5)
        assert torch.allclose(tanh(x), _by_hand(tanh, x), atol=1e-5)
        assert not torch.allclose(relu(x), tanh(x), atol=1e-3)


@pytest.mark.parametrize("saved, into", [("relu", "tanh"), ("tanh", "relu")])
def test_a_state_dict_of_another_nonlinearity_is_refused_by_name(saved, into):
    sd = _rnn_net(saved).state_dict()
    assert sd._metadata[""]["nonlinearity"] == saved and sd._metadata[""]["rnn"] == "RNN"
    net = _rnn_net(into, seed=1)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(RuntimeError, match=rf"nonlinearity.*'{saved}'.*'{into}'.*nonlinearity='{saved}'"):
        net.load_state_dict(sd)
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())  # nothing copied
    outer, other = nn.ModuleDict({"net": _rnn_net(saved)}), nn.ModuleDict({"net": _rnn_net(into)})  # inside another module
    with pytest.raises(RuntimeError, match=rf"net\.rnn\.nonlinearity: .*nonlinearity='{saved}'"):
        other.load_state_dict(outer.state_dict())


def test_the_same_nonlinearity_and_state_dicts_without_the_record_load():
    x = torch.randn(5, 6, 2, generator=torch.Generator().manual_seed(1))
    src = _rnn_net("relu")
    sd = src.state_dict()
    same = _rnn_net("relu", seed=1)
    same.load_state_dict(sd)
    with torch.no_grad():
        assert torch.equal(same(x), src(x))
    old = sd.copy()  # saved before the record was kept
    old._metadata = {k: {kk: vv for kk, vv in v.items() if kk not in ("rnn", "nonlinearity")} for k, v in sd._metadata.items()}
    _rnn_net("tanh").load_state_dict(old)
    gru = nv.NeuroViewRNN(nn.GRU(2, 4, batch_first=True), num_classes=3, max_len=6)
    assert gru.state_dict()._metadata[""]["rnn"] == "GRU" and "nonlinearity" not in gru.state_dict()._metadata[""]
    nv.NeuroViewRNN(nn.GRU(2, 4, batch_first=True), num_classes=3, max_len=6).load_state_dict(gru.state_dict())


def _alone(net, x, lengths):
    """Each series run alone at its own length: what a batch with lengths must give, whatever its padding."""
    with torch.no_grad():
        return torch.cat([net(x[i:i + 1, :int(n)]) for i, n in enumerate(lengths)])


@pytest.mark.parametrize("rnn, kw", [(nn.GRU(3, 8, num_layers=2, batch_first=True), {}),
                                     (nn.RNN(6, 5, batch_first=True, nonlinearity="relu"), {"window": 2})],
                         ids=["gru2", "rnn_window"])
@pytest.mark.parametrize("strict", [False, True])
def test_torch_export_takes_an_rnn_called_with_lengths(rnn, kw, strict):
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(rnn, num_classes=3, max_len=10, **kw).eval()
    x = torch.randn(4, 12, 3)  # padded past max_len: only padding lies there
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ep = torch.export.export(net, (x, torch.tensor([10, 4, 7, 2])), strict=strict)
    for lengths in (torch.tensor([10, 4, 7, 2]), torch.tensor([1, 10, 3, 9]), torch.tensor([10, 10, 10, 10])):
        assert torch.allclose(ep.module()(x, lengths), _alone(net, x, lengths), atol=1e-5)
    for bad in (torch.tensor([0, 3, 3, 3]), torch.tensor([11, 3, 3, 3])):
        with pytest.raises(RuntimeError, match=r"lengths: expected values in \[1, 10\]"):
            ep.module()(x, bad)


@pytest.mark.parametrize("strict", [False, True])
def test_torch_export_of_a_bidirectional_rnn_with_lengths_is_refused_by_name(strict):
    net = nv.NeuroViewRNN(nn.GRU(3, 8, batch_first=True, bidirectional=True), num_classes=3, max_len=10).eval()
    x = torch.randn(4, 10, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(Exception, match=r"torch\.export: a bidirectional NeuroViewRNN .*lengths") as e:
            torch.export.export(net, (x, torch.tensor([10, 4, 7, 2])), strict=strict)
        assert strict or isinstance(e.value, TypeError)
        ep = torch.export.export(net, (x,), strict=strict)  # without lengths it exports
    assert torch.allclose(ep.module()(x), net(x), atol=1e-6)


def test_unit_gallery_takes_units_as_the_contract_names_it_and_steps_as_its_alias():
    torch.manual_seed(0)
    xs, ys = torch.zeros(6, 1, 5), torch.arange(6) % 2
    xs[:, 0, 2] = torch.tensor([0.0, 5.0, 1.0, 3.0, 2.0, 4.0])  # step 2's input: ranks the samples 1, 5, 3, 4, 2, 0
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xs, ys), batch_size=4)
    net = nv.NeuroViewRNN(nn.RNN(1, 1, batch_first=True, bias=False, nonlinearity="relu"), num_classes=2, max_len=5,
                          normalize=False).eval()
    with torch.no_grad():  # h_t = relu(x_t): step 2's state is its input; class 1 weighs it by 1, all else by 0
        net.rnn.weight_ih_l0.fill_(1.0), net.rnn.weight_hh_l0.zero_()
        net.classifier.weight.zero_(), net.classifier.bias.zero_()
        net.classifier.weight[1, 2] = 1.0
    by_units = net.unit_gallery(loader, units=[2], k=3)
    assert by_units.index[0].tolist() == [1, 5, 3]
    assert net.unit_gallery(loader, steps=[2], k=3).index.tolist() == by_units.index.tolist()
    assert net.unit_gallery(loader, [2], 3).index.tolist() == by_units.index.tolist()
    with pytest.raises(TypeError, match=r"units: .*units=.*steps=.*both"):
        net.unit_gallery(loader, units=[2], steps=[2])
    with pytest.raises(TypeError, match=r"units: .*neither"):
        net.unit_gallery(loader)


@pytest.mark.parametrize("strict", [True, False])
def test_a_refused_load_copies_no_tensor_top_level_or_nested(strict):
    # the review of 92a5f71: nested in another module (a LightningModule's self.net, a ModuleDict), the refusal came
    # after torch had copied the relu RNN's weights and its classifier into the tanh network
    def unchanged_after_refusal(model, sd, match):
        before = {k: v.clone() for k, v in model.state_dict().items()}
        with pytest.raises(RuntimeError, match=match):
            model.load_state_dict(sd, strict=strict)
        assert [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])] == []

    relu = _rnn_net("relu")
    with torch.no_grad():
        relu.classifier.weight.add_(1.0)  # a trained head
    unchanged_after_refusal(_rnn_net("tanh", seed=1), relu.state_dict(), r"\n\trnn\.nonlinearity: ")

    class Lit(nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net, self.after = net, nn.Linear(2, 2)  # a module torch loads after it

    torch.manual_seed(2)
    unchanged_after_refusal(Lit(_rnn_net("tanh", seed=1)), Lit(relu).state_dict(), r"net\.rnn\.nonlinearity: .*'relu'")
    deeper = nn.ModuleDict({"a": Lit(_rnn_net("tanh", seed=3))})
    unchanged_after_refusal(deeper, nn.ModuleDict({"a": Lit(relu)}).state_dict(), r"a\.net\.rnn\.nonlinearity: ")
