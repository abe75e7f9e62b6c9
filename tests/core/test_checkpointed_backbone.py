"""Gradient checkpointing inside the backbone is refused by name. With use_reentrant=True a checkpointed block's
sites were recorded without gradient and its weights looked unreached, so the wrapper froze them (their gradients
None, the conv before them 0.255 where the same network without checkpointing gives 0.282), without a word; with
use_reentrant=False backward failed in torch's CheckpointError."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

import neuroview as nv


class Net(nn.Module):
    def __init__(self, reentrant: bool | None):
        super().__init__()
        self.reentrant = reentrant
        self.c1, self.a1 = nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()
        self.blk = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())

    def forward(self, x):
        x = self.a1(self.c1(x))
        return self.blk(x) if self.reentrant is None else checkpoint(self.blk, x, use_reentrant=self.reentrant)


@pytest.mark.parametrize("reentrant", [True, False])
def test_a_checkpointed_block_is_named_and_its_codes_read_as_without(reentrant):
    x = torch.randn(3, 3, 6, 6)
    with pytest.warns(UserWarning, match=r"backbone: \['blk'\] run inside torch.utils.checkpoint .*A frozen backbone "
                                         r"\(retrofit, freeze_backbone\) is read as it is"):
        net = nv.wrap(Net(reentrant), 3, example_input=x).eval()
    torch.manual_seed(0)
    plain = nv.wrap(Net(None), 3, example_input=x).eval()
    plain.backbone.load_state_dict(net.backbone.state_dict())
    torch.testing.assert_close(net.codes(x), plain.codes(x))  # read-only use (retrofit) is unaffected


def test_without_checkpointing_every_block_trains():
    net = nv.wrap(Net(None), 3, example_input=torch.randn(2, 3, 6, 6)).train()
    nn.functional.cross_entropy(net(torch.randn(4, 3, 6, 6)), torch.tensor([0, 1, 2, 0])).backward()
    assert net.unreached == [] and all(p.grad is not None for p in net.backbone.parameters())


class TrainOnly(nn.Module):
    """Hugging Face's pattern: checkpointing switched on by a flag, and only while training."""

    def __init__(self):
        super().__init__()
        self.inner, self.gradient_checkpointing = Net(None), True

    def forward(self, x):
        x = self.inner.a1(self.inner.c1(x))
        return checkpoint(self.inner.blk, x, use_reentrant=True) if self.gradient_checkpointing and self.training else self.inner.blk(x)


def test_checkpointing_switched_on_for_training_only_is_named_by_its_flag():
    # discovery runs in eval mode, where such a block is not checkpointed: it was wrapped, and the block never trained
    with pytest.warns(UserWarning, match=r"backbone: \['the backbone'\] run inside torch.utils.checkpoint .*switched on "
                                         r"for training.*gradient_checkpointing_disable"):
        nv.wrap(TrainOnly(), 3, example_input=torch.randn(2, 3, 6, 6))


@pytest.mark.parametrize("frozen", [False, True])
def test_training_a_checkpointed_backbone_is_refused_and_a_frozen_one_trains(frozen, tmp_path):
    import pytorch_lightning as pl

    from neuroview.data import DigitsDataModule
    from neuroview.training.module import NeuroViewModule

    module = NeuroViewModule(arch="nv_small_cnn", num_classes=10, in_channels=1, model_kwargs={"widths": [4]},
                             freeze_backbone=frozen)
    module.model.backbone.grad_checkpointing = True  # timm's flag, on
    trainer = pl.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    dm = DigitsDataModule(batch_size=16)
    if frozen:  # the head alone trains: the codes are read as they are
        trainer.fit(module, dm)
        assert trainer.global_step == 1
    else:
        with pytest.raises(ValueError, match=r"run inside torch.utils.checkpoint .*to train it, turn checkpointing off"):
            trainer.fit(module, dm)


def test_a_checkpoint_of_the_whole_network_is_not_one_inside_the_backbone():
    # the user checkpoints the NeuroView network itself, and its sites are found on that first call: nothing inside
    # the backbone is checkpointed apart from it (the first version named the root, '')
    x, y = torch.randn(4, 3, 6, 6), torch.tensor([0, 1, 2, 0])
    net = nv.wrap(Net(None), 3, example_input=x).train()
    nn.functional.cross_entropy(checkpoint(net, x, use_reentrant=False), y).backward()
    assert net.unreached == [] and all(p.grad is not None for p in net.backbone.parameters())
    # found lazily on a first batch inside the checkpoint, their extra passes failed its recomputation (CheckpointError)
    with pytest.raises(ValueError, match=r"x: the sites are found on the first batch, and this one runs inside "
                                         r"torch.utils.checkpoint; .*example_input=x"):
        checkpoint(nv.wrap(Net(None), 3), x, use_reentrant=False)


def test_checkpointing_turned_off_and_found_again_is_forgotten():
    from neuroview.core.unseen import checkpointing

    backbone = Net(True)
    with pytest.warns(UserWarning, match="run inside torch.utils.checkpoint"):
        nv.wrap(backbone, 3, example_input=torch.randn(2, 3, 6, 6))
    assert checkpointing(backbone) == ["blk"]
    backbone.reentrant = None  # the user turned it off: a network wrapped now may train the backbone
    nv.wrap(backbone, 3, example_input=torch.randn(2, 3, 6, 6))
    assert checkpointing(backbone) == []
