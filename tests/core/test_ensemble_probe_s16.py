"""The ensemble probe's findings (/tmp/probes/ensemble): settings set on an ensemble reach its members, a batched pass
follows a changed member list, the tracing refusals survive batched=True, hasattr answers for standard members, and
copies of one network are no members built apart."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

import neuroview as nv
from neuroview.core.ensemble import Ensemble


def _x(b: int = 4) -> torch.Tensor:
    return torch.randn(b, 1, 40, generator=torch.Generator().manual_seed(0))


def _ens(name: str = "nv_lite", k: int = 2, **kw) -> Ensemble:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nv.create_model(name, num_classes=3, in_channels=1, members=k, filters=4, **kw).eval()


def _mean_of_members(ens: Ensemble, x: torch.Tensor) -> torch.Tensor:
    """What the ensemble decides, computed from each member's own forward (no batched pass)."""
    with torch.no_grad():
        return torch.stack([m(x) for m in ens.members]).mean(0)


# ----------------------------------------------------------------------------- 1: settings
def test_tau_set_on_an_ensemble_reaches_every_member_and_moves_its_logits():
    x = _x()
    ens = _ens(quantizer="soft")
    ens(x)
    ref = copy.deepcopy(ens)
    for m in ref.members:  # what the user meant: every member annealed
        m.tau = 0.01
    before = ens(x).detach().clone()
    ens.tau = 0.01
    assert [m.tau for m in ens.members] == [0.01, 0.01]
    assert ens.tau == 0.01
    with torch.no_grad():
        after, want = ens(x), ref(x)
    torch.testing.assert_close(after, want)
    assert (after - before).abs().max() > 1e-3  # the change is no silent no-op


@pytest.mark.parametrize("batched", [False, True])
def test_quantizer_and_grad_state_set_on_an_ensemble_reach_every_member(batched):
    x = _x()
    ens = _ens(quantizer="soft", batched=batched)
    soft = ens(x).detach().clone()
    ref = copy.deepcopy(ens)
    ref.batched = False
    for m in ref.members:  # what the user meant: every member's own setting
        m.quantizer, m.grad_state = "hard", "bf16"
    ens.quantizer, ens.grad_state = "hard", "bf16"
    assert [m.quantizer for m in ens.members] == ["hard", "hard"]
    assert [m.grad_state for m in ens.members] == ["bf16", "bf16"]
    with torch.no_grad():
        got, want = ens(x), ref(x)
    torch.testing.assert_close(got, want)
    assert (got - soft).abs().max() > 1e-4  # hard codes, not the soft ones kept


@pytest.mark.parametrize("name, value, match", [("tau", -1, "tau: expected a positive number"),
                                                ("quantizer", "Hard", "quantizer: expected one of"),
                                                ("grad_state", "int3", "grad_state"),
                                                ("check_finite", "false", "check_finite: expected true or false"),
                                                ("stop_early", "no", "stop_early: expected true or false")])
def test_a_bad_setting_on_an_ensemble_is_refused_by_name_and_no_member_changes(name, value, match):
    ens = _ens(quantizer="soft")
    before = [getattr(m, name) for m in ens.members]
    with pytest.raises(ValueError, match=match):
        setattr(ens, name, value)
    assert [getattr(m, name) for m in ens.members] == before
    assert name not in vars(ens)


def test_check_finite_set_on_an_ensemble_reaches_every_member():
    ens = _ens()
    ens.check_finite = False
    assert [m.check_finite for m in ens.members] == [False, False]
    assert ens.check_finite is False


def test_reading_a_setting_the_members_do_not_share_names_them():
    ens = _ens(quantizer="soft")
    ens.members[1].tau = 0.5
    with pytest.raises(AttributeError, match=r"tau: the members' differ \(\[1.0, 0.5\]\)"):
        ens.tau
    assert getattr(ens, "tau", None) is None


def test_a_setting_on_an_ensemble_of_standard_networks_is_refused_by_name():
    ens = _ens("lite")
    with pytest.raises(AttributeError, match="tau: the ensemble's members .LITE. have no tau"):
        ens.tau = 0.1
    assert "tau" not in vars(ens) and not hasattr(ens, "tau")


# ----------------------------------------------------------------------------- 3: members changed after the first call
@pytest.mark.parametrize("name", ["nv_lite", "lite"])
@pytest.mark.parametrize("k0, add", [(2, 1), (2, 2), (3, -1)])
def test_a_batched_ensemble_follows_members_added_or_removed(name, k0, add):
    x = _x(6)
    ens = _ens(name, k0, batched=True)
    ens(x)  # the grouped pass of k0 members
    torch.manual_seed(1)
    for _ in range(max(add, 0)):
        m = nv.create_model(name, num_classes=3, in_channels=1, filters=4).eval()
        m(x)
        ens.members.append(m)
    if add < 0:
        del ens.members[-1]
    with torch.no_grad():
        torch.testing.assert_close(ens(x), _mean_of_members(ens, x))


def test_a_batched_ensemble_follows_a_member_replaced():
    x = _x()
    ens = _ens(batched=True)
    ens(x)
    torch.manual_seed(2)
    other = nv.create_model("nv_lite", num_classes=3, in_channels=1, filters=4).eval()
    other(x)
    ens.members[1] = other
    with torch.no_grad():
        torch.testing.assert_close(ens(x), _mean_of_members(ens, x))


def test_a_member_appended_twice_is_refused_by_the_batched_pass_as_at_construction():
    x = _x()
    ens = _ens(batched=True)
    ens(x)
    ens.members.append(ens.members[0])
    with pytest.raises(ValueError, match="members: member 2 is member 0, the same module"):
        ens(x)


# ----------------------------------------------------------------------------- 5: tracing refused by name, batched
def test_torch_export_of_a_batched_ensemble_before_its_first_batch_is_refused_by_name():
    ens = _ens(batched=True)
    with pytest.raises(RuntimeError, match="torch.export: the NeuroViewCNN's sites are not found yet"):
        torch.export.export(ens, (_x(),))


def test_torch_jit_trace_of_a_batched_ensemble_is_refused_by_name():
    ens = _ens(batched=True)
    ens(_x())
    with pytest.raises(TypeError, match="torch.jit.trace: a NeuroViewCNN reads its codes through hooks"):
        torch.jit.trace(ens, (_x(),))


# ----------------------------------------------------------------------------- 4: standard members, hasattr
@pytest.mark.parametrize("name", ["sites", "input_shape", "units", "site_slices", "num_units"])
def test_hasattr_of_a_neuroview_attribute_of_standard_members_answers_false(name):
    ens = _ens("lite")
    assert hasattr(ens, name) is False
    assert getattr(ens, name, "default") == "default"
    with pytest.raises(TypeError, match=f"{name}: the members are not NeuroView-CNNs .* these are LITEs"):
        getattr(ens, name)


@pytest.mark.parametrize("batched", [False, True])
def test_torch_jit_trace_of_an_ensemble_of_standard_networks_traces_it(batched):
    x = _x()
    ens = _ens("lite", batched=batched)
    want = _mean_of_members(ens, x)
    traced = torch.jit.trace(ens, (x,), check_trace=False)
    torch.testing.assert_close(traced(x), want)


# ----------------------------------------------------------------------------- 2: the deepcopy advice
def test_the_repeated_member_error_advises_networks_built_apart_not_copies():
    net = nv.create_model("nv_lite", num_classes=3, in_channels=1, filters=4)
    with pytest.raises(ValueError, match="member 1 is member 0") as err:
        Ensemble([net] * 3)
    assert "deepcopy(net) for _ in range(k)" not in str(err.value)
    assert "members=k" in str(err.value)


def test_members_of_equal_weights_are_warned_of():
    net = nv.create_model("nv_lite", num_classes=3, in_channels=1, filters=4)
    net(_x())
    with pytest.warns(UserWarning, match="member 1 has the weights of member 0"):
        Ensemble([net, copy.deepcopy(net)])


def test_members_built_apart_are_not_warned_of():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nv.create_model("nv_lite", num_classes=3, in_channels=1, filters=4, members=3)
        twin = copy.deepcopy(nv.create_model("lite", num_classes=3, in_channels=1, filters=4))
        with torch.no_grad():
            for p in twin.parameters():
                p.add_(0.1)
        Ensemble([nv.create_model("lite", num_classes=3, in_channels=1, filters=4), twin])
