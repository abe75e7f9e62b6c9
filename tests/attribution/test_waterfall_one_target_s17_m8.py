"""``waterfall_units`` / ``decision_items`` read ``target`` as ``plots.waterfall`` reads it: one class from an int, a
whole float or any one-element tensor, array or list (``torch.tensor([2])`` was refused after c0b75b3, accepted before
and by ``plots.waterfall``); a ``[B]`` tensor of several classes, which ``plots.waterfall`` refuses, is refused too.

Hand-built explanations whose per-step / per-unit contributions are set here, so the answers are known."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import neuroview as nv  # noqa: E402
from neuroview.attribution.gallery import decision_items, waterfall_units  # noqa: E402
from neuroview.viz import plots  # noqa: E402


def _rnn_exp() -> nv.RNNExplanation:
    """B=2, C=3, T=3 steps: class 2's largest |contribution| is step 0 for sample 0, step 1 for sample 1."""
    ti = torch.tensor([[[1.0, -3.0, 0.5], [0.1, 0.2, -2.0], [6.0, 0.1, 0.0]],
                       [[0.3, 0.0, 4.0], [-5.0, 0.1, 0.0], [0.0, -7.0, 1.0]]])
    contrib = ti[:, :, None, None, :, None]  # [B, C, L, D, T, H]
    bias = torch.zeros(3)
    return nv.RNNExplanation(contrib.flatten(2).sum(-1) + bias, bias, contrib, torch.zeros(3, 1, 1, 3, 1),
                             time_importance=ti, lengths=torch.tensor([3, 3]))


def _cnn_exp() -> nv.CNNExplanation:
    """B=2, C=3, 4 units, codes 1: contributions = weight; class 2 reads unit 0 (2.0) then unit 3 (-1.0)."""
    w = torch.tensor([[1.0, -2.0, 0.5, 0.0], [0.1, 0.3, -0.2, 3.0], [2.0, 0.0, 0.0, -1.0]])
    codes = torch.ones(2, 4)
    return nv.CNNExplanation(codes @ w.T, torch.zeros(3), None, codes, w, units=[("s", i) for i in range(4)],
                             site_slices={"s": slice(0, 4)})


ONE = [torch.tensor([2]), np.array([2]), [2], torch.tensor([[2]]), np.array([2.0])]


@pytest.mark.parametrize("target", ONE, ids=["tensor[1]", "array[1]", "list[1]", "tensor[1,1]", "float-array[1]"])
def test_a_one_element_target_is_one_class_as_plots_waterfall_reads_it(target):
    plots.waterfall(_rnn_exp(), 0, target=target)  # accepted there
    assert waterfall_units(_rnn_exp(), [0, 1], k=1, target=target) == [0, 1]  # class 2: steps 0 (6.0), 1 (-7.0)
    assert waterfall_units(_cnn_exp(), [0], k=2, target=target) == [0, 3]
    assert decision_items(_rnn_exp(), 1, target).tolist() == [0.0, -7.0, 1.0]


@pytest.mark.parametrize("target", [torch.tensor([2, 2]), np.array([1, 2]), torch.tensor([True]), torch.tensor([1.5]),
                                    torch.tensor([-1]), torch.tensor([3])])
def test_what_plots_waterfall_refuses_is_refused_by_name(target):
    with pytest.raises((ValueError, TypeError), match="target"):
        plots.waterfall(_rnn_exp(), 0, target=target)
    for exp in (_rnn_exp(), _cnn_exp()):
        with pytest.raises((ValueError, TypeError), match="target"):
            waterfall_units(exp, [0], k=2, target=target)
        with pytest.raises((ValueError, TypeError), match="target"):
            decision_items(exp, 0, target)
