"""An explanation taken against a baseline keeps ``bias = b + W baseline`` (the baseline's logit) through the edits it
allows: ``dataclasses.replace`` with a refitted head's ``weight``/``bias``/``logits`` (docs/ERRORS.md), or with another
``baseline``, and ``exp.baseline = ...``; an edit that cannot be kept so is refused naming the field (probe s27 P5,
finding 2: the copy kept the bias it was given and missed its logit by ``W baseline``, without a word).

Hand-built with known answers, every number a small dyadic fraction (exact in float32): codes ``[[1, 0], [2, 1]]``,
head ``W = [[1, 2], [3, -1]]``, ``b = [0.5, -0.5]``, baseline ``m = [1, 1]``: ``W m = [3, 2]``, ``b + W m = [3.5, 1.5]``.
"""

import copy
import dataclasses
import gc
import pickle

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.core import explanation_bias
from neuroview.core.explanation import CNNExplanation, Explanation, RNNExplanation

CODES = torch.tensor([[1.0, 0.0], [2.0, 1.0]])
W = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
B = torch.tensor([0.5, -0.5])
LOGITS = torch.tensor([[1.5, 2.5], [4.5, 4.5]])  # codes @ W.T + b, by hand
M = torch.tensor([1.0, 1.0])
BIAS_M = torch.tensor([3.5, 1.5])  # b + W m, by hand
W2 = torch.tensor([[0.5, 1.0], [-1.0, 2.0]])  # a refitted head: W2 m = [1.5, 1], W2 m2 below
B2 = torch.tensor([0.25, 1.0])
LOGITS2 = torch.tensor([[0.75, 0.0], [2.25, 1.0]])  # codes @ W2.T + b2, by hand
M2 = torch.tensor([2.0, 0.0])  # W m2 = [2, 6], W2 m2 = [1, -2]


def _exp(baseline=None, bias=None) -> CNNExplanation:
    return CNNExplanation(logits=LOGITS, bias=B if bias is None else bias, codes=CODES, weight=W, baseline=baseline,
                          units=[("a", 0), ("a", 1)], site_slices={"a": slice(0, 2)})


def _exact(exp) -> None:
    # every class of every sample, from the explanation's own dense contributions
    assert exp.residual(0).abs().max() < 1e-6 and exp.residual(1).abs().max() < 1e-6
    assert (exp.contributions.flatten(2).sum(-1) + exp.bias - exp.logits).abs().max() < 1e-6


def test_explain_against_a_baseline_keeps_the_baseline_s_logit_as_given():
    e = _exp(M, BIAS_M)
    assert torch.equal(e.bias, BIAS_M)
    _exact(e)


def test_replace_with_a_refitted_head_derives_the_baseline_s_logit_under_it():
    r = dataclasses.replace(_exp(M, BIAS_M), weight=W2, bias=B2, logits=LOGITS2)  # docs/ERRORS.md's refitted head
    assert torch.equal(r.bias, torch.tensor([1.75, 2.0]))  # b2 + W2 m, by hand
    _exact(r)
    # already the baseline's logit under the refitted head: taken as it is
    r = dataclasses.replace(_exp(M, BIAS_M), weight=W2, bias=torch.tensor([1.75, 2.0]), logits=LOGITS2)
    assert torch.equal(r.bias, torch.tensor([1.75, 2.0]))
    _exact(r)


def test_replace_of_the_weight_alone_keeps_the_head_s_bias_under_the_new_weight():
    r = dataclasses.replace(_exp(M, BIAS_M), weight=W2)
    assert torch.equal(r.bias, torch.tensor([2.0, 0.5]))  # b + W2 m: the bias b is the head's, the weight is new


@pytest.mark.parametrize("start, to, want", [
    (None, M, BIAS_M),  # b + W m
    (M, None, B),  # b: zero codes again
    (M, M2, torch.tensor([2.5, 5.5])),  # b + W m2
])
def test_replace_with_another_baseline_derives_the_bias(start, to, want):
    e = _exp(start, None if start is None else BIAS_M)
    r = dataclasses.replace(e, baseline=to)
    assert torch.equal(r.bias, want)
    _exact(r)
    assert torch.equal(e.bias, B if start is None else BIAS_M)  # the original is left alone


@pytest.mark.parametrize("start, to, want", [
    (None, M, BIAS_M),
    (M, None, B),
    (M, M2, torch.tensor([2.5, 5.5])),
])
def test_assigning_a_baseline_derives_the_bias(start, to, want):
    e = _exp(start, None if start is None else BIAS_M)
    e.baseline = to
    assert torch.equal(e.bias, want)
    _exact(e)
    assert torch.equal(e.for_class(0), (CODES - (0 if to is None else to)) * W[0])


def test_a_baseline_of_another_shape_is_refused_by_name():
    e = _exp(M, BIAS_M)
    with pytest.raises(ValueError, match=r"^baseline: expected None or a tensor of shape \[2\] .*got shape \[3\]"):
        e.baseline = torch.ones(3)
    assert torch.equal(e.baseline, M) and torch.equal(e.bias, BIAS_M)  # nothing taken
    with pytest.raises(ValueError, match=r"^baseline: expected None or a tensor of shape \[2\] .*got shape \[3\]"):
        dataclasses.replace(e, baseline=torch.ones(3))
    with pytest.raises(ValueError, match=r"^baseline: expected None or a tensor of shape \[2\] .*got 1\.0"):
        e.baseline = 1.0


def test_a_new_baseline_under_given_contributions_is_refused_by_name():
    given = (CODES - M)[:, None] * W[None]
    e = _exp(M, BIAS_M)
    e.contributions = given  # an edited (ablated) explanation: what it was given, not what the baseline forms
    with pytest.raises(ValueError, match=r"^baseline: this explanation's contributions were given .*contributions=None"):
        e.baseline = M2
    assert torch.equal(e.baseline, M) and torch.equal(e.bias, BIAS_M)
    with pytest.raises(ValueError, match=r"^baseline: this explanation's contributions were given"):
        dataclasses.replace(e, baseline=M2)
    e.contributions = None  # formed again: then it follows
    e.baseline = M2
    assert torch.equal(e.bias, torch.tensor([2.5, 5.5]))


def test_placeholder_logits_that_fit_no_head_leave_the_bias_as_given():
    # the code cannot tell which bias such logits would need: the field is taken as documented (the baseline's logit)
    e = CNNExplanation(logits=torch.zeros(2, 2), bias=torch.zeros(2), codes=CODES, weight=W, baseline=M)
    assert torch.equal(e.bias, torch.zeros(2))


def test_a_network_s_mean_baseline_explanation_under_a_refitted_head_and_another_baseline_sums_to_its_logit(tmp_path):
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 6, 3), nn.ReLU()), 3, input_shape=(1, 12))
    net.train()
    net(torch.randn(32, 1, 12))
    net.eval()
    x = torch.randn(5, 1, 12)
    em = net.explain(x, baseline="mean")
    w, b = (t.detach() for t in net.effective_classifier())
    torch.testing.assert_close(em.bias, b + w @ net.norm.running_mean, rtol=0, atol=1e-6)  # explain's, unchanged
    w2, b2 = em.weight * 0.5, torch.tensor([0.3, -0.2, 0.1])
    r = dataclasses.replace(em, weight=w2, bias=b2, logits=em.codes @ w2.T + b2)
    assert r.residual().abs().max() < 1e-6
    torch.testing.assert_close(r.bias, b2 + w2 @ em.baseline, rtol=0, atol=1e-6)
    e0 = net.explain(x)
    rb = dataclasses.replace(e0, baseline=em.baseline)
    assert rb.residual().abs().max() < 1e-6
    torch.testing.assert_close(rb.bias, em.bias, rtol=0, atol=1e-6)
    e0.baseline = em.baseline
    assert e0.residual().abs().max() < 1e-6 and e0.k90() == em.k90()
    r.save(tmp_path / "r")
    back = Explanation.load(tmp_path / "r")
    assert torch.equal(back.bias, r.bias) and back.residual().abs().max() < 1e-6


def test_an_rnn_explanation_given_another_baseline_sums_to_its_logit_step_by_step():
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(2, 3, batch_first=True), 2, max_len=4).eval()
    x = torch.randn(3, 4, 2)
    e0 = net.explain(x)
    m = torch.full(e0.codes.shape[1:], 0.25)
    want = net.explain(x, baseline=m)
    r = dataclasses.replace(e0, baseline=m)
    torch.testing.assert_close(r.bias, want.bias, rtol=0, atol=1e-6)
    sums = r.time_importance.sum(-1) + r.bias  # [B, C]: each step's contributions, summed, plus the baseline's logit
    assert (sums - r.logits).abs().max() < 1e-5
    _ = e0.time_importance  # formed and kept: an assigned baseline forms it again
    e0.baseline = m
    torch.testing.assert_close(e0.time_importance, want.time_importance, rtol=0, atol=1e-6)
    assert isinstance(e0, RNNExplanation) and (e0.time_importance.sum(-1) + e0.bias - e0.logits).abs().max() < 1e-5


def test_a_deep_copy_given_another_baseline_still_derives_the_bias():
    for c in (copy.deepcopy(_exp(M, BIAS_M)), pickle.loads(pickle.dumps(_exp(M, BIAS_M)))):
        r = dataclasses.replace(c, baseline=M2)
        assert torch.equal(r.bias, torch.tensor([2.5, 5.5]))  # b + W m2, by hand
        _exact(r)


def test_the_record_of_a_bias_goes_with_its_explanation():
    gc.collect()
    before = len(explanation_bias._PAIRED)
    for _ in range(50):
        dataclasses.replace(_exp(M, BIAS_M), baseline=M2)
    gc.collect()
    assert len(explanation_bias._PAIRED) <= before + 1
