"""What the site search says of the sites it found (:mod:`.discovery` calls these once the sites are known): names
changed to stay unique, named sites read twice, and recurrent layers the decision's stop cuts off. Imports only torch
and :mod:`._utils`.
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace

from torch import nn

from ._utils import rnn_pointer

__all__ = ["say_names", "warn_cut_rnns"]


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


def warn_cut_rnns(events: list, at: int, names: dict, stop: str | None) -> None:
    """Warn of the ``nn.RNNBase`` modules (LSTM, GRU, RNN: a CRNN's recurrent part) that run only after the last site,
    event ``at`` of a discovery pass's ``events`` (``("start", module)`` and ``("site", k)`` in order); ``names``:
    module -> its name in the backbone. Their gates run inside torch's own kernel, where no activation module is
    called, so the functional-activation warning never sees them; the pass stops at ``stop`` before them, so their
    states take no part in the decision. The RNN route is named with :func:`neuroview.core._utils.rnn_pointer`'s
    words, as where the CNN route finds no units at all."""
    before = {id(m) for kind, m in events[:at] if kind == "start"}
    cut = list(dict.fromkeys(m for kind, m in events[at + 1:] if kind == "start" and isinstance(m, nn.RNNBase)
                             and id(m) not in before))
    if not cut:
        return
    said = ", ".join(f"{names.get(m, '') or 'the backbone'!r} ({type(m).__name__})" for m in cut)
    what = (f"wrap: the backbone runs {said} after its last site, where the decision stops (at {stop!r}): an RNN's gates "
            "run inside torch's own kernel, with no activation module whose units NeuroView reads, so its states take "
            "no part in the decision and its weights are frozen")
    # rnn_pointer names the first RNN of the model it is given: here the first one cut off, under its backbone name
    only = SimpleNamespace(named_modules=lambda: iter([(names.get(cut[0], ""), cut[0])]))
    pointed = rnn_pointer(only, "num_classes", ValueError(what))
    warnings.warn(f"{pointed if pointed is not None else what}; or pass layers=[...] naming the sites to read, which "
                  "silences this", stacklevel=3)
