"""Review D of e98727b: ``nv.minirocket`` given unlabelled batches and ``num_classes`` failed inside torch
(``TypeError: _unique2(): argument 'input' (position 1) must be Tensor, not NoneType``) where before it refused the
input by name; the bare-input refusal now comes first, whether or not ``num_classes`` is given."""

from __future__ import annotations

import pytest
import torch

import neuroview as nv

BARE = r"^train: expected batches \(x, y\) or \(x, lengths, y\) with labels, got bare inputs"


class _Bare:
    """A data module's shape: it says its num_classes, its batches carry no labels."""

    num_classes = 2

    def __iter__(self):
        return iter([(torch.randn(8, 1, 30),)])


@pytest.mark.parametrize("num_classes", [None, 2, 3])
def test_bare_batches_are_refused_by_name_whether_or_not_num_classes_is_given(num_classes):
    with pytest.raises(ValueError, match=BARE):  # was, for 2 and 3: TypeError out of torch.unique(None)
        nv.minirocket([(torch.randn(8, 1, 30),)], num_classes=num_classes, num_features=84)


def test_bare_batches_of_a_loader_that_says_its_num_classes_are_refused_by_name():
    with pytest.raises(ValueError, match=BARE):  # was: TypeError out of torch.unique(None)
        nv.minirocket(_Bare(), num_features=84)
