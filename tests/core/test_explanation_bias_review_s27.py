"""Review R7 of 2d9db8d (explanation baseline bias). Finding 1: each ``explain(x)`` without a baseline kept its bias
and its record alive for good (the record held the bias itself, so the weakref that drops it never fired). Finding 3:
a pickled or deep-copied RNN explanation recorded nothing, so ``replace(baseline=None)`` kept ``b + W m``, off its
logits by ``W m``. Finding 2: a baseline cost one more head-sized product and a host sync per ``explain``."""

import copy
import dataclasses
import gc
import pickle
import weakref

import torch
from torch import nn

import neuroview as nv
from neuroview.core import explanation_bias
from neuroview.core.explanation import CNNExplanation


def _cnn():
    torch.manual_seed(0)
    net = nv.wrap(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.Conv1d(4, 6, 3), nn.ReLU()), num_classes=3)
    x = torch.randn(4, 1, 16)
    net.train()
    net(x)
    return net.eval(), x


def _dead_after_drop(make) -> bool:
    e = make()
    r = weakref.ref(e.bias)
    del e
    gc.collect()
    return r() is None


def test_five_hundred_dropped_explanations_leave_no_record_nor_bias():
    net, x = _cnn()
    e = net.explain(x)
    gc.collect()
    before = len(explanation_bias._PAIRED)
    for _ in range(500):  # as explain(x) builds them (settle, no baseline), without the network's time
        CNNExplanation(logits=e.logits.clone(), bias=e.bias.clone(), codes=e.codes, weight=e.weight, units=e.units,
                       site_slices=e.site_slices)
    for _ in range(20):
        net.explain(x)
    gc.collect()
    assert len(explanation_bias._PAIRED) - before == 0
    assert _dead_after_drop(lambda: net.explain(x))
    assert _dead_after_drop(lambda: net.explain(x, baseline="mean"))


def test_a_copy_moved_to_no_baseline_or_assigned_none_is_freed_with_its_explanation():
    net, x = _cnn()
    # settle's moved branch: the copy's bias is the original's head b, freed with both
    assert _dead_after_drop(lambda: dataclasses.replace(net.explain(x, baseline="mean"), baseline=None))

    def assigned():
        c = net.explain(x, baseline="mean")
        c.baseline = None  # explanation_bias.assigned: the head's b becomes the bias
        return c
    assert _dead_after_drop(assigned)
    e = net.explain(x, baseline="mean")
    gc.collect()
    before = len(explanation_bias._PAIRED)
    for _ in range(20):
        dataclasses.replace(e, baseline=None)
        assigned()
    gc.collect()
    assert len(explanation_bias._PAIRED) - before <= 1  # e's head b, recorded by its copies while e lives


def test_a_freed_bias_s_record_still_gives_the_head_s_b():
    net, x = _cnn()
    e = net.explain(x)  # its own record: the bias is the head's b
    m = torch.full(e.codes.shape[1:], 0.5)
    r = dataclasses.replace(e, baseline=m)
    want = e.bias + e.weight.flatten(1) @ m.flatten()  # b + W m, computed here
    torch.testing.assert_close(r.bias, want, rtol=0, atol=1e-6)
    back = dataclasses.replace(r, baseline=None)
    torch.testing.assert_close(back.bias, e.bias, rtol=0, atol=1e-6)


def _rnn_mean():
    torch.manual_seed(0)
    rnn = nv.wrap(nn.GRU(1, 4, batch_first=True), num_classes=3, max_len=10)
    s = torch.randn(6, 10, 1)
    rnn.train()
    rnn(s)
    rnn.eval()
    return rnn.explain(s, baseline="mean")


def test_a_pickled_or_deep_copied_rnn_explanation_given_no_baseline_sums_to_its_logits():
    e = _rnn_mean()
    assert e.baseline is not None and e.baseline.abs().max() > 0
    for how, c in (("pickle", pickle.loads(pickle.dumps(e))), ("deepcopy", copy.deepcopy(e))):
        r = dataclasses.replace(c, baseline=None)
        # against zero codes: logits = codes W + b, every class, summed here from the codes and the weight
        sums = torch.einsum("bf,cf->bc", r.codes.flatten(1), r.weight.flatten(1)) + r.bias
        assert (sums - r.logits).abs().max() < 1e-5, how
        head = e.bias - e.weight.flatten(1) @ e.baseline.flatten()  # b = (b + W m) - W m
        torch.testing.assert_close(r.bias, head, rtol=0, atol=1e-5)

