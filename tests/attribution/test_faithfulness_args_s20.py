"""The faithfulness tools on inputs probe P7 found misread (s20): a single series or image without its batch axis
(the error blamed y and asked for one label per step or channel), ``samples_of_steps`` given a bad ``window``, ``t``,
``lengths`` or ``scores`` (silently wrong or torch's bare errors), and ``methods=[]`` (empty curves, no word).
Each expected value is worked out here by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.attribution.ablation import step_deletion_curve, unit_deletion_curve
from neuroview.attribution.checks import check_xy
from neuroview.attribution.faithfulness import (
    samples_of_steps, step_scores, time_step_deletion, unit_ablation, unit_scores,
)


def _rnn() -> nv.NeuroViewRNN:
    torch.manual_seed(1)
    return nv.NeuroViewRNN(nn.GRU(3, 4, batch_first=True), 2, max_len=6).eval()


def _cnn() -> nv.NeuroViewCNN:
    torch.manual_seed(0)
    body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
    return nv.NeuroViewCNN(body, 3, input_shape=(3, 8, 8)).eval()


# ------------------------------------------------------------------ 1. x without its batch axis
@pytest.mark.parametrize("call", [
    lambda net, x: step_scores(net, x, torch.tensor([1]), "neuroview"),
    lambda net, x: step_scores(net, x, torch.tensor([1]), "random"),
    lambda net, x: time_step_deletion(net, x, torch.tensor([1]), methods=["random"], seeds=[0]),
    lambda net, x: step_deletion_curve(net, x, torch.tensor([1]), torch.zeros(1, 6, dtype=torch.long)),
])
def test_a_series_without_its_batch_axis_is_named_as_x_not_y(call):
    x = torch.randn(6, 3)  # one series [T=6, F=3]: 6 is not a batch of 6
    with pytest.raises(ValueError, match=r"^x: expected a batch-first tensor \[B, T, F\], got shape \(6, 3\); one "
                                         r"series \[T, F\]: add its batch axis") as e:
        call(_rnn(), x)
    assert "y:" not in str(e.value)


@pytest.mark.parametrize("call", [
    lambda net, x: unit_scores(net, x, torch.tensor([1]), "neuroview"),
    lambda net, x: unit_scores(net, x, torch.tensor([1]), "random"),
    lambda net, x: unit_ablation(net, x, torch.tensor([1]), methods=["neuroview"]),
    lambda net, x: unit_deletion_curve(net, x, torch.tensor([1]), torch.zeros(1, 4, dtype=torch.long)),
])
def test_an_image_without_its_batch_axis_is_named_as_x_with_the_rank_the_network_takes(call):
    x = torch.rand(3, 8, 8)  # one image [C, H, W]: its 3 channels are not 3 samples
    with pytest.raises(ValueError, match=r"^x: expected a tensor of rank 4 \[B, C, D1, D2\] like \(B, 3, 8, 8\), got "
                                         r"shape \(3, 8, 8\); one sample: add its batch axis") as e:
        call(_cnn(), x)
    assert "y:" not in str(e.value)


def test_labels_of_the_wrong_count_still_name_y_and_show_the_shape_of_x():
    # x does hold 4 samples: y is what is wrong, and the message says what dim 0 of x is
    with pytest.raises(ValueError, match=r"^y: expected integer class labels of shape \[4\] \(one per sample along "
                                         r"dim 0 of x, shape \(4, 3, 8, 8\)\), got dtype torch.int64 and shape \(2,\)"):
        unit_scores(_cnn(), torch.rand(4, 3, 8, 8), torch.tensor([0, 1]), "neuroview")
    # check_xy without a rank (a network that has seen no batch yet) shows x's shape, so x can be seen at fault
    with pytest.raises(ValueError, match=r"^y: .* \(one per sample along dim 0 of x, shape \(3, 8, 8\)\)"):
        check_xy(torch.rand(3, 8, 8), torch.tensor([1]))
    with pytest.raises(ValueError, match=r"^x: expected a tensor of rank 4 \[B, C, H, W\], got shape \(3, 8, 8\); one "
                                         r"sample: add its batch axis \(x\[None\]\)"):
        check_xy(torch.rand(3, 8, 8), torch.tensor([1]), rank=4, layout="[B, C, H, W]")
    with pytest.raises(ValueError, match=r"^x: expected a batch of samples along dim 0, got a 0-dim tensor"):
        check_xy(torch.tensor(1.0), torch.tensor([0]))


def test_a_batched_input_still_runs_through_the_new_checks():
    s = step_scores(_rnn(), torch.randn(2, 6, 3), torch.tensor([0, 1]), "random")
    assert s.shape == (2, 6)
    u = unit_scores(_cnn(), torch.rand(2, 3, 8, 8), torch.tensor([0, 2]), "random")
    assert u.shape == (2, 4)


# ------------------------------------------------------------------ 2. samples_of_steps' arguments
SC = torch.tensor([[3.0, 6.0]])  # [B=1, steps=2]


@pytest.mark.parametrize("window", [0, -2, 2.5, True, "3"])
def test_samples_of_steps_refuses_a_window_that_is_not_a_positive_int(window):
    with pytest.raises(ValueError, match=r"^window: expected a positive int, got "):
        samples_of_steps(SC, window, 5)


@pytest.mark.parametrize("t", [0, -1, 7, 10, 2.5, None])
def test_samples_of_steps_refuses_t_outside_the_samples_its_steps_cover(t):
    # 2 steps of 3 samples cover 1..6 samples: t=10 gave 6 columns, t=0 an empty tensor
    with pytest.raises(ValueError, match=r"^t: expected an int in \[1, 6\] \(the samples of the 2 steps of "
                                         r"window 3\), got "):
        samples_of_steps(SC, 3, t)


@pytest.mark.parametrize("lengths, what", [
    (torch.tensor([0]), r"lengths: expected values in \[1, 5\] \(t\), got min 0 and max 0"),
    (torch.tensor([-3]), r"lengths: expected values in \[1, 5\] \(t\), got min -3 and max -3"),
    (torch.tensor([4, 5]), r"lengths: expected an integer tensor of shape \[1\] \(one length per row of scores\), got "
                           r"dtype torch.int64 and shape \(2,\)"),
    (torch.tensor([4.5]), r"lengths: expected whole numbers of samples, got 4.5"),
    ("4", r"lengths: expected an integer tensor of shape \[1\] \(one length per row of scores\), got str"),
])
def test_samples_of_steps_refuses_lengths_of_the_wrong_count_or_range(lengths, what):
    with pytest.raises((ValueError, TypeError), match="^" + what):
        samples_of_steps(SC, 3, 5, lengths=lengths)
    with pytest.raises(ValueError, match=r"^lengths: expected an integer tensor of shape \[3\]"):
        samples_of_steps(torch.ones(3, 2), 3, 5, lengths=torch.tensor([4, 5]))  # was torch's bare size error


@pytest.mark.parametrize("scores, got", [
    ([[3.0, 6.0]], "list"), (torch.tensor([3.0, 6.0]), r"shape \(2,\)"), (torch.ones(1, 2, 1), r"shape \(1, 2, 1\)"),
])
def test_samples_of_steps_refuses_scores_that_are_not_a_b_by_steps_tensor(scores, got):
    with pytest.raises((TypeError, ValueError), match=r"^scores: expected a tensor \[B, steps\] .*got " + got):
        samples_of_steps(scores, 3, 5)


def test_samples_of_steps_keeps_its_promise_at_the_edges_of_t_and_lengths():
    # t = steps * window: every step whole; the real samples of each step sum to it
    assert samples_of_steps(SC, 3, 6).tolist() == [[1.0, 1.0, 1.0, 2.0, 2.0, 2.0]]
    # t = 1: one sample, the whole of step 0 (3.0); step 1 lies past the input
    assert samples_of_steps(SC, 3, 1).tolist() == [[3.0]]
    # lengths 1 and 5 of 5: row 0 has one real sample (3.0, then step 1 past its end), row 1 two in step 1 (6 / 2)
    out = samples_of_steps(torch.tensor([[3.0, 6.0], [3.0, 6.0]]), 3, 5, lengths=[1, 5])
    assert out.shape == (2, 5)
    assert out[0, :1].tolist() == [3.0]
    assert out[1].tolist() == [1.0, 1.0, 1.0, 3.0, 3.0]
    # window 1: the scores themselves, cut at t; numpy-style ints are taken
    assert samples_of_steps(SC, torch.tensor(1), 1).tolist() == [[3.0]]


def test_samples_of_steps_cuts_lengths_above_t_to_t_and_takes_whole_float_lengths():
    # review R5 s20, finding 5: the first t=4 samples of series 9 long (as documented: a step running past the t
    # samples of the input has fewer); step 1 then holds one real sample, its whole score 6.0
    sc = torch.tensor([[3.0, 6.0, 9.0], [3.0, 6.0, 9.0]])
    assert samples_of_steps(sc, 3, 4, lengths=torch.tensor([9, 9])).tolist() == [[1.0, 1.0, 1.0, 6.0]] * 2
    # whole-number floats, as a float tensor of lengths is often kept: 9 and 6 samples; row 1's step 2 is past its end
    out = samples_of_steps(sc, 3, 9, lengths=torch.tensor([9.0, 6.0]))
    assert out[0].tolist() == [1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 3.0, 3.0, 3.0]
    assert out[1, :6].tolist() == [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]


# ------------------------------------------------------------------ 6. methods=[]
@pytest.mark.parametrize("call", [
    lambda: unit_ablation(_cnn(), torch.rand(3, 3, 8, 8), torch.tensor([0, 1, 2]), methods=[]),
    lambda: time_step_deletion(_rnn(), torch.randn(2, 6, 3), torch.tensor([0, 1]), methods=[]),
    lambda: time_step_deletion(_rnn(), torch.randn(2, 6, 3), torch.tensor([0, 1]), methods=()),
])
def test_an_empty_methods_list_is_refused_by_name(call):
    with pytest.raises(ValueError, match=r"^methods: expected at least one name from \('neuroview', .*\), got none; "
                                         r"pass methods=None for all of them"):
        call()


def test_methods_that_are_not_a_list_of_names_are_refused_by_name():
    with pytest.raises(TypeError, match=r"^methods: expected a list of names from \('neuroview', .*\) or None, got int 3"):
        unit_ablation(_cnn(), torch.rand(3, 3, 8, 8), torch.tensor([0, 1, 2]), methods=3)
    # one name as a string and None still work: one curve, then every method that can run
    one = unit_ablation(_cnn(), torch.rand(3, 3, 8, 8), torch.tensor([0, 1, 2]), methods="neuroview", steps=2)
    assert sorted(one.curves) == ["neuroview"]
    every = time_step_deletion(_rnn(), torch.randn(2, 6, 3), torch.tensor([0, 1]), seeds=[0], steps=2)
    assert {"neuroview", "neuroview_global", "random:0", "permutation"} <= set(every.curves)
