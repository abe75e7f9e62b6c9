"""Contributions and time importance given to an explanation (set, or passed beside codes and weight) survive
``save``/``load`` as they survive pickle, and ``dataclasses.replace`` forms a derived explanation's contributions
from its own codes and weight, never from the old ones (probe s20 P1, findings 1 and 2).

Hand-built explanations with known answers: codes ``[[1, 2], [3, 4]]`` against weight ``[[1, 0], [0, 1], [1, 1]]``.
"""

import dataclasses
import json
import pickle

import pytest
import torch

from neuroview.core.explanation import CNNExplanation, Explanation, RNNExplanation

CODES = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
W = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
BIAS = torch.tensor([0.5, -0.5, 0.0])
LOGITS = torch.tensor([[1.5, 1.5, 3.0], [3.5, 3.5, 7.0]])  # codes @ W.T + bias, by hand
UNITS, SLICES = [("a", 0), ("a", 1)], {"a": slice(0, 2)}


def _cnn(**kw) -> CNNExplanation:
    return CNNExplanation(logits=LOGITS, bias=BIAS, codes=CODES, weight=W, target=torch.tensor([2, 0]),
                          units=UNITS, site_slices=SLICES, **kw)


def _rnn(**kw) -> RNNExplanation:
    # codes [B=1, L=1, D=1, T=2, H=1]: steps 1.0 and 2.0; weight [C=2, 1, 1, 2, 1]
    codes, weight = torch.tensor([1.0, 2.0]).reshape(1, 1, 1, 2, 1), torch.tensor([[1.0, 1.0], [2.0, -1.0]]).reshape(2, 1, 1, 2, 1)
    return RNNExplanation(logits=torch.tensor([[3.0, 0.0]]), bias=torch.zeros(2), codes=codes, weight=weight, **kw)


# ------------------------------------------------------------------ finding 1: save keeps what was given
def test_set_contributions_survive_save_and_load_as_they_survive_pickle(tmp_path):
    exp = _cnn()
    edited = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [0.0, 2.0]], [[3.0, 0.0], [0.0, 4.0], [0.0, 4.0]]])  # unit 0 of class 2 ablated
    exp.contributions = edited
    want_residual = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 3.0]])  # logits - (bias + sums), by hand
    torch.testing.assert_close(exp.residual(), want_residual)
    exp.save(tmp_path / "e")
    back = Explanation.load(tmp_path / "e")
    assert torch.equal(back.contributions, edited)
    assert torch.equal(pickle.loads(pickle.dumps(exp)).contributions, edited)
    torch.testing.assert_close(back.residual(), want_residual)
    assert torch.equal(back.for_class(), torch.tensor([[0.0, 2.0], [3.0, 0.0]]))  # classes 2 and 0 of `edited`
    assert torch.equal(back.codes, CODES) and torch.equal(back.weight, W)


def test_contributions_passed_beside_codes_and_weight_survive_save_and_load(tmp_path):
    given = torch.zeros(2, 3, 2)
    exp = _cnn(contributions=given)
    exp.save(tmp_path / "c")
    assert "contributions" in json.loads((tmp_path / "c.json").read_text())["tensors"]
    back = Explanation.load(tmp_path / "c")
    assert torch.equal(back.contributions, given)
    torch.testing.assert_close(back.residual(), LOGITS - BIAS)


def test_formed_contributions_are_still_left_out_of_the_file(tmp_path):
    _cnn().save(tmp_path / "f")
    assert "contributions" not in json.loads((tmp_path / "f.json").read_text())["tensors"]
    back = Explanation.load(tmp_path / "f")
    assert back._contributions is None
    torch.testing.assert_close(back.contributions, CODES[:, None] * W[None])


def test_set_time_importance_survives_save_and_load(tmp_path):
    exp = _rnn(window=1, max_len=2)
    torch.testing.assert_close(exp.time_importance, torch.tensor([[[1.0, 2.0], [2.0, -2.0]]]))  # by hand
    edited = torch.tensor([[[1.0, 0.0], [2.0, 0.0]]])
    exp.time_importance = edited
    exp.save(tmp_path / "r")
    back = Explanation.load(tmp_path / "r")
    assert torch.equal(back.time_importance, edited)
    assert torch.equal(back.steps_for_class(1), torch.tensor([[2.0, 0.0]]))


# ------------------------------------------------------------------ finding 2: dataclasses.replace
def test_replace_under_another_head_forms_its_contributions_from_the_new_weight():
    exp = _cnn()
    _ = exp.contributions  # read once: the formed tensor is no given one
    w2, b2 = W * 0.5, BIAS + 1.0
    r = dataclasses.replace(exp, weight=w2, bias=b2, logits=CODES @ w2.T + b2)
    assert r._contributions is None
    want = torch.tensor([[0.5, 1.0], [1.5, 0.0]])  # codes * w2[target], target [2, 0], by hand
    torch.testing.assert_close(r.for_class(), want)
    torch.testing.assert_close(r.contributions, CODES[:, None] * w2[None])
    assert r.residual().abs().max() < 1e-6 and r.residual(1).abs().max() < 1e-6


def test_replace_with_the_first_sample_gives_that_sample_explained():
    exp = _cnn()
    s = dataclasses.replace(exp, logits=LOGITS[:1], codes=CODES[:1], target=exp.target[:1])
    assert s.residual().shape == (1,) and s.residual().abs().max() < 1e-6
    assert torch.equal(s.for_class(), torch.tensor([[1.0, 2.0]]))
    assert s.contributions.shape == (1, 3, 2)


def test_replace_of_an_rnn_explanation_forms_time_importance_from_the_new_weight():
    exp = _rnn()
    _ = exp.time_importance
    r = dataclasses.replace(exp, weight=exp.weight / 2)
    assert r._time_importance is None
    torch.testing.assert_close(r.time_importance, torch.tensor([[[0.5, 1.0], [1.0, -1.0]]]))


def test_replace_carries_contributions_that_were_given_and_names_a_shape_that_no_longer_fits():
    given = torch.zeros(2, 3, 2)
    exp = _cnn(contributions=given)
    assert torch.equal(dataclasses.replace(exp, target=torch.tensor([0, 1])).contributions, given)
    with pytest.raises(ValueError, match=r"contributions: .*\[2, 3, \.\.\.\].*\[1, 3\]"):
        dataclasses.replace(exp, logits=LOGITS[:1], codes=CODES[:1], target=exp.target[:1])
    mine = torch.ones(1, 3, 2)  # as the message says: given for the new samples too
    s = dataclasses.replace(exp, logits=LOGITS[:1], codes=CODES[:1], target=exp.target[:1], contributions=mine)
    assert torch.equal(s.contributions, mine) and torch.equal(s.for_class(), torch.ones(1, 2))
    assert torch.equal(dataclasses.replace(exp, contributions=None).contributions, CODES[:, None] * W[None])


def test_the_public_keywords_and_positions_still_build_explanations():
    c = torch.ones(1, 2, 2)
    e = Explanation(torch.tensor([[2.0, 2.0]]), torch.zeros(2), c)  # contributions third, positionally
    assert torch.equal(e.contributions, c) and e.residual().abs().max() == 0
    assert torch.equal(CNNExplanation(logits=torch.tensor([[2.0, 2.0]]), bias=torch.zeros(2), contributions=c,
                                      units=UNITS, site_slices=SLICES).contributions, c)
    ti = torch.ones(1, 2, 2)
    assert torch.equal(_rnn(time_importance=ti).time_importance, ti)
    with pytest.raises(TypeError, match="contributions"):
        Explanation(torch.tensor([[2.0, 2.0]]), torch.zeros(2), c, contributions=c)


# ------------------------------------------------------------------ review R5 s20, finding 2: a user's dataclass subclass
@dataclasses.dataclass(repr=False, eq=False)
class TaggedExplanationS20(CNNExplanation):
    tag: str = ""


@dataclasses.dataclass(repr=False, eq=False)
class StampedRNNExplanationS20(RNNExplanation):
    stamp: int = 0


def test_a_users_dataclass_subclass_takes_contributions_and_its_files_load(tmp_path):
    given = torch.zeros(2, 3, 2)
    e = TaggedExplanationS20(logits=LOGITS, bias=BIAS, contributions=given, codes=CODES, weight=W, tag="mine",
                             units=UNITS, site_slices=SLICES)
    assert torch.equal(e.contributions, given) and e.tag == "mine"
    plain = TaggedExplanationS20(logits=LOGITS, bias=BIAS, codes=CODES, weight=W, target=torch.tensor([2, 0]),
                                 units=UNITS, site_slices=SLICES)
    plain.save(tmp_path / "plain")
    back = Explanation.load(tmp_path / "plain")
    assert type(back) is TaggedExplanationS20
    assert torch.equal(back.for_class(), torch.tensor([[1.0, 2.0], [3.0, 0.0]]))  # codes * W[[2, 0]], by hand
    e.save(tmp_path / "given")
    assert torch.equal(Explanation.load(tmp_path / "given").contributions, given)
    ti = torch.tensor([[[5.0, 0.0], [0.0, 5.0]]])
    r = _rnn()
    s = StampedRNNExplanationS20(logits=r.logits, bias=r.bias, codes=r.codes, weight=r.weight, time_importance=ti,
                                 stamp=3)
    s.save(tmp_path / "rnn")
    back = Explanation.load(tmp_path / "rnn")
    assert type(back) is StampedRNNExplanationS20 and torch.equal(back.time_importance, ti)


def test_the_private_field_names_stay_out_of_errors_and_patterns():
    c = torch.ones(1, 2, 2)
    with pytest.raises(TypeError, match="multiple values for argument 'contributions'") as info:
        Explanation(torch.tensor([[2.0, 2.0]]), torch.zeros(2), c, contributions=c)
    assert "_contributions" not in str(info.value)
    with pytest.raises(TypeError) as info:
        TaggedExplanationS20(torch.tensor([[2.0, 2.0]]), torch.zeros(2), c, contributions=c)
    assert "_contributions" not in str(info.value)
    match _cnn():
        case CNNExplanation(_, _, contributions, _):
            torch.testing.assert_close(contributions, CODES[:, None] * W[None])  # formed, by the public name
        case _:
            pytest.fail("a CNNExplanation did not match its own positional pattern")
    assert "_contributions" not in CNNExplanation.__match_args__
    assert "_time_importance" not in RNNExplanation.__match_args__


# ------------------------------------------------------------------ finding 3: the shape is checked at the setters
def test_setting_contributions_or_time_importance_of_another_shape_is_refused_by_name():
    exp = _cnn()
    one = r"^contributions: the ones set are for \[1, 3, \.\.\.\] .*shape \[1, 3, 3\]\), the logits \[2, 3\]"
    with pytest.raises(ValueError, match=one):
        exp.contributions = torch.zeros(2, 3, 3)[:1]  # [1, 3, 3]: one sample of two
    with pytest.raises(ValueError, match=r"^contributions: "):
        exp.contributions = torch.zeros(2, 2, 2)  # two classes of three
    assert exp._contributions is None  # nothing taken
    exp.contributions = torch.ones(2, 3, 2)  # the right shape is taken
    assert torch.equal(exp.for_class(0), torch.ones(2, 2))
    exp.contributions = None  # back to the codes and weight
    assert torch.equal(exp.for_class(0), torch.tensor([[1.0, 0.0], [3.0, 0.0]]))
    r = _rnn()
    with pytest.raises(ValueError, match=r"^time_importance: the ones set are for \[1, 3, \.\.\.\].*the logits \[1, 2\]"):
        r.time_importance = torch.zeros(1, 3, 2)
    torch.testing.assert_close(r.time_importance, torch.tensor([[[1.0, 2.0], [2.0, -2.0]]]))


def test_a_file_with_given_tensors_of_another_shape_is_named_and_not_read(tmp_path):
    from neuroview.core import saving
    tensors = {"logits": LOGITS, "bias": BIAS, "codes": CODES, "weight": W, "contributions": torch.zeros(1, 3, 2)}
    saving.save(tmp_path / "bad", "Explanation", tensors, {"given": ["contributions"]})
    with pytest.raises(ValueError, match=r"bad\.safetensors.*cannot be read.*contributions.*\[1, 3, \.\.\.\]") as info:
        Explanation.load(tmp_path / "bad")
    assert "dataclasses.replace" not in str(info.value)


# ------------------------------------------------------------------ finding 6: given contributions reach the steps
def test_an_rnns_given_contributions_reach_time_importance_steps_and_step_k90():
    exp = _rnn()  # formed per step: class 0 [1, 2], class 1 [2, -2]
    given = (exp.codes[:, None] * exp.weight[None]).clone()
    given[..., 0, :] = 0.0  # step 0 ablated
    exp.contributions = given
    torch.testing.assert_close(exp.time_importance, torch.tensor([[[0.0, 2.0], [0.0, -2.0]]]))
    torch.testing.assert_close(exp.steps_for_class(0), torch.tensor([[0.0, 2.0]]))
    assert exp.k90(0, level="steps") == 1.0  # one step carries it all (formed: 1 and 2, both needed: 2)
    torch.testing.assert_close(exp.layer_magnitudes(), torch.tensor([[[2.0], [2.0]]]))  # formed: 3 and 4
    torch.testing.assert_close(exp.layer_time().sum(2), exp.time_importance)  # [B, C, L, T] over layers


def test_a_cnns_given_contributions_reach_site_magnitudes():
    given = torch.tensor([[[1.0, -1.0], [0.0, 0.0], [2.0, 0.0]], [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]])
    exp = _cnn(contributions=given)
    torch.testing.assert_close(exp.site_magnitudes(), torch.tensor([[[2.0], [0.0], [2.0]], [[0.0], [0.0], [0.0]]]))


# ------------------------------------------------------------------ review R3 s25, finding 5: input_lengths carried
def _rnn_windowed(**kw) -> RNNExplanation:
    # two series read 3 samples a step, max_len 6: of 6 samples (2 steps) and of 2 (1 step, then padding);
    # codes [B=2, L=1, D=1, T=2, H=1], weight [C=2, 1, 1, 2, 1]; logits = codes . weight, by hand
    codes = torch.tensor([[1.0, 2.0], [3.0, 0.0]]).reshape(2, 1, 1, 2, 1)
    weight = torch.tensor([[1.0, 1.0], [2.0, -1.0]]).reshape(2, 1, 1, 2, 1)
    return RNNExplanation(logits=torch.tensor([[3.0, 0.0], [3.0, 6.0]]), bias=torch.zeros(2), codes=codes,
                          weight=weight, lengths=torch.tensor([2, 1]), window=3, max_len=6, **kw)


def _reads(exp, sample: int) -> list[str]:
    return [r["input_samples"] for r in exp.to_records() if r["sample"] == sample and r["class"] == 0]


def test_replace_with_the_first_sample_of_an_rnn_explanation_with_input_lengths_gives_it_explained():
    exp = _rnn_windowed(input_lengths=torch.tensor([6, 2]))
    assert _reads(exp, 1) == ["0:2", "padding"]
    first = dataclasses.replace(exp, logits=exp.logits[:1], codes=exp.codes[:1], lengths=exp.lengths[:1])
    assert first.input_lengths is None  # carried from two series: dropped, not refused (ERRORS.md: no error)
    assert first.residual().abs().max() == 0 and _reads(first, 0) == ["0:3", "3:6"]
    second = dataclasses.replace(exp, logits=exp.logits[1:], codes=exp.codes[1:], lengths=exp.lengths[1:],
                                 input_lengths=exp.input_lengths[1:])  # given for the new sample: kept
    assert second.input_lengths.tolist() == [2] and _reads(second, 0) == ["0:2", "padding"]
    flipped = dataclasses.replace(exp, logits=exp.logits.flip(0), codes=exp.codes.flip(0), lengths=exp.lengths.flip(0))
    assert flipped.input_lengths is None  # [6, 2] no longer agrees with lengths [1, 2]: dropped too


def test_input_lengths_carried_to_the_same_samples_are_kept_and_given_ones_still_checked():
    exp = _rnn_windowed(input_lengths=torch.tensor([6, 2]))
    assert dataclasses.replace(exp, target=torch.tensor([1, 1])).input_lengths.tolist() == [6, 2]
    import copy
    for twin in (copy.deepcopy(exp), pickle.loads(pickle.dumps(exp))):  # carried from a copy too
        assert dataclasses.replace(twin, logits=twin.logits[:1], codes=twin.codes[:1],
                                   lengths=twin.lengths[:1]).input_lengths is None
    with pytest.raises(ValueError, match=r"^input_lengths: expected an integer tensor of shape \[1\] .*got dtype "
                                         r"torch.int64 and shape \(2,\); .*input_lengths=None"):
        dataclasses.replace(exp, logits=exp.logits[:1], codes=exp.codes[:1], lengths=exp.lengths[:1],
                            input_lengths=torch.tensor([6, 2]))  # given in the call: refused, with the way out
    mine = torch.tensor([6, 2])  # the user's own tensor, given to two explanations: given both times
    _rnn_windowed(input_lengths=mine)
    with pytest.raises(ValueError, match=r"^input_lengths: expected an integer tensor of shape \[1\]"):
        RNNExplanation(logits=exp.logits[:1], bias=exp.bias, codes=exp.codes[:1], weight=exp.weight,
                       lengths=exp.lengths[:1], window=3, max_len=6, input_lengths=mine)


def test_input_lengths_say_nothing_at_window_1_and_are_not_kept():
    codes = torch.tensor([[1.0, 0.0], [1.0, 2.0]]).reshape(2, 1, 1, 2, 1)  # series of 1 and 2 samples (steps)
    exp = RNNExplanation(logits=torch.tensor([[1.0, 1.0], [3.0, 3.0]]), bias=torch.zeros(2), codes=codes,
                         weight=torch.ones(2, 1, 1, 2, 1), lengths=torch.tensor([1, 2]), window=1, max_len=2,
                         input_lengths=torch.tensor([1, 2]))
    assert exp.input_lengths is None  # step t is sample t: lengths say it all
    first = dataclasses.replace(exp, logits=exp.logits[:1], codes=exp.codes[:1], lengths=exp.lengths[:1])
    assert first.input_lengths is None and first.residual().abs().max() == 0
