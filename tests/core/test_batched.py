"""An ensemble's members in one batched pass (``batched=True``): the members' own numbers, from one
grouped network; checked against the members run one by one through their own modules."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F

import neuroview as nv
from neuroview.attribution.ablation import ablate_units
from neuroview.core.batched import grouped_heads
from neuroview.core.ensemble import Ensemble, members_loss
from neuroview.zoo.architectures.timeseries import LITE, GroupedLITE


def _pair(arch: str = "nv_lite", members: int = 3, **kw):
    """The same ensemble twice, its heads built: run apart, and batched."""
    torch.manual_seed(0)
    apart = nv.create_model(arch, num_classes=3, in_channels=2, members=members, **kw)
    x = torch.randn(6, 2, 40)
    apart.eval()(x)
    batched = copy.deepcopy(apart)
    batched.batched = True
    return apart, batched, x


def test_grouped_lite_lays_each_member_s_channels_side_by_side():
    torch.manual_seed(0)
    members, x = [LITE(in_channels=2, num_classes=3) for _ in range(3)], torch.randn(4, 2, 30)
    grouped = GroupedLITE(members[0], 3).eval()
    state = {n: torch.cat([m.state_dict()[n] for m in members]) if t.dim() else t
             for n, t in grouped.state_dict().items()}
    grouped.load_state_dict(state)
    feats = grouped(x).chunk(3, dim=1)
    for m, f in zip(members, feats):  # member m's pooled features, by its own layers
        m.eval()
        z = torch.cat([c(x) for c in m.convs] + [torch.relu(m.fixed(x))], 1)
        torch.testing.assert_close(f, m.separable(torch.relu(m.bn(z))).mean(-1), rtol=0, atol=1e-5)
    assert GroupedLITE(LITE(fixed=False), 2)(torch.randn(2, 1, 20)).shape == (2, 64)


def test_training_steps_give_the_members_own_logits_statistics_and_weights():
    apart, batched, x = _pair()
    y = torch.arange(6) % 3
    opts = [torch.optim.AdamW(n.parameters(), 1e-2) for n in (apart, batched)]
    for _ in range(3):
        for net, opt in zip((apart, batched), opts):
            net.train()
            loss = sum(F.cross_entropy(z, y) for z in net.member_logits(x))
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert batched._pass is not None and apart._pass is None
    for (name, a), b in zip(apart.state_dict().items(), batched.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)  # BatchNorm and CodeNorm statistics too
    apart.eval(), batched.eval()
    torch.testing.assert_close(batched(x), apart(x), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(batched.codes(x), apart.codes(x))
    exp = batched.explain(x)
    torch.testing.assert_close(exp.for_class(0).sum(-1) + exp.bias[0], batched(x)[:, 0], rtol=1e-5, atol=1e-5)


def test_standard_members_and_a_frozen_batchnorm():
    apart, batched, x = _pair("lite")
    for net in (apart, batched):
        net.train()
        for m in net.members:
            m.bn.eval()  # a layer its user froze stays frozen in the batched pass
    torch.testing.assert_close(batched.member_logits(x), apart.member_logits(x), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(batched.members[1].separable[2].running_mean, apart.members[1].separable[2].running_mean)
    assert torch.equal(batched.members[1].bn.running_mean, apart.members[1].bn.running_mean)


@pytest.mark.parametrize("case", ["member 0 frozen", "member 1 training alone", "one member's BatchNorm frozen"])
def test_members_in_different_modes_run_alone_with_their_own_numbers(case):
    """The grouped network has one mode a layer, taken from member 0: a member in another mode ran in
    member 0's (logits 1.06 off, its BatchNorm statistics not updated) where the batched pass was promised
    to give the members' own numbers. Such members now run one by one."""
    apart, batched, x = _pair()
    for net in (apart, batched):
        if case == "member 0 frozen":
            net.train()
            net.members[0].eval()
        elif case == "member 1 training alone":
            net.eval()
            net.members[1].train()
        else:
            net.train()
            net.members[1].backbone.bn.eval()
    torch.testing.assert_close(batched.member_logits(x), apart.member_logits(x), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(batched(x), apart(x), rtol=1e-5, atol=1e-6)
    for a, b in zip(apart.members, batched.members):
        torch.testing.assert_close(b.backbone.bn.running_mean, a.backbone.bn.running_mean)
    for net in (apart, batched):
        net.train()  # the same mode everywhere: the batched pass again
    batched(x)
    assert batched._pass is not None


def test_a_hook_on_a_member_sends_it_back_to_running_alone():
    apart, batched, x = _pair()
    seen = []
    handle = batched.members[1].backbone.relu.register_forward_hook(lambda m, a, out: seen.append(out.shape))
    torch.testing.assert_close(batched.eval()(x), apart.eval()(x))
    assert seen == [(6, 113, 40)] and batched._pass is None  # the member's own module ran: the hook saw it
    handle.remove()
    batched(x)
    assert batched._pass is not None and len(seen) == 1
    with ablate_units(batched.members[0], [0, 5]):  # the ablation's hooks too
        ablated = batched(x)
    with ablate_units(apart.members[0], [0, 5]):
        torch.testing.assert_close(ablated, apart(x))


def test_float64_rebuilds_the_pass():
    apart, batched, x = _pair()
    batched(x)
    apart, batched, x = apart.double(), batched.double(), x.double()
    torch.testing.assert_close(batched(x), apart(x))
    assert batched._pass.key[1] == torch.float64


def test_what_cannot_be_batched_runs_apart_with_a_warning_and_bad_values_are_errors():
    # batched says how, not what: a recipe's batched on an architecture without a grouped form still trains
    with pytest.warns(UserWarning, match=r"batched: FCN has no grouped form .*; the members run one by one"):
        ens = nv.create_model("nv_fcn1d", num_classes=2, members=2, batched=True)
    assert ens.batched is False
    with pytest.warns(UserWarning, match="batched: the members differ in shape"):
        Ensemble([nv.create_model("lite", num_classes=2, filters=f) for f in (8, 16)], batched=True)
    with pytest.warns(UserWarning, match="batched: the members differ in shape or dtype"):
        Ensemble([nv.create_model("lite", num_classes=2), nv.create_model("lite", num_classes=2).double()], batched=True)
    ens = Ensemble([nv.create_model("lite", num_classes=2) for _ in range(2)], batched=True)
    ens.members[1].double()  # one member converted alone, after the ensemble was built: no silent promotion
    with pytest.raises(RuntimeError, match=r"batched: the members' .* differ in dtype .*convert every member alike"):
        ens(torch.randn(3, 1, 20))
    with pytest.warns(UserWarning, match="batched: the members' NeuroView settings"):
        Ensemble([nv.create_model("nv_lite", num_classes=2, tau=t) for t in (1.0, 0.5)], batched=True)
    assert isinstance(nv.create_model("nv_lite", num_classes=2, batched=True), nv.NeuroViewCNN)  # one: nothing to batch
    with pytest.raises(ValueError, match="batched: expected true, false or 'auto', got 'yes'"):
        Ensemble([nv.create_model("lite", num_classes=2) for _ in range(2)], batched="yes")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "auto" asks for the pass only where there is one: no warning
        assert nv.create_model("nv_fcn1d", num_classes=2, members=2, batched="auto").batched is False


def test_auto_runs_apart_on_the_cpu_and_batched_on_an_accelerator():
    apart, auto, x = _pair()
    auto.batched = "auto"
    torch.testing.assert_close(auto.member_logits(x), apart.member_logits(x), rtol=0, atol=0)  # the members' own pass
    assert auto._pass is None and "batched=auto" in repr(auto)
    if torch.cuda.is_available():
        batched = copy.deepcopy(auto).cuda()
        with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):  # cuDNN's default TF32 is off by ~1e-3
            got = batched.member_logits(x.cuda()).cpu()
            torch.testing.assert_close(got, apart.member_logits(x), rtol=1e-4, atol=1e-4)
            assert batched._pass is not None
            batched.train(), apart.train()  # training: the heads' statistics written by multi-tensor ops on the device
            members_loss(batched.member_logits(x.cuda()), (torch.arange(6) % 3).cuda()).backward()
            members_loss(apart.member_logits(x), torch.arange(6) % 3).backward()
        for a, b in zip(apart.members, batched.members):
            torch.testing.assert_close(b.norm.running_var.cpu(), a.norm.running_var, rtol=1e-4, atol=1e-5)
            assert int(b.norm.num_batches_tracked) == int(a.norm.num_batches_tracked)
            torch.testing.assert_close(b.classifier.weight.grad.cpu(), a.classifier.weight.grad, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("baseline", [None, "mean", "tensor"])
def test_explain_reads_the_batched_codes_and_gives_the_members_explanation(baseline, monkeypatch):
    apart, batched, x = _pair()
    if baseline == "tensor":
        baseline = torch.rand(apart.num_units)
    batched.train()  # explain runs in eval mode and leaves every mode as it was
    want = apart.explain(x, baseline=baseline)
    with monkeypatch.context() as m:  # the members' folds side by side, not one explanation per member
        m.setattr(Ensemble, "_member_explanations", lambda *a: pytest.fail("explained member by member"))
        got = batched.explain(x, baseline=baseline)
    assert batched._pass is not None and batched.training and batched.members[2].backbone.bn.training
    for name in ("codes", "weight", "bias", "logits"):
        torch.testing.assert_close(getattr(got, name), getattr(want, name), msg=name)
    torch.testing.assert_close(got.for_class(1).sum(-1) + got.bias[1], batched.eval()(x)[:, 1], rtol=1e-5, atol=1e-5)
    assert got.units == want.units
    maps = batched.explain(x, maps=True)  # code maps come from each member's own pass
    assert set(maps.code_maps) == {f"members.{i}.{s.name}" for i in range(3) for s in batched.members[0].sites}


def test_a_global_head_reads_the_batched_codes_too():
    apart, batched, x = _pair()
    y = torch.arange(6) % 3
    sparse_a, sparse_b = (nv.sparsify(n, [(torch.cat([x] * 4), torch.cat([y] * 4))], tolerance=50.0) for n in (apart, batched))
    assert sparse_b.batched and sparse_b.classifier is not None
    torch.testing.assert_close(sparse_b.eval()(x), sparse_a.eval()(x))
    ea, eb = sparse_a.explain(x, baseline="mean"), sparse_b.explain(x, baseline="mean")
    torch.testing.assert_close(eb.for_class(0), ea.for_class(0))
    torch.testing.assert_close(eb.for_class(0).sum(-1) + eb.bias[0], sparse_b(x)[:, 0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arch, kw", [("nv_lite", {}), ("nv_lite", {"normalize": False}), ("lite", {})])
def test_the_members_heads_in_one_product_give_each_member_s_own_head(arch, kw):
    apart, batched, x = _pair(arch, **kw)
    apart.train(), batched.train()
    feats = batched._batched(x)
    assert feats.shape == (6, sum(m.num_units for m in batched.members) if arch == "nv_lite" else 3 * 32)
    heads = [m.norm for m in apart.members] if arch == "nv_lite" and not kw else []
    got = grouped_heads(list(batched.members), feats)
    # by each member's own modules, on its own part of the features (the members run apart)
    want = torch.stack([m(x) for m in apart.members])
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    for a, b in zip(heads, (m.norm for m in batched.members)):  # the running statistics written into each member
        torch.testing.assert_close(b.running_mean, a.running_mean)
        torch.testing.assert_close(b.running_var, a.running_var)
        assert int(b.num_batches_tracked) == int(a.num_batches_tracked) == 1  # this training pass
    y = torch.arange(6) % 3
    grads = []
    for z, net in ((got, batched), (want, apart)):
        members_loss(z, y).backward()
        grads.append([(m.classifier if arch == "nv_lite" else m.fc).weight.grad for m in net.members])
    for g, w in zip(*grads):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-6)
        assert g.is_contiguous()
    apart.eval(), batched.eval()  # the folded heads, side by side
    torch.testing.assert_close(grouped_heads(list(batched.members), batched._batched(x)),
                               torch.stack([m(x) for m in apart.members]), rtol=1e-5, atol=1e-5)


def test_heads_that_cannot_be_laid_side_by_side_decide_one_by_one():
    apart, batched, x = _pair()
    batched.train(), apart.train()
    feats = batched._batched(x)
    batched.members[1].norm.eval()  # one member's normalization frozen: its own mode, its own head
    assert grouped_heads(list(batched.members), feats) is None
    batched.members[1].norm.train()
    for m in batched.members:
        m.norm.momentum = None  # a cumulative average reads each member's own count
    assert grouped_heads(list(batched.members), feats) is None
    for net in (apart, batched):
        for m in net.members:
            m.norm.momentum = None
    torch.testing.assert_close(batched.member_logits(x), apart.member_logits(x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="x: a training batch of 1 sample cannot be normalized"):
        batched.member_logits(x[:1])


def test_the_members_loss_is_the_sum_of_their_own():
    z, y = torch.randn(4, 7, 3), torch.randint(0, 3, (7,))
    for smoothing in (0.0, 0.2):
        want = sum(F.cross_entropy(zm, y, label_smoothing=smoothing) for zm in z)
        torch.testing.assert_close(members_loss(z, y, smoothing), want)


def test_members_whose_modules_differ_in_settings_run_apart_with_a_warning():
    """The grouped pass ran every member with the first's BatchNorm eps and momentum: member 1 (eps 0.5) had
    training logits 0.89 off and running statistics 9.7 off its own, without a word."""
    torch.manual_seed(1)
    members = [nv.create_model("lite", num_classes=3, filters=4) for _ in range(2)]
    for mod in members[1].modules():
        if isinstance(mod, torch.nn.BatchNorm1d):
            mod.eps, mod.momentum = 0.5, 0.9
    with pytest.warns(UserWarning, match=r"modules differ in settings that are no tensors \('bn'.*eps=0.5, momentum=0.9"):
        together = Ensemble(copy.deepcopy(members), batched=True)
    apart = Ensemble(copy.deepcopy(members), batched=False)
    x = torch.randn(8, 1, 40)
    for a, b in zip(apart.train().member_logits(x), together.train().member_logits(x)):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(apart.state_dict(), together.state_dict())


def test_members_built_with_layers_run_batched_on_their_own_sites():
    """layers=[...] members were refused in the grouped pass with 'the grouped network's sites [all four] are not
    the members' [one]' (the grouped network found every site); on a GPU, batched: auto hit it too."""
    apart, batched, x = _pair(layers=["separable.7"])
    assert [s.name for s in apart.members[0].sites] == ["separable.7"]
    torch.testing.assert_close(batched(x), apart(x), rtol=1e-4, atol=1e-5)
    assert batched._pass is not None
    exp = batched.explain(x)
    torch.testing.assert_close(exp.for_class().sum(-1) + exp.bias[exp.target], exp.logits.gather(1, exp.target[:, None])[:, 0],
                               rtol=1e-4, atol=1e-5)
