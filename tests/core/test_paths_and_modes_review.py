"""The review of the paths the first batch did not take and of the held modes (each test fails on the code before
it): a layer initialised by its first batch with a plain flag is initialised by the user's batch, not left at its
defaults; a training-only head after the last site trains; a head built by an explain in train mode trains."""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

import neuroview as nv


class ActNorm(nn.Module):
    """Glow's ActNorm as many ports write it: initialised by the first batch it sees, its flag a plain attribute."""

    def __init__(self, c: int):
        super().__init__()
        self.loc, self.logs = nn.Parameter(torch.zeros(1, c, 1, 1)), nn.Parameter(torch.zeros(1, c, 1, 1))
        self.inited = False

    def forward(self, x):
        if not self.inited:
            with torch.no_grad():
                self.loc.copy_(-x.mean((0, 2, 3), keepdim=True))
                self.logs.copy_(-torch.log(x.std((0, 2, 3), keepdim=True) + 1e-6))
            self.inited = True
        return (x + self.loc) * self.logs.exp()


def test_a_layer_initialised_by_its_first_batch_is_initialised_by_the_user_s():
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(3, 8, 3), ActNorm(8), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                       nn.Flatten(), nn.Linear(8, 4))
    x = torch.randn(16, 3, 12, 12) * 5 + 3
    net = nv.wrap(bb, num_classes=4)
    net.train()
    net(x)
    h = bb[1](bb[0](x))  # initialised on x: each channel's mean 0 and std 1 over the batch
    torch.testing.assert_close(h.mean((0, 2, 3)), torch.zeros(8), atol=1e-4, rtol=0)
    torch.testing.assert_close(h.std((0, 2, 3)), torch.ones(8), atol=1e-3, rtol=0)


class Projected(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.proj = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4))  # a training-only projector
        self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(8, 4)

    def forward(self, x):
        h = self.body(x)
        if self.training:
            self.aux = self.proj(h.mean((2, 3)))
        return self.fc(self.pool(h).flatten(1))


def test_a_training_only_head_after_the_last_site_trains():
    torch.manual_seed(0)
    x, y = torch.randn(8, 3, 8, 8), torch.randint(0, 4, (8,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = nv.wrap(Projected(), num_classes=4)
    net.train()
    F.cross_entropy(net(x), y).backward()  # refused on every training step by the first version
    assert [s.name for s in net.sites] == ["body.1", "body.3"]
    exp = net.eval().explain(x)
    torch.testing.assert_close(exp.logits, net(x))


def test_a_head_built_by_an_explain_in_train_mode_trains_with_the_network():
    torch.manual_seed(0)
    net = nv.create_model("nv_small_cnn", num_classes=4, in_channels=3)
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 4, (8,))
    net.train()
    net.explain(x[:2])  # builds the lazy head while the network is held in eval mode
    assert all(m.training for m in net.modules())
    before = net.norm.running_mean.clone()
    F.cross_entropy(net(x), y).backward()
    assert not torch.equal(before, net.norm.running_mean)


def test_a_lazy_layer_keeps_what_its_first_pass_inferred():
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(2, 4, 3), nn.LazyBatchNorm2d(), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU())
    nv.wrap(bb, 3)(torch.randn(6, 2, 8, 8))
    assert bb[1].num_features == 4  # set back to 0 with the plain attributes (the third review)
