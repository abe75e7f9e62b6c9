"""Data whose classes differ from the model's past the 8th name, or only in count, is refused naming the difference
(both lists are cut at 8: they read the same); an ``.npz`` of a class name that is not UTF-8 (``caf\\udce9``, as
``os.listdir`` gives a latin-1 name) is read, not failed in the fingerprint's hash."""

from __future__ import annotations

import os

import numpy as np
import pytest

from neuroview.data.read_as import check_classes

LATIN1 = os.fsdecode(b"caf\xe9")  # 'caf\udce9'


def _digits(n: int) -> list[str]:
    return [str(i) for i in range(n)]


class _Classes:
    def __init__(self, names):
        self.class_names = names


def test_classes_that_differ_past_the_eighth_are_refused_naming_the_difference():
    with pytest.raises(ValueError) as e:
        check_classes(_Classes([*_digits(9), "ten"]), _digits(10), "--data")
    assert "class 9 is 'ten' here, '9' in the model" in str(e.value)


def test_classes_that_differ_only_in_count_are_refused_naming_both_counts():
    with pytest.raises(ValueError) as e:
        check_classes(_Classes(_digits(10)), _digits(11), "--data")
    assert "10 classes here, 11 in the model" in str(e.value)
    assert "'10'" in str(e.value)  # the model's class the data lacks
    with pytest.raises(ValueError) as e:
        check_classes(_Classes(_digits(12)), _digits(10), "--data")
    assert "12 classes here, 10 in the model" in str(e.value) and "'10', '11'" in str(e.value)


def test_a_short_refusal_keeps_its_words():
    with pytest.raises(ValueError) as e:
        check_classes(_Classes(["b", "c"]), ["a", "b"], "data")
    assert str(e.value).startswith("data: its classes, in order, are ['b', 'c']; the model's outputs are ['a', 'b']: a data")


def test_npz_labels_of_a_non_utf8_name_are_read_or_refused_by_name(tmp_path):
    from neuroview.data import NpzDataModule

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "s.npz", X=rng.normal(size=(40, 1, 24)).astype("float32"), y=np.array([LATIN1, "tea"] * 20))
    dm = NpzDataModule(str(tmp_path / "s.npz"))
    dm.setup("fit")  # was a bare UnicodeEncodeError of the fingerprint's hash
    assert list(dm.class_names) == [LATIN1, "tea"]
