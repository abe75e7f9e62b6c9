"""NpzDataModule's ``padding`` (806179b) where the training commands name a file's options (review R3 of 806179b):
``neuroview explain`` / ``minirocket`` / ``sparsify`` advised ``(--data.init_args.padding pre)``, an option those
commands refuse, with no JSON spec (finding 4); ``neuroview test --ckpt_path`` on the model's own file read with
another ``padding`` was blamed on the file ("its training split changed since ... restore the file"), not on the
option (finding 5)."""

import json

import numpy as np
import pytest

from neuroview.data import NpzDataModule
from neuroview.training.cli_hints import said
from neuroview.training.data_arg import asked_option


def _pre_padded(path):
    lengths = np.array([9, 4, 5, 6, 7, 9, 4, 5, 6, 7])
    x = np.zeros((10, 2, 9), np.float32)
    for i, k in enumerate(lengths):
        x[i, :, 9 - k:] = 1 + np.arange(2 * k, dtype=np.float32).reshape(2, k) + 100 * i  # valid steps last
    np.savez(path, X=x, y=np.arange(10) % 2, lengths=lengths)
    return str(path)


def test_explain_on_a_pre_padded_file_is_told_one_runnable_spec(tmp_path):
    path = _pre_padded(tmp_path / "pre.npz")
    with pytest.raises(ValueError) as e:
        NpzDataModule(path).load()
    assert asked_option(path, str(e.value)) == ("padding", '"pre"')  # before: None (padding was no option it knew)
    out = said(str(e.value), "explain", path)
    assert "--data.init_args.padding" not in out  # an option `neuroview explain` refuses
    spec = out[out.index("--data '") + len("--data '"):].rstrip(")").rstrip("'")
    assert json.loads(spec) == {"class_path": "neuroview.data.NpzDataModule", "init_args": {"path": path, "padding": "pre"}}
    dm = NpzDataModule(**json.loads(spec)["init_args"])  # the advised spec reads the file
    assert sorted(len(s[0]) for s in dm.load()["train"][0] + dm.load()["test"][0]) == [4, 4, 5, 5, 6, 6, 7, 7, 9, 9]


@pytest.mark.parametrize("asked, what", [("post", "ckpt_path"), ("auto", "ckpt_path"), ("post", "model.init_weights")])
def test_the_model_s_own_file_read_with_another_padding_is_refused_by_the_option(tmp_path, asked, what):
    from neuroview.training.ckpt_data import check_evaluated_data
    import torch
    from neuroview.data.file_record import RECORD
    path = _pre_padded(tmp_path / "train.npz")
    trained = NpzDataModule(path, padding="pre")
    trained.load()  # the record a Lightning checkpoint of that run holds of its training file
    torch.save({"NpzDataModule": {RECORD: {"path": path, "series_sha256": trained._series_sha256}}}, tmp_path / "run.ckpt")
    saved = {"_class_path": "neuroview.data.NpzDataModule", "path": path, "seed": 0, "padding": "pre"}
    data = {"class_path": "neuroview.data.NpzDataModule", "init_args": {"path": path, "seed": 0, "padding": asked}}
    with pytest.raises(ValueError, match=rf"{what}: .*run\.ckpt was trained on this data with other split options "
                                         rf"\(--data\.init_args\.padding '{asked}' asked, 'pre' in the checkpoint\).*"
                                         r"give the checkpoint's options \(--data\.init_args\.padding pre\)"):
        check_evaluated_data(str(tmp_path / "run.ckpt"), data, saved, "test", what)  # before: none, or the file blamed
    data["init_args"]["padding"] = "pre"
    check_evaluated_data(str(tmp_path / "run.ckpt"), data, saved, "test", what)
