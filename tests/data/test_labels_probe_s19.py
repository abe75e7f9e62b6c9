"""Labels as users hand them over (probe P3 of session 19): a model's classes written as floats, one label in two
Unicode forms, and text labels that Python's float() reads as numbers ("1_0", "inf"). The expected classes are the
labels each test writes, counted by hand."""

from __future__ import annotations

import unicodedata
from decimal import Decimal

import numpy as np
import pytest

from neuroview.data import ArrayDataModule, NpzDataModule
from neuroview.data.read_as import check_classes

NFC, NFD = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")


def _module(tmp_path, y, **split) -> NpzDataModule:
    rng = np.random.default_rng(0)
    arrays = {"X": rng.normal(size=(len(y), 1, 12)).astype(np.float32), "y": np.asarray(y)}
    arrays |= {k: (rng.normal(size=(len(v), 1, 12)).astype(np.float32) if k.startswith("X") else np.asarray(v))
               for k, v in split.items()}
    np.savez(tmp_path / "d.npz", **arrays)
    dm = NpzDataModule(str(tmp_path / "d.npz"), batch_size=4, val_fraction=0)
    dm.setup("fit")
    return dm


def test_text_labels_with_underscores_are_classes_of_their_own(tmp_path):
    dm = _module(tmp_path, ["1_0", "1_1", "10"] * 8)  # subject 1 session 0, subject 1 session 1, subject 10
    assert dm.class_names == ["10", "1_0", "1_1"]  # three classes, ordered as text (float("1_0") was 10)
    assert dm.num_classes == 3


def test_a_text_label_inf_is_a_class_and_nan_stays_a_missing_label(tmp_path):
    assert _module(tmp_path, ["inf", "ctrl"] * 8).class_names == ["ctrl", "inf"]  # was refused as "NaN or inf"
    with pytest.raises(ValueError, match="NaN or inf"):
        _module(tmp_path, ["nan", "ctrl"] * 8)


def test_numbers_are_still_read_as_numbers(tmp_path):
    assert _module(tmp_path, ["2", "10", "1"] * 8).class_names == ["1", "2", "10"]  # as numbers, not text
    assert _module(tmp_path, np.array([2.0, 1.0] * 8)).class_names == ["1.0", "2.0"]
    with pytest.raises(ValueError, match="got '1' and '1.0' in the training split: the same number written apart"):
        _module(tmp_path, ["1", "1.0", "2"] * 8)


def test_one_label_in_two_unicode_forms_is_refused_naming_both(tmp_path):
    assert NFC != NFD and len(NFC) == 4 and len(NFD) == 5
    with pytest.raises(ValueError, match=r"expected every class written one way, .* the same label in two Unicode "
                                         r"forms, which print alike") as e:
        _module(tmp_path, [NFC, NFD, "tea"] * 8)
    assert r"'caf\xe9': NFC" in str(e.value) and r"'cafe\u0301': NFD" in str(e.value)  # told apart


def test_a_test_split_in_another_unicode_form_gets_the_hint(tmp_path):
    with pytest.raises(ValueError, match=r"the test split has labels .* that the training split lacks \(the training "
                                         r"split writes .* as .*: the same label in two Unicode forms"):
        _module(tmp_path, [NFC, "tea"] * 8, X_test=[0] * 4, y_test=[NFD, "tea"] * 2)


def test_a_model_s_classes_written_as_floats_get_the_hint_the_splits_get(tmp_path):
    dm = _module(tmp_path, np.array([1.0, 2.0] * 8))  # np.loadtxt of a UCR file: float labels
    with pytest.raises(ValueError, match=r"the model's outputs are \['1', '2'\] \(the model writes '1.0' as '1': the "
                                         r"same number written apart.*store the labels as the model names them\)"):
        check_classes(dm, ["1", "2"], "--data: d.npz")
    check_classes(dm, ["1.0", "2.0"], "--data: d.npz")  # the model's own names: accepted
    other = _module(tmp_path, ["a", "b"] * 8)
    with pytest.raises(ValueError, match=r"the model's outputs are \['1', '2'\]: a data module numbers"):
        check_classes(other, ["1", "2"], "--data: d.npz")  # other classes: no hint


class _ObjectLabels(ArrayDataModule):  # labels handed over as a subclass's load() gives them
    """Labels as an object array (a pandas column of mixed types: ``df["label"].to_numpy()``)."""

    LABELS_GIVEN: list = []

    def load(self):
        y = np.array(self.LABELS_GIVEN, dtype=object)
        x = np.random.default_rng(0).normal(size=(len(y), 1, 8)).astype(np.float32)
        return {"train": (x, y), "test": (x, y)}


@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), np.float32("inf"), float("nan"), Decimal("sNaN"),
                                 Decimal("-Infinity")])
def test_a_float_inf_label_in_an_object_array_is_refused_as_in_a_float_array(bad):
    """Review R4 finding 4: ``str(inf)`` is the text ``'inf'``, a class name, so a float inf among object labels became
    class 'inf' (ordered as text beside '1.0', '2.0'); a float array's was refused. Series 40 is the first bad one."""
    dm = _ObjectLabels(batch_size=8, val_fraction=0)
    dm.LABELS_GIVEN = [1.0, 2.0] * 20 + [bad] * 10
    with pytest.raises(ValueError, match=r"y: expected a class label for every series, got NaN or inf in the train "
                                         r"split \(at series 40: '-?(inf|nan|sNaN|Infinity)'\)"):
        dm.setup("fit")
    text = _ObjectLabels(batch_size=8, val_fraction=0)
    text.LABELS_GIVEN = [1.0, 2.0] * 20 + ["inf"] * 10  # the text "inf" (an abbreviation) stays a class of its own
    text.setup("fit")
    assert text.class_names == ["1.0", "2.0", "inf"]


def test_labels_apart_in_both_unicode_form_and_whitespace_are_told_both_and_the_fix_joins_them(tmp_path):
    """Review R4 finding 7: 'café' (NFC) and 'café ' (NFD, a space after) were told only the Unicode form, and its advice,
    unicodedata.normalize('NFC', label), left two labels ('café', 'café ')."""
    spaced = NFD + " "
    with pytest.raises(ValueError, match=r"expected every class written one way") as e:
        _module(tmp_path, [NFC, spaced, "tea"] * 8)
    said = str(e.value)
    assert "two Unicode forms" in said and "whitespace" in said, said
    assert r"'caf\xe9': NFC" in said and r"'cafe\u0301 ': NFD" in said
    advice = "unicodedata.normalize('NFC', label).strip()"
    assert advice in said
    fixed = {eval(advice, {"unicodedata": unicodedata, "label": v}) for v in (NFC, spaced)}  # the advice, applied
    assert fixed == {"café"}  # one label
    with pytest.raises(ValueError) as only_form:  # one difference: told only that one, with its own fix
        _module(tmp_path, [NFC, NFD, "tea"] * 8)
    assert "whitespace" not in str(only_form.value) and ".strip()" not in str(only_form.value)
