"""Load refusals that copy nothing, name the right cause, and reach nv.load_weights (review of 92a5f71, 2 to 4).

- A NeuroView-CNN refusing a state dict (another quantizer, other sites) raises before torch copies its backbone,
  classifier or norm, at the top level and nested in another module, strict either way.
- A MiniRocket of other biases per dilation whose sites were found gets the MiniRocket's advice, not ``layers=``.
- ``load_weights`` refuses an ``nn.RNN`` file of the other nonlinearity by name, from its arch_kwargs or its record.
"""

import tempfile
import warnings

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import neuroview as nv
from neuroview.zoo.pretrained import save_pretrained
from neuroview.zoo.weights import ArchitectureError, load_weights


def _tensors(m):
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def _unchanged(m, before):
    now = m.state_dict()
    return sorted(k for k in before if not torch.equal(now[k], before[k]))


def _cnn(layers=None, quantizer="hard", seed=0):
    torch.manual_seed(seed)
    body = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU())
    return nv.NeuroViewCNN(body, 3, layers=layers, quantizer=quantizer, input_shape=(1, 6, 6))


class _Lit(nn.Module):  # a Lightning module's layout: the network, then a module after it
    def __init__(self, net):
        super().__init__()
        self.model, self.after = net, nn.Linear(2, 2)


def _holders(net, other):
    """(what loads, the state dict it loads): top level, in a ModuleDict with a module after it, two levels deep."""
    torch.manual_seed(5)
    yield net, other.state_dict()
    yield nn.ModuleDict({"net": net, "after": nn.Linear(2, 2)}), nn.ModuleDict({"net": other, "after": nn.Linear(2, 2)}).state_dict()
    yield nn.ModuleDict({"a": _Lit(net)}), nn.ModuleDict({"a": _Lit(other)}).state_dict()


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("clash", ["quantizer", "sites"])
def test_a_refused_cnn_load_copies_no_tensor_top_level_or_nested(strict, clash):
    # soft weights into a hard network; a head trained on layer '1' read from layer '3' (4 units each: same shapes)
    other = _cnn(quantizer="soft", seed=1) if clash == "quantizer" else _cnn(layers=["1"], seed=1)
    net = _cnn() if clash == "quantizer" else _cnn(layers=["3"])
    for holder, sd in _holders(net, other):
        before = _tensors(holder)
        assert all(not torch.equal(v, sd[k]) for k, v in before.items() if k.endswith("weight"))  # a copy would show
        with pytest.raises(RuntimeError, match=rf"NeuroViewCNN:\n\t(net\.|a\.model\.)?{clash}: "):
            holder.load_state_dict(sd, strict=strict)
        assert _unchanged(holder, before) == [], type(holder).__name__
    # the same file loads once the network is built as it was
    ok = _cnn(quantizer="soft") if clash == "quantizer" else _cnn(layers=["1"])
    nn.ModuleDict({"net": ok}).load_state_dict(nn.ModuleDict({"net": other}).state_dict())
    assert torch.equal(ok.classifier.weight, other.classifier.weight)


_KW = dict(num_classes=2, in_channels=1, max_len=30, num_features=840, seed=0)


def _rocket(**kw):  # sites found: a network that has run, the usual case before a checkpoint is loaded
    net = nv.create_model("nv_minirocket", **{**_KW, **kw})
    x = torch.randn(12, 1, net.backbone.input_length, generator=torch.Generator().manual_seed(0)).cumsum(-1)
    net.backbone.fit(x)
    with torch.no_grad():
        net(x[:2])
    return net.eval()


@pytest.mark.parametrize("strict", [True, False])
def test_other_biases_per_dilation_get_the_minirocket_s_advice_once_the_sites_are_found(strict):
    # 30 steps, 840 features: max_dilations_per_kernel=4 gives biases per dilation [6, 2, 2], the default [5, 3, 2]:
    # the same site names at other widths, which the sites check advised to fix with layers=['act']
    other = _rocket(max_dilations_per_kernel=4)
    for holder, sd in _holders(_rocket(), other):
        before = _tensors(holder)
        with pytest.raises(RuntimeError, match=r"biases per dilation \[6, 2, 2\].*max_dilations_per_kernel=4") as e:
            holder.load_state_dict(sd, strict=strict)
        assert "layers=" not in str(e.value)
        assert _unchanged(holder, before) == [], type(holder).__name__


def test_nested_sites_refusal_of_an_agreeing_minirocket_waits_for_its_check_then_copies_nothing():
    # the same MiniRocket, a head recorded as trained on other sites: the sites refusal is raised at the backbone's
    # turn, once its own check has passed, before its biases are copied (nested: the network cannot read its record)
    net, other = _rocket(), _rocket()
    with torch.no_grad():
        other.backbone.biases.add_(1.0), other.classifier.weight.add_(1.0)
    for holder, sd in _holders(net, other):
        key = next(k for k, v in sd._metadata.items() if "sites" in v)
        sd._metadata[key]["sites"] = [["act", 420], ["act:1", 420]]
        before = _tensors(holder)
        with pytest.raises(RuntimeError, match=r"NeuroViewCNN:\n\t(net\.|a\.model\.)?sites: ") as e:
            holder.load_state_dict(sd)
        assert "backbone.dilations" not in str(e.value) and _unchanged(holder, before) == []
    # nothing of those refusals stays: the right state dict loads, into the network and into its backbone alone
    nn.ModuleDict({"net": net}).load_state_dict(nn.ModuleDict({"net": other}).state_dict())
    assert torch.equal(net.backbone.biases, other.backbone.biases) and torch.equal(net.classifier.weight, other.classifier.weight)
    net.backbone.load_state_dict(_rocket().backbone.state_dict())
    assert not net.backbone._load_state_dict_pre_hooks


_RNN = dict(in_features=2, hidden_size=4, num_classes=3, max_len=6)


def _rnn(nonlinearity=None, seed=0, **kw):
    torch.manual_seed(seed)
    extra = {} if nonlinearity is None else {"nonlinearity": nonlinearity}
    return nv.create_model("nv_rnn", **{**_RNN, **kw}, **extra).eval()


def _saved(root, net, nonlinearity=None):
    kw = {**_RNN, **({} if nonlinearity is None else {"nonlinearity": nonlinearity})}
    save_pretrained(net, "nv_rnn.t", architecture="nv_rnn", arch_kwargs=kw, dataset={}, recipe=None, seed=0,
                    metrics={}, root=root)
    return f"{root}/nv_rnn.t.safetensors"


def test_load_weights_refuses_the_other_nonlinearity_by_name():
    x = torch.randn(20, 6, 2, generator=torch.Generator().manual_seed(1))
    with tempfile.TemporaryDirectory() as root, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        relu = _rnn("relu")
        path = _saved(root, relu, "relu")
        tanh = _rnn(seed=3)
        before = _tensors(tanh)
        with pytest.raises(ArchitectureError, match=r"rnn\.nonlinearity: the file records 'relu'.*the model has 'tanh': "
                                                      r"build it with nonlinearity='relu'"):
            load_weights(tanh, path)
        assert _unchanged(tanh, before) == []
        # built as recorded, it loads, and computes what was saved: h_t = relu(W x_t + U h_{t-1} + b) by hand
        back = load_weights(_rnn("relu", seed=3), path)
        r = relu.rnn
        h, hs = torch.zeros(20, 4), []
        for t in range(6):
            h = torch.relu(x[:, t] @ r.weight_ih_l0.T + r.bias_ih_l0 + h @ r.weight_hh_l0.T + r.bias_hh_l0)
            hs.append(h)
        with torch.no_grad():
            want = relu(x)
            assert torch.allclose(back(x), want, atol=1e-5)
            assert torch.allclose(back.features(x).flatten(1), torch.stack(hs, 1).flatten(1), atol=1e-5)
        # the default (tanh, not written in arch_kwargs) into a relu network: its rebuilt record says so
        path = _saved(tempfile.mkdtemp(dir=root), _rnn(), None)
        with pytest.raises(ArchitectureError, match=r"rnn\.nonlinearity: the file's arch_kwargs build tanh, the model has relu"):
            load_weights(_rnn("relu"), path)


def test_load_weights_refuses_a_recorded_nonlinearity_and_loads_files_without_a_record():
    with tempfile.TemporaryDirectory() as root:
        relu = _rnn("relu", max_len=8)  # another max_len: only its rnn fits a max_len=6 network
        torch.save(relu.state_dict(), f"{root}/w.pt")
        tanh = _rnn(seed=3)
        before = _tensors(tanh)
        with pytest.raises(ArchitectureError, match=r"\(rnn\.nonlinearity: the file records 'relu' \(its state dict's record\)"):
            load_weights(tanh, f"{root}/w.pt", pickles=True, backbone=True)
        assert _unchanged(tanh, before) == []
        with pytest.raises(ArchitectureError, match=r"rnn\.nonlinearity: the file records 'relu'"):
            load_weights(_rnn(seed=3, max_len=8), f"{root}/w.pt", pickles=True)
        # a plain file records nothing: it loads as before (its tensors are all it says)
        save_file(dict(relu.state_dict()), f"{root}/w.safetensors")
        back = load_weights(_rnn(seed=3, max_len=8), f"{root}/w.safetensors")
        assert torch.equal(back.rnn.weight_hh_l0, relu.rnn.weight_hh_l0)


def test_another_series_length_once_the_sites_are_found_gets_the_max_len_advice():
    # 30 steps into 40: other dilations and other site widths; the MiniRocket's own check names the length
    other = _rocket()
    for holder, sd in _holders(_rocket(max_len=40, num_features=840), other):
        with pytest.raises(RuntimeError, match=r"input_length: .* 30 steps .*build it with max_len=30") as e:
            holder.load_state_dict(sd)
        assert "layers=" not in str(e.value) and "dilations: " not in str(e.value).split("\n\t")[1][:40]


def test_a_refused_load_leaves_no_load_pre_hook_on_the_minirocket_backbone():
    net, sd = _rocket(), _rocket(max_dilations_per_kernel=4).state_dict()  # the MiniRocket's own check raises
    assert not net.backbone._load_state_dict_pre_hooks
    with pytest.raises(RuntimeError, match=r"max_dilations_per_kernel=4"):
        net.load_state_dict(sd)
    assert list(net.backbone._load_state_dict_pre_hooks.values()) == []  # nothing held for a copy or a pickle to carry
