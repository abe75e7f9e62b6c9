"""Explanation.predicted of a NaN decision and look-alike class names in the tables (probe s24, items 1 and 2).

``predicted`` was ``logits.argmax(1)`` even where a sample's logits hold NaN: argmax reads NaN as the largest value, so
the sample was named the class of its first NaN logit, as if that class had won (reports, titles, accuracies read it).
``to_records(class_names=...)`` took names that read alike once written (``1`` and ``'1'``, ``' a'`` and ``'a'``).

Hand-built explanations with known answers: codes ``[[1, 2], [3, 4], ...]`` against weight ``[[1, 0], [0, 1]]``.
"""

import pytest
import torch

from neuroview.core.explanation import CNNExplanation, Explanation, RNNExplanation

NAN = float("nan")


def _exp(logits) -> Explanation:
    logits = torch.tensor(logits)
    codes = torch.arange(1.0, 1.0 + 2 * len(logits)).reshape(-1, 2)
    return Explanation(logits=logits, bias=torch.zeros(2), codes=codes, weight=torch.eye(2))


def _cnn() -> CNNExplanation:
    codes = torch.tensor([[1.0, 2.0], [4.0, 3.0]])
    return CNNExplanation(logits=codes.clone(), bias=torch.zeros(2), codes=codes, weight=torch.eye(2),
                          units=[("a", 0), ("a", 1)], site_slices={"a": slice(0, 2)})


def _rnn() -> RNNExplanation:
    codes = torch.tensor([1.0, 2.0]).reshape(1, 1, 1, 2, 1)  # [B, L, D, T, H]: steps 1.0 and 2.0
    weight = torch.tensor([[1.0, 1.0], [2.0, -1.0]]).reshape(2, 1, 1, 2, 1)
    return RNNExplanation(logits=torch.tensor([[3.0, 0.0]]), bias=torch.zeros(2), codes=codes, weight=weight)


# ------------------------------------------------------------------ item 1: a NaN decision names no class
def test_predicted_of_finite_logits_is_the_largest_logit():
    assert _exp([[1.0, 2.0], [3.0, -1.0]]).predicted.tolist() == [1, 0]  # by hand


def test_predicted_refuses_samples_with_nan_logits_naming_them():
    exp = _exp([[1.0, 2.0], [NAN, 0.0], [3.0, 1.0], [0.0, NAN]])
    assert exp.logits.argmax(1).tolist()[1] == 0  # torch's reading: the NaN's class, as if it had won
    with pytest.raises(ValueError, match=r"^logits: samples \[1, 3\] \(2 of 4\) have NaN logits \(sample 1's logit of "
                                         r"class 0 is nan; sample 3's logit of class 1 is nan\): a non-finite decision "
                                         r"names no class.*torch\.isfinite.*exp\.logits\.argmax\(1\)"):
        exp.predicted


def _overflowed() -> Explanation:
    """Sample 1's first code overflowed to inf: its logits are ``[inf * 1 + 4 * 0, inf * 0 + 4] = [inf, nan]``."""
    codes, w = torch.tensor([[1.0, 2.0], [float("inf"), 4.0]]), torch.eye(2)
    return Explanation(logits=codes @ w.T, bias=torch.zeros(2), codes=codes, weight=w)


def test_an_overflowed_sample_is_named_and_the_rest_of_its_batch_still_explained():
    exp = _overflowed()
    assert exp.logits[1, 0] == float("inf") and torch.isnan(exp.logits[1, 1])  # the known answer
    with pytest.raises(ValueError, match=r"^logits: sample 1 \(1 of 2\) has NaN logits \(sample 1's logit of class 1 "
                                         r"is nan\).*exp\.logits\.argmax\(1\)"):
        exp.predicted
    # the explained class keeps argmax's reading (explain() stores it): its contributions carry the NaN, refused
    assert exp.targets().tolist() == [1, 1] and torch.isnan(exp.for_class()[1]).any()
    with pytest.raises(ValueError, match=r"NaN or Inf"):
        exp.k90()
    assert exp.for_class(0)[0].tolist() == [1.0, 0.0] and exp.residual(0)[0] == 0  # sample 0: exact, as before


def test_a_class_named_by_the_user_is_still_explained_beside_a_nan_decision():
    exp = _exp([[1.0, 2.0], [NAN, 0.0]])
    assert exp.for_class(1).tolist() == [[0.0, 2.0], [0.0, 4.0]]  # codes [[1, 2], [3, 4]] times W[1] = [0, 1]
    assert [r["contribution"] for r in exp.to_records(target=1)] == [0.0, 2.0, 0.0, 4.0]
    assert len(exp.to_records()) == 2 * 2 * 2  # every class's rows: no predicted class read
    stored = Explanation(logits=exp.logits, bias=exp.bias, codes=exp.codes, weight=exp.weight,
                         target=torch.tensor([0, 1]))  # the classes explain() was asked for
    assert stored.targets().tolist() == [0, 1]


# ------------------------------------------------------------------ item 2: names that read alike in a table
@pytest.mark.parametrize("make", [_exp.__name__, "_cnn", "_rnn"])
@pytest.mark.parametrize("names, shown", [
    ([1, "1"], r"1 at 0 and '1' at 1 read '1'"),
    ([" a", "a"], r"' a' at 0 and 'a' at 1 read 'a'"),
    (["a\t", "a"], r"'a\\t' at 0 and 'a' at 1 read 'a'"),
    (["b", "b"], r"'b' at 0 and 'b' at 1 read 'b'"),
])
def test_class_names_that_read_alike_are_refused_by_every_to_records(make, names, shown):
    exp = {"_exp": lambda: _exp([[1.0, 2.0], [3.0, 4.0]]), "_cnn": _cnn, "_rnn": _rnn}[make]()
    with pytest.raises(ValueError, match=r"^class_names: expected names that differ once written \(str\(\), "
                                         r"surrounding spaces stripped\), got " + shown):
        exp.to_records(class_names=names)
    with pytest.raises(ValueError, match=r"^class_names: .*" + shown):
        exp.to_records(class_names=names, target=0)


def test_every_clash_is_named_with_its_positions():
    exp = Explanation(logits=torch.zeros(1, 5), bias=torch.zeros(5), codes=torch.ones(1, 1), weight=torch.ones(5, 1))
    with pytest.raises(ValueError, match=r"got 'x' at 0, ' x' at 2 and 'x ' at 4 read 'x'; 1 at 1 and '1' at 3 read '1'"):
        exp.to_records(class_names=["x", 1, " x", "1", "x "])


def test_distinct_names_are_kept_as_given():
    rows = _cnn().to_records(class_names=[" cat", "dog"])
    assert sorted({r["class"] for r in rows}) == [" cat", "dog"]  # written as given, only compared stripped
    with pytest.raises(ValueError, match=r"class_names: expected 2 names \(one per class\), got 3"):
        _cnn().to_records(class_names=["a", "a", "b"])  # the count first, as before
