"""What the wrapper froze as unreached (the backbone's own head), once the model is edited after wrapping
(probe /tmp/s18/P2, findings 2, 3 and 7).

2: pruning or weight_norm on the frozen head moved the parameter to another name (``weight_orig``,
   ``parametrizations.weight.original0``): ``torch.save(net)``, ``unwrap()`` and ``deepcopy`` of the backbone failed
   with torch's bare ``AttributeError: `weight` is not an nn.Parameter``.
7: the garbage collection thawed the parameter objects it had frozen, not those standing in their place by then
   (``load_state_dict(assign=True)``, weight_norm): the plain model's head stayed frozen for good.
3: the head made trainable again (``requires_grad_(True)``, a new head, a linear probe's backbone unfrozen) was not
   noticed: plain DDP then failed at its second step with torch's generic message.
"""

from __future__ import annotations

import copy
import gc
import io
import warnings

import pytest
import torch
from torch import nn
from torch.nn.utils import prune
from torch.nn.utils.parametrizations import weight_norm

import neuroview as nv
from neuroview.core import reach


def _backbone() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 10))


def _x() -> torch.Tensor:
    return torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def _wrapped():
    bb = _backbone()
    net = nv.wrap(bb, num_classes=10)
    net(_x())
    assert net.frozen == ("6.weight", "6.bias")  # the pass stops before the head: frozen as unreached
    return bb, net


def _head_grads(bb: nn.Module) -> dict[str, bool]:
    return {n: p.requires_grad for n, p in bb[6].named_parameters()}


def _no_hooks(bb: nn.Module) -> bool:
    """No hook of neuroview's left (pruning keeps its own)."""
    from neuroview.core.hooks import Hook

    return not any(isinstance(h, Hook) for m in bb.modules() for h in (*m._forward_pre_hooks.values(), *m._forward_hooks.values()))


# ---------------------------------------------------------------------------------------------- finding 2


def test_current_finds_a_parameter_where_pruning_or_parametrize_moved_it():
    bb = _backbone()
    w, b = bb[6].weight, bb[6].bias
    assert reach.current(bb, "6.weight") == [w] and reach.current(bb, "6.bias") == [b]
    prune.l1_unstructured(bb[6], "weight", amount=0.5)
    assert [p is w for p in reach.current(bb, "6.weight")] == [True]  # prune keeps the object, as 6.weight_orig
    weight_norm(bb[2])
    moved = reach.current(bb, "2.weight")
    assert [id(p) for p in moved] == [id(bb[2].parametrizations.weight.original0), id(bb[2].parametrizations.weight.original1)]
    assert reach.current(bb, "9.weight") == [] and reach.current(bb, "4.weight") == []  # gone, or never one


def test_a_pruned_frozen_head_saves_copies_and_unwraps():
    bb, net = _wrapped()
    prune.l1_unstructured(bb[6], "weight", amount=0.5)  # the head alone: its mask times a frozen leaf is a leaf
    net.eval()
    want = net(_x())
    buf = io.BytesIO()
    torch.save(net, buf)  # was: AttributeError: `weight` is not an nn.Parameter
    buf.seek(0)
    back = torch.load(buf, weights_only=False)
    torch.testing.assert_close(back(_x()), want, rtol=0, atol=0)
    assert _head_grads(back.backbone) == {"bias": False, "weight_orig": False}  # the copy's own: frozen
    twin = copy.deepcopy(bb)  # a copy of the model without the network: its head trainable, as unwrap() gives it
    assert _head_grads(twin) == {"bias": True, "weight_orig": True} and _head_grads(bb) == {"bias": False, "weight_orig": False}
    buf = io.BytesIO()
    torch.save(bb, buf)  # was: the same AttributeError
    assert net.unwrap() is bb and _head_grads(bb) == {"bias": True, "weight_orig": True} and _no_hooks(bb)


def test_a_weight_normed_frozen_head_unwraps_and_copies():
    bb, net = _wrapped()
    weight_norm(bb[6])
    assert _head_grads(bb) == {"bias": False, "parametrizations.weight.original0": False,
                               "parametrizations.weight.original1": False}
    twin = copy.deepcopy(bb)  # was: AttributeError: `weight` is not an nn.Parameter
    assert all(_head_grads(twin).values())
    copied = copy.deepcopy(net)  # the copy of the network holds its own copies frozen
    assert not any(_head_grads(copied.backbone).values())
    with pytest.raises(RuntimeError, match="Serialization of parametrized modules"):  # torch's own limit, said by torch
        torch.save(net, io.BytesIO())
    assert net.unwrap() is bb and all(_head_grads(bb).values()) and _no_hooks(bb)
    assert not any(_head_grads(copied.backbone).values())  # the copy's stay frozen until its own unwrap()
    copied.unwrap()
    assert all(_head_grads(copied.backbone).values())


# ---------------------------------------------------------------------------------------------- finding 7


def _trains(bb: nn.Module) -> dict[str, bool]:
    """Whether 3 SGD steps on the plain model move each parameter of its head."""
    x, y = _x(), torch.arange(8) % 10
    before = {n: p.detach().clone() for n, p in bb[6].named_parameters()}
    opt = torch.optim.SGD(bb.parameters(), lr=0.5)
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(bb(x), y).backward()
        opt.step()
    return {n: not torch.equal(before[n], p) for n, p in bb[6].named_parameters()}


@pytest.mark.parametrize("edit", ["assign", "weight_norm"])
def test_a_collected_network_gives_back_what_stands_in_its_frozen_parameters_place(edit):
    bb, net = _wrapped()
    if edit == "assign":  # the meta-device loading idiom: new tensors, which keep the old ones' requires_grad=False
        net.load_state_dict(copy.deepcopy(net.state_dict()), assign=True)
        assert bb[6].weight is not None and not any(_head_grads(bb).values())
    else:
        weight_norm(bb[6])
    del net
    gc.collect()
    assert all(_head_grads(bb).values())  # was: the new objects frozen for good
    assert all(_trains(bb).values())  # was: {'weight': False, 'bias': False}


def test_a_second_wrapper_keeps_the_moved_head_frozen_until_it_goes_too():
    bb, first = _wrapped()
    second = nv.wrap(bb, num_classes=10)
    second(_x())
    assert second.frozen == ("6.weight", "6.bias")
    weight_norm(bb[6])
    del first
    gc.collect()
    assert not any(_head_grads(bb).values())  # the second still holds it: its plain DDP needs it frozen
    del second
    gc.collect()
    assert all(_head_grads(bb).values())


def test_a_head_the_user_froze_again_after_unwrap_stays_frozen_when_the_network_goes():
    bb, net = _wrapped()
    weight_norm(bb[6])
    net.unwrap()
    assert all(_head_grads(bb).values())
    bb[6].requires_grad_(False)  # the user's own choice now
    del net
    gc.collect()
    assert not any(_head_grads(bb).values())


# ---------------------------------------------------------------------------------------------- finding 3


def test_nothing_is_named_while_the_unreached_head_stays_frozen():
    bb, net = _wrapped()
    assert reach.unreached_trainable(net) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reach.warn_unreached_trainable(net)


@pytest.mark.parametrize("how", ["requires_grad", "replace", "replace_deeper", "linear_probe"])
def test_an_unreached_head_made_trainable_again_is_named(how):
    bb = _backbone()
    net = nv.wrap(bb, num_classes=10)
    if how == "linear_probe":  # the backbone frozen at the first batch, unfrozen later: the head was never listed
        bb.requires_grad_(False)
        net(_x())
        assert net.frozen == () and net._kept_frozen == ("6.weight", "6.bias")
        assert reach.unreached_trainable(net) == []  # still frozen, by the user
        bb.requires_grad_(True)
    else:
        net(_x())
        if how == "requires_grad":  # a freeze / unfreeze schedule
            net.requires_grad_(False)
            net.requires_grad_(True)
        elif how == "replace":  # the usual new head
            net.backbone[6] = nn.Linear(6, 10)
        else:
            net.backbone[6] = nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 10))
    want = (["backbone.6.0.weight", "backbone.6.0.bias", "backbone.6.2.weight", "backbone.6.2.bias"]
            if how == "replace_deeper" else ["backbone.6.weight", "backbone.6.bias"])
    assert reach.unreached_trainable(net) == want
    with pytest.warns(UserWarning, match=r"net \(the NeuroView network; module.model under NeuroViewModule\): \['backbone.6.* require grad, but the decision never reaches them .*"
                                         r"plain DistributedDataParallel fails at its second step .*freeze them again "
                                         r"\(net.get_submodule\('backbone.6'\).requires_grad_\(False\)\)") as said:
        reach.warn_unreached_trainable(net)
    assert [w.filename for w in said] == [__file__]  # the caller's line
    with warnings.catch_warnings():  # said once per set
        warnings.simplefilter("error")
        reach.warn_unreached_trainable(net)
    net.get_submodule("backbone.6").requires_grad_(False)  # the advice, followed
    assert reach.unreached_trainable(net) == []
    assert all(p.requires_grad for n, p in bb.named_parameters() if not n.startswith("6."))  # reached: untouched


def test_a_head_the_user_froze_before_the_first_batch_stays_frozen_on_unwrap():
    bb = _backbone()
    bb[6].requires_grad_(False)
    net = nv.wrap(bb, num_classes=10)
    net(_x())
    assert net.frozen == () and net._kept_frozen == ("6.weight", "6.bias")
    net.unwrap()
    assert not any(_head_grads(bb).values())  # as the user left it
    del net
    gc.collect()
    assert not any(_head_grads(bb).values())


# ---------------------------------------------------------------------------------------------- review R4 of 05b1080


@pytest.mark.parametrize("then", ["gc", "deepcopy", "save", "unwrap", "second_wrapper_gc"])
def test_a_new_head_the_user_froze_on_purpose_stays_frozen(then):
    """R4 finding 1: a module put in the frozen head's place is the user's: what they set stays (was: trainable again
    at the network's gc, in a copy or a save of the model, since 05b1080)."""
    bb, net = _wrapped()
    bb[6] = nn.Linear(6, 10)
    bb[6].requires_grad_(False)  # the user's own fixed head
    if then == "second_wrapper_gc":  # another wrapper's freeze_unreached adopts what moved for the live ones
        other = nv.wrap(_backbone(), num_classes=10)
        other(_x())
        del other
    if then in ("gc", "second_wrapper_gc"):
        del net
        gc.collect()
        got = bb
    elif then == "deepcopy":
        got = copy.deepcopy(bb)
    elif then == "save":
        buf = io.BytesIO()
        torch.save(bb, buf)
        buf.seek(0)
        got = torch.load(buf, weights_only=False)
    else:
        assert net.unwrap() is bb
        got = bb
    assert _head_grads(got) == {"weight": False, "bias": False}
    assert _head_grads(bb) == {"weight": False, "bias": False}
    assert all(p.requires_grad for n, p in got.named_parameters() if not n.startswith("6."))  # reached: untouched


def test_a_new_head_left_trainable_and_the_moved_old_one_are_still_given_back():
    """What finding 1's fix keeps: the module the wrapper froze, reparametrized in place, is given back at gc; a copy
    of the model made while the network lives gets it back trainable."""
    bb, net = _wrapped()
    weight_norm(bb[6])  # the same module object: the wrapper's to give back
    twin = copy.deepcopy(bb)
    assert all(_head_grads(twin).values())
    del net
    gc.collect()
    assert all(_head_grads(bb).values())


class _Scaled(nn.Module):
    """A decision reaching ``features`` only; ``head`` and the root's own ``temperature`` (CLIP's logit_scale) come
    after the last site."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(4, 3)
        self.temperature = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return self.head(self.features(x)) / self.temperature


def _advice(message: str) -> list[str]:
    return message.split("freeze them again (")[1].split("), or give")[0].split("; ")


def test_the_advice_for_a_parameter_on_the_backbone_itself_freezes_that_parameter_only():
    """R4 finding 2: the advice for ``temperature`` (owner: the backbone's root) was
    ``net.get_submodule('backbone').requires_grad_(False)``, which froze the reached convolution too."""
    torch.manual_seed(0)
    bb = _Scaled()
    net = nv.wrap(bb, num_classes=3)
    net(torch.randn(4, 1, 8, 8))
    assert set(net.frozen) == {"temperature", "head.weight", "head.bias"}
    net.requires_grad_(True)  # a freeze / unfreeze schedule
    with pytest.warns(UserWarning, match="require grad, but the decision never reaches them") as said:
        reach.warn_unreached_trainable(net)
    fix = _advice(str(said[0].message))
    assert sorted(fix) == ["net.get_parameter('backbone.temperature').requires_grad_(False)",
                           "net.get_submodule('backbone.head').requires_grad_(False)"]
    for line in fix:  # followed as written
        eval(line, {"net": net})
    assert reach.unreached_trainable(net) == []
    assert all(p.requires_grad for p in bb.features.parameters())  # was: False (the whole backbone frozen)
    assert not bb.temperature.requires_grad and not any(p.requires_grad for p in bb.head.parameters())


def test_the_warning_says_what_net_is_under_neuroviewmodule():
    """R4 finding 4: ``net`` in the advice is the NeuroView network, ``module.model`` under NeuroViewModule."""
    torch.manual_seed(0)
    bb = _Scaled()
    net = nv.wrap(bb, num_classes=3)
    net(torch.randn(4, 1, 8, 8))
    bb.temperature.requires_grad_(True)
    with pytest.warns(UserWarning) as said:
        reach.warn_unreached_trainable(net)
    assert _advice(str(said[0].message)) == ["net.get_parameter('backbone.temperature').requires_grad_(False)"]
    assert "net (the NeuroView network; module.model under NeuroViewModule): ['backbone.temperature']" in str(said[0].message)


def test_weight_norm_removed_on_the_frozen_head_is_a_plain_tensor_unless_made_trainable_first():
    """R4 finding 5, torch's rule (documented in neuroview.core.reach): ``remove_parametrizations`` rebuilds a frozen
    weight as a plain tensor, no parameter, which nothing can give back; made trainable first, it stays a parameter."""
    from torch.nn.utils import parametrize

    bb, net = _wrapped()
    weight_norm(bb[6])
    parametrize.remove_parametrizations(bb[6], "weight")
    assert "weight" not in bb[6]._parameters and not bb[6].weight.requires_grad  # torch's plain tensor
    assert reach.current(bb, "6.weight") == []  # nothing stands under the name
    del net
    gc.collect()
    assert _trains(bb) == {"bias": True}  # the weight is no parameter: no optimizer ever moves it
    bb, net = _wrapped()
    weight_norm(bb[6])
    bb[6].requires_grad_(True)  # the documented way: trainable before the removal
    parametrize.remove_parametrizations(bb[6], "weight")
    assert isinstance(bb[6]._parameters["weight"], nn.Parameter)
    net.unwrap()
    assert _trains(bb) == {"weight": True, "bias": True}
