"""Review T9 of 6dd625d: a numerical floor at 0 (a squared distance a hair below 0 by rounding) is no activation,
nor is ``F.relu`` of values of one sign; the check's probes leave a module's tensor, list and dict state as they were;
an unknown activation on a vector per sample is judged by the layers before the head, not by the object it returns.
Every expected answer is fixed by hand: the values below are written out, the networks are tiny Sequentials."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import neuroview as nv
from neuroview.core import unseen
from neuroview.core.unseen import activation_call


def _caught(fn):
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        out = fn()
    return out, got


def _functional(got):
    return [str(w.message) for w in got if "activation functions outside" in str(w.message)]


def _cut(got):
    return [str(w.message) for w in got if "nonlinear function of its own input value" in str(w.message)]


# ------------------------------------------------------------------ T9 #1, #5: floors against rounding
DIST = torch.tensor([[19.7, 3.0, -1.9e-6, 0.5], [0.0, 7.25, 1.5, 2.0]])  # a squared distance: one value rounded below 0
PRE = torch.tensor([[-1.0, 2.0, -0.5, 0.3], [0.7, -1.2, 0.1, -0.2]])  # a pre-activation: half its values below 0

CALLS = {"clamp": ("clamp", lambda t: ((t,), {"min": 0}), "clamp(min=0)"),
         "clip": ("clip", lambda t: ((t, 0), {}), "clip(min=0)"),
         "maximum": ("maximum", lambda t: ((t, torch.zeros_like(t)), {}), "maximum(x, 0)"),
         "relu": ("relu", lambda t: ((t,), {}), "relu")}


@pytest.mark.parametrize("form", list(CALLS))
def test_a_floor_of_values_below_0_by_rounding_only_is_not_named_and_one_of_a_pre_activation_is(form):
    op, args, said = CALLS[form]
    assert activation_call(op, *args(DIST)) == ""
    assert activation_call(op, *args(PRE)) == said
    low = DIST.to(torch.bfloat16) - 0.02 * 19.7  # bf16: -1.5% of the largest value is within 4 of its ulps there
    assert activation_call(op, *args(low.clamp(min=-0.3))) == ""
    assert activation_call(op, *args(PRE.to(torch.bfloat16))) == said


def test_an_in_place_floor_is_judged_on_its_input_where_the_caller_kept_it():
    var = torch.tensor([0.0, 0.0, 2.5, 1.0])  # a dead channel's variance: exact zeros, nothing below 0
    assert activation_call("clamp_", (var.clone().clamp_(min=0),), {"min": 0}, before=var) == ""
    assert activation_call("clamp_", (PRE.clone().clamp_(min=0),), {"min": 0}, before=PRE) == "clamp(min=0)"
    assert activation_call("relu_", (PRE.clone().relu_(),), {}, before=PRE) == "relu"
    assert activation_call("relu_", (DIST.clone().relu_(),), {}, before=DIST) == ""


class Proto(nn.Module):
    """ProtoPNet's distance to prototypes, floored before its sqrt: a prototype's distance to itself is 0 up to
    rounding (the batch's features are stacked with the prototypes)."""

    def __init__(self, floor):
        super().__init__()
        self.floor = floor
        self.c1, self.r1 = nn.Conv2d(3, 8, 3, padding=1), nn.ReLU()
        self.protos = nn.Parameter(torch.randn(5, 8))
        self.fc = nn.Linear(5, 3)

    def forward(self, x):
        f = torch.cat([self.r1(self.c1(x)).mean((2, 3)), self.protos], 0)
        d = (f * f).sum(1, keepdim=True) + (self.protos ** 2).sum(1) - 2 * f @ self.protos.T
        return self.fc(self.floor(d).sqrt()[: x.shape[0]])


@pytest.mark.parametrize("floor", [lambda d: d.clamp(min=0), lambda d: torch.maximum(d, torch.zeros_like(d)), F.relu,
                                   torch.relu], ids=["clamp", "maximum", "F.relu", "torch.relu"])
def test_a_distance_floored_against_rounding_is_not_named(floor):
    torch.manual_seed(0)
    _, got = _caught(lambda: nv.wrap(Proto(floor), 3, example_input=torch.randn(4, 3, 8, 8)))
    assert not _functional(got)


def test_f_relu_of_a_pre_activation_is_still_named():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.r1, self.c2, self.fc = nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.Linear(4, 3)

        def forward(self, x):
            return self.fc(F.relu(self.c2(self.r1(self.c1(x)))).mean((2, 3)))

    torch.manual_seed(0)
    _, got = _caught(lambda: nv.wrap(Net(), 3, example_input=torch.randn(4, 1, 8, 8)))
    (msg,) = _functional(got)
    assert "relu() in the backbone's own forward" in msg


# ------------------------------------------------------------------ T9 #3: the probes keep no trace
class Snake(nn.Module):
    def forward(self, x):
        return x + torch.sin(x) ** 2


class Observed(Snake):  # a calibration observer: a running max kept as a plain tensor, a log, counters
    def __init__(self):
        super().__init__()
        self.amax, self.seen, self.stats = torch.zeros(()), [], {"n": 0}

    def forward(self, x):
        self.amax = torch.maximum(self.amax, x.detach().abs().max())
        self.seen.append(tuple(x.shape))
        self.stats["n"] += 1
        return super().forward(x)


def test_the_check_leaves_tensor_list_and_dict_attributes_as_they_were(monkeypatch):
    def run():
        torch.manual_seed(0)
        bb = nn.Sequential(nn.Conv1d(1, 8, 5), nn.ReLU(), nn.Conv1d(8, 8, 5), Observed(), nn.Conv1d(8, 8, 5),
                           nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(8, 4))
        _, got = _caught(lambda: nv.wrap(bb, 4, example_input=torch.randn(5, 1, 40)))
        o = bb[3]
        return float(o.amax), list(o.seen), dict(o.stats), _cut(got)

    amax, seen, stats, said = run()
    monkeypatch.setattr(unseen, "warn_unseen_modules", lambda net, x: None)
    amax0, seen0, stats0, said0 = run()
    assert said and not said0  # the check ran (it named the observer's Snake)
    assert amax == amax0 and seen == seen0 and stats == stats0


# ------------------------------------------------------------------ T9 #2, #6: an activation on a vector per sample
class Body(nn.Module):  # the same Sequential with an op after it that returns a new object of the same values
    def __init__(self, body, after):
        super().__init__()
        self.body, self.after = body, after

    def forward(self, x):
        return self.after(self.body(x))


def _vector(conv: bool):
    mid = [nn.Conv1d(8, 8, 5)] if conv else []
    return nn.Sequential(nn.Conv1d(1, 8, 5), nn.ReLU(), *mid, nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(8, 16),
                         Snake())


AFTER = {"none": lambda y: y, "squeeze": lambda y: y[:, None].squeeze(1), "scale": lambda y: 2 * y}


@pytest.mark.parametrize("after", list(AFTER))
def test_an_output_activation_is_named_by_the_layers_before_the_head_whatever_follows_it(after):
    torch.manual_seed(0)
    _, got = _caught(lambda: nv.wrap(Body(_vector(True), AFTER[after]), 4, example_input=torch.randn(5, 1, 40)))
    (msg,) = _cut(got)  # the conv between the last ReLU and the pooling is cut, and the head after it
    assert "['backbone.body.2', 'backbone.body.5']" in msg
    torch.manual_seed(0)
    _, got = _caught(lambda: nv.wrap(Body(_vector(False), AFTER[after]), 4, example_input=torch.randn(5, 1, 40)))
    assert not _cut(got)  # only the head runs before it


# ------------------------------------------------------------------ T9 #4: max(x, a * x) in half precision
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64])
def test_a_leaky_relu_written_as_a_maximum_is_named_in_every_float_dtype(dtype):
    z = PRE.to(dtype) * 3.7
    assert activation_call("maximum", (z, 0.2 * z), {}) == "maximum(x, a * x)"  # 0.2 * z is rounded to the dtype
    assert activation_call("maximum", (z, z.abs() * 0.2), {}) == ""  # not a * z: no LeakyReLU
