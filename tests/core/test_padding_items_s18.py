"""Against a nonzero baseline, a padded series' steps past its end each add the constant -W baseline. Readability
(k90, top share, at the step and the feature level, and nv.readability) counts only the series' real steps apart,
with all its padding together as one item (the sum still the logit), and to_records flags the padding rows.
Hand-made explanations with known counts, and a real GRU checked against a count made by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.core.explanation import RNNExplanation


def _k90_by_hand(values: list[float]) -> int:
    """The fewest values, largest |value| first, whose |values| make 90% of their total (0 for all zeros)."""
    a = sorted((abs(v) for v in values), reverse=True)
    total, run = sum(a), 0.0
    if total == 0:
        return 0
    for i, v in enumerate(a, 1):
        run += v
        if run >= 0.9 * total * (1 - 1e-12):
            return i
    return len(a)


def _hand(codes: list[list[float]], lengths: list[int] | None, baseline: float = 1.0) -> RNNExplanation:
    """One class, one layer and direction, every weight 1: contribution = code - baseline, per (step, feature).
    ``codes [T][H]`` of one series; its padding steps hold code 0, as explain gives them."""
    c = torch.tensor(codes)[None, None, None]  # [1, 1, 1, T, H]
    w = torch.ones(1, *c.shape[1:])
    base = torch.full(c.shape[1:], baseline)
    bias = torch.tensor([0.5]) + (w.flatten(1) @ base.flatten())
    logits = (c - base).flatten(1).sum(1, keepdim=True) + bias
    return RNNExplanation(logits=logits, bias=bias, codes=c, weight=w, baseline=base,
                          lengths=None if lengths is None else torch.tensor(lengths))


def test_step_level_counts_the_padding_as_one_item():
    # step contributions [2, 0 | -1, -1, -1]: the series has 2 steps, then 3 of padding
    exp = _hand([[3.0], [1.0], [0.0], [0.0], [0.0]], [2])
    assert exp.steps_for_class()[0].tolist() == [2.0, 0.0, -1.0, -1.0, -1.0]  # the numbers shown are unchanged
    # items: step 0 (2), step 1 (0), the padding (-3): 3 and 2 make the 90% of 5
    assert exp.k90(level="steps") == _k90_by_hand([2.0, 0.0, -3.0]) == 2.0
    assert exp.top_share(1, level="steps") == pytest.approx(3 / 5)  # the padding item's share
    assert exp.top_share(2, level="steps") == pytest.approx(1.0)
    # it was 4: three "steps" of padding counted as evidence, more steps than the series has
    assert _k90_by_hand([2.0, 0.0, -1.0, -1.0, -1.0]) == 4


def test_feature_level_counts_the_padding_as_one_item():
    # features of step 0: [3, 0]; two padded steps of 2 features: four times -1, one item of -4
    exp = _hand([[4.0, 1.0], [0.0, 0.0], [0.0, 0.0]], [1])
    assert exp.k90() == _k90_by_hand([3.0, 0.0, -4.0]) == 2.0  # was 5 (3, then four -1 of padding)
    assert exp.top_share(1) == pytest.approx(4 / 7)


def test_without_padding_or_lengths_nothing_changes():
    full = _hand([[3.0], [1.0], [0.5]], [3])
    none = _hand([[3.0], [1.0], [0.5]], None)
    for exp in (full, none):  # contributions [2, 0, -0.5]
        assert exp.k90(level="steps") == _k90_by_hand([2.0, 0.0, -0.5]) == 2.0
        assert exp.top_share(1, level="steps") == pytest.approx(2 / 2.5)


def test_zero_baseline_padding_adds_nothing_and_counts_nothing():
    exp = _hand([[3.0], [1.0], [0.0], [0.0]], [2], baseline=0.0)  # padding: exactly 0
    assert exp.k90(level="steps") == _k90_by_hand([3.0, 1.0]) == 2.0


def _gru():
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(1, 4, batch_first=True), 2, max_len=10)
    net.train()
    net(torch.randn(8, 10, 1))  # running statistics: a "mean" baseline
    return net.eval()


def test_a_real_network_counts_each_series_real_steps_and_one_padding_item():
    net = _gru()
    x, lengths = torch.randn(6, 10, 1), torch.tensor([10, 3, 3, 7, 1, 5])
    exp = net.explain(x, lengths=lengths, baseline="mean")
    st = exp.steps_for_class()
    want = []
    for i, n in enumerate(lengths.tolist()):
        real, pad = st[i, :n].tolist(), float(st[i, n:].sum())
        assert abs(pad) > 0 or n == 10  # against the mean, padding adds something
        want.append(_k90_by_hand(real + ([pad] if n < 10 else [])))
    got = exp.k90(level="steps", per_sample=True).tolist()
    assert got == want
    assert all(k <= n + 1 for k, n in zip(got, lengths.tolist()))  # never more than its steps and the padding
    # exact: bias + real steps + the padding item is the logit
    t = exp.targets()
    for i, n in enumerate(lengths.tolist()):
        total = float(exp.bias[t[i]]) + float(st[i, :n].sum()) + float(st[i, n:].sum())
        assert total == pytest.approx(float(exp.logits[i, t[i]]), abs=1e-5)


def test_readability_counts_steps_as_the_explanation_now_does():
    net = _gru()
    x, lengths, y = torch.randn(6, 10, 1), torch.tensor([10, 3, 3, 7, 1, 5]), torch.tensor([0, 1, 0, 1, 0, 1])
    r = nv.readability(net, [(x.transpose(1, 2), lengths, y)], baseline="mean")
    st = net.explain(x, lengths=lengths, baseline="mean").steps_for_class()
    by_hand = [_k90_by_hand(st[i, :n].tolist() + ([float(st[i, n:].sum())] if n < 10 else []))
               for i, n in enumerate(lengths.tolist())]
    assert r["k90_steps"] == float(torch.tensor(by_hand, dtype=torch.float).quantile(0.5))


def test_records_flag_padding_rows_against_a_baseline():
    net = _gru()
    x, lengths = torch.randn(2, 10, 1), torch.tensor([10, 4])
    exp = net.explain(x, lengths=lengths, baseline="mean")
    rows = exp.to_records(target=exp.targets())
    assert list(rows[0]) == ["sample", "class", "layer", "direction", "step", "padding", "contribution"]
    assert {(r["sample"], r["step"]) for r in rows if r["padding"]} == {(1, s) for s in range(4, 10)}
    assert any(r["padding"] and r["contribution"] != 0.0 for r in rows)  # the -W baseline constant, flagged
    t = exp.targets()
    for i in range(2):  # still every row: they sum to the logit
        total = sum(r["contribution"] for r in rows if r["sample"] == i) + float(exp.bias[t[i]])
        assert total == pytest.approx(float(exp.logits[i, t[i]]), abs=1e-5)
    # against zero, padding adds exactly 0: no column, as before
    assert "padding" not in net.explain(x, lengths=lengths).to_records()[0]


def test_the_docstrings_say_what_padding_adds_and_the_padding_column():
    """The class docstring said "Padded steps contribute exactly zero", false against a baseline, and to_records'
    did not name its padding column: both say what a hand-made explanation shows."""
    exp = _hand([[1.0], [2.0], [0.0], [0.0]], [2], baseline=0.5)  # steps 2-3 padded: each adds 0 - 0.5
    assert exp.steps_for_class().tolist() == [[0.5, 1.5, -0.5, -0.5]]
    doc = " ".join(RNNExplanation.__doc__.split())
    assert "contribute exactly zero" not in doc and "``-W baseline`` against a baseline" in doc
    assert "k90 counts them as one item" in doc
    rows = exp.to_records()
    assert list(rows[0]) == ["sample", "class", "layer", "direction", "step", "padding", "contribution"]
    assert [r["padding"] for r in rows] == [False, False, True, True]
    rec = " ".join(RNNExplanation.to_records.__doc__.split())
    assert "``padding`` (True past the series' end) before ``contribution``" in rec
    zero = _hand([[1.0], [2.0], [0.0], [0.0]], [2], baseline=0.0)  # against zero codes: exactly 0
    assert zero.steps_for_class().tolist() == [[1.0, 2.0, 0.0, 0.0]]
