"""The prediction and confusion tables name a data module's classes by the tables' one rule
(``neuroview.core.name_text.name_sequence``): a tensor of labels as their values, not ``tensor(1)``."""

import torch

from neuroview.training.outputs import named_classes


class _DM:
    def __init__(self, names):
        self.class_names = names


def test_a_data_module_naming_its_classes_by_a_tensor_is_named_by_the_values():
    assert named_classes(_DM(torch.tensor([1, 2]))) == ["1", "2"]
    assert named_classes(_DM([b"cat", "dog"])) == ["cat", "dog"]


def test_names_that_name_no_class_leave_the_tables_unnamed():
    assert named_classes(_DM(["a", None])) is None
    assert named_classes(_DM(None)) is None
