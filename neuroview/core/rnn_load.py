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

A file that reads a series otherwise with tensors of the same shapes (another ``window`` and channels a sample, as
many RNN inputs a step: :func:`~neuroview.core.rnn_record.reading_clash`) is refused alike, ``strict=False`` too, and
so into an ``RNNClassifier``, which reads a window as a NeuroView-RNN does. Where only the steps differ, the message
torch's size check goes with (:func:`steps_clash`).

Imports of neuroview.core only ``rnn_record`` and ``rnn_steps``.
"""

from __future__ import annotations

from torch import Tensor, nn

from .rnn_record import reading_clash
from .rnn_steps import rnn_mismatch, settings_clash

__all__ = ["refuse", "shared_clash", "steps_clash"]


def refuse(net: nn.Module, state_dict, prefix: str, local_metadata) -> None:
    """Raise a ``RuntimeError`` naming why the state dict (``net``'s part at ``prefix``, with its ``local_metadata``)
    computes another function in ``net``; nothing where it agrees or records nothing. An ``RNNClassifier`` (no
    ``step_shared``; its state dict records its reading alone) is checked for its reading."""
    nv = hasattr(net, "step_shared")
    why = [w for w in (settings_clash(local_metadata, net.rnn, prefix) if nv else None,
                       reading_clash(local_metadata, net, prefix), shared_clash(net, state_dict, prefix) if nv else None) if w]
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


def steps_clash(net: nn.Module, state_dict, prefix: str) -> str | None:
    """Why ``state_dict``'s classifier (``net``'s part at ``prefix``) does not fit ``net``'s features, said beside torch's
    size mismatch: another RNN (:func:`~neuroview.core.rnn_steps.rnn_mismatch`), or the same one over other steps
    (another ``max_len`` or ``window``; one step: a standard classifier's); None where it fits or holds no classifier."""
    w, per_step = state_dict.get(prefix + "classifier.weight"), net.num_features // net.steps
    if not isinstance(w, Tensor) or w.dim() != 2 or w.shape[1] == net.num_features:
        return None
    own = {k: v.shape for k, v in net.rnn.state_dict().items()}  # the same RNN: only the steps can differ
    theirs = {k[len(prefix) + 4:]: v for k, v in state_dict.items() if k.startswith(prefix + "rnn.")}
    if not (theirs.keys() == own.keys() and all(theirs[k].shape == v for k, v in own.items())):
        return rnn_mismatch(own, theirs, type(net.rnn).__name__)
    if w.shape[1] % per_step:
        return None
    return (f"classifier.weight: the checkpoint reads {w.shape[1] // per_step} steps of {per_step} hidden states, this "
            f"network {net.steps} (max_len={net.max_len}, window={net.window}): build it with the max_len (and window) "
            "the checkpoint was trained with"
            + (" (one step: a standard RNN classifier's checkpoint, which reads its last state?)" if w.shape[1] == per_step else ""))
