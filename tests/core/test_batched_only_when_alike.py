"""An ensemble's batched pass only where its grouped form is the members' own network: a LITE subclass's own
forward or head, a member's module, setting or tensor the grouped form does not have (another activation, a conv's
bias, circular padding, a BatchNorm without affine or running statistics), and ``batched = True`` set after
construction all run the members one by one with the constructor's warning. Also: an empty batch through the
grouped pass, the lazy-head optimizer warning decided per network, and an ensemble's standardized weights when not
every member normalizes. Every expected number comes from the members' own modules."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import neuroview as nv
from neuroview.core.cnn import NeuroViewCNN
from neuroview.core.ensemble import Ensemble
from neuroview.zoo.architectures.timeseries import LITE


class ScaledLITE(LITE):  # standardizes its raw input itself
    def forward(self, x):
        return super().forward((x - 3.0) / 10.0)


class TempLITE(LITE):  # a temperature-scaled head
    def head(self, x):
        return super().head(x) / 4.0


def _own_mean(members, x):
    with torch.no_grad():
        return torch.stack([m(x) for m in members]).mean(0)


@pytest.mark.parametrize("cls, what", [(ScaledLITE, "forward"), (TempLITE, "head")])
def test_a_lite_subclass_with_its_own_forward_or_head_runs_apart_with_a_warning(cls, what):
    """The grouped pass ran a plain LITE: logits 0.02 to 0.03 off the members' own, codes 0.675, without a word."""
    torch.manual_seed(0)
    members = [cls(in_channels=1, num_classes=3, filters=8).eval() for _ in range(3)]
    x = torch.randn(4, 1, 40)
    with pytest.warns(UserWarning, match=rf"batched: {cls.__name__} has its own {what}, .* LITE's; the members run one"):
        ens = Ensemble(copy.deepcopy(members), batched=True).eval()
    assert ens.batched is False
    with torch.no_grad():
        torch.testing.assert_close(ens(x), _own_mean(members, x), rtol=0, atol=1e-6)


def _act(m):
    m.separable[3] = nn.SiLU()
    return m


def _bias(m):
    c = m.convs[0]
    m.convs[0] = nn.Conv1d(c.in_channels, c.out_channels, c.kernel_size, padding=c.padding, bias=True)
    nn.init.normal_(m.convs[0].bias)
    return m


def _circular(m):
    for c in m.convs:
        c.padding_mode = "circular"
    return m


def _no_track(m):
    m.bn = nn.BatchNorm1d(m.bn.num_features, track_running_stats=False)
    return m


def _no_affine(m):
    m.bn = nn.BatchNorm1d(m.bn.num_features, affine=False)
    return m


EDITS = {"SiLU for a ReLU": (_act, r"'separable.3' is SiLU"), "a conv bias": (_bias, r"convs.0.bias"),
         "circular padding": (_circular, r"'convs.0' is .*padding_mode=circular"),
         "BatchNorm without running statistics": (_no_track, r"'bn' is .*track_running_stats=False"),
         "BatchNorm without affine": (_no_affine, r"'bn' is .*affine=False")}


@pytest.mark.parametrize("edit", EDITS, ids=list(EDITS))
@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_members_their_grouped_form_does_not_mirror_run_apart_with_a_warning(edit, training):
    """GroupedLITE is built from each layer's kind: these members passed and their batched pass computed another
    network (up to 7e-3 off the logits) or raised a bare KeyError ('bn.running_mean', 'bn.weight')."""
    fn, says = EDITS[edit]
    torch.manual_seed(0)
    members = [fn(nv.create_model("lite", num_classes=3, filters=8)) for _ in range(3)]
    x = torch.randn(4, 1, 40)
    with pytest.warns(UserWarning, match=rf"batched: .*{says}.*; the members run one by one"):
        ens = Ensemble(copy.deepcopy(members), batched=True)
    assert ens.batched is False
    ens.train(training)
    for m in members:
        m.train(training)
    with torch.no_grad():
        torch.testing.assert_close(ens(x), _own_mean(members, x), rtol=0, atol=1e-6)


def test_neuroview_members_with_another_activation_give_their_own_codes():
    torch.manual_seed(0)
    x = torch.randn(4, 1, 40)
    members = [nv.wrap(_act(nv.create_model("lite", num_classes=3, filters=8)), 3, example_input=x) for _ in range(2)]
    with pytest.warns(UserWarning, match="batched: the members' module 'separable.3' is SiLU"):
        ens = Ensemble(copy.deepcopy(members), batched=True).eval()
    with torch.no_grad():
        torch.testing.assert_close(ens.explain(x).codes, torch.cat([m.eval().codes(x) for m in members], 1))


def test_batched_set_after_construction_is_checked_as_the_constructor_checks():
    """``ens.batched = True`` skipped the check: a bare AttributeError ('SmallCNN' object has no attribute 'grouped'),
    or, for members the grouped form does not mirror, another network's numbers."""
    torch.manual_seed(0)
    ens = nv.create_model("nv_small_cnn", num_classes=3, members=2, widths=(4, 8)).eval()
    x = torch.randn(2, 1, 8, 8)
    ref = ens(x)
    ens.batched = True
    with pytest.warns(UserWarning, match="batched: SmallCNN has no grouped form .*; the members run one by one"):
        got = ens(x)
    torch.testing.assert_close(got, ref, rtol=0, atol=0)
    members = [_act(nv.create_model("lite", num_classes=3, filters=8)).eval() for _ in range(2)]
    ens, x = Ensemble(copy.deepcopy(members)).eval(), torch.randn(4, 1, 40)
    ens.batched = True
    with pytest.warns(UserWarning, match="batched: the members' module 'separable.3' is SiLU"), torch.no_grad():
        torch.testing.assert_close(ens(x), _own_mean(members, x), rtol=0, atol=1e-6)
    assert ens._pass is None


def test_standard_lite_members_still_batch_and_the_check_draws_nothing_from_the_caller_s_rng():
    torch.manual_seed(0)
    members = [nv.create_model("lite", num_classes=3, filters=8).eval() for _ in range(3)]
    state = torch.get_rng_state()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ens = Ensemble(copy.deepcopy(members), batched=True).eval()
    assert torch.equal(torch.get_rng_state(), state)  # the grouped form built to compare: its weights drawn apart
    x = torch.randn(4, 1, 40)
    with torch.no_grad():
        torch.testing.assert_close(ens(x), _own_mean(members, x), rtol=1e-5, atol=1e-6)
    assert ens._pass is not None


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_an_empty_batch_through_the_batched_pass_gives_what_the_members_give(training):
    """GroupedLITE.forward's view(b, k, -1, t): 'cannot reshape tensor of 0 elements' where apart gave [0, C]."""
    torch.manual_seed(0)
    apart = nv.create_model("lite", num_classes=3, members=3, filters=8).train(training)
    batched = copy.deepcopy(apart)
    batched.batched = True
    e = torch.randn(0, 1, 40)
    assert batched(e).shape == apart(e).shape == (0, 3)
    assert batched.member_logits(e).shape == (3, 0, 3)
    assert batched._pass is not None  # the grouped pass ran it


def _bb():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))


def _step(opt, *nets):
    x, y = torch.randn(4, 1, 8, 8), torch.arange(4) % 3
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        sum(F.cross_entropy(n(x), y) for n in nets).backward()
        opt.step()
    return [str(i.message) for i in w if str(i.message).startswith("optimizer:")]


def test_the_lazy_head_warning_is_decided_per_network():
    """An optimizer that held any other network's head was never warned: n2's head silently never trained."""
    torch.manual_seed(0)
    x = torch.randn(4, 1, 8, 8)
    built, lazy = nv.wrap(_bb(), 3, example_input=x), nv.wrap(_bb(), 3)
    opt = torch.optim.SGD([*built.parameters(), *lazy.parameters()], lr=0.1)
    said = _step(opt, built, lazy)
    assert len(said) == 1 and "holds the backbone of a NeuroViewCNN but not its classifier" in said[0]
    # two wrappers of one model: an optimizer made after the first's head trains that backbone's head: nothing said
    shared = _bb()
    first = nv.wrap(shared, 3, example_input=x)
    opt = torch.optim.SGD(first.parameters(), lr=0.1)
    second = nv.wrap(shared, 3)
    assert _step(opt, first, second) == []


def test_unit_importance_of_members_not_all_normalized_is_raw_for_every_member():
    """Member 0's standardized weights and member 1's raw ones came under one 'raw' label."""
    torch.manual_seed(0)

    def mk(norm):
        return nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 3, 3), nn.ReLU()), 2, input_shape=(1, 16), normalize=norm)

    mixed, normed = nv.Ensemble([mk(True), mk(False)]), nv.Ensemble([mk(True), mk(True)])
    for ens in (mixed, normed):
        ens.train()
        for _ in range(5):
            ens(torch.randn(64, 1, 16))  # running statistics away from 1
        ens.eval()
    torch.testing.assert_close(mixed.unit_importance(True), mixed.unit_importance(False), rtol=0, atol=0)
    raw = torch.cat([m.unit_importance(False) for m in mixed.members], 1) / 2
    torch.testing.assert_close(mixed.unit_importance(True), raw, rtol=0, atol=0)
    # all normalized: standardized, as before
    assert not torch.allclose(normed.unit_importance(True), normed.unit_importance(False))


class TempLinear(nn.Linear):  # a temperature on the standard member's head
    def forward(self, x):
        return super().forward(x) / 4.0


def test_a_standard_member_s_head_of_its_own_decides_as_it_does_alone():
    """The review: grouped_heads took any nn.Linear and ran the plain product: a temperature subclass's logits were
    0.136 off the members' own, without a word. Such a head decides by its own forward (the backbones still batched)."""
    torch.manual_seed(0)
    members = []
    for _ in range(3):
        m = LITE(in_channels=1, num_classes=3, filters=8).eval()
        fc = TempLinear(m.fc.in_features, m.fc.out_features)
        fc.load_state_dict(m.fc.state_dict())
        m.fc = fc
        members.append(m)
    ens = Ensemble(copy.deepcopy(members), batched=True).eval()
    x = torch.randn(4, 1, 40)
    with torch.no_grad():
        torch.testing.assert_close(ens(x), _own_mean(members, x), rtol=0, atol=1e-6)


class OwnForward(NeuroViewCNN):
    def forward(self, x):
        return super().forward(x) * 2.0


def test_a_neuroview_member_class_with_its_own_forward_runs_apart_and_one_with_a_lite_head_of_its_own_batches():
    """The review: a NeuroViewCNN subclass's own forward was run as NeuroViewCNN's (logits 0.357 off); and NeuroView
    members over TempLITE were sent apart for a head no NeuroView decision reads."""
    torch.manual_seed(0)
    x = torch.randn(4, 1, 40)
    own = [OwnForward(LITE(in_channels=1, num_classes=3, filters=8), 3, example_input=x).eval() for _ in range(3)]
    with pytest.warns(UserWarning, match=r"batched: OwnForward has its own forward, which the grouped pass does not"):
        ens = Ensemble(copy.deepcopy(own), batched=True).eval()
    with torch.no_grad():
        torch.testing.assert_close(ens(x), _own_mean(own, x), rtol=0, atol=1e-6)
    temp = [nv.wrap(TempLITE(in_channels=1, num_classes=3, filters=8), 3, example_input=x).eval() for _ in range(3)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning
        ens = Ensemble(copy.deepcopy(temp), batched=True).eval()
    assert ens.batched is True
    with torch.no_grad():
        torch.testing.assert_close(ens(x), _own_mean(temp, x), rtol=0, atol=1e-6)


def test_a_head_set_on_a_member_after_the_first_batch_is_not_skipped_by_the_cached_pass():
    """The review: the grouped pass built on the first batch was reused after each member got a head of its own (a
    temperature), and member_logits were 0.568 off the members' own, without a word."""
    torch.manual_seed(0)
    ens = nv.create_model("nv_lite", members=2, batched=True, num_classes=3, in_channels=1).eval()
    x = torch.randn(4, 1, 60)
    with torch.no_grad():
        ens(x)  # the grouped pass, built and cached
        for m in ens.members:
            m.head = (lambda mm: (lambda codes: type(mm).head(mm, codes) / 10))(m)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = ens.member_logits(x)
        torch.testing.assert_close(got, torch.stack([m(x) for m in ens.members]), rtol=0, atol=1e-6)


def test_a_backbone_head_set_on_neuroview_members_instances_leaves_them_batched():
    """No NeuroView decision reads its backbone's head: one set on the instance sent the members apart for nothing."""
    torch.manual_seed(0)
    x = torch.randn(4, 1, 40)
    members = [nv.wrap(LITE(in_channels=1, num_classes=3, filters=8), 3, example_input=x).eval() for _ in range(2)]
    for m in members:
        m.backbone.head = lambda h: h * 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ens = Ensemble(members, batched=True).eval()
    assert ens.batched is True
    with torch.no_grad():
        torch.testing.assert_close(ens(x), _own_mean(members, x), rtol=0, atol=1e-6)


def test_a_member_of_another_class_anywhere_in_the_ensemble_runs_it_apart():
    """The doc review: only member 0's class was checked; an OwnForward member at position 1 batched as a plain
    NeuroViewCNN, the ensemble 0.082 off its members' own mean, without a word."""
    torch.manual_seed(0)
    x = torch.randn(4, 1, 40)
    members = [nv.wrap(LITE(in_channels=1, num_classes=3, filters=8), 3, example_input=x).eval(),
               OwnForward(LITE(in_channels=1, num_classes=3, filters=8), 3, example_input=x).eval()]
    with pytest.warns(UserWarning, match=r"batched: the members are of different classes \(NeuroViewCNN\(LITE\) / "
                                         r"OwnForward\(LITE\)\)"):
        ens = Ensemble(copy.deepcopy(members), batched=True).eval()
    with torch.no_grad():
        torch.testing.assert_close(ens(x), _own_mean(members, x), rtol=0, atol=1e-6)
