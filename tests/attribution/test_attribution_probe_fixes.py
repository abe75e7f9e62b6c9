"""neuroview.attribution's tables, importance and deletion curves on the inputs a probe found mishandled:
numpy and tensor cells in a CSV, class names read_csv keeps as text, rows that are no dicts or add keys,
NaN in JSON, a UTF-8 CSV read under another locale, channels-first batches and numpy arrays in
class_means, integer orders of other dtypes, and lengths for a model whose forward takes none.
Each test checks against values computed here, by hand."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.attribution import export, importance
from neuroview.attribution.ablation import delete_steps, step_deletion_curve, unit_deletion_curve
from neuroview.attribution.faithfulness import step_scores, time_step_deletion

ROOT = Path(__file__).resolve().parents[2]  # the checkout whose neuroview these tests run


def _cnn() -> nv.NeuroViewCNN:
    torch.manual_seed(0)
    body = nn.Sequential(nn.Conv1d(1, 3, 3), nn.ReLU(), nn.Conv1d(3, 2, 3), nn.ReLU())
    return nv.NeuroViewCNN(body, 3, input_shape=(1, 10)).eval()


class _Plain(nn.Module):
    """A sequence model whose forward takes no lengths."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.gru, self.fc = nn.GRU(2, 4, batch_first=True), nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.gru(x)[0][:, -1])


# ------------------------------------------------------------------- 1. numpy and tensor cells
def test_numpy_and_tensor_cells_are_written_as_plain_numbers(tmp_path):
    a, b = 0.1 + 0.2, torch.tensor(0.123456789)  # b: float32, its float value has more digits than str shows
    rows = [{"f64": np.float64(a), "f32": np.float32(0.5), "t": b, "ti": torch.tensor(2), "i64": np.int64(7),
             "flag": np.bool_(True), "py": 1.5}]
    path = export.write_csv(tmp_path / "c.csv", rows)
    with open(path, newline="", encoding="utf-8") as f:
        cells = list(csv.reader(f))[1]
    assert cells == [repr(a), "0.5", repr(float(np.float32(0.123456789))), "2", "7", "True", "1.5"]
    back = export.read_csv(path)[0]  # was the text 'np.float64(0.30000000000000004)', 'tensor(0.1235)'
    assert back["f64"] == a and back["t"] == float(np.float32(0.123456789)) and back["ti"] == 2 and back["i64"] == 7


@pytest.mark.parametrize("cell", [torch.tensor([1.0, 2.0]), np.zeros((2, 2)), [1, 2]])
def test_a_cell_that_is_no_scalar_is_refused_by_name(tmp_path, cell):
    with pytest.raises(ValueError, match=r"records: expected one number or string per cell, got .* row 1, column 'v'"):
        export.write_csv(tmp_path / "c.csv", [{"v": 1}, {"v": cell}])
    assert not (tmp_path / "c.csv").exists()


# ------------------------------------------------------------------- 2. class names read_csv keeps as text
@pytest.mark.parametrize("name", ["true", "class", "predicted", "site"])
def test_a_class_named_as_a_text_column_is_written_and_read_back_with_text_columns(name, tmp_path):
    """A binary set's "false" / "true" classes are plausible: the tables take them, and read_csv's
    text_columns reads their numbers back (by default such a column stays text, as documented)."""
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(2, 3, batch_first=True), 3, max_len=4).eval()
    rows = export.time_records(net, [name, "b", "c"])
    path = export.write_csv(tmp_path / "t.csv", rows)
    assert all(isinstance(r[name], str) for r in export.read_csv(path))
    back = export.read_csv(path, text_columns=[c for c in export.TEXT_COLUMNS if c != name])
    assert [r[name] for r in back] == [r[name] for r in rows]


# ------------------------------------------------------------------- 3. channels-first batches in class_means
def test_class_means_refuses_lengths_past_dim_1():
    x = torch.arange(6.0).expand(4, 2, 6).clone()  # channels-first [B, C, T]: value = step index
    with pytest.raises(ValueError, match=r"lengths: expected at most 2 .*dim 1.*\[B, T, \.\.\.\].*transpose"):
        importance.class_means(x, torch.tensor([0, 0, 1, 1]), 2, lengths=torch.tensor([6, 3, 3, 6]))
    # the same batch steps-first is read as asked: class 0 is samples 0 (6 steps) and 1 (3 steps)
    got = importance.class_means(x.transpose(1, 2), torch.tensor([0, 0, 1, 1]), 2, lengths=torch.tensor([6, 3, 3, 6]))
    assert got[0, :, 0].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


# ------------------------------------------------------------------- 4. NaN in JSON
def test_write_json_writes_non_finite_numbers_as_null(tmp_path):
    obj = {"rows": [{"a": 0.5, "b": float("nan")}, (float("inf"), 2)], "c": -float("inf"), "d": "x"}
    path = export.write_json(tmp_path / "t.json", obj)

    def refuse(s):
        raise ValueError(f"{s} is not JSON")

    got = json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)  # NaN was written and refused here
    assert got == {"rows": [{"a": 0.5, "b": None}, [None, 2]], "c": None, "d": "x"}


# ------------------------------------------------------------------- 5. keys a later row adds
def test_a_later_row_with_extra_keys_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"records: .*extra keys \['b'\] in row 1"):  # 'b' was dropped, silently
        export.write_csv(tmp_path / "o.csv", [{"a": 1}, {"a": 2, "b": 3}])
    path = export.write_csv(tmp_path / "o.csv", [{"a": 1}, {"a": 2, "b": 3}], columns=["a"])  # chosen columns: fine
    assert path.read_text(encoding="utf-8") == "a\n1\n2\n"


# ------------------------------------------------------------------- 6. integer orders of other dtypes
@pytest.mark.parametrize("dtype", [torch.int32, torch.int16, torch.uint8])
def test_an_integer_order_of_any_dtype_is_read(dtype):
    net, x, y = _cnn(), torch.randn(4, 1, 10, generator=torch.Generator().manual_seed(1)), torch.tensor([0, 1, 2, 0])
    order = torch.tensor([4, 0, 3, 1, 2])
    want = unit_deletion_curve(net, x, y, order, steps=5)
    got = unit_deletion_curve(net, x, y, order.to(dtype), steps=5)  # was a RuntimeError inside scatter_
    assert torch.equal(got.true_logit, want.true_logit) and torch.equal(got.accuracy, want.accuracy)
    xs = torch.arange(4.0).reshape(1, 4, 1)
    assert delete_steps(xs, torch.tensor([2, 0, 1, 3], dtype=dtype), 2).flatten().tolist() == [0.0, 1.0, 0.0, 3.0]


# ------------------------------------------------------------------- 7. UTF-8 under another locale
def test_read_csv_reads_utf8_whatever_the_locale(tmp_path):
    code = ("import sys; from neuroview.attribution import export as ex; "
            "p = ex.write_csv(sys.argv[1], [{'class': '\\u00fcn\\u00ef \\u2713', 'value': 0.5}]); "
            "print(ascii(ex.read_csv(p)))")
    env = dict(os.environ, LC_ALL="C", LANG="C", PYTHONCOERCECLOCALE="0", PYTHONUTF8="0", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "u.csv")], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-400:]  # was UnicodeDecodeError: 'ascii' codec
    assert out.stdout.strip() == ascii([{"class": "\u00fcn\u00ef \u2713", "value": 0.5}])


# ------------------------------------------------------------------- 8. records that are no rows
@pytest.mark.parametrize("records, match", [({"a": 1, "b": 2}, r"records: expected rows .*got a dict"),
                                            ([[1, 2], [3, 4]], r"records: expected each row to be a dict .*got a list in row 0"),
                                            ([{"a": 1}, (1,)], r"records: .*got a tuple in row 1")])
def test_records_that_are_no_dicts_are_refused_by_name(tmp_path, records, match):
    with pytest.raises(TypeError, match=match):  # was a bare TypeError (string indices) or IndexError
        export.write_csv(tmp_path / "o.csv", records)


# ------------------------------------------------------------------- 9. lengths for a model that takes none
@pytest.mark.parametrize("call", [
    lambda net, x, y, n: time_step_deletion(net, x, y, lengths=n, methods=["random"], seeds=[0], steps=3),
    lambda net, x, y, n: step_scores(net, x, y, "permutation", lengths=n),
    lambda net, x, y, n: step_deletion_curve(net, x, y, torch.arange(6), lengths=n, steps=3),
])
def test_lengths_for_a_model_without_lengths_are_refused_by_name(call):
    x, y = torch.randn(5, 6, 2, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 2, 0, 1])
    with pytest.raises(ValueError, match=r"lengths: expected None for a _Plain, whose forward takes no lengths"):
        call(_Plain().eval(), x, y, torch.tensor([6, 4, 6, 3, 6]))  # was TypeError: forward() takes 2 positional ...
    call(_Plain().eval(), x, y, None)  # without lengths it runs


# ------------------------------------------------------------------- 10. numpy batches in class_means
def test_class_means_reads_a_numpy_batch():
    x = np.arange(24.0).reshape(4, 3, 2)
    got = importance.class_means(x, np.array([1, 0, 1, 1]), 3)  # was AttributeError: no new_zeros
    want = np.stack([x[1], x[[0, 2, 3]].mean(0), np.zeros((3, 2))])
    np.testing.assert_allclose(got.numpy(), want)
    got = importance.class_means(x, np.array([1, 0, 1, 1]), 3, lengths=np.array([3, 1, 2, 3]))
    assert got[0, :, 0].tolist()[0] == 6.0 and np.isnan(got[0, 1:, 0].numpy()).all()  # sample 1 has one step
    assert got[1, :, 0].tolist() == [(0 + 12 + 18) / 3, (2 + 14 + 20) / 3, (4 + 22) / 2]
