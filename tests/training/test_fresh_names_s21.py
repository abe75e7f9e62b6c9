"""The "first free -vN" names of a run's own files, taken as they are chosen (R1 finding 3 of s21): ``fresh_name``
(``predictions.csv``, ``config.yaml``) and ``Sparsify``'s ``sparse-vN.safetensors`` / ``sparse_path-vN.json`` picked
a name by ``lexists``/``exists``, so two runs naming their files before either wrote got one name, and the second's
write replaced the first's file. The interleaving is made deterministic: both runs ask for their names, then both
write."""

from __future__ import annotations

import os

import pytest

from neuroview._io import atomic_write
from neuroview.training import outputs
from neuroview.training.outputs import fresh_name
from neuroview.training.sparse_callback import Sparsify


def test_two_runs_beside_a_user_s_file_get_two_names_and_keep_both_files(tmp_path):
    (tmp_path / "predictions.csv").write_text("the user's own file\n")
    a = fresh_name(tmp_path / "predictions.csv")  # run A names its file
    b = fresh_name(tmp_path / "predictions.csv")  # run B, before A wrote (was predictions-v1.csv for both)
    assert (a.name, b.name) == ("predictions-v1.csv", "predictions-v2.csv")
    atomic_write(a, b"run A\n")
    atomic_write(b, b"run B\n")
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {
        "predictions.csv": "the user's own file\n", "predictions-v1.csv": "run A\n", "predictions-v2.csv": "run B\n"}


def test_two_runs_into_an_empty_folder_get_two_names(tmp_path):
    a, b = fresh_name(tmp_path / "sub" / "config.yaml"), fresh_name(tmp_path / "sub" / "config.yaml")
    assert (a.name, b.name) == ("config.yaml", "config-v1.yaml")  # was config.yaml twice: B's config over A's
    assert a.read_bytes() == b.read_bytes() == b""  # taken, empty, for the caller to write over


def test_a_name_this_run_wrote_is_given_again_and_a_dangling_link_skipped(tmp_path):
    path = tmp_path / "predictions.csv"
    path.write_text("this run's\n")
    assert fresh_name(path, {os.path.realpath(path)}) == path  # its own file: the caller keeps it aside itself
    os.symlink(tmp_path / "nowhere", tmp_path / "predictions-v1.csv")
    assert fresh_name(path).name == "predictions-v2.csv"
    assert os.path.islink(tmp_path / "predictions-v1.csv")  # the link left as it was


def test_a_failed_write_gives_the_name_back_and_leaves_another_s_file(tmp_path):
    made = outputs.take_name(tmp_path / "p.csv")
    outputs.give_back(tmp_path / "p.csv", made)
    assert list(tmp_path.iterdir()) == []
    made = outputs.take_name(tmp_path / "p.csv")
    atomic_write(tmp_path / "p.csv", b"written meanwhile\n")  # another file at the name now: never removed
    outputs.give_back(tmp_path / "p.csv", made)
    assert (tmp_path / "p.csv").read_text() == "written meanwhile\n"
    assert outputs.take_name(tmp_path / "p.csv") is None


class _Trainer:
    """What ``Sparsify._names`` reads of a trainer: its identity."""


def test_two_sparsify_runs_into_one_folder_get_two_pairs_of_names(tmp_path):
    a, b, trainer = Sparsify(), Sparsify(), _Trainer()
    first, second = a._names(tmp_path, trainer), b._names(tmp_path, _Trainer())  # both before either writes
    assert [p.name for p in first] == ["sparse.safetensors", "sparse_path.json"]
    assert [p.name for p in second] == ["sparse-v1.safetensors", "sparse_path-v1.json"]  # was sparse.* for both
    assert a._names(tmp_path, trainer) == first  # one run asking again (a test, then a predict): its own names


def test_a_record_alone_at_a_name_is_skipped_whole_and_nothing_of_it_taken(tmp_path):
    (tmp_path / "sparse_path.json").write_text('{"run": "another"}\n')
    names = Sparsify()._names(tmp_path, _Trainer())
    assert [p.name for p in names] == ["sparse-v1.safetensors", "sparse_path-v1.json"]
    assert not (tmp_path / "sparse.safetensors").exists()  # the weights' name taken for a moment, given back


def test_a_failed_sparse_write_leaves_no_empty_names(tmp_path, monkeypatch):
    """A run whose write fails (a full disk) gives back the names it took: no empty ``sparse.safetensors`` left."""
    import pytorch_lightning as pl

    import neuroview.training.sparse_callback as sc
    from neuroview.data import DigitsDataModule
    from neuroview.training.module import NeuroViewModule

    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))

    def full(path, data, replace=True):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(sc, "atomic_write", full)
    pl.seed_everything(0)
    m = NeuroViewModule("nv_small_cnn", num_classes=10, in_channels=1, model_kwargs={"widths": [4, 8]})
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         accelerator="cpu", devices=1, default_root_dir=str(tmp_path / "run"), callbacks=[Sparsify()],
                         limit_test_batches=1)
    with pytest.raises(OSError, match="No space"):
        trainer.test(m, datamodule=DigitsDataModule(batch_size=64), verbose=False)
    assert sorted(p.name for p in (tmp_path / "run").glob("sparse*")) == []
