"""Ensembles (``members`` > 1): the averaged decision of NeuroView-CNNs is explained exactly, and each
member trains as it would alone."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import neuroview as nv
from neuroview.core.ensemble import Ensemble
from neuroview.training.module import NeuroViewModule
from neuroview.zoo import pretrained as zoo


def _member(w: list[float], b: list[float]) -> nv.NeuroViewCNN:
    """A network whose one unit's code is the fraction of positive samples of x, with a hand-set classifier."""
    conv = nn.Conv1d(1, 1, 1)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.zero_()
    net = nv.NeuroViewCNN(nn.Sequential(conv, nn.ReLU()), 2, normalize=False, input_shape=(1, 4))
    with torch.no_grad():
        net.classifier.weight.copy_(torch.tensor(w)[:, None])
        net.classifier.bias.copy_(torch.tensor(b))
    return net.eval()


def test_known_answer_by_hand():
    ens = Ensemble([_member([1.0, -1.0], [0.0, 0.0]), _member([3.0, 1.0], [1.0, -1.0])]).eval()
    x = torch.tensor([[[1.0, -1.0, 2.0, 3.0]]])  # 3 of 4 samples positive: the unit's code is 0.75
    # member logits [0.75, -0.75] and [3.25, -0.25]: their mean
    torch.testing.assert_close(ens(x), torch.tensor([[2.0, -0.5]]))
    exp = ens.explain(x)
    torch.testing.assert_close(exp.codes, torch.tensor([[0.75, 0.75]]))
    torch.testing.assert_close(exp.weight, torch.tensor([[0.5, 1.5], [-0.5, 0.5]]))  # each member's weight / 2
    torch.testing.assert_close(exp.bias, torch.tensor([0.5, -0.5]))
    torch.testing.assert_close(exp.for_class(0), torch.tensor([[0.375, 1.125]]))
    assert exp.units == [("members.0.1", 0), ("members.1.1", 0)]
    assert ens.site_slices == {"members.0.1": slice(0, 1), "members.1.1": slice(1, 2)}
    torch.testing.assert_close(ens.unit_importance(), exp.weight)


def test_a_global_head_decides_in_place_of_the_mean_known_answer():
    # codes 0.75 (member 0) and 0.75 (member 1); the head standardizes them with means 0.5 and 0.25 and
    # variances 0.25 and 1.0 (floor off), then W = [[2, 0], [0, -1]], b = [1, 0]:
    # logits [1 + 2 * 0.25 / 0.5, -(0.5 / 1)] = [2.0, -0.5]
    ens = Ensemble([_member([1.0, -1.0], [0.0, 0.0]), _member([3.0, 1.0], [1.0, -1.0])]).eval()
    ens.build_head(2)
    with torch.no_grad():
        ens.norm.floor, ens.norm.eps = 0.0, 0.0
        ens.norm.running_mean.copy_(torch.tensor([0.5, 0.25]))
        ens.norm.running_var.copy_(torch.tensor([0.25, 1.0]))
        ens.classifier.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, -1.0]]))
        ens.classifier.bias.copy_(torch.tensor([1.0, 0.0]))
    x = torch.tensor([[[1.0, -1.0, 2.0, 3.0]]])
    torch.testing.assert_close(ens(x), torch.tensor([[2.0, -0.5]]))
    exp = ens.explain(x)
    torch.testing.assert_close(exp.weight, torch.tensor([[4.0, 0.0], [0.0, -1.0]]))  # W / std
    torch.testing.assert_close(exp.bias, torch.tensor([-1.0, 0.25]))  # b - (W / std) mean
    torch.testing.assert_close(exp.for_class(0), torch.tensor([[3.0, 0.0]]))
    mean = ens.explain(x, baseline="mean")  # against the training mean codes: the bias is their logit
    torch.testing.assert_close(mean.bias, torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(mean.for_class(1), torch.tensor([[0.0, -0.5]]))
    torch.testing.assert_close(ens.unit_importance(), exp.weight)
    assert "global head" in repr(ens)
    with pytest.raises(ValueError, match="num_units: the global head reads 2 codes, got 3"):
        ens.build_head(3)
    with pytest.raises(TypeError, match="build_head: needs NeuroView-CNN members"):
        nv.create_model("lite", num_classes=2, members=2).build_head(4)


@pytest.mark.parametrize("maps", [False, True])
def test_zoo_ensemble_explanations_sum_to_its_logits(maps):
    torch.manual_seed(0)
    net = nv.create_model("nv_lite", num_classes=3, in_channels=2, members=3)
    x = torch.randn(6, 2, 40)
    net.train()(x)  # sites and classifiers found on the first batch; one step of batch statistics
    net.eval()
    logits = net(x)
    torch.testing.assert_close(logits, torch.stack([m(x) for m in net.members]).mean(0))
    exp = net.explain(x, maps=maps)
    torch.testing.assert_close(exp.logits, logits, rtol=0, atol=1e-5)
    for c in range(3):
        torch.testing.assert_close(exp.for_class(c).sum(-1) + exp.bias[c], logits[:, c], rtol=0, atol=1e-5)
    w, b = net.effective_classifier()
    torch.testing.assert_close(net.codes(x) @ w.T + b, logits, rtol=0, atol=1e-5)
    assert net.num_units == 3 * 194 == len(exp.units) and len(net.sites) == 3 * 4
    assert net.site_importance().shape == (3, 12) and len(net.top_units(k=2)) == 3
    if maps:  # a site's spatial map sums to its units' contributions
        site = "members.2.separable.7"
        smap = exp.spatial_map(site, target=0)
        torch.testing.assert_close(smap.flatten(2).sum(-1), exp.for_class(0)[:, exp.site_slices[site]], rtol=0, atol=1e-5)


def test_standard_ensemble_averages_logits_and_has_no_explanation():
    torch.manual_seed(0)
    net = nv.create_model("lite", num_classes=2, members=2).eval()
    x = torch.randn(3, 1, 32)
    torch.testing.assert_close(net(x), (net.members[0](x) + net.members[1](x)) / 2)
    with pytest.raises(TypeError, match="explain: needs NeuroView-CNN members"):
        net.explain(x)
    assert getattr(net, "sites", "none") == "none"


def test_bad_members_are_clear_errors():
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match=r"members: expected an int >= 1, got"):
            nv.create_model("nv_lite", members=bad)
    with pytest.raises(ValueError, match="members: expected at least one"):
        Ensemble([])
    with pytest.raises(TypeError, match="members: expected all NeuroView-CNNs or none"):
        Ensemble([nv.create_model("lite"), nv.create_model("nv_lite")])
    with pytest.raises(ValueError, match="members: expected the same number of classes"):
        Ensemble([nv.create_model("lite", num_classes=2), nv.create_model("lite", num_classes=3)])
    with pytest.raises(RuntimeError, match="sites: not found yet"):
        nv.create_model("nv_lite", members=2).units
    net = nv.create_model("lite")  # [net] * 3 is one network three times: its "members" would train as one
    with pytest.raises(ValueError, match=r"members: member 1 is member 0, the same module \(as \[net\] \* k gives\)"):
        Ensemble([net] * 3)
    with pytest.raises(ValueError, match=r"members: member 2 is member 0"):
        Ensemble([net, nv.create_model("lite"), net])


@pytest.mark.parametrize("batched", [False, True], ids=["apart", "batched"])
@pytest.mark.parametrize("arch", ["nv_lite", "lite"])
def test_each_member_gets_the_gradient_it_would_get_alone(arch, batched):
    torch.manual_seed(0)
    module = NeuroViewModule(arch, num_classes=3, in_channels=1, model_kwargs={"members": 2, "batched": batched},
                             classifier_lr=1e-4)
    x, y = torch.randn(8, 1, 30), torch.arange(8) % 3
    module.build(x)
    assert module.ensemble and len(module.classifiers) == 2
    # both members' classifier weights in the classifier's group, at its own rate
    head = next(g for g in module.parameter_groups() if g.get("lr") == 1e-4)
    assert {id(p) for p in head["params"]} == {id(c.weight) for c in module.classifiers}
    module.train()
    module.log = lambda *a, **k: None  # outside a Trainer
    module.training_step((x, y), 0).backward()
    assert (module.model._pass is not None) is batched  # the members ran in one pass where batched
    got = [p.grad.clone() for p in module.model.members[0].parameters() if p.grad is not None]
    module.zero_grad()
    F.cross_entropy(module.model.members[0](x), y).backward()  # member 0 alone, on the same batch
    alone = [p.grad for p in module.model.members[0].parameters() if p.grad is not None]
    assert len(got) == len(alone) > 0
    for g, a in zip(got, alone):
        torch.testing.assert_close(g, a)
    if arch == "nv_lite":  # each member's own backbone head never decides: frozen, under its member's name
        assert module.unreached == ["members.0.backbone.fc", "members.1.backbone.fc"]


def test_ensemble_round_trips_through_the_zoo(tmp_path):
    torch.manual_seed(0)
    kw = {"num_classes": 3, "in_channels": 1, "members": 2}
    net = nv.create_model("nv_lite", **kw)
    x = torch.randn(5, 1, 24)
    net.train()(x)
    net.eval()
    ds = {"name": "none", "data_module": {"class_path": "neuroview.data.UCRDataModule", "init_args": {}}}
    zoo.save_pretrained(net, "nv_lite.tiny", architecture="nv_lite", arch_kwargs=kw, dataset=ds, recipe=None, seed=0,
                        metrics={"test_acc": 0.5}, root=tmp_path)
    back = zoo.load_pretrained("nv_lite.tiny", root=tmp_path)
    assert isinstance(back, Ensemble) and len(back) == 2
    torch.testing.assert_close(back(x), net(x))
    torch.testing.assert_close(back.explain(x).for_class(1), net.explain(x).for_class(1))


def test_the_report_reads_an_ensemble_as_one_network(tmp_path):
    from neuroview.viz.report import write_report

    torch.manual_seed(0)
    net = nv.create_model("nv_lite", num_classes=3, members=2)
    x = torch.randn(6, 1, 40)
    net.train()(x)
    files = write_report(net.eval(), x, torch.arange(6) % 3, tmp_path, progress=False, examples=1)
    assert "index.html" in files
    rows = (tmp_path / "unit_importance.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 194 and any(r.startswith("members.1.") for r in rows[1:])


@pytest.mark.parametrize("batched", [False, True], ids=["apart", "batched"])
@pytest.mark.parametrize("global_head", [False, True])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_exact_under_autocast(dtype, global_head, batched):
    torch.manual_seed(0)
    net = nv.create_model("nv_lite", num_classes=3, members=2, batched=batched)
    x = torch.randn(6, 1, 40)
    net.train()(x)
    if global_head:  # one head over both members' units, as nv.sparsify builds it
        net.build_head(net.num_units)
        net(x)  # a step of its batch statistics
    net.eval()
    with torch.autocast("cpu", dtype=dtype):
        exp = net.explain(x)
        out = net(x)
    assert exp.logits.dtype == torch.float32 and out.dtype == torch.float32  # every member's head in float32
    gap = exp.for_class().sum(-1) + exp.bias[exp.target] - exp.logits[torch.arange(6), exp.target]
    assert gap.abs().max() <= 1e-5 * exp.logits.abs().max()
    torch.testing.assert_close(out, exp.logits, rtol=0, atol=1e-5)
    assert (net._pass is not None) is batched


def test_an_ensemble_of_rnns_hands_each_member_the_lengths():
    """forward took no lengths: a bare "unexpected keyword argument 'lengths'" for variable-length series."""
    torch.manual_seed(0)
    members = [nv.NeuroViewRNN(nn.GRU(3, 4, batch_first=True), 2, max_len=6).eval() for _ in range(2)]
    ens = Ensemble(members).eval()
    x, lengths = torch.randn(3, 6, 3), torch.tensor([6, 2, 4])
    torch.testing.assert_close(ens(x, lengths=lengths), (members[0](x, lengths=lengths) + members[1](x, lengths=lengths)) / 2)
    cnn = Ensemble([nv.wrap(nn.Sequential(nn.Conv1d(3, 4, 3), nn.ReLU()), 2, input_shape=(3, 6)) for _ in range(2)])
    with pytest.raises(TypeError, match="lengths: the members are NeuroView-CNNs"):
        cnn(torch.randn(3, 3, 6), lengths=lengths)
    # a data batch [B, C, T] reaches each kind as its members read it: [B, T, C] with lengths, or as it is
    from neuroview._batch import call_model, takes_lengths

    assert takes_lengths(ens) and not takes_lengths(cnn)
    torch.testing.assert_close(call_model(ens, x.transpose(1, 2), lengths), ens(x, lengths=lengths))
    assert call_model(cnn, torch.randn(3, 3, 6)).shape == (3, 2)
