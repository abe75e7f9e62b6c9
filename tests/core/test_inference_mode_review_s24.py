"""Review s24: a CNN holding a plain tensor attribute (no parameter, no buffer) made under ``torch.inference_mode()``
finds the sites the same CNN built normally finds; one holding such a tensor where it cannot be found (inside a list)
is refused naming the model and the way out, never ``x`` (it was ``x: the backbone's forward pass on this batch
failed (RuntimeError: Inference tensors cannot be saved for backward ...)``).
"""

import pytest
import torch
from torch import nn

import neuroview as nv


class Scaled(nn.Module):
    """A convolution times a constant kept as a plain attribute (or inside a list: ``boxed``)."""

    def __init__(self, boxed=False):
        super().__init__()
        self.c = nn.Conv1d(1, 8, 3, padding=1)
        scale = torch.linspace(0.5, 2.0, 8)[None, :, None]
        self.scale = [scale] if boxed else scale
        self.rest = nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(8, 2))

    def forward(self, x):
        return self.rest(self.c(x) * (self.scale[0] if isinstance(self.scale, list) else self.scale))


def _made(boxed=False, inference=True):
    torch.manual_seed(0)
    with torch.inference_mode(inference):
        return Scaled(boxed).eval()


def _wrap(m, x=None):
    torch.manual_seed(1)
    return nv.NeuroViewCNN(m, 2, example_input=x).eval()


def test_a_plain_tensor_attribute_made_under_inference_mode_is_stood_in_for():
    x = torch.randn(6, 1, 24)
    m = _made()
    scale = m.scale
    assert scale.is_inference() and "scale" not in dict(m.named_buffers())
    reference, net = _wrap(_made(inference=False), x), _wrap(m, x)  # was ValueError: x: the backbone's forward ...
    assert [(s.name, s.channels) for s in net.sites] == [(s.name, s.channels) for s in reference.sites] == [("rest.0", 8)]
    assert torch.equal(net.explain(x).contributions, reference.explain(x).contributions)
    assert m.scale is scale  # the user's own tensor is back
    # a lazy network, its first batch inside inference_mode, and the gallery's window pass
    lazy = _wrap(_made())
    with torch.inference_mode():
        assert torch.equal(lazy(x), reference(x).detach())
    g = nv.unit_gallery(net, [(x, torch.zeros(6, dtype=torch.long))], units=[0, 7], k=2)
    want = nv.unit_gallery(reference, [(x, torch.zeros(6, dtype=torch.long))], units=[0, 7], k=2)
    assert torch.equal(g.window, want.window) and torch.equal(g.index, want.index)


def test_such_a_tensor_out_of_reach_is_refused_naming_the_model_not_x():
    x = torch.randn(6, 1, 24)
    with pytest.raises(ValueError) as e:
        _wrap(_made(boxed=True), x)
    msg = str(e.value)
    assert not msg.startswith("x:") and "x: the backbone's forward pass" not in msg
    assert msg.startswith("backbone: ")
    assert "torch.inference_mode()" in msg and "outside" in msg and "buffer" in msg
    assert "Inference tensors cannot be saved for backward" in msg  # what was given: torch's own words
