"""What the loader-taking functions accept: one batch given alone is one batch everywhere (the gallery
took it; sparsify, minirocket and readability iterated its tensors as batches), and what they
refuse is refused by name (dict batches, a model that is not NeuroView, a head not built yet)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import neuroview as nv


def _net():
    torch.manual_seed(0)
    x = torch.randn(40, 1, 20)
    y = (x.mean((1, 2)) > 0).long()
    net = nv.wrap(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.Conv1d(4, 4, 3), nn.ReLU()), num_classes=2)
    net(x)
    return net.eval(), x, y


def test_one_batch_given_alone_is_the_list_of_it():
    net, x, y = _net()
    assert nv.readability(net, (x, y)) == nv.readability(net, [(x, y)])
    assert torch.equal(nv.mean_codes(net, (x, y)), nv.mean_codes(net, [(x, y)]))
    a, b = nv.sparsify(net, (x, y)), nv.sparsify(net, [(x, y)])
    assert torch.equal(a.effective_classifier()[0], b.effective_classifier()[0])
    m, n = nv.minirocket((x, y), num_features=336), nv.minirocket([(x, y)], num_features=336)
    assert torch.equal(m.effective_classifier()[0], n.effective_classifier()[0])


def test_what_cannot_be_read_is_refused_by_name():
    net, x, y = _net()
    with pytest.raises(ValueError, match=r"batch: expected a tensor, \(x, y\) or \(x, lengths, y\) .*got a dict with keys \['x', 'y'\]"):
        nv.sparsify(net, [{"x": x, "y": y}])
    with pytest.raises(TypeError, match=r"net: expected a NeuroView network .*got Sequential"):
        nv.readability(net.backbone, [(x, y)])
    with pytest.raises(TypeError, match="net: expected a NeuroView network"):
        nv.mean_codes(net.backbone, [(x, y)])
    fresh = nv.wrap(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), num_classes=2)
    for f in (nv.units_per_class, lambda n: n.unit_importance(), lambda n: n.top_units()):
        with pytest.raises(RuntimeError, match="sites: not found yet"):  # was an AttributeError on None.weight
            f(fresh)


@pytest.mark.parametrize("kind", ["cnn", "rnn"])
def test_a_sparsified_normalize_false_network_loads_into_the_constructor_it_came_from(kind, tmp_path):
    """sparsify keeps the standardization its path was fitted on: the state dict gained ``norm.*`` keys,
    which a fresh ``normalize=False`` wrap refused (strict) or dropped (strict=False: other logits)."""
    net, x, y = _net()
    torch.manual_seed(1)
    if kind == "cnn":
        make = lambda: nv.wrap(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.Conv1d(4, 4, 3), nn.ReLU()), 2, normalize=False)  # noqa: E731
        inp = x
    else:
        make = lambda: nv.wrap(nn.GRU(1, 4, batch_first=True), 2, max_len=20, normalize=False)  # noqa: E731
        inp = x.transpose(1, 2)
    torch.manual_seed(2)
    dense = make()
    dense(inp)
    sparse = nv.sparsify(dense.eval(), (x, y))
    assert dense.norm is None and sparse.norm is not None
    torch.manual_seed(3)
    fresh = make()
    fresh.load_state_dict(sparse.state_dict())  # strict
    torch.testing.assert_close(fresh.eval()(inp), sparse(inp), rtol=0, atol=0)
    if kind == "rnn":  # saved as a zoo entry, the arguments must say it standardizes (a bare "3 unexpected tensors")
        from neuroview.zoo.pretrained import save_pretrained

        kw = dict(num_classes=2, in_features=1, max_len=20, hidden_size=4, num_layers=1, normalize=False)
        with pytest.raises(ValueError, match=r"arch_kwargs: normalize=False, but the network standardizes.*normalize=True"):
            save_pretrained(sparse, "nv_gru.probe", architecture="nv_gru", arch_kwargs=kw, dataset={}, recipe=None,
                            seed=None, metrics={}, root=tmp_path)
        assert not any(tmp_path.iterdir())


def test_a_sparsified_shared_steps_rnn_loads_into_the_constructor_it_came_from():
    """sparsify merges the shared part into the weight (no step_shared.weight in the state dict): a fresh
    shared_steps network refused it with PyTorch's bare "Missing key(s)" (the CLI worked around it)."""
    torch.manual_seed(0)
    x = torch.randn(20, 1, 30)
    y = (x.mean((1, 2)) > 0).long()
    make = lambda: nv.create_model("nv_gru", num_classes=2, in_features=1, max_len=30, shared_steps=True)  # noqa: E731
    sparse = nv.sparsify(make().eval(), (x, y))
    fresh = make()
    fresh.load_state_dict(sparse.state_dict())  # strict
    torch.testing.assert_close(fresh.eval()(x.transpose(1, 2)), sparse(x.transpose(1, 2)), rtol=0, atol=0)
