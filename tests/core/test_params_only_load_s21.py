"""A dict of a network's parameters alone (``dict(net.named_parameters())``: torch.func, an average of parameters) loaded
back keeps the head's normalization, as torch's rule keeps a BatchNorm's buffers (strict loading refuses it, naming
them; ``strict=False`` keeps them). It matched the key test for a ``normalize=False`` network's whole file and dropped
the normalization, even with ``strict=True``: every logit moved (probe P4, finding 1).

Known answers: hand-set backbones, heads and statistics, logits computed here by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import neuroview as nv
from test_norm_load_both_ways_s17 import _cnn_backbone  # hand-set: its codes are the signs of x
from test_review_b_mends_s17 import _rnn  # h_t = relu(x_t)

W = torch.tensor([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]])
B = torch.tensor([0.1, -0.2, 0.3])
MEAN, VAR = torch.tensor([0.5, 0.25]), torch.tensor([0.04, 0.09])
EPS = 1e-5


def _normalized_cnn():
    """A default (normalized) wrap with hand-set head and statistics, the floor off; its logits by hand."""
    net = nv.wrap(_cnn_backbone(), num_classes=3, input_shape=(1, 4)).eval()
    net.norm.floor = 0.0
    with torch.no_grad():
        net.classifier.weight.copy_(W)
        net.classifier.bias.copy_(B)
        net.norm.running_mean.copy_(MEAN)
        net.norm.running_var.copy_(VAR)
    x = torch.tensor([[[1.0, 2.0, -1.0, 3.0]], [[-1.0, -2.0, -3.0, 4.0]]])
    codes = torch.tensor([[0.75, 0.25], [0.25, 0.75]])  # by hand, from the signs of x
    want = ((codes - MEAN) / torch.sqrt(VAR + EPS)) @ W.T + B
    torch.testing.assert_close(net(x), want, rtol=0, atol=1e-5)
    return net, x, want


def _params(net) -> dict:
    return {k: v.detach().clone() for k, v in net.named_parameters()}


def test_a_parameters_only_dict_is_refused_by_strict_loading_naming_the_statistics():
    net, x, want = _normalized_cnn()
    norm = net.norm
    with pytest.warns(UserWarning, match=r"norm\.running_mean, norm\.running_var: .*no record.*kept the normalization.*"
                                         r"a dict of parameters alone.*named_buffers.*normalize=False") as said, \
            pytest.raises(RuntimeError, match=r"Missing key\(s\).*norm\.running_mean.*norm\.running_var"):
        net.load_state_dict(_params(net))
    assert said[0].filename == __file__  # said at the caller's line
    assert net.norm is norm  # was: dropped, and "All keys matched successfully"
    torch.testing.assert_close(net(x), want, rtol=0, atol=1e-5)


def test_a_parameters_only_dict_with_strict_false_keeps_the_statistics_and_says_so():
    net, x, want = _normalized_cnn()
    norm = net.norm
    with pytest.warns(UserWarning, match=r"kept the normalization.*strict=False keeps them.*a dict of parameters alone"):
        res = net.load_state_dict(_params(net), strict=False)
    assert net.norm is norm and {"norm.running_mean", "norm.running_var"} <= set(res.missing_keys)
    torch.testing.assert_close(net(x), want, rtol=0, atol=1e-5)  # was: 0.9 off, the normalization gone
    exp = net.explain(x)
    torch.testing.assert_close(exp.contributions.flatten(2).sum(-1) + exp.bias, want, rtol=0, atol=1e-5)


def test_parameters_with_the_buffers_load_without_a_word():
    net, x, want = _normalized_cnn()
    with torch.no_grad():
        net.classifier.bias.add_(1.0)  # edited, then its parameters and buffers written back
    sd = {**{k: v.clone() for k, v in net.named_buffers()}, **_params(net)}
    with torch.no_grad():
        sd["classifier.bias"].sub_(1.0)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not net.load_state_dict(sd).missing_keys
    torch.testing.assert_close(net(x), want, rtol=0, atol=1e-5)


def test_a_real_state_dict_still_tells_a_normalize_false_file_from_missing_statistics():
    net, x, want = _normalized_cnn()
    sd = net.state_dict()
    del sd["norm.running_mean"], sd["norm.running_var"], sd["norm.num_batches_tracked"]  # its record says it had one
    res = net.load_state_dict(sd, strict=False)
    assert net.norm is not None and "norm.running_mean" in res.missing_keys
    torch.testing.assert_close(net(x), want, rtol=0, atol=1e-5)
    plain = nv.wrap(_cnn_backbone(), num_classes=3, normalize=False, input_shape=(1, 4))
    with torch.no_grad():
        plain.classifier.weight.copy_(W)
        plain.classifier.bias.copy_(B)
    net.load_state_dict(plain.state_dict())  # the record of a network without one: dropped, as saved
    assert net.norm is None
    torch.testing.assert_close(net(x), torch.tensor([[0.75, 0.25], [0.25, 0.75]]) @ W.T + B, rtol=0, atol=1e-6)


def _hand_rnn():
    """A NeuroView-RNN over h_t = relu(x_t) with hand-set head and statistics, the floor off; its logits by hand."""
    x = torch.tensor([[1.0, -2.0, 3.0], [-1.0, 2.0, 0.5]])[..., None]  # [B, T, 1]
    h = torch.tensor([[1.0, 0.0, 3.0], [0.0, 2.0, 0.5]])  # relu(x), every step
    w, b = torch.tensor([[1.0, -1.0, 2.0], [0.5, 0.25, -1.0]]), torch.tensor([0.5, -0.5])
    mean, var = torch.tensor([0.5, 1.0, 1.5]), torch.tensor([1.0, 4.0, 0.25])
    net = nv.wrap(_rnn(), num_classes=2, max_len=3).eval()
    net.norm.floor = 0.0
    with torch.no_grad():
        net.classifier.weight.copy_(w)
        net.classifier.bias.copy_(b)
        net.norm.running_mean.copy_(mean)
        net.norm.running_var.copy_(var)
    want = ((h - mean) / torch.sqrt(var + EPS)) @ w.T + b
    return net, x, want


def test_an_rnn_keeps_its_statistics_for_a_parameters_only_dict():
    net, x, want = _hand_rnn()
    torch.testing.assert_close(net(x), want, rtol=0, atol=1e-5)
    with pytest.warns(UserWarning, match="kept the normalization"), \
            pytest.raises(RuntimeError, match=r"Missing key\(s\).*norm\.running_mean"):
        net.load_state_dict(_params(net))
    with pytest.warns(UserWarning, match="kept the normalization"):
        net.load_state_dict(_params(net), strict=False)
    assert net.norm is not None
    torch.testing.assert_close(net(x), want, rtol=0, atol=1e-5)


def test_a_parameters_only_dict_through_another_module_keeps_the_statistics():
    # torch hands a nested network its own record (local_metadata): empty for a dict of parameters, so the nested
    # load is read as the top-level one is (R8 finding 1: it dropped the normalization, every logit moved)
    net, x, want = _normalized_cnn()
    norm, outer = net.norm, nn.Sequential(net)
    params = {f"0.{k}": v for k, v in _params(net).items()}
    with pytest.warns(UserWarning, match=r"0\.norm\.running_mean, 0\.norm\.running_var: .*kept the normalization"), \
            pytest.raises(RuntimeError, match=r"Missing key\(s\).*0\.norm\.running_mean"):
        outer.load_state_dict(params)
    with pytest.warns(UserWarning, match="kept the normalization"):
        res = outer.load_state_dict(params, strict=False)
    assert net.norm is norm and "0.norm.running_var" in res.missing_keys
    torch.testing.assert_close(outer(x), want, rtol=0, atol=1e-5)


def _plain_cnn(backbone=None):
    plain = nv.wrap(backbone or _cnn_backbone(), num_classes=3, normalize=False, input_shape=(1, 4)).eval()
    with torch.no_grad():
        plain.classifier.weight.copy_(W)
        plain.classifier.bias.copy_(B)
    return plain


CODES = torch.tensor([[0.75, 0.25], [0.25, 0.75]])  # the hard codes of _normalized_cnn's x, by hand


def test_a_normalize_false_state_dict_through_another_module_drops_the_normalization_without_a_word():
    # row 412: an ensemble's / DDP's / AveragedModel's file of normalize=False networks loads into default wraps
    net, x, _ = _normalized_cnn()
    outer = nn.Sequential(net)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (112e211 warned "dropped the normalization" on every such load)
        assert not outer.load_state_dict(nn.Sequential(_plain_cnn()).state_dict()).missing_keys
    assert net.norm is None
    torch.testing.assert_close(outer(x), CODES @ W.T + B, rtol=0, atol=1e-6)


def _bn_backbone() -> nn.Module:
    """_cnn_backbone with an eval-mode BatchNorm of statistics (0, 1), scale 2: the signs, so the codes, unchanged."""
    bn = nn.BatchNorm1d(2)
    with torch.no_grad():
        bn.weight.fill_(2.0)
    return nn.Sequential(_cnn_backbone()[0], bn, nn.ReLU())


@pytest.mark.parametrize("nested", [False, True], ids=["top", "nested"])
def test_a_copy_of_a_normalize_false_file_holding_backbone_buffers_loads_as_before(nested):
    # R8 finding 2: a dict holding the backbone's BatchNorm buffers is no dict of parameters: a safetensors file or a
    # {k: v.clone()} copy of a normalize=False network's state dict (no _metadata) loads as saved, strictly
    plain = _plain_cnn(_bn_backbone())
    x = torch.tensor([[[1.0, 2.0, -1.0, 3.0]], [[-1.0, -2.0, -3.0, 4.0]]])
    torch.testing.assert_close(plain(x), CODES @ W.T + B, rtol=0, atol=1e-6)
    sd = {("0." if nested else "") + k: v.clone() for k, v in plain.state_dict().items()}  # no record
    net = nv.wrap(_bn_backbone(), num_classes=3, input_shape=(1, 4)).eval()
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (nn.Sequential(net) if nested else net).load_state_dict(sd)  # 112e211: refused, norm.* missing
    assert net.norm is None
    torch.testing.assert_close(net(x), CODES @ W.T + B, rtol=0, atol=1e-6)


def test_the_warning_of_a_safetensors_load_points_at_the_callers_line(tmp_path):
    from safetensors.torch import load_model, save_file
    net, x, want = _normalized_cnn()
    save_file(_params(net), str(tmp_path / "params.safetensors"))
    with pytest.warns(UserWarning, match="kept the normalization") as said:
        load_model(net, str(tmp_path / "params.safetensors"), strict=False)
    assert said[0].filename == __file__  # not safetensors/torch.py
    torch.testing.assert_close(net(x), want, rtol=0, atol=1e-5)


@pytest.mark.parametrize("nested", [False, True])
def test_a_parameters_only_dict_loaded_with_assign_keeps_the_statistics(nested):
    # torch's load_state_dict writes {"assign_to_params_buffers": True} into every module's record under assign=True
    # (the meta-device pattern): it was read as a real file's record and the normalization dropped, every logit moved
    # (T8 finding 1); for a buffer-free RNN strict loading said "All keys matched successfully"
    net, x, want = _normalized_cnn()
    norm, outer = net.norm, nn.Sequential(net) if nested else net
    pre = "0." if nested else ""
    params = {f"{pre}{k}": v for k, v in _params(net).items()}
    with pytest.warns(UserWarning, match=rf"{pre}norm\.running_mean, {pre}norm\.running_var: .*kept the normalization"):
        res = outer.load_state_dict(params, strict=False, assign=True)
    assert net.norm is norm and f"{pre}norm.running_var" in res.missing_keys
    torch.testing.assert_close(outer(x), want, rtol=0, atol=1e-5)


def test_an_rnns_parameters_only_dict_loaded_with_assign_is_refused_by_strict_loading():
    net, x, want = _hand_rnn()
    with pytest.warns(UserWarning, match="kept the normalization"), \
            pytest.raises(RuntimeError, match=r"Missing key\(s\).*norm\.running_mean.*norm\.running_var"):
        net.load_state_dict(_params(net), assign=True)  # was: "All keys matched successfully", norm None
    assert net.norm is not None
    torch.testing.assert_close(net(x), want, rtol=0, atol=1e-5)


def test_a_real_state_dict_loaded_with_assign_still_drops_a_normalize_false_files_absent_normalization():
    # the record of a real state_dict() (torch's version) still tells a normalize=False file: dropped, as without assign
    plain = _plain_cnn()
    net, x, _ = _normalized_cnn()
    outer = nn.Sequential(net)
    outer.load_state_dict(nn.Sequential(plain).state_dict(), strict=False, assign=True)
    assert net.norm is None
    torch.testing.assert_close(net(x), CODES @ W.T + B, rtol=0, atol=1e-5)
