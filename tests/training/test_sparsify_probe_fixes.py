"""Fixes of a probe of sparsify, readability and the gallery: a point where a class reads no unit
(k90 0) no longer meets a budget; a budget no point meets is warned about and recorded; a network
whose head was never built is refused; finetune_sparse, readability and unit_gallery name their
bad inputs (steps-last series, a data module, labels) as sparsify does."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.training.sparsity_path import SparsityPath, choose_point

ROOT = Path(__file__).resolve().parents[2]


def _k90_by_hand(net, x: torch.Tensor) -> float:
    """The median k90 of ``net``'s decisions on ``x``: the predicted logit's contributions against the mean code
    of ``x``, largest |value| first, the fewest that make up 90% of their |sum|."""
    w, b = net.effective_classifier()
    c = net.codes(x)
    pred = (c @ w.T + b).argmax(1)
    a = (w[pred] * (c - c.mean(0))).abs().sort(1, descending=True).values
    total = a.sum(1, keepdim=True)
    k = torch.where(total[:, 0] > 0, (a.cumsum(1) < 0.9 * total).sum(1) + 1, torch.zeros(len(a), dtype=torch.long))
    return float(k.float().quantile(0.5))


# ------------------------------------------------------------- 1: a class that reads no unit
def test_choose_point_admits_only_points_where_every_class_reads_a_unit():
    units = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0])  # mean features per class
    fewest = torch.tensor([0.0, 0.0, 1.0, 1.0, 2.0])  # point 1: one class reads 3, the others none
    acc = torch.tensor([40.0, 99.5, 99.5, 100.0, 100.0])
    loss = torch.tensor([1.0, 0.5, 0.3, 0.2, 0.1])[:, None].expand(5, 3)
    k90 = torch.tensor([0.0, 0.0, 2.0, 3.0, 4.0])  # point 1's decisions count 0: no contribution at all
    assert choose_point(acc, loss, units, 100.0, 1.0, 0.0) == 1  # without fewest: as before
    assert choose_point(acc, loss, units, 100.0, 1.0, 0.0, fewest=fewest) == 2
    # a budget of 1: only point 1 (k90 0) is within it, and a class reads nothing there: the smallest k90 of the others
    assert choose_point(acc, loss, units, 100.0, 1.0, 0.0, k90=k90, max_k90=1.0) == 1
    assert choose_point(acc, loss, units, 100.0, 1.0, 0.0, k90=k90, max_k90=1.0, fewest=fewest) == 2
    assert choose_point(acc, loss, units, 100.0, 1.0, 1.0, k90=k90, max_k90=3.0, fewest=fewest) == 3
    # no point where every class reads one: the points that read any, as before, with a warning
    with pytest.warns(UserWarning, match="no point of the path has every class read a unit"):
        assert choose_point(acc, loss, units, 100.0, 1.0, 0.0, k90=k90, max_k90=1.0, fewest=torch.zeros(5)) == 1


def test_sparsify_under_a_k90_budget_keeps_no_head_with_a_class_that_reads_no_unit(one_thread):
    # one thread: which points of this tiny path meet the budget turns on the last bits of its sums (with two
    # threads a point meeting it exists, and the case the test builds is gone)
    torch.manual_seed(0)
    n = 120
    x = torch.randn(n, 1, 24)
    y = (x[:, 0, 3:8].mean(1) > 0).long() + (x[:, 0, 12:18].mean(1) > 0.3).long()  # 3 classes
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 12, 3), nn.ReLU(), nn.Conv1d(12, 10, 3), nn.ReLU()), 3,
                          input_shape=(1, 24))
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    for _ in range(60):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    net.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sparse = nv.sparsify(net, [(x, y)], max_k90=1)
    p = sparse.sparsity_path
    with torch.no_grad():
        w = sparse.effective_classifier()[0]
        # every class reads at least one unit (it was [6, 0, 0]: k90 0 for 57% of the decisions, "within 1")
        assert int((w != 0).sum(1).min()) >= 1
        assert nv.units_per_class(sparse).tolist() == (w != 0).sum(1).tolist()
        # k90 keeps its definition: the path's k90 of the kept point is the median by hand on the training split
        assert float(p.k90[p.chosen]) == _k90_by_hand(sparse, x)
    assert bool(((p.k90 <= 1) & (p.units_per_class > 0)).any())  # the budget was "met" only by such heads
    assert int(p.min_units_per_class[p.chosen]) >= 1 and p.budget_met is False
    assert "over the budget of 1" in str(p)


def test_the_shipped_sparse_entries_have_every_class_read_a_unit():
    """The rule above keeps the point it kept before wherever every class of that point reads a unit:
    the zoo's sparse entries (their support is the chosen point's; fine-tuning keeps it) would not change."""
    entries = json.loads((ROOT / "checkpoints" / "manifest.json").read_text())["entries"]
    names = [n for n in entries if n.endswith("_sparse")]
    assert len(names) == 16
    for name in names:
        with torch.no_grad():
            w = nv.create_model(name, pretrained=True).effective_classifier()[0]
        assert int((w != 0).sum(1).min()) >= 1, name


# ------------------------------------------------------------- 2: a budget no point meets
def _paired():
    """Units in exact pairs: every decision needs at least 2 contributions, so a budget of 1 cannot be met."""
    torch.manual_seed(0)
    conv = nn.Conv1d(1, 4, 3)
    with torch.no_grad():
        conv.weight[2:] = conv.weight[:2]
        conv.bias[2:] = conv.bias[:2]
    net = nv.NeuroViewCNN(nn.Sequential(conv, nn.ReLU()), 2, input_shape=(1, 20)).eval()
    x = torch.randn(80, 1, 20)
    c = net.codes(x)
    return net, x, (c[:, 0] > c[:, 0].median()).long()


def test_a_budget_no_point_meets_is_warned_about_and_recorded():
    net, x, y = _paired()
    with pytest.warns(UserWarning, match=r"max_k90: expected k90 within 1, the point kept has 2\. No point of the path"):
        sparse = nv.sparsify(net, [(x, y)], max_k90=1)
    p = sparse.sparsity_path
    with torch.no_grad():
        k = _k90_by_hand(sparse, x)
    assert k == 2.0 and float(p.k90[p.chosen]) == k
    assert bool((p.k90[p.units_per_class > 0] > 1).all())  # no point met it
    assert p.budget_met is False
    assert "k90 2 over the budget of 1" in str(p) and "within 1" not in str(p)


def test_a_budget_met_says_within_and_warns_nothing():
    net, x, y = _paired()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sparse = nv.sparsify(net, [(x, y)], max_k90=2)
    assert not [w for w in caught if "max_k90" in str(w.message)]
    p = sparse.sparsity_path
    assert p.budget_met is True and f"k90 {float(p.k90[p.chosen]):g} within 2" in str(p)
    assert nv.sparsify(net, [(x, y)]).sparsity_path.budget_met is None  # no budget


def test_the_summary_says_which_budget_is_over():
    one = torch.ones(2)
    p = SparsityPath(lambdas=one, val_acc=one * 90, train_acc=one * 90, units_per_class=one * 3, groups_per_class=one,
                     chosen=1, reference=90.0, tolerance=1.0, validation="v", groups="step", num_features=8,
                     k90=torch.tensor([4.0, 5.0]), max_k90=6.0, k90_steps=torch.tensor([2.0, 3.0]), max_k90_steps=2.0)
    assert ", k90 5 within 6, k90 3 steps over the budget of 2 against" in str(p)
    assert p.budget_met is False


# ------------------------------------------------------------- 3: a head never built
def test_sparsify_refuses_a_network_whose_head_was_never_built_and_leaves_it_as_it_was():
    torch.manual_seed(0)
    x = torch.randn(60, 1, 20)
    y = (x[:, 0, 5:10].mean(1) > 0).long()
    lazy = nv.wrap(nn.Sequential(nn.Conv1d(1, 8, 3), nn.ReLU()), 2)
    keys = sorted(lazy.state_dict())
    with pytest.raises(ValueError, match=r"net: expected a trained NeuroView network, got one whose classifier was "
                                         r"never built .*train it first, or build it with example_input="):
        nv.sparsify(lazy, [(x[20:], y[20:])], val=[(x[:20], y[:20])])
    assert sorted(lazy.state_dict()) == keys == ["backbone.0.bias", "backbone.0.weight"]
    assert lazy.classifier is None and lazy.sites is None
    members = nv.Ensemble([nv.wrap(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), 2) for _ in range(2)])
    with pytest.raises(ValueError, match=r"net: .*members \[0, 1\] of an Ensemble have no head"):
        nv.sparsify(members, [(x, y)])


# ------------------------------------------------------------- 4: finetune_sparse on steps-last series
@pytest.mark.parametrize("batch_first", [True, False])
def test_finetune_sparse_names_steps_last_series_as_sparsify_does(batch_first):
    torch.manual_seed(0)
    x, y = torch.randn(24, 2, 12), torch.randint(0, 2, (24,))
    net = nv.wrap(nn.GRU(2, 4, batch_first=batch_first), num_classes=2, max_len=12).eval()
    msg = r"train: expected channels-first series \[B, 2, T\] as the data modules give them, got shape \(24, 12, 2\)"
    with pytest.raises(ValueError, match=msg):
        nv.sparsify(net, [(x.transpose(1, 2), y)])
    with pytest.raises(ValueError, match=msg):
        nv.finetune_sparse(net, [(x.transpose(1, 2), y)], epochs=1)
    # channels-first series train: the first epoch's loss is the network's on them, read in its own layout
    tuned = nv.finetune_sparse(net, [(x, y)], epochs=1, lr=1e-3)
    ref = nv.wrap(nn.GRU(2, 4, batch_first=batch_first), num_classes=2, max_len=12)
    ref.load_state_dict(net.state_dict())
    ref.train()
    ref.norm.eval()  # finetune_sparse keeps the standardization as it is
    with torch.no_grad():
        seq = x.permute(0, 2, 1) if batch_first else x.permute(2, 0, 1)
        hand = float(nn.functional.cross_entropy(ref(seq), y))
    assert tuned.finetuned["train_loss"][0] == pytest.approx(hand, rel=1e-5)


# ------------------------------------------------------------- 5: readability given a data module
def test_readability_refuses_a_data_module_and_takes_its_loader(tmp_path):
    from neuroview.data import NpzDataModule

    rng = np.random.default_rng(0)
    x = rng.standard_normal((80, 1, 20)).astype("float32")
    xt = rng.standard_normal((30, 1, 20)).astype("float32")
    np.savez(tmp_path / "a.npz", X=x, y=(x[:, 0, 5:10].mean(1) > 0).astype(int), X_test=xt,
             y_test=(xt[:, 0, 5:10].mean(1) > 0).astype(int))
    dm = NpzDataModule(str(tmp_path / "a.npz"), batch_size=16)
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 8, 3), nn.ReLU()), 2, input_shape=(1, 20)).eval()
    with pytest.raises(ValueError, match=r"batches: expected an iterable of batches .*got a data module \(NpzDataModule\); "
                                         r"pass one of its loaders, e\.g\. dm\.test_dataloader\(\)"):
        nv.readability(net, dm)
    dm.setup("test")
    assert nv.readability(net, dm.test_dataloader())["samples"] == len(xt)


# ------------------------------------------------------------- 6: the gallery's labels
def _gallery_nets():
    torch.manual_seed(0)
    cnn = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 6, 3), nn.ReLU()), 2, input_shape=(1, 20)).eval()
    rnn = nv.wrap(nn.GRU(1, 4, batch_first=True), num_classes=2, max_len=20).eval()
    return cnn, rnn, torch.randn(40, 1, 20), torch.arange(40) % 2


@pytest.mark.parametrize("kind", ["cnn", "rnn"])
def test_unit_gallery_checks_labels_as_readability_does(kind):
    cnn, rnn, x, y = _gallery_nets()
    net = cnn if kind == "cnn" else rnn
    with pytest.raises(ValueError, match=r"loader: labels must lie in \[0, 2\) \(the network's classes\), got \[5, 6\]"):
        nv.unit_gallery(net, [(x, y + 5)], [0], k=3)
    with pytest.raises(ValueError, match=r"loader: expected one class index per sample, shape \[40\], got labels of shape \(40, 1\) \(a column: pass y\.squeeze\(1\)\)"):
        nv.unit_gallery(net, [(x, y[:, None])], [0], k=3)
    with pytest.raises(ValueError, match=r"loader: expected one class index per sample, shape \[40\], got labels of shape \(30,\)"):
        nv.unit_gallery(net, [(x, y[:30])], [0], k=3)
    g = nv.unit_gallery(net, [(x, y.float())], [0], k=3)  # whole numbers stored as floats pass, as class indices
    assert g.y.dtype == torch.long and g.y[0].tolist() == y[g.index[0]].tolist()
    if kind == "rnn":
        assert torch.allclose(g.class_means, torch.stack([x[y == c].mean(0) for c in range(2)]))


def test_mean_codes_and_sparsify_give_a_module_s_own_train_override_its_call_back():
    class Switch(nn.Module):  # a module whose train() keeps a state of its own
        def __init__(self):
            super().__init__()
            self.on = True

        def train(self, mode=True):
            super().train(mode)
            self.on = mode
            return self

        def forward(self, x):
            return x

    torch.manual_seed(0)
    backbone = nn.Sequential(Switch(), nn.Conv1d(1, 4, 3), nn.ReLU())
    net = nv.NeuroViewCNN(backbone, 2, input_shape=(1, 12)).train()
    x, y = torch.randn(40, 1, 12), torch.arange(40) % 2
    nv.mean_codes(net, [(x, y)])
    assert backbone[0].training and backbone[0].on  # it was left training with its switch off
    nv.sparsify(net, [(x, y)], tolerance=5.0, points=4)
    assert backbone[0].training and backbone[0].on
