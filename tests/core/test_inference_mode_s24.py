"""A CNN whose parameters were made under ``torch.inference_mode()`` finds the sites the same CNN built normally finds.

The passes that find the sites and the reach ran autograd through the backbone's own parameters, which torch refuses
for inference tensors ("Inference tensors cannot be saved for backward"): every first batch failed with an error that
blamed ``x`` (``x: the backbone's forward pass on this batch failed``), inside inference_mode too, and a zoo CNN
created there came back without sites.
"""

import warnings

import pytest
import torch
from torch import nn

import neuroview as nv


def _cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv1d(1, 8, 5), nn.BatchNorm1d(8), nn.ReLU(), nn.Conv1d(8, 8, 5), nn.ReLU(),
                         nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(8, 2)).eval()


def _inference_cnn():
    with torch.inference_mode():
        cnn = _cnn()
    assert all(t.is_inference() for t in [*cnn.parameters(), *cnn.buffers()])
    return cnn


def _wrap(cnn, x=None):
    torch.manual_seed(1)  # the head's initial weights are drawn from the caller's generator
    return nv.NeuroViewCNN(cnn, 3, example_input=x).eval()


def _same_explanation(a, b, x):
    ea, eb = a.explain(x), b.explain(x)
    assert torch.equal(ea.logits, eb.logits)
    assert torch.equal(ea.contributions, eb.contributions)
    assert ea.units == eb.units
    # exact: the contributions and the bias give the logits back (read from the tensors, not the code's own check)
    assert torch.allclose(ea.contributions.sum(-1) + ea.bias, ea.logits, atol=1e-5)


def test_a_cnn_built_under_inference_mode_finds_the_sites_the_same_cnn_built_normally_finds():
    x = torch.randn(4, 1, 40)
    reference, cnn = _wrap(_cnn(), x), _inference_cnn()
    params = dict(cnn.named_parameters())
    net = _wrap(cnn, x)  # was ValueError: x: the backbone's forward pass on this batch failed (... Inference tensors)
    assert net.sites == reference.sites and [(s.name, s.channels, s.axis) for s in net.sites] == [("2", 8, 1), ("4", 8, 1)]
    with torch.inference_mode():
        assert torch.equal(net(x), reference(x))
        _same_explanation(net, reference, x)
    with torch.no_grad():
        assert torch.equal(net(x), reference(x))
    _same_explanation(net, reference, x)
    # the user's own tensors stand in the backbone again, as they were: none replaced, none frozen
    assert all(p is params[n] and p.is_inference() and p.requires_grad for n, p in net.backbone.named_parameters())
    assert all(b.is_inference() for b in net.backbone.buffers())


def test_a_lazy_network_finds_them_on_its_first_batch_inside_inference_mode():
    x = torch.randn(4, 1, 40)
    reference, net = _wrap(_cnn(), x), _wrap(_inference_cnn())
    with torch.inference_mode():
        logits = net(x)  # was ValueError naming x
    assert net.sites is not None and net.sites == reference.sites
    assert torch.equal(logits, reference(x).detach())
    _same_explanation(net, reference, x)


def test_the_reach_of_a_backbone_partly_made_under_inference_mode_is_the_reach_of_the_normal_one():
    """A model built under inference_mode whose head was put in place outside it: the reach pass still runs through
    the inference tensors ahead of the last site, and freezes the head (ordinary tensors) the decision never reads."""
    x = torch.randn(4, 1, 40)
    reference = _wrap(_cnn(), x)
    cnn = _inference_cnn()
    cnn[7] = nn.Linear(8, 2)
    cnn[7].load_state_dict(reference.backbone[7].state_dict())
    net = _wrap(cnn, x)  # was ValueError naming x
    assert net.frozen == reference.frozen == ("7.weight", "7.bias")
    assert not cnn[7].weight.requires_grad and cnn[0].weight.is_inference()
    _same_explanation(net, reference, x)
    net.unwrap()
    assert cnn[7].weight.requires_grad


def test_stand_ins_are_ordinary_copies_and_the_originals_come_back_after_an_error():
    from neuroview.core.reach_graph import stand_ins

    with torch.inference_mode():
        gru, lin = nn.GRU(3, 4, batch_first=True), nn.Linear(4, 4)
    model = nn.ModuleDict({"gru": gru, "lin": lin, "tied": nn.Linear(4, 4)})
    model["tied"].weight = lin.weight  # one tensor at two places
    before = {n: (t, t.clone()) for n, t in model.state_dict(keep_vars=True).items()}
    with pytest.raises(KeyError, match="inside"):
        with stand_ins(model):
            inside = model.state_dict(keep_vars=True)
            assert not any(t.is_inference() for t in inside.values())
            assert all(torch.equal(inside[n], old) and (inside[n] is not t) == t.is_inference()
                       for n, (t, old) in before.items())
            assert model["tied"].weight is model["lin"].weight
            out, _ = model["gru"](torch.randn(2, 5, 3))  # the RNN runs its stand-ins (its flat weights follow)
            assert out.grad_fn is not None  # autograd may record through them
            raise KeyError("inside")
    assert all(model.state_dict(keep_vars=True)[n] is t for n, (t, _) in before.items())
    assert [n for n, t in model.state_dict(keep_vars=True).items() if not t.is_inference()] == ["tied.bias"]


@pytest.mark.parametrize("name", ["nv_lite.gunpoint"])
def test_a_zoo_cnn_created_under_inference_mode_has_its_sites(name):
    x = torch.randn(4, 1, 150)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = nv.create_model(name, pretrained=True).eval()
        with torch.inference_mode():
            net = nv.create_model(name, pretrained=True).eval()
            assert net.sites is not None  # was None: the load-time search failed, swallowed
            assert net.sites == reference.sites
            assert torch.equal(net.explain(x).logits, reference.explain(x).logits)
    _same_explanation(net, reference, x)
