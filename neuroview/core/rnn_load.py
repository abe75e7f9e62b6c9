"""Whether a NeuroView-RNN takes a state dict: refused, by name, before torch copies any tensor of it.

A file of another function than the model computes is refused where the model's own ``_load_from_state_dict`` starts,
raised rather than appended to torch's error list (torch would go on to copy the network's children, ``rnn`` and
``classifier``, and every module after it): one saved over another kind of RNN or another ``nn.RNN`` nonlinearity
(:func:`~neuroview.core.rnn_steps.settings_clash`), and one of a network built with ``shared_steps=True`` into one
built without it. Its ``step_shared.weight`` is part of the decision weight (the classifier's own plus the shared
part spread over the steps), so dropping it computes another function: refused with ``strict=False`` too, as torch
refuses a tensor of another size in either mode (``strict`` says which keys may be absent or extra, not that a
tensor may be taken for less than it was trained as). The reverse, a file without the shared part into a model with
one, loads: the model merges its own shared part first (``merge_shared``), the file's function exactly (a sparsified
network's file, which ``nv.sparsify`` merged).

Imports of neuroview.core only ``rnn_steps``.
"""

from __future__ import annotations

from torch import nn

from .rnn_steps import settings_clash

__all__ = ["refuse"]


def refuse(net: nn.Module, state_dict, prefix: str, local_metadata) -> None:
    """Raise a ``RuntimeError`` naming why the state dict (``net``'s part at ``prefix``, with its ``local_metadata``)
    computes another function in ``net``; nothing where it agrees or records nothing."""
    why = [w for w in (settings_clash(local_metadata, net.rnn, prefix), shared_clash(net, state_dict, prefix)) if w]
    if why:
        raise RuntimeError(f"Error(s) in loading state_dict for {type(net).__name__}:\n\t" + "\n\t".join(why))


def shared_clash(net: nn.Module, state_dict, prefix: str) -> str | None:
    """Why a state dict holding a shared part of the weight (``step_shared.weight``) does not load into ``net``
    built without one; None where it holds none, or ``net`` has one."""
    key = prefix + "step_shared.weight"
    if getattr(net, "step_shared", None) is not None or key not in state_dict:
        return None
    kind = next((k for k in ("LSTM", "GRU", "RNN") if isinstance(net.rnn, getattr(nn, k))), None)
    zoo = f" (create_model('nv_{kind.lower()}', shared_steps=True, ...) for a zoo architecture)" if kind else ""
    return (f"{prefix}shared_steps: the state dict is of a NeuroView-RNN built with shared_steps=True (it holds {key}, "
            f"the part of the decision weight every step shares), the model was built with shared_steps=False: its "
            f"classifier alone would compute another function; build the model with shared_steps=True{zoo} to load "
            f"it, or save the trained network after net.merge_shared() (the same function in the classifier's weight)")
