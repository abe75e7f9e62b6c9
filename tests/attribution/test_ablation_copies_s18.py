"""A network copied inside ``ablate_units`` (copy.deepcopy, nv.sparsify) is ablated as the network is until the
``with`` ends, and nothing of the ablation is left on it afterwards: hand-set MLP, answers computed by hand."""

from __future__ import annotations

import copy
import gc
import io
import threading
import weakref

import pytest
import torch
from torch import Tensor, nn

import neuroview as nv
from neuroview.attribution.ablation import ablate_units
from neuroview.core.hooks import Hook as SiteHook

W1, B1 = [[1.0, 0.0], [0.5, 1.0], [-1.0, 1.0]], [0.1, 0.2, 0.0]
W2, B2 = [[1.0, 1.0, 0.0], [0.0, 2.0, -1.0]], [0.0, -0.5]
W = [[1.0, -1.0, 2.0, 0.5, 1.5], [-0.5, 3.0, 1.0, -2.0, 0.25]]
B = [0.3, -0.2]
X = torch.tensor([[1.0, 2.0], [2.0, -1.0], [-0.5, 0.5], [0.3, 0.9]])


def _set(linear: nn.Linear, w, b) -> None:
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(w))
        linear.bias.copy_(torch.tensor(b))


def _net() -> nv.NeuroViewCNN:
    mlp = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2), nn.ReLU())
    _set(mlp[0], W1, B1)
    _set(mlp[2], W2, B2)
    net = nv.NeuroViewCNN(mlp, 2, quantizer="none", normalize=False, example_input=torch.zeros(2, 2)).eval()
    _set(net.classifier, W, B)
    return net


def _by_hand(x: Tensor = X, removed1=()):
    """Codes (the ReLU outputs, ``quantizer="none"``) and logits with units of the first site removed."""
    h1 = (x @ torch.tensor(W1).T + torch.tensor(B1)).clamp(min=0)
    h1[:, list(removed1)] = 0
    h2 = (h1 @ torch.tensor(W2).T + torch.tensor(B2)).clamp(min=0)
    codes = torch.cat([h1, h2], 1)
    return codes, codes @ torch.tensor(W).T + torch.tensor(B)


def _foreign_hooks(net: nv.NeuroViewCNN) -> int:
    """Hooks on the backbone other than the network's own site hooks."""
    return sum(not isinstance(h, SiteHook) for m in net.backbone.modules()
               for h in (*m._forward_hooks.values(), *m._forward_pre_hooks.values()))


def test_hand_computed_answers_hold_for_the_network_itself():
    net = _net()
    codes, logits = _by_hand()
    torch.testing.assert_close(net.codes(X), codes)
    torch.testing.assert_close(net(X), logits)
    with ablate_units(net, [("1", 1)]):
        torch.testing.assert_close(net(X), _by_hand(removed1=[1])[1])
    torch.testing.assert_close(net(X), logits)


def test_a_copy_made_inside_is_ablated_inside_and_clean_after():
    net = _net()
    clean_codes, clean_logits = _by_hand()
    cut_codes, cut_logits = _by_hand(removed1=[1])
    with ablate_units(net, [("1", 1)]):
        inside = copy.deepcopy(net)
        twice = copy.deepcopy(inside)  # a copy of the copy, made inside too
        for c in (inside, twice):  # inside the with, a copy reads as the network does: ablated
            torch.testing.assert_close(c.codes(X), cut_codes)
            torch.testing.assert_close(c(X), cut_logits)
    for c in (inside, twice):
        assert _foreign_hooks(c) == 0  # the ablation's hooks went with the with
        torch.testing.assert_close(c.codes(X), clean_codes)  # unit 1 and every unit after it computes again
        torch.testing.assert_close(c(X), clean_logits)  # it was 0.52 off a clean copy: outputs still zeroed
    assert _foreign_hooks(net) == 0 and net._codes_hook is None


def test_a_copy_made_inside_runs_alike_in_every_thread_and_saves():
    net = _net()
    with ablate_units(net, [("1", 0), ("1", 1)]):
        inside = copy.deepcopy(net)
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("logits", inside(X).detach()))
    t.start()
    t.join(60)
    clean = _by_hand()[1]
    torch.testing.assert_close(out["logits"], clean)
    torch.testing.assert_close(inside(X), clean)
    buf = io.BytesIO()
    torch.save(inside, buf)  # was: Can't pickle local object 'ablate_units.<locals>.<lambda>'
    buf.seek(0)
    back = torch.load(buf, weights_only=False)
    torch.testing.assert_close(back(X), clean)


def test_pickling_the_network_inside_the_with_is_refused_by_name():
    net = _net()
    with ablate_units(net, [("1", 1)]), pytest.raises(TypeError, match=r"ablate_units: .*inside the with"):
        torch.save(net, io.BytesIO())
    torch.save(net, io.BytesIO())  # after it, as before it


def test_a_network_sparsified_inside_keeps_no_ablation():
    torch.manual_seed(0)
    net = _net()
    x = torch.randn(60, 2)
    y = torch.arange(60) % 2
    with ablate_units(net, [("1", 1)]):
        sparse = nv.sparsify(net, [(x[i:i + 20], y[i:i + 20]) for i in range(0, 60, 20)], tolerance=50.0)
    assert _foreign_hooks(sparse) == 0
    # after the with, the sparse copy's codes are the clean network's (its backbone is the same, untouched)
    torch.testing.assert_close(sparse.codes(X), _by_hand()[0])


def test_a_copy_dropped_inside_the_with_is_freed_there():
    """The hooks held their module strongly, and the ablation's list of copies held the hooks: every copy made inside
    (its weights) lived until the with ended, 20 dropped copies of a 1.1 MiB network kept 23.7 MiB."""
    net = _net()
    with ablate_units(net, [("1", 1)]):
        refs = []
        for _ in range(5):
            c = copy.deepcopy(net)
            torch.testing.assert_close(c(X), _by_hand(removed1=[1])[1])  # ablated while alive
            refs.append(weakref.ref(c.backbone))
            del c
        gc.collect()
        assert [r() for r in refs] == [None] * 5  # freed inside the with, not at its end
        kept = copy.deepcopy(net)  # a copy still held is still ablated and loses it at the end
        torch.testing.assert_close(kept(X), _by_hand(removed1=[1])[1])
        torch.testing.assert_close(net(X), _by_hand(removed1=[1])[1])
    torch.testing.assert_close(kept(X), _by_hand()[1])
    assert _foreign_hooks(kept) == 0 and _foreign_hooks(net) == 0


def test_a_hook_copied_without_its_module_acts_on_nothing():
    net = _net()
    with ablate_units(net, [("1", 1)]):
        hook = next(h for h in net.backbone._forward_pre_hooks.values() if not isinstance(h, SiteHook))
        twin = copy.deepcopy(hook)  # its module not in the memo: no copy of it to act on
        assert twin.module is None and twin(net.backbone, (X,)) is None


# ------------------------------------------------------------------ R7: copies of copies, nested withs, leftovers saved
def _saved_and_back(m: nn.Module) -> nn.Module:
    buf = io.BytesIO()
    torch.save(m, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=False)


def test_a_copy_of_a_copy_made_inside_holds_nothing_after_the_with_and_saves():
    """A copy of a copy (``nv.sparsify(c1)`` where c1 is a copy, made inside) kept the shared codes hook for good, and
    since it held weakrefs, ``torch.save`` of it failed (``cannot pickle 'weakref.ReferenceType' object``)."""
    from neuroview.core.batched import watched

    net = _net()
    with ablate_units(net, [("1", 1)]):
        c1 = copy.deepcopy(net)
        c2 = copy.deepcopy(c1)
        c3 = copy.deepcopy(c2)
        torch.testing.assert_close(c3(X), _by_hand(removed1=[1])[1])  # ablated inside, as the network is
    for c in (net, c1, c2, c3):
        assert c._codes_hook is None and _foreign_hooks(c) == 0
        torch.testing.assert_close(c(X), _by_hand()[1])
    assert not watched([c2, c3])
    torch.testing.assert_close(_saved_and_back(c3)(X), _by_hand()[1])


def _cut(codes: Tensor, unit: int) -> tuple[Tensor, Tensor]:
    """Codes with one code of the last site set to 0 (a removed unit of the last site changes no other code)."""
    codes = codes.clone()
    codes[:, unit] = 0
    return codes, codes @ torch.tensor(W).T + torch.tensor(B)


def test_ablating_a_copy_made_inside_leaves_the_original_as_it_is():
    """The copy shared the original's codes hook, so the copy's own ablation zeroed the original's codes too."""
    net = _net()
    outer_codes, outer_logits = _by_hand(removed1=[1])
    with ablate_units(net, [("1", 1)]):
        c = copy.deepcopy(net)
        with ablate_units(c, [("3", 0)]):  # unit 3 of the code vector: the last site's channel 0
            torch.testing.assert_close(net.codes(X), outer_codes)  # was: its code 3 zeroed too
            torch.testing.assert_close(net(X), outer_logits)
            both_codes, both_logits = _cut(outer_codes, 3)
            torch.testing.assert_close(c.codes(X), both_codes)  # the copy: the outer ablation and its own
            torch.testing.assert_close(c(X), both_logits)
        torch.testing.assert_close(c.codes(X), outer_codes)
    assert net._codes_hook is None and c._codes_hook is None


def test_the_original_s_with_ending_first_leaves_nothing_on_it():
    """The original's ``with`` ended while its copy's was open (an ExitStack): the original kept the shared hook with
    the copy's ablation in it, ablated after its own ``with`` and for good after both, and could not be saved."""
    import contextlib

    from neuroview.core.batched import watched

    net = _net()
    outer, inner = contextlib.ExitStack(), contextlib.ExitStack()
    outer.enter_context(ablate_units(net, [("1", 1)]))
    c = copy.deepcopy(net)
    inner.enter_context(ablate_units(c, [("3", 0)]))
    outer.close()
    clean_codes, clean_logits = _by_hand()
    torch.testing.assert_close(net.codes(X), clean_codes)  # was: code 3 zeroed, the copy's ablation
    torch.testing.assert_close(net(X), clean_logits)
    torch.testing.assert_close(c.codes(X), _cut(clean_codes, 3)[0])  # the copy: its own ablation only now
    torch.testing.assert_close(c(X), _cut(clean_codes, 3)[1])
    inner.close()
    for m in (net, c):
        assert m._codes_hook is None and not watched([m]) and _foreign_hooks(m) == 0
        torch.testing.assert_close(_saved_and_back(m)(X), clean_logits)


def test_a_codes_hook_left_on_a_network_pickles_as_what_it_held_and_is_refused_while_entered():
    """A shallow ``copy.copy`` made inside shares the network's codes hook, and keeps it after the ``with``: it pickled
    no more (weakrefs); now it pickles as the hook it held before (here none). Inside the ``with`` it is refused."""
    import pickle

    net = _net()
    with ablate_units(net, [("1", 1)]):
        shallow = copy.copy(net)
        with pytest.raises(TypeError, match=r"ablate_units: a network cannot be pickled \(torch.save\) inside the with"):
            pickle.dumps(net._codes_hook)
    assert net._codes_hook is None
    back = pickle.loads(pickle.dumps(shallow.__dict__["_codes_hook"]))
    assert back is None
    torch.testing.assert_close(_saved_and_back(shallow)(X), _by_hand()[1])
