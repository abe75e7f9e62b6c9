"""Mends of reviewer B's findings on 077c828, 80f9c98 and d288c6c (s17).

- 1: a partial state dict holding only the head (``classifier.*``), loaded with ``strict=False`` into a default wrap,
  dropped the wrap's normalization (the rule for a ``normalize=False`` network's whole file fired on any dict without
  ``norm.*``) and ``missing_keys`` no longer listed ``norm.*``.
- 4: ``Ensemble.explain(x, lengths)``, the RNN's own call form, got Python's bare "takes 2 positional arguments".
- 9: ``time_importance`` was formed at every read (a reader reading it twice formed ``[B, C, T]`` twice).
- 10: an ``RNNExplanation`` pickled before ``time_importance`` became a property raised AttributeError
  '_time_importance' on read.
- 11: ``k90`` / ``top_share(level="steps")`` summed the steps in another order than ``time_importance`` (1e-8 apart).
- 12: the advice ``to_records(target=exp.target)`` gave the full table where ``exp.target`` is None.

Known answers: hand-set backbones, normalizations and heads, logits computed here by hand.
"""

from __future__ import annotations

import copyreg
import pickle

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.core.ensemble import Ensemble
from neuroview.core.ensemble_checks import NotNeuroView
from neuroview.core.explanation import Explanation, RNNExplanation
from neuroview.core.readable import k_share
from test_ensemble import _member  # one unit whose hard code is the fraction of positive samples; a hand-set head

W = torch.tensor([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]])
B = torch.tensor([0.1, -0.2, 0.3])
MEAN, VAR = torch.tensor([0.5, 0.25]), torch.tensor([0.25, 1.0])


# ------------------------------------------------------------------ 1. a head-only load keeps the normalization
def _cnn_backbone() -> nn.Module:
    """Unit 0's hard code is the fraction of positive samples of x, unit 1's the fraction of negative ones."""
    conv = nn.Conv1d(1, 2, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[1.0]], [[-1.0]]]))
    return nn.Sequential(conv, nn.ReLU())


def _normalized_cnn():
    """A default wrap with hand-set statistics and head; its eval logits by hand: W (c - mean) / sqrt(var + eps) + b
    (the floor, 0.1 of the mean variance, is below both variances)."""
    x = torch.tensor([[[1.0, 2.0, -1.0, 3.0]], [[-1.0, -2.0, -3.0, 4.0]]])
    codes = torch.tensor([[0.75, 0.25], [0.25, 0.75]])  # from the signs of x
    want = ((codes - MEAN) / torch.sqrt(VAR + 1e-5)) @ W.T + B
    net = nv.wrap(_cnn_backbone(), num_classes=3, input_shape=(1, 4))
    with torch.no_grad():
        net.norm.running_mean.copy_(MEAN)
        net.norm.running_var.copy_(VAR)
        net.classifier.weight.copy_(W)
        net.classifier.bias.copy_(B)
    torch.testing.assert_close(net.eval()(x), want, rtol=0, atol=1e-5)
    return net, x, want


def test_a_head_only_load_with_strict_false_keeps_the_normalization_and_names_it_missing():
    net, x, want = _normalized_cnn()
    norm = net.norm
    head = {k: v.clone() for k, v in net.state_dict().items() if k.startswith("classifier.")}
    res = net.load_state_dict(head, strict=False)  # its own head again: nothing may change
    assert net.norm is norm
    assert {"norm.running_mean", "norm.running_var"} <= set(res.missing_keys)  # torch's account of what it lacks
    torch.testing.assert_close(net(x), want, rtol=0, atol=1e-5)
    with pytest.raises(RuntimeError, match=r"Missing key\(s\).*norm\.running_mean"):
        net.load_state_dict(head)  # strict: refused as before, the normalization named among the missing
    assert net.norm is norm


def test_a_whole_normalize_false_file_with_strict_false_still_drops_it():
    net, x, _ = _normalized_cnn()
    plain = nv.wrap(_cnn_backbone(), num_classes=3, normalize=False, input_shape=(1, 4))
    with torch.no_grad():
        plain.classifier.weight.copy_(W)
        plain.classifier.bias.copy_(B)
    net.load_state_dict(plain.state_dict(), strict=False)  # the wrapped network's keys are there: a whole file
    assert net.norm is None
    codes = torch.tensor([[0.75, 0.25], [0.25, 0.75]])
    torch.testing.assert_close(net(x), codes @ W.T + B, rtol=0, atol=1e-6)


def _rnn():
    """h_t = relu(x_t): an nn.RNN of one unit, input weight 1, recurrent weight 0, no bias."""
    rnn = nn.RNN(1, 1, nonlinearity="relu", bias=False, batch_first=True)
    with torch.no_grad():
        rnn.weight_ih_l0.fill_(1.0)
        rnn.weight_hh_l0.zero_()
    return rnn


def test_a_head_only_rnn_load_keeps_the_normalization():
    x = torch.tensor([[1.0, -2.0, 3.0], [-1.0, 2.0, 0.5]])[..., None]  # [B, T, 1]
    h = torch.tensor([[1.0, 0.0, 3.0], [0.0, 2.0, 0.5]])  # relu(x), every step
    w, b = torch.tensor([[1.0, -1.0, 2.0], [0.5, 0.25, -1.0]]), torch.tensor([0.5, -0.5])
    mean, var = torch.tensor([0.5, 1.0, 1.5]), torch.tensor([1.0, 4.0, 0.25])
    net = nv.wrap(_rnn(), num_classes=2, max_len=3).eval()
    with torch.no_grad():
        net.norm.running_mean.copy_(mean)
        net.norm.running_var.copy_(var)
    head = {"classifier.weight": w, "classifier.bias": b}
    res = net.load_state_dict(head, strict=False)
    assert net.norm is not None and "norm.running_mean" in res.missing_keys
    want = ((h - mean) / torch.sqrt(var + 1e-5)) @ w.T + b
    torch.testing.assert_close(net(x), want, rtol=0, atol=1e-5)


# ------------------------------------------------------------------ 4. Ensemble.explain(x, lengths)


def test_ensemble_explain_takes_lengths_positionally_as_the_members_do():
    torch.manual_seed(0)
    rnns = Ensemble([nv.NeuroViewRNN(nn.GRU(3, 4, batch_first=True), 2, max_len=6) for _ in range(2)]).eval()
    with pytest.raises(NotNeuroView, match="explain: needs NeuroView-CNN members; these are NeuroViewRNNs"):
        rnns.explain(torch.randn(3, 6, 3), torch.tensor([6, 2, 4]))
    cnns = Ensemble([_member([1.0, -1.0], [0.0, 0.5]), _member([2.0, 0.0], [1.0, -1.0])]).eval()
    x = torch.tensor([[[1.0, -1.0, 2.0, 3.0]], [[-1.0, -1.0, -2.0, 4.0]]])
    with pytest.raises(TypeError, match="lengths: the members are NeuroView-CNNs, which read no lengths"):
        cnns.explain(x, torch.tensor([4, 2]))
    c = torch.tensor([0.75, 0.25])[:, None]  # by hand: 3/4 and 1/4 positive
    want = ((c * torch.tensor([1.0, -1.0]) + torch.tensor([0.0, 0.5])) + (c * torch.tensor([2.0, 0.0]) + torch.tensor([1.0, -1.0]))) / 2
    torch.testing.assert_close(cnns.explain(x, None).logits, want, rtol=0, atol=1e-6)


# ------------------------------------------------------------------ 9-11. time_importance kept once read
def _hand_built() -> RNNExplanation:
    """time_importance[b, c, t] = sum over l, h of W[c, l, 0, t, h] * codes[b, l, 0, t, h], computed here by hand."""
    codes = torch.arange(2 * 2 * 1 * 3 * 2, dtype=torch.float32).reshape(2, 2, 1, 3, 2) / 10  # [B, L, D, T, H]
    weight = torch.tensor([1.0, -1.0, 0.5])[:, None, None, None, None] * torch.ones(3, 2, 1, 3, 2)  # [C, L, D, T, H]
    weight[2, 1, 0, 2, 1] = 4.0
    return RNNExplanation(logits=codes.flatten(1) @ weight.flatten(1).T, bias=torch.zeros(3), codes=codes, weight=weight)


def _by_hand(exp: RNNExplanation) -> torch.Tensor:
    want = torch.zeros(2, 3, 3)
    for b in range(2):
        for c in range(3):
            for t in range(3):
                want[b, c, t] = sum(float(exp.weight[c, l, 0, t, h] * exp.codes[b, l, 0, t, h]) for l in range(2) for h in range(2))
    return want


def test_time_importance_is_formed_once_and_kept_while_its_sources_are_unchanged():
    exp = _hand_built()
    want = _by_hand(exp)
    first = exp.time_importance
    torch.testing.assert_close(first, want)
    assert exp.time_importance is first  # a second reader forms nothing: the same tensor
    first[0, 0, 0] = 99.0  # edited by a reader: formed again, no later answer changes
    again = exp.time_importance
    assert again is not first
    torch.testing.assert_close(again, want)
    exp.codes = exp.codes * 2  # other codes: other numbers
    torch.testing.assert_close(exp.time_importance, 2 * want)
    exp.codes.mul_(0.5)  # edited in place: formed again too
    torch.testing.assert_close(exp.time_importance, want)


def test_the_kept_time_importance_is_neither_saved_nor_pickled(tmp_path):
    exp, unread = _hand_built(), _hand_built()
    exp.time_importance  # read: kept
    assert "time_importance" not in exp._state()[0]
    exp.save(tmp_path / "e")
    assert (tmp_path / "e.safetensors").stat().st_size == (unread.save(tmp_path / "u") or (tmp_path / "u.safetensors").stat().st_size)
    assert len(pickle.dumps(exp)) == len(pickle.dumps(unread))  # no kept tensor travels
    torch.testing.assert_close(pickle.loads(pickle.dumps(exp)).time_importance, _by_hand(exp))


def _old_pickle(exp: RNNExplanation, eager: torch.Tensor) -> bytes:
    """The bytes ``pickle`` wrote for an RNNExplanation before d288c6c: its ``__dict__`` held ``time_importance``
    (formed by explain) and no ``_time_importance``."""
    state = {"logits": exp.logits, "bias": exp.bias, "_contributions": None, "codes": exp.codes, "weight": exp.weight,
             "target": None, "baseline": None, "time_importance": eager, "lengths": None, "window": 1, "max_len": None}

    class Old:
        def __reduce_ex__(self, protocol):
            return copyreg._reconstructor, (RNNExplanation, object, None), state  # restored as pickle restores any

    return pickle.dumps(Old())


def test_an_explanation_pickled_by_the_previous_code_reads_its_time_importance():
    exp = _hand_built()
    want = _by_hand(exp)
    old = pickle.loads(_old_pickle(exp, want.clone()))
    assert isinstance(old, RNNExplanation)
    torch.testing.assert_close(old.time_importance, want)  # was AttributeError '_time_importance'
    assert old.k90(level="steps") == float(k_share(want[torch.arange(2), old.targets()], 0.9).float().quantile(0.5))
    torch.testing.assert_close(old.steps_for_class(2), want[:, 2])
    assert old.to_records()[0]["sample"] == 0
    older = pickle.loads(_old_pickle(exp, None))  # made with time_importance None: formed from codes and weight
    torch.testing.assert_close(older.time_importance, want)


def test_step_level_readability_reads_the_numbers_time_importance_shows_exactly():
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(2, 5, num_layers=2, bidirectional=True, batch_first=True), 4, max_len=10).eval()
    x = torch.randn(6, 10, 2, generator=torch.Generator().manual_seed(3))
    for baseline in (None, "mean"):
        exp = net.explain(x, torch.tensor([10, 7, 3, 10, 1, 9]), baseline=baseline)
        t = torch.tensor([3, 0, 1, 1, 2, 0])
        steps = exp.time_importance[torch.arange(6), t]
        assert torch.equal(exp.steps_for_class(t), steps)  # summed in another order they were 1.5e-8 apart
        assert torch.equal(exp.k90(t, per_sample=True, level="steps"), k_share(steps, 0.9))
        a = steps.abs().double()
        top3 = a.topk(3, dim=-1).values.sum(-1) / a.sum(-1)
        assert torch.equal(exp.top_share(3, t, per_sample=True, level="steps"), top3)
    hand = _hand_built()  # and the numbers themselves, by hand
    torch.testing.assert_close(hand.steps_for_class(torch.tensor([2, 0])), _by_hand(hand)[[0, 1], [2, 0]])


# ------------------------------------------------------------------ 12. to_records' target None and its advice
def test_to_records_says_what_none_reads_and_advises_targets_which_always_resolves():
    codes, weight = torch.tensor([[1.0, 2.0], [3.0, -1.0]]), torch.tensor([[1.0, 0.0], [0.5, 2.0], [-1.0, 1.0]])
    exp = Explanation(logits=codes @ weight.T, bias=torch.zeros(3), codes=codes, weight=weight)  # by hand: no target
    assert exp.target is None and exp.predicted.tolist() == [1, 0]  # logits [[1, 4.5, 1], [3, -0.5, -4]]
    explained = exp.to_records(target=exp.targets())
    assert explained == [
        {"sample": 0, "class": 1, "feature": 0, "contribution": 0.5}, {"sample": 0, "class": 1, "feature": 1, "contribution": 4.0},
        {"sample": 1, "class": 0, "feature": 0, "contribution": 3.0}, {"sample": 1, "class": 0, "feature": 1, "contribution": -0.0}]
    assert len(exp.to_records(target=None)) == 2 * 3 * 2  # None: every class, as by_site and direction_time read it
    for method in (Explanation.to_records, RNNExplanation.to_records, RNNExplanation.direction_time):
        doc = " ".join(method.__doc__.split())
        assert "``exp.target``" not in doc  # the advice that gave every class for a hand-made explanation
    doc = " ".join(Explanation.to_records.__doc__.split())
    assert "exp.targets()" in doc and "None" in doc and "every class" in doc
