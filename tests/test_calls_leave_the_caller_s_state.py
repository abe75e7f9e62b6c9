"""Calls that leave what the caller holds as it was: the network's modes after a report, the global RNG after
building a head whose weights are replaced anyway or checking that an architecture rebuilds (a session's later
draws, its dropout masks and shuffles, moved with how many such calls came before)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.zoo import pretrained as zoo


def _cnn(seed):
    torch.manual_seed(seed)
    backbone = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.3),
                             nn.Conv2d(4, 5, 3, padding=1), nn.ReLU())
    net = nv.NeuroViewCNN(backbone, 3, input_shape=(1, 6, 6)).train()
    with torch.no_grad():
        net(torch.rand(12, 1, 6, 6))
    return net


def test_a_report_gives_the_network_its_modes_back(tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("jinja2")
    from neuroview.viz.report_writer import write_report

    net = _cnn(0)
    net.backbone[3].eval()  # a mix of modes, each given back as it was
    modes = [m.training for m in net.modules()]
    write_report(net, torch.rand(6, 1, 6, 6), torch.arange(6) % 3, tmp_path / "r", examples=1, progress=False, dpi=30)
    assert [m.training for m in net.modules()] == modes


def test_sparsifying_an_ensemble_draws_nothing_from_the_global_rng():
    ens = nv.Ensemble([_cnn(s).eval() for s in range(2)])
    x, y = torch.rand(60, 1, 6, 6), torch.arange(60) % 3
    torch.manual_seed(7)
    state = torch.get_rng_state()
    nv.sparsify(ens, [(x, y)], tolerance=10.0, points=5)
    assert torch.equal(torch.get_rng_state(), state)


def test_save_pretrained_draws_nothing_from_the_global_rng(tmp_path):
    kw = {"num_classes": 3, "in_features": 2, "max_len": 6, "hidden_size": 3}
    torch.manual_seed(0)
    net = nv.create_model("nv_gru", **kw)
    state = torch.get_rng_state()
    zoo.save_pretrained(net, "nv_gru.toy", architecture="nv_gru", arch_kwargs=kw, dataset={"name": "none"},
                        recipe=None, seed=0, metrics={}, root=tmp_path)
    assert torch.equal(torch.get_rng_state(), state)


def test_loading_a_trained_entry_draws_nothing_from_the_global_rng(tmp_path):
    # its network was built with random initial weights, which the checkpoint replaces: a seeded script's later
    # shuffles depended on which zoo model it had loaded (a probe of 2026-12-06)
    kw = {"num_classes": 3, "in_features": 2, "max_len": 6, "hidden_size": 3}
    zoo.save_pretrained(nv.create_model("nv_gru", **kw), "nv_gru.toy", architecture="nv_gru", arch_kwargs=kw,
                        dataset={"name": "none"}, recipe=None, seed=0, metrics={}, root=tmp_path)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    nv.create_model("nv_gru.toy", pretrained=True, root=tmp_path)
    assert torch.equal(torch.get_rng_state(), state)


def test_a_batched_ensemble_s_first_pass_draws_nothing_from_the_global_rng():
    """It built its grouped layers with fresh initial weights from the caller's RNG, which a training loader shuffles
    with: trained batched and apart, the same recipe saw other batch orders from the second epoch on."""
    torch.manual_seed(0)
    net = nv.create_model("nv_lite", num_classes=2, in_channels=1, members=3, batched=True).train()
    x = torch.randn(5, 1, 60)
    net.discover(x)  # the members' lazy heads, built on a first batch batched or not
    state = torch.get_rng_state()
    net(x)  # builds the grouped pass
    assert net._pass is not None
    assert torch.equal(torch.get_rng_state(), state)
