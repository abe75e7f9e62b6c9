"""Explanation tables as data (P6 findings 1, 2, 4): ``read_csv`` gives back the bools and Nones ``write_csv``
writes, ``CNNExplanation.topk`` lists no unit that adds nothing, and ``write_json`` takes the numbers ``write_csv``
takes. Every expected value is built here by hand, not by the code under test."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.attribution import export


# ------------------------------------------------------------------- 1. bools and None read back as written
def test_read_csv_gives_back_the_bools_and_none_write_csv_writes(tmp_path):
    rows = [{"flag": True, "other": False, "code": None, "name": "x", "n": 3},
            {"flag": np.bool_(False), "other": True, "code": 0.5, "name": "True", "n": 4}]
    path = export.write_csv(tmp_path / "t.csv", rows)
    back = export.read_csv(path)
    assert [r["flag"] for r in back] == [True, False] and all(type(r["flag"]) is bool for r in back)
    assert [r["other"] for r in back] == [False, True] and all(type(r["other"]) is bool for r in back)
    assert back[0]["code"] is None and back[1]["code"] == 0.5  # was the truthy text 'None'
    assert back[0]["name"] == "x" and back[1]["n"] == 4
    # a text column keeps the spelling as it is (a class named "None", a site "True")
    kept = export.read_csv(path, text_columns=("code", "name"))
    assert kept[0]["code"] == "None" and kept[1]["name"] == "True"


def test_rnn_records_padding_round_trips_through_csv(tmp_path):
    torch.manual_seed(0)
    rnn = nv.wrap(nn.GRU(1, 4, batch_first=True), num_classes=2, max_len=6)
    x, lengths = torch.randn(3, 6, 1), torch.tensor([6, 4, 2])
    rnn.train()
    with torch.no_grad():
        rnn(x, lengths=lengths)
    rnn.eval()
    exp = rnn.explain(x, lengths=lengths, baseline="mean")
    rows = exp.to_records(target=exp.targets())
    back = export.read_csv(export.write_csv(tmp_path / "rnn.csv", rows))
    want = [r["step"] >= int(lengths[r["sample"]]) for r in back]  # a step past the series' end is padding
    assert any(want) and not all(want)  # both kinds of rows are there
    assert [r["padding"] for r in back] == want  # was 'True' / 'False', both truthy
    assert sum(not r["padding"] for r in back) == sum(not w for w in want) > 0


def test_sparsity_path_chosen_round_trips_through_csv(tmp_path):
    import warnings  # noqa: PLC0415

    torch.manual_seed(0)
    x = torch.randn(40, 1, 16)
    y = (x.mean((1, 2)) > 0).long()
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), 2)
    net.train()
    with torch.no_grad():
        net(x)
    net.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sp = nv.sparsify(net, [(x[i:i + 20], y[i:i + 20]) for i in range(0, 40, 20)])
    pts = sp.sparsity_path.to_records()
    back = export.read_csv(export.write_csv(tmp_path / "path.csv", pts))
    assert sum(r["chosen"] is True for r in pts) == 1  # one point of the path is the chosen one
    assert [r["chosen"] for r in back] == [r["chosen"] is True for r in pts]  # was every point: 'False' is truthy


# ------------------------------------------------------------------- 2. topk lists no unit that adds nothing
def _hand_cnn():
    """Units 0..5 of one 1x1 conv site: weights +1 except unit 2 (-1), no bias; class 0 reads units 0, 1, 2 with
    weights 2, -1.5, -0.7, and nothing else; class 1 reads unit 5 alone."""
    backbone = nn.Sequential(nn.Conv1d(1, 6, 1), nn.ReLU())
    with torch.no_grad():
        backbone[0].weight.copy_(torch.tensor([1.0, 1.0, -1.0, 1.0, 1.0, 1.0]).reshape(6, 1, 1))
        backbone[0].bias.zero_()
    net = nv.NeuroViewCNN(backbone, 2, normalize=False)
    x = torch.tensor([[[1.0, 1.0, 1.0, 1.0]], [[1.0, -1.0, 1.0, -1.0]]])
    net(x)
    net.eval()
    with torch.no_grad():
        net.classifier.weight.zero_()
        net.classifier.weight[0, :3] = torch.tensor([2.0, -1.5, -0.7])
        net.classifier.weight[1, 5] = 1.0
    return net, x


def test_topk_lists_no_unit_that_adds_nothing():
    net, x = _hand_cnn()
    exp = net.explain(x)
    u = net.units
    # codes by hand: sample 0 all +1 inputs: units of weight +1 on (1), unit 2 off (0); sample 1 half and half: 0.5
    # class 0, sample 0: 2 * 1, -1.5 * 1, -0.7 * 0 = 0 (off), 0 for the unread units 3..5
    vals, units = exp.topk(3, target=0)
    assert vals.shape == (2, 3)
    assert units[0] == [u[0], u[1], None]  # was u[0], then two unread units (picked by torch's ties), before u[1]
    assert vals[0, :2].tolist() == pytest.approx([2.0, -1.5]) and math.isnan(vals[0, 2])
    assert units[1] == [u[0], u[2], u[1]]  # 1 * 0.5 * 2, then -0.7 * 0.5 above -1.5 * 0.5: signed order
    assert vals[1].tolist() == pytest.approx([1.0, -0.35, -0.75])
    # class 1 reads unit 5 alone: one unit, the rest marked
    vals, units = exp.topk(2, target=1)
    assert units == [[u[5], None], [u[5], None]]
    assert vals[:, 0].tolist() == pytest.approx([1.0, 0.5]) and vals[:, 1].isnan().all()


def test_topk_agrees_with_the_waterfall_and_top_units_on_a_sparse_head():
    net, x = _hand_cnn()
    exp = net.explain(x)
    top = net.top_units(6, standardized=False)  # the global ranking leaves unread units out
    assert [(s, ch) for s, ch, _ in top[0]] == [net.units[0], net.units[2], net.units[1]]
    _, units = exp.topk(6, target=0)
    listed = [v for v in units[1] if v is not None]
    assert sorted(listed) == sorted(net.units[:3])  # the units class 0 reads, every one of them, none else


# ------------------------------------------------------------------- 4. write_json takes what write_csv takes
def test_write_json_writes_numpy_and_0_dim_tensor_numbers_as_plain_numbers(tmp_path):
    obj = {"k90": torch.tensor(3.0), "share": np.float32(0.5), "n": np.int64(4), "flag": np.bool_(True),
           "gap": np.float32("nan"), "t_inf": torch.tensor(float("inf")), "nested": [np.float64(0.25), {"i": torch.tensor(2)}],
           np.int64(7): "numpy key"}
    path = export.write_json(tmp_path / "m.json", obj)
    back = json.loads(path.read_text(encoding="utf-8"))
    assert back == {"k90": 3.0, "share": 0.5, "n": 4, "flag": True, "gap": None, "t_inf": None,
                    "nested": [0.25, {"i": 2}], "7": "numpy key"}
    assert type(back["n"]) is int and type(back["flag"]) is bool


@pytest.mark.parametrize("value", [torch.zeros(2), np.zeros((2, 2))])
def test_write_json_refuses_an_array_with_dimensions_by_key(tmp_path, value):
    with pytest.raises(ValueError, match=r"^obj: expected numbers, strings, lists and dicts, got a .* of shape "
                                         r"\(2,( 2)?\) at \['a'\]\[1\]\['b'\]; .*tolist\(\)"):
        export.write_json(tmp_path / "m.json", {"a": [1, {"b": value}]})
    assert not (tmp_path / "m.json").exists()
