"""Sites held however the wrapper is used (issue 23): samples never mix, units come from a real
layer or a clear error, hooks go away with the wrapper, recording is per thread, integer inputs
pass, and the stop signal is not an ``Exception``."""

from __future__ import annotations

import copy
import gc
import io
import threading
import time
import warnings
import weakref

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.core.hooks import StopForward

from test_backbones import PositionBiasMLP, WindowConv


def _all_hooks(module: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in module.modules())


# ------------------------------------------------------------------ 1. samples never mix
class SequenceFirst(nn.Module):
    """nn.Transformer's default layout: a conv, then ``[T, B, C]`` through an MLP."""

    def __init__(self):
        super().__init__()
        self.conv, self.fc1, self.act, self.fc2 = nn.Conv1d(3, 8, 3, padding=1), nn.Linear(8, 12), nn.ReLU(), nn.Linear(12, 4)

    def forward(self, x):  # [B, 3, T]
        t = self.conv(x).permute(2, 0, 1)  # [T, B, 8]
        return self.fc2(self.act(self.fc1(t))).mean(0)


def test_sequence_first_codes_do_not_depend_on_batch_mates():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 10)
    net = nv.wrap(SequenceFirst(), 3, example_input=x).eval()
    assert [(s.channels, s.axis, s.sample_dim) for s in net.sites] == [(12, -1, 1)]
    alone = net.codes(x[:1])
    other = torch.cat([x[:1], torch.randn(2, 3, 10)])
    torch.testing.assert_close(net.codes(x)[:1], alone)
    torch.testing.assert_close(net.codes(other)[:1], alone)
    exp = net.explain(x, maps=True)
    assert exp.spatial_map("act", 0).shape == (4, 12, 10)


class PositionsFolded(nn.Module):
    """Sequence-first, then flattened for an MLP: rows ``t * B + b`` of ``[T * B, C]``, positions ahead."""

    def __init__(self):
        super().__init__()
        self.conv, self.fc1, self.act, self.fc2 = nn.Conv1d(3, 8, 3, padding=1), nn.Linear(8, 12), nn.ReLU(), nn.Linear(12, 4)

    def forward(self, x):  # [B, 3, T]
        b, t = len(x), x.shape[-1]
        rows = self.conv(x).permute(2, 0, 1).reshape(t * b, 8)
        return self.fc2(self.act(self.fc1(rows))).reshape(t, b, 4).mean(0)


def test_positions_folded_ahead_of_the_samples_are_told_by_their_values():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 10)
    net = nv.wrap(PositionsFolded(), 3, example_input=x).eval()
    assert [(s.channels, s.sample_dim, s.positions_first) for s in net.sites] == [(12, 0, True)]
    torch.testing.assert_close(net.codes(x)[2:3], net.codes(x[2:3]))
    exp = net.explain(x, maps=True)
    assert exp.spatial_map("act", 0).shape == (4, 12, 10)


@pytest.mark.parametrize("how", ["input_shape", "a first batch of one"])
def test_positions_folded_ahead_are_told_without_a_batch_of_distinct_samples(how):
    """Found on ``input_shape`` (zeros, before) or on one sample, every sample was alike and the
    site's order was guessed samples-first: codes then mixed batch-mates (0.3 off per logit here)."""
    torch.manual_seed(0)
    x = torch.randn(4, 3, 10)
    if how == "input_shape":
        net = nv.wrap(PositionsFolded(), 3, input_shape=(3, 10)).eval()
    else:
        net = nv.wrap(PositionsFolded(), 3).eval()
        net(x[:1])
    assert [(s.channels, s.sample_dim, s.positions_first) for s in net.sites] == [(12, 0, True)]
    torch.testing.assert_close(net(x), torch.cat([net(x[i:i + 1]) for i in range(4)]))
    from neuroview.core.discovery import probe_input

    state = torch.random.get_rng_state()
    assert torch.equal(probe_input((3, 10)), probe_input((3, 10)))  # seeded: the same sites every time
    assert torch.equal(torch.random.get_rng_state(), state)  # and the global random state left alone


class TwoViews(nn.Module):
    """Test-time augmentation: each series and its mirror image through one conv, ``cat([x, x.flip(-1)])``:
    two positions (views) folded ahead of the samples, rows ``v * B + b``."""

    def __init__(self):
        super().__init__()
        self.conv, self.act, self.fc = nn.Conv1d(2, 6, 3), nn.ReLU(), nn.Linear(6, 3)

    def forward(self, x):  # [B, 2, T]
        h = self.act(self.conv(torch.cat([x, x.flip(-1)])))  # [2B, 6, T - 2]
        return self.fc(h.mean(-1).view(2, len(x), 6).mean(0))


def test_two_views_folded_ahead_of_the_samples_are_not_taken_for_samples_first():
    """With 2 positions folded, sample 0's first rows at 2 and 3 samples are the same rows in either order
    (view 0 of samples 0 and 1), so the site was taken samples-first: codes read a batch-mate's view."""
    torch.manual_seed(0)
    x = torch.randn(6, 2, 12)
    net = nv.wrap(TwoViews(), 3, example_input=x).eval()
    assert [(s.channels, s.sample_dim, s.positions_first) for s in net.sites] == [(6, 0, True)]
    own = torch.cat([(torch.relu(net.backbone.conv(torch.cat([x[i:i + 1], x[i:i + 1].flip(-1)]))) > 0)
                     .float().mean((0, 2))[None] for i in range(6)])  # each sample's two views, by hand
    torch.testing.assert_close(net.codes(x), own)


class Windows(nn.Module):
    """Windows of 4 steps cut from each series and folded ahead of the samples (rows ``w * B + b``): a series of
    4 steps folds nothing, one of 8 or 12 folds 2 or 3 windows."""

    def __init__(self):
        super().__init__()
        self.conv, self.act, self.fc = nn.Conv1d(2, 5, 3, padding=1), nn.ReLU(), nn.Linear(5, 3)

    def forward(self, x):  # [B, 2, L], L a multiple of 4
        w = x.unfold(-1, 4, 4).permute(2, 0, 1, 3).reshape(-1, 2, 4)  # [(L / 4) * B, 2, 4]
        return self.fc(self.act(self.conv(w)).mean(-1).view(-1, len(x), 5).mean(0))


def test_a_site_found_with_nothing_folded_refuses_an_input_that_folds_positions():
    """Found on series of 4 steps (one window: no order to tell), its order was taken samples-first and
    applied to longer series, whose windows it then read across samples."""
    torch.manual_seed(0)
    net = nv.wrap(Windows(), 3, example_input=torch.randn(4, 2, 4)).eval()
    net.codes(torch.randn(4, 2, 4))  # the size it was found at reads as before
    with pytest.raises(ValueError, match=r"x: site 'act' folds 2 positions .* found with none .*example_input"):
        net.codes(torch.randn(4, 2, 8))
    told = nv.wrap(Windows(), 3, example_input=torch.randn(4, 2, 8)).eval()  # found where windows are folded
    x = torch.randn(5, 2, 12)
    assert told.sites[0].positions_first
    torch.testing.assert_close(told.codes(x)[3:4], told.codes(x[3:4]))  # and read at another length, samples apart


class TokensFolded(nn.Module):
    """Token ids ``[B, T]``, embedded, then sequence-first rows ``[T * B, C]`` through an MLP."""

    def __init__(self):
        super().__init__()
        self.emb, self.fc, self.act = nn.Embedding(20, 6), nn.Linear(6, 5), nn.ReLU()

    def forward(self, x):
        return self.act(self.fc(self.emb(x).permute(1, 0, 2).reshape(-1, 6)))


def test_a_folded_site_found_on_copies_of_one_integer_sample_is_an_error_not_a_guess():
    """Integer inputs get no random batch-mates: one token sequence cannot tell the order, and it was taken
    samples-first (codes mixed batch-mates); a batch of different sequences finds it."""
    torch.manual_seed(0)
    x = torch.randint(0, 20, (4, 7))
    with pytest.raises(ValueError, match=r"x: site 'act' folds 7 positions .* copies of one.*a first batch of at least 2"):
        nv.wrap(TokensFolded(), 2)(x[:1])
    net = nv.wrap(TokensFolded(), 2).eval()
    net(x)
    assert net.sites[0].positions_first
    torch.testing.assert_close(net(x)[1:2], net(x[1:2]))  # later batches of one are read with the order found


def test_a_first_batch_of_one_keeps_tables_out_and_later_batches_work():
    torch.manual_seed(0)
    net = nv.wrap(PositionBiasMLP(), 2)
    net.eval()(torch.randn(1, 3, 6, 6))  # the first batch, of one sample
    assert [s.name for s in net.sites] == ["act"] and list(net.not_sites) == [("cpb.1", 0)]
    x = torch.randn(3, 3, 6, 6)
    torch.testing.assert_close(net(x)[:1], net(x[:1]))
    win = nv.wrap(WindowConv(), 3)
    win.eval()(torch.randn(1, 3, 8, 8))
    assert [(s.channels, s.axis, s.sample_dim) for s in win.sites] == [(5, 1, 0)]
    torch.testing.assert_close(win.codes(torch.randn(3, 3, 8, 8)).shape, torch.Size([3, 5]))


# ------------------------------------------------------------------ 2. units from a real layer
class CatReLU(nn.Module):
    """``ReLU(torch.cat([a, b], 1))`` with no norm between: 16 channels, read by a conv."""

    def __init__(self, head=True):
        super().__init__()
        self.a, self.b, self.act = nn.Conv2d(3, 8, 1), nn.Conv2d(3, 8, 1), nn.ReLU()
        self.head = nn.Conv2d(16, 4, 1) if head else None

    def forward(self, x):
        y = self.act(torch.cat([self.a(x), self.b(x)], 1))
        return self.head(y) if self.head is not None else y.mean((2, 3))


def test_a_concatenation_has_the_consumers_units():
    net = nv.wrap(CatReLU(), 2, example_input=torch.randn(2, 3, 12, 8))
    assert [(s.channels, s.axis) for s in net.sites] == [(16, 1)]


def test_a_concatenation_of_known_layers_needs_no_consumer():
    net = nv.wrap(CatReLU(head=False), 2, example_input=torch.randn(2, 3, 12, 8))
    assert [(s.channels, s.axis) for s in net.sites] == [(16, 1)]


def test_no_producer_and_no_consumer_is_a_clear_error():
    class Reshaped(nn.Module):
        """The activation reads a reshape; the layer that ran last has a width that fits by chance."""

        def __init__(self):
            super().__init__()
            self.fc, self.side, self.act = nn.Linear(4, 24), nn.Linear(4, 4), nn.ReLU()

        def forward(self, x):
            h = self.fc(x).reshape(len(x), 6, 4)
            g = self.side(x)
            return self.act(h).mean((1, 2)) + g.sum(1)

    with pytest.raises(ValueError, match=r"unit_axis: cannot tell.*'act'.*unit_axis=\{'act'"):
        nv.wrap(Reshaped(), 2, example_input=torch.randn(2, 4))


def test_a_multi_dim_layer_norm_does_not_make_time_steps_units():
    backbone = nn.Sequential(nn.Conv1d(3, 8, 3, padding=1), nn.LayerNorm([8, 20]), nn.ReLU(), nn.Conv1d(8, 4, 1))
    net = nv.wrap(backbone, 2, example_input=torch.randn(2, 3, 20))
    assert [(s.channels, s.axis) for s in net.sites] == [(8, 1)]
    with pytest.raises(ValueError, match="x:"):  # the norm takes 20 steps only: a clear error, not a reshape
        nv.wrap(backbone, 2)(torch.randn(2, 3, 30))


# ------------------------------------------------------------------ 3. hooks go away
def _resnet_like():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 10))


def test_a_deleted_wrapper_is_freed_and_its_hooks_removed():
    backbone = _resnet_like()
    net = nv.wrap(backbone, 2, example_input=torch.randn(2, 3, 8, 8))
    net(torch.randn(2, 3, 8, 8))
    gone = weakref.ref(net)
    del net
    gc.collect()
    assert gone() is None and _all_hooks(backbone) == 0


def test_wrapping_twice_leaves_one_set_of_hooks_and_no_hook_on_every_module():
    backbone = _resnet_like()
    x = torch.randn(2, 3, 8, 8)
    one = nv.wrap(backbone, 2, example_input=x)
    n = _all_hooks(backbone)
    assert n <= 2 + 1  # one per site, one to stop after the last
    nets = [nv.wrap(backbone, 3, example_input=x) for _ in range(3)]
    assert _all_hooks(backbone) == n
    want = [net.eval()(x) for net in nets]
    del one, nets
    gc.collect()
    assert _all_hooks(backbone) == 0 and len(want) == 3


def test_unwrap_removes_only_its_own_share():
    backbone = _resnet_like()
    x = torch.randn(2, 3, 8, 8)
    a, b = nv.wrap(backbone, 2, example_input=x).eval(), nv.wrap(backbone, 2, example_input=x).eval()
    want = b(x)
    a.unwrap()
    torch.testing.assert_close(b(x), want)  # b's hooks are still there
    b.unwrap()
    assert _all_hooks(backbone) == 0


def _with_head():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))


def test_a_wrapper_thrown_away_gives_the_models_own_head_back():
    """The wrapper freezes the model's own head (the pass stops before it); deleted, it took its hooks away and
    left the head frozen: a later plain training step of the user's model left its head as it was, unsaid."""
    model, x = _with_head(), torch.randn(2, 3, 8, 8)
    net = nv.wrap(model, 3, example_input=x)
    assert net.frozen == ("4.weight", "4.bias") and not model[4].weight.requires_grad
    del net
    gc.collect()
    assert all(p.requires_grad for p in model.parameters()) and _all_hooks(model) == 0


def test_a_second_wrapper_keeps_frozen_what_it_needs_until_both_let_go():
    """A second wrapper found the head already frozen (frozen == ()), and the first one's unwrap() thawed it
    under the second (plain DDP then waits for gradients that never come)."""
    model, x = _with_head(), torch.randn(2, 3, 8, 8)
    a, b = nv.wrap(model, 3, example_input=x), nv.wrap(model, 3, example_input=x)
    assert a.frozen == b.frozen == ("4.weight", "4.bias") and b.unreached == ["backbone.4"]
    a.unwrap()
    assert not model[4].weight.requires_grad  # b still needs it frozen
    del b
    gc.collect()
    assert model[4].weight.requires_grad and model[4].bias.requires_grad
    model[0].weight.requires_grad_(False)  # what the user froze stays theirs: not listed, not thawed
    c = nv.wrap(model, 3, example_input=x)
    assert c.frozen == ("4.weight", "4.bias")
    c.unwrap()
    assert not model[0].weight.requires_grad and model[4].weight.requires_grad


def test_a_copy_of_the_wrapped_model_trains_its_head():
    """A deepcopy of the user's model taken while a wrapper lives (an EMA, a standard baseline) kept the head the
    wrapper had frozen, for good (no wrapper of the copy could give it back): training the copy left its head as
    it was, unsaid. A copy of the network itself keeps it frozen, and its own unwrap() gives it back."""
    model, x = _with_head(), torch.randn(2, 3, 8, 8)
    model[0].weight.requires_grad_(False)  # the user's own choice, copied as it is
    net = nv.wrap(model, 3, example_input=x)
    twin = copy.deepcopy(model)
    assert twin[4].weight.requires_grad and twin[4].bias.requires_grad and not twin[0].weight.requires_grad
    assert not model[4].weight.requires_grad  # the wrapper's own model keeps it frozen
    before = twin[4].weight.detach().clone()
    torch.nn.functional.cross_entropy(twin(x), torch.tensor([0, 1])).backward()
    torch.optim.SGD([p for p in twin.parameters() if p.requires_grad], lr=0.5).step()
    assert not torch.equal(twin[4].weight, before)
    part = copy.deepcopy(model[:2])  # a part without the head
    assert [p.requires_grad for p in part.parameters()] == [False, True]
    net_twin = copy.deepcopy(net)
    assert net_twin.frozen == ("4.weight", "4.bias") and not net_twin.backbone[4].weight.requires_grad
    assert net_twin.unwrap()[4].weight.requires_grad and not model[4].weight.requires_grad
    buf = io.BytesIO()  # torch.save(model): the same, through pickle
    torch.save(model, buf)
    saved = torch.load(io.BytesIO(buf.getvalue()), weights_only=False)
    assert saved[4].weight.requires_grad and not saved[0].weight.requires_grad and not model[4].weight.requires_grad
    torch.testing.assert_close(saved(x), model(x))
    buf = io.BytesIO()
    torch.save(net, buf)
    net_saved = torch.load(io.BytesIO(buf.getvalue()), weights_only=False)
    assert not net_saved.backbone[4].weight.requires_grad and net_saved.backbone[4].bias.requires_grad is False
    torch.testing.assert_close(net_saved.eval()(x), net.eval()(x))


def test_a_first_batch_interrupted_in_its_reach_pass_is_found_again(monkeypatch):
    """Ctrl-C during the first batch's reach pass left the sites found and the head unfrozen: no later batch
    looked again, so plain DDP waited for the model's own head's gradients."""
    import neuroview.core.cnn as cnn

    model, x = _with_head(), torch.randn(2, 3, 8, 8)
    net, real = nv.wrap(model, 3), cnn.freeze_unreached

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cnn, "freeze_unreached", interrupted)
    with pytest.raises(KeyboardInterrupt):
        net(x)
    assert net.sites is None and _all_hooks(model) == 0 and net.classifier is None
    monkeypatch.setattr(cnn, "freeze_unreached", real)
    net(x)
    assert net.frozen == ("4.weight", "4.bias") and not model[4].weight.requires_grad


def test_torchscript_of_a_wrapped_model_names_the_hooks():
    """torch.jit.script of a model a wrapper lives on failed with "'Hook' object has no attribute '__name__'"."""
    model, x = _with_head(), torch.randn(2, 3, 8, 8)
    net = nv.wrap(model, 3, example_input=x)
    with pytest.raises(AttributeError, match=r"hooks of a NeuroView network.*net\.unwrap\(\)"):
        torch.jit.script(model)
    torch.testing.assert_close(torch.jit.script(net.unwrap())(x), model(x))


class _TwoStages(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.a1 = nn.Conv2d(1, 4, 3, padding=1), nn.ReLU()
        self.c2, self.a2 = nn.Conv2d(4, 6, 3, padding=1), nn.ReLU()
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        return self.fc(self.a2(self.c2(self.a1(self.c1(x)))).mean((2, 3)))


@pytest.mark.parametrize("first", ["all sites", "first site only"])
def test_a_wrapper_never_freezes_what_another_wrapper_of_the_model_reads(first):
    """A wrapper reading only the first site froze the second convolution, which the other wrapper's decision
    reads: training that one then left the convolution as it was (its unreached list said nothing of it)."""
    model, x = _TwoStages(), torch.randn(4, 1, 8, 8)
    wrap_all = lambda: nv.wrap(model, 3, example_input=x)  # noqa: E731
    wrap_a1 = lambda: nv.wrap(model, 3, layers=["a1"], example_input=x)  # noqa: E731
    if first == "all sites":
        every, one = wrap_all(), wrap_a1()
    else:
        one = wrap_a1()
        with pytest.warns(UserWarning, match=r"\['c2.weight', 'c2.bias'\] were frozen by another NeuroView network"):
            every = wrap_all()
    assert model.c2.weight.requires_grad and model.c2.bias.requires_grad and not model.fc.weight.requires_grad
    before = model.c2.weight.detach().clone()
    torch.nn.functional.cross_entropy(every(x), torch.arange(4) % 3).backward()
    torch.optim.SGD([p for p in every.parameters() if p.requires_grad], lr=0.5).step()
    assert not torch.equal(model.c2.weight, before)
    assert one.sites[0].name == "a1"


def test_deepcopy_of_the_backbone_copies_no_wrapper():
    backbone = _resnet_like()
    net = nv.wrap(backbone, 2, example_input=torch.randn(2, 3, 8, 8))

    def wrappers():
        gc.collect()
        return sum(issubclass(type(o), nv.NeuroViewCNN) for o in gc.get_objects())

    before = wrappers()
    twin = copy.deepcopy(backbone)
    assert wrappers() == before
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(twin(x), backbone(x))
    twin_net = copy.deepcopy(net).eval()  # a copied network records on its own copy
    torch.testing.assert_close(twin_net(x), net.eval()(x))


# ------------------------------------------------------------------ 8. threads, integers, the stop signal
class Slow(nn.Module):
    def forward(self, x):
        time.sleep(0.002)
        return x


def test_two_threads_explaining_with_one_network_do_not_share_a_recorder():
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), Slow(), nn.Linear(6, 5), nn.ReLU(), Slow(), nn.Linear(5, 2))
    xs = [torch.randn(3, 4), torch.randn(5, 4)]
    net = nv.wrap(backbone, 3, example_input=xs[0]).eval()
    want = [net.codes(x) for x in xs]
    errors, got = [], [[], []]

    def work(i):
        try:
            for _ in range(15):
                got[i].append(net.explain(xs[i]).codes)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for i in range(2):
        for c in got[i]:
            torch.testing.assert_close(c, want[i])


class ToFloat(nn.Module):
    def forward(self, x):
        return x.float() / 255


def test_integer_images_are_accepted_when_the_backbone_takes_them():
    backbone = nn.Sequential(ToFloat(), nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 1), nn.ReLU())
    x = torch.randint(0, 256, (3, 3, 8, 8), dtype=torch.uint8)
    net = nv.wrap(backbone, 2, example_input=x).eval()
    exp = net.explain(x)
    torch.testing.assert_close(exp.logits, net(x))
    torch.testing.assert_close(net(x), net(x.float()))
    tokens = nv.wrap(nn.Sequential(nn.Embedding(10, 6), nn.Linear(6, 5), nn.GELU()), 2)
    assert tokens(torch.randint(0, 10, (4, 7))).shape == (4, 2)
    with pytest.raises(TypeError, match="x: expected dtype"):
        net(x.double())  # a float of another precision is still a clear error


class Guarded(nn.Module):
    """A backbone whose head is guarded by its own ``try/except Exception``."""

    def __init__(self):
        super().__init__()
        self.conv, self.act, self.head = nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Linear(4, 10)
        self.fallbacks = 0

    def forward(self, x):
        h = self.act(self.conv(x)).mean((2, 3))
        try:
            return self.head(h)
        except Exception:  # noqa: BLE001 - the pattern the stop signal must pass through
            self.fallbacks += 1
            return torch.zeros(len(x), 10)


def test_the_stop_signal_passes_a_backbones_except_exception():
    assert issubclass(StopForward, BaseException) and not issubclass(StopForward, Exception)
    backbone = Guarded()
    net = nv.wrap(backbone, 2, example_input=torch.randn(2, 3, 6, 6)).eval()
    net(torch.randn(2, 3, 6, 6))
    net.explain(torch.randn(2, 3, 6, 6))
    assert backbone.fallbacks == 0
    assert backbone(torch.randn(2, 3, 6, 6)).shape == (2, 10)  # called alone, the backbone runs to its end


def test_two_threads_first_batches_find_the_sites_once():
    torch.manual_seed(0)
    net = nv.wrap(nn.Sequential(nn.Linear(4, 6), nn.ReLU(), Slow(), nn.Linear(6, 5), nn.ReLU()), 3).eval()
    xs = [torch.randn(3, 4), torch.randn(5, 4)]
    errors, got = [], {}

    def work(i):
        try:
            got[i] = net.codes(xs[i])
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for i in range(2):
        torch.testing.assert_close(got[i], net.codes(xs[i]))


def test_a_layer_that_mixes_samples_is_a_clear_error():
    class BatchCentred(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.act = nn.Linear(4, 6), nn.ReLU()

        def forward(self, x):
            h = self.fc(x)
            return self.act(h - h.mean(0, keepdim=True))

    with pytest.raises(ValueError, match=r"site 'act': the values of a sample change with its batch-mates.*layers="):
        nv.wrap(BatchCentred(), 2, example_input=torch.randn(4, 4))


@pytest.mark.parametrize("first", [1, 2, 5])
def test_batch_statistics_are_caught_on_any_first_batch(first):
    """A BatchNorm that always normalizes by the batch (track_running_stats=False) standardizes each sample
    by its batch-mates; the check compared each sample's plain sum of |z|, which standardizing keeps
    nearly the same, and a third sample that repeated the first: 11 of 20 first batches of 2 passed."""
    def bn_net():
        torch.manual_seed(1)
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, track_running_stats=False), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))

    for seed in range(10):
        torch.manual_seed(seed)
        with pytest.raises(ValueError, match=r"site '2': the values of a sample change with its batch-mates"):
            nv.wrap(bn_net(), 3, example_input=torch.randn(first, 3, 8, 8))
    # running statistics, in eval mode: no false alarm, and a sample reads the same whatever its batch-mates
    torch.manual_seed(1)
    plain = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 2)).eval()
    x = torch.randn(first, 3, 8, 8)
    net = nv.wrap(plain, 3, example_input=x).eval()
    torch.testing.assert_close(net.codes(x)[:1], net.codes(x[:1]))


def test_a_model_that_reorders_its_samples_is_caught():
    """Samples sorted by energy before the activation (length bucketing does so), their order restored after:
    only sample 0 was compared, and a third sample that repeated it, so the site passed and each sample's codes
    were another's (0.5 off)."""
    class SortsBatch(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.act, self.fc = nn.Conv1d(2, 4, 3), nn.ReLU(), nn.Linear(4, 2)

        def forward(self, x):
            idx = x.square().sum((1, 2)).argsort()
            return self.fc(self.act(self.conv(x[idx]))[idx.argsort()].mean(-1))

    torch.manual_seed(0)
    x = torch.randn(4, 2, 12) * torch.tensor([3.0, 1.0, 2.0, 0.5])[:, None, None]
    for first in (x[:1], x[:2], x):
        with pytest.raises(ValueError, match=r"site 'act': the values of a sample change with its batch-mates"):
            nv.wrap(SortsBatch(), 3, example_input=first)


@pytest.mark.parametrize("how", ["under inference_mode", "an inference tensor"])
def test_a_first_batch_under_inference_mode_finds_what_any_first_batch_finds(how):
    """Under inference_mode the reach pass saw no graph and froze the whole backbone (a training step then moved
    nothing of it, unsaid), and the head was built of inference tensors (a bare RuntimeError at the first step);
    an inference tensor made there and explained outside failed bare, and a second call skipped the freeze."""
    def model():
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 5, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                             nn.Flatten(), nn.Linear(5, 2))

    x = torch.randn(4, 3, 10, 10)
    reference = nv.wrap(model(), 3, example_input=x)
    net = nv.wrap(model(), 3)
    if how == "under inference_mode":
        with torch.inference_mode():
            net.explain(x)
    else:
        with torch.inference_mode():
            xi = x.clone()
        net.explain(xi)
    assert net.frozen == reference.frozen == ("6.weight", "6.bias")
    assert not net.classifier.weight.is_inference()
    conv = net.backbone[0].weight.detach().clone()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    nn.functional.cross_entropy(net.train()(x), torch.tensor([0, 1, 2, 0])).backward()
    opt.step()
    assert not torch.equal(conv, net.backbone[0].weight)


def test_rounding_that_depends_on_the_batch_size_is_no_false_alarm():
    """Kernels chosen per batch size (cuDNN under TF32, bf16) round a sample's values differently at 2 and 3
    samples, ~1e-3 of each value: a signed projection compared to itself raised "mixes samples" on rows whose
    sum happens to lie near 0; compared to the norm of its terms, it does not, and batch statistics still do."""
    class Rounded(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.act = nn.Conv2d(3, 8, 3), nn.ReLU()

        def forward(self, x):
            h = self.conv(x)
            noise = torch.sin(h * 1e4 + len(x)) * 1e-3  # deterministic, different at each batch size
            return self.act(h * (1 + noise))

    for seed in range(20):
        torch.manual_seed(seed)
        nv.wrap(Rounded(), 3, example_input=torch.randn(4, 3, 6, 6))


class _InplacePre(nn.Module):
    """Preprocessing in place (x.sub_), as some pipelines do, before a conv and a ReLU."""

    def __init__(self):
        super().__init__()
        self.c, self.act, self.fc = nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.act(self.c(x.sub_(0.5))).mean((2, 3)))


def test_the_first_batch_is_not_run_twice_through_a_backbone_that_changes_its_input():
    """The reach pass ran on a view of the caller's batch, x[:3]: its first 3 samples were shifted twice, and the
    first batch's logits for them were off by up to 0.1."""
    torch.manual_seed(0)
    model, x0 = _InplacePre().eval(), torch.randn(6, 1, 8, 8)
    ref = nv.wrap(copy.deepcopy(model), 2, example_input=x0.clone()).eval()
    lazy = nv.wrap(model, 2)
    lazy.load_state_dict(ref.state_dict())
    x = x0.clone()
    out = lazy.eval()(x)
    torch.testing.assert_close(x, x0 - 0.5)  # shifted once, every sample
    torch.testing.assert_close(out, ref(x0.clone()))


def test_a_layer_named_twice_is_one_site():
    """layers=['a1', 'a1'] hooked the module twice and failed as 'its forward pass called 1 sites, expected 2'."""
    net = nv.wrap(_TwoStages(), 3, layers=["a1", "a1"], example_input=torch.randn(2, 1, 8, 8))
    assert [s.name for s in net.sites] == ["a1"] and net.num_units == 4


def test_an_optimizer_made_before_the_first_batch_is_told_it_misses_the_head():
    """An optimizer made before a lazy wrap's first batch holds the backbone only: 20 steps left the classifier as
    it was built, unsaid (PyTorch's own lazy modules keep their parameter objects, so theirs train)."""
    model, x, y = _with_head(), torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 0])
    net = nv.wrap(model, 3)
    early = torch.optim.SGD(net.parameters(), lr=0.1)
    torch.nn.functional.cross_entropy(net(x), y).backward()
    with pytest.warns(UserWarning, match=r"optimizer: it holds the backbone of a NeuroViewCNN but not its classifier.*"
                                         r"Make the optimizer after one batch"):
        early.step()
    late = torch.optim.SGD(net.parameters(), lr=0.1)  # made after the first batch: it holds the head, no word
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        late.step()
        early.step()  # told once
