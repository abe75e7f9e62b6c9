"""The optimizer probe: onecycle cycled the momentum the user set (even 0) and Adam's beta1, an infinite rate or
penalty trained to NaN weights without an error, a string option failed in a bare comparison, and a warm-up under one
step was truncated to none."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from pytorch_lightning.utilities.parsing import AttributeDict

from neuroview.training.module import NeuroViewModule
from neuroview.training.schedules import make_scheduler

TINY = {"widths": [4]}


def _module(**kw):
    return NeuroViewModule("nv_small_cnn", num_classes=3, in_channels=1, model_kwargs=TINY, **kw)


@pytest.mark.parametrize("name", ["lr", "classifier_lr", "weight_decay", "classifier_weight_decay", "l1_classifier",
                                  "group_l1_classifier", "warmup_epochs"])
@pytest.mark.parametrize("bad", [math.inf, "0.1", float("nan")])
def test_a_numeric_option_that_is_no_finite_number_is_refused_by_name(name, bad):
    with pytest.raises(ValueError, match=rf"{name}: expected a finite number in .*, got {bad!r}".replace("(", r"\(")):
        _module(**{name: bad})


@pytest.mark.parametrize("name,bad", [("momentum", 1.0), ("momentum", None), ("lr", None), ("label_smoothing", None),
                                      ("label_smoothing", 1.0), ("lr", 0.0), ("plateau_patience", -1)])
def test_out_of_range_options_are_refused_by_name(name, bad):
    with pytest.raises(ValueError, match=rf"^{name}: expected a finite number in "):
        _module(optimizer="sgd", **{name: bad})


def test_numbers_of_every_kind_pass():
    from decimal import Decimal

    _module(lr=np.float32(1e-3), momentum=0, classifier_lr=None, classifier_weight_decay=None, warmup_epochs=np.int64(1))
    _module(lr=torch.tensor(1e-3), l1_classifier=np.array(0.0), weight_decay=Decimal("0.0001"))  # 0-d, as before
    _module(momentum=None)  # AdamW reads no momentum: it is not checked there


def _trainer(steps):
    return SimpleNamespace(estimated_stepping_batches=steps, max_epochs=1, max_steps=steps, limit_train_batches=1.0,
                           accumulate_grad_batches=1, num_training_batches=steps, check_val_every_n_epoch=1)


def _steps(opt, sched, n):
    out = []
    for _ in range(n):
        g = opt.param_groups[0]
        out.append((g["lr"], g.get("momentum", g.get("betas", (None,))[0])))
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize("kind,momentum", [("sgd", 0.0), ("sgd", 0.5), ("adamw", None)])
def test_onecycle_cycles_the_rate_only(kind, momentum):
    w = torch.nn.Parameter(torch.zeros(2))
    opt = (torch.optim.SGD([w], lr=0.1, momentum=momentum) if kind == "sgd" else torch.optim.AdamW([w], lr=0.1))
    hp = AttributeDict(scheduler="onecycle", warmup_epochs=0.0)
    sched = make_scheduler(opt, hp, _trainer(10))["scheduler"]
    seen = _steps(opt, sched, 10)
    assert len({round(lr, 6) for lr, _ in seen}) > 3  # the rate cycles
    want = momentum if kind == "sgd" else 0.9
    assert all(m == want for _, m in seen), seen


def test_a_warm_up_under_one_step_is_one_step(monkeypatch):
    import neuroview.training.schedules as schedules

    monkeypatch.setattr(schedules, "steps_per_epoch", lambda trainer: 5)
    w = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([w], lr=1.0)
    hp = AttributeDict(scheduler="cosine", warmup_epochs=0.1)
    sched = make_scheduler(opt, hp, _trainer(20))["scheduler"]
    assert opt.param_groups[0]["lr"] < 1.0  # the first step warms up (0.1 epochs of 5 steps: truncated to none)
