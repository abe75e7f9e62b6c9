"""Result objects holding tensors compare by identity and hash, as the Explanation classes do (probe s20 P1,
finding 3): ``==`` against a copy raised torch's bare "Boolean value of Tensor ... is ambiguous" from inside the
dataclass's generated ``__eq__``, and ``eq=True`` made them unhashable."""

import copy
import pickle

import pytest
import torch

from neuroview.attribution.ablation import DeletionCurve, DeletionCurves
from neuroview.attribution.gallery import UnitGallery
from neuroview.training.sparsity_path import SparsityPath, Walk


def _path() -> SparsityPath:
    t = torch.tensor([1.0, 2.0, 3.0])
    return SparsityPath(lambdas=t, val_acc=t, train_acc=t, units_per_class=t, groups_per_class=t, chosen=1,
                        reference=3.0, tolerance=1.0, validation="given")


def _curve() -> DeletionCurve:
    t = torch.tensor([0.0, 0.5, 1.0])
    return DeletionCurve("weight", torch.tensor([0, 1, 2]), t, t, t)


def _gallery() -> UnitGallery:
    return UnitGallery(kind="units", units=[0, 1], names=["a #0", "a #1"], index=torch.zeros(2, 3, dtype=torch.long),
                       value=torch.ones(2, 3), x=torch.zeros(2, 3, 1, 4), y=None,
                       window=torch.zeros(2, 3, 1, 2, dtype=torch.long), ranked_by="code")


def _walk() -> Walk:
    t = torch.tensor([1.0, 2.0])
    return Walk(sparse=torch.nn.Linear(2, 2), z=torch.zeros(3, 2), y=torch.tensor([0, 1, 1]), path=[], lambdas=t,
                val_acc=t, val_loss=torch.zeros(2, 3), k90=t, k90_steps=None, reference=2.0, how="given", units=t, grp=t, fewest=t)


@pytest.mark.parametrize("make", [_path, _curve, lambda: DeletionCurves("units", {"weight": _curve()}), _gallery, _walk],
                         ids=["SparsityPath", "DeletionCurve", "DeletionCurves", "UnitGallery", "Walk"])
def test_results_compare_by_identity_and_hash(make):
    obj = make()
    for twin in (pickle.loads(pickle.dumps(obj)), copy.deepcopy(obj), make()):
        assert (obj == twin) is False and (obj != twin) is True  # no torch error, a plain bool
    assert obj == obj
    assert len({obj, obj, make()}) == 2  # hashable: a set holds each object once
    assert {obj: 1}[obj] == 1
