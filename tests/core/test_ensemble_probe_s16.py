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
    with pytest.raises(AttributeError, match=r"tau: the members' values differ \(\[1.0, 0.5\]\)"):
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


# ----------------------------------------------------------------------------- review of the probe (/tmp/rev16/ens)
def test_check_finite_off_on_an_ensemble_of_standard_networks_lets_a_nan_batch_through_the_module_check():
    from types import SimpleNamespace

    from neuroview.training.compiled import check_finite

    ens = _ens("lite")
    x, y = _x(), torch.tensor([0, 1, 2, 0])
    x[1, 0, 3] = float("nan")
    module = SimpleNamespace(model=ens, sequence_input=False)
    with pytest.raises(ValueError, match="contains NaN or Inf"):
        check_finite((x, y), module)  # on by default, as a single LITE's
    ens.check_finite = False
    assert ens.check_finite is False
    check_finite((x, y), module)  # the switch reaches the Lightning module's batch check: no error
    with pytest.raises(ValueError, match="check_finite: expected true or false"):
        ens.check_finite = "false"
    assert ens.check_finite is False
    ens.check_finite = True
    with pytest.raises(ValueError, match="contains NaN or Inf"):
        check_finite((x, y), module)


def test_tau_on_an_ensemble_of_standard_networks_is_still_refused_by_name():
    ens = _ens("lite")
    ens.check_finite = False  # a switch any network may carry; tau is no LITE's
    with pytest.raises(AttributeError, match="tau: the ensemble's members .LITE. have no tau"):
        ens.tau = 0.1


@pytest.mark.parametrize("name", ["nv_lite", "lite"])
def test_a_batched_ensemble_whose_pass_predates_its_members_record_rebuilds_it(name):
    import io

    x = _x()
    ens = _ens(name, batched=True)
    want = _mean_of_members(ens, x)
    ens(x)
    for name in ("members", "_members"):  # a BatchedPass pickled before it recorded whom it was built for
        vars(ens._pass).pop(name, None)
    buf = io.BytesIO()
    torch.save(ens, buf)
    buf.seek(0)
    back = torch.load(buf, weights_only=False)
    with torch.no_grad():
        torch.testing.assert_close(back(x), want)


@pytest.mark.parametrize("neuroview", [False, True])
def test_members_with_lazy_layers_make_an_ensemble(neuroview):
    from torch import nn

    def build():
        net = nn.Sequential(nn.LazyConv1d(4, 3), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(4, 3))
        return nv.NeuroViewCNN(net, 3) if neuroview else net

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no false alarm of equal weights either
        ens = Ensemble([build(), build()])
    x = _x()
    with torch.no_grad():
        got = ens(x)
        torch.testing.assert_close(got, _mean_of_members(ens, x))
    assert got.shape == (4, 3)


def test_lazy_members_copied_from_one_network_once_built_are_warned_of():
    from torch import nn

    net = nn.Sequential(nn.LazyConv1d(4, 3), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(4, 3))
    net(_x())
    with pytest.warns(UserWarning, match="member 1 has the weights of member 0"):
        Ensemble([net, copy.deepcopy(net)])


def _annealed_checkpoint(path, k: int) -> tuple:
    """A Lightning-style checkpoint of a soft nv_lite (``members=k``) built at tau 1.0 whose tau was annealed to 0.1
    (each member's own), and the logits it gives at 0.1."""
    from collections import OrderedDict

    x = _x()
    kw = dict(num_classes=3, in_channels=1, filters=4, quantizer="soft", tau=1.0) | ({"members": k} if k > 1 else {})
    torch.manual_seed(0)
    net = nv.create_model("nv_lite", **kw).eval()
    net(x)
    for m in (net.members if k > 1 else [net]):
        m.tau = 0.1
    sd = net.state_dict()
    ck = OrderedDict(("model." + a, v) for a, v in sd.items())
    ck._metadata = OrderedDict((("model." + a) if a else "model", v) for a, v in sd._metadata.items())
    hp = {"arch": "nv_lite", "model_kwargs": {a: v for a, v in kw.items() if a not in ("num_classes", "in_channels")}}
    torch.save({"state_dict": ck, "hyper_parameters": hp}, path)
    with torch.no_grad():
        return kw, x, net(x)


@pytest.mark.parametrize("k", [1, 2])
def test_an_annealed_soft_checkpoint_loads_into_a_network_built_at_the_tau_it_reached(tmp_path, k):
    from neuroview.zoo.weights import load_weights

    kw, x, want = _annealed_checkpoint(tmp_path / "a.ckpt", k)
    fresh = nv.create_model("nv_lite", **(kw | {"tau": 0.1})).eval()
    fresh(x)
    load_weights(fresh, tmp_path / "a.ckpt", pickles=True)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), want)


@pytest.mark.parametrize("k", [1, 2])
def test_an_annealed_soft_checkpoint_loads_at_its_own_tau_into_an_ensemble_as_into_one_network(tmp_path, k):
    from neuroview.zoo.weights import load_weights

    kw, x, want = _annealed_checkpoint(tmp_path / "a.ckpt", k)
    fresh = nv.create_model("nv_lite", **(kw | {"tau": 0.5})).eval()
    fresh(x)
    with pytest.warns(UserWarning, match="the load takes 0.1"):  # a single soft network's load takes the file's tau
        load_weights(fresh, tmp_path / "a.ckpt", pickles=True)
    assert [m.tau for m in (fresh.members if k > 1 else [fresh])] == [0.1] * k
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), want)


def test_reading_a_setting_the_members_do_not_share_says_their_values_differ():
    ens = _ens(quantizer="soft")
    ens.members[1].tau = 0.5
    with pytest.raises(AttributeError) as err:
        ens.tau
    assert "the members' values differ ([1.0, 0.5])" in str(err.value)
    assert "members' differ" not in str(err.value)


def test_the_equal_weights_warning_says_copies_start_equal_and_that_dropout_parts_them():
    net = nv.create_model("nv_lite", num_classes=3, in_channels=1, filters=4)
    net(_x())
    with pytest.warns(UserWarning) as rec:
        Ensemble([net, copy.deepcopy(net)])
    text = str(rec[0].message)
    assert "start equal" in text and "dropout" in text
    assert "stay equal and decide as one network;" not in text


def test_a_setting_pickled_on_the_ensemble_itself_no_longer_hides_the_members_value():
    import io

    ens = _ens(quantizer="soft")
    ens.__dict__["tau"] = 0.1  # where `ens.tau = 0.1` kept it before settings reached the members (a stale value)
    buf = io.BytesIO()
    torch.save(ens, buf)
    buf.seek(0)
    back = torch.load(buf, weights_only=False)
    assert back.tau == 1.0 == back.members[0].tau  # what the members compute with
    back.tau = 0.2
    assert back.tau == 0.2 and [m.tau for m in back.members] == [0.2, 0.2]
    ens.tau = 0.3  # set with no pickle between
    assert ens.tau == 0.3 and "tau" not in vars(ens)


def test_save_pretrained_of_an_annealed_ensemble_names_every_member_and_no_ensemble_level_tau(tmp_path):
    from neuroview.zoo.pretrained import save_pretrained
    from neuroview.zoo.weights import ArchitectureError

    kw = dict(num_classes=3, in_channels=1, filters=4, quantizer="soft", members=4)
    ens = _ens(quantizer="soft", k=4)
    ens(_x())
    for m in ens.members:
        m.tau = 0.1  # annealed: arch_kwargs' tau (1.0) rebuilds another function
    with pytest.raises(ArchitectureError) as err:
        save_pretrained(ens, "nv_lite.a", architecture="nv_lite", arch_kwargs=kw, dataset={}, recipe=None, seed=0,
                        metrics={}, root=tmp_path)
    text = str(err.value)
    assert all(f"members.{i}.tau: model 0.1, arch_kwargs build 1.0" in text for i in range(4))
    assert "model.tau" not in text


def test_a_batched_pass_is_built_once_and_holds_no_member_removed_since(monkeypatch):
    import gc
    import weakref

    from neuroview.core import batched

    builds = []
    new_pass = batched._new_pass
    monkeypatch.setattr(batched, "_new_pass", lambda *a: builds.append(1) or new_pass(*a))
    x = _x()
    ens = _ens(k=3, batched=True)
    with torch.no_grad():
        for train in (True, False) * 3:
            ens.train(train)(x)
    assert len(builds) == 1  # kept across calls, modes and all
    gone = weakref.ref(ens.members[2])
    del ens.members[2]
    gc.collect()
    assert gone() is None  # freed at once, not held by the pass until the next call
    with torch.no_grad():
        torch.testing.assert_close(ens.eval()(x), _mean_of_members(ens, x))
    assert len(builds) == 2


@pytest.mark.parametrize("k", [1, 2])
def test_a_soft_weight_file_is_refused_at_another_tau_by_an_ensemble_as_by_one_network(tmp_path, k):
    from neuroview.zoo.pretrained import save_pretrained
    from neuroview.zoo.weights import ArchitectureError, load_weights

    x = _x()
    kw = dict(num_classes=3, in_channels=1, filters=4, quantizer="soft", tau=0.5) | ({"members": k} if k > 1 else {})
    torch.manual_seed(0)
    net = nv.create_model("nv_lite", **kw).eval()
    net(x)
    save_pretrained(net, "nv_lite.t", architecture="nv_lite", arch_kwargs=kw, dataset={}, recipe=None, seed=0,
                    metrics={}, root=tmp_path)
    other = nv.create_model("nv_lite", **(kw | {"tau": 1.0})).eval()
    other(x)
    with pytest.raises(ArchitectureError, match=r"tau: file 0.5, model 1.0\); build the model with tau=0.5"):
        load_weights(other, tmp_path / "nv_lite.t.safetensors")
