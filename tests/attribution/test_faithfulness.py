"""neuroview.attribution.faithfulness: ablation zeroes exactly the chosen units (hand computations on tiny
models), curves have the right length and endpoints, step deletion and the orders behave."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import neuroview as nv
from neuroview.core.hooks import Hook as SiteHook
from neuroview.attribution import faithfulness as fa
from neuroview.attribution.faithfulness import (
    ablate_units, delete_steps, order_from_scores, step_deletion_curve, step_scores, time_step_deletion,
    unit_ablation, unit_deletion_curve, unit_scores,
)

torch.manual_seed(0)


def _set(linear: nn.Linear, w, b) -> None:
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(w, dtype=torch.float32))
        linear.bias.copy_(torch.tensor(b, dtype=torch.float32))


def _mlp(quantizer: str, **kw) -> tuple[nv.NeuroViewCNN, nn.Sequential]:
    """Linear(2, 3) -> ReLU -> Linear(3, 2) -> ReLU with hand-set weights; classifier [2, 5]."""
    mlp = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2), nn.ReLU())
    _set(mlp[0], [[1.0, 0.0], [0.5, 1.0], [-1.0, 1.0]], [0.1, 0.2, 0.0])
    _set(mlp[2], [[1.0, 1.0, 0.0], [0.0, 2.0, -1.0]], [0.0, -0.5])
    net = nv.NeuroViewCNN(mlp, 2, quantizer=quantizer, normalize=False, example_input=torch.zeros(2, 2), **kw).eval()
    _set(net.classifier, [[1.0, -1.0, 2.0, 0.5, 1.5], [-0.5, 3.0, 1.0, -2.0, 0.25]], [0.3, -0.2])
    return net, mlp


X = torch.tensor([[1.0, 2.0], [2.0, -1.0], [-0.5, 0.5]])
W = torch.tensor([[1.0, -1.0, 2.0, 0.5, 1.5], [-0.5, 3.0, 1.0, -2.0, 0.25]])
B = torch.tensor([0.3, -0.2])


def _by_hand(x, removed1=(), removed2=()):
    """Pre-activations and outputs of the MLP with units removed (their outputs set to 0)."""
    z1 = x @ torch.tensor([[1.0, 0.0], [0.5, 1.0], [-1.0, 1.0]]).T + torch.tensor([0.1, 0.2, 0.0])
    h1 = z1.clamp(min=0)
    h1[:, list(removed1)] = 0
    z2 = h1 @ torch.tensor([[1.0, 1.0, 0.0], [0.0, 2.0, -1.0]]).T + torch.tensor([0.0, -0.5])
    h2 = z2.clamp(min=0)
    h2[:, list(removed2)] = 0
    return z1, h1, z2, h2


def _no_hooks(net: nv.NeuroViewCNN) -> bool:
    return net._codes_hook is None and all(
        all(isinstance(h, SiteHook) for h in (*m._forward_hooks.values(), *m._forward_pre_hooks.values()))
        for m in net.backbone.modules())  # only the network's own site hooks stay


# --------------------------------------------------------------------------- ablation
def test_ablation_none_quantizer_matches_hand_computation():
    net, _ = _mlp("none")
    before = net(X)
    with ablate_units(net, [("1", 1)]):
        logits = net(X)
        codes = net.codes(X)
    _, h1, _, h2 = _by_hand(X, removed1=[1])
    want = torch.cat([h1, h2], 1)
    assert torch.allclose(codes, want)
    assert torch.allclose(logits, want @ W.T + B)
    assert not torch.allclose(logits, before)  # the downstream units felt it
    assert torch.allclose(net(X), before) and _no_hooks(net)


def test_ablation_hard_code_of_removed_unit_is_zero_and_downstream_codes_change():
    net, _ = _mlp("hard")
    with ablate_units(net, [1]):  # ("1", 1) by its code-vector index
        codes = net.codes(X)
        logits = net(X)
    z1, _, z2, _ = _by_hand(X, removed1=[1])
    c1 = (z1 > 0).float()
    assert bool((z1[:, 1] > 0).any())  # the unit would be on: ablation, not its own state, zeroes its code
    c1[:, 1] = 0
    want = torch.cat([c1, (z2 > 0).float()], 1)
    assert torch.equal(codes, want)
    assert torch.allclose(logits, want @ W.T + B)


def test_ablation_of_last_site_with_stop_early():
    net, _ = _mlp("soft")
    with ablate_units(net, [("3", 0)]):
        codes = net.codes(X)
    z1, _, z2, _ = _by_hand(X)
    want = torch.cat([torch.sigmoid(z1), torch.sigmoid(z2)], 1)
    want[:, 3] = 0
    assert torch.allclose(codes, want)


def test_soft_code_read_from_a_module_output_is_zero_not_one_half():
    # Sites named explicitly: the Linear outputs. A zeroed output would give sigmoid(0) = 1/2;
    # an ablated unit must add nothing.
    net, _ = _mlp("soft", layers=["0", "2"])
    assert [s.from_input for s in net.sites] == [False, False]
    with ablate_units(net, [("0", 2)]):
        codes = net.codes(X)
    z1, _, _, _ = _by_hand(X)
    z1[:, 2] = 0
    z2 = z1.clamp(min=0) @ torch.tensor([[1.0, 1.0, 0.0], [0.0, 2.0, -1.0]]).T + torch.tensor([0.0, -0.5])
    want = torch.cat([torch.sigmoid(z1), torch.sigmoid(z2)], 1)
    want[:, 2] = 0
    assert torch.allclose(codes, want)


class _Twice(nn.Module):
    """One ReLU module called twice: two sites, 'relu' and 'relu:1'."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.relu = nn.Linear(2, 2), nn.Linear(2, 2), nn.ReLU(inplace=True)
        _set(self.fc1, [[1.0, 1.0], [1.0, -1.0]], [0.5, 0.5])
        _set(self.fc2, [[2.0, 1.0], [-1.0, 1.0]], [0.0, 1.0])

    def forward(self, x):
        return self.relu(self.fc2(self.relu(self.fc1(x))))


@pytest.mark.parametrize("site, channel", [("relu", 0), ("relu:1", 0), ("relu:1", 1)])
def test_ablation_touches_only_the_named_call_of_a_reused_module(site, channel):
    net = nv.NeuroViewCNN(_Twice(), 2, quantizer="none", normalize=False, example_input=torch.zeros(2, 2)).eval()
    assert [s.name for s in net.sites] == ["relu", "relu:1"]
    with ablate_units(net, [(site, channel)]):
        codes = net.codes(X)
    h1 = (X @ torch.tensor([[1.0, 1.0], [1.0, -1.0]]).T + 0.5).clamp(min=0)
    if site == "relu":
        h1[:, channel] = 0
    h2 = (h1 @ torch.tensor([[2.0, 1.0], [-1.0, 1.0]]).T + torch.tensor([0.0, 1.0])).clamp(min=0)
    if site == "relu:1":
        h2[:, channel] = 0
    assert torch.allclose(codes, torch.cat([h1, h2], 1))


@pytest.mark.parametrize("quantizer", ["hard", "soft", "none"])
def test_ablation_of_conv_channels_with_inplace_relu(quantizer):
    conv = nn.Sequential(nn.Conv1d(1, 3, 3, padding=1), nn.ReLU(inplace=True), nn.Conv1d(3, 2, 3, padding=1), nn.ReLU(inplace=True))
    net = nv.NeuroViewCNN(conv, 2, quantizer=quantizer, input_shape=(1, 7)).eval()
    x = torch.randn(4, 1, 7)
    with ablate_units(net, [("1", 0), ("1", 2)]), torch.no_grad():
        codes = net.codes(x)
    with torch.no_grad():
        z1 = conv[0](x)
        h1 = z1.clamp(min=0)
        h1[:, [0, 2]] = 0
        z2 = conv[2](h1)
    def code(z):
        return {"hard": (z > 0).float(), "soft": torch.sigmoid(z), "none": z.clamp(min=0)}[quantizer].mean(-1)
    want = torch.cat([code(z1), code(z2)], 1)
    want[:, [0, 2]] = 0
    assert torch.allclose(codes, want, atol=1e-6)


def test_per_sample_mask_equals_one_sample_at_a_time():
    net, _ = _mlp("soft")
    mask = torch.tensor([[True, False, False, False, True], [False, False, True, True, False], [False] * 5])
    with ablate_units(net, mask):
        together = net(X)
    for i in range(3):
        with ablate_units(net, mask[i]):
            assert torch.allclose(together[i], net(X[i:i + 1])[0])
    with pytest.raises(ValueError, match="per-sample mask has 3 rows"), ablate_units(net, mask):
        net(X[:2])


def test_everything_removed_leaves_the_bias_and_explain_stays_exact():
    net, _ = _mlp("soft")
    with ablate_units(net, torch.ones(5, dtype=torch.bool)):
        assert torch.allclose(net(X), B.expand(3, 2))
    with ablate_units(net, [0, 3]):
        exp = net.explain(X)
    assert exp.contributions[..., [0, 3]].abs().max() == 0
    assert exp.residual().abs().max() < 1e-6


def test_hooks_are_released_after_an_error():
    net, _ = _mlp("hard")
    with pytest.raises(RuntimeError, match="boom"), ablate_units(net, [0]):
        raise RuntimeError("boom")
    assert _no_hooks(net)


@pytest.mark.parametrize("units, match", [
    ([("1", 7)], r"no unit \('1', 7\)"),
    ([9], r"units: expected indices into the code vector \(net.units\) in \[0, 5\), got 9"),
    (torch.ones(4, dtype=torch.bool), r"bool mask \[5\]"),
])
def test_bad_units_are_refused(units, match):
    net, _ = _mlp("hard")
    with pytest.raises(ValueError, match=match), ablate_units(net, units):
        pass


def test_ablate_needs_a_neuroview_cnn():
    with pytest.raises(TypeError, match="net: expected a NeuroViewCNN"), ablate_units(nn.ReLU(), [0]):
        pass


# ------------------------------------------------------------------------------ curves
def test_unit_curve_length_and_endpoints():
    net, _ = _mlp("soft")
    y = torch.tensor([0, 1, 1])
    c = unit_deletion_curve(net, X, y, torch.tensor([4, 2, 0, 1, 3]), steps=20)
    assert c.count.tolist() == [0, 1, 2, 3, 4, 5] and c.fraction[-1] == 1
    full = net(X)
    assert c.accuracy[0] == (full.argmax(1) == y).float().mean()
    assert torch.isclose(c.true_logit[0], full.gather(1, y[:, None]).mean())
    assert c.accuracy[-1] == (B.argmax() == y).float().mean()  # only the bias is left
    assert torch.isclose(c.true_logit[-1], B[y].mean())
    # one removal by hand: unit 4 (site '3', channel 1) first
    with ablate_units(net, [4]):
        assert torch.isclose(c.true_logit[1], net(X).gather(1, y[:, None]).mean())
    assert len(unit_deletion_curve(net, X, y, torch.arange(5), steps=2).count) == 3


def test_curve_auc_is_the_trapezoid_area():
    c = fa.DeletionCurve("m", torch.tensor([0, 1, 2]), torch.tensor([0.0, 0.5, 1.0]),
                         torch.tensor([1.0, 0.5, 0.0]), torch.tensor([2.0, 2.0, 2.0]))
    assert c.auc() == pytest.approx(0.5) and c.auc("true_logit") == pytest.approx(2.0)
    with pytest.raises(ValueError, match="metric: expected one of"):
        c.auc("loss")


def test_order_must_be_a_permutation():
    net, _ = _mlp("soft")
    y = torch.zeros(3, dtype=torch.long)
    with pytest.raises(ValueError, match="permutation of 0..4"):
        unit_deletion_curve(net, X, y, torch.tensor([0, 0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"order: expected an integer tensor \[5\] or \[3, 5\]"):
        unit_deletion_curve(net, X, y, torch.arange(4))
    with pytest.raises(ValueError, match=r"y: expected integer class labels of shape \[3\]"):
        unit_deletion_curve(net, X, torch.zeros(2, dtype=torch.long), torch.arange(5))
    # labels stored as floats: whole numbers read as their classes (as sparsify and the maps read them), a
    # fraction is refused by name (every float was refused here, where the other entry points accepted 1.0)
    whole = unit_deletion_curve(net, X, torch.tensor([1.0, 0.0, 1.0]), torch.arange(5))
    assert torch.equal(whole.true_logit, unit_deletion_curve(net, X, torch.tensor([1, 0, 1]), torch.arange(5)).true_logit)
    with pytest.raises(ValueError, match=r"y: expected integer class labels, got dtype torch.float32 with values that are not whole"):
        unit_deletion_curve(net, X, torch.tensor([1.0, 0.5, 1.0]), torch.arange(5))


def test_order_from_scores_descending_ties_random_but_reproducible():
    s = torch.tensor([[0.0, 3.0, 0.0, 0.0, 1.0, 0.0]])
    o = order_from_scores(s, seed=1)
    assert o[0, :2].tolist() == [1, 4] and sorted(o[0, 2:].tolist()) == [0, 2, 3, 5]
    assert torch.equal(o, order_from_scores(s, seed=1))
    orders = {tuple(order_from_scores(s, seed=k)[0, 2:].tolist()) for k in range(20)}
    assert len(orders) > 1


def test_neuroview_unit_scores_are_the_contributions():
    net, _ = _mlp("soft")
    y = torch.tensor([0, 1, 0])
    exp = net.explain(X)
    assert torch.allclose(unit_scores(net, X, y, "neuroview"), exp.contributions[torch.arange(3), y])
    assert torch.allclose(unit_scores(net, X, y, "neuroview_global"), net.unit_importance(standardized=True)[y])


def test_unit_ablation_on_a_trained_toy_beats_random(one_thread):
    # Class = sign of feature 0; the NeuroView order should find the units that carry it.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 4, generator=g)
    y = (x[:, 0] > 0).long()
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU()), 2, quantizer="soft",
                          example_input=x)
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    for _ in range(100):
        opt.zero_grad()
        F.cross_entropy(net.train()(x), y).backward()
        opt.step()
    res = unit_ablation(net.eval(), x, y, methods=["neuroview", "random"], seeds=[0, 1, 2], steps=32)
    aucs = res.aucs()
    assert res.curves["neuroview"].accuracy[0] > 0.9
    assert aucs["neuroview"] < aucs["random"]


def test_captum_methods_are_skipped_with_a_reason(monkeypatch):
    net, _ = _mlp("soft")
    monkeypatch.setattr(fa, "has_captum", lambda: False)
    res = unit_ablation(net, X, torch.tensor([0, 1, 1]), seeds=[0], steps=2)
    assert set(res.skipped) == {"layer_grad_x_act", "layer_conductance"}
    assert "captum is not installed" in res.skipped["layer_conductance"]
    assert set(res.curves) == {"neuroview", "neuroview_global", "random:0"}
    with pytest.raises(ImportError, match="needs captum"):
        unit_scores(net, X, torch.tensor([0, 1, 1]), "layer_conductance")


# -------------------------------------------------------------------------- captum units
def test_captum_grad_x_act_equals_neuroview_on_a_one_site_linear_head():
    pytest.importorskip("captum")
    # logits = W relu(A x + a) + b with codes = relu outputs: gradient x activation of unit u
    # for class y is exactly W[y, u] * h_u, the NeuroView contribution.
    net = nv.NeuroViewCNN(nn.Sequential(nn.Linear(3, 5), nn.ReLU()), 3, quantizer="none", normalize=False,
                          example_input=torch.zeros(2, 3)).eval()
    x, y = torch.randn(7, 3), torch.randint(0, 3, (7,))
    assert torch.allclose(unit_scores(net, x, y, "layer_grad_x_act"), unit_scores(net, x, y, "neuroview"), atol=1e-6)
    lc = unit_scores(net, x, y, "layer_conductance", n_steps=20)
    assert lc.shape == (7, 5)


def test_captum_refuses_reused_modules_and_skips_them_by_default():
    pytest.importorskip("captum")
    net = nv.NeuroViewCNN(_Twice(), 2, normalize=False, example_input=torch.zeros(2, 2)).eval()
    with pytest.raises(ValueError, match=r"called more than once"):
        unit_scores(net, X, torch.tensor([0, 1, 1]), "layer_grad_x_act")
    res = unit_ablation(net, X, torch.tensor([0, 1, 1]), seeds=[0], steps=2)
    assert "called more than once" in res.skipped["layer_conductance"]


def test_captum_unit_scores_on_a_conv_net_for_each_quantizer():
    pytest.importorskip("captum")
    for q in ("hard", "soft", "none"):
        x, y = torch.randn(5, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1])
        net = nv.create_model("nv_small_cnn", num_classes=3, widths=(4, 6), quantizer=q).eval()
        net.discover(x)
        for m in ("layer_grad_x_act", "layer_conductance"):
            s = unit_scores(net, x, y, m, n_steps=5)
            assert s.shape == (5, 10) and torch.isfinite(s).all() and s[:, 4:].abs().sum() > 0  # last site too


# ---------------------------------------------------------------------------- time steps
def _gru(max_len=12, **kw):
    torch.manual_seed(1)
    return nv.NeuroViewRNN(nn.GRU(2, 5, batch_first=True), 3, max_len=max_len, **kw).eval()


def test_delete_steps_zero_and_mean_baselines():
    x = torch.arange(12.0).reshape(2, 3, 2)
    out = delete_steps(x, torch.tensor([[2, 0, 1], [0, 1, 2]]), 1)
    assert out[0, 2].tolist() == [0, 0] and out[1, 0].tolist() == [0, 0]
    assert torch.equal(out[0, :2], x[0, :2]) and torch.equal(out[1, 1:], x[1, 1:])
    mean = delete_steps(x, torch.tensor([1, 0, 2]), 1, "mean", lengths=torch.tensor([2, 3]))
    assert mean[0, 1].tolist() == [1.0, 2.0]  # mean of the 2 valid steps of series 0
    assert mean[1, 1].tolist() == [8.0, 9.0]
    with pytest.raises(ValueError, match="baseline: expected 'zero', 'mean'"):
        delete_steps(x, torch.arange(3), 1, "median")


def test_step_curve_length_and_endpoints():
    net = _gru()
    x, y = torch.randn(9, 12, 2), torch.randint(0, 3, (9,))
    c = step_deletion_curve(net, x, y, torch.randperm(12), steps=4)
    assert c.count.tolist() == [0, 3, 6, 9, 12]
    with torch.no_grad():
        full, zero = net(x), net(torch.zeros_like(x))
    assert c.accuracy[0] == (full.argmax(1) == y).float().mean()
    assert c.accuracy[-1] == (zero.argmax(1) == y).float().mean()
    assert torch.isclose(c.true_logit[-1], zero.gather(1, y[:, None]).mean())
    assert len(step_deletion_curve(net, x, y, torch.arange(12), steps=50).count) == 13


def test_step_scores_neuroview_global_and_padding():
    net = _gru()
    x, y = torch.randn(4, 12, 2), torch.tensor([0, 1, 2, 0])
    lengths = torch.tensor([12, 7, 3, 12])
    s = step_scores(net, x, y, "neuroview", lengths=lengths)
    exp = net.explain(x, lengths)
    valid = torch.arange(12) < lengths[:, None]
    assert torch.allclose(s[valid], exp.time_importance[torch.arange(4), y][valid])
    assert bool(torch.isneginf(s[~valid]).all())
    assert torch.allclose(step_scores(net, x, y, "neuroview_global"), net.time_importance()[y])
    # padded steps come last in the order, so replacing them is never the first thing done
    o = order_from_scores(s)
    assert set(o[2, :3].tolist()) == {0, 1, 2}


def test_step_scores_of_a_windowed_rnn_are_per_input_sample():
    # window=3: 10 samples are 4 steps; each sample gets its step's contribution over the step's real
    # samples (3; 1 in the last step, sample 9), and the deletion curve (which replaces input samples) runs on it
    net = nv.NeuroViewRNN(nn.GRU(2 * 3, 4, batch_first=True), 3, max_len=10, window=3).eval()
    x, y = torch.randn(5, 10, 2), torch.tensor([0, 1, 2, 0, 1])
    s = step_scores(net, x, y, "neuroview")
    per_step = net.explain(x).time_importance[torch.arange(5), y]  # [5, 4]
    assert s.shape == (5, 10)
    torch.testing.assert_close(s[:, 3:6], per_step[:, 1:2].expand(5, 3) / 3)
    torch.testing.assert_close(s[:, 9], per_step[:, 3])  # the last step's one real sample carries all of it
    assert step_scores(net, x, y, "neuroview_global").shape == (5, 10)
    res = time_step_deletion(net, x, y, methods=["neuroview", "random"], seeds=[0], steps=2)
    assert len(res.curves["neuroview"].count) == 3


def test_permutation_scores_of_a_linear_model():
    # logit_c = sum_t a[c, t] * x[t]: swapping step t moves the logit by a[y, t] * (x_t - x_perm,t).
    class Lin(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.tensor([[1.0, 0.0, 3.0], [0.0, 2.0, 0.0]])

        def forward(self, x):
            return x[..., 0] @ self.a.T

    x, y = torch.randn(64, 3, 1), torch.zeros(64, dtype=torch.long)
    s = step_scores(Lin(), x, y, "permutation", repeats=20)
    assert s[:, 1].abs().max() == 0  # step 1 has no weight for class 0
    assert s[:, 2].abs().mean() > s[:, 0].abs().mean()


def test_time_step_deletion_defaults_and_skips():
    net = _gru()
    x, y = torch.randn(8, 12, 2), torch.randint(0, 3, (8,))
    res = time_step_deletion(net, x, y, seeds=[0, 1], steps=3, n_steps=4)
    expected = {"neuroview", "neuroview_global", "permutation", "random:0", "random:1"}
    assert expected <= set(res.curves)
    assert ("integrated_gradients" in res.curves) == fa.has_captum()
    std = nv.RNNClassifier(nn.GRU(2, 5, batch_first=True), 3).eval()
    res = time_step_deletion(std, x, y, seeds=[0], steps=3, n_steps=4)
    assert set(res.skipped) >= {"neuroview", "neuroview_global"}
    with pytest.raises(TypeError, match="needs a NeuroViewRNN"):
        step_scores(std, x, y, "neuroview")


def test_integrated_gradients_scores_with_lengths():
    pytest.importorskip("captum")
    net = _gru()
    x, y = torch.randn(5, 12, 2), torch.randint(0, 3, (5,))
    lengths = torch.tensor([12, 5, 9, 12, 1])
    s = step_scores(net, x, y, "integrated_gradients", lengths=lengths, n_steps=8, baseline="mean")
    valid = torch.arange(12) < lengths[:, None]
    assert torch.isfinite(s[valid]).all() and bool(torch.isneginf(s[~valid]).all())


# -------------------------------------------------------------------------------- plots
def test_plot_returns_a_figure_with_one_line_per_order():
    pytest.importorskip("matplotlib")
    net, _ = _mlp("soft")
    res = unit_ablation(net, X, torch.tensor([0, 1, 1]), methods=["neuroview", "neuroview_global", "random"], seeds=[0, 1], steps=5)
    fig = res.plot("true_logit")
    ax = fig.axes[0]
    assert len(ax.lines) == 3  # two NeuroView orders and the random mean
    assert "AUC" in ax.get_legend().get_texts()[0].get_text()
    with pytest.raises(ValueError, match="metric"):
        res.plot("loss")


class _TokenMLP(nn.Module):
    """A token MLP: ``layout`` "tokens" [B, N, C], "seq_first" [T, B, C], or "folded" [T * B, C] (rows t * B + b)."""

    def __init__(self, layout: str):
        super().__init__()
        self.layout, self.fc1, self.act, self.fc2, self.act2 = layout, nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 4), nn.ReLU()

    def forward(self, x):  # [B, 3, N]
        b, n = len(x), x.shape[-1]
        t = {"tokens": x.transpose(1, 2), "seq_first": x.permute(2, 0, 1),
             "folded": x.permute(2, 0, 1).reshape(n * b, 3)}[self.layout]
        h = self.act2(self.fc2(self.act(self.fc1(t))))
        return h.reshape(n, b, 4).mean(0) if self.layout == "folded" else h.mean(1 if self.layout == "tokens" else 0)


@pytest.mark.parametrize("layout", ["tokens", "seq_first", "folded"])
@pytest.mark.parametrize("n", [5, 6])  # 5: as many tokens (and samples) as units
def test_ablation_removes_the_unit_not_a_token_or_a_sample(layout, n):
    """The keep mask was laid along dim 1 and dim 0 whatever the site's layout: at a token site it zeroed
    token 0 (N == C) or failed bare, at a sequence-first one sample 0 (B == C). Removing unit 0 of a ReLU
    is the network whose unit 0 never fires: its producing row zeroed (weight and bias), checked on that
    network's codes by hand."""
    torch.manual_seed(0)
    x = torch.randn(5, 3, n) + 0.5
    model = _TokenMLP(layout)
    net = nv.wrap(model, 3, example_input=x).eval()
    dead = copy.deepcopy(model)
    with torch.no_grad():
        dead.fc1.weight[0], dead.fc1.bias[0] = 0, 0
        t = {"tokens": x.transpose(1, 2), "seq_first": x.permute(2, 0, 1), "folded": x.permute(2, 0, 1)}[layout]
        z1 = dead.fc1(t)
        z2 = dead.fc2(torch.relu(z1))
        dims = (1,) if layout == "tokens" else (0,)
        want = torch.cat([(z1 > 0).float().mean(dims), (z2 > 0).float().mean(dims)], 1)
    with ablate_units(net, [("act", 0)]), torch.no_grad():
        got = net.codes(x)
    torch.testing.assert_close(got, want)
    with ablate_units(net, torch.tensor([[True] + [False] * 8] * 5)), torch.no_grad():  # per sample, the same
        torch.testing.assert_close(net.codes(x), want)


class _TableThenSite(nn.Module):
    """One GELU called first on a parameter table (no sample axis: no site, as Swin-V2's position bias),
    then on the convolution's output (its one site, "act:1")."""

    def __init__(self):
        super().__init__()
        self.conv, self.act, self.table = nn.Conv2d(1, 4, 3), nn.GELU(), nn.Parameter(torch.randn(5, 4))
        self.conv2, self.act2 = nn.Conv2d(4, 3, 1), nn.ReLU()

    def forward(self, x):
        bias = self.act(self.table).mean(0)
        return self.act2(self.conv2(self.act(self.conv(x) + bias[None, :, None, None])))


def test_ablation_skips_a_module_s_calls_that_are_no_site():
    """The hooks counted every call of the module as its sites: the table's call had channel 0 zeroed,
    the site's none (its own codes were zeroed, so explanations looked consistent). Checked against the
    network's next site computed by hand with the site's channel 0 zeroed."""
    torch.manual_seed(0)
    model, x = _TableThenSite(), torch.randn(4, 1, 6, 6)
    net = nv.wrap(model, 2, example_input=x).eval()
    assert [s.name for s in net.sites] == ["act:1", "act2"] and ("act", 0) in net.not_sites
    with torch.no_grad():
        h = model.act(model.conv(x) + model.act(model.table).mean(0)[None, :, None, None])
        h[:, 0] = 0
        want = (model.conv2(h) > 0).float().mean((2, 3))
    with ablate_units(net, [("act:1", 0)]), torch.no_grad():
        codes = net.codes(x)
    torch.testing.assert_close(codes[:, net.site_slices["act2"]], want)
    assert bool((codes[:, 0] == 0).all())


@pytest.mark.parametrize("layout", ["tokens", "seq_first", "folded"])
def test_captum_unit_scores_sum_over_the_site_s_own_positions(layout):
    """Captum's layer attribution was summed over dims 2+ whatever the layout: at a token site [B, N, C]
    with N == C it gave one score per token, unnoticed (a channels-last map failed as a bad `order`).
    Gradient x activation of each unit, by hand (autograd on the site's output), summed over its positions."""
    pytest.importorskip("captum")
    torch.manual_seed(0)
    x, y = torch.randn(5, 3, 5) + 0.5, torch.tensor([0, 1, 2, 0, 1])  # 5 samples, 5 tokens, 5 units
    model = _TokenMLP(layout)
    net = nv.wrap(model, 3, quantizer="none", example_input=x).eval()
    kept = []

    def keep(module, args, out):
        out.retain_grad()
        kept.append(out)

    handle = model.act.register_forward_hook(keep)
    net(x).gather(1, y[:, None]).sum().backward()
    handle.remove()
    h = kept[0]
    gxa = {"tokens": lambda t: t.sum(1), "seq_first": lambda t: t.sum(0),
           "folded": lambda t: t.reshape(5, 5, 5).sum(0)}[layout](h.grad * h).detach()
    got = unit_scores(net, x, y, "layer_grad_x_act")[:, net.site_slices["act"]]
    torch.testing.assert_close(got, gxa, rtol=1e-5, atol=1e-6)
