"""Fixes of the core prober's findings: a pre-activation layer's units, named layers that never run, and token ids
of a new length. Each test compares with codes computed by hand from the backbone's own tensors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import neuroview as nv

torch.set_num_threads(1)


class PreActConv2d(nn.Conv2d):
    """ResNet-v2's pre-activation conv without a norm: ReLU, then the convolution, in the conv's own forward."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.act = nn.ReLU()

    def forward(self, x):
        return super().forward(self.act(x))


class PreActLinear(nn.Linear):
    def __init__(self, i, o):
        super().__init__(i, o)
        self.act = nn.ReLU()

    def forward(self, x):
        return super().forward(self.act(x))


class Tokens(nn.Module):
    """Patches [B, 8, 4] (8 tokens of 4 features) into a pre-activation Linear(4 -> 8)."""

    def __init__(self):
        super().__init__()
        self.patch, self.fc, self.out = nn.Conv2d(3, 4, 2, 2), PreActLinear(4, 8), nn.Linear(8, 3)

    def forward(self, x):
        return self.out(self.fc(self.patch(x).flatten(2).transpose(1, 2)).mean(1))


def test_a_pre_activation_conv_reads_the_units_of_its_input():
    """Took the conv's 8 output channels' width, which fitted the 8 image columns of its [B, 4, 8, 8] input:
    site ('2.act', 8, axis=-1), codes of 16 entries, no error."""
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(2), PreActConv2d(4, 8, 3, padding=1), nn.ReLU()).eval()
    x = torch.randn(4, 3, 16, 16)
    net = nv.NeuroViewCNN(bb, 3, example_input=x).eval()
    assert [(s.name, s.channels, s.axis) for s in net.sites] == [("2.act", 4, 1), ("3", 8, 1)]
    with torch.no_grad():
        p = bb[1](bb[0](x))
        z = bb[2](p)
    hand = torch.cat([(p > 0).float().mean((2, 3)), (z > 0).float().mean((2, 3))], 1)
    torch.testing.assert_close(net.codes(x), hand)


def test_a_pre_activation_linear_reads_the_features_of_its_tokens():
    """Took the Linear's 8 output features, which fitted the 8 tokens: the tokens were read as units."""
    torch.manual_seed(0)
    bb = Tokens().eval()
    x = torch.randn(4, 3, 4, 8)
    net = nv.NeuroViewCNN(bb, 3, example_input=x).eval()
    assert [(s.name, s.channels, s.axis) for s in net.sites] == [("fc.act", 4, -1)]
    with torch.no_grad():
        t = bb.patch(x).flatten(2).transpose(1, 2)
    torch.testing.assert_close(net.codes(x), (t > 0).float().mean(1))


class NormAct(nn.BatchNorm2d):
    """timm's BatchNormAct2d: an in-place activation after the norm and a dropout, in the norm's own forward."""

    def __init__(self, c):
        super().__init__(c)
        self.drop, self.act = nn.Identity(), nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.drop(super().forward(x)))


def test_an_activation_inside_a_norm_still_takes_the_norms_width():
    """Kept as it was: the norm returns its activation's output, so the norm's width holds the units (here 6
    channels of a [B, 6, 6, 6] map, where both dims fit: the natural axis)."""
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(3, 6, 3), nn.MaxPool2d(1), NormAct(6), nn.Flatten(), nn.Linear(216, 2)).eval()
    with torch.no_grad():
        bb[2].running_mean.normal_()
    x = torch.randn(4, 3, 8, 8)
    net = nv.NeuroViewCNN(bb, 2, example_input=x).eval()
    assert [(s.name, s.channels, s.axis) for s in net.sites] == [("2.act", 6, 1)]
    with torch.no_grad():
        z = nn.functional.batch_norm(bb[1](bb[0](x)), bb[2].running_mean, bb[2].running_var, bb[2].weight, bb[2].bias)
    torch.testing.assert_close(net.codes(x), (z > 0).float().mean((2, 3)))


class Unused(nn.Module):
    def __init__(self):
        super().__init__()
        self.c, self.bn, self.act = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()
        self.unused = nn.Conv2d(4, 4, 1)
        self.c2, self.act2, self.fc = nn.Conv2d(4, 5, 3), nn.ReLU(), nn.Linear(5, 3)

    def forward(self, x):
        return self.fc(self.act2(self.c2(self.act(self.bn(self.c(x))))).mean((2, 3)))


def test_a_named_layer_that_never_runs_is_refused():
    """Was dropped without a word: sites ['bn', 'c2'], left_out == []."""
    bb = Unused().eval()
    with pytest.raises(ValueError, match=r"layers: \['unused'\] were not called in the forward pass on this batch, "
                                         r"which finds the sites in eval mode .*; the sites found are \['bn', 'c2'\]"):
        nv.NeuroViewCNN(bb, 3, layers=["bn", "unused", "c2"], example_input=torch.randn(4, 3, 8, 8))
    net = nv.NeuroViewCNN(bb, 3, layers=["bn", "c2"], example_input=torch.randn(4, 3, 8, 8))  # all named run: fine
    assert [s.name for s in net.sites] == ["bn", "c2"]


class AuxHead(nn.Module):
    """GoogLeNet's shape: an auxiliary head (conv, BatchNorm, F.relu) that runs only while training."""

    def __init__(self):
        super().__init__()
        self.c, self.bn = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)
        self.aux_c, self.aux_bn = nn.Conv2d(4, 2, 1), nn.BatchNorm2d(2)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        h = torch.relu(self.bn(self.c(x)))
        if self.training:
            torch.relu(self.aux_bn(self.aux_c(h)))  # its loss would be added by the training loop
        return self.fc(h.mean((2, 3)))


def test_a_named_layer_that_runs_only_while_training_is_refused_with_the_reason():
    """The sites are found in eval mode, where an auxiliary head does not run: naming its norm says so (the
    network is then wrapped without it), even when the network given is in training mode."""
    with pytest.raises(ValueError, match=r"layers: \['aux_bn'\] were not called .*in eval mode \(a module that runs "
                                         r"only while training, as an auxiliary head's, cannot be a site"):
        nv.NeuroViewCNN(AuxHead().train(), 3, layers=["bn", "aux_bn"], example_input=torch.randn(4, 3, 8, 8))
    net = nv.NeuroViewCNN(AuxHead().train(), 3, layers=["bn"], example_input=torch.randn(4, 3, 8, 8))
    assert [s.name for s in net.sites] == ["bn"] and net.training
    net(torch.randn(4, 3, 8, 8)).sum().backward()  # training runs the head too, and reads only the site found


def test_default_discovery_still_skips_activations_that_never_run():
    class Spare(Unused):
        def __init__(self):
            super().__init__()
            self.spare = nn.GELU()  # defined, never called

    net = nv.NeuroViewCNN(Spare().eval(), 3, example_input=torch.randn(4, 3, 8, 8))
    assert [s.name for s in net.sites] == ["act", "act2"]


class TextCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb, self.fc, self.act, self.out = nn.Embedding(50, 6), nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2)

    def forward(self, ids):
        return self.out(self.act(self.fc(self.emb(ids))).mean(1))


def test_token_ids_of_another_length_are_read():
    """Was refused: 'x: expected 10 channels at dim 1, got shape (4, 12)', where dim 1 of [B, L] ids is the length."""
    torch.manual_seed(0)
    bb = TextCNN().eval()
    net = nv.NeuroViewCNN(bb, 2, example_input=torch.randint(0, 50, (4, 10))).eval()
    ids = torch.randint(0, 50, (4, 12))
    with torch.no_grad():
        z = bb.fc(bb.emb(ids))
    torch.testing.assert_close(net.codes(ids), (z > 0).float().mean(1))


def test_float_and_image_inputs_keep_their_channel_check():
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), 2, input_shape=(3, 8, 8))
    for x in (torch.randn(2, 1, 8, 8), torch.randint(0, 255, (2, 1, 8, 8), dtype=torch.uint8)):
        with pytest.raises(ValueError, match=r"x: expected 3 channels at dim 1, got shape \(2, 1, 8, 8\)"):
            net(x)
    mlp = nv.NeuroViewCNN(nn.Sequential(nn.Linear(5, 4), nn.ReLU()), 2, input_shape=(5,))
    with pytest.raises(ValueError, match=r"x: expected 5 channels at dim 1, got shape \(2, 6\)"):
        mlp(torch.randn(2, 6))


def test_a_float64_input_under_autocast_is_refused_by_name_as_the_rnn_refuses_it():
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()), 3, input_shape=(1, 8, 8)).eval()
    net(torch.randn(2, 1, 8, 8))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast casts lower precisions, never float64
        with pytest.raises(TypeError, match=r"x: expected dtype torch.float32 .*got torch.float64; convert x"):
            net(torch.randn(2, 1, 8, 8, dtype=torch.float64))
        assert net(torch.randn(2, 1, 8, 8, dtype=torch.float16)).shape == (2, 3)  # cast by the ops


def test_a_float64_network_under_autocast_refuses_a_float32_input_by_name():
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()), 3, input_shape=(1, 8, 8)).double().eval()
    net(torch.randn(2, 1, 8, 8, dtype=torch.float64))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with pytest.raises(TypeError, match=r"x: expected dtype torch.float64 .*got torch.float32; convert x"):
            net(torch.randn(2, 1, 8, 8))
