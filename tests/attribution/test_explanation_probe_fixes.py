"""What an explanation and the importance maps did with arguments, as a probe found it wrong: a numpy array
of classes refused (and a one-element float array cut to a class), a spatial map of a class no unit adds to
failing bare, a class with no sample in ``y`` reported as a mean of 0, ``y`` / ``sample`` / ``reduce`` dropped
unsaid, and the waterfall drawing the predicted class rather than the one explained. Every expected value is
computed here by hand, not by the code under test."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import neuroview as nv  # noqa: E402
from neuroview.attribution import export, importance  # noqa: E402
from neuroview.viz import plots  # noqa: E402
from nets import small_report_cnn, small_report_rnn, with_running_stats  # noqa: E402


def _by_hand(exp, classes) -> torch.Tensor:
    """``[B, U]``: each sample's codes times the weights of its class (no baseline)."""
    return torch.stack([exp.codes[i] * exp.weight[int(c)] for i, c in enumerate(classes)])


# ------------------------------------------------------------ 1. a numpy array of classes as target
def test_a_numpy_array_of_classes_is_a_target_as_a_tensor_is():
    net, x, y = small_report_cnn()
    exp = net.explain(x)
    yn = y.numpy()
    want = _by_hand(exp, yn)
    torch.testing.assert_close(exp.for_class(yn), want)  # was "only length-1 arrays can be converted"
    torch.testing.assert_close(exp.for_class(yn.astype(np.float64)), want)  # whole floats, as labels from a CSV
    assert exp.k90(target=yn, per_sample=True).tolist() == exp.k90(target=y.tolist(), per_sample=True).tolist()
    vals, _ = exp.topk(2, target=yn)
    torch.testing.assert_close(vals, want.topk(2, dim=-1).values)
    rows = torch.arange(len(y))
    torch.testing.assert_close(exp.residual(yn), exp.logits[rows, y] - (want.sum(-1) + exp.bias[y]))
    assert exp.residual(yn).abs().max() < 1e-4
    assert torch.equal(net.explain(x, target=yn).target, y)
    assert torch.equal(exp.targets(np.array(1)), torch.ones(len(y), dtype=torch.long))  # 0-d: one class
    assert torch.equal(exp.targets(np.int64(1)), torch.ones(len(y), dtype=torch.long))


def test_a_one_element_float_array_is_no_class():
    net, x, _ = small_report_cnn()
    one = net.explain(x[:1])
    # np.array([1.7]) was cut to class 1 (as int() does), where 1.7 itself is refused
    with pytest.raises(ValueError, match=r"target: expected integer class labels.*1\.7"):
        one.for_class(np.array([1.7]))
    with pytest.raises(ValueError, match=r"target: expected integer class labels.*1\.7"):
        one.for_class(np.array(1.7))
    torch.testing.assert_close(one.for_class(np.array([1.0])), _by_hand(one, [1]))
    # one class in a one-element array for a batch of 10 is refused as a one-element tensor is
    exp = net.explain(x)
    for t in (np.array([1]), torch.tensor([1])):
        with pytest.raises(ValueError, match=r"target: expected an int or a tensor of shape \[10\], got shape \(1,\)"):
            exp.for_class(t)


# ------------------------------------------------------------ 2. spatial maps of a class no unit adds to
def _signal_cnn():
    torch.manual_seed(3)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3, padding=1), nn.ReLU()), 2, input_shape=(1, 12))
    x = torch.randn(5, 1, 12)
    return with_running_stats(net, x), x


@pytest.mark.parametrize("kind", ["image", "signal"])
def test_spatial_maps_of_a_class_no_unit_adds_to_draw_the_input_alone(kind):
    net, x = (small_report_cnn()[:2] if kind == "image" else _signal_cnn())
    with torch.no_grad():
        net.classifier.weight[0] = 0  # class 0 reads no unit, as a sparse head can leave it
    exp = net.explain(x, maps=True)
    assert bool((exp.for_class(0) == 0).all())
    fig = plots.spatial_maps(exp, x, 0, target=0, k=3)  # was a bare "max() arg is an empty sequence"
    assert fig._suptitle.get_text() == ("Sample 0: no unit with a map over the input adds to the logit of class 0 "
                                        "(each one's contribution is 0)")
    assert len(fig.axes) == 1 and fig.axes[0].get_title().startswith("input")  # no panel, no colour bar
    fig = plots.spatial_maps(exp, x, 0, target=1, k=3)  # a class units do add to: maps as before
    nonzero = int((exp.for_class(1)[0] != 0).sum())
    assert fig._suptitle.get_text().startswith(f"Sample 0: where its top {min(3, nonzero)} units add")


# ------------------------------------------------------------ 3. a class with no sample in y has no mean
def test_a_class_with_no_sample_in_y_has_no_mean():
    net, x, _ = small_report_rnn()
    exp = net.explain(x)
    y0 = torch.zeros(7, dtype=torch.long)  # class 0 only
    steps = exp.contributions.sum(dim=(2, 3, 5))  # [B, C, T], by hand from the dense tensor
    tw = importance.time_weights(exp, y=y0)
    torch.testing.assert_close(tw[0], steps[:, 0].mean(0))
    assert bool(tw[1].isnan().all())  # was a row of zeros: a measured 0 for a class never seen
    assert bool(importance.layer_time_weights(exp, y=y0)[1].isnan().all())
    rec = export.time_records(exp, y=y0)[0]
    assert rec["class_0"] == pytest.approx(float(steps[:, 0, 0].mean())) and np.isnan(rec["class_1"])
    fig = plots.time_importance(exp, y=y0, class_names=["a", "b"])
    a, b = [ax for ax in fig.axes if ax.get_ylabel() in ("a", "b")]
    np.testing.assert_allclose([p.get_height() for p in a.patches], steps[:, 0].mean(0).numpy(), rtol=1e-5)
    assert [t.get_text() for t in b.texts] == ["no sample of this class in y: no mean"] and not a.texts
    fig = plots.layer_time(exp, y=y0, class_names=["a", "b"])
    assert [t.get_text() for ax in fig.axes for t in ax.texts] == ["no sample of this class in y: no mean"]

    cnet, cx, _ = small_report_cnn()
    cexp = cnet.explain(cx)
    shares, names = importance.layer_shares(cexp, y=torch.zeros(10, dtype=torch.long))
    mags = torch.stack([(cexp.codes[:, s] * cexp.weight[0, s]).abs().sum(-1) for s in cexp.site_slices.values()], -1)
    torch.testing.assert_close(shares[0], (mags.mean(0) / mags.mean(0).sum()).float())
    assert bool(shares[1].isnan().all())  # was [0, 0], a row "summing to 1" that summed to 0


# ------------------------------------------------------------ 4. y, sample and reduce are never dropped unsaid
def test_arguments_a_source_cannot_use_are_refused():
    net, x, y = small_report_rnn()
    exp = net.explain(x)
    with pytest.raises(ValueError, match=r"y: expected None with sample=2 .*got both"):
        importance.time_weights(exp, y=y, sample=2)  # was sample 2's row, y dropped
    with pytest.raises(ValueError, match=r"y: expected None with sample=2"):
        importance.layer_time_weights(exp, y=y, sample=2)
    with pytest.raises(ValueError, match=r"reduce: expected 'norm' \(the default\) for an explanation.*got 'abs'"):
        importance.time_weights(exp, reduce="abs")  # was the signed means, as without reduce
    with pytest.raises(ValueError, match=r"reduce: expected 'norm'"):
        importance.layer_time_weights(exp, reduce="abs")
    with pytest.raises(ValueError, match=r"y: expected None for a NeuroViewRNN .*got labels"):
        importance.time_weights(net, y=y)  # was the global weights, y dropped
    with pytest.raises(ValueError, match=r"sample: expected None for a NeuroViewRNN .*got 2"):
        importance.layer_time_weights(net, sample=2)
    with pytest.raises(ValueError, match=r"reduce: expected 'norm' \(the default\) for a tensor of shape \(2, 8\)"):
        importance.time_weights(torch.randn(2, 8), reduce="abs")
    with pytest.raises(ValueError, match=r"y: expected None for a tensor of shape \(2, 3, 8\)"):
        importance.layer_time_weights(torch.randn(2, 3, 8), y=y)
    with pytest.raises(ValueError, match=r"y: expected None with sample=2"):
        plots.time_importance(exp, y=y, sample=2)  # its title said "contributions of sample 2"
    with pytest.raises(ValueError, match=r"y: expected None for a NeuroViewRNN"):
        plots.layer_time(net, y=y)
    cnet, cx, cy = small_report_cnn()
    with pytest.raises(ValueError, match=r"y: expected None for a NeuroViewCNN .*got labels"):
        importance.layer_shares(cnet, y=cy)  # was the network's shares, y dropped
    with pytest.raises(ValueError, match=r"y: expected None for a NeuroViewCNN"):
        plots.class_layer_summary(cnet, y=cy)
    with pytest.raises(ValueError, match=r"y: expected None for a tensor of shape \(2, 2\)"):
        importance.layer_shares(torch.ones(2, 2), y=torch.tensor([0, 1]))
    # what each source can use still works
    torch.testing.assert_close(importance.time_weights(exp, sample=2), exp.contributions.sum(dim=(2, 3, 5))[2])
    assert importance.time_weights(net, reduce="abs").shape == (2, 8)
    assert importance.layer_shares(cnet)[0].shape == (2, 2) and importance.layer_shares(cnet.explain(cx), y=cy)[0].shape == (2, 2)


# ------------------------------------------------------------ 5. the class the explanation was asked for
def test_waterfall_and_spatial_maps_draw_the_class_explained():
    net, x, _ = small_report_cnn()
    other = 1 - net(x).argmax(1)
    exp = net.explain(x, target=other, maps=True)
    c = int(other[0])
    assert c != int(exp.predicted[0])
    ax = plots.waterfall(exp, 0).axes[0]
    assert ax.get_title().startswith(f"sample 0: logit of class {c} = bias")  # was the predicted class
    bars = list(ax.patches)
    assert bars[0].get_width() == pytest.approx(float(exp.bias[c]))
    assert bars[-1].get_width() == pytest.approx(float(exp.logits[0, c]))
    fig = plots.spatial_maps(exp, x, 0)
    assert fig._suptitle.get_text().endswith(f"add to the logit of class {c}")
    want = _by_hand(exp, [c] * len(x))[0]
    shown = [float(t.get_title().split(": ")[1]) for t in fig.axes[1:] if ": " in t.get_title()]
    np.testing.assert_allclose(shown, want.topk(len(shown)).values.numpy(), rtol=1e-2)
    # an explicit target still wins, and without one asked, the prediction
    assert f"logit of class {1 - c} " in plots.waterfall(exp, 0, target=1 - c).axes[0].get_title()
    assert f"logit of class {1 - c} " in plots.waterfall(net.explain(x), 0).axes[0].get_title()
