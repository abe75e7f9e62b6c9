"""Review R2's findings on the head's statistics: ``baseline="mean"`` on statistics no batch set is said on a batched
ensemble and on an ensemble's global head too; a batch left out under torch.compile is counted in the graph and said
at eval; the CPU warning numbers the batch right, the deferred one says "1 training batch"; the variance alone
tells a batch with a NaN or Inf mean."""

from __future__ import annotations

import pickle
import re
import warnings

import pytest
import torch

import neuroview as nv
from neuroview.core import head
from neuroview.core.head import CodeNorm

_NEVER = r"baseline: 'mean'.*never saw a training batch"


def _said(fn, pattern: str) -> tuple[object, list[str]]:
    """``fn()`` and the messages of its warnings that match ``pattern``, every copy (the filter set to always)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn()
    return out, [str(w.message) for w in caught if re.search(pattern, str(w.message))]


def _lite_pair(batched) -> nv.Ensemble:
    torch.manual_seed(1)
    members = [nv.create_model("nv_lite", num_classes=3, in_channels=1) for _ in range(2)]
    return nv.Ensemble(members, batched=batched).eval()


def _set_stats(norm: CodeNorm, mean: torch.Tensor) -> None:
    """Statistics a training run left: a known mean, a variance of 2, 5 batches counted."""
    with torch.no_grad():
        norm.running_mean.copy_(mean)
        norm.running_var.fill_(2.0)
        norm.num_batches_tracked.fill_(5)


# ------------------------------------------------------------ 1. the batched ensemble and the global head
def test_mean_baseline_of_a_batched_ensemble_says_statistics_no_batch_set_once():
    ens, x = _lite_pair(True), torch.randn(4, 1, 64)
    ens(x)
    assert ens._batched_eval(x) is not None  # the batched explanation's path, not the members one by one
    mean_b = torch.stack([m.classifier.bias for m in ens.members]).mean(0)  # zero codes: the classifiers' own biases
    exp, said = _said(lambda: ens.explain(x, baseline="mean"), _NEVER)
    assert len(said) == 1, said  # one warning for the ensemble, not one per member
    torch.testing.assert_close(exp.bias, mean_b)
    _, said = _said(lambda: nv.readability(ens, [(x, torch.zeros(4, dtype=torch.long))]), _NEVER)  # its default 'mean'
    assert said
    # one member trained, the other not: still said
    r0 = torch.linspace(-1, 1, ens.members[0].num_units)
    _set_stats(ens.members[0].norm, r0)
    _, said = _said(lambda: ens.explain(x, baseline="mean"), _NEVER)
    assert len(said) == 1
    # both trained: silent, and against the real mean the bias is b + W_f mu - W_f mu = b, each member's own
    r1 = torch.linspace(2, 0, ens.members[1].num_units)
    _set_stats(ens.members[1].norm, r1)
    exp, said = _said(lambda: ens.explain(x, baseline="mean"), "never saw")
    assert not said
    torch.testing.assert_close(exp.bias, mean_b)
    torch.testing.assert_close(exp.baseline, torch.cat([r0, r1]))


def test_mean_baseline_of_an_ensembles_global_head_says_statistics_no_batch_set():
    ens, x = _lite_pair(False), torch.randn(4, 1, 64)
    ens(x)
    ens.build_head(ens.num_units)
    ens.eval()
    exp, said = _said(lambda: ens.explain(x, baseline="mean"), _NEVER)
    assert len(said) == 1, said
    torch.testing.assert_close(exp.bias, ens.classifier.bias)  # zero codes, as it says: the classifier's own bias
    r = torch.linspace(-1, 1, ens.num_units)
    _set_stats(ens.norm, r)
    exp, said = _said(lambda: ens.explain(x, baseline="mean"), "never saw")
    assert not said
    torch.testing.assert_close(exp.bias, ens.classifier.bias)  # b + W_f mu - W_f mu
    torch.testing.assert_close(exp.baseline, r)


# ------------------------------------------------------------ 2. torch.compile
def test_under_compile_the_batches_left_out_are_counted_in_the_graph_and_said_at_eval():
    torch._dynamo.reset()
    norm = CodeNorm(3, momentum=0.5, floor=0.0).train()
    compiled = torch.compile(norm, backend="aot_eager", fullgraph=True)  # fullgraph: a graph break raises
    good1, good2 = torch.tensor([[0.0] * 3, [2.0] * 3]), torch.tensor([[1.0] * 3, [3.0] * 3])
    nan, inf = torch.tensor([[float("nan"), 0.0, 0.0], [1.0, 1.0, 1.0]]), torch.tensor([[0.0, 0.0, float("inf")], [1.0] * 3])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no Python runs in a compiled step: nothing is said there
        for f in (good1, nan, inf, good2):
            compiled(f)
    # by hand, lerps of 0.5: mean 1 / var 2 from (0, 1), then mean 2 / var 2; the two bad batches not counted
    assert norm.running_mean.tolist() == [1.25] * 3 and norm.running_var.tolist() == [1.75] * 3
    assert int(norm.num_batches_tracked) == 2
    with pytest.warns(UserWarning, match=r"norm: 2 training batches gave NaN or Inf statistics"):
        compiled.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compiled.train().eval()  # said once
    assert "left_out" not in norm.state_dict()  # a count of this run: no key of any file


def test_a_state_dict_of_every_buffer_and_an_older_pickle_still_load():
    norm = CodeNorm(3).train()
    norm(torch.randn(4, 3))
    copy = CodeNorm(3)
    copy.load_state_dict(dict(norm.named_buffers()))  # strict: the count is no unexpected key
    assert torch.equal(copy.running_mean, norm.running_mean)
    with torch.device("meta"):  # built empty, then filled by a load: no count from to_empty's memory
        empty = CodeNorm(3)
    empty.to_empty(device="cpu").left_out.fill_(7)
    empty.load_state_dict(norm.state_dict())
    assigned = CodeNorm(3, device="meta")
    assigned.load_state_dict(norm.state_dict(), assign=True)
    assert assigned.left_out.device.type == "cpu"  # where the statistics went
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        empty.eval(), assigned.eval()
    old = CodeNorm(3)  # as pickled whole before the count was a buffer: the pending count in its __dict__
    del old._buffers["left_out"]
    old._non_persistent_buffers_set.discard("left_out")
    old.__dict__["_left_out"] = torch.tensor(1)
    back = pickle.loads(pickle.dumps(old))
    assert "_left_out" not in back.__dict__ and int(back.left_out) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back.train()(torch.randn(4, 3))
        back.eval()


# ------------------------------------------------------------ 3. the CPU warning's batch, the deferred count's noun
def test_the_cpu_warning_numbers_the_batch_by_the_batches_run_not_those_counted():
    norm = CodeNorm(3).train()
    good, nan = torch.randn(4, 3), torch.tensor([[float("nan"), 0.0, 0.0], [1.0, 2.0, 3.0]])
    said = []
    for f in (good, good, nan, nan, good, nan):  # the 3rd, 4th and 6th left out: by the old count "3", "3", "4"
        said += _said(lambda: norm(f), "NaN or Inf")[1]
    assert [m[:m.index(" of 3 (")] for m in said] == [
        f"norm: this run's training batch {i} gave NaN or Inf statistics at features [0]" for i in (3, 4, 6)], said
    assert int(norm.num_batches_tracked) == 3
    _, said = _said(norm.eval, "NaN or Inf")
    assert not said  # said at once on the CPU: not said again at eval


def test_the_deferred_warning_says_one_batch_in_the_singular(monkeypatch):
    monkeypatch.setattr(head, "_SAID_AT_ONCE", ())  # as on a GPU: counted there, no host sync every step
    norm = CodeNorm(2).train()
    norm(torch.tensor([[float("inf"), 0.0], [1.0, 1.0]]))
    _, said = _said(norm.eval, "NaN or Inf")
    assert said == [m for m in said if m.startswith("norm: 1 training batch gave NaN or Inf statistics")] and len(said) == 1


# ------------------------------------------------------------ 4. the variance alone
_BIG = {torch.float32: 3e38, torch.float64: 1.7e308}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_nonfinite_mean_always_comes_with_a_nonfinite_variance(dtype):
    big, inf, nan = _BIG[dtype], float("inf"), float("nan")
    columns = [[big] * 4, [big, -big, big, -big], [-big, big, big, big], [inf, 0, 0, 0], [0, 0, 0, -inf], [inf, -inf, 0, 0],
               [nan, 0, 0, 0], [inf, inf, inf, inf], [big, big, 1, inf], [1e20, -1e20, 3, 4], [0, 1, 2, 3]]
    f = torch.tensor(columns, dtype=dtype).T.contiguous()  # [4 samples, 11 features]
    var, mean = torch.var_mean(f, dim=0, unbiased=False)  # one process: CodeNorm's batch statistics
    n = f.shape[0]
    mean2 = f.sum(0) / n  # DDP's two passes (head._batch_stats), in one process
    var2 = (f - mean2).square().sum(0) / n
    for m, v in ((mean, var), (mean2, var2)):
        assert not (~torch.isfinite(m) & torch.isfinite(v)).any(), (m, v)
    assert (~torch.isfinite(mean2)).sum() >= 6  # the overflowing sums and the non-finite inputs are among the cases
    # and CodeNorm leaves out a batch exactly where its mean or its variance is not finite
    for j in range(f.shape[1]):
        norm = CodeNorm(1, dtype=dtype).train()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            norm(f[:, j:j + 1])
        assert int(norm.num_batches_tracked) == int(bool(torch.isfinite(mean[j]) and torch.isfinite(var[j]))), j


# ------------------------------------------------------------ S3 review (second): 1, 5, 6, 7
def test_a_forward_mode_jvp_in_training_leaves_no_tangent_in_the_running_statistics():
    import torch.autograd.forward_ad as fwAD

    torch.manual_seed(0)
    norm = CodeNorm(3, floor=0.0, momentum=0.5).train()
    x1, v1, x2, v2 = (torch.randn(8, 3) for _ in range(4))
    with fwAD.dual_level():
        norm(fwAD.make_dual(x1, v1))  # a training JVP (a Jacobian penalty by forward AD)
        assert fwAD.unpack_dual(norm.running_mean).tangent is None
        assert fwAD.unpack_dual(norm.running_var).tangent is None
        norm.eval()
        tangent = fwAD.unpack_dual(norm(fwAD.make_dual(x2, v2))).tangent
    # eval is (x - running_mean) / sqrt(running_var + eps), the statistics constants: the tangent is v2 times the scale,
    # the scale by hand from x1 alone (lerp of 0.5 from zeros / ones, unbiased variance)
    var = 0.5 * 1.0 + 0.5 * x1.var(0, unbiased=True)
    torch.testing.assert_close(tangent, v2 / torch.sqrt(var + 1e-5))


def test_reset_running_stats_after_to_empty_leaves_nothing_to_say():
    with torch.device("meta"):
        norm = CodeNorm(3)
    norm.to_empty(device="cpu")
    with torch.no_grad():  # what uninitialised memory may hold
        norm.running_mean.fill_(5.0), norm.running_var.fill_(-3.0), norm.num_batches_tracked.fill_(99)
        norm.left_out.fill_(123456)
    norm.reset_parameters()  # what meta-device init recipes call on each module that has it
    assert norm.running_mean.tolist() == [0.0] * 3 and norm.running_var.tolist() == [1.0] * 3
    assert int(norm.num_batches_tracked) == 0 and int(norm.left_out) == 0
    _, said = _said(norm.eval, "NaN or Inf")
    assert said == []
    assert CodeNorm.reset_running_stats is CodeNorm.reset_parameters


@pytest.mark.parametrize("garbage", [-4767480956686155979, 140134153767120])
def test_a_count_no_run_can_reach_is_not_said(garbage):
    with torch.device("meta"):
        norm = CodeNorm(3)
    norm.to_empty(device="cpu").left_out.fill_(garbage)  # to_empty, no load, no reset: the memory as it was
    _, said = _said(norm.eval, "NaN or Inf")
    assert said == [] and int(norm.left_out) == 0


def test_eval_of_a_module_already_in_eval_mode_reads_no_count(monkeypatch):
    norm = CodeNorm(3).eval()
    norm.left_out.fill_(2)  # (only a training step moves it: set by hand to see whether eval() reads it)
    reads = []
    real = torch.Tensor.__int__
    monkeypatch.setattr(torch.Tensor, "__int__", lambda t: reads.append(1) or real(t))
    _, said = _said(norm.eval, "NaN or Inf")
    assert said == [] and reads == [] and int(norm.left_out) == 2  # no host sync, nothing said, nothing lost
    reads.clear()
    _, said = _said(lambda: norm.train().eval(), "NaN or Inf")
    assert len(reads) == 1 and len(said) == 1 and said[0].startswith("norm: 2 training batches gave NaN or Inf")


def test_a_copy_numbers_its_batches_from_its_own_first():
    import copy

    norm = CodeNorm(3).train()
    for _ in range(5):
        norm(torch.randn(8, 3))
    nan = torch.full((8, 3), float("nan"))
    for twin in (copy.deepcopy(norm), pickle.loads(pickle.dumps(norm))):
        _, said = _said(lambda: twin(nan), "NaN or Inf")
        assert len(said) == 1 and said[0].startswith("norm: this run's training batch 1 gave"), said
    _, said = _said(lambda: norm(nan), "NaN or Inf")
    assert len(said) == 1 and said[0].startswith("norm: this run's training batch 6 gave"), said
