"""The setup of the cost benchmarks, where a mode or a default could silently differ (no timing).

A ratio of two timings means something only when both networks of the pair run in the same mode
(BatchNorm on batch statistics in a train step, running statistics in a forward) whatever ran
before them in the round, and when the network measured is the one the table names. These run
each benchmark's own jobs, in its own order, for two rounds, on tiny networks, and read the
train/eval flag of every module called.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager

import pytest
import torch
from torch import nn

import neuroview as nv


@pytest.fixture(scope="module")
def bench(benchmark_script):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield {n: benchmark_script(f"{n}_cost") for n in ("cnn", "rnn", "attribution")}
    finally:
        torch.set_num_threads(threads)


@contextmanager
def modes_seen(networks=()):
    """``record(job)`` runs ``job`` and returns the set of ``training`` flags of every module it
    calls (of ``networks`` only, when given)."""
    seen: set = set()
    mine = {id(m) for n in networks for m in n.modules()}

    def hook(m, args):
        if not mine or id(m) in mine:
            seen.add(m.training)

    handle = nn.modules.module.register_module_forward_pre_hook(hook)

    def record(job):
        seen.clear()
        job()
        return set(seen)

    try:
        yield record
    finally:
        handle.remove()


def run_rounds(jobs: dict, rounds: int = 2, networks=()) -> dict[str, set]:
    """Every job in the benchmark's order, ``rounds`` times: the modes each job ran in, all rounds."""
    out = {k: set() for k in jobs}
    with modes_seen(networks) as record:
        for _ in range(rounds):
            for k, fn in jobs.items():
                out[k] |= record(fn)
    return out


def test_cnn_cost_pairs_run_in_the_same_mode_every_round(bench):
    torch.manual_seed(0)
    std = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 6, 3), nn.BatchNorm2d(6),
                        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3))
    x, y = torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 2, 0])
    nets = {q: nv.NeuroViewCNN(copy.deepcopy(std), 3, quantizer=q, example_input=x) for q in ("hard", "none")}
    opts = {k: torch.optim.SGD(m.parameters(), lr=0.01) for k, m in [("standard", std), *nets.items()]}
    jobs = bench["cnn"].build_jobs(std, nets, opts, x, y)
    assert list(jobs)[:2] == ["standard/forward", "standard/train_step"]
    modes = run_rounds(jobs)
    assert modes["standard/forward"] == {False}
    assert modes["standard/train_step"] == {True}  # it was {True, False}: eval after the first forward
    for q in nets:
        assert modes[f"{q}/explain"] == {False} and modes[f"{q}/train_step"] == {True}
    # the memory measurement runs the same train step: train mode, whatever ran last
    std.eval()
    with modes_seen() as record:
        assert record(lambda: bench["cnn"].peak_train_memory(std, x, y)) == {True}


def test_rnn_cost_pairs_run_in_the_same_mode_every_round(bench):
    jobs, networks = bench["rnn"].build_jobs("gru", batch=4, steps=6, hidden=4, perm_batch=5)
    # The RNN wrappers run each layer through a weightless template, not a submodule, in the mode
    # they hand to their backbone's `states` (neuroview.core.rnn_backbone): that mode is read there.
    handed: set = set()
    for n in networks:
        n._backbone.states = _spy(n._backbone.states, handed)
    modes = {k: set() for k in jobs}
    with modes_seen(networks) as record:
        for _ in range(2):
            for k, fn in jobs.items():
                handed.clear()
                modes[k] |= record(fn) | handed
    for k in ("standard_forward", "neuroview_forward", "explain", "permutation"):
        assert modes[k] == {False}, k
    assert modes["standard_train_step"] == modes["neuroview_train_step"] == {True}
    for ratio, (a, b) in bench["rnn"].RATIOS.items():
        assert modes[a] == modes[b], ratio


def _spy(states, handed: set):
    def run(rnn, x, lengths, training):
        handed.add(training)
        return states(rnn, x, lengths, training)
    return run


def test_rnn_cost_batched_permutation_equals_one_forward_per_step(bench):
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(1, 8, batch_first=True), 2, max_len=12).eval()
    x, y = torch.randn(5, 12, 1), torch.randint(0, 2, (5,))
    got = bench["rnn"].permutation_importance(net, x, y, torch.Generator().manual_seed(0), batch=7)
    g, want = torch.Generator().manual_seed(0), torch.empty(12)
    with torch.no_grad():
        base = net(x).gather(1, y[:, None]).mean()
        for t in range(12):  # the unbatched definition: T + 1 forwards of the batch
            xp = x.clone()
            xp[:, t] = x[torch.randperm(5, generator=g), t]
            want[t] = base - net(xp).gather(1, y[:, None]).mean()
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)


def test_attribution_cost_measures_and_names_the_default_quantizer(bench, monkeypatch):
    ac = bench["attribution"]
    args = ac.parser().parse_args(["--batch", "2", "--rounds", "1"])
    default = nv.NeuroViewCNN.__init__.__kwdefaults__["quantizer"]
    assert args.quantizer == default == "hard"
    captured = {}
    monkeypatch.setattr(ac, "measure", lambda jobs, rounds, reps: captured.update(jobs) or {k: 1.0 for k in jobs})
    units = ac.unit_cost(args, captum=False)
    assert units["quantizer"] == "hard" and "quantizer 'hard'" in units["setting"]
    assert units["reference"] == "NeuroView explain (hard codes)" == list(captured)[1]
    used = []
    explain = nv.NeuroViewCNN.explain
    monkeypatch.setattr(nv.NeuroViewCNN, "explain", lambda self, x, **kw: used.append(self.quantizer) or explain(self, x, **kw))
    captured[units["reference"]]()
    assert used == ["hard"]
    modes = run_rounds(captured)  # the standard forward and every explain: eval
    assert all(m == {False} for m in modes.values()), modes
    result = {"meta": {"threads": 1}, "units": units | {"ratios": ac.ratios(units["median_seconds"], units["reference"])}}
    result["steps"] = result["units"]
    assert "| method | time / standard forward | time / NeuroView explain (hard codes) |" in ac.table(result)


def test_saved_bytes_counts_each_storage_once_in_train_mode(bench, benchmark_script):
    saved_bytes = benchmark_script("saved_bytes")

    class Square(nn.Module):  # h * h: autograd saves h twice, one storage
        def __init__(self, copy_one: bool):
            super().__init__()
            self.pre, self.lin, self.copy_one = nn.Linear(6, 6), nn.Linear(6, 3), copy_one

        def forward(self, x):
            h = self.pre(x)
            return self.lin(h * (h.clone() if self.copy_one else h))

    x, y = torch.ones(4, 6), torch.tensor([0, 1, 2, 0])
    net = Square(copy_one=False).eval()
    once, twice = saved_bytes.saved_bytes(net, x, y), saved_bytes.saved_bytes(Square(copy_one=True), x, y)
    assert net.training  # measured in train mode, whatever mode it came in
    assert once["parameters"] == twice["parameters"] == 6 * 3 * 4  # lin's weight, for the gradient of h * h
    assert twice["activations"] - once["activations"] == 4 * 6 * 4  # the clone is a second storage; h alone is one


def test_saved_bytes_shares_a_gelu_sites_input_but_copies_a_relu_sites(bench, benchmark_script):
    saved_bytes = benchmark_script("saved_bytes")
    x, y = torch.randn(2, 3, 8, 8), torch.tensor([0, 1])
    extra = {}
    for act in (nn.GELU, nn.ReLU):
        torch.manual_seed(0)
        std = nn.Sequential(nn.Conv2d(3, 4, 3), act(), nn.Conv2d(4, 4, 3), nn.Flatten(), nn.Linear(4 * 4 * 4, 2))
        net = nv.NeuroViewCNN(copy.deepcopy(std), 2, example_input=x)
        a, b = saved_bytes.saved_bytes(std, x, y), saved_bytes.saved_bytes(net, x, y)
        extra[act] = b["activations"] - a["activations"]
    # both: NeuroView's head state; ReLU alone: the surrogate's 4-bit slopes of the site's [2, 4, 6, 6]
    # pre-activation, two per byte (grad_state="uint4", the default)
    assert extra[nn.ReLU] - extra[nn.GELU] == 2 * 4 * 6 * 6 // 2


def test_gpu_cost_pairs_run_in_the_same_mode_and_measure_hard_codes(bench, monkeypatch, benchmark_script):
    from types import SimpleNamespace

    gpu_cost = benchmark_script("gpu_cost")
    args = SimpleNamespace(source="own", classes=10, width=0.125, size=32, channels_last=False, no_check_finite=False,
                           repeats=2, warmup=0)
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([0, 1])
    std, net, _ = gpu_cost.build_pair("resnet50", args, torch.device("cpu"), x)
    assert net.quantizer == "hard"  # what its table states
    # lr 0: the steps run (their modes are what is checked) and leave the weights as they are; at 1e-3 one step on
    # two random images sends this tiny ResNet-50's gradients to 1e7 (the standard network's too), its weights to
    # values whose eval codes overflow, which explain now refuses by name where it read NaN before
    opts = {k: torch.optim.SGD(m.parameters(), lr=0.0) for k, m in (("standard", std), ("neuroview", net))}
    modes = {}

    def rounds(jobs, n, warmup, device):  # the benchmark's jobs, in its order, twice: modes instead of times
        modes.update(run_rounds(jobs, n, networks=(std, net)))
        return {k: [1.0] * n for k in jobs}

    monkeypatch.setattr(gpu_cost, "timed_rounds", rounds)
    monkeypatch.setattr(gpu_cost, "peak_train_bytes", lambda step, m, opt, device: {"peak": 1, "above_static": 1})
    gpu_cost.measure("fp32", std, net, opts, torch.device("cpu"), x, y, args)
    assert modes["standard/forward"] == modes["neuroview/explain"] == {False}
    assert modes["standard/train_step"] == modes["neuroview/train_step"] == {True}


def test_fused_cost_compares_both_paths_on_the_same_random_draws(benchmark_script):
    """fused_cost's agreement: one train step per path from the same weights; a network with dropout
    (EfficientNet's stochastic depth) must draw the same masks on both, else its gradient difference
    reads as the kernel's. On CPU both paths are the torch code, so they agree to the bit."""
    fused_cost = benchmark_script("fused_cost")
    torch.manual_seed(1)
    backbone = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Dropout(0.5), nn.Conv2d(8, 4, 3), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    x, y = torch.randn(4, 3, 9, 9), torch.tensor([0, 1, 2, 0])
    net = nv.wrap(backbone, 3, example_input=x)
    opt = torch.optim.SGD(net.parameters(), lr=1e-3)
    a = fused_cost.agreement(net, x, y, opt, torch.device("cpu"), "fp32")
    assert a["codes_equal"] and a["grad_rel_diff"] == 0.0, a


def test_ensemble_cost_counts_kernels_not_views(benchmark_script):
    """ensemble_cost --launches: an op that launches a kernel counts once a call; a view or an
    allocation does not (they are free on a GPU, where the count stands in for launch cost)."""
    ensemble_cost = benchmark_script("ensemble_cost")
    x = torch.randn(4, 3)

    def step():
        y = x.view(12).unsqueeze(0).expand(2, 12)  # views only
        return torch.empty(3), y.add(1).sum()

    assert ensemble_cost.launches(step) == {"add": 1, "sum": 1}
    # a multi-tensor op: the launches CUDA splits its lists into (110 tensors a launch for one list, 64 for two)
    ts, us = [torch.zeros(2) for _ in range(111)], [torch.ones(2) for _ in range(111)]
    assert ensemble_cost.launches(lambda: torch._foreach_mul_(ts, 2.0)) == {"_foreach_mul_": 2}
    assert ensemble_cost.launches(lambda: torch._foreach_add_(ts[:64], us[:64])) == {"_foreach_add_": 1}
    assert ensemble_cost.launches(lambda: torch._foreach_add_(ts[:65], us[:65])) == {"_foreach_add_": 2}
    assert ensemble_cost.launches(lambda: torch._foreach_sqrt(ts[:65])) == {"_foreach_sqrt": 2}  # reads one, writes one
