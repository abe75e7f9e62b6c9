"""What the wrapper froze as unreached, seen from later training passes (follow-ups of /tmp/s18/D1, finding 3 and the
``paths.py`` lookup of finding 2 of /tmp/s18/P2).

3: the backbone's own head made trainable again (``requires_grad_(True)``, a new head, a linear probe's backbone
   unfrozen) was said by nobody: ``reach.warn_unreached_trainable`` existed but no pass called it, and plain DDP failed
   at its second step with torch's generic message. A training pass now names those parameters, at the user's line,
   once, at the cost of a few flag checks per pass.
2: a frozen expert of a mixture of experts that the first batch did not route to, pruned since, raised torch's
   ``AttributeError: `weight` is not an nn.Parameter`` on the first training batch routed to it.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

import neuroview as nv
from neuroview.core import paths
from test_arch_probe_faults import _MoE  # a top-1 mixture of experts routed by pixel [0, 0, 0]

SAID = r"\['backbone\.6\.weight', 'backbone\.6\.bias'\] require grad, but the decision never reaches them"


def _backbone() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 10))


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(8, 1, 8, 8, generator=g), torch.randint(0, 10, (8,), generator=g)


def _step(net: nn.Module, opt: torch.optim.Optimizer) -> None:
    x, y = _batch()
    opt.zero_grad()
    nn.functional.cross_entropy(net.train()(x), y).backward()
    opt.step()


def _made_trainable(how: str):
    """A wrapped CNN whose unreached head (backbone[6]) requires grad again, ``how`` a user gets there."""
    bb = _backbone()
    net = nv.wrap(bb, num_classes=10)
    x, _ = _batch()
    if how == "linear_probe":  # the backbone frozen when the first batch runs (the head trained first), unfrozen later
        bb.requires_grad_(False)
        net(x)
        bb.requires_grad_(True)
        return net
    net(x)
    assert net.unreached == ["backbone.6"] and not any(p.requires_grad for p in bb[6].parameters())
    if how == "requires_grad":  # a freeze / unfreeze schedule (Lightning's BaseFinetuning.make_trainable)
        net.requires_grad_(False)
        net.requires_grad_(True)
    elif how == "replace":  # the usual "new head" step
        bb[6] = nn.Linear(6, 10)
    else:  # a deeper new head
        bb[6] = nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 10))
    return net


@pytest.mark.parametrize("how", ["requires_grad", "replace", "replace_deeper", "linear_probe"])
def test_an_unreached_head_made_trainable_again_is_named_at_the_users_line_by_the_next_training_pass(how):
    net = _made_trainable(how)
    x, _ = _batch()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net.eval()(x)  # an eval pass says nothing (no DDP step follows it)
        with torch.no_grad():
            net.train()(x)  # nor one without gradients
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net.train()(x)  # the user's line
    said = [w for w in caught if "require grad, but the decision never reaches them" in str(w.message)]
    assert len(said) == 1 and said[0].category is UserWarning
    assert said[0].filename == __file__  # named at the caller's line, not inside neuroview or torch
    text = str(said[0].message)
    if how == "replace_deeper":
        assert "['backbone.6.0.weight', 'backbone.6.0.bias', 'backbone.6.2.weight', 'backbone.6.2.bias']" in text
    else:
        assert "['backbone.6.weight', 'backbone.6.bias']" in text
    assert "net.get_submodule('backbone.6').requires_grad_(False)" in text and "find_unused_parameters=True" in text
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once
        net(x)
        net(x)


def test_a_head_that_stays_frozen_is_never_named_through_training_and_a_freeze_schedule():
    net = nv.wrap(_backbone(), num_classes=10)
    net(_batch()[0])
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):
            _step(net, opt)
        net.backbone[0].requires_grad_(False)  # a schedule over the layers the decision reads: none of them is unreached
        _step(net, opt)
        net.backbone[0].requires_grad_(True)
        _step(net, opt)
    assert not any(p.requires_grad for p in net.backbone[6].parameters())


def test_frozen_again_and_unfrozen_again_it_is_named_again():
    net = _made_trainable("requires_grad")
    x, _ = _batch()
    with pytest.warns(UserWarning, match=SAID):
        net.train()(x)
    net.get_submodule("backbone.6").requires_grad_(False)  # the fix the warning names
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net(x)
    net.requires_grad_(True)
    with pytest.warns(UserWarning, match=SAID):
        net(x)


def test_a_training_pass_checks_a_few_flags_and_looks_in_full_only_where_one_changed(monkeypatch):
    """The full look (``reach.warn_unreached_trainable``: module lookups by name, tens of microseconds) runs on the first
    training pass and where a flag, a module or the names changed since; every other pass compares what it saw."""
    looks = []
    full = paths.warn_unreached_trainable
    monkeypatch.setattr(paths, "warn_unreached_trainable", lambda net: (looks.append(1), full(net)))
    net = nv.wrap(_backbone(), num_classes=10)
    x, _ = _batch()
    net.eval()(x)  # eval passes are not looked at
    with torch.no_grad():
        net.train()(x)
    assert looks == []
    for _ in range(4):
        net.train()(x)
    assert len(looks) == 1  # the frozen head: nothing changed after the first look
    net.requires_grad_(True)
    with pytest.warns(UserWarning, match=SAID):
        net(x)
    for _ in range(4):
        net(x)  # said: no repeated cost
    assert len(looks) == 2
    net.backbone[6] = nn.Linear(6, 10)  # a module put in its place: looked at again (the same set: not said again)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net(x)
        net(x)
    assert len(looks) == 3


@pytest.mark.parametrize("name", ["nv_small_cnn", "nv_vgg_cnn", "nv_resnet18_cifar", "nv_vit_tiny", "nv_fcn1d",
                                  "nv_resnet1d", "nv_inception_time", "nv_lite"])
def test_zoo_architectures_train_without_the_warning(name):
    torch.manual_seed(0)
    net = nv.create_model(name, num_classes=4)
    first = next(m for m in net.backbone.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d)))
    x = torch.randn(4, first.in_channels, *((32,) if isinstance(first, nn.Conv1d) else (16, 16)))
    y = torch.tensor([0, 1, 2, 3])
    net(x)
    assert net.frozen  # each has a head its decision never reaches: the check runs on every pass below
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.01)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*require grad, but the decision never reaches them")
        for _ in range(2):
            opt.zero_grad()
            nn.functional.cross_entropy(net.train()(x), y).backward()
            opt.step()


# ------------------------------------------------------------- finding 2, paths.py


def _routed(routes):
    x = torch.randn(len(routes), 3, 9, 9, generator=torch.Generator().manual_seed(2))
    x[:, 0, 0, 0] = torch.tensor(routes, dtype=x.dtype)
    return x


def test_a_pruned_expert_the_first_batch_did_not_route_to_trains_when_a_later_batch_does():
    """Was: AttributeError: `weight` is not an nn.Parameter (the frozen expert's weight looked up by name, where
    pruning had put ``weight_orig``)."""
    torch.manual_seed(0)
    bb = _MoE()
    net = nv.wrap(bb, 3, example_input=_routed([0, 1, 0]), unit_axis={"act": 1})
    assert net.unreached == ["backbone.experts.2", "backbone.experts.3"]
    prune.l1_unstructured(bb.experts[2], "weight", amount=0.5)
    orig, mask = bb.experts[2].weight_orig, bb.experts[2].weight_mask
    assert not orig.requires_grad
    x = _routed([0, 1, 2, 2, 1, 0])  # routed to expert 2 (and not 3)
    with pytest.warns(UserWarning, match=r"\['experts.2'\] run on this batch but did not reach the decision"):
        loss = nn.functional.cross_entropy(net.train()(x), torch.tensor([0, 1, 2, 0, 1, 2]))
    assert net.unreached == ["backbone.experts.3"] and orig.requires_grad and bb.experts[2].bias.requires_grad
    loss.backward()
    assert orig.grad is not None and orig.grad.abs().sum() > 0
    assert (orig.grad[mask == 0] == 0).all()  # pruned entries get no gradient: the mask still applies
    assert not bb.experts[3].weight.requires_grad  # not routed to: still frozen
