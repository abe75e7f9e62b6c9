"""Errors that named the wrong thing: an activation called by keyword (hidden from the hooks), and a
torch.compile'd backbone, whose failure under the discovery hooks was Dynamo's own assertion blamed on x."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import neuroview as nv


class Net(nn.Module):
    def __init__(self, keyword: bool = False):
        super().__init__()
        self.keyword = keyword
        self.c, self.act = nn.Conv2d(3, 4, 3), nn.ReLU()

    def forward(self, x):
        z = self.c(x)
        return (self.act(input=z) if self.keyword else self.act(z)).mean((2, 3))


def test_an_activation_called_by_keyword_is_told_to_take_its_input_positionally():
    with pytest.raises(ValueError, match=r"site 'act': expected a tensor of shape \[B, C, \.\.\.\] as its first "
                                         r"positional argument \(a call by keyword, act\(input=z\), hides it"):
        nv.wrap(Net(keyword=True), 3, example_input=torch.randn(2, 3, 6, 6))


def test_a_compiled_backbone_that_fails_under_the_hooks_names_the_compile_and_the_fix(monkeypatch):
    # Dynamo's failure stood in for by a module of its class name whose forward fails under the hooks: compiling
    # takes seconds, and whether Dynamo fails depends on its version
    class OptimizedModule(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = Net()

        def forward(self, x):
            if self.inner.act._forward_pre_hooks:
                raise AssertionError("UnspecializedNNModuleVariable(Net) is already tracked for mutation")
            return self.inner(x)

    with pytest.raises(ValueError, match=r"backbone: \['the backbone'\] is torch.compile'd, .*torch.compile\(nv.wrap\("
                                         r"model, \.\.\.\)\) \(AssertionError: UnspecializedNNModuleVariable"):
        nv.wrap(OptimizedModule(), 3, example_input=torch.randn(2, 3, 6, 6))
