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


def test_a_neuroview_rnn_is_one_graph_where_dynamo_traces_its_rnn():
    """Dynamo runs nn.GRU / LSTM / RNN outside its graphs unless ``allow_rnn`` is set (then the network is one
    graph, its input check an assert inside it); by default the rest compiles around the eager RNN. Either way
    the compiled network computes what the eager one does."""
    torch.manual_seed(0)
    net, x = nv.NeuroViewRNN(nn.GRU(3, 8, num_layers=2, batch_first=True), 4, max_len=12), torch.randn(4, 12, 3)
    torch.testing.assert_close(torch.compile(net.eval(), backend="eager")(x), net(x))
    torch._dynamo.reset()
    with torch._dynamo.config.patch(allow_rnn=True):
        for mode in (True, False):
            ex = torch._dynamo.explain(net.train(mode))(x)
            assert (ex.graph_count, ex.graph_break_count) == (1, 0), (mode, ex.break_reasons)
            ops = [str(n.target) for g in ex.graphs for n in g.graph.nodes]
            assert any("gru" in o.lower() for o in ops) and any("_assert_async" in o for o in ops), ops
        torch.testing.assert_close(torch.compile(net.eval(), backend="eager")(x), net(x))
        torch._dynamo.reset()


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


def _exact_slope_grad(z: torch.Tensor, r: torch.Tensor, tau: float) -> torch.Tensor:
    """d/dz of sum(r * code) under the surrogate, by hand: r * sigmoid'(z / tau) / (tau * positions)."""
    s = torch.sigmoid(z.double() / tau)
    n = z[0, 0].numel()
    return (r.double()[:, :, None, None] * s * (1 - s) / (tau * n)).float()


def test_compiled_code_gradient_keeps_8_bit_slopes():
    """Inside torch.compile the default 4-bit slope state becomes 8 bits (packing two elements a byte
    is a loop Inductor cannot fuse): the gradient is within half an 8-bit step of the surrogate's,
    where eager mode's is within half a 4-bit step; the codes are the eager ones to the bit."""
    from neuroview.core.quantize import mean_code

    torch.manual_seed(0)
    z0, r, tau = torch.randn(2, 4, 5, 5), torch.randn(2, 4), 0.5
    expected = _exact_slope_grad(z0, r, tau)
    half_step = {bits: 0.25 / (2**bits - 1) / 2 * float(r.abs().max()) / (tau * 25) * 1.001 for bits in (4, 8)}
    for backend in ("eager", "aot_eager"):
        torch._dynamo.reset()
        z = z0.clone().requires_grad_()
        code = torch.compile(lambda t: mean_code(t, (0.0,), "hard", tau), backend=backend, fullgraph=True)(z)
        assert torch.equal(code.detach(), mean_code(z0, (0.0,), "hard", tau)), backend
        (code * r).sum().backward()
        assert float((z.grad - expected).abs().max()) <= half_step[8], backend
    torch._dynamo.reset()  # bfloat16 (autocast's dtype): the slope computed in float32, the gradient rounded once
    zb = z0.bfloat16().requires_grad_()
    code = torch.compile(lambda t: mean_code(t, (0.0,), "hard", tau), backend="aot_eager", fullgraph=True)(zb)
    (code * r).sum().backward()
    assert zb.grad.dtype == torch.bfloat16
    torch.testing.assert_close(zb.grad.float(), _exact_slope_grad(zb.detach().float(), r, tau), rtol=8e-3, atol=half_step[8])
    z = z0.clone().requires_grad_()
    (mean_code(z, (0.0,), "hard", tau) * r).sum().backward()  # eager: 4-bit slopes
    assert half_step[8] < float((z.grad - expected).abs().max()) <= half_step[4]


def _train_grads(model, net, x, y) -> dict[str, torch.Tensor]:
    net.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    return {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}


def test_compiled_train_step_gradients_with_an_in_place_activation():
    """In-place ReLUs after the sites overwrite their pre-activations: a compiled train step gives the
    eager gradients, in float64 (both keep an exact copy) and in float32 (the compiled default's
    8-bit slopes against eager mode's ``grad_state="uint8"``)."""
    for dtype, tol in ((torch.float64, 1e-9), (torch.float32, 1e-4)):
        torch.manual_seed(0)
        bb = nn.Sequential(nn.Conv2d(3, 6, 3), nn.BatchNorm2d(6), nn.ReLU(inplace=True), nn.Conv2d(6, 6, 3),
                           nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 4)).to(dtype)
        x, y = torch.randn(4, 3, 10, 10, dtype=dtype), torch.arange(4) % 3
        net = nv.wrap(bb, 3, example_input=x).to(dtype).train()
        net.grad_state = "uint8"
        want = _train_grads(net, net, x, y)
        net.grad_state = "uint4"  # the default: 8 bits once compiled
        for backend in ("eager", "aot_eager"):
            torch._dynamo.reset()
            got = _train_grads(torch.compile(net, backend=backend), net, x, y)
            assert got.keys() == want.keys()
            for n in want:
                torch.testing.assert_close(got[n], want[n], rtol=tol, atol=tol * 1e-2, msg=f"{dtype} {backend}: {n}")
