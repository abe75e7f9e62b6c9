"""``nv.sparsify`` of a network whose classifier holds NaN or Inf (probe P5, finding 2): it scored its reference accuracy
from NaN logits (argmax reads a NaN as its class: "validation 99.3% against 10.5%"), so the tolerance meant nothing,
and said nothing. It is now refused up front, naming ``net``, how many weights, the first class and unit, and what to do;
so is the same network given to the ``Sparsify`` callback (its refit is ``nv.sparsify``) and to ``nv.finetune_sparse``."""

from __future__ import annotations

import warnings

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

import neuroview as nv
from neuroview.data import DigitsDataModule
from neuroview.training.module import NeuroViewModule
from neuroview.training.sparse_callback import Sparsify


def _data(n=48, seed=0):
    """Series whose class (of 3) is told by the mean of samples 4..9; batches of 16."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 24, generator=g)
    y = torch.bucketize(x[:, 0, 4:10].mean(1), torch.tensor([-0.2, 0.2]))
    return [(x[i:i + 16], y[i:i + 16]) for i in range(0, n, 16)]


def _cnn(seed=0):
    torch.manual_seed(seed)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 6, 3), nn.ReLU(), nn.Conv1d(6, 6, 3), nn.ReLU()), 3,
                          input_shape=(1, 24))
    net.train()
    for x, _ in _data():  # running statistics of its own codes, as a trained head has
        net(x)
    return net.eval()


def test_sparsify_refuses_a_head_weight_that_is_nan_naming_net_the_class_and_the_unit():
    net = _cnn()
    with torch.no_grad():
        net.classifier.weight[2, 7] = float("nan")
    with pytest.raises(ValueError) as e:
        nv.sparsify(net, _data(), val=_data(seed=1))
    msg = str(e.value)
    assert msg.startswith("net: ") and "NaN or Inf in 1 of 36 weights" in msg
    assert "class 2" in msg and f"unit 7 {net.units[7]}" in msg  # unit 7 is channel 1 of the second site
    assert "check the network's weights" in msg


def test_sparsify_refuses_an_inf_bias_and_a_nan_in_the_head_s_statistics():
    net = _cnn()
    with torch.no_grad():
        net.classifier.bias[1] = float("inf")
    with pytest.raises(ValueError, match=r"^net: .*NaN or Inf in 1 of 3 biases \(first: class 1\)"):
        nv.sparsify(net, _data(), val=_data(seed=1))
    net = _cnn()
    with torch.no_grad():  # the normalization folded into the decision: its weights finite, the effective ones not
        net.norm.running_mean[4] = float("nan")
    assert torch.isfinite(net.classifier.weight).all() and torch.isfinite(net.classifier.bias).all()
    with pytest.raises(ValueError, match=r"^net: .*NaN or Inf in 3 of 3 biases \(first: class 0\)"):
        nv.sparsify(net, _data(), val=_data(seed=1))


def test_finetune_sparse_refuses_a_nan_head_naming_sparse():
    sparse = nv.sparsify(_cnn(), _data(), val=_data(seed=1))
    with torch.no_grad():
        sparse.classifier.weight[0, 3] = float("nan")
    with pytest.raises(ValueError, match=r"^sparse: .*NaN or Inf in 1 of 36 weights \(first: class 0, unit 3 "):
        nv.finetune_sparse(sparse, _data(), epochs=0)  # no epoch: its loss never showed the NaN


def test_the_sparsify_callback_refuses_a_nan_head_before_its_refit(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    m = NeuroViewModule("nv_small_cnn", num_classes=10, in_channels=1, model_kwargs={"widths": [8, 16]}, scheduler="none")
    m.build(torch.randn(4, 1, 8, 8))
    with torch.no_grad():
        m.model.classifier.weight[3, 5] = float("nan")
    tr = pl.Trainer(logger=False, enable_checkpointing=False, limit_test_batches=1, accelerator="cpu", devices=1,
                    enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(tmp_path),
                    callbacks=[Sparsify()])
    with warnings.catch_warnings(), pytest.raises(ValueError, match=r"^net: .*class 3, unit 5 "):
        warnings.simplefilter("ignore")
        tr.test(m, datamodule=DigitsDataModule(batch_size=64))
