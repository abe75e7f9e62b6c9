"""What a state dict makes of an :class:`~neuroview.core.ensemble.Ensemble`'s global head, before torch loads it.

A sparsified ensemble's file (``classifier.*``, ``norm.*``) loading into a fresh ensemble builds the head from its
shapes. A dense ensemble's ``state_dict()`` (its members' tensors; torch's record of the network saved, ``_metadata``,
has no head) loading into one that :func:`neuroview.sparsify` gave a global head drops that head, as a NeuroView-CNN's
load drops a normalization its file has none of (:func:`neuroview.core.head.adopt_norm`): the file's network decides,
by its members' mean, strict or not. Every member's tensor without that record (a safetensors file, a dict copy)
cannot be told from the members loaded on purpose under the head: refused, naming both ways (torch tells a module
nothing of ``strict``). A part of the members' tensors keeps the head, as torch does (listed missing, or refused).

Imports only torch and :mod:`neuroview.core`.
"""

from __future__ import annotations

from torch import nn

from .head import load_fits

__all__ = ["match_head"]

_GLOBAL = ("classifier.", "norm.")


def match_head(ens: nn.Module, state_dict, prefix: str) -> None:
    """Build ``ens``'s global head for a file that has one, drop it for a dense ensemble's file, and refuse every member
    tensor without a record of the network saved (see the module docstring)."""
    if not load_fits(ens, state_dict, prefix):  # torch refuses it for a size: nothing built or dropped first
        return
    keys = {k[len(prefix):] for k in state_dict if k.startswith(prefix)}
    key = "classifier.weight"
    if ens.classifier is None:
        if key in keys:  # a sparsified ensemble's weights load into a fresh one: its head built from their shapes
            ens.build_head(state_dict[prefix + key].shape[1])
        return
    if any(k.startswith(_GLOBAL) for k in keys) or not any(k.startswith("members.") for k in keys):
        return
    meta = getattr(state_dict, "_metadata", None)
    if isinstance(meta, dict) and prefix[:-1] in meta:  # torch's record of the network saved: had it a global head?
        if prefix + "classifier" not in meta:
            ens.norm = ens.classifier = None  # a dense ensemble's file: the network it holds decides
        return
    if all(k in keys for k in ens.state_dict(keep_vars=True) if not k.startswith(_GLOBAL)):  # (persistent buffers)
        raise ValueError(f"state_dict: expected the global head's tensors ({prefix}classifier.*, {prefix}norm.*: "
                         "nv.sparsify gave this ensemble a global head, which decides) or a dense ensemble's "
                         "state_dict() (torch's record says it had none), got every member's tensors without the head "
                         "and no record of the network saved (a dense ensemble's file, or the members alone?); to "
                         "load a dense ensemble, drop the head first (sparse.classifier = None; sparse.norm = None) "
                         "or load into a fresh nv.Ensemble; to load the members under the head, "
                         "sparse.members.load_state_dict({k.removeprefix('members.'): v for k, v in sd.items()})")
