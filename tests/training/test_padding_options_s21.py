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
    with pytest.raises(ValueError, match=rf"{what}: .*run\.ckpt was trained on this data read otherwise "
                                         rf"\(--data\.init_args\.padding '{asked}' asked, 'pre' in the checkpoint\).*"
                                         r"give the checkpoint's options \(--data\.init_args\.padding pre\)"):
        check_evaluated_data(str(tmp_path / "run.ckpt"), data, saved, "test", what)  # before: none, or the file blamed
    data["init_args"]["padding"] = "pre"
    check_evaluated_data(str(tmp_path / "run.ckpt"), data, saved, "test", what)


# review S3 of 76f3472: padding compared by what it reads; the changed file named first, read as the checkpoint read it

def _post_padded(path, rows=slice(None)):
    lengths = np.array([9, 4, 5, 6, 7, 9, 4, 5, 6, 7] * 2)
    x = np.zeros((20, 2, 9), np.float32)
    for i, k in enumerate(lengths):
        x[i, :, :k] = 1 + np.arange(2 * k, dtype=np.float32).reshape(2, k) + 100 * i  # valid steps first
    np.savez(path, X=x[rows], y=(np.arange(20) % 2)[rows], lengths=lengths[rows])
    return str(path)


def _run(tmp_path, path, padding):
    """A checkpoint of a run on ``path`` read with ``padding``: its record of the training file, its saved options."""
    import torch
    from neuroview.data.file_record import RECORD
    trained = NpzDataModule(path, padding=padding)
    trained.load()
    torch.save({"NpzDataModule": {RECORD: {"path": path, "series_sha256": trained._series_sha256}}}, tmp_path / "run.ckpt")
    return str(tmp_path / "run.ckpt"), {"_class_path": "neuroview.data.NpzDataModule", "path": path, "seed": 0,
                                        "padding": padding}


@pytest.mark.parametrize("what", ["ckpt_path", "model.init_weights"])
def test_a_run_trained_with_padding_post_is_accepted_on_its_own_file_left_at_auto(tmp_path, what):
    """'auto' reads a file padded at the end as 'post' does: the run's own unchanged file was refused, its reason
    "its test split may hold training series" (padding changes how a series is read, not which series a split holds)."""
    from neuroview.training.ckpt_data import check_evaluated_data
    path = _post_padded(tmp_path / "train.npz")
    ckpt, saved = _run(tmp_path, path, "post")
    data = {"class_path": "neuroview.data.NpzDataModule", "init_args": {"path": path, "seed": 0, "padding": "auto"}}
    check_evaluated_data(ckpt, data, saved, "test", what)  # before: "... ('auto' asked, 'post' in the checkpoint)"
    data["init_args"]["padding"] = "pre"  # reads the padding as the series: refused, by how it reads
    with pytest.raises(ValueError) as e:
        check_evaluated_data(ckpt, data, saved, "test", what)
    assert "read otherwise (--data.init_args.padding 'pre' asked, 'post' in the checkpoint)" in str(e.value)
    assert "training series" not in str(e.value) and "(--data.init_args.padding post)" in str(e.value)


def test_the_model_s_changed_file_is_named_before_other_options(tmp_path):
    """The training file's rows reordered since, and another seed asked: the seed was named as if the file were the
    data trained on ("trained on this data with other split options"), the changed file only once the seed was fixed."""
    from neuroview.training.ckpt_data import check_evaluated_data
    path = _post_padded(tmp_path / "train.npz")
    ckpt, saved = _run(tmp_path, path, "auto")
    _post_padded(tmp_path / "train.npz", rows=slice(None, None, -1))
    data = {"class_path": "neuroview.data.NpzDataModule", "init_args": {"path": path, "seed": 1, "padding": "auto"}}
    with pytest.raises(ValueError, match=r"model\.init_weights: .*train\.npz is the file the checkpoint .*run\.ckpt was "
                                         r"trained on, but its training split changed since"):
        check_evaluated_data(ckpt, data, saved, "test", "model.init_weights")
