"""Saving and loading weights where the file and the model disagree: what a probe of the zoo's weight files found
(each failed before its fix)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.training.module import load_weights as init_weights
from neuroview.zoo import pretrained as zoo
from neuroview.zoo.weights import ArchitectureError


def _trained(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> nn.Module:  # a few steps: a head that is not its init
    net(x)
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.3)
    for _ in range(5):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    return net.eval()


@pytest.mark.parametrize("kw, named", [({"quantizer": "soft"}, "quantizer"), ({"norm_floor": 0.0}, "norm_floor")])
def test_save_pretrained_refuses_arch_kwargs_that_build_another_function(tmp_path, kw, named):
    """A soft-code network saved with arch_kwargs that build the default (hard) one loaded as hard: logits 0.36 off,
    and the file's own record said the same wrong thing, so no load could tell."""
    torch.manual_seed(0)
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 3, (16,))
    net = _trained(nv.create_model("nv_small_cnn", num_classes=3, widths=(4, 6), **kw), x, y)
    save = dict(architecture="nv_small_cnn", dataset={}, recipe=None, seed=0, metrics={}, root=tmp_path)
    with pytest.raises(ArchitectureError, match=rf"arch_kwargs: .* other settings than the model's \(model\.{named}: model"):
        zoo.save_pretrained(net, "nv_small_cnn.t", arch_kwargs={"num_classes": 3, "widths": [4, 6]}, **save)
    assert not list(tmp_path.iterdir())  # nothing written
    zoo.save_pretrained(net, "nv_small_cnn.t", arch_kwargs={"num_classes": 3, "widths": [4, 6], **kw}, **save)
    back = zoo.load_pretrained("nv_small_cnn.t", root=tmp_path)
    torch.testing.assert_close(back(x), net(x), rtol=0, atol=0)


def test_a_whole_network_file_that_does_not_fit_says_its_head_was_left_out(tmp_path):
    """init_weights (and explain --weights) loaded the backbone of a whole NeuroView network's file that did not fit,
    dropped its trained head and said nothing (logits 1.18 off)."""
    torch.manual_seed(0)
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 3, (16,))
    src = _trained(nv.create_model("nv_small_cnn", num_classes=3, widths=(4, 6), normalize=False), x, y)
    path = tmp_path / "a.pt"
    torch.save(src.state_dict(), path)
    dst = nv.create_model("nv_small_cnn", num_classes=3, widths=(4, 6))
    dst(x)
    with pytest.warns(UserWarning, match=r"holds a whole network that does not fit this model .*norm\.running_mean.*only its "
                                         r"backbone was loaded, and its head \(\['classifier\.bias', 'classifier\.weight'\]\)"):
        took = init_weights(dst, path)
    assert took is dst.backbone and not torch.equal(dst.classifier.weight, src.classifier.weight)
    for name, p in src.backbone.state_dict().items():
        torch.testing.assert_close(dst.backbone.state_dict()[name], p, rtol=0, atol=0)


class _OwnClassifier(nn.Module):
    """A standard network whose own head is a Linear named ``classifier`` (as torchvision's DenseNet)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 64, 3), nn.ReLU())
        self.pool, self.classifier = nn.AdaptiveAvgPool2d(1), nn.Linear(64, 3)

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)).flatten(1))


def test_a_lazy_wrap_keeps_no_head_built_from_a_file_that_did_not_fit(tmp_path):
    """Retrofitting into a lazy wrap: the whole-model check built a 64-input head from the standard network's
    classifier, the backbone then loaded, and that head stayed: every batch failed, blaming the weights."""
    torch.manual_seed(0)
    std, path = _OwnClassifier(), tmp_path / "std.pt"
    torch.save(std.state_dict(), path)
    net = nv.wrap(_OwnClassifier(), num_classes=3)
    assert init_weights(net, path) is net.backbone and net.classifier is None
    x = torch.randn(4, 1, 8, 8)
    assert net(x).shape == (4, 3) and net.num_units == 68
    torch.testing.assert_close(net.codes(x)[:, 4:], (std.features(x) > 0).float().mean((2, 3)), rtol=0, atol=0)
