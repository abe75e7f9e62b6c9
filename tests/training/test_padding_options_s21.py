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


# review T10 of a42cf84: every file-format option read by effect; the file's own splits compared too; one read

def _csv_run(tmp_path):
    """A run on a CSV of 40 rows (label first, 12 values), channels 1, its record as a Lightning checkpoint holds it."""
    import torch
    from neuroview.data import CsvDataModule
    from neuroview.data.file_record import RECORD
    rng = np.random.default_rng(0)
    path = str(tmp_path / "train.csv")
    with open(path, "w") as f:
        for i in range(40):
            f.write(",".join([str(i % 4)] + [f"{v:.4f}" for v in rng.normal(size=12) + i % 4]) + "\n")
    trained = CsvDataModule(path, channels=1, header=False, delimiter=",")
    trained.load()
    torch.save({"CsvDataModule": {RECORD: {"path": path, "series_sha256": trained._series_sha256}}}, tmp_path / "run.ckpt")
    saved = {"_class_path": "neuroview.data.CsvDataModule", "path": path, "seed": 0, "channels": 1, "header": False,
             "label_column": 0, "delimiter": ","}
    return str(tmp_path / "run.ckpt"), saved


@pytest.mark.parametrize("what", ["ckpt_path", "model.init_weights"])
def test_the_model_s_unchanged_csv_with_another_channels_is_refused_by_the_option_not_blamed(tmp_path, what):
    """channels 2 asked of a file trained as 1 channel: the file was read with the asked channels before any option was
    compared, and the unchanged file blamed ("changed since ... Restore the file")."""
    from neuroview.training.ckpt_data import check_evaluated_data
    ckpt, saved = _csv_run(tmp_path)
    args = {k: v for k, v in saved.items() if not k.startswith("_")}
    data = {"class_path": "neuroview.data.CsvDataModule", "init_args": {**args, "channels": 2}}
    with pytest.raises(ValueError) as e:
        check_evaluated_data(ckpt, data, saved, "test", what)
    assert "read otherwise (--data.init_args.channels 2 asked, 1 in the checkpoint)" in str(e.value)
    assert "changed since" not in str(e.value) and "(--data.init_args.channels 1)" in str(e.value)
    data["init_args"]["channels"] = 1
    data["init_args"]["delimiter"] = None  # sniffs ',': the same 40 series of 12 steps, read alike
    check_evaluated_data(ckpt, data, saved, "test", what)  # before: "other split options (... delimiter None asked"


def _own_test_pre_padded(path):
    """X of 12 series of 8 steps (none padded), and its own X_test of 6 series Keras zero pre-padded (lengths_test)."""
    x = 1 + np.arange(12 * 8, dtype=np.float32).reshape(12, 1, 8)
    lengths_test = np.array([3, 5, 8, 4, 6, 8])
    x_test = np.zeros((6, 1, 8), np.float32)
    for i, k in enumerate(lengths_test):
        x_test[i, 0, 8 - k:] = 500 + np.arange(k) + 10 * i  # valid steps last
    np.savez(path, X=x, y=np.arange(12) % 2, lengths=np.full(12, 8), X_test=x_test, y_test=np.arange(6) % 2,
             lengths_test=lengths_test)
    return str(path)


@pytest.mark.parametrize("what", ["ckpt_path", "model.init_weights"])
def test_the_file_s_own_test_split_read_with_another_padding_is_refused(tmp_path, what):
    """X reads alike under 'pre' and 'post' (no series padded), but X_test read as 'post' takes the padding as data
    (3 of the first series' 3 steps read are zeros): judged by the training split only, it was accepted."""
    from neuroview.training.ckpt_data import check_evaluated_data
    path = _own_test_pre_padded(tmp_path / "train.npz")
    ckpt, saved = _run(tmp_path, path, "pre")
    assert NpzDataModule(path, padding="post").load()["test"][0][0].tolist() == [[0.0, 0.0, 0.0]]  # the case
    data = {"class_path": "neuroview.data.NpzDataModule", "init_args": {"path": path, "seed": 0, "padding": "post"}}
    with pytest.raises(ValueError, match=r"read otherwise \(--data\.init_args\.padding 'post' asked, 'pre' in the "
                                         r"checkpoint\)"):
        check_evaluated_data(ckpt, data, saved, "test", what)
    data["init_args"]["padding"] = "pre"
    check_evaluated_data(ckpt, data, saved, "test", what)


@pytest.mark.parametrize("what, reads", [("ckpt_path", 1), ("model.init_weights", 2)])
def test_padding_compared_by_effect_reads_the_file_once_more_at_most(tmp_path, monkeypatch, what, reads):
    """'auto' asked, 'post' trained: the asked read's fingerprint is held to the checkpoint's record (it read the file
    2 more times: as asked and as trained); init_weights' changed-file check is the other read."""
    from neuroview.training.ckpt_data import check_evaluated_data
    path = _post_padded(tmp_path / "train.npz")
    ckpt, saved = _run(tmp_path, path, "post")
    count, load = [], NpzDataModule.load
    monkeypatch.setattr(NpzDataModule, "load", lambda self: count.append(1) or load(self))
    data = {"class_path": "neuroview.data.NpzDataModule", "init_args": {"path": path, "seed": 0, "padding": "auto"}}
    check_evaluated_data(ckpt, data, saved, "test", what)
    assert len(count) == reads
