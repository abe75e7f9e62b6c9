"""DESIGN.md's contract is ``nv.create_model(name, pretrained=False, **kw)``, timm's ``create_model(model_name,
pretrained=False, ...)``; ``pretrained`` was keyword-only (``create_model("lite.gunpoint", True)``: TypeError)."""

from __future__ import annotations

import pytest
import torch

import neuroview as nv


def test_pretrained_by_position_loads_the_same_weights_as_by_keyword():
    name = "lite.gunpoint"
    assert name in nv.list_models(pretrained=True)
    by_position, by_keyword = nv.create_model(name, True), nv.create_model(name, pretrained=True)
    a, b = by_position.state_dict(), by_keyword.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    torch.manual_seed(0)
    fresh = nv.create_model("lite", False, num_classes=2, in_channels=1)  # an untrained build: other weights
    assert any(not torch.equal(fresh.state_dict()[k], a[k]) for k in a if a[k].is_floating_point() and a[k].numel() > 1)


def test_false_by_position_builds_the_architecture():
    net = nv.create_model("nv_small_cnn", False, num_classes=10, in_channels=1)
    assert type(net).__name__ == "NeuroViewCNN" and net.num_classes == 10


def test_arguments_after_pretrained_stay_keyword_only_and_text_is_refused():
    with pytest.raises(TypeError, match="positional"):
        nv.create_model("nv_small_cnn", False, 10)
    with pytest.raises(ValueError, match=r"pretrained: expected true or false, got 'False'"):
        nv.create_model("nv_small_cnn", "False")


@pytest.mark.parametrize("count", [10, 3])
def test_a_class_count_by_position_is_told_num_classes_is_a_keyword(count):
    """create_model(name, 10), the num_classes habit of resnet18(10)-style builders, was told only that pretrained takes
    true or false (the review of 3d6e630)."""
    with pytest.raises(ValueError, match=rf"pretrained: expected true or false, got {count}; num_classes and every later "
                                         rf"argument are keyword-only: create_model\('nv_small_cnn', num_classes={count}\)"):
        nv.create_model("nv_small_cnn", count)
    with pytest.raises(ValueError, match=r"pretrained: expected true or false, got 1$"):  # 1 is no class count: no hint
        nv.create_model("nv_small_cnn", 1, num_classes=3, in_channels=1)
