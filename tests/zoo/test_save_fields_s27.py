"""``save_pretrained`` refuses a ``dataset`` that is no dict, ``metrics`` that are not numbers (or None), and
``dataset.class_names`` of another count than the network's outputs, naming the argument and the key, before anything
is written (numpy and 0-dim tensor numbers saved as plain ones); ``neuroview zoo`` lists a folder whose manifest holds
such values (an older or hand-edited one) with ``?`` where a field is of the wrong kind, not a traceback."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import neuroview as nv
from neuroview.zoo import cli
from neuroview.zoo.pretrained import save_pretrained


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return nv.create_model("small_cnn", num_classes=10)


def _save(net, root, name="small_cnn.a", **kw):
    kw = {"dataset": {"name": "digits"}, "metrics": {"test_acc": 0.95}, **kw}
    return save_pretrained(net, name, architecture="small_cnn", arch_kwargs={"num_classes": 10}, recipe=None, seed=0,
                           root=root, **kw)


@pytest.mark.parametrize("kw, words", [
    ({"dataset": "digits"}, r"^dataset: expected a dict \(name, class_names, \.\.\.\), got str 'digits'"),
    ({"dataset": {"name": 3}}, r"^dataset: expected a str under 'name', got int 3"),
    ({"metrics": {"test_acc": "95%"}}, r"^metrics: expected a number or None under 'test_acc', got str '95%'"),
    ({"metrics": {"test_acc": np.array([0.9, 0.8])}}, r"^metrics: expected a number or None under 'test_acc', got"),
    ({"metrics": [0.9]}, r"^metrics: expected a dict \(name -> number\), got list"),
    ({"dataset": {"name": "digits", "class_names": [str(i) for i in range(9)]}},
     r"^dataset: expected 10 names under 'class_names' \(one per output of the network\), got 9"),
    ({"dataset": {"name": "digits", "class_names": "0123456789"}},
     r"^dataset: expected a list of 10 names under 'class_names'"),
])
def test_a_dataset_or_metrics_the_zoo_cannot_list_is_refused_before_anything_is_written(net, tmp_path, kw, words):
    with pytest.raises((TypeError, ValueError), match=words):
        _save(net, tmp_path, **kw)
    assert not list(tmp_path.iterdir())


def test_numpy_and_tensor_metrics_are_saved_as_plain_numbers(net, tmp_path):
    e = _save(net, tmp_path, metrics={"test_acc": np.float32(0.5), "test_size": np.int64(150), "k90": torch.tensor(3.5),
                                      "slice_acc": None})
    saved = json.loads((tmp_path / "manifest.json").read_text())["entries"]["small_cnn.a"]["metrics"]
    assert saved == e["metrics"] == {"test_acc": 0.5, "test_size": 150, "k90": 3.5, "slice_acc": None}
    assert type(saved["test_size"]) is int


def test_neuroview_zoo_lists_a_manifest_with_fields_of_the_wrong_kind(net, tmp_path, capsys):
    _save(net, tmp_path)
    doc = json.loads((tmp_path / "manifest.json").read_text())
    e = doc["entries"]["small_cnn.a"]
    e.update(dataset="digits\nmore", metrics={"test_acc": "95%", "k90": [1], "units_per_class": None},
             num_params=None, training="long", recipe=7)
    doc["entries"]["small_cnn.b"] = dict(e, dataset={"name": "di\ngits"}, metrics="none")
    (tmp_path / "manifest.json").write_text(json.dumps(doc))
    assert cli.main(["--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4  # header, rule, one line per entry: no row broken by a newline
    assert out[2].split()[:4] == ["small_cnn.a", "?", "-", "?"]  # dataset, params (null: none given), test acc
    assert out[2].split()[-1] == "?"  # the recipe 7
    assert out[3].split()[:2] == ["small_cnn.b", "di\\ngits"]


def test_a_text_tag_beside_the_numbers_is_kept_and_a_list_refused(net, tmp_path):
    """A user's own note (``metrics={"tag": "other run"}``) is text the table never formats: kept as given; a
    list under a key of the user's is no JSON number or text: refused by name."""
    e = _save(net, tmp_path, metrics={"test_acc": 0.5, "tag": "other run"})
    assert e["metrics"] == {"test_acc": 0.5, "tag": "other run"}
    with pytest.raises(TypeError, match=r"^metrics: expected a number, a str or None under 'runs', got list"):
        _save(net, tmp_path / "b", metrics={"runs": [1, 2]})
