"""`nv.retrofit` on the networks a probe handed it: a 1-D CNN whose forward takes `lengths` (scored as it reads
its input), a frozen backbone with BatchNorm fine-tuned by `nv.finetune_sparse` (its statistics stay), the caller's
hooks (not run by the copy), outputs that are no logits and a network on the meta device (refused by name, before
the fit), and a head that is an nn.Sequential (its last Linear read)."""

from __future__ import annotations

import copy

import warnings

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

import neuroview as nv
from neuroview.training import retrofit as rf


def _images(n: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 10
    return torch.randn(n, 1, 8, 8, generator=g) + 0.3 * y[:, None, None, None], y


def _accuracy(model: nn.Module, x, y) -> float:
    with torch.no_grad():
        return (model(x).argmax(-1) == y).float().mean().item()


class _CNN1d(nn.Module):
    """Channels-first like every Conv1d; ``lengths``: masked mean pooling over padded series."""

    def __init__(self, c: int):
        super().__init__()
        self.conv1, self.act1 = nn.Conv1d(c, 8, 3, padding=1), nn.ReLU()
        self.fc = nn.Linear(8, 2)

    def forward(self, x, lengths=None):
        h = self.act1(self.conv1(x))
        if lengths is None:
            return self.fc(h.mean(-1))
        mask = (torch.arange(h.shape[-1])[None] < lengths[:, None]).float()
        return self.fc((h * mask[:, None]).sum(-1) / lengths[:, None])


def test_a_cnn_whose_forward_takes_lengths_is_scored_on_channels_first_input():
    # it was handed x.transpose(1, 2), as a sequence model: a raw torch error where C != T, else another input's score
    torch.manual_seed(0)
    m = _CNN1d(3).eval()
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(80, 3, 20, generator=g), torch.arange(80) % 2
    x[:, 0] += (2 * y[:, None] - 1) * 0.5
    res = nv.retrofit(m, [(x, y)], [(x, y)])
    assert type(res.model).__name__ == "NeuroViewCNN"
    assert res.standard_acc == pytest.approx(_accuracy(m, x, y))


class _BNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn1, self.act1 = nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()
        self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(8, 10)

    def forward(self, x):
        return self.fc(self.pool(self.act1(self.bn1(self.conv1(x)))).flatten(1))


def test_finetune_sparse_keeps_a_frozen_backbone_in_eval_mode():
    # train mode moved the frozen backbone's BatchNorm running statistics, and the codes with them
    torch.manual_seed(0)
    x, y = _images()
    net = nv.retrofit(_BNNet().eval(), [(x, y)]).model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sparse = nv.sparsify(net, [(x, y)], points=4, folds=2)
        tuned = nv.finetune_sparse(sparse, [(x[:32], y[:32]), (x[32:], y[32:])], epochs=1)  # mode="train"
    assert torch.equal(tuned.backbone.bn1.running_mean, sparse.backbone.bn1.running_mean)
    assert torch.equal(tuned.backbone.bn1.running_var, sparse.backbone.bn1.running_var)
    assert torch.equal(tuned.codes(x), sparse.codes(x))
    # a backbone that may train still trains as the recipes do (batch statistics)
    sparse.backbone.requires_grad_(True)
    tuned = nv.finetune_sparse(sparse, [(x[:32], y[:32]), (x[32:], y[32:])], epochs=1)
    assert not torch.equal(tuned.backbone.bn1.running_mean, sparse.backbone.bn1.running_mean)


def test_the_copy_keeps_the_model_s_hooks_that_compute_its_function():
    # a first version stripped the hooks of the copy: a model that standardizes its input in a pre-hook of its own was
    # scored (and retrofitted) as another network (a review: 0.43 reported for 0.99)
    g = torch.Generator().manual_seed(0)
    templates = torch.rand(10, 64, generator=g)
    templates = templates / templates.norm(dim=1, keepdim=True)  # class c scores t_c . x: highest for x near t_c

    class Standardized(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.act, self.fc = nn.Conv2d(1, 1, 1), nn.ReLU(), nn.Linear(64, 10, bias=False)
            with torch.no_grad():
                self.conv.weight.fill_(1.0), self.conv.bias.zero_(), self.fc.weight.copy_(templates)
            self.register_forward_pre_hook(lambda mod, args: ((args[0] - 3.0) / 2.0,))

        def forward(self, x):
            return self.fc(self.act(self.conv(x)).flatten(1))

    y = torch.arange(100) % 10
    x = 2.0 * (templates[y] + 0.02 * torch.randn(100, 64, generator=g)).view(100, 1, 8, 8) + 3.0
    m = Standardized().eval()
    bare = copy.deepcopy(m)
    bare._forward_pre_hooks.clear()
    assert _accuracy(m, x, y) == 1.0 and _accuracy(bare, x, y) < 0.5  # the hook is part of what it computes
    res = nv.retrofit(m, [(x, y)], [(x, y)], num_classes=10)
    assert res.standard_acc == 1.0


def test_a_cnn_whose_forward_takes_lengths_gets_them_with_channels_first_input():
    # scored without its lengths, a masked pooling over padded series was another network (a review)
    torch.manual_seed(0)
    m = _CNN1d(3).eval()
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(80, 3, 20, generator=g), torch.arange(80) % 2
    lengths = torch.where(torch.arange(80) % 3 == 0, 8, 20)
    x[lengths == 8, :, 8:] = 0.0
    with torch.no_grad():
        y = m(x, lengths=lengths).argmax(-1)  # its own decisions with lengths: 100%
    res = nv.retrofit(m, [(x, lengths, y)], [(x, lengths, y)])
    assert res.standard_acc == 1.0
    listed = [(x, lengths.tolist(), y)]  # lengths as a list, as the readers take them: the model's forward gets a tensor
    assert nv.retrofit(m, listed, listed).standard_acc == 1.0


class _Base(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.act, self.pool = nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1)
        self.fc, self.head_conv = nn.Linear(8, 10), nn.Conv2d(8, 10, 1)

    def feats(self, x):
        return self.pool(self.act(self.conv(x)))


class _TupleOut(_Base):
    def forward(self, x):
        return self.fc(self.feats(x).flatten(1)), self.feats(x)


class _DictOut(_Base):
    def forward(self, x):
        return {"logits": self.fc(self.feats(x).flatten(1))}


class _ConvOut(_Base):
    def forward(self, x):
        return self.head_conv(self.feats(x))  # [B, 10, 1, 1]


@pytest.mark.parametrize("cls, got", [(_TupleOut, "got a tuple"), (_DictOut, "got a dict"),
                                      (_ConvOut, r"got a tensor of shape \(64, 10, 1, 1\)")])
def test_an_output_that_is_no_logits_is_refused_by_name_before_the_fit(monkeypatch, cls, got):
    # a bare AttributeError ('tuple' object has no attribute 'shape') after the fit; [B, 10, 1, 1]: "pass num_classes=1"
    fitted = []
    monkeypatch.setattr(rf, "_fit_head", lambda *a, **k: fitted.append(1))
    x, y = _images()
    with pytest.raises(ValueError, match=r"model: expected a forward that returns logits \[B, num_classes\].*" + got):
        nv.retrofit(cls().eval(), [(x, y)], [(x, y)])
    assert fitted == []


def test_a_network_on_the_meta_device_is_refused_by_name():
    with torch.device("meta"):
        m = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
        g = nn.GRU(8, 12, batch_first=True)
    x, y = _images()
    with pytest.raises(ValueError, match=r"model: .*0\.weight is on the meta device.*load its weights first"):
        nv.retrofit(m, [(x, y)], [(x, y)])
    with pytest.raises(ValueError, match=r"model: .*weight_ih_l0 is on the meta device"):
        nv.retrofit(g, [(torch.randn(16, 8, 10), torch.arange(16) % 2)], max_len=10, num_classes=2)


def test_num_classes_is_read_from_the_last_linear_of_a_sequential_head():
    class Net(nn.Module):  # torchvision's VGG / MobileNet style
        def __init__(self, classifier: nn.Module):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.classifier = classifier

        def forward(self, x):
            return self.classifier(self.features(x))

    torch.manual_seed(0)
    x, y = _images()
    res = nv.retrofit(Net(nn.Sequential(nn.Dropout(0.2), nn.Linear(8, 10))).eval(), [(x, y)], [(x, y)])
    assert res.model.num_classes == 10 and res.standard_acc is not None
    seq = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    assert nv.retrofit(seq.eval(), [(x, y)]).model.num_classes == 10
    with pytest.raises(ValueError, match=r"num_classes: could not read it from the Net .*its classifier is a Identity"):
        nv.retrofit(Net(nn.Identity()).eval(), [(x, y)])


def test_the_copy_keeps_the_site_hooks_of_a_neuroview_network_inside_the_model():
    class Model(nn.Module):  # a NeuroView network used as a layer: its codes are recorded by neuroview's own hooks
        def __init__(self):
            super().__init__()
            self.inner = nv.wrap(nn.Sequential(nn.Conv1d(1, 8, 3), nn.ReLU()), 3, input_shape=(1, 20)).eval()
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(self.inner(x))

    torch.manual_seed(0)
    m, x, y = Model().eval(), torch.randn(32, 1, 20), torch.arange(32) % 3
    res = nv.retrofit(m, [(x, y)], [(x, y)], num_classes=3)
    assert res.standard_acc == pytest.approx(_accuracy(m, x, y))
