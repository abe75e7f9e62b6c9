"""What the site search says of the sites it found (:mod:`.discovery` calls these once the sites are known): names
changed to stay unique, named sites read twice; and (:mod:`.cnn` calls it once the reach pass froze what no code
depends on) recurrent layers the decision does not read. Imports only torch, :mod:`.guards` and :mod:`.reach`.
"""

from __future__ import annotations

import warnings

from torch import nn

from .guards import Guarded
from .reach import _user_level

__all__ = ["say_names", "warn_frozen_rnns"]


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


def warn_frozen_rnns(net: nn.Module) -> None:
    """Warn of the ``nn.RNNBase`` modules (LSTM, GRU, RNN) of a NeuroViewCNN's backbone that its reach pass
    (:func:`neuroview.core.reach.freeze_unreached`) found no code depends on: every parameter in ``net.frozen``, or
    unreached and frozen by the user (``net._kept_frozen``). A CRNN's RNN after the last site, an RNN branch no site
    reads, a CRNN run twice: their gates run inside torch's own kernel, where no activation module is called, so the
    functional-activation warning never sees them. An RNN the decision reaches is not named, nor one inside a nested
    NeuroView network (which trains it, or warns of it itself, or was told its sites). ``layers=[...]`` silences it.
    The route named runs on the model's own data: NeuroViewRNN over the RNN with its front end as its input."""
    if getattr(net, "_named", False):
        return
    off = set(net.frozen) | set(net.__dict__.get("_kept_frozen", ()))
    ids = {id(p) for n, p in net.backbone.named_parameters() if n in off}
    nested = {id(m) for g in net.backbone.modules() if isinstance(g, Guarded) for m in g.modules()}
    cut = [(n, m) for n, m in net.backbone.named_modules() if isinstance(m, nn.RNNBase) and id(m) not in nested
           and (ps := list(m.parameters())) and all(id(p) in ids for p in ps)]
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
