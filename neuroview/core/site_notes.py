"""What the site search says of the sites it found (:mod:`.discovery` calls these once the sites are known): names
changed to stay unique, named sites read twice; before it looks, a model or an input on ``meta``, where it can find
none; and (:mod:`.cnn` calls it once the reach pass froze what no code depends on) recurrent layers the decision does
not read. Imports only torch and the core modules :mod:`._utils`, :mod:`.guards`, :mod:`.reach` and
:mod:`.search_scope`.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

from ._utils import restore_modes
from .guards import Guarded
from .reach import _user_level
from .search_scope import own_pass

__all__ = ["refuse_meta", "say_names", "warn_frozen_rnns"]


def refuse_meta(backbone: nn.Module, x: Tensor) -> None:
    """The search compares the samples' values (batch-mates, copies, profiles): none on meta. A model there (built under
    ``torch.device("meta")``, whose ``input_shape`` probe lands there too) is named, not the input: no input helps it."""
    on = [(n, k) for k, ts in (("parameters", backbone.named_parameters()), ("buffers", backbone.named_buffers()))
          for n, t in ts if t.device.type == "meta"]
    if on:
        raise ValueError(f"backbone: expected its {on[0][1]} on a real device to find its sites (the search compares the "
                         f"samples' values), got them on meta ({', '.join(repr(n) for n, _ in on[:3])}"
                         f"{', ...' * (len(on) > 3)}), which holds none; build or load the model on a real device (a meta "
                         "model has no weights: model.to_empty(device='cpu'), then load them), find its sites there, "
                         "then net.to('meta')")
    if x.device.type == "meta":
        raise ValueError("x: on device meta, where a network cannot find its sites (its first pass compares the samples' "
                         "values); find them on a real input first (input_shape=..., example_input=..., or one pass on "
                         "the CPU), then model.to('meta')")


def say_names(calls: list, named: bool) -> None:
    """Warn of a site named ``name::k`` (``name:k`` names another module), and of sites named in ``layers=[...]``
    that run inside another named activation (their units are read twice). ``calls``: discovery's ``_Call`` list."""
    renamed = [f"call {c.calls} of {c.module!r} is site {c.name!r} ({f'{c.module}:{c.calls}'!r} names another module "
               "or site)" for c in calls if c.calls and c.name != f"{c.module}:{c.calls}"]
    if renamed:
        warnings.warn(f"wrap: site names are unique: {'; '.join(renamed)}", stacklevel=4)
    inner = {c.module: c.inside for c in calls if c.inside is not None} if named else {}
    if inner:
        outer = sorted(set(inner.values()))
        warnings.warn(f"layers: {sorted(inner)} run inside the activation{'s' if len(outer) > 1 else ''} "
                      f"{outer if len(outer) > 1 else repr(outer[0])}, whose call reads the same pre-activation: their "
                      "units are read twice; leave them out of layers=[...] unless that is meant", stacklevel=4)


def warn_frozen_rnns(net: nn.Module, x: Tensor) -> None:
    """Warn of the ``nn.RNNBase`` modules (LSTM, GRU, RNN) of a NeuroViewCNN's backbone that its reach pass
    (:func:`neuroview.core.reach.freeze_unreached`) found no code depends on: every parameter in ``net.frozen``, or
    unreached and frozen by the user (``net._kept_frozen``). A CRNN's RNN after the last site, an RNN branch no site
    reads, a CRNN run twice: their gates run inside torch's own kernel, where no activation module is called, so the
    functional-activation warning never sees them. An RNN the decision reaches is not named, nor one inside a nested
    NeuroView network (which trains it, or warns of it itself, or was told its sites). ``layers=[...]`` silences it.
    Nor is one the sites read by value although no gradient reaches it (a frozen pretrained encoder run under
    ``torch.no_grad()``, or its output ``.detach()``ed): each RNN the reach pass cut off is checked on ``x`` (the
    search's batch) by :func:`read_by_value`, two more passes of the backbone, only where there is such an RNN.
    The route named runs on the model's own data: NeuroViewRNN over the RNN with its front end as its input."""
    if getattr(net, "_named", False):
        return
    off = set(net.frozen) | set(net.__dict__.get("_kept_frozen", ()))
    ids = {id(p) for n, p in net.backbone.named_parameters() if n in off}
    nested = {id(m) for g in net.backbone.modules() if isinstance(g, Guarded) for m in g.modules()}
    cut = [(n, m) for n, m in net.backbone.named_modules() if isinstance(m, nn.RNNBase) and id(m) not in nested
           and (ps := list(m.parameters())) and all(id(p) in ids for p in ps)]
    cut = [(n, m) for n, m in cut if not read_by_value(net, m, x)]  # (an empty list runs no pass)
    if not cut:
        return
    said = ", ".join(f"{n or 'the backbone'!r} ({type(m).__name__})" for n, m in cut)
    it, its, first = ("it", "its", repr(cut[0][0])) if len(cut) == 1 else ("them", "their", "an RNN")
    warnings.warn(
        f"wrap: the decision reads no state of {said}: no site's units depend on {it}, so {its} states take no part "
        f"in the decision and {its} weights are frozen (net.unreached lists those this wrap froze). NeuroViewCNN does "
        "not read an RNN's states (its gates run inside torch's own kernel, with no activation module whose units it "
        f"reads): to explain the model through the states of {first}, use nv.NeuroViewRNN(m, {net.num_classes}, "
        f"max_len=...) in place of this network (net.unwrap() thaws what it froze), where m is a module of yours that "
        f"runs {first} with its front end (the layers ahead of it) as its input: batch-first x [B, T, F] in, the "
        "states of every step [B, T, H] out; or pass layers=[...] naming the sites to read, which silences this",
        stacklevel=_user_level())


def read_by_value(net: nn.Module, rnn: nn.Module, x: Tensor) -> bool:
    """Whether the sites of ``net`` (a NeuroViewCNN whose sites are found) read ``rnn``'s output by value on ``x``: the
    input of every site call (its pre-activation, copied before an in-place activation changes it) in one eval-mode
    pass, against the same pass with every floating tensor ``rnn`` returns (the states of every step, and the last
    hidden and cell states) moved by seeded noise of its size. Noise, not a constant: a LayerNorm over the states
    removes a constant. Its own generator: the caller's random stream is not drawn from. A pass that fails once the
    states are moved tells nothing: ``False`` (what the reach pass found stands, and is said)."""
    sites = {s.module for s in net.sites}
    mods = [m for n, m in net.backbone.named_modules() if n in sites]

    def nudge(module, args, out):
        if isinstance(out, Tensor):
            if not out.is_floating_point():
                return out
            g = torch.Generator(device=out.device).manual_seed(0)
            return out + (1 + out.detach().abs().amax()) * torch.randn(out.shape, generator=g, device=out.device,
                                                                       dtype=out.dtype)
        if isinstance(out, tuple):  # (output, h_n) or (output, (h_n, c_n)); a PackedSequence is a named tuple
            items = [nudge(module, args, o) for o in out]
            return type(out)(*items) if hasattr(out, "_fields") else tuple(items)
        return out

    def pre_activations(moved: bool) -> list[Tensor]:
        seen: list[Tensor] = []
        def keep(_, args):
            seen.append(args[0].detach().clone() if args and isinstance(args[0], Tensor) else None)

        hooks = [m.register_forward_pre_hook(keep) for m in mods]
        hooks += [rnn.register_forward_hook(nudge)] if moved else []
        try:
            net.codes(x)
        finally:
            for h in hooks:
                h.remove()
        return seen

    restore = restore_modes(net)
    try:
        net.eval()
        with torch.no_grad(), own_pass():  # (a site search of an outer wrap running it reads none of it)
            base = pre_activations(False)
            try:
                moved = pre_activations(True)
            except (RuntimeError, ValueError, TypeError, IndexError):
                return False
    finally:
        restore()
    return len(base) != len(moved) or any(
        (a is None) != (b is None) or (a is not None and (a.shape != b.shape or not torch.equal(a, b)))
        for a, b in zip(base, moved))
