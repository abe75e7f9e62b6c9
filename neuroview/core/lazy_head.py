"""An optimizer made before a NeuroView-CNN's first batch does not hold its classifier: that batch builds it (as
PyTorch's lazy modules build theirs, without their trick of keeping the same parameter objects). Its steps then
train the backbone and leave the head as it was built, unsaid.

So a network that builds its head registers with :func:`watch`, and one global optimizer step pre-hook
(``register_optimizer_step_pre_hook``, registered once) looks at each optimizer once, at its
first step: one that holds a live network's backbone parameters and no head on that backbone gets a warning naming
the fix, whatever other networks' heads it holds (one that trains a head on the backbone was made after a head was
built: two wrappers of one model share its backbone). Nothing else: the check costs one set lookup a step after that.

Imports only torch.
"""

from __future__ import annotations

import warnings
import weakref

import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

_NETS: weakref.WeakSet = weakref.WeakSet()  # networks that built a head
_SEEN: weakref.WeakSet = weakref.WeakSet()  # optimizers already looked at
_HOOK = None


def watch(net: nn.Module) -> None:
    """Look, at each optimizer's first step, whether it trains ``net``'s backbone without its head."""
    global _HOOK
    _NETS.add(net)
    if _HOOK is None:
        _HOOK = register_optimizer_step_pre_hook(_check)


def _check(opt: torch.optim.Optimizer, args, kwargs) -> None:
    if opt in _SEEN:
        return
    _SEEN.add(opt)
    held = {id(p) for group in opt.param_groups for p in group["params"]}
    nets = [(net, [p for m in (net.classifier, net.norm) if m is not None for p in m.parameters()],
             {id(p) for p in net.backbone.parameters()}) for net in list(_NETS)]
    # a backbone whose head, or another wrapper's of it (two wrappers of one model share its backbone), the optimizer
    # trains: made after a head on it was built. Decided per backbone: another network's head says nothing of this one
    trained = [bb for _, head, bb in nets if any(id(p) in held for p in head)]
    for net, head, bb in nets:
        if head and bb & held and not any(bb & other for other in trained):
            warnings.warn(f"optimizer: it holds the backbone of a {type(net).__name__} but not its classifier, which the "
                          "network built on its first batch, after the optimizer was made: its steps leave the head as it "
                          "was built. Make the optimizer after one batch (net(x) or net.discover(x)), or build the network "
                          "with example_input=x (if the head is meant to stay fixed, this warning is for nothing)",
                          stacklevel=3)
