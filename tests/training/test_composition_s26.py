"""Operations applied in sequence (probe P7): fine-tuning keeps the head's spreads true to the codes it reads now,
a second fine-tuning keeps the first one's record, and a dense ensemble's file loads into its sparsified copy."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import neuroview as nv
from neuroview.training.sparse_finetune import _recentre


def _trained(seed=0, bn=True, steps=40):
    """A small 3-class CNN (BatchNorm in its backbone: fine-tuning in train mode moves its codes) and its data."""
    torch.manual_seed(seed)
    x = torch.randn(90, 1, 24)
    y = torch.arange(90) % 3
    x[:, 0, 5:10] += y[:, None].float() * 1.5
    layers = [nn.Conv1d(1, 8, 3)] + ([nn.BatchNorm1d(8)] if bn else []) + [nn.ReLU(), nn.Conv1d(8, 8, 3), nn.ReLU()]
    net = nv.NeuroViewCNN(nn.Sequential(*layers), 3, input_shape=(1, 24))
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    net.train()
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    return net.eval(), x, y


def _std(codes):
    """The spread of each unit's code over the samples, computed here by hand (not by the network's normalization)."""
    centred = codes.double() - codes.double().sum(0) / len(codes)
    return (centred.pow(2).sum(0) / len(codes)).sqrt()


def test_finetune_sparse_weighs_units_by_the_spread_of_the_fine_tuned_codes(one_thread):
    net, x, y = _trained()
    train = [(x[i:i + 30], y[i:i + 30]) for i in range(0, 90, 30)]
    sparse = nv.sparsify(net, train, points=8, max_iter=200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tuned = nv.finetune_sparse(sparse, train, epochs=5, lr=1e-2)
    assert torch.equal(tuned.classifier.weight != 0, sparse.classifier.weight != 0)  # the support kept
    with torch.no_grad():
        codes = tuned.codes(x)
    std = _std(codes)
    assert not torch.allclose(std, _std(sparse.codes(x).detach()), rtol=0.05)  # the codes did move
    varies = std > 0.05 * std.mean()  # away from the normalization's variance floor
    raw = tuned.unit_importance().double()  # the weight on each raw code
    expected = (raw * std)[:, varies]
    got = tuned.unit_importance(standardized=True).double()[:, varies]
    torch.testing.assert_close(got.abs(), expected.abs(), rtol=1e-3, atol=1e-6)
    # the top units are those of the codes' spread now (top_units ranks by signed weight, zeros last)
    hand = torch.where(raw != 0, raw * std, -torch.inf)
    for c, row in enumerate(tuned.top_units(len(std))):
        ranked = [tuned.units.index((s, ch)) for s, ch, _ in row]
        ours = [i for i in hand[c].argsort(descending=True).tolist() if raw[c, i] != 0]
        assert [i for i in ranked if varies[i]] == [i for i in ours if varies[i]]


def test_recentre_rescales_the_head_without_moving_a_logit(one_thread):
    net, x, y = _trained()
    sparse = nv.sparsify(net, [(x, y)], points=8, max_iter=200)
    moved = copy.deepcopy(sparse)
    with torch.no_grad():  # the backbone changed, as fine-tuning changes it
        for p in moved.backbone.parameters():
            p.mul_(1.5).add_(0.1 * torch.randn_like(p))
        before, zeros = moved(x), moved.classifier.weight == 0
    _recentre(moved, [(x, y)])
    with torch.no_grad():
        after = moved(x)
        codes = moved.codes(x)
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)  # every logit the same function
    assert torch.equal(moved.classifier.weight == 0, zeros)  # zeros stay zero, the support unchanged
    var = _std(codes).pow(2)
    torch.testing.assert_close(moved.norm.running_var.double(), var, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(moved.norm.running_mean.double(), codes.double().mean(0), rtol=1e-5, atol=1e-6)


def test_a_second_finetuning_keeps_the_first_ones_record(one_thread):
    net, x, y = _trained(bn=False)
    train = [(x, y)]
    sparse = nv.sparsify(net, train, points=8, max_iter=200)
    t1 = nv.finetune_sparse(sparse, train, epochs=2, lr=1e-3, seed=1)
    t2 = nv.finetune_sparse(t1, train, epochs=3, lr=1e-3, seed=2)
    assert t2.finetuned["seed"] == 2 and t2.finetuned["epochs"] == 3
    assert t2.finetuned["earlier"] == [t1.finetuned]  # the lineage replays: first t1's, then this one
    assert "earlier" not in t1.finetuned and t1.finetuned["seed"] == 1
    t3 = nv.finetune_sparse(t2, train, epochs=1, lr=1e-3, seed=3)
    assert [r["seed"] for r in t3.finetuned["earlier"]] == [1, 2]
    assert all("earlier" not in r for r in t3.finetuned["earlier"])  # flat, in the order they were applied
    # replayed from the sparse network, the records give the same network
    again = sparse
    for r in (*t3.finetuned["earlier"], t3.finetuned):
        again = nv.finetune_sparse(again, train, epochs=r["epochs"], lr=r["lr"], seed=r["seed"], mode=r["mode"])
    assert torch.equal(again(x), t3(x))
    # sparsify refits the head: no fine-tuning record, earlier ones neither
    assert getattr(nv.sparsify(t2, train, points=4, max_iter=50), "finetuned", None) is None


def _ensemble():
    n1, x, y = _trained(seed=0, bn=False)
    n2 = copy.deepcopy(n1)
    with torch.no_grad():
        for p in n2.backbone.parameters():
            p.add_(0.05 * torch.randn_like(p))
    ens = nv.Ensemble([n1, n2]).eval()
    return ens, nv.sparsify(ens, [(x, y)], points=8), x


@pytest.mark.parametrize("strict", [True, False])
def test_a_dense_ensembles_file_loads_into_its_sparsified_copy_as_the_files_network(one_thread, strict):
    ens, sparse, x = _ensemble()
    assert sparse.classifier is not None and not torch.equal(sparse(x), ens(x))
    out = sparse.load_state_dict(ens.state_dict(), strict=strict)
    assert not out.missing_keys and not out.unexpected_keys
    assert sparse.classifier is None and sparse.norm is None  # the file's network: the members' mean decides
    assert torch.equal(sparse(x), ens(x))
    # and back: the sparse file builds its global head again
    again = copy.deepcopy(ens)
    again.load_state_dict(nv.sparsify(ens, [(x, torch.arange(90) % 3)], points=8).state_dict())
    assert again.classifier is not None


@pytest.mark.parametrize("strict", [True, False])
def test_every_members_tensor_without_torchs_record_is_refused_naming_the_global_head(one_thread, strict):
    ens, sparse, x = _ensemble()
    whole = {k: v.clone() for k, v in ens.state_dict().items()}  # no torch record: a dense file, or the members alone?
    before = sparse(x)
    with pytest.raises(ValueError, match=r"state_dict: expected the global head's tensors .classifier.\*, norm.\*.*"
                                         r"got every member's tensors without the head and no record.*"
                                         r"sparse.classifier = None.*fresh nv.Ensemble.*sparse.members.load_state_dict"):
        sparse.load_state_dict(whole, strict=strict)
    assert sparse.classifier is not None and torch.equal(sparse(x), before)  # refused: left as it was
    # the way out it names for the members under the head
    sparse.members.load_state_dict({k.removeprefix("members."): v for k, v in whole.items()})
    assert sparse.classifier is not None and torch.equal(sparse(x), before)
    part = {k: v for k, v in whole.items() if k.startswith("members.0.")}  # a part: kept, as torch keeps it
    out = sparse.load_state_dict(part, strict=False)
    assert sparse.classifier is not None and "classifier.weight" in out.missing_keys


def test_a_copy_by_another_operation_chains_the_record_it_had(one_thread):
    net, x, y = _trained(bn=False)
    net.pretrained_cfg = {"name": "nv_toy.entry", "sha256": "0" * 64, "dataset": "planted"}
    train = [(x, y)]
    sparse = nv.sparsify(net, train, points=8, max_iter=200)
    assert sparse.pretrained_cfg == {"sparsified_from": "nv_toy.entry"}
    tuned = nv.finetune_sparse(sparse, train, epochs=1, lr=1e-3)
    assert tuned.pretrained_cfg == {"finetuned_from": "nv_toy.entry", "after": {"sparsified_from": "nv_toy.entry"}}
    again = nv.sparsify(tuned, train, points=4, max_iter=50)
    assert again.pretrained_cfg == {"sparsified_from": "nv_toy.entry", "after": tuned.pretrained_cfg}
    refit = nv.fit_ridge_head(tuned, train)
    assert refit.pretrained_cfg["refitted_from"] == "nv_toy.entry" and refit.pretrained_cfg["after"] == tuned.pretrained_cfg
    # the same operation again keeps its own record, as before
    assert nv.finetune_sparse(tuned, train, epochs=1, lr=1e-3).pretrained_cfg == tuned.pretrained_cfg
