"""Probe S27 P3 finding 1: a NeuroViewCNN / NeuroViewRNN / Ensemble subclass whose own forward or head changes the
logits (an input normalization, a temperature) was explained by the codes and the linear head alone, which then
disagreed with ``net(x)`` without a word. Such a subclass is checked on the batch at hand and refused by name; one
whose override changes nothing (logging, then ``super().forward``) keeps working, and a plain class runs no extra
pass."""

import pytest
import torch
from torch import nn

import neuroview as nv


def _bb():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 3))


class Normed(nv.NeuroViewCNN):  # an input normalization folded into the wrapper
    def forward(self, x):
        return super().forward((x - 0.5) / 0.25)


class Temp(nv.NeuroViewCNN):  # a temperature
    def forward(self, x):
        return super().forward(x) / 2.0


class TempHead(nv.NeuroViewCNN):  # the same through head(codes)
    def head(self, codes):
        return super().head(codes) / 2.0


class Logged(nv.NeuroViewCNN):  # an override that changes no number
    calls = 0

    def forward(self, x):
        type(self).calls += 1
        return super().forward(x)


def _trained(cls, x):
    net = cls(_bb(), num_classes=3, example_input=x)
    net.train()
    net(x), net(x)  # running statistics away from their initial values: the folded head is no identity
    return net.eval()


@pytest.mark.parametrize("cls,method", [(Normed, "forward"), (Temp, "forward"), (TempHead, "head")])
def test_explain_of_a_subclass_whose_own_method_changes_the_logits_is_refused_by_name(cls, method):
    torch.manual_seed(0)
    x = torch.randn(16, 3, 8, 8)
    net = _trained(cls, x)
    with pytest.raises(ValueError, match=rf"^explain: {cls.__name__} has its own {method}, whose logits differ from the "
                                         r"codes' linear decision .*by up to \d.*Move input transforms into the backbone"):
        net.explain(x)


def test_the_check_leaves_the_modes_as_they_were():
    torch.manual_seed(0)
    x = torch.randn(16, 3, 8, 8)
    net = _trained(Temp, x).train()
    net.backbone[0].eval()
    modes = [m.training for m in net.modules()]
    with pytest.raises(ValueError, match="has its own forward"):
        net.explain(x)
    assert [m.training for m in net.modules()] == modes


def test_a_subclass_whose_override_changes_nothing_is_explained_exactly():
    torch.manual_seed(0)
    x = torch.randn(16, 3, 8, 8)
    net = _trained(Logged, x)
    exp = net.explain(x)
    with torch.no_grad():
        out = net(x)
    assert torch.allclose(out, exp.logits, atol=1e-5)
    picked = exp.for_class().sum(-1) + exp.bias[exp.target]
    assert torch.allclose(picked, out.gather(1, exp.target[:, None])[:, 0], atol=1e-5)


def test_a_plain_network_runs_no_extra_pass():
    torch.manual_seed(0)
    x = torch.randn(8, 3, 8, 8)
    net = _trained(nv.NeuroViewCNN, x)
    ran = []
    h = net.backbone[0].register_forward_pre_hook(lambda *a: ran.append(1))
    net.explain(x)
    h.remove()
    assert len(ran) == 1
    net = _trained(Logged, x)
    Logged.calls = 0
    net.explain(x)
    assert Logged.calls == 1  # a subclass: the one pass the check runs


class RTemp(nv.NeuroViewRNN):
    def forward(self, x, lengths=None):
        return super().forward(x, lengths=lengths) / 2.0


class RLogged(nv.NeuroViewRNN):
    def forward(self, x, lengths=None):
        return super().forward(x, lengths=lengths)


def test_an_rnn_subclass_with_a_temperature_is_refused_and_one_that_changes_nothing_is_exact():
    torch.manual_seed(0)
    s, lengths = torch.randn(8, 10, 2), torch.tensor([10, 7, 10, 3, 10, 10, 5, 10])
    for cls in (RTemp, RLogged):
        net = cls(nn.GRU(2, 4, batch_first=True), num_classes=3, max_len=10)
        net.train()
        net(s, lengths=lengths)
        net.eval()
        if cls is RTemp:
            with pytest.raises(ValueError, match=r"^explain: RTemp has its own forward, whose logits differ"):
                net.explain(s, lengths=lengths)
            continue
        exp = net.explain(s, lengths)
        with torch.no_grad():
            assert torch.allclose(net(s, lengths=lengths), exp.logits, atol=1e-5)


def test_an_ensemble_of_members_with_a_temperature_is_refused_by_the_member_s_class():
    torch.manual_seed(0)
    x = torch.randn(16, 3, 8, 8)
    ens = nv.Ensemble([_trained(Temp, x), _trained(Temp, x)]).eval()
    with pytest.raises(ValueError, match=r"^explain: Temp has its own forward"):
        ens.explain(x)


class TempEnsemble(nv.Ensemble):
    def forward(self, x, lengths=None):
        return super().forward(x, lengths) / 2.0


class LoggedEnsemble(nv.Ensemble):
    def forward(self, x, lengths=None):
        return super().forward(x, lengths)


def test_an_ensemble_subclass_with_a_temperature_is_refused_and_one_that_changes_nothing_is_exact():
    torch.manual_seed(0)
    x = torch.randn(16, 3, 8, 8)
    members = [_trained(nv.NeuroViewCNN, x), _trained(nv.NeuroViewCNN, x)]
    with pytest.raises(ValueError, match=r"^explain: TempEnsemble has its own forward, whose logits differ"):
        TempEnsemble(members).eval().explain(x)
    ens = LoggedEnsemble(members).eval()
    exp = ens.explain(x)
    with torch.no_grad():
        assert torch.allclose(ens(x), exp.logits, atol=1e-5)


def test_readability_of_a_subclass_with_a_temperature_is_refused():
    torch.manual_seed(0)
    x = torch.randn(16, 3, 8, 8)
    net = _trained(Temp, x)
    with pytest.raises(ValueError, match=r"has its own forward, whose logits differ"):
        nv.readability(net, [(x, torch.zeros(16, dtype=torch.long))], baseline=None)
