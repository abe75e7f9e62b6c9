"""``export.read_csv`` parses back as numbers only the cells ``write_csv`` writes for numbers: text that Python's
lenient ``int()`` / ``float()`` also take (PEP 515 underscores, digits of other scripts, blanks around, ``Infinity``)
stays the text it was written as. And class names given as a tensor (``y.unique()``), as bytes or holding None are
read as their values' text, decoded, or refused by name, not written ``tensor(1)``, ``b'cat'``, ``None``."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.attribution import export

TEXT = ["1_0", "\u0661\u0662", " 7", "7 ", "Infinity", "-Infinity", "NaN", "1e5x", "+5", "007", "-0", "1.50", "1E5", "0x10"]


def test_text_that_only_pythons_lenient_parsers_read_as_numbers_round_trips_as_text(tmp_path):
    rows = [{"subject": s, "v": 0.5} for s in TEXT]
    export.write_csv(tmp_path / "t.csv", rows)
    back = export.read_csv(tmp_path / "t.csv")
    assert [r["subject"] for r in back] == TEXT
    assert "10" not in [r["subject"] for r in back]  # "1_0" (subject 1, session 0) is not subject 10


def test_the_numbers_write_csv_writes_still_read_back_as_numbers(tmp_path):
    values = [0, -3, 10**20, 0.5, -0.0, 1e-08, 1e16, 1.5e300, 5e-324, 0.1, float("inf"), float("-inf")]
    export.write_csv(tmp_path / "t.csv", [{"v": v} for v in [*values, float("nan")]])
    back = [r["v"] for r in export.read_csv(tmp_path / "t.csv")]
    assert back[:-1] == values and all(type(a) is type(b) for a, b in zip(back, values))
    assert math.copysign(1, back[4]) == -1  # -0.0 kept
    assert isinstance(back[-1], float) and math.isnan(back[-1])


def test_the_probabilities_lightning_writes_read_back_as_numbers(tmp_path):
    (tmp_path / "p.csv").write_text("split_index,prob_0,prob_1\n0,0.999988,1.23457e-05\n1,1,0\n", encoding="utf-8")
    assert export.read_csv(tmp_path / "p.csv") == [{"split_index": 0, "prob_0": 0.999988, "prob_1": 1.23457e-05},
                                                   {"split_index": 1, "prob_0": 1, "prob_1": 0}]


def _net():
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), 3)
    x = torch.randn(6, 1, 16)
    net.train()
    net(x)
    return net.eval(), x


def test_class_names_of_a_tensor_are_the_values_text_in_every_table():
    net, x = _net()
    exp = net.explain(x)
    assert sorted({r["class"] for r in exp.to_records(torch.tensor([1, 5, 7]))}) == ["1", "5", "7"]
    assert list(export.unit_records(net, torch.tensor([1, 5, 7]))[0])[2:] == ["1", "5", "7"]
    import numpy as np

    assert list(export.unit_records(net, np.array([1, 5, 7]))[0])[2:] == ["1", "5", "7"]
    assert list(export.unit_records(net, torch.tensor([0.5, 1.0, 2.5]))[0])[2:] == ["0.5", "1.0", "2.5"]


def test_class_names_as_bytes_are_decoded_and_none_is_refused_by_name():
    net, x = _net()
    exp = net.explain(x)
    assert sorted({r["class"] for r in exp.to_records([b"cat", b"dog", b"owl"])}) == ["cat", "dog", "owl"]
    with pytest.raises(ValueError, match=r"^class_names: expected a name that prints for every class, got None for "
                                         r"class 1"):
        exp.to_records(["cat", None, "owl"])
    with pytest.raises(ValueError, match=r"^class_names: expected names as UTF-8 text, got the bytes b'caf\\xe9' for "
                                         r"class 0"):
        export.unit_records(net, [b"caf\xe9", b"dog", b"owl"])
