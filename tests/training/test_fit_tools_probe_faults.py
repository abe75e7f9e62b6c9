"""The closed-form and conversion tools on a user's own models and data (a probe of 2026-12-06): retrofit's classes,
records of a replaced head, fine-tuning a frozen backbone, and the inputs these tools are handed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import neuroview as nv


def _data(n: int = 48, classes: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    x = torch.randn(n, 1, 20, generator=g) + y[:, None, None].float()
    return x, y


def _net(classes: int = 3):
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv1d(1, 6, 3), nn.ReLU(), nn.Conv1d(6, 6, 3), nn.ReLU())
    return nv.wrap(backbone, num_classes=classes, input_shape=(1, 20)).eval()


def test_retrofit_refuses_classes_other_than_the_models_output():
    # a hidden layer named fc (16 features) was read as the classes: a 16-class network compared with a 3-class one
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.fc, self.out = nn.Conv1d(1, 8, 3), nn.Linear(8, 16), nn.Linear(16, 3)
            self.act, self.act2 = nn.ReLU(), nn.ReLU()

        def forward(self, x):
            return self.out(self.act2(self.fc(self.act(self.conv(x)).mean(-1))))

    torch.manual_seed(0)
    x, y = _data()
    with pytest.raises(ValueError, match=r"num_classes: the model's output has 3 classes, the NeuroView network 16 .* "
                                         r"pass num_classes=3"):
        nv.retrofit(Model().eval(), [(x, y)], [(x, y)])
    with pytest.raises(ValueError, match=r"the model's output has 3 classes, the NeuroView network 7"):
        nv.retrofit(Model().eval(), [(x, y)], [(x, y)], num_classes=7)
    res = nv.retrofit(Model().eval(), [(x, y)], [(x, y)], num_classes=3)
    assert res.model.num_classes == 3 and res.standard_acc is not None


def test_a_refitted_head_keeps_no_record_of_the_head_it_replaced():
    x, y = _data()
    sparse = nv.finetune_sparse(nv.sparsify(_net(), [(x, y)]), [(x, y)], epochs=1)
    assert hasattr(sparse, "finetuned") and hasattr(sparse, "sparsity_path")
    ridge = nv.fit_ridge_head(sparse, [(x, y)])
    assert not hasattr(ridge, "finetuned") and not hasattr(ridge, "sparsity_path")
    nonzero = lambda n: int((n.effective_classifier()[0] != 0).sum())  # noqa: E731
    assert nonzero(ridge) > nonzero(sparse)  # dense again: those records described another head
    again = nv.sparsify(nv.fit_ridge_head(_net(), [(x, y)]), [(x, y)])
    assert not hasattr(again, "ridge")


def test_fine_tuning_a_frozen_backbone_says_only_the_head_trains():
    x, y = _data()
    sparse = nv.sparsify(_net(), [(x, y)])
    sparse.backbone.requires_grad_(False)  # as nv.retrofit leaves it
    with pytest.warns(UserWarning, match=r"sparse: its backbone is frozen .* only the head's nonzero weights train"):
        nv.finetune_sparse(sparse, [(x, y)], epochs=1)


def test_the_fitting_tools_name_what_they_cannot_read():
    x, y = _data()
    sparse = nv.sparsify(_net(), [(x, y)])
    with pytest.raises(TypeError, match=r"x: expected a torch.Tensor, got ndarray"):
        nv.finetune_sparse(sparse, [(x.numpy(), y.numpy())], epochs=1)
    for fit in (lambda d: nv.finetune_sparse(sparse, d, epochs=1), lambda d: nv.fit_ridge_head(_net(), d)):
        with pytest.raises(ValueError, match=r"train: expected a data module, a DataLoader or an iterable of batches .* "
                                             r"got a TensorDataset \(a Dataset: DataLoader"):
            fit(TensorDataset(x, y))
    for scalar in (np.float32(1.0), np.int64(2), torch.tensor(0.5)):  # refused as no number
        assert nv.fit_ridge_head(_net(), [(x, y)], alphas=scalar).ridge.alphas == (float(scalar),)
    with pytest.raises(ValueError, match=r"alphas: expected one or more penalties > 0"):
        nv.minirocket(iter(()), alphas=-1.0)  # refused before the (here empty) data is read


def test_the_frozen_backbone_warning_reads_the_backbones_the_decision_runs_through():
    import warnings  # noqa: PLC0415

    x, y = _data()
    rocket = nv.sparsify(nv.minirocket([(x, y)], num_features=168), [(x, y)])  # fixed kernels: nothing to unfreeze
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nv.finetune_sparse(rocket, [(x, y)], epochs=1)
    members = [_net() for _ in range(2)]
    for m in members:
        m.backbone.requires_grad_(False)
    ens = nv.sparsify(nv.Ensemble(members), [(x, y)])  # the members' own heads take no part in the global decision
    with pytest.warns(UserWarning, match=r"sparse: its backbone is frozen"):
        nv.finetune_sparse(ens, [(x, y)], epochs=1)


def test_batches_read_by_index_are_still_batches():
    class Batches:  # a sequence of batches with __getitem__ and __len__ only
        def __init__(self, items):
            self.items = items

        def __getitem__(self, i):
            return self.items[i]

        def __len__(self):
            return len(self.items)

    x, y = _data()
    net = _net()
    assert nv.readability(net, Batches([(x, y)])) == nv.readability(net, [(x, y)])
