"""Fine-tune a sparse NeuroView network: its backbone learns to serve the few units its head reads.

:func:`neuroview.sparsify` refits the head on frozen codes: the few units it keeps were learned to
serve a dense head. :func:`finetune_sparse` trains the backbone and the head's nonzero weights
further on the training split with the head's support fixed: a weight that is zero stays exactly
zero, so each class reads the same units as before, and every decision is still one exact linear
map of the codes. The network is trained in eval mode: BatchNorm keeps its running statistics and
the head's standardization the statistics ``sparsify`` fitted (a fixed affine map, folded into the
head), dropout is off, and the surrogate gradients of the codes still reach the backbone. The
function trained is then the one ``explain`` reads. SLDD-Model (Norrenbrock et al. 2022) and QPM fine-tune
their backbones the same way once the sparse layer is chosen.

The number of epochs is judged on data no network of the study has seen
(``benchmarks/sparse_finetune_choice.py``); the test split is never read.

>>> import torch, neuroview as nv
>>> from torch import nn
>>> net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 16, 3), nn.ReLU()), 2, input_shape=(1, 20)).eval()
>>> x = torch.randn(60, 1, 20); y = (x[:, 0, 5:10].mean(1) > 0).long()
>>> sparse = nv.sparsify(net, [(x, y)], tolerance=5.0)
>>> tuned = nv.finetune_sparse(sparse, [(x, y)], epochs=3)
>>> bool(((tuned.classifier.weight != 0) == (sparse.classifier.weight != 0)).all())
True

May import ``neuroview.core`` and the leaf modules.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from .._batch import call_model, unpack
from ..core.cnn import NeuroViewCNN
from ..core.rnn import NeuroViewRNN

__all__ = ["finetune_sparse", "FINETUNE_EPOCHS", "FINETUNE_LR"]

FINETUNE_EPOCHS = 5  # provisional: benchmarks/sparse_finetune_choice.py judges it on held-out data
FINETUNE_LR = 1e-4  # a tenth of the recipes' peak rate: the final rate their schedules reach


def _train_batches(data):
    """A data module's training loader (shuffled, as its recipe trains); any other iterable as it is."""
    if hasattr(data, "train_dataloader") and hasattr(data, "setup"):
        data.setup("fit")
        return data.train_dataloader()
    return data


def _check(net, epochs, lr, weight_decay) -> None:
    if not isinstance(net, (NeuroViewCNN, NeuroViewRNN)):
        raise TypeError(f"sparse: expected a NeuroViewCNN or NeuroViewRNN (nv.sparsify(net, ...)), got {type(net).__name__}")
    if getattr(net, "classifier", None) is None:
        raise ValueError("sparse: the network has no classifier yet (run one batch through it, or nv.sparsify it)")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs: expected an int >= 0, got {epochs!r}")
    for name, value, low in (("lr", lr, "> 0"), ("weight_decay", weight_decay, ">= 0")):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or not (value > 0 if name == "lr" else value >= 0):
            raise ValueError(f"{name}: expected a finite number {low}, got {value!r}")


def finetune_sparse(sparse: nn.Module, train, *, epochs: int = FINETUNE_EPOCHS, lr: float = FINETUNE_LR,
                    weight_decay: float = 0.0, seed: int = 0) -> nn.Module:
    """A copy of ``sparse`` trained further with its head's support fixed (see the module docstring).

    Args:
        sparse: a NeuroView network, usually from :func:`neuroview.sparsify`; never changed.
        train: the training split: a data module of :mod:`neuroview.data` (its shuffled training
            loader) or an iterable of batches ``(x, y)`` / ``(x, lengths, y)``.
        epochs: passes over ``train`` (0: an unchanged copy).
        lr, weight_decay: AdamW's, for the backbone and the head's nonzero weights.
        seed: the shuffle and dropout of the fine-tuning; the caller's random state is left as it was.

    The result keeps ``sparse.sparsity_path``; ``result.finetuned`` records the epochs, the rate and
    the mean training loss of each epoch.
    """
    _check(sparse, epochs, lr, weight_decay)
    # the function trained is the one explained: BatchNorm's running statistics, no dropout, the
    # head's standardization as sparsify fitted it (a recipe's small batches would re-estimate those
    # statistics and move the codes the head was fitted on)
    net = copy.deepcopy(sparse).eval()
    for m in net.modules():
        if isinstance(m, nn.RNNBase) and not m.dropout:
            m.train()  # the same computation (no dropout inside), and cuDNN's backward needs it
    weight = net.classifier.weight
    keep = (weight.detach() != 0).to(weight.dtype)
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay)
    device = weight.device
    losses = []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for _ in range(epochs):
            total, n = 0.0, 0
            for batch in _train_batches(train):
                x, lengths, y = unpack(batch)
                if y is None:
                    raise ValueError("train: expected batches (x, y) or (x, lengths, y) with labels, got bare inputs")
                x, y = x.to(device), torch.as_tensor(y).long().to(device)
                loss = F.cross_entropy(call_model(net, x, lengths), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if weight.grad is not None:
                    weight.grad.mul_(keep)
                opt.step()
                with torch.no_grad():
                    weight.mul_(keep)  # exactly zero where it was: the same units per class
                total, n = total + float(loss.detach()) * len(y), n + len(y)
            if n == 0:
                raise ValueError("train: expected at least one batch, got an empty loader")
            losses.append(total / n)
    net.eval()
    net.finetuned = {"epochs": epochs, "lr": lr, "weight_decay": weight_decay, "mode": "eval", "train_loss": losses}
    return net
