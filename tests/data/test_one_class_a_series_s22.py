"""The "one class a series" guard (finding 6 of probe P5, s22): a one-shot set (one series a class, tested on one a
class) and a new file of one recording a class read for a trained model were refused as "measurements or row
numbers", with no way past it. Now ``labels="classes"`` says the labels are classes, and a file read whole for a
trained model (its labels held to the model's classes afterwards) is not judged so; row numbers stay refused."""

import numpy as np
import pytest

from neuroview.data import CsvDataModule, NpzDataModule
from neuroview.data.splits import whole_files

NAMES = np.array([f"word_{i:02d}" for i in range(12)])


def _oneshot(tmp_path):
    rng = np.random.default_rng(0)
    x, xt = rng.normal(size=(12, 1, 20)).astype(np.float32), rng.normal(size=(12, 1, 20)).astype(np.float32)
    order = rng.permutation(12)
    np.savez(tmp_path / "oneshot.npz", X=x, y=NAMES, X_test=xt, y_test=NAMES[order])
    return str(tmp_path / "oneshot.npz"), order


def test_a_one_shot_set_is_refused_naming_labels_classes_and_read_with_it(tmp_path):
    path, order = _oneshot(tmp_path)
    with pytest.raises(ValueError, match=r"got 12 classes for 12 series .*pass labels='classes' "
                                         r"\(--data.init_args.labels classes\)"):
        NpzDataModule(path, val_fraction=0).setup("fit")
    dm = NpzDataModule(path, val_fraction=0, labels="classes")
    dm.setup("fit")
    assert dm.class_names == NAMES.tolist()  # sorted already: class i is word_i
    assert dm._splits["train"][1].tolist() == list(range(12)) and dm._splits["test"][1].tolist() == order.tolist()
    assert dm.hparams["labels"] == "classes"


def test_a_one_shot_csv_is_read_with_labels_classes(tmp_path):
    rng = np.random.default_rng(1)
    rows = lambda labels: "".join(",".join([lab] + [f"{v:.4f}" for v in rng.normal(size=8)]) + "\n" for lab in labels)
    (tmp_path / "tr.csv").write_text(rows(NAMES))
    (tmp_path / "te.csv").write_text(rows(NAMES[::-1]))
    kw = dict(test_path=str(tmp_path / "te.csv"), val_fraction=0)
    with pytest.raises(ValueError, match=r"check label_column .*pass labels='classes'"):
        CsvDataModule(str(tmp_path / "tr.csv"), **kw).setup("fit")
    dm = CsvDataModule(str(tmp_path / "tr.csv"), labels="classes", **kw)
    dm.setup("fit")
    assert dm._splits["test"][1].tolist() == list(range(11, -1, -1))


def test_a_new_file_of_one_recording_a_class_is_read_whole_for_a_model(tmp_path):
    rng = np.random.default_rng(2)
    np.savez(tmp_path / "new.npz", X=rng.normal(size=(12, 1, 20)).astype(np.float32), y=NAMES)
    with whole_files():
        dm = NpzDataModule(str(tmp_path / "new.npz"), val_fraction=0)
    dm.setup("test")
    assert dm.class_names == NAMES.tolist() and dm.split_sizes()["test"] == 12
    with pytest.raises(ValueError, match="got 12 classes for 12 series"):  # carved as a training file: refused, as before
        NpzDataModule(str(tmp_path / "new.npz"), val_fraction=0).setup("fit")


@pytest.mark.parametrize("cls", [CsvDataModule, NpzDataModule])
def test_the_labels_option_is_checked(cls):
    with pytest.raises(ValueError, match=r"labels: expected 'auto' .* or 'classes' .*, got 'class'"):
        cls("x", labels="class")
