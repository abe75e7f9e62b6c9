"""torch.compile: a wrapped network is one graph (no break per site), compiled once per input shape,
and computes what the eager network computes. The ``eager`` backend keeps the test fast: it checks
Dynamo's tracing, which is where graph breaks come from."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import neuroview as nv


def _net(quantizer: str) -> tuple[nv.NeuroViewCNN, torch.Tensor]:
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.GELU(),
                       nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    x = torch.randn(4, 3, 12, 12)
    return nv.wrap(bb, 5, example_input=x, quantizer=quantizer), x


def test_one_graph_no_break_per_site():
    for quantizer in ("hard", "soft", "none"):
        net, x = _net(quantizer)
        for mode in (True, False):
            net.train(mode)
            ex = torch._dynamo.explain(net)(x)
            assert (ex.graph_count, ex.graph_break_count) == (1, 0), (quantizer, mode, ex.break_reasons)


def test_compiled_once_per_shape_and_equal_to_eager():
    torch._dynamo.reset()
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    net, x = _net("hard")
    compiled = torch.compile(net, backend=backend)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(3):  # train steps of one shape: one compilation
        opt.zero_grad()
        F.cross_entropy(compiled.train()(x), torch.arange(4) % 5).backward()
        opt.step()
    assert len(graphs) == 1
    net.eval()
    torch.testing.assert_close(compiled(x), net(x), rtol=1e-5, atol=1e-5)
    exp = net.explain(x)
    torch.testing.assert_close(exp.logits, compiled(x), rtol=1e-5, atol=1e-5)
