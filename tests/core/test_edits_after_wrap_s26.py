"""A backbone edited after it was wrapped (probe S26 P3): the network reads its sites by the objects it hooked, so an
edit that moves the names or adds an activation is refused by name at the next pass, a state dict taken meanwhile
changes nothing, and a lazy wrap reads the model as its first batch finds it."""

import copy
import warnings

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.core.hooks import PathChanged


def _cnn():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 6, 3), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3))


def _wrapped():
    torch.manual_seed(0)
    bb = _cnn()
    x = 4 * torch.randn(16, 1, 8, 8)
    return bb, nv.wrap(bb, num_classes=3, example_input=x).eval(), x


def _insert_clip(bb):
    bb.insert(2, nn.Conv2d(4, 4, 1))
    bb.insert(3, nn.Hardtanh(-2.0, 2.0))


def test_an_activation_inserted_after_wrapping_is_refused_by_name():
    bb, net, x = _wrapped()
    _insert_clip(bb)
    for call in (net, net.explain, net.codes):
        with pytest.raises(PathChanged, match=r"'3' \(Hardtanh\) was added.*site '3' .*is now at '5'.*wrap the edited"):
            call(x)


def test_a_state_dict_or_a_registration_taken_after_the_insert_changes_nothing():
    bb, net, x = _wrapped()
    with torch.no_grad():
        before = net(x)
    _insert_clip(bb)
    sd = net.state_dict()  # each site's breakpoints read from the module it hooked, not from the one now named '3'
    assert sd._metadata[""]["points"] == [[0.0], [0.0]]

    class Unrelated(nn.Module):
        def forward(self, t):
            return t

    nv.register_activation(Unrelated)  # the next pass re-reads the breakpoints: of the hooked ReLU, not of '3'
    with pytest.raises(PathChanged):
        net(x)
    del bb[3], bb[2]  # the edit undone: the same objects at the same names
    with torch.no_grad():
        after = net(x)
    assert [s.points for s in net.sites] == [(0.0,), (0.0,)]
    assert torch.equal(after, before)


def test_a_deleted_module_that_moves_the_site_names_is_refused_by_name():
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Dropout(0.2), nn.Conv2d(4, 4, 3), nn.ReLU(),
                       nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    x = torch.randn(8, 1, 10, 10)
    net = nv.wrap(bb, num_classes=3, example_input=x).eval()
    del bb[2]  # an identity in eval, but the site '4' is now '3', and '4' names the AdaptiveAvgPool2d
    with pytest.raises(PathChanged, match=r"site '4' \(ReLU\) is now at '3', and '4' now names the AdaptiveAvgPool2d"):
        net(x)


def test_edits_that_move_no_site_name_and_add_no_activation_go_through():
    bb, net, x = _wrapped()
    with torch.no_grad():
        before = net(x)
        bb[6] = nn.Linear(6, 3)  # the backbone's own head, after the stop: replaced
        bb.add_module("extra", nn.Identity())  # a module added after the others, moving no name
        assert torch.equal(net(x), before)
        net.backbone = torch.compile(net.backbone, backend="eager")  # names under _orig_mod: the same objects
        assert torch.equal(net(x), before)
        net.backbone = nn.DataParallel(net.backbone._orig_mod)  # on the CPU it calls the module it holds
        assert torch.equal(net(x), before)


def test_an_activation_added_before_the_stop_is_refused_by_the_pass_that_runs_it_and_one_after_it_is_not():
    bb, net, x = _wrapped()
    with torch.no_grad():
        before = net(x)
        bb[6] = nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 3))  # a deeper head, after the stop: never run
        assert torch.equal(net(x), before)
    bb[2] = nn.Sequential(bb[2], nn.Tanh())  # no site's name moves, but its 6 units would be left out
    said = r"'2.1' \(Tanh\) was added, and runs before the pass stops \(at '4'\).*wrap the edited model again"
    with pytest.raises(PathChanged, match=said):
        net(x)
    with pytest.raises(PathChanged, match=said):
        net.train()(x)
    with pytest.raises(PathChanged, match=said):  # a copy watches it too
        copy.deepcopy(net).eval()(x)


def test_a_replaced_site_module_keeps_its_message():
    bb, net, x = _wrapped()
    bb[3] = nn.GELU()
    with pytest.raises(PathChanged, match=r"the modules \['3'\] were replaced after the sites were found"):
        net(x)


def _sites(net):
    return [(s.name, s.channels) for s in net.sites]


@pytest.mark.parametrize("edit", ["swap", "insert", "backbone"])
def test_a_lazy_wrap_reads_the_model_as_its_first_batch_finds_it(edit):
    torch.manual_seed(0)
    x = torch.randn(8, 1, 8, 8)
    edits = {"swap": lambda b: b.__setitem__(1, nn.GELU()),
             "insert": lambda b: (b.insert(2, nn.Conv2d(4, 4, 1)), b.insert(3, nn.ReLU())),
             "backbone": None}
    bb = _cnn()
    net = nv.wrap(bb, num_classes=3)  # lazy: the sites are found on the first batch
    if edits[edit] is None:
        net.backbone = bb = _cnn()  # re-built (or re-loaded) after nv.wrap; no layers= was ever passed
    else:
        edits[edit](bb)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "activation functions outside any activation module" on a module
        net(x)
    ref = _cnn()
    if edits[edit] is not None:
        edits[edit](ref)
    want = {"swap": [("1", 4), ("3", 6)], "insert": [("1", 4), ("3", 4), ("5", 6)], "backbone": [("1", 4), ("3", 6)]}
    assert _sites(net) == _sites(nv.wrap(ref, num_classes=3, example_input=x)) == want[edit]
    assert net.num_units == sum(c for _, c in want[edit])


class _Functional(nn.Module):
    """An activation module it holds but never calls: its forward calls F.relu."""

    def __init__(self):
        super().__init__()
        self.conv, self.act = nn.Conv2d(1, 4, 3), nn.ReLU()

    def forward(self, x):
        return torch.relu(self.conv(x))


def test_no_activation_module_called_is_worded_by_what_was_given():
    x = torch.randn(4, 1, 8, 8)
    with pytest.raises(ValueError, match=r"^backbone: none of its activation modules \['act'\] was called") as e:
        nv.wrap(_Functional(), num_classes=3, example_input=x)
    assert "layers:" not in str(e.value).split(";")[0]
    with pytest.raises(ValueError, match=r"^layers: none of the modules \['act'\] was called"):
        nv.wrap(_Functional(), num_classes=3, example_input=x, layers=["act"])
