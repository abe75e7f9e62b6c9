"""One reading of the same idea across public functions (the s17 API-consistency probe):

- ``readability`` and ``unit_gallery`` refuse a NeuroView-MiniRocket's padded ``(x, lengths, y)`` batches as
  ``sparsify`` / ``mean_codes`` / ``fit_ridge_head`` do (its codes counted the padding as data);
- ``waterfall_units`` / ``decision_items`` read ``target`` and ``samples`` as ``plots.waterfall`` does (-1 was the
  last class of an RNN explanation, 1.7 class 1, a bad sample a bare IndexError / TypeError);
- ``standardized=True`` is refused by name for an explanation (it carries no code statistics) by ``unit_weights``,
  ``unit_records``, ``plots.top_units`` and ``plots.unit_heatmap``: it was dropped unsaid, the raw weight returned;
- every global view of a network (``unit_weights``, ``unit_records``, ``layer_shares``, ``plots.top_units``) reads
  ``net.unit_importance``: a unit constant over training reads 0 in all of them, ensembles too.

Hand-built networks and explanations whose answers are known.
"""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import neuroview as nv  # noqa: E402
from neuroview.attribution import export  # noqa: E402
from neuroview.attribution.gallery import decision_items, waterfall_units  # noqa: E402
from neuroview.attribution.importance import layer_shares, unit_weights  # noqa: E402
from neuroview.viz import plots  # noqa: E402


# ------------------------------------------------------------------ 1. MiniRocket and padding
@pytest.fixture(scope="module")
def rocket():
    torch.manual_seed(0)
    x = torch.randn(24, 1, 40)
    y = torch.arange(24) % 2
    x[y == 1, :, 10:20] += 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = nv.minirocket([(x, y)], num_features=84)
    lengths = torch.randint(15, 41, (24,))
    lengths[0] = 20  # at least one series padded
    xp = x.clone()
    for i, n in enumerate(lengths.tolist()):
        xp[i, :, n:] = 0.0  # zero padding after each series, as a variable-length data module gives it
    return net, x, xp, lengths, y


def test_readability_refuses_a_minirockets_padded_batches_as_sparsify_does(rocket):
    net, x, xp, lengths, y = rocket
    with pytest.raises(ValueError, match="train: MiniRocket reads series of one length"):
        nv.mean_codes(net, [(xp, lengths, y)])  # the refusal the others already give
    with pytest.raises(ValueError, match=r"batches: MiniRocket reads series of one length; got batches with lengths"):
        nv.readability(net, [(xp, lengths, y)])
    # every series whole: no padding read, the same numbers as without lengths
    whole = nv.readability(net, [(x, torch.full((24,), 40), y)])
    assert whole == nv.readability(net, [(x, y)])


def test_unit_gallery_refuses_a_minirockets_padded_batches_as_sparsify_does(rocket):
    net, x, xp, lengths, y = rocket
    with pytest.raises(ValueError, match=r"loader: MiniRocket reads series of one length; got batches with lengths"):
        nv.unit_gallery(net, [(xp, lengths, y)], units=[0, 1], k=3)
    g = nv.unit_gallery(net, [(x, torch.full((24,), 40), y)], units=[0, 1], k=3)
    assert torch.equal(g.index, nv.unit_gallery(net, [(x, y)], units=[0, 1], k=3).index)


# ------------------------------------------------------------------ 2. waterfall_units' target and samples
def _hand_rnn_explanation() -> nv.RNNExplanation:
    """B=2 samples, C=2 classes, 1 layer, 1 direction, T=3 steps, H=1: per-step contributions by hand."""
    ti = torch.tensor([[[1.0, -3.0, 0.5], [0.1, 0.2, -2.0]],  # sample 0: class 0 by step 1, class 1 by step 2
                       [[0.3, 0.0, 4.0], [-5.0, 0.1, 0.0]]])  # sample 1: class 0 by step 2, class 1 by step 0
    contrib = ti[:, :, None, None, :, None]  # [B, C, L, D, T, H]
    bias = torch.tensor([0.25, -0.5])
    return nv.RNNExplanation(contrib.flatten(2).sum(-1) + bias, bias, contrib, torch.zeros(2, 1, 1, 3, 1),
                             time_importance=ti, lengths=torch.tensor([3, 3]))


def _hand_cnn_explanation() -> nv.CNNExplanation:
    """B=2, C=3, 4 units of one site, codes 1: contributions = weight."""
    w = torch.tensor([[1.0, -2.0, 0.5, 0.0], [0.1, 0.3, -0.2, 3.0], [2.0, 0.0, 0.0, -1.0]])
    codes = torch.ones(2, 4)
    bias = torch.zeros(3)
    return nv.CNNExplanation(codes @ w.T, bias, None, codes, w, units=[("s", i) for i in range(4)],
                             site_slices={"s": slice(0, 4)})


def test_waterfall_units_reads_the_class_asked():
    exp = _hand_rnn_explanation()
    assert waterfall_units(exp, [0], k=1, target=1) == [2]  # |-2.0| of class 1
    assert waterfall_units(exp, [0, 1], k=1, target=0) == [1, 2]
    assert waterfall_units(exp, [0, 1], k=1, target=torch.tensor(1)) == [2, 0]
    assert waterfall_units(exp, [0], k=1, target=1.0) == [2]  # a whole float is its class, as plots.waterfall reads it


@pytest.mark.parametrize("make", [_hand_rnn_explanation, _hand_cnn_explanation], ids=["rnn", "cnn"])
@pytest.mark.parametrize("target", [-1, 1.7, 7, True])
def test_waterfall_units_refuses_what_plots_waterfall_refuses(make, target):
    exp = make()
    with pytest.raises((ValueError, TypeError), match="target"):
        plots.waterfall(exp, 0, target=target)
    with pytest.raises((ValueError, TypeError), match="target"):  # -1 was the last class, 1.7 class 1, on an RNN
        waterfall_units(exp, [0], k=2, target=target)
    with pytest.raises((ValueError, TypeError), match="target"):
        decision_items(exp, 0, target)


@pytest.mark.parametrize("make", [_hand_rnn_explanation, _hand_cnn_explanation], ids=["rnn", "cnn"])
def test_waterfall_units_checks_samples_by_name(make):
    exp = make()
    with pytest.raises(IndexError, match=r"samples: expected an int index into a batch of 2, got 9"):
        waterfall_units(exp, [9], k=2)
    with pytest.raises(IndexError, match=r"samples: expected an int index into a batch of 2, got 0.5"):
        waterfall_units(exp, [0.5], k=2)
    with pytest.raises(IndexError, match=r"sample: expected an int index into a batch of 2, got 2"):
        decision_items(exp, 2, 0)
    # one int is one sample, as plots.waterfall(sample=) takes it; -1 the last one
    assert waterfall_units(exp, 1, k=2) == waterfall_units(exp, [1], k=2) == waterfall_units(exp, [-1], k=2)


def test_waterfall_units_one_sample_known_units():
    exp = _hand_cnn_explanation()  # class 1's largest |weight|: unit 3 (3.0), then unit 1 (0.3)
    assert waterfall_units(exp, 0, k=2, target=1) == [3, 1]
    assert waterfall_units(exp, [0, 1], k=2, target=2) == [0, 3]


# ------------------------------------------------------------------ 3. standardized and an explanation
def _normed_cnn() -> nv.NeuroViewCNN:
    """A two-site network trained one step so it has running statistics, every unit varying; head set by hand."""
    torch.manual_seed(3)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 3, 3), nn.ReLU(), nn.Conv1d(3, 2, 3), nn.ReLU()), 2,
                          input_shape=(1, 12), quantizer="none")
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(16, 1, 12))
        net.classifier.weight.copy_(torch.tensor([[1.0, -2.0, 0.5, 0.25, 3.0], [0.1, 0.2, -0.3, 4.0, -1.0]]))
    return net.eval()


def test_standardized_is_refused_for_an_explanation_by_name():
    net = _normed_cnn()
    exp = net.explain(torch.randn(4, 1, 12))
    msg = r"standardized: expected None or False for a CNNExplanation"
    with pytest.raises(ValueError, match=msg):
        unit_weights(exp, standardized=True)
    with pytest.raises(ValueError, match=msg):
        export.unit_records(exp, standardized=True)
    with pytest.raises(ValueError, match=msg):
        plots.top_units(exp, standardized=True)
    with pytest.raises(ValueError, match=msg):
        plots.unit_heatmap(exp, standardized=True)
    # the explanation's own (effective) weight by default or with False: weight * code == contribution
    for kw in ({}, {"standardized": False}):
        assert torch.equal(unit_weights(exp, **kw)[0], exp.weight)
        assert export.unit_records(exp, **kw)[3]["class_1"] == pytest.approx(float(exp.weight[1, 3]))


def test_standardized_by_default_for_a_network_is_its_classifier_weight():
    net = _normed_cnn()
    want = net.classifier.weight.detach()  # normalize=True: the standardized weight is the classifier's own
    assert torch.allclose(unit_weights(net)[0], want)
    assert torch.allclose(unit_weights(net, standardized=True)[0], want)
    assert export.unit_records(net)[3]["class_1"] == pytest.approx(4.0)
    assert plots.top_units(net, k=1).axes[1].patches[0].get_width() == pytest.approx(4.0)
    raw = unit_weights(net, standardized=False)[0]
    assert torch.allclose(raw, net.effective_classifier()[0])
    with pytest.raises(TypeError, match="standardized: expected True, False or None, got 1"):
        unit_weights(net, standardized=1)  # a flag, not a guess


# ------------------------------------------------------------------ 6. every global view reads unit_importance
def _cnn_with_constant_units() -> nv.NeuroViewCNN:
    conv = nn.Conv2d(1, 4, 1)
    with torch.no_grad():  # channel 0 dead, 1 always on, 2 and 3 alive
        conv.weight.copy_(torch.tensor([0.0, 0.0, 1.0, -1.0]).view(4, 1, 1, 1))
        conv.bias.copy_(torch.tensor([-1.0, 1.0, 0.0, 0.0]))
    net = nv.NeuroViewCNN(nn.Sequential(conv, nn.ReLU()), 2, quantizer="none")
    g = torch.Generator().manual_seed(0)
    net.train()
    with torch.no_grad():
        for _ in range(20):
            net(torch.randn(16, 1, 1, 1, generator=g))
        net.classifier.weight.copy_(torch.tensor([[5.0, -7.0, 0.3, 0.2], [4.0, 6.0, -0.2, 0.1]]))
    return net.eval()


def test_every_global_view_reads_zero_for_units_constant_over_training():
    net = _cnn_with_constant_units()
    # standardized (normalize=True): the classifier's own weight, 0 where the unit was dead / always on
    want = torch.tensor([[0.0, 0.0, 0.3, 0.2], [0.0, 0.0, -0.2, 0.1]])
    assert torch.allclose(net.unit_importance(standardized=True), want)
    assert torch.allclose(unit_weights(net)[0], want)
    rows = export.unit_records(net)
    assert [(r["class_0"], r["class_1"]) for r in rows[:2]] == [(0.0, 0.0), (0.0, 0.0)]
    shares, _ = layer_shares(net)
    assert torch.allclose(shares, torch.ones(2, 1))
    fig = plots.top_units(net, k=4)
    for ax, cls in zip(fig.axes[:2], (0, 1)):
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert sorted(labels) == ["1 #2", "1 #3"]  # units 0 and 1 never listed, whatever their weights (5, -7, 4, 6)
    ens = nv.Ensemble([net, _cnn_with_constant_units()])
    assert torch.allclose(unit_weights(ens)[0], torch.cat([want, want], 1) / 2)


# ------------------------------------------------------------------ 4, 5. units said where users read them
def test_accuracy_units_and_lengths_are_documented():
    import inspect  # noqa: PLC0415

    from neuroview.attribution.importance import class_means  # noqa: PLC0415
    from neuroview.training.retrofit import RetrofitResult  # noqa: PLC0415

    assert "percentage" in nv.readability.__doc__  # 72.5, where retrofit's neuroview_acc is 0.725
    src = inspect.getsource(RetrofitResult)
    assert "fractions in [0, 1]" in src and src.count("a fraction") >= 3  # the class and its three accuracies
    assert "exp.lengths" in class_means.__doc__ and "steps" in class_means.__doc__  # windowed: steps, not samples


def test_accuracy_of_readability_is_a_percentage_of_the_same_predictions():
    net = _normed_cnn()
    x = torch.randn(8, 1, 12)
    y = net(x).argmax(1)
    y[:2] = 1 - y[:2]  # 6 of 8 right, by construction
    assert nv.readability(net, [(x, y)])["accuracy"] == pytest.approx(75.0)
