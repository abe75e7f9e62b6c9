"""The faithfulness checks that take a gradient under ``torch.inference_mode()`` (probe S27 P4 finding 1).

Lightning runs test and predict hooks under ``torch.inference_mode()``, which ``torch.enable_grad()`` (Captum's own
switch) cannot undo: ``unit_scores`` with ``layer_grad_x_act`` / ``layer_conductance``, ``step_scores`` with
``integrated_gradients``, and the default ``unit_ablation`` / ``time_step_deletion`` died there with PyTorch's bare
"element 0 of tensors does not require grad", and ``layer_grad_x_act`` of an inference tensor ``x`` with "Inference
tensors cannot be saved for backward". They now give the numbers of the same call made outside it.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.attribution import faithfulness as fa

pytest.importorskip("captum")
pytestmark = pytest.mark.filterwarnings("ignore:unit_importance")  # an untrained head: its global order warns


def _cnn():
    torch.manual_seed(0)
    body = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 5, 3), nn.ReLU())
    net = nv.NeuroViewCNN(body, 3, input_shape=(1, 8, 8), quantizer="soft").eval()
    x, y = torch.randn(6, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    return net, x, y


def _rnn():
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(2, 4, batch_first=True), 3, max_len=10).eval()
    x, y = torch.randn(5, 10, 2), torch.tensor([0, 1, 2, 0, 1])
    return net, x, y


@pytest.mark.parametrize("method", ["layer_grad_x_act", "layer_conductance"])
def test_unit_scores_under_inference_mode_equal_those_outside(method):
    net, x, y = _cnn()
    want = fa.unit_scores(net, x, y, method, n_steps=4)
    with torch.inference_mode():
        got = fa.unit_scores(net, x, y, method, n_steps=4)
        xi, yi = x.clone(), y.clone()  # inference tensors, as a Lightning predict loop hands them on
    assert xi.is_inference()
    assert torch.equal(got, want)
    assert torch.equal(fa.unit_scores(net, xi, yi, method, n_steps=4), want)  # an inference x outside the mode


def test_step_scores_under_inference_mode_equal_those_outside():
    net, x, y = _rnn()
    want = fa.step_scores(net, x, y, "integrated_gradients", n_steps=4)
    with torch.inference_mode():
        got = fa.step_scores(net, x, y, "integrated_gradients", n_steps=4, baseline="mean")
        got_zero = fa.step_scores(net, x, y, "integrated_gradients", n_steps=4)
        xi = x.clone()
    assert torch.equal(got_zero, want)
    assert torch.equal(got, fa.step_scores(net, x, y, "integrated_gradients", n_steps=4, baseline="mean"))
    assert torch.equal(fa.step_scores(net, xi, y, "integrated_gradients", n_steps=4), want)


def test_default_deletion_checks_under_inference_mode_equal_those_outside():
    net, x, y = _cnn()
    rnn, s, ys = _rnn()
    units = fa.unit_ablation(net, x, y, n_steps=4, steps=2, seeds=[0])
    series = fa.time_step_deletion(rnn, s, ys, n_steps=4, steps=2, seeds=[0])
    with torch.inference_mode():
        units_i = fa.unit_ablation(net, x, y, n_steps=4, steps=2, seeds=[0])
        series_i = fa.time_step_deletion(rnn, s, ys, n_steps=4, steps=2, seeds=[0])
    assert {"layer_grad_x_act", "layer_conductance"} <= set(units_i.curves)  # the Captum orders ran, none skipped
    assert "integrated_gradients" in series_i.curves
    for a, b in ((units, units_i), (series, series_i)):
        assert sorted(a.curves) == sorted(b.curves)
        for name in a.curves:
            assert torch.equal(a.curves[name].accuracy, b.curves[name].accuracy), name
            assert torch.equal(a.curves[name].true_logit, b.curves[name].true_logit), name


def test_a_network_built_under_inference_mode_is_scored_as_one_built_outside():
    """Its parameters are inference tensors, which autograd cannot save: scored on ordinary copies of them."""
    net, x, y = _cnn()
    want = fa.unit_scores(net, x, y, "layer_grad_x_act")
    state = net.state_dict()
    with torch.inference_mode():
        twin = nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 5, 3), nn.ReLU()), 3,
                               input_shape=(1, 8, 8), quantizer="soft")
        twin.load_state_dict(state)
        twin.eval()
        got = fa.unit_scores(twin, x, y, "layer_grad_x_act")
    assert next(twin.parameters()).is_inference()  # the user's tensors left as they were
    assert torch.equal(got, want)
