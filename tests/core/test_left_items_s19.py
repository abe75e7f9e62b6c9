"""Three faults last session's reviewers noticed and left (s19, L1).

1. A deepcopy or pickle of a NeuroView-CNN whose backbone head the user had replaced by a new head and frozen took that
   head as the copy's own: the copy's ``unwrap()`` (or its garbage collection) unfroze it, where the original's leaves
   it frozen. (NeuroViewRNN freezes nothing as unreached: no such path there.)
2. ``net.unreached`` listed a parameter registered on the backbone itself as the bare ``'backbone'``, a name no
   ``get_parameter`` takes and the whole backbone besides; now ``'backbone.<name>'``, as ``named_parameters()``.
3. An ensemble whose members run batched never warned of an unreached parameter made trainable again (plain DDP fails on
   it at its second step); run member by member it did. Now the same one warning both ways, at the same per-pass cost.
4. (M2, review R1) The fix of 1 took a head torch put in place around the very parameters the network froze
   (``SyncBatchNorm.convert_sync_batchnorm``, QAT's ``from_float``) for the user's: a deepcopy left it frozen after its
   ``unwrap()``, and a pickle's load made it trainable while unreached. The original gives it back, by object; a copy
   now does too.
"""

from __future__ import annotations

import copy
import gc
import pickle
import warnings

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.core import paths
from neuroview.core.ensemble import Ensemble


def _backbone() -> nn.Sequential:
    torch.manual_seed(0)  # the head (index 4) comes after the only ReLU: no code reaches it, so it is frozen
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 10))


def _x() -> torch.Tensor:
    return torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def _grads(module: nn.Module) -> list[bool]:
    return [p.requires_grad for p in module.parameters()]


_COPIES = {"deepcopy": copy.deepcopy, "pickle": lambda net: pickle.loads(pickle.dumps(net))}


@pytest.mark.parametrize("how", sorted(_COPIES))
def test_a_copy_leaves_a_new_head_the_user_froze_frozen(how):
    net = nv.wrap(_backbone(), num_classes=3, example_input=_x())
    assert net.frozen == ("4.weight", "4.bias")
    net.backbone[4] = nn.Linear(4, 10).requires_grad_(False)  # the user's new head, frozen by them
    twin = _COPIES[how](net)
    assert _grads(twin.backbone[4]) == [False, False]
    assert twin.unwrap() is twin.backbone
    assert _grads(twin.backbone[4]) == [False, False]  # was [True, True]: the copy took the user's head as its own
    other = _COPIES[how](net)
    head = other.backbone[4]
    del other
    gc.collect()
    assert _grads(head) == [False, False]  # its garbage collection: was [True, True]
    net.unwrap()
    assert _grads(net.backbone[4]) == [False, False]  # the original, as before


@pytest.mark.parametrize("how", sorted(_COPIES))
def test_a_copy_still_gives_back_what_it_froze_itself(how):
    net = nv.wrap(_backbone(), num_classes=3, example_input=_x())
    twin = _COPIES[how](net)
    assert _grads(twin.backbone[4]) == [False, False]
    twin.unwrap()
    assert _grads(twin.backbone[4]) == [True, True]  # its own copy of the head it froze
    assert _grads(net.backbone[4]) == [False, False]  # the original's still held by the original
    net.unwrap()
    assert _grads(net.backbone[4]) == [True, True]


def test_a_copy_of_a_copy_keeps_the_record():
    net = nv.wrap(_backbone(), num_classes=3, example_input=_x())
    net.backbone[4] = nn.Linear(4, 10).requires_grad_(False)
    twin = copy.deepcopy(pickle.loads(pickle.dumps(net)))
    twin.backbone[4].requires_grad_(True)  # the user unfreezes it: named as a module put in the frozen one's place
    twin.train()
    with pytest.warns(UserWarning, match=r"\['backbone\.4\.weight', 'backbone\.4\.bias'\] require grad"):
        twin(_x())
    twin.backbone[4].requires_grad_(False)
    twin.unwrap()
    assert _grads(twin.backbone[4]) == [False, False]


def _bn_backbone() -> nn.Sequential:
    torch.manual_seed(0)  # the head (Linear 4, BatchNorm1d 5) comes after the only ReLU: both frozen
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 10), nn.BatchNorm1d(10))


def _sync_bn(net) -> int:
    net.backbone = nn.SyncBatchNorm.convert_sync_batchnorm(net.backbone)  # Lightning's sync_batchnorm=True
    return 5


def _qat(net) -> int:
    from torch.ao.nn.qat import Linear as QatLinear
    from torch.ao.quantization import get_default_qat_qconfig

    net.backbone[4].qconfig = get_default_qat_qconfig("fbgemm")
    net.backbone[4] = QatLinear.from_float(net.backbone[4])  # as prepare_qat swaps it
    return 4


@pytest.mark.parametrize("how", sorted(_COPIES))
@pytest.mark.parametrize("swap", [_sync_bn, _qat], ids=["syncbn", "qat"])
def test_a_copy_gives_back_a_head_torch_swapped_around_the_same_parameters(how, swap):
    net = nv.wrap(_bn_backbone(), num_classes=3, example_input=_x())
    assert net.frozen == ("4.weight", "4.bias", "5.weight", "5.bias")
    before = [net.backbone[4].weight, net.backbone[4].bias, net.backbone[5].weight, net.backbone[5].bias]
    i = swap(net)
    kind = type(net.backbone[i])
    assert kind not in (nn.Linear, nn.BatchNorm1d)  # a new module ...
    assert all(p is q for p, q in zip(before, [net.backbone[4].weight, net.backbone[4].bias,
                                               net.backbone[5].weight, net.backbone[5].bias]))  # ... the same weights
    twin = _COPIES[how](net)
    assert type(twin.backbone[i]) is kind
    assert _grads(twin.backbone[i]) == [False, False]  # pickle: was [True, True] at load, unreached and trainable
    assert _grads(net.backbone[i]) == [False, False]
    twin.unwrap()
    assert _grads(twin.backbone[i]) == [True, True]  # deepcopy: was [False, False], frozen for good
    assert _grads(twin.backbone[9 - i]) == [True, True]
    assert _grads(net.backbone[i]) == [False, False]  # the original's own, still held by it
    other = _COPIES[how](net)
    head = other.backbone[i]
    assert _grads(head) == [False, False]
    del other
    gc.collect()
    assert _grads(head) == [True, True]  # the copy's garbage collection gives its head back, as the original's does
    net.unwrap()
    assert _grads(net.backbone[i]) == [True, True] and _grads(net.backbone[9 - i]) == [True, True]


class _Scaled(nn.Module):
    """A backbone with a parameter of its own (``scale``) and a head, neither of which its only site's codes reach."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv, self.act, self.fc = nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Linear(4, 10)
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.act(self.conv(x)).mean((2, 3)) * self.scale)


def test_unreached_names_a_parameter_of_the_backbone_itself_by_its_full_name():
    net = nv.wrap(_Scaled(), num_classes=3, example_input=_x())
    assert set(net.frozen) == {"scale", "fc.weight", "fc.bias"}
    assert sorted(net.unreached) == ["backbone.fc", "backbone.scale"]  # was ['backbone', 'backbone.fc']
    assert net.get_parameter("backbone.scale") is net.backbone.scale
    assert "backbone.scale" in dict(net.named_parameters())
    assert net.get_submodule("backbone.fc") is net.backbone.fc


def test_the_lightning_side_freeze_unreached_gives_those_names_as_its_doc_says():
    from neuroview.training.unreached import freeze_unreached

    assert "backbone.scale" in freeze_unreached.__doc__  # (M2) it still said 'Module names' alone
    assert sorted(freeze_unreached(nv.wrap(_Scaled(), num_classes=3), _x())) == ["backbone.fc", "backbone.scale"]


def _ensemble(batched: bool) -> Ensemble:
    torch.manual_seed(0)
    ens = Ensemble([nv.create_model("nv_lite", num_classes=2) for _ in range(2)], batched=batched)
    ens.train()(torch.randn(4, 1, 30))
    return ens


@pytest.mark.parametrize("batched", [False, True])
def test_a_batched_ensemble_warns_of_an_unreached_parameter_made_trainable(batched, monkeypatch):
    ens = _ensemble(batched)
    assert (ens._pass is not None) is batched  # the grouped pass ran (or not)
    member = ens.members[1]
    assert member.frozen == ("fc.weight", "fc.bias")
    member.backbone.fc.requires_grad_(True)  # made trainable again: plain DDP would fail at its second step
    looks, full = [], paths.warn_unreached_trainable
    monkeypatch.setattr(paths, "warn_unreached_trainable", lambda net: (looks.append(net), full(net)))
    x = torch.randn(4, 1, 30)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        for _ in range(3):
            ens(x)
    said = [w for w in said if "require grad" in str(w.message)]
    assert len(said) == 1, [str(w.message) for w in said]  # batched: none was said
    assert "['backbone.fc.weight', 'backbone.fc.bias'] require grad" in str(said[0].message)
    assert said[0].filename == __file__  # the user's line, both ways
    # the full look ran once, for the member whose flags changed, on the first pass; the others and later passes
    # check flags only: no per-pass cost beyond the member-by-member one
    assert len(looks) == 1 and looks[0] is member
