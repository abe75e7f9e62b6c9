"""Faults of a probe round of 2026-12-06, each fixed with the test that failed before:

- a site a batch skips, or runs on only some of its samples: the error named neither the site nor the fix (one
  told the user to find the sites "on an input of this size", which it already was);
- a NaN decision from a finite input (float16 overflow under autocast) was scored as the most readable one (k90 0,
  top share 1.0): the pass now says by name that its codes came out non-finite, and the readability measures refuse
  rows whose contributions are not finite;
- a batch shorter than the receptive field gave torch's bare error after the first batch (named on the first);
- ``torch.export`` of a network whose sites are not found yet failed deep in torch, and ``torch.jit.trace`` of a
  NeuroView-CNN with a TracingCheckError: both now refused by name, as for the RNN.

The networks are hand-built, so the samples and sites at fault are known without the code under test.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.core.explanation import Explanation
from neuroview.core.readable import k_share


class Gated(nn.Module):
    """``r2`` runs only on the samples whose mean is positive (a refinement branch for 'hard' samples)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.c, self.r = nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()
        self.c2, self.r2 = nn.Conv2d(4, 4, 3, padding=1), nn.ReLU()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        h = self.r(self.c(x))
        hard = x.mean((1, 2, 3)) > 0
        out = h.clone()
        out[hard] = self.r2(self.c2(h[hard]))
        return self.fc(out.mean((2, 3)))


def _gated_batch(selected: int) -> torch.Tensor:
    x = torch.randn(4, 3, 6, 6, generator=torch.Generator().manual_seed(1)) * 0.1
    x[:selected] += 2.0  # these samples' means are positive: the gate selects exactly them
    x[selected:] -= 2.0
    return x


@pytest.mark.parametrize("selected", [0, 2])
def test_a_site_run_on_some_samples_only_is_named_with_the_fix(selected):
    # 0 of 4: "folds 0 positions into dim 0 ... find the sites on an input of this size (example_input=x)";
    # 2 of 4: "took another path" without saying that r2 saw only 2 of the 4 samples
    net = nv.wrap(Gated(), 2, example_input=_gated_batch(4)).eval()
    assert [s.name for s in net.sites] == ["r", "r2"]
    for call in (net, net.explain):
        with pytest.raises(RuntimeError, match=rf"backbone: site 'r2' received {selected} of the 4 samples of this "
                                               r"batch .* layers=\[\.\.\.\]"):
            call(_gated_batch(selected))
    assert torch.isfinite(net(_gated_batch(4))).all()  # every sample selected: read as before


class Branch(nn.Module):
    """``rb`` runs only when the batch's mean is positive; ``skip`` leaves out the middle block (as LayerDrop does)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.ca, self.ra = nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()
        self.cb, self.rb = nn.Conv2d(4, 4, 3, padding=1), nn.ReLU()
        self.cc, self.rc = nn.Conv2d(4, 4, 3, padding=1), nn.ReLU()
        self.skip, self.tail = False, True
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        h = self.ra(self.ca(x))
        if not self.skip:
            h = self.rb(self.cb(h))
        if self.tail:
            h = self.rc(self.cc(h))
        return self.fc(h.mean((2, 3)))


def test_a_site_a_batch_skips_is_named_with_the_fix():
    # "backbone: its forward pass called 2 sites, expected 3" named neither 'rc' nor a fix
    m = Branch()
    net = nv.wrap(m, 2, example_input=torch.randn(4, 3, 6, 6)).eval()
    assert [s.name for s in net.sites] == ["ra", "rb", "rc"]
    m.tail = False  # the last site does not run
    with pytest.raises(RuntimeError, match=r"called 2 sites, expected 3: \['rc'\] did not run on this batch.*"
                                           r"layers=\[\.\.\.\]"):
        net(torch.randn(4, 3, 6, 6))
    m.tail, m.skip = True, True  # a site in the middle does not run
    with pytest.raises(RuntimeError, match=r"took another path .* \['rb'\] did not run before it.*layers=\[\.\.\.\]"):
        net(torch.randn(4, 3, 6, 6))
    m.skip = False
    assert net(torch.randn(4, 3, 6, 6)).shape == (4, 2)


def _overflow_net(quantizer: str = "hard"):
    """Its second site's pre-activation is ``relu(x) - relu(x)``: 0 in float32, NaN where float16 makes x inf."""
    bb = nn.Sequential(nn.Conv2d(1, 2, 1, bias=False), nn.ReLU(), nn.Conv2d(2, 1, 1, bias=False), nn.ReLU())
    with torch.no_grad():
        bb[0].weight.copy_(torch.ones(2, 1, 1, 1))
        bb[2].weight.copy_(torch.tensor([1.0, -1.0]).view(1, 2, 1, 1))
    return nv.wrap(bb, 2, quantizer=quantizer, example_input=torch.rand(4, 1, 3, 3) + 0.5).eval()


@pytest.mark.parametrize("quantizer", ["hard", "soft", "none"])
def test_codes_that_overflow_under_autocast_are_named(quantizer):
    # float16 overflow gave NaN logits for finite inputs, read as predicted class 0, k90 0 and top share 1.0
    net = _overflow_net(quantizer)
    site = "1" if quantizer == "none" else "3"  # the code of relu(inf) is inf itself; its region (1) is finite
    x = torch.rand(5, 1, 3, 3) + 0.5
    x[[0, 2]] *= 1e5  # finite float32, beyond float16's 65504
    assert torch.isfinite(net(x)).all()  # float32: finite
    with torch.autocast("cpu", dtype=torch.float16):
        for call in (net, net.explain):
            with pytest.raises(ValueError, match=rf"x: samples \[0, 2\] give NaN or Inf codes at site '{site}' though x is "
                                                 r"finite .*float16 autocast.*65504"):
                call(x)
        assert torch.isfinite(net(x[[1, 3, 4]])).all()  # the other samples are read as before


def test_readability_refuses_non_finite_contributions():
    # k_share sent a NaN total to 0 ("no contribution at all") and top_share to 1.0 ("perfectly concentrated")
    assert k_share(torch.tensor([[5.0, -4.0, 1.0], [0.0, 0.0, 0.0]])).tolist() == [2, 0]  # (4.5 of 10: 2 values)
    with pytest.raises(ValueError, match=r"values: rows \[1\] hold NaN or Inf"):
        k_share(torch.tensor([[5.0, -4.0, 1.0], [1.0, float("nan"), 1.0]]))
    nan = float("nan")
    exp = Explanation(torch.tensor([[nan, 0.0], [3.0, 1.0]]), torch.zeros(2),
                      torch.tensor([[[nan, 1.0], [0.0, 0.0]], [[2.0, 1.0], [1.0, 0.0]]]))
    for measure in (exp.k90, exp.top_share):
        with pytest.raises(ValueError, match=r"contributions: samples \[0\] hold NaN or Inf"):
            measure(target=0)
    assert exp.k90(target=torch.tensor([1, 0]), per_sample=True).tolist() == [0, 2]  # (9/10 of 3: 2 values)
    assert exp.top_share(1, target=torch.tensor([1, 0]), per_sample=True).tolist() == [1.0, 2.0 / 3.0]


def test_a_later_batch_shorter_than_the_receptive_field_is_named():
    # named on the first batch; torch's bare "Kernel size can't be greater than actual input size" after it
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv1d(1, 4, 5), nn.ReLU(), nn.Conv1d(4, 4, 5), nn.ReLU())  # needs 9 steps
    net = nv.wrap(bb, 2, example_input=torch.randn(4, 1, 40)).eval()
    short = torch.randn(3, 1, 6)
    for call in (net, net.explain):
        with pytest.raises(ValueError, match=r"x: the backbone's forward pass on this batch failed \(RuntimeError: "
                                             r".*Kernel size.*\); its samples are of shape \(1, 6\), the sites were "
                                             r"found on \(1, 40\)"):
            call(short)
    assert net(torch.randn(3, 1, 9)).shape == (3, 2)  # 9 steps: enough


def _lazy():
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 6, 3), nn.ReLU())
    return nv.NeuroViewCNN(bb, num_classes=3).eval()


def test_torch_export_of_a_network_whose_sites_are_not_found_yet_is_refused_by_name():
    # GuardOnDataDependentSymNode (non-strict) or "Unsupported context manager" (strict), deep in torch
    x = torch.randn(4, 1, 8, 8)
    with pytest.raises(RuntimeError, match=r"torch.export: .*sites are not found yet.*call net\(x\) once"):
        torch.export.export(_lazy(), (x,), strict=False)
    with pytest.raises(Exception, match=r"torch.export: .*sites are not found yet.*call net\(x\) once"):
        torch.export.export(_lazy(), (x,), strict=True)  # Dynamo wraps the error, and keeps its text
    net = _lazy()
    net(x)
    with torch.no_grad():
        assert torch.equal(torch.export.export(net, (x,), strict=False).module()(x), net(x))


def test_torch_jit_trace_of_a_cnn_is_refused_by_name():
    # TracingCheckError with 14 kB of graph diff; with check_trace=False a trace that torch.jit.save refused
    x = torch.randn(4, 1, 8, 8)
    with pytest.raises(RuntimeError, match=r"sites: not found yet.*call net\(x\) once"):  # (read before it traces)
        torch.jit.trace(_lazy(), x)
    net = _lazy()
    net(x)
    for check in (True, False):
        with pytest.raises(TypeError, match=r"torch.jit.trace: a NeuroViewCNN reads its codes through hooks .*"
                                            r"torch.export.export"):
            torch.jit.trace(net, x, check_trace=check)


def test_codes_are_checked_on_a_device_only_where_float16_can_overflow():
    """On a device the codes' check is a second host sync a step: taken only in float16 (a half network's codes, or
    float16 autocast), whose range a finite input overflows; float32 and bfloat16 keep the input's one sync."""
    from neuroview.core.pass_checks import _may_overflow

    cpu, meta = torch.zeros(2, 3), torch.zeros(2, 3, device="meta")
    assert _may_overflow(cpu, cpu)  # the CPU: always (no sync to save)
    assert not _may_overflow(meta, meta)  # float32 on a device
    assert not _may_overflow(meta, meta.bfloat16())
    assert _may_overflow(meta, meta.half())


# ------------------------------------------------------------------ review of a29612d (rev16/core)
class _Fails(nn.Module):
    """A 1-D CNN whose forward raises ``error`` (a callable of the batch) once ``fail`` is set."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.c, self.r = nn.Conv1d(1, 4, 3), nn.ReLU()
        self.fail = None

    def forward(self, x):
        h = self.r(self.c(x))
        if self.fail is not None:
            self.fail(x)
        return h.mean(-1)


def _huge(x):  # the CPU allocator's own out-of-memory error: a plain RuntimeError
    torch.empty(2 ** 50, dtype=torch.uint8)


def _own(x):
    raise RuntimeError("Stateful: call reset_state() before a new sequence")


def _cuda_oom(x):
    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 4.00 GiB")


@pytest.mark.parametrize("fail, shape", [(_own, (3, 1, 10)), (_huge, (3, 1, 10)), (_huge, (3, 1, 16)),
                                         (_cuda_oom, (3, 1, 16))])
def test_a_later_float_batch_s_runtime_error_passes_as_it_is_unless_its_shape_changed(fail, shape):
    # rev16/core F2: any plain RuntimeError of a later float batch (the CPU's out of memory, a user's own) became a
    # ValueError blaming x; an `except RuntimeError` (a batch-halving retry) no longer caught it
    m = _Fails()
    net = nv.wrap(m, 2, example_input=torch.randn(4, 1, 10)).eval()
    m.fail = fail
    for call in (net, net.explain):
        with pytest.raises(RuntimeError) as info:
            call(torch.randn(*shape))
        assert not isinstance(info.value, ValueError), info.value
        assert "can't allocate memory" in str(info.value) or "Stateful" in str(info.value) or "CUDA" in str(info.value)


def test_a_later_float_batch_of_another_shape_that_fails_is_still_named():
    m = _Fails()
    net = nv.wrap(m, 2, example_input=torch.randn(4, 1, 10)).eval()
    m.fail = _own
    with pytest.raises(ValueError, match=r"x: the backbone's forward pass on this batch failed \(RuntimeError: Stateful.*"
                                         r"\); its samples are of shape \(1, 16\), the sites were found on \(1, 10\)"):
        net(torch.randn(3, 1, 16))


def test_an_integer_batch_that_runs_out_of_memory_is_not_blamed_on_its_dtype():
    m = _Fails()
    net = nv.wrap(m, 2, example_input=torch.randn(4, 1, 10)).eval()

    class Big(nn.Module):  # reads token ids: asks for more memory than there is before any site
        def forward(self, x):
            return m(torch.empty(2 ** 50, dtype=torch.uint8) if not x.is_floating_point() else x)

    net.backbone.forward = Big().forward
    with pytest.raises(RuntimeError, match="can't allocate memory") as info:
        net(torch.ones(3, 1, 10, dtype=torch.int64))
    assert not isinstance(info.value, ValueError), info.value


class _Shared(nn.Module):
    """One ``nn.ReLU`` called at 3 places (sites act, act:1, act:2); ``skip`` leaves out the middle block."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.c1, self.c2, self.c3 = nn.Conv1d(1, 4, 3, padding=1), nn.Conv1d(4, 4, 3, padding=1), nn.Conv1d(4, 4, 3, padding=1)
        self.act, self.skip = nn.ReLU(), False
        self.ct, self.rt, self.tail = nn.Conv1d(4, 4, 3, padding=1), nn.ReLU(), True

    def forward(self, x):
        h = self.act(self.c1(x))
        if not self.skip:
            h = self.act(self.c2(h))
        h = self.act(self.c3(h))
        return self.rt(self.ct(h)).mean(-1) if self.tail else h.mean(-1)


def test_a_skipped_call_of_a_shared_module_names_the_module_not_a_site():
    # rev16/core F7: the middle call skipped, the error named act:2 (which ran, read as act:1) as the one that did not
    m = _Shared()
    net = nv.wrap(m, 2, example_input=torch.randn(4, 1, 8)).eval()
    assert [s.name for s in net.sites] == ["act", "act:1", "act:2", "rt"]
    m.skip, m.tail = True, False
    with pytest.raises(RuntimeError) as info:
        net(torch.randn(4, 1, 8))
    msg = str(info.value)
    assert "'act' ran 2 of its 3 calls" in msg and "['rt'] did not run" in msg, msg
    assert "act:2" not in msg.split("(")[0] and "['act:2']" not in msg, msg
    m.skip, m.tail = False, True
    assert net(torch.randn(4, 1, 8)).shape == (4, 2)


def test_non_finite_codes_under_bfloat16_autocast_do_not_advise_an_overflow_or_bfloat16():
    # rev16/core F6: "an overflow? Run these samples without autocast (or in bfloat16)" under bfloat16 with x of 1.5
    net = _overflow_net()
    with torch.no_grad():
        net.backbone[2].weight[0, 0, 0, 0] = float("nan")
    x = torch.rand(3, 1, 3, 3) + 0.5
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with pytest.raises(ValueError, match=r"x: samples \[0, 1, 2\] give NaN or Inf codes at site '3'") as info:
            net(x)
    msg = str(info.value)
    assert "overflow" not in msg and "in bfloat16" not in msg and "weights" in msg, msg


def test_codes_are_not_checked_while_the_network_trains():
    # the reviewer's note: under float16 mixed precision a forward overflow that GradScaler skipped now stopped training
    net = _overflow_net().train()
    x = torch.rand(5, 1, 3, 3) + 0.5
    x[[0, 2]] *= 1e5
    with torch.autocast("cpu", dtype=torch.float16):
        logits = net(x)  # no error: the scaler sees the non-finite loss and skips the step
        assert not torch.isfinite(logits).all()
        with pytest.raises(ValueError, match=r"NaN or Inf codes"):
            net.eval()(x)


def test_torch_jit_trace_of_an_ensemble_does_not_call_it_a_cnn_alone():
    # rev16/core F10: tracing an Ensemble said "a NeuroViewCNN reads its codes ...", a class the user never traced
    from neuroview.core.ensemble import Ensemble

    x = torch.randn(4, 1, 8, 8)
    members = [_lazy() for _ in range(2)]
    for m in members:
        m(x)
    with pytest.raises(TypeError, match=r"torch.jit.trace: .*an Ensemble of them.*torch.export.export"):
        torch.jit.trace(Ensemble(members).eval(), x)
