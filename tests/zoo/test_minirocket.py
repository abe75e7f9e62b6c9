"""NeuroView-MiniRocket: MiniRocket's features as unit codes, its ridge as the global classifier.

Checked against numpy loops written here from the paper's definitions (PPV of a dilated
convolution with weights -1 and 2, minus a bias; biases as golden-ratio quantiles), against aeon's
own MiniRocket and scikit-learn's RidgeClassifierCV where they are installed, and a leave-one-out
by refitting without each sample.
"""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import pytest
import torch

import neuroview as nv
from neuroview.training.ridge import fit_minirocket, fit_ridge_head, ridge_loo
from neuroview.zoo.architectures.rocket import MiniRocket


def _conv(x: np.ndarray, taps: tuple[int, int, int], d: int) -> np.ndarray:
    """``sum_g w_g x[t + (g - 4) d]`` with ``w`` -1, and 2 at ``taps``, zeros outside: ``x [T]``."""
    t = len(x)
    out = np.zeros(t)
    for g in range(9):
        w = 2.0 if g in taps else -1.0
        for i in range(t):
            j = i + (g - 4) * d
            if 0 <= j < t:
                out[i] += w * x[j]
    return out


def _ppv_reference(net: MiniRocket, x: np.ndarray) -> np.ndarray:
    """``[N, F]`` the PPV features in MiniRocket's order (dilation, kernel, bias), by loops."""
    taps = list(itertools.combinations(range(9), 3))
    w = net.weight.numpy()  # [D, 84, C, 9]: only which channels each (dilation, kernel) sums is read
    feats = np.zeros((len(x), net.num_features))
    for s in range(len(x)):
        f = 0
        for j, (d, n) in enumerate(zip(net.dilations, net.per_dilation)):
            for k in range(84):
                chans = np.nonzero(w[j, k, :, 0])[0]
                c = sum(_conv(x[s, ch], taps[k], d) for ch in chans)
                part = c if (j + k) % 2 == 0 else c[4 * d: len(c) - 4 * d]
                for _ in range(n):
                    feats[s, f] = np.mean(part > net.biases[f].item())
                    f += 1
    return feats


@pytest.fixture(scope="module")
def fitted():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(24, 2, 40, generator=g)
    y = (x[:, 0, 10:20].mean(1) > x[:, 1, 25:35].mean(1)).long()
    return nv.minirocket([(x[:12], y[:12]), (x[12:], y[12:])], num_features=168, seed=3), x, y


def test_the_codes_are_minirockets_features_computed_by_loops(fitted):
    net, _, _ = fitted
    # whole numbers: every convolution is exact in float32 and float64 alike, so no comparison with a bias can differ
    x = torch.randint(-4, 5, (3, 2, 40), generator=torch.Generator().manual_seed(5)).float()
    codes = net.codes(x[:3])[:, torch.argsort(net.backbone.feature_order())]
    assert torch.equal(codes, torch.as_tensor(_ppv_reference(net.backbone, x.double().numpy())).float())


def test_a_bias_is_a_golden_ratio_quantile_of_a_training_series_convolution():
    x = torch.randn(1, 1, 30, generator=torch.Generator().manual_seed(1))  # one series: every bias comes from it
    net = MiniRocket(input_length=30, num_features=84 * 4).fit(x)
    taps = list(itertools.combinations(range(9), 3))
    phi = (math.sqrt(5) + 1) / 2
    f = 0
    for d, n in zip(net.dilations, net.per_dilation):
        for k in range(84):
            c = _conv(x[0, 0].double().numpy(), taps[k], d)
            for _ in range(n):
                f += 1
                assert net.biases[f - 1].item() == pytest.approx(np.quantile(c, (f * phi) % 1), rel=1e-5, abs=1e-5)


def test_every_logit_splits_exactly_into_its_features(fitted):
    net, x, _ = fitted
    for baseline in (None, "mean"):
        exp = net.explain(x, baseline=baseline)
        total = exp.for_class().sum(-1) + exp.bias[exp.target]
        torch.testing.assert_close(total, exp.logits.gather(1, exp.target[:, None])[:, 0], atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(exp.logits, net(x))


@pytest.mark.parametrize("n, f", [(14, 6), (9, 20)])  # more samples than features (the F x F route), and fewer
def test_the_penalty_is_the_one_of_least_leave_one_out_error_refitting_without_each_sample(n, f):
    g = torch.Generator().manual_seed(2)
    z = torch.randn(n, f, generator=g, dtype=torch.float64)
    y = torch.arange(n) % 3
    z = z - z.mean(0)
    alphas = (0.01, 1.0, 30.0)
    w, b, best, mse = ridge_loo(z, y, 3, alphas)
    t = 2.0 * torch.nn.functional.one_hot(y, 3).double() - 1
    for i, a in enumerate(alphas):
        errs = []
        for s in range(n):
            keep = torch.arange(n) != s
            zk, tk = z[keep], t[keep]
            zm, tm = zk.mean(0), tk.mean(0)  # the intercept, unpenalized: centre the other n - 1
            coef = torch.linalg.solve((zk - zm).T @ (zk - zm) + a * torch.eye(f, dtype=torch.float64), (zk - zm).T @ (tk - tm))
            errs.append(t[s] - (tm + (z[s] - zm) @ coef))
        assert mse[i].item() == pytest.approx(torch.stack(errs).square().mean().item(), rel=1e-9)
    a = alphas[best]
    assert best == int(torch.argmin(mse))
    coef = torch.linalg.solve(z.T @ z + a * torch.eye(f, dtype=torch.float64), z.T @ (t - t.mean(0)))
    torch.testing.assert_close(w, coef.T)
    torch.testing.assert_close(b, t.mean(0))


def test_the_same_as_aeon_and_scikit_learn_with_the_same_seed(fitted):
    aeon = pytest.importorskip("aeon.classification.convolution_based")
    _, x, y = fitted
    xs, ys = x.numpy(), y.numpy()
    clf = aeon.MiniRocketClassifier(n_kernels=168, random_state=3).fit(xs, ys)
    net = nv.minirocket([(x, y)], num_features=168, seed=3)
    torch.testing.assert_close(net.backbone.biases, torch.as_tensor(clf._transformer.parameters[4]), atol=1e-4, rtol=1e-5)
    ours = net.codes(x)[:, torch.argsort(net.backbone.feature_order())].numpy()
    assert np.array_equal(ours, clf._transformer.transform(xs))
    ridge = clf.estimator_ if hasattr(clf.estimator_, "alpha_") else clf.pipeline_[-1]
    assert net.ridge.alpha == pytest.approx(float(ridge.alpha_))
    x2 = torch.randn(30, 2, 40, generator=torch.Generator().manual_seed(9))
    assert np.array_equal(net(x2).argmax(1).numpy(), clf.predict(x2.numpy()))


def test_aeons_fitted_parameters_give_aeons_features():
    aeon = pytest.importorskip("aeon.transformations.collection.convolution_based")
    x = torch.randn(10, 3, 50, generator=torch.Generator().manual_seed(4))
    t = aeon.MiniRocket(n_kernels=252, random_state=11).fit(x.numpy())
    net = nv.create_model("nv_minirocket", in_channels=3, max_len=50, num_features=252, num_classes=2)
    net.backbone.load_aeon(t.parameters)
    assert np.array_equal(net.codes(x)[:, torch.argsort(net.backbone.feature_order())].numpy(), t.transform(x.numpy()))


def test_a_checkpoint_loads_into_a_plain_nv_minirocket(fitted):
    net, x, _ = fitted
    again = nv.create_model("nv_minirocket", in_channels=2, max_len=40, num_features=168, num_classes=2)
    again.load_state_dict(net.state_dict())
    torch.testing.assert_close(again.eval()(x), net(x))


def test_fitting_never_changes_the_network_given(fitted):
    _, x, y = fitted
    net = nv.create_model("nv_minirocket", in_channels=2, max_len=40, num_features=168, num_classes=2, seed=3)
    before = copy.deepcopy(net.state_dict())
    fit_minirocket(net, [(x, y)])
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items()) and not bool(net.backbone.fitted)


def test_bad_input_gets_a_clear_error(fitted):
    net, x, y = fitted
    with pytest.raises(ValueError, match=r"x: MiniRocket expected series \[B, 2, 40\].*got shape \(3, 2, 41\)"):
        net(torch.randn(3, 2, 41))
    with pytest.raises(ValueError, match="x: MiniRocket expected finite series"):
        net.backbone(torch.full((2, 2, 40), float("nan")))
    with pytest.raises(ValueError, match="x: contains NaN"):
        net(torch.full((2, 2, 40), float("nan")))
    with pytest.raises(ValueError, match="input_length: MiniRocket needs series of at least 9 steps, got 8"):
        MiniRocket(input_length=8)
    with pytest.raises(RuntimeError, match=r"biases are not fitted; call \.fit"):
        MiniRocket(input_length=20)(torch.randn(2, 1, 20))
    with pytest.raises(ValueError, match="train: expected samples of at least 2 classes, got only class"):
        nv.minirocket([(x, torch.zeros_like(y))], num_classes=2, num_features=84)
    with pytest.raises(ValueError, match="train: MiniRocket reads series of one length.*resample=True"):
        nv.minirocket([(x, torch.full((24,), 36), y)], num_features=84)
    with pytest.raises(ValueError, match=r"train: expected batches \(x, y\) or \(x, lengths, y\) with labels, got bare inputs"):
        nv.minirocket([x], num_features=84)
    with pytest.raises(ValueError, match="alphas: expected one or more penalties > 0"):
        fit_ridge_head(net, [(x, y)], alphas=(1.0, -1.0))
    with pytest.raises(ValueError, match="net: expected a NeuroView-CNN around MiniRocket.*got NeuroViewCNN around Sequential"):
        fit_minirocket(nv.NeuroViewCNN(torch.nn.Sequential(torch.nn.Conv1d(2, 4, 3), torch.nn.ReLU()), 2), [(x, y)])
    aeon = pytest.importorskip("aeon.transformations.collection.convolution_based")
    other = aeon.MiniRocket(n_kernels=168, random_state=0).fit(torch.randn(5, 2, 60).numpy())
    with pytest.raises(ValueError, match="parameters: aeon's dilations .* differ from this network's"):
        copy.deepcopy(net.backbone).load_aeon(other.parameters)


def test_describe_names_what_a_unit_computes(fitted):
    net, _, _ = fitted
    x = torch.randint(-4, 5, (2, 2, 40), generator=torch.Generator().manual_seed(6)).float()
    codes = net.codes(x)
    for u in (0, 41, 42, 100, 167):
        d = net.backbone.describe(u)
        c = sum(_conv(x[0, ch].double().numpy(), d["taps"], d["dilation"]) for ch in d["channels"])
        part = c if d["whole"] else c[4 * d["dilation"]: 40 - 4 * d["dilation"]]
        assert codes[0, u].item() == pytest.approx(np.mean(part > d["bias"]), abs=1e-7)
    with pytest.raises(ValueError, match=r"unit: expected an index in \[0, 168\), got 168"):
        net.backbone.describe(168)


def test_a_waterfall_names_its_bars_by_kernel(fitted):
    pytest.importorskip("matplotlib")
    from neuroview.viz import plots

    net, x, _ = fitted
    exp = net.explain(x[:1])
    names = net.backbone.unit_names()
    d = net.backbone.describe(5)
    assert names[5].startswith(f"k{''.join(map(str, d['taps']))} d{d['dilation']} >")
    fig = plots.waterfall(exp, 0, k=3, unit_names=names)
    shown = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    top = torch.topk(exp.for_class()[0].abs(), 3).indices.tolist()
    assert all(names[u] in shown for u in top)
    with pytest.raises(ValueError, match=r"unit_names: expected one label per unit \(168\), got 2"):
        plots.waterfall(exp, 0, unit_names=["a", "b"])


def test_a_ridge_head_on_an_rnn_is_the_ridge_of_its_standardized_hidden_states():
    torch.manual_seed(0)
    rnn = nv.wrap(torch.nn.GRU(2, 4, batch_first=True), num_classes=3, max_len=6)
    x, y = torch.randn(30, 6, 2), torch.arange(30) % 3
    out = fit_ridge_head(rnn, [(x.transpose(1, 2), y)], alphas=(0.5, 5.0))  # batches channels-first, as data modules give them
    f = rnn.eval().features(x).flatten(1).double()
    z = (f - f.mean(0)) / f.std(0, unbiased=False)
    t = 2.0 * torch.nn.functional.one_hot(y, 3).double() - 1
    coef = torch.linalg.solve(z.T @ z + out.ridge.alpha * torch.eye(z.shape[1], dtype=torch.float64), z.T @ (t - t.mean(0)))
    torch.testing.assert_close(out(x).double(), z @ coef + t.mean(0), atol=1e-4, rtol=1e-4)
    exp = out.explain(x)
    torch.testing.assert_close(exp.contributions.flatten(2).sum(-1) + exp.bias, exp.logits, atol=1e-4, rtol=1e-5)
    assert not torch.equal(rnn.classifier.weight, out.classifier.weight)  # a copy; the network given keeps its head


def test_a_ridge_head_decides_the_same_with_or_without_the_head_normalization():
    torch.manual_seed(0)
    x = torch.randn(40, 1, 30)
    y = (x[:, 0, :10].mean(1) > 0).long()
    nets = [nv.NeuroViewCNN(torch.nn.Sequential(torch.nn.Conv1d(1, 8, 5), torch.nn.ReLU()), 2, normalize=n) for n in (True, False)]
    nets[1].backbone.load_state_dict(nets[0].backbone.state_dict())
    with_norm, without = (fit_ridge_head(n, [(x, y)]) for n in nets)
    assert without.norm is None and with_norm.norm is not None
    torch.testing.assert_close(with_norm(x), without(x), atol=1e-5, rtol=1e-5)


def test_bf16_autocast_keeps_minirockets_features_and_a_series_alone_its_batch_codes(fitted):
    net, x, _ = fitted
    with torch.autocast("cpu", dtype=torch.bfloat16):
        codes = net.codes(x)
    assert torch.equal(codes.float(), net.codes(x))  # the convolution stays in float32: no value crosses a bias
    assert torch.equal(net.codes(x[3:4]), net.codes(x)[3:4])


def test_features_are_taken_in_the_backbones_cpu_batches(fitted, monkeypatch):
    """On a CPU the training features come in batches small enough that MiniRocket's largest site
    holds at most 2^21 values a call, with the same codes as one pass over the whole batch."""
    from neuroview.training.sparsify import _features

    net, x, y = fitted
    widths = []
    handle = net.backbone.act.register_forward_hook(lambda m, inp, out: widths.append(inp[0][0].numel()))
    with torch.no_grad():
        whole = net.codes(x)
    handle.remove()
    assert net.backbone.cpu_batch == 2 ** 21 // max(widths)  # the values of one series at its widest site
    monkeypatch.setattr(MiniRocket, "cpu_batch", property(lambda self: 5))
    sizes = []
    codes = net.codes
    monkeypatch.setattr(net, "codes", lambda xb: sizes.append(len(xb)) or codes(xb))
    f, labels = _features(net, [(x, y)], "train")
    assert sizes == [5, 5, 5, 5, 4] and torch.equal(f, whole.float()) and torch.equal(labels, y)
