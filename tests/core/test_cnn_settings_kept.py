"""A NeuroView-CNN's settings are checked wherever they are set and travel with its state dict; a load leaves the
caller's random state as it was (a probe's faults, each failing on the code before it).

- ``net.tau = -1`` (or 0, NaN), ``net.quantizer = "Hard"``, ``net.grad_state = "int4"`` were taken as they came: the
  surrogate gradient's sign flipped, NaN gradients, a bare ZeroDivisionError, soft codes for the typo, the 8-bit path.
- The constructor took ``tau=inf`` (constant codes, no gradient) and ``tau=1e-39`` (NaN codes), and met a str, None
  or a tensor of two values with a bare TypeError / RuntimeError.
- A ``soft`` network's state dict loaded "<All keys matched successfully>" into a ``hard`` one (logits 0.29 off), and a
  head trained on layer ``1`` into a wrap reading layer ``3`` of the same width (every unit mislabelled).
- Loading into a lazily built network (``create_model(..., pretrained=True)``, ``load_state_dict``) drew its head's
  initial weights, replaced at once, from the caller's global generator.
"""

from __future__ import annotations

import copy
import io
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.core.cnn import NeuroViewCNN

X = torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(3))


def _backbone() -> nn.Module:
    torch.manual_seed(5)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU())


def _net(**kw) -> NeuroViewCNN:
    net = nv.wrap(_backbone(), 3, example_input=X, **kw)
    with torch.no_grad():
        net.train()(X)  # running statistics: a function the loads below can tell apart
    return net.eval()


def _saved(net: nn.Module):
    """``net``'s state dict as ``torch.save`` / ``torch.load`` give it back (a Lightning checkpoint holds it so)."""
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


@pytest.mark.parametrize(("name", "value", "message"), [
    ("tau", -1.0, r"tau: expected a positive number, got -1.0"),
    ("tau", 0.0, r"tau: expected a positive number, got 0.0"),
    ("tau", float("nan"), r"tau: expected a positive number, got nan"),
    ("tau", float("inf"), r"tau: expected a positive finite number of at least 1e-06 .*, got inf"),
    ("quantizer", "Hard", r"quantizer: expected one of \('hard', 'soft', 'none'\), got 'Hard'"),
    ("grad_state", "int4", r"grad_state: expected one of \('uint4', 'uint8', 'bf16'\), got 'int4'"),
    ("grad_state", "uint2", r"grad_state: expected one of \('uint4', 'uint8', 'bf16'\), got 'uint2'"),
])
def test_a_setting_set_on_a_built_network_is_checked_as_the_constructor_checks_it(name, value, message):
    net = _net()
    before = getattr(net, name)
    with pytest.raises(ValueError, match=message):
        setattr(net, name, value)
    assert getattr(net, name) == before  # the network keeps the setting it had
    with pytest.raises(ValueError, match=message):  # the constructor's own message
        nv.wrap(_backbone(), 3, **{name: value})


def test_a_temperature_annealed_on_a_built_network_still_changes_its_codes():
    net = _net(quantizer="soft")
    first = net.codes(X)
    for tau in (0.5, np.float32(0.25), torch.tensor(0.125)):  # a schedule's step, a numpy or 0-d tensor value
        net.tau = tau
        assert isinstance(net.tau, float) and net.tau == float(tau)
    assert not torch.allclose(net.codes(X), first)
    net.train()(X).logsumexp(1).sum().backward()  # trains at the annealed temperature
    assert torch.isfinite(net.backbone[0].weight.grad).all()


@pytest.mark.parametrize("tau", [float("inf"), 1e-39, 1e-7, "0.5", None, True, torch.tensor([0.5, 0.6])],
                         ids=["inf", "1e-39", "1e-7", "str", "None", "bool", "tensor2"])
def test_the_constructor_refuses_a_temperature_it_cannot_compute_with(tau):
    with pytest.raises(ValueError, match=r"^tau: expected a positive finite number"):
        nv.wrap(_backbone(), 3, tau=tau)


def test_the_smallest_temperature_taken_gives_finite_codes_and_gradients():
    torch.manual_seed(0)
    net = nv.wrap(nn.Sequential(nn.ReLU(), nn.Flatten(), nn.Linear(8, 3)), 3, quantizer="soft", tau=1e-6,
                  example_input=torch.randn(4, 1, 8)).eval()
    x = torch.randn(2, 1, 8).requires_grad_(True)
    with torch.no_grad():
        x[0, 0, 0] = 0.0  # a pre-activation at the breakpoint: 0 * (1 / tau) was NaN where 1/tau overflowed
    out = net(x)
    assert torch.isfinite(net.codes(x)).all() and torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_a_state_dict_of_a_soft_network_is_refused_by_a_hard_one():
    soft = _net(quantizer="soft", tau=0.5)
    saved = _saved(soft)
    assert saved._metadata[""]["quantizer"] == "soft" and saved._metadata[""]["tau"] == 0.5
    hard = _net()
    kept = copy.deepcopy(hard.state_dict())
    with pytest.raises(RuntimeError, match=r"quantizer: the state dict was saved from a network with quantizer='soft', "
                                           r"the model has quantizer='hard'"):
        hard.load_state_dict(saved)
    for k, v in hard.state_dict().items():  # refused before any tensor was copied
        torch.testing.assert_close(v, kept[k], rtol=0, atol=0)
    outer = nn.ModuleDict({"model": _net()})  # inside a larger module (a LightningModule): through torch's own errors
    # raised by the network itself (nothing copied), named with its path in the larger module
    with pytest.raises(RuntimeError, match=r"Error\(s\) in loading state_dict for NeuroViewCNN:\s+model\.quantizer: .*'soft'"):
        outer.load_state_dict(_saved(nn.ModuleDict({"model": soft})))
    hard.load_state_dict(dict(saved))  # a plain dict of the same tensors says nothing: it loads as before


def test_a_soft_code_s_temperature_is_taken_from_the_state_dict_and_a_hard_code_s_or_the_gradient_state_are_not():
    """A soft code is a function of tau: the load takes the file's (as it takes the head's floor), with a warning, so
    that the loaded network computes what was saved and a run whose tau was annealed resumes where it was."""
    soft = _net(quantizer="soft", tau=0.5)
    other = _net(quantizer="soft")
    with pytest.warns(UserWarning, match=r"tau: the state dict's soft network had tau=0.5, the model 1.0: the load "
                                         r"takes 0.5"):
        other.load_state_dict(_saved(soft))
    assert other.tau == 0.5
    with torch.no_grad():
        torch.testing.assert_close(other(X), soft(X), rtol=0, atol=0)
    # a hard code is the same function at any tau (it shapes only the training gradient, which an annealing run resumed
    # sets anew), and grad_state only how backward stores that gradient: recorded, loaded as the model has them
    hard = _net(tau=0.25, grad_state="uint8")
    saved = _saved(hard)
    assert saved._metadata[""]["grad_state"] == "uint8"
    plain = _net()
    plain.load_state_dict(saved)
    assert (plain.tau, plain.grad_state) == (1.0, "uint4")
    with torch.no_grad():
        torch.testing.assert_close(plain(X), hard(X), rtol=0, atol=0)


def _layer(layers, lazy=False):
    return nv.wrap(_backbone(), 3, layers=layers, **({} if lazy else {"example_input": X}))


def test_a_head_trained_on_other_sites_of_the_same_width_is_refused():
    a = _layer(["1"]).eval()
    saved = _saved(a)
    assert saved._metadata[""]["sites"] == [["1", 4]]
    msg = r"sites: the state dict's head was trained on the sites \[\('1', 4\)\] .*, the model reads \[\('3', 4\)\]"
    with pytest.raises(RuntimeError, match=msg):
        _layer(["3"]).load_state_dict(saved)
    lazy = _layer(["3"], lazy=True)  # its sites are found on its first batch: compared then
    lazy.load_state_dict(saved)
    with pytest.raises(ValueError, match=msg):
        lazy(X)
    assert lazy.sites is None  # nothing found: the same batch fails again, as said
    same = _layer(["1"], lazy=True)
    same.load_state_dict(saved)
    with torch.no_grad():
        torch.testing.assert_close(same.eval()(X), a(X), rtol=0, atol=0)
    older = _layer(["3"])
    older.load_state_dict(dict(saved))  # no record (saved before it was kept): loads as before
    assert older.units[0] == ("3", 0)


def test_a_load_into_a_lazy_network_leaves_the_caller_s_random_state():
    src = nv.create_model("nv_small_cnn", num_classes=3, in_channels=1, widths=(4, 8))
    src(torch.randn(2, 1, 8, 8))
    sd = src.state_dict()
    torch.manual_seed(0)
    clean = torch.rand(1)
    fresh = nv.create_model("nv_small_cnn", num_classes=3, in_channels=1, widths=(4, 8))
    torch.manual_seed(0)
    fresh.load_state_dict(sd)
    assert torch.equal(torch.rand(1), clean)
    torch.manual_seed(0)
    nv.create_model("nv_small_cnn.digits", pretrained=True)
    assert torch.equal(torch.rand(1), clean)


def test_a_head_built_on_the_first_batch_is_still_drawn_from_the_seed():
    # a network trained from a seed: its head's initial weights come from the caller's generator, as before
    heads = []
    for _ in range(2):
        net = nv.wrap(_backbone(), 3)
        torch.manual_seed(7)
        net(X)
        heads.append(net.classifier.weight.detach().clone())
        after = torch.rand(1)
    torch.manual_seed(7)
    assert torch.equal(heads[0], heads[1]) and torch.equal(heads[0], nn.Linear(8, 3).weight.detach())
    assert torch.equal(after, torch.rand(1))  # drawn as nn.Linear(8, 3) draws


def test_a_network_pickled_before_its_settings_were_checked_unpickles():
    net = _net(quantizer="soft", tau=0.5)
    factory, args, state = net.__reduce_ex__(4)[:3]
    state = copy.deepcopy(state)
    for k in ("quantizer", "tau", "grad_state"):  # as a pickle of the earlier class holds them
        state[k] = state.pop("_" + k)
    old = factory(*args)
    old.__setstate__(state)
    assert (old.quantizer, old.tau, old.grad_state) == ("soft", 0.5, "uint4")
    with torch.no_grad():
        torch.testing.assert_close(old(X), net(X), rtol=0, atol=0)


def test_a_refused_load_keeps_the_model_s_tau_and_the_warning_points_at_the_caller():
    """The review: a soft state dict with a stray key was refused by torch, yet left its tau in the model (a refused
    load changes nothing, docs/ERRORS.md), and the warning was attributed to neuroview/core/guards.py."""
    saved = _saved(_net(quantizer="soft", tau=0.5))
    other = _net(quantizer="soft")
    with warnings.catch_warnings(record=True) as record, pytest.raises(RuntimeError, match="stray"):
        warnings.simplefilter("always")
        other.load_state_dict({**saved, "stray.weight": torch.zeros(1)})
    assert other.tau == 1.0 and not [w for w in record if "tau" in str(w.message)]  # nothing taken, nothing said
    with pytest.warns(UserWarning, match="the load takes 0.5") as record:
        other.load_state_dict(saved)
    assert other.tau == 0.5 and record[0].filename == __file__


def test_a_decimal_temperature_is_read_as_a_number():
    """As the module's other numbers (module_args): Decimal("0.5") was refused by the new check."""
    import decimal

    assert _net(quantizer="soft", tau=decimal.Decimal("0.5")).tau == 0.5


def test_a_lazy_network_saved_before_its_first_batch_keeps_the_sites_of_the_file_it_loaded():
    """The review: create_model(..., pretrained=True) networks are lazy; one saved again before a batch dropped the
    sites record, and its state dict loaded into a wrap reading other layers without a word."""
    lazy = _layer(["1"], lazy=True)
    lazy.load_state_dict(_saved(_layer(["1"]).eval()))
    again = _saved(lazy)
    assert again._metadata[""]["sites"] == [["1", 4]]
    with pytest.raises(RuntimeError, match=r"sites: the state dict's head was trained on the sites \[\('1', 4\)\]"):
        _layer(["3"]).load_state_dict(again)


@pytest.mark.parametrize(("kw", "message"), [
    ({"unit_axis": -1}, r"unit_axis: expected a mapping of site name to 1 or -1 .*, got -1"),
    ({"unit_axis": "1"}, r"unit_axis: expected a mapping .*, got '1'"),
    ({"unit_axis": [-1]}, r"unit_axis: expected a mapping .*, got \[-1\]"),
    ({"normalize": "false"}, r"normalize: expected true or false, got 'false'"),
])
def test_arguments_of_the_wrong_kind_are_named(kw, message):
    """unit_axis=-1 met dict()'s bare "'int' object is not iterable"; normalize="false" built a CodeNorm (bool of a
    non-empty string)."""
    with pytest.raises((TypeError, ValueError), match=message):
        nv.wrap(_backbone(), 3, example_input=X, **kw)


def test_numpy_numbers_of_classes_and_flags_are_read_as_what_they_are():
    net = nv.wrap(_backbone(), np.int64(3), example_input=X, normalize=np.False_)
    assert type(net.num_classes) is int and net.num_classes == 3 and net.norm is None


def test_normalize_reads_as_the_data_modules_read_it_in_both_wrappers():
    """The review: 1 and 0 were refused by the CNN (the data modules read them as true and false), and the RNN still
    read normalize="false" as True (a CodeNorm built)."""
    assert nv.wrap(_backbone(), 3, example_input=X, normalize=0).norm is None
    assert nv.wrap(_backbone(), 3, example_input=X, normalize=1).norm is not None
    with pytest.raises(ValueError, match=r"normalize: expected true or false, got 'false'"):
        nv.NeuroViewRNN(nn.GRU(2, 4, batch_first=True), 3, max_len=5, normalize="false")
    rnn = nv.NeuroViewRNN(nn.GRU(2, 4, batch_first=True), np.int64(3), max_len=5)
    assert type(rnn.num_classes) is int
    with pytest.raises(ValueError, match=r"num_classes: expected an int >= 2, got tensor\(3\.\)"):
        nv.NeuroViewRNN(nn.GRU(2, 4, batch_first=True), torch.tensor(3.0), max_len=5)
