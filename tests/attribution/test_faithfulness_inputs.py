"""neuroview.attribution.faithfulness on the inputs a probe found mishandled: labels outside the classes,
padded series (NaN or zeros in the padding), the network's train/eval mode, Captum on hard codes, baseline
tensors over several chunks, unchecked counts and shapes, unit masks, unnormalized networks, partial
windows, and the benchmark scripts' --seeds. Each test checks against values computed here, by hand."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.attribution.ablation import step_baseline
from neuroview.attribution.baselines import integrated_gradients_scores
from neuroview.attribution.faithfulness import (
    HARD_SURROGATE, UNSTANDARDIZED, ablate_units, delete_steps, samples_of_steps, step_deletion_curve, step_scores,
    time_step_deletion, unit_ablation, unit_deletion_curve, unit_scores,
)


def _cnn(quantizer: str = "hard", normalize: bool = True, seed: int = 0) -> nv.NeuroViewCNN:
    torch.manual_seed(seed)
    body = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 3, 3), nn.ReLU())
    return nv.NeuroViewCNN(body, 3, input_shape=(1, 6, 6), quantizer=quantizer, normalize=normalize).eval()


def _rnn(**kw) -> nv.NeuroViewRNN:
    torch.manual_seed(1)
    return nv.NeuroViewRNN(nn.GRU(2, 4, batch_first=True), 3, **{"max_len": 8, **kw}).eval()


class _Plain(nn.Module):
    """A sequence model without num_classes: logit_c = sum over valid steps of a[c, t] * x[t, 0]."""

    def __init__(self, t: int = 8):
        super().__init__()
        self.a = nn.Parameter(torch.randn(3, t, generator=torch.Generator().manual_seed(2)))
        self.seen: list[torch.Tensor] = []

    def forward(self, x, lengths=None):
        self.seen.append(x.detach().clone())
        valid = torch.ones(x.shape[:2], dtype=torch.bool) if lengths is None else torch.arange(x.shape[1]) < lengths[:, None]
        return torch.where(valid, x[..., 0], 0.0) @ self.a[:, : x.shape[1]].T


X, XS = torch.randn(4, 1, 6, 6, generator=torch.Generator().manual_seed(3)), torch.randn(4, 8, 2, generator=torch.Generator().manual_seed(4))
Y = torch.tensor([0, 1, 2, 0])


# ------------------------------------------------------------------- 1. labels out of range
@pytest.mark.parametrize("call", [
    lambda y: unit_scores(_cnn(), X, y, "neuroview_global"),
    lambda y: unit_scores(_cnn(), X, y, "neuroview"),
    lambda y: unit_ablation(_cnn(), X, y, methods=["random"], seeds=[0]),
    lambda y: unit_deletion_curve(_cnn(), X, y, torch.arange(5)),
    lambda y: step_scores(_rnn(), XS, y, "neuroview_global"),
    lambda y: step_scores(_rnn(), XS, y, "neuroview"),
    lambda y: step_deletion_curve(_rnn(), XS, y, torch.arange(8)),
    lambda y: time_step_deletion(_rnn(), XS, y, methods=["random"], seeds=[0]),
], ids=["unit_scores_global", "unit_scores", "unit_ablation", "unit_deletion_curve", "step_scores_global",
        "step_scores", "step_deletion_curve", "time_step_deletion"])
@pytest.mark.parametrize("bad", [-1, 3])
def test_labels_outside_the_classes_are_refused_by_name(call, bad):
    # -1 picked the last class's row silently; 3 reached torch's bare index error
    y = torch.tensor([bad, 0, 1, 2])
    with pytest.raises(ValueError, match=rf"y: labels must lie in \[0, 3\) \(the network's classes\), got \[{bad}\]"):
        call(y)


@pytest.mark.parametrize("method", ["permutation", "random", "integrated_gradients"])
def test_labels_of_a_plain_network_are_checked_against_its_logits(method):
    if method == "integrated_gradients":
        pytest.importorskip("captum")
    y = torch.tensor([3, 0, 1, 2])
    with pytest.raises(ValueError, match=r"y: labels must lie in \[0, 3\) \(the width of the network's logits\), got \[3\]"):
        step_scores(_Plain(), XS, y, method, n_steps=2)
    with pytest.raises(ValueError, match=r"width of the network's logits\), got \[-1\]"):
        step_deletion_curve(_Plain(), XS, torch.tensor([0, -1, 1, 2]), torch.arange(8))


# ------------------------------------------------------------------------------ 2. padding
LENGTHS = torch.tensor([8, 5, 3, 8, 6, 7, 8, 2, 4, 8])
VALID = torch.arange(8) < LENGTHS[:, None]


def _padded(fill: float) -> torch.Tensor:
    x = torch.randn(10, 8, 2, generator=torch.Generator().manual_seed(5))
    return torch.where(VALID[..., None], x, torch.full((), fill))


def test_mean_baseline_ignores_what_the_padding_holds():
    xn = _padded(float("nan"))
    base = step_baseline(xn, "mean", LENGTHS)
    for b, n in enumerate(LENGTHS.tolist()):  # each series' mean over its own valid steps, by hand
        expected = sum(xn[b, t] for t in range(n)) / n
        torch.testing.assert_close(base[b], expected.expand(8, 2))


def test_nan_padding_gives_the_curves_of_zero_padding():
    # NeuroViewRNN never reads the padding: whatever it holds, every order and curve is the same
    net, y = _rnn(), torch.randint(0, 3, (10,), generator=torch.Generator().manual_seed(6))
    for method, base in [("random", "mean"), ("permutation", "zero"), ("permutation", "mean")]:
        a, b = (time_step_deletion(net, _padded(fill), y, lengths=LENGTHS, methods=[method], seeds=[0], baseline=base, steps=4)
                for fill in (float("nan"), 0.0))
        for name in a.curves:
            torch.testing.assert_close(a.curves[name].true_logit, b.curves[name].true_logit)


def test_permutation_swaps_a_step_only_among_series_that_have_it():
    net = _Plain()
    xn = _padded(float("nan"))
    y = torch.zeros(10, dtype=torch.long)
    s = step_scores(net, xn, y, "permutation", lengths=LENGTHS, repeats=3)
    inputs = [xp for xp in net.seen if len(xp) == 10][1:]  # the permuted batches, after the unpermuted one
    assert len(inputs) == 3 * 8
    for i, xp in enumerate(inputs):
        t = i % 8
        assert bool(xp[VALID].isfinite().all())  # no padded (NaN) value swapped into a valid step
        # step t of the valid series holds the same values, permuted among themselves
        assert sorted(xp[VALID[:, t], t, 0].tolist()) == sorted(xn[VALID[:, t], t, 0].tolist())
    # by hand: the drop of logit 0 when x[b, t] is replaced is a[0, t] * (x[b, t] - x[perm, t]); at step 7 only
    # the 4 full series are valid, and padded steps score -inf
    assert bool(torch.isneginf(s[~VALID]).all()) and bool(torch.isfinite(s[VALID]).all())
    drop = torch.stack([(xn[:, 7, 0] - xp[:, 7, 0]) for xp in inputs[7::8]]).mean(0) * net.a[0, 7]
    torch.testing.assert_close(s[VALID[:, 7], 7], drop[VALID[:, 7]].detach())


# ------------------------------------------------------------------------ 3. train/eval mode
def test_the_tools_put_every_submodule_back_in_its_mode():
    torch.manual_seed(0)
    cnn = nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Dropout(0.5)), 3,
                          input_shape=(1, 6, 6))
    rnn = _rnn(dropout=0.5)
    calls = [
        (cnn, lambda: unit_scores(cnn, X, Y, "neuroview")),
        (cnn, lambda: unit_deletion_curve(cnn, X, Y, torch.arange(2), steps=2)),
        (cnn, lambda: unit_ablation(cnn, X, Y, methods=["neuroview", "random"], seeds=[0], steps=2)),
        (rnn, lambda: step_scores(rnn, XS, Y, "neuroview")),
        (rnn, lambda: step_deletion_curve(rnn, XS, Y, torch.arange(8), steps=2)),
        (rnn, lambda: time_step_deletion(rnn, XS, Y, methods=["neuroview", "random"], seeds=[0], steps=2)),
    ]
    for net, call in calls:
        net.train()
        frozen = next(m for m in net.modules() if isinstance(m, (nn.BatchNorm2d, nn.GRU)))
        frozen.eval()  # a frozen part stays frozen, the rest stays in training
        modes = [m.training for m in net.modules()]
        call()
        assert [m.training for m in net.modules()] == modes
    # and the curve is the eval-mode network's, whatever mode it was called in
    cnn.train()
    c = unit_deletion_curve(cnn, X, Y, torch.arange(2), steps=2)
    with torch.no_grad():
        torch.testing.assert_close(c.true_logit[0], cnn.eval()(X).gather(1, Y[:, None]).mean())


# ------------------------------------------------------------------ 4. Captum on hard codes
def test_captum_on_hard_codes_scores_the_soft_network_and_is_noted():
    pytest.importorskip("captum")
    hard = _cnn("hard")
    soft = copy.deepcopy(hard)  # the same weights read with soft codes (a state dict records its quantizer now)
    soft.quantizer = "soft"
    with torch.no_grad():
        assert not torch.allclose(hard(X), soft(X))  # two different functions
    # ... but Captum sees one: the hard code's gradient is the soft code's (its straight-through surrogate)
    for m in ("layer_grad_x_act", "layer_conductance"):
        torch.testing.assert_close(unit_scores(hard, X, Y, m, n_steps=4), unit_scores(soft, X, Y, m, n_steps=4))
    res = unit_ablation(hard, X, Y, seeds=[0], steps=2, n_steps=4)
    assert res.notes == {"layer_grad_x_act": HARD_SURROGATE, "layer_conductance": HARD_SURROGATE}
    assert "straight-through surrogate" in HARD_SURROGATE
    assert unit_ablation(soft, X, Y, seeds=[0], steps=2, n_steps=4).notes == {}


def _case(notes: dict) -> dict:
    aucs = {"neuroview": 0.1, "neuroview_global": 0.2, "random": 0.5, "random_std": 0.01,
            "layer_grad_x_act": 0.3, "layer_conductance": 0.4}
    return {"dataset": "gunpoint", "architecture": "nv_lite", "from_zoo": True, "head": "dense", "per_class": 4,
            "tests": {"units": {"test_accuracy": 1.0, "auc_accuracy": aucs, "auc_true_logit": aucs,
                                "neuroview_beats_every_random_seed": True, **({"notes": notes} if notes is not None else {})}}}


def test_benchmark_table_marks_the_noted_orders(benchmark_script):
    fb = benchmark_script("faithfulness")
    md = fb.table({"a": _case({"layer_grad_x_act": HARD_SURROGATE, "layer_conductance": HARD_SURROGATE,
                               "neuroview_global": UNSTANDARDIZED})})
    row = md.splitlines()[2].split(" | ")
    assert row[3:8] == ["**0.100**", "0.200†", "0.500 ± 0.010", "0.300††", "0.400††"], row  # one mark a note
    assert md.endswith(f"\n\n† {UNSTANDARDIZED}.\n†† {HARD_SURROGATE}.")
    # results written before the notes existed read as before: no marks, no footnotes
    assert "†" not in fb.table({"a": _case(None)})


# ---------------------------------------------------------- 5. a baseline tensor over chunks
def test_integrated_gradients_with_one_baseline_series_per_series_over_several_chunks():
    pytest.importorskip("captum")
    net = _rnn()
    x = torch.randn(10, 8, 2, generator=torch.Generator().manual_seed(7))
    y, base = torch.randint(0, 3, (10,), generator=torch.Generator().manual_seed(8)), 0.5 * x.mean(1, keepdim=True).expand_as(x)
    chunked = step_scores(net, x, y, "integrated_gradients", baseline=base, n_steps=4, batch_size=4)
    # each series from its own baseline series, one series at a time
    alone = torch.cat([integrated_gradients_scores(net, x[i:i + 1], y[i:i + 1], None, base[i:i + 1], 4, 1) for i in range(10)])
    torch.testing.assert_close(chunked, alone)
    assert len(time_step_deletion(net, x, y, methods=["integrated_gradients"], baseline=base, steps=2, n_steps=4,
                                  batch_size=4).curves["integrated_gradients"].count) == 3


# ----------------------------------------------------------------------- 6. unchecked arguments
@pytest.mark.parametrize("call, error, match", [
    (lambda: step_scores(_rnn(), XS, Y, "permutation", repeats=0), ValueError, r"repeats: expected a positive int, got 0"),
    (lambda: unit_scores(_cnn(), X, Y, "layer_conductance", n_steps=0), ValueError, r"n_steps: expected a positive int, got 0"),
    (lambda: unit_ablation(_cnn(), X, Y, methods=["layer_conductance"], n_steps=0), ValueError, r"n_steps: expected a positive int"),
    (lambda: step_scores(_rnn(), XS, Y, "integrated_gradients", n_steps=0), ValueError, r"n_steps: expected a positive int"),
    (lambda: time_step_deletion(_rnn(), XS, Y, repeats=-1), ValueError, r"repeats: expected a positive int, got -1"),
    (lambda: delete_steps(XS, torch.arange(8), -2), ValueError, r"k: expected an int in \[0, 8\] .*got -2"),
    (lambda: delete_steps(XS, torch.arange(8), 1.5), ValueError, r"k: expected an int in \[0, 8\] .*got 1.5"),
    (lambda: delete_steps(XS, torch.arange(8), 9), ValueError, r"k: expected an int in \[0, 8\] .*got 9"),
    (lambda: unit_scores(_rnn(), XS, Y, "neuroview"), TypeError, r"net: expected a NeuroViewCNN, got NeuroViewRNN \(.*step_scores"),
    (lambda: unit_scores(_cnn().backbone, X, Y, "neuroview"), TypeError, r"net: expected a NeuroViewCNN, got Sequential"),
    (lambda: unit_deletion_curve(_cnn().backbone, X, Y, torch.arange(5)), TypeError, r"net: expected a NeuroViewCNN, got Sequential"),
    (lambda: unit_deletion_curve(_cnn(), X, Y, torch.arange(5), batch_size=0), ValueError, r"batch_size: expected a positive int, got 0"),
    (lambda: step_deletion_curve(_rnn(), XS, Y, torch.arange(8), batch_size=0), ValueError, r"batch_size: expected a positive int"),
    (lambda: step_scores(_rnn(), XS, Y, "random", lengths=torch.tensor([3, 4])), ValueError,
     r"lengths: expected an integer tensor of shape \[4\] \(one length per series of x\), got dtype torch.int64 and shape \(2,\)"),
    (lambda: step_scores(_rnn(), XS, Y, "random", lengths=torch.tensor([3, 4, 9, 1])), ValueError, r"lengths: expected values in \[1, 8\]"),
    (lambda: delete_steps(XS, torch.arange(8), 2, torch.zeros(3)), ValueError,
     r"baseline: expected 'zero', 'mean' or a tensor broadcastable to x's shape \(4, 8, 2\) \[B, T, F\], got a tensor of shape \(3,\)"),
])
def test_bad_arguments_are_refused_by_name(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_good_edge_arguments_still_work():
    assert torch.equal(delete_steps(XS, torch.arange(8), 0), XS)  # k=0: nothing replaced
    assert bool((delete_steps(XS, torch.arange(8), np.int64(8)) == 0).all())  # numpy ints, all T steps
    base = torch.full((1, 1, 2), 7.0)  # a baseline broadcast over series and steps
    assert delete_steps(XS, torch.arange(8), 3, base)[:, :3].eq(7.0).all()


# ---------------------------------------------------------------------------- 7. unit masks
def _codes_without(net, units) -> torch.Tensor:
    with ablate_units(net, units) as mask:
        return net.codes(X), mask


def test_numpy_and_list_bool_masks_remove_the_units_they_mark():
    net = _cnn()
    expected, mask = _codes_without(net, [0, 2])
    for units in (np.array([True, False, True, False, False]), [True, False, True, False, False],
                  np.array([[True, False, True, False, False]] * 4)):
        codes, m = _codes_without(net, units)
        assert m.nonzero()[..., -1].unique().tolist() == [0, 2]
        torch.testing.assert_close(codes, expected)
    assert mask.nonzero().flatten().tolist() == [0, 2]


@pytest.mark.parametrize("units, match", [
    (torch.tensor([1, 0, 1, 0, 0], dtype=torch.uint8), r"units: a uint8 tensor is ambiguous .*units.bool\(\) for a mask"),
    (torch.tensor([1, 0, 1, 0, 0]), r"units: expected distinct units, got \[0, 1\] more than once; a 0/1 mask is read as indices"),
    ([2, ("1", 0), 0], r"units: expected distinct units, got \[0\] more than once; each unit once"),
    (np.array([3, 3]), r"got \[3\] more than once"),
])
def test_masks_read_as_indices_and_repeated_units_are_refused(units, match):
    with pytest.raises(ValueError, match=match), ablate_units(_cnn(), units):
        pass


# ---------------------------------------------------------------- 8. unnormalized networks
def test_global_order_of_an_unnormalized_network_says_it_is_raw():
    net = _cnn(normalize=False)
    with pytest.warns(UserWarning, match=r"normalize=False.*raw effective weights"):
        s = unit_scores(net, X, Y, "neuroview_global")
    torch.testing.assert_close(s, net.effective_classifier()[0].detach()[Y])  # the raw weights, as documented
    with pytest.warns(UserWarning):
        res = unit_ablation(net, X, Y, methods=["neuroview_global"], steps=2)
    assert res.notes == {"neuroview_global": UNSTANDARDIZED}
    normed = _cnn("soft")
    normed.train()
    with torch.no_grad():  # a training batch sets the head's statistics (before: none, and no word of it)
        normed(X)
    normed.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert unit_ablation(normed, X, Y, methods=["neuroview_global"], steps=2).notes == {}


# ---------------------------------------------------------------------- 9. partial windows
def test_samples_of_a_partial_window_share_its_score():
    # 2 steps of 3 samples, 5 samples: the second step has 2 real samples, 6.0 / 2 each
    assert samples_of_steps(torch.tensor([[3.0, 6.0]]), 3, 5).tolist() == [[1.0, 1.0, 1.0, 3.0, 3.0]]
    # with lengths: series of 4 samples (second step: 1 real sample) and of 6 (3 real)
    out = samples_of_steps(torch.tensor([[3.0, 6.0], [3.0, 6.0]]), 3, 6, torch.tensor([4, 6]))
    assert out.tolist() == [[1.0, 1.0, 1.0, 6.0, 6.0, 6.0], [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]]


def test_per_sample_scores_of_a_windowed_rnn_sum_to_the_logit():
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(2 * 3, 4, batch_first=True), 3, max_len=11, window=3).eval()  # 4 steps, the last of 2
    x, y, lengths = torch.randn(3, 11, 2), torch.tensor([0, 1, 2]), torch.tensor([11, 7, 5])
    s = step_scores(net, x, y, "neuroview", lengths=lengths)
    exp = net.explain(x, lengths)
    valid = torch.arange(11) < lengths[:, None]
    total = torch.where(valid, s, 0.0).sum(1)
    torch.testing.assert_close(total + exp.bias[y], exp.logits[torch.arange(3), y])
    # series 1 (7 samples): its third step holds one real sample, sample 6, which carries all of that step
    torch.testing.assert_close(s[1, 6], exp.time_importance[1, 1, 2])


# ------------------------------------------------------------------- 10. benchmark --seeds
@pytest.mark.parametrize("script", ["faithfulness", "synthetic_window"])
@pytest.mark.parametrize("value", ["0", "-1", "x"])
def test_benchmarks_refuse_seeds_below_one(benchmark_script, capsys, script, value):
    mod = benchmark_script(script)
    with pytest.raises(SystemExit) as e:
        mod.main(["--seeds", value])
    assert e.value.code == 2
    assert f"argument --seeds: expected a positive int, got '{value}'" in capsys.readouterr().err
