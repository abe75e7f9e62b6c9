"""The eval warning where a series reaches steps no training series reached (review revE, findings 4-7):

- only the unreached steps after the last reached one count (a leading run of steps whose features were exactly 0 in
  training, a bias-free GRU fed series starting with zeros, is no "longer than training" case: its state is 0 at eval
  too), and the advice never cuts below 1 sample (it advised ``lengths.clamp(max=0)``, which ``prepare`` refuses);
- a batch zero-padded without lengths reads only the tail past the first unreached step, in one host sync;
- under ``torch.compile`` at eval, no extra graph for ``x.is_meta`` (3 graphs, 2 before the check was added);
- an Ensemble of RNNs warns once a call, and every warning points at the user's line, not into the package.

Every expectation is set by the series built here: the training lengths say which steps were reached."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import neuroview as nv


def _train(net, batches: int, make):
    g = torch.Generator().manual_seed(1)
    net.train()
    with torch.no_grad():
        for _ in range(batches):
            net(*make(g))
    return net.eval()


def _short_net(max_len: int = 8, seed: int = 0):
    """Training series of 1..5 samples out of 8: steps 5, 6, 7 unreached."""
    torch.manual_seed(seed)
    net = nv.NeuroViewRNN(nn.GRU(1, 4, batch_first=True), 2, max_len=max_len)
    return _train(net, 5, lambda g: (torch.randn(16, max_len, 1, generator=g), torch.randint(1, 6, (16,), generator=g)))


def _caught(fn, *args, **kw):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        fn(*args, **kw)
    return [r for r in rec if "no training series reached" in str(r.message)]


# ------------------------------------------------------------------------------------------- 4. the advice
def _leading_zeros_net():
    """A bias-free GRU whose training series all start with 2 zero samples: its state is exactly 0 at steps 0-1 (h0 = 0,
    no bias), so steps 0 and 1 read as unreached, though every series is read there."""
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(1, 4, batch_first=True, bias=False), 2, max_len=8)

    def batch(g):
        x = torch.randn(16, 8, 1, generator=g)
        x[:, :2] = 0
        return (x,)
    return _train(net, 5, batch)


def test_a_leading_run_of_exactly_zero_steps_is_no_longer_than_training_case():
    net = _leading_zeros_net()
    assert net.unreached_steps().tolist() == [True, True] + [False] * 6
    x = torch.randn(4, 8, 1)
    x[:, :2] = 0
    assert _caught(net, x) == []  # it advised lengths.clamp(max=0)
    assert _caught(net.explain, x) == []
    # the state there is exactly 0 at eval too: nothing of the untrained weights is added
    assert torch.equal(net.features(x)[:, :, :, :2], torch.zeros(4, 1, 1, 2, 4))


def test_only_the_steps_after_the_last_reached_one_are_named_and_the_cut_is_never_below_one_sample():
    """Leading zero steps 0-1 and steps 6-7 no training series reached: only 6-7 are named, the cut is 6 samples."""
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(1, 4, batch_first=True, bias=False), 2, max_len=8)

    def batch(g):
        x = torch.randn(16, 8, 1, generator=g)
        x[:, :2] = 0
        return x, torch.randint(3, 7, (16,), generator=g)  # up to 6 samples: steps 6, 7 unreached
    _train(net, 5, batch)
    assert net.unreached_steps().nonzero().flatten().tolist() == [0, 1, 6, 7]
    x = torch.randn(3, 8, 1)
    x[:, :2] = 0
    said = [str(r.message) for r in _caught(net, x, lengths=torch.tensor([8, 7, 5]))]
    assert len(said) == 1
    assert "2 of 3 series reach steps 6-7," in said[0] and "steps 0" not in said[0]
    assert "first 6 input samples (lengths=lengths.clamp(max=6)" in said[0]
    net(x, lengths=torch.tensor([8, 7, 5]).clamp(max=6))  # the advice can be followed
    assert _caught(net, x, lengths=torch.tensor([8, 7, 5]).clamp(max=6)) == []


def test_where_no_step_was_reached_no_cut_to_0_samples_is_advised():
    """Statistics of an all-zero training set: every step unreached; a warning, but no impossible cut."""
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(1, 4, batch_first=True, bias=False), 2, max_len=4)
    _train(net, 3, lambda g: (torch.zeros(8, 4, 1),))
    assert net.unreached_steps().tolist() == [True] * 4
    said = [str(r.message) for r in _caught(net, torch.randn(2, 4, 1))]
    assert len(said) == 1 and "2 of 2 series reach steps 0-3," in said[0]
    assert "clamp(max=0)" not in said[0] and "first 0" not in said[0]


# ------------------------------------------------------------------------------------------- 5. the cost
def _ops(fn):
    """The input shapes of every ``aten::ne`` of ``fn()`` and how many host reads (``_local_scalar_dense``) it makes
    (on the CPU a ``tolist`` is not always counted: only 0 is read as no host read)."""
    from torch.profiler import ProfilerActivity, profile

    with warnings.catch_warnings(), torch.no_grad(), profile(activities=[ProfilerActivity.CPU], record_shapes=True) as p:
        warnings.simplefilter("ignore")
        fn()
    events = p.key_averages(group_by_input_shape=True)
    ne = sorted(e.input_shapes[0] for e in events if e.key == "aten::ne" for _ in range(e.count))
    return ne, sum(e.count for e in events if e.key == "aten::_local_scalar_dense")


def _check_cost(net, x, lengths=None):
    """What the eval call ``net(x, lengths)`` reads beyond the same decision without the check
    (``net.head(net.features(x, lengths))``): the extra ``aten::ne`` input shapes and host reads."""
    (ne, syncs), (ne0, syncs0) = _ops(lambda: net(x, lengths)), _ops(lambda: net.head(net.features(x, lengths)))
    for shape in ne0:
        ne.remove(shape)
    return ne, syncs - syncs0


def test_a_zero_padded_batch_without_lengths_reads_only_the_tail_past_the_first_unreached_step():
    net = _short_net(max_len=64)
    k = net.unreached_steps().nonzero().flatten().tolist()[0]
    assert k == 5
    x = torch.randn(32, 64, 1)
    x[:, 5:] = 0  # padded to max_len without lengths: no series reaches step 5
    net(x)  # the unreached steps are remembered from here on
    assert _check_cost(net, x)[0] == [[32, 64 - k, 1]]  # it read the whole [32, 64, 1] batch


def test_nothing_is_read_where_the_network_has_no_unreached_step():
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(1, 4, batch_first=True), 2, max_len=16)
    _train(net, 3, lambda g: (torch.randn(16, 16, 1, generator=g),))  # every step reached
    assert not net.unreached_steps().any()
    x = torch.randn(8, 16, 1)
    x[:, 4:] = 0
    net(x)
    assert _check_cost(net, x) == ([], 0)  # no pass, no host read
    assert _check_cost(net, x, torch.full((8,), 16)) == ([], 0)


def test_with_lengths_no_pass_over_x():
    net = _short_net()
    assert _check_cost(net, torch.randn(4, 8, 1), torch.tensor([8, 2, 3, 8]))[0] == []


# ------------------------------------------------------------------------------------------- 6. torch.compile
def test_torch_compile_at_eval_makes_no_extra_graph_for_the_check():
    net = _short_net()
    x = torch.randn(4, 8, 1)
    torch._dynamo.reset()
    ex = torch._dynamo.explain(net.eval())(x)
    graphs = [[str(n.target) for n in g.graph.nodes if n.op == "call_function"] for g in ex.graphs]
    assert [] not in graphs, graphs  # the extra graph held only getattr(x, "is_meta")
    assert ex.graph_count == 2  # as before the check was added (train mode: 2 too)
    torch._dynamo.reset()


# ------------------------------------------------------------------------------------------- 7. where and how often
def test_every_warning_points_at_the_users_line():
    net = _short_net()
    x = torch.randn(4, 8, 1)
    for call in (lambda: net(x), lambda: net.forward(x), lambda: net.explain(x), lambda: net.explain(x, None)):
        rec = _caught(call)
        assert len(rec) == 1
        assert (rec[0].filename, rec[0].lineno) == (__file__, call.__code__.co_firstlineno), (rec[0].filename, rec[0].lineno)


def test_an_ensemble_of_rnns_warns_once_a_call_at_the_users_line():
    ens = nv.Ensemble([_short_net(seed=0), _short_net(seed=1)]).eval()
    x = torch.randn(4, 8, 1)
    lengths = torch.tensor([8, 2, 6, 3])
    for call in (lambda: ens(x), lambda: ens(x, lengths), lambda: ens.member_logits(x, lengths)):
        rec = _caught(call)
        assert len(rec) == 1, [str(r.message) for r in rec]  # one per member before
        assert (rec[0].filename, rec[0].lineno) == (__file__, call.__code__.co_firstlineno)
    said = str(_caught(ens, x, lengths)[0].message)
    assert said.startswith("members 0, 1 of 2: x: 2 of 4 series reach steps 5-7,"), said


def test_an_ensemble_whose_members_say_different_things_says_each_in_one_warning():
    ens = nv.Ensemble([_short_net(seed=0), _short_net(max_len=8, seed=1)]).eval()
    with torch.no_grad():  # member 1 saw series of 7 samples too: only its step 7 unreached
        ens.members[1].train()
        ens.members[1](torch.randn(16, 8, 1), lengths=torch.full((16,), 7))
        ens.members[1].eval()
    assert ens.members[1].unreached_steps().nonzero().flatten().tolist() == [7]
    rec = _caught(ens, torch.randn(2, 8, 1), torch.tensor([8, 6]))
    assert len(rec) == 1
    said = str(rec[0].message)
    assert "member 0 of 2: x: 2 of 2 series reach steps 5-7," in said and "member 1 of 2: x: 1 of 2 series reach step 7," in said


def test_a_failing_member_call_raises_without_a_warning():
    ens = nv.Ensemble([_short_net(seed=0), _short_net(seed=1)]).eval()
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="lengths"):
            ens(torch.randn(2, 8, 1), torch.tensor([9, 1]))
    assert not [r for r in rec if "no training series reached" in str(r.message)]
