"""NeuroViewModule, the probe's findings: labels checked once where the batch is still on the CPU (one-hot rows
were scored as 3x the samples; int32, float, -1 and [B, 1] labels reached torch bare), the classifier penalties
of a shared-steps NeuroView-RNN on the weight the decision uses, a frozen backbone's own parameters, and the
advice for a lazy NeuroView-CNN fitted on a plain DataLoader."""

from __future__ import annotations

import copy

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from neuroview.training.module import NeuroViewModule
from neuroview.zoo import registry

TINY = {"widths": [4]}


def trainer(tmp_path, **kw) -> pl.Trainer:
    d = dict(default_root_dir=tmp_path, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
             enable_progress_bar=False, enable_model_summary=False, max_epochs=1, num_sanity_val_steps=0)
    return pl.Trainer(**(d | kw))


def data(n=16, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, classes, (n,), generator=g)


def loader(x, y):
    return DataLoader(TensorDataset(x, y), batch_size=8)


# ---------------------------------------------------------------------------- labels
@pytest.mark.parametrize("make, match", [
    (lambda y: F.one_hot(y, 3).float(), r"y: expected one class index per sample, shape \[8\], got labels of shape \(8, 3\).*argmax"),
    (lambda y: y[:, None], r"y: expected one class index per sample, shape \[8\], got labels of shape \(8, 1\).*squeeze"),
    (lambda y: y + 1, r"y: labels must lie in \[0, 3\) \(the network's classes\), got \[1, 2, 3\].*y - 1"),
    (lambda y: torch.where(y == 0, -1, y), r"y: labels must lie in \[0, 3\) \(the network's classes\), got \[-1, "),
    (lambda y: y.float() + 0.3, r"y: expected integer class labels"),
])
def test_labels_that_are_no_class_indices_are_refused_by_name(tmp_path, make, match):
    """One-hot rows trained as soft targets with train_acc 0 and a confusion matrix of 3x the samples; a column,
    a label == num_classes or -1 and fractions were torch's bare RuntimeError/IndexError."""
    x, y = data()
    m = NeuroViewModule("small_cnn", num_classes=3, in_channels=1, model_kwargs=TINY, scheduler="none")
    with pytest.raises(ValueError, match=match):
        trainer(tmp_path).fit(m, loader(x, make(y)))
    with pytest.raises(ValueError, match=match):  # val and test batches go through the same check
        trainer(tmp_path).test(m, loader(x, make(y)), verbose=False)


def test_int32_and_whole_float_labels_are_class_indices(tmp_path):
    """int32 and whole-number float labels (a CSV, a float array) failed with 'expected target dtype Long'."""
    torch.manual_seed(0)
    x, y = data(n=24)
    m = NeuroViewModule("small_cnn", num_classes=3, in_channels=1, model_kwargs=TINY, scheduler="none", lr=0.05)
    t = trainer(tmp_path)
    t.fit(m, loader(x, y.int()), loader(x, y.float()))
    m.eval()
    with torch.no_grad():
        pred = m.model(x).argmax(-1)
    own = (pred == y).float().mean().item()
    assert float(t.callback_metrics["val_acc"]) == pytest.approx(own)
    r = t.test(m, loader(x, y.to(torch.int16)), verbose=False)[0]
    assert r["test_acc"] == pytest.approx(own)
    own_confusion = torch.zeros(3, 3, dtype=torch.long)
    for true, p in zip(y.tolist(), pred.tolist()):
        own_confusion[true, p] += 1
    assert torch.equal(m.test_confusion, own_confusion)


def test_labels_off_the_cpu_are_left_to_the_step():
    """Labels a loader already put on a device are not checked (that would sync it); CPU labels come back int64."""
    m = NeuroViewModule("small_cnn", num_classes=3, in_channels=1, model_kwargs=TINY)
    x = torch.randn(2, 1, 8, 8)
    y = torch.tensor([0.0, 7.0], device="meta")
    assert m.on_before_batch_transfer((x, y), 0)[1] is y
    out = m.on_before_batch_transfer([x, torch.tensor([2, 0], dtype=torch.int32)], 0)
    assert out[0] is x and out[1].dtype == torch.int64 and out[1].tolist() == [2, 0]
    batch = (x, torch.tensor([2, 0]))
    assert m.on_before_batch_transfer(batch, 0) is batch  # int64 class indices: the batch as it came


# ------------------------------------------------------------------ penalties, shared steps
def test_classifier_penalties_reach_the_shared_part_of_the_decision_weight():
    """With shared_steps the penalties read classifier.weight only: the shared part (step_shared), which the
    decision adds to every step, was never sparsified and got no gradient from them."""
    torch.manual_seed(0)
    l1, gl1 = 0.03, 0.2
    m = NeuroViewModule("nv_gru", num_classes=2, in_channels=2, max_len=5, l1_classifier=l1, group_l1_classifier=gl1,
                        model_kwargs={"hidden_size": 3, "shared_steps": True})
    net = m.model
    with torch.no_grad():
        net.step_shared.weight.normal_()  # starts at 0
    c, (nl, d, t, h) = net.num_classes, net.feature_shape
    w = net.classifier.weight.reshape(c, nl, d, t, h) + net.step_shared.weight.reshape(c, nl, d, 1, h) / t
    w = w.reshape(c, -1)  # own decision weight: the shared part spread over the steps
    own = l1 * w.abs().sum() + gl1 * w.norm(dim=0).sum()
    assert m.penalty().item() == pytest.approx(own.item(), rel=1e-5)
    m.penalty().backward()
    assert net.step_shared.weight.grad is not None and net.step_shared.weight.grad.abs().sum() > 0


# ------------------------------------------------------------------------ freeze_backbone
class OwnParamNet(nn.Module):
    """A network that holds a parameter itself, in none of its children (as a ViT's cls_token)."""

    def __init__(self, num_classes: int, in_channels: int):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1, in_channels, 1, 1))
        self.conv = nn.Conv2d(in_channels, 4, 3, padding=1)
        self.fc = nn.Linear(4, num_classes)

    def forward(self, x):
        return self.fc(self.conv(x * self.scale).relu().mean((2, 3)))


@pytest.fixture
def own_param_arch(monkeypatch):
    def test_own_param_net(*, num_classes: int = 3, in_channels: int = 1):
        return OwnParamNet(num_classes, in_channels)

    monkeypatch.setitem(registry._MODELS, "test_own_param_net", test_own_param_net)
    return "test_own_param_net"


@pytest.mark.parametrize("arch, kw", [("own", {}), ("vit_tiny", {"dim": 8, "depth": 1, "heads": 2})])
def test_freeze_backbone_freezes_the_networks_own_parameters(tmp_path, own_param_arch, arch, kw):
    """freeze_backbone froze named_children() only: a parameter held by the network itself (vit_tiny's
    cls_token and pos_embed) went on training."""
    arch = own_param_arch if arch == "own" else arch
    x, y = data()
    m = NeuroViewModule(arch, num_classes=3, in_channels=1, model_kwargs=kw, scheduler="none", freeze_backbone=True,
                        optimizer="sgd", lr=0.5)
    own = ["scale"] if arch == own_param_arch else ["cls_token", "pos_embed"]
    before = copy.deepcopy(m.model.state_dict())
    trainer(tmp_path).fit(m, loader(x, y))
    after = m.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.split(".")[0] in m.head_names for k in changed), changed  # the head trained, only it
    assert not any(getattr(m.model, n).requires_grad for n in own)


# ---------------------------------------------------------------- lazy NeuroView-CNN, plain loader
@pytest.mark.parametrize("how", ["loader", "build", "discover"])
def test_lazy_cnn_on_a_plain_loader_fits(tmp_path, how):
    """A lazy NeuroView-CNN fitted on a plain loader finds its sites on that loader's first batch (it was refused:
    "this trainer has no datamodule"); sites found before, by module.build(x) or module.model.discover(x), are kept."""
    x, y = data()
    m = NeuroViewModule("nv_small_cnn", num_classes=3, in_channels=1, model_kwargs=TINY, scheduler="none")
    if how == "build":
        m.build(x[:8])
    elif how == "discover":
        m.model.discover(x[:8])
    before = None if how == "loader" else m.model.classifier.weight.detach().clone()
    tr = trainer(tmp_path, max_steps=1)
    tr.fit(m, loader(x, y))
    assert tr.global_step == 1 and m.model.sites is not None
    if before is not None:
        assert not torch.equal(before, m.model.classifier.weight)
