"""float64 batches given to the fitting and reading tools of a float32 network (session 17, fault 4, checked).

Reported as a possible bare dtype error from deep inside torch. It is not one: ``net(x)`` refuses a float64 ``x``
with an error naming ``x``, the dtype expected and the one given, and every tool here says the same (none casts
silently). This pins that they stay consistent with ``net(x)``.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import neuroview as nv

MESSAGE = r"x: expected dtype torch.float32 \(the model's parameters\), got torch.float64; convert x"


def _cnn():
    torch.manual_seed(0)
    return nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 8, 3), nn.ReLU()), 2, input_shape=(1, 20)).eval()


def _loader(dtype=torch.float64):
    x = torch.randn(32, 1, 20, generator=torch.Generator().manual_seed(1)).to(dtype)
    y = torch.arange(32) % 2
    return [(x[:16], y[:16]), (x[16:], y[16:])]


@pytest.mark.parametrize("tool", ["net", "mean_codes", "readability", "unit_gallery", "sparsify", "finetune_sparse"])
def test_float64_batches_get_net_x_s_own_error(tool):
    net, loader = _cnn(), _loader()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sparse = nv.sparsify(net, _loader(torch.float32)) if tool == "finetune_sparse" else None
        calls = {"net": lambda: net(loader[0][0]), "mean_codes": lambda: nv.mean_codes(net, loader),
                 "readability": lambda: nv.readability(net, loader),
                 "unit_gallery": lambda: nv.unit_gallery(net, loader, units=[0], k=2),
                 "sparsify": lambda: nv.sparsify(net, loader),
                 "finetune_sparse": lambda: nv.finetune_sparse(sparse, loader, epochs=1)}
        with pytest.raises(TypeError, match=MESSAGE):
            calls[tool]()
