"""``nv.unit_gallery`` and ``nv.finetune_sparse`` name ``.module`` / ``._orig_mod`` for a NeuroView network inside
torch's wrappers, as ``readability`` and ``sparsify`` do (they named only the wrapper's type)."""

import pytest
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import DataLoader, TensorDataset

import neuroview as nv


def _net():
    torch.manual_seed(0)
    body = nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(4, 2))
    return nv.wrap(body, num_classes=2, example_input=torch.randn(2, 1, 12))


def _loader():
    return DataLoader(TensorDataset(torch.randn(8, 1, 12), torch.arange(8) % 2), batch_size=4)


@pytest.mark.parametrize("wrap", [nn.DataParallel, AveragedModel])
def test_the_gallery_names_the_wrapped_network(wrap):
    with pytest.raises(TypeError, match=r"got an? (DataParallel|AveragedModel) .*pass net\.module"):
        nv.unit_gallery(wrap(_net()), _loader(), [("1", 0)])


def test_finetune_sparse_names_the_wrapped_network():
    with pytest.raises(TypeError, match=r"got an? AveragedModel .*pass sparse\.module"):
        nv.finetune_sparse(AveragedModel(_net()), _loader())


def test_a_plain_module_is_still_named_by_its_type():
    with pytest.raises(TypeError, match=r"got Linear$"):
        nv.unit_gallery(nn.Linear(2, 2), _loader(), [("1", 0)])
