"""The attribution tables and faithfulness tools on inputs a probe found mishandled: a bool mask given as labels,
class names given as a set or as labels, float64 values in the wide tables, unchecked seeds and counts, folder or
empty paths and one-string columns of the writers, and a CNNExplanation made from contributions alone. Each test
checks against values computed here."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.attribution import export
from neuroview.attribution import importance as imp
from neuroview.attribution.ablation import step_deletion_curve
from neuroview.attribution.faithfulness import time_step_deletion, unit_ablation, unit_scores
from neuroview.core.explanation import CNNExplanation

MASK = r"y: expected a class index or a tensor of them, got .* \(booleans: a mask picks samples, not classes"


def _cnn(dtype=torch.float32) -> nv.NeuroViewCNN:
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), 3, input_shape=(1, 16)).to(dtype)
    net.train()
    net(torch.randn(16, 1, 16, dtype=dtype))
    return net.eval()


def _rnn(dtype=torch.float32) -> nv.NeuroViewRNN:
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(1, 4, batch_first=True), 3, max_len=6).to(dtype)
    net.train()
    net(torch.randn(8, 6, 1, dtype=dtype))
    return net.eval()


X = torch.randn(6, 1, 16, generator=torch.Generator().manual_seed(1))
Y = torch.tensor([0, 1, 2, 0, 1, 2])


# ------------------------------------------------------------------ 1. a bool mask given as labels
def test_bool_mask_as_labels_refused_by_name():
    rnn = _rnn()
    xs = torch.randn(4, 6, 1)
    exp = rnn.explain(xs)
    labels = torch.tensor([2, 0, 2, 1])
    mask = labels == 2  # "the class-2 samples": was read as classes 1 and 0
    for f in (lambda: export.time_records(exp, y=mask), lambda: export.layer_time_records(exp, y=mask),
              lambda: imp.layer_shares(exp, y=mask.numpy()),
              lambda: imp.layer_time_weights(exp, y=[True, False, True, False]),
              lambda: imp.class_means(xs, mask, 3)):
        with pytest.raises(TypeError, match=MASK):
            f()
    # the labels themselves still give each class's mean over its own samples
    row = export.time_records(exp, y=labels)[0]
    assert row["class_2"] == pytest.approx(exp.time_importance[mask, 2, 0].mean().item())
    assert torch.allclose(imp.class_means(xs, labels, 3)[2], xs[mask].mean(0))


def test_bool_mask_refused_by_the_time_importance_plot():
    pytest.importorskip("matplotlib")
    from neuroview.viz.temporal import time_importance

    exp = _rnn().explain(torch.randn(4, 6, 1))
    with pytest.raises(TypeError, match=MASK):
        time_importance(exp, y=torch.tensor([True, False, True, False]))


# ------------------------------------------------------------------ 2. class names as a set
@pytest.mark.parametrize("names", [{"ant", "bee", "cat"}, frozenset({"ant", "bee", "cat"}),
                                   {0: "ant", 1: "bee", 2: "cat"}.items()])  # pairs: no names (the review)
def test_class_names_without_an_order_refused(names):
    net = _cnn()
    with pytest.raises(TypeError, match=r"class_names: expected an ordered sequence .* pass a list in class order"):
        export.unit_records(net, names)
    with pytest.raises(TypeError, match=r"class_names: expected an ordered sequence"):
        net.explain(X[:1]).to_records(names)
    row = export.unit_records(net, ["ant", "bee", "cat"])[0]  # a list: its order names the classes
    assert row["ant"] == net.unit_importance(True)[0, 0].item()
    assert export.unit_records(net, np.array(["ant", "bee", "cat"]))[0]["cat"] == net.unit_importance(True)[2, 0].item()
    # a dict's view keeps the dict's order (the review: it was refused as if it had none)
    assert list(export.unit_records(net, {0: "ant", 1: "bee", 2: "cat"}.values())[0])[-3:] == ["ant", "bee", "cat"]


# ------------------------------------------------------------------ 3. float64 kept in the wide tables
def test_wide_tables_keep_float64():
    rnn = _rnn(torch.float64)
    exp = rnn.explain(torch.randn(3, 6, 1, dtype=torch.float64))
    rows = export.time_records(exp, sample=1)
    assert [[r[f"class_{c}"] for c in range(3)] for r in rows] == exp.time_importance[1].T.tolist()
    assert export.time_records(rnn)[0]["class_0"] == rnn.time_importance()[0, 0].item()
    assert export.layer_time_records(exp, sample=0)[0]["class_0"] == exp.layer_time()[0, 0, 0, 0].item()
    cnn = _cnn(torch.float64)
    assert export.unit_records(cnn, standardized=False)[1]["class_2"] == cnn.unit_importance(False)[2, 1].item()
    assert isinstance(export.unit_records(_cnn())[0]["class_0"], float)  # float32 networks: as before


# ------------------------------------------------------------------ 4. seeds
@pytest.mark.parametrize("seeds, error, match", [
    ([0, 0, 1], ValueError, r"seeds: expected distinct seeds .* got \[0\] more than once"),
    ((), ValueError, r"seeds: expected at least one seed for method 'random'"),
    ("01", TypeError, r"seeds: expected a sequence of int seeds, got str '01'"),
    (3, TypeError, r"seeds: expected a sequence of int seeds, got int 3; pass \[seed\]"),
    ([1.5], TypeError, r"seeds: expected int seeds, got 1.5 \(float\)"),
    ([True], TypeError, r"seeds: expected int seeds, got True \(bool\)"),
])
def test_seeds_checked_by_name(seeds, error, match):
    with pytest.raises(error, match=match):
        unit_ablation(_cnn(), X, Y, methods=["random"], seeds=seeds)
    with pytest.raises(error, match=match):
        time_step_deletion(_rnn(), torch.randn(6, 6, 1), Y, methods=["random"], seeds=seeds)


def test_numpy_seeds_read_as_ints():
    res = unit_ablation(_cnn(), X, Y, methods=["random"], seeds=np.arange(2))
    ref = unit_ablation(_cnn(), X, Y, methods=["random"], seeds=[0, 1])
    assert sorted(res.curves) == ["random:0", "random:1"]
    assert res.aucs() == ref.aucs()
    xs = torch.randn(6, 6, 1)
    res = time_step_deletion(_rnn(), xs, Y, methods=["random"], seeds=[np.int64(3)])
    assert sorted(res.curves) == ["random:3"]
    assert unit_ablation(_cnn(), X, Y, methods=["neuroview"], seeds=()).curves  # no seeds needed without 'random'


# ------------------------------------------------------------------ 5. counts converted
def test_counts_read_as_python_ints():
    net = _cnn()
    with pytest.raises(ValueError, match=r"steps: expected a positive int, got True"):
        unit_ablation(net, X, Y, methods=["neuroview"], steps=True)
    res = unit_ablation(net, X, Y, methods=["neuroview"], steps=np.int64(3))
    assert res.curves["neuroview"].count.tolist() == [0, 1, 3, 4]
    a = unit_ablation(net, X, Y, methods=["neuroview"], batch_size=np.int64(2)).curves["neuroview"]
    b = unit_ablation(net, X, Y, methods=["neuroview"], batch_size=2).curves["neuroview"]
    assert torch.equal(a.accuracy, b.accuracy) and torch.equal(a.true_logit, b.true_logit)
    assert torch.equal(unit_scores(net, X, Y, "neuroview", batch_size=torch.tensor(2)),
                       unit_scores(net, X, Y, "neuroview", batch_size=2))
    rnn, xs = _rnn(), torch.randn(6, 6, 1)
    c = step_deletion_curve(rnn, xs, Y, torch.arange(6), batch_size=np.int64(4), steps=np.int64(3))
    d = step_deletion_curve(rnn, xs, Y, torch.arange(6), batch_size=4, steps=3)
    assert c.count.tolist() == d.count.tolist() == [0, 2, 4, 6] and torch.equal(c.true_logit, d.true_logit)
    with pytest.raises(ValueError, match=r"steps: expected a positive int, got True"):
        time_step_deletion(rnn, xs, Y, methods=["random"], steps=True)


# ------------------------------------------------------------------ 6. class names given as labels
def test_class_names_as_labels_refused_by_name():
    names = ["cat", "dog", "cat", "dog", "cat", "dog"]
    match = r"y: expected class indices, got the string .*a class's name is not its index"
    with pytest.raises(TypeError, match=match):
        unit_scores(_cnn(), X, names, "neuroview")
    with pytest.raises(TypeError, match=match):
        unit_ablation(_cnn(), X, np.array(names), methods=["random"])
    with pytest.raises(TypeError, match=match):
        time_step_deletion(_rnn(), torch.randn(6, 6, 1), names, methods=["random"])


# ------------------------------------------------------------------ 7. the writers' paths and columns
def test_writers_refuse_folders_and_empty_paths(tmp_path):
    rows = [{"a": 1, "b": 2.5}]
    for f, p in [(export.write_csv, tmp_path), (export.write_json, f"{tmp_path}/"), (export.write_csv, ""),
                 (export.write_json, "  ")]:
        with pytest.raises(ValueError, match=r"path: expected a file name, got .*(a folder|an empty path); name a file"):
            f(p, rows)
    assert os.listdir(tmp_path) == []  # nothing half-written
    assert not [p for p in os.listdir(tmp_path.parent) if p.endswith(".tmp")]
    assert export.read_csv(export.write_csv(tmp_path / "t.csv", rows)) == rows


def test_write_csv_refuses_one_string_as_columns(tmp_path):
    rows = [{"a": 1, "b": 2.5, "ab": 3}]
    with pytest.raises(TypeError, match=r"columns: expected a sequence of column names, got the string 'ab'; "
                                        r"pass \['ab'\]"):
        export.write_csv(tmp_path / "t.csv", rows, columns="ab")
    assert not (tmp_path / "t.csv").exists()
    assert export.read_csv(export.write_csv(tmp_path / "t.csv", rows, columns=["ab"])) == [{"ab": 3}]
    assert export.read_csv(export.write_csv(tmp_path / "u.csv", rows, columns=iter(["b", "a"]))) == [{"b": 2.5, "a": 1}]


# ------------------------------------------------------------------ 8. a CNNExplanation without codes
def test_records_of_an_explanation_made_from_contributions(tmp_path):
    c = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(0))  # [B, C, U]
    e = CNNExplanation(logits=c.sum(-1), bias=torch.zeros(3), contributions=c,
                       units=[("a", i) for i in range(4)], site_slices={"a": slice(0, 4)})
    rows = e.to_records(["x", "y", "z"])
    assert len(rows) == 2 * 3 * 4 and all(r["code"] is None for r in rows)
    assert [r["contribution"] for r in rows] == c.flatten().tolist()
    assert rows[5] == {"sample": 0, "class": "y", "site": "a", "channel": 1, "code": None,
                       "contribution": c[0, 1, 1].item()}
    e.save(tmp_path / "e.safetensors")
    back = nv.Explanation.load(tmp_path / "e.safetensors")
    assert export.explanation_records(back) == e.to_records()
    full = _cnn().explain(X[:2]).to_records()  # with codes: the code column holds them
    assert all(isinstance(r["code"], float) for r in full)
