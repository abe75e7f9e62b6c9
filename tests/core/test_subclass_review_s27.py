"""Review R4 of the subclass check (d910409), findings 2 and 3: a subclass whose forward cannot be called as
``net(x)`` (another required argument) died inside explain's check in a bare TypeError, and one returning a dict was
refused, though both explained before the check; a head or forward set on the instance (``net.head = ...``) was not
checked at all, and its explanation summed to logits the network never gave."""

import types
import warnings

import pytest
import torch
from torch import nn

import neuroview as nv


def _bb():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 3))


def _trained(cls, x):
    net = cls(_bb(), num_classes=3, example_input=x)
    net.train()
    for _ in range(2):  # running statistics away from their initial values: the folded head is no identity
        nv.NeuroViewCNN.forward(net, x)
    return net.eval()


class WithMask(nv.NeuroViewCNN):  # another required argument: net(x) alone cannot be called
    def forward(self, x, mask):
        return super().forward(x * mask)


class Dict(nv.NeuroViewCNN):  # Hugging Face style: the logits in a dict
    def forward(self, x):
        return {"logits": super().forward(x)}


class DictTemp(nv.NeuroViewCNN):  # the same, with a temperature: still another network
    def forward(self, x):
        return {"logits": super().forward(x) / 2.0}


class Pair(nv.NeuroViewCNN):  # two tensors of the logits' shape: which one decides cannot be told
    def forward(self, x):
        out = super().forward(x)
        return out, out * 2.0


class RLens(nv.NeuroViewRNN):  # an RNN's second argument under another name
    def forward(self, x, lens=None):
        return super().forward(x, lengths=lens)


def _exact(exp, logits):
    return float((exp.logits - logits.detach()).abs().max()) < 1e-4


def test_a_forward_that_cannot_be_called_with_x_alone_is_explained_with_a_warning_naming_the_override():
    torch.manual_seed(0)
    x = torch.randn(16, 3, 8, 8)
    net = _trained(WithMask, x)
    with pytest.warns(UserWarning, match=r"^explain: WithMask has its own forward, which cannot be called as net\(x\) "
                                         r"to check .*TypeError: .*missing 1 required positional argument: 'mask'.*"
                                         r"return the logits tensor"):
        exp = net.explain(x)
    assert _exact(exp, net(x, torch.ones_like(x)))  # its explanation: of the codes' decision, as before the check
    with warnings.catch_warnings():  # once a class
        warnings.simplefilter("error")
        net.explain(x)


def test_a_dict_holding_the_logits_is_checked_through_its_logits_entry():
    torch.manual_seed(0)
    x = torch.randn(16, 3, 8, 8)
    net = _trained(Dict, x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exp = net.explain(x)
    assert _exact(exp, net(x)["logits"])
    with pytest.raises(ValueError, match=r"^explain: DictTemp has its own forward, whose logits differ from the codes' "
                                         r"linear decision .*by up to \d"):
        _trained(DictTemp, x).explain(x)


def test_an_output_whose_logits_cannot_be_told_is_said_so():
    torch.manual_seed(0)
    x = torch.randn(16, 3, 8, 8)
    with pytest.warns(UserWarning, match=r"^explain: Pair has its own forward, whose output \(tuple\) holds 2 tensors "
                                         r"of the logits' shape .*cannot be "
                                         r"checked.*return the logits tensor"):
        _trained(Pair, x).explain(x)


def test_an_rnn_subclass_whose_lengths_argument_has_another_name_is_explained_with_a_warning():
    torch.manual_seed(0)
    s, lengths = torch.randn(8, 10, 2), torch.tensor([10, 7, 10, 3, 10, 10, 5, 10])
    net = RLens(nn.GRU(2, 4, batch_first=True), num_classes=3, max_len=10).eval()
    with pytest.warns(UserWarning, match=r"^explain: RLens has its own forward, which cannot be called as "
                                         r"net\(x, lengths=lengths\) .*unexpected keyword argument 'lengths'"):
        exp = net.explain(s, lengths=lengths)
    assert _exact(exp, net(s, lens=lengths))


@pytest.mark.parametrize("name", ["head", "forward"])
def test_a_method_set_on_the_instance_that_changes_the_logits_is_refused_by_name(name):
    torch.manual_seed(0)
    x = torch.randn(16, 3, 8, 8)
    net = _trained(nv.NeuroViewCNN, x)
    if name == "head":
        net.head = types.MethodType(lambda self, c: nv.NeuroViewCNN.head(self, c) / 2.0, net)
    else:
        net.forward = types.MethodType(lambda self, x: nv.NeuroViewCNN.forward(self, x) / 2.0, net)
    with pytest.raises(ValueError, match=rf"^explain: NeuroViewCNN has its own {name} \(set on the instance\), whose "
                                         r"logits differ from the codes' linear decision .*by up to \d"):
        net.explain(x)


def test_a_method_set_on_the_instance_that_changes_nothing_is_explained_exactly():
    torch.manual_seed(0)
    x = torch.randn(16, 3, 8, 8)
    net = _trained(nv.NeuroViewCNN, x)
    net.head = types.MethodType(lambda self, c: nv.NeuroViewCNN.head(self, c), net)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exp = net.explain(x)
    assert _exact(exp, net(x))


def test_the_readers_of_codes_say_so_too_and_still_read_them():
    torch.manual_seed(0)
    x, y = torch.randn(16, 3, 8, 8), torch.randint(0, 3, (16,))
    net = _trained(type("MaskedToo", (WithMask,), {}), x)  # a class of its own: said once a class
    with pytest.warns(UserWarning, match=r"^net: MaskedToo has its own forward, which cannot be called as net\(x\) .*"
                                         r"\(on the first batch of train\).*return the logits tensor"):
        got = nv.mean_codes(net, [(x, y)])
    assert torch.allclose(got, net.codes(x).mean(0), atol=1e-5)
