"""Data read for a trained model looks its labels up among the model's classes by name (finding 5 of probe P5, s22):
a file of new recordings holding some of the model's classes (a batch without one class, a day of one class) was
refused, since a data module numbered the classes it read (its class i would be scored as the model's class i), and
a file of one class was refused as "at least 2 classes". Inside ``model_classes(names)`` (what a command reading a
file for a checkpoint gives its data module) the labels are the model's classes, a subset is fine, and a label the
model has no class for is refused by name."""

import numpy as np
import pytest

from neuroview.data import CsvDataModule, NpzDataModule
from neuroview.data.labels import model_classes
from neuroview.data.splits import whole_files

MODEL = ["3", "7", "12"]  # a model's outputs, in order (the checkpoint's neuroview_classes)


def _read(path, cls=NpzDataModule, names=MODEL):
    with whole_files(), model_classes(names):
        dm = cls(str(path), val_fraction=0)
    dm.setup("test")
    return dm


def test_a_file_of_some_of_the_models_classes_is_scored_by_name(tmp_path):
    rng = np.random.default_rng(0)
    y = np.array([3, 12, 12, 3, 12, 3])  # no series of class 7
    np.savez(tmp_path / "two.npz", X=rng.normal(size=(6, 1, 10)).astype(np.float32), y=y)
    dm = _read(tmp_path / "two.npz")
    assert dm.class_names == MODEL and dm.num_classes == 3
    assert dm._splits["test"][1].tolist() == [0, 2, 2, 0, 2, 0]  # 3 -> output 0, 12 -> output 2
    with whole_files():  # outside: the file's own classes, numbered from its labels, as before
        own = NpzDataModule(str(tmp_path / "two.npz"), val_fraction=0)
    own.setup("test")
    assert own.class_names == ["3", "12"]


def test_a_file_of_one_of_the_models_classes_is_read(tmp_path):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "one.npz", X=rng.normal(size=(5, 1, 10)).astype(np.float32), y=np.full(5, 7))
    assert _read(tmp_path / "one.npz")._splits["test"][1].tolist() == [1] * 5
    (tmp_path / "one.csv").write_text("".join(f"7,{i},{i + 1},{i + 2}\n" for i in range(5)))
    dm = _read(tmp_path / "one.csv", CsvDataModule)
    assert dm.class_names == MODEL and dm._splits["test"][1].tolist() == [1] * 5


def test_a_label_the_model_has_no_class_for_is_refused_by_name(tmp_path):
    rng = np.random.default_rng(2)
    np.savez(tmp_path / "odd.npz", X=rng.normal(size=(6, 1, 10)).astype(np.float32), y=np.array([3, 5, 7, 3, 5, 7]))
    with pytest.raises(ValueError, match=r"NpzDataModule: y: expected labels among the classes of the model the data is "
                                         r"read for \['3', '7', '12'\], got \['5'\] in the train split"):
        _read(tmp_path / "odd.npz")
    np.savez(tmp_path / "f.npz", X=rng.normal(size=(4, 1, 10)).astype(np.float32), y=np.array([3.0, 7.0, 3.0, 7.0]))
    with pytest.raises(ValueError, match=r"got \['3.0', '7.0'\]"):  # written otherwise: not the model's "3" silently
        _read(tmp_path / "f.npz")
