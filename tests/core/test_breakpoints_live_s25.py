"""A site's breakpoints followed where they change after wrapping (probe S25 P6 finding 2).

An ``nn.Hardtanh`` site (and ``nn.ReLU6``) reads its breakpoints off the instance, ``min_val`` and ``max_val``; they were
copied into the site once, when the sites were found. After ``act.max_val = 0.2`` (a clip schedule) the network still
coded z = 0.5 as region 1 where the activation was saturated (region 2), its codes differed from a fresh wrap's of the
same model, and that fresh wrap refused its saved state dict. ``nv.register_activation`` called again after wrapping
(other breakpoints for a class) left the same stale copy.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import neuroview as nv


def _clip_net(act: nn.Module, quantizer: str = "hard"):
    """``z = x`` into ``act``: the codes are the region index of x itself, known in closed form."""
    bb = nn.Sequential(nn.Linear(1, 1), act)
    with torch.no_grad():
        bb[0].weight.fill_(1.0)
        bb[0].bias.zero_()
    return nv.NeuroViewCNN(bb, num_classes=2, quantizer=quantizer, example_input=_x()).eval()


def _x():
    return torch.tensor([[-2.0], [0.5], [2.0], [-0.5], [0.1], [5.0]])


def _region(x: torch.Tensor, points) -> torch.Tensor:
    """The region index by hand: how many of ``points`` lie strictly below each value."""
    return torch.tensor([[float(sum(v > p for p in points))] for v in x.flatten().tolist()])


def _fresh(net):
    return nv.NeuroViewCNN(copy.deepcopy(net.backbone), num_classes=2, quantizer=net.quantizer,
                           example_input=_x()).eval()


@pytest.mark.parametrize("quantizer", ["hard", "soft"])
def test_hardtanh_bounds_changed_after_wrapping_are_read_at_the_next_pass(quantizer):
    net = _clip_net(nn.Hardtanh(-1.0, 1.0), quantizer)
    x = _x()
    net.backbone[1].max_val = 0.2  # tighter, after wrapping: z = 0.5 is saturated now
    fresh = _fresh(net)
    codes = net.codes(x)
    assert torch.equal(codes, fresh.codes(x))
    if quantizer == "hard":
        assert torch.equal(codes, _region(x, (-1.0, 0.2)))  # 0.5 is region 2 now, 0.1 region 1
    assert [s.points for s in net.sites] == [(-1.0, 0.2)]
    fresh.load_state_dict(net.state_dict())  # the record says the bounds the model has
    a, b = net.explain(x), fresh.explain(x)
    assert torch.equal(a.logits, b.logits) and torch.equal(a.contributions, b.contributions)
    torch.testing.assert_close(a.contributions.flatten(2).sum(-1) + a.bias, a.logits)


def test_relu6_bounds_widened_after_wrapping_and_saved_without_a_pass():
    net = _clip_net(nn.ReLU6())  # breakpoints 0 and 6
    net.backbone[1].max_val = 1  # an int: read as the float a fresh wrap reads
    fresh = _fresh(net)
    fresh.load_state_dict(net.state_dict())  # no pass since the edit: the record still says the bounds now
    x = _x()
    assert torch.equal(net.codes(x), _region(x, (0.0, 1.0)))
    assert torch.equal(net.codes(x), fresh.codes(x))


def test_a_file_saved_at_the_old_bounds_is_refused_by_the_models_bounds_now():
    """Bounds changed after a save (no pass since): loading that file is refused, naming the bounds to build."""
    net = _clip_net(nn.Hardtanh(-1.0, 1.0))
    saved = net.state_dict()
    net.backbone[1].max_val = 0.2
    with pytest.raises(RuntimeError, match=r"breakpoints \(-1\.0, 1\.0\) in the file, \(-1\.0, 0\.2\) in the model.*"
                                           r"nn\.Hardtanh\(min_val=-1\.0, max_val=1\.0\)"):
        net.load_state_dict(saved)
    net.backbone[1].max_val = 1.0  # put back: it loads, and codes at the file's bounds
    net.load_state_dict(saved)
    assert torch.equal(net.codes(_x()), _region(_x(), (-1.0, 1.0)))


def test_register_activation_again_after_wrapping_is_followed():
    class ClipAct(nn.Module):  # a fresh class: the registry is global
        def forward(self, x):
            return x.clamp(0, 1)

    nv.register_activation(ClipAct, breakpoints=(0.0,))
    net = _clip_net(ClipAct())
    x = _x()
    assert torch.equal(net.codes(x), _region(x, (0.0,)))
    nv.register_activation(ClipAct, breakpoints=(0.0, 1.0))  # its real kinks, told after wrapping
    fresh = _fresh(net)
    assert torch.equal(net.codes(x), _region(x, (0.0, 1.0)))
    assert torch.equal(net.codes(x), fresh.codes(x))
    fresh.load_state_dict(net.state_dict())
    assert torch.equal(net(x), fresh(x))


def test_register_activation_again_then_saved_without_a_pass():
    class ClipAct(nn.Module):
        def forward(self, x):
            return x.clamp(0, 1)

    nv.register_activation(ClipAct, breakpoints=(0.0,))
    net = _clip_net(ClipAct())
    nv.register_activation(ClipAct, breakpoints=(0.0, 1.0))
    fresh = _fresh(net)
    fresh.load_state_dict(net.state_dict())
    assert [s.points for s in net.sites] == [(0.0, 1.0)]


def test_unchanged_bounds_keep_the_same_sites_and_codes_bit_for_bit():
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 3, 3), nn.Hardtanh(-0.5, 0.5), nn.Conv2d(3, 2, 1),
                       nn.ReLU6())
    x = torch.randn(5, 1, 7, 7, generator=torch.Generator().manual_seed(1))
    net = nv.NeuroViewCNN(bb, 3, example_input=x).eval()
    before = list(net.sites)
    first = net.codes(x)
    net.backbone[3].max_val = 0.5  # set again to the same value: nothing moves
    assert torch.equal(net.codes(x), first)
    assert all(a is b for a, b in zip(net.sites, before))  # not replaced: no churn per pass
    assert torch.equal(first, _fresh_like(bb, x).codes(x))


def _fresh_like(bb, x):
    return nv.NeuroViewCNN(copy.deepcopy(bb), 3, example_input=x).eval()



def _clip_act():
    class ClipAct(nn.Module):  # a fresh class per test: the registry is global
        def forward(self, x):
            return x.clamp(0, 1)

    return nv.register_activation(ClipAct, breakpoints=(0.0,))


@pytest.mark.parametrize("edit", ["bounds", "registry"])
def test_a_compiled_network_follows_the_bounds_and_the_registry(edit):
    act = _clip_act()
    x = _x()
    net = _clip_net(nn.Hardtanh(-1.0, 1.0) if edit == "bounds" else act())
    compiled = torch.compile(net, backend="eager")
    compiled(x)
    if edit == "bounds":
        net.backbone[1].max_val = 0.2
    else:
        nv.register_activation(act, (0.0, 1.0))
    out = compiled(x)  # the compiled pass first: no eager call (state_dict reads the bounds too) before it (review R4)
    fresh = _fresh(net)
    fresh.load_state_dict(net.state_dict())
    assert torch.equal(out, fresh(x))
    assert torch.equal(net.codes(x), _region(x, (-1.0, 0.2) if edit == "bounds" else (0.0, 1.0)))



class PickledClip(nn.Module):
    """A clip at 0 and 1 that a pickle can name (module level), registered by the test below."""

    def forward(self, x):
        return x.clamp(0, 1)


def test_a_pickle_loaded_in_another_process_keeps_the_breakpoints_it_was_trained_on(monkeypatch):
    """A network pickled with its sites cut at (0, 1) and loaded where the class is registered with other breakpoints
    (another process: another registry) kept the count of the process that pickled it, which the loading process's
    counter did not match, so its first pass re-read the registry: the codes cut at (0,), the logits moved by 0.67,
    without a word (review R4). The registry is followed only where it changed in the process that read the sites."""
    import pickle

    from neuroview.core import activations

    nv.register_activation(PickledClip, breakpoints=(0.0, 1.0))
    x = _x()
    net = _clip_net(PickledClip())
    with torch.no_grad():
        net.classifier.weight.copy_(torch.tensor([[1.0], [-2.0]]))
    before, blob = net(x), pickle.dumps(net)
    monkeypatch.setattr(activations, "_PROCESS", activations._PROCESS + 1)  # another process, its own counter
    nv.register_activation(PickledClip, breakpoints=(0.0,))  # ... whose registry tells the class otherwise
    loaded = pickle.loads(blob)
    assert torch.equal(loaded(x), before)
    assert [s.points for s in loaded.sites] == [(0.0, 1.0)]
    assert [s.points for s in pickle.loads(blob).sites] == [(0.0, 1.0)]
    fresh = pickle.loads(blob)
    fresh.state_dict()  # a state dict taken first reads the trained breakpoints too
    assert [s.points for s in fresh.sites] == [(0.0, 1.0)]
    nv.register_activation(PickledClip, breakpoints=(0.0, 0.5))  # registered again here after the load: followed
    loaded(x)
    assert [s.points for s in loaded.sites] == [(0.0, 0.5)]
