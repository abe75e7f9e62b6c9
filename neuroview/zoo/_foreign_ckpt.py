"""A Lightning checkpoint of another LightningModule than NeuroViewModule: where its tensors are, and the way in.

``NeuroViewModule`` keeps its network under ``model.`` and its architecture in its hyper-parameters (``arch``). A user's
own LightningModule that holds a NeuroView network (at ``self.net``, or at ``self.model`` beside another module) writes
a checkpoint of the same format with neither: rebuilt as a NeuroViewModule it ended in torch's unexpected keys, or in a
size mismatch of the default architecture, and ``load_weights`` called the tensors it holds under ``net.`` missing.
:func:`foreign_refusal` (``load_module``) and :func:`held_elsewhere` (``load_weights``) say where they are instead.

May import the standard library only.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["held_under", "foreign_refusal", "held_elsewhere"]

#: A NeuroView network's own children: its global head beside the network it wraps (a CNN's, an RNN's).
_HEAD, _WRAPPED = "classifier.weight", ("backbone.", "rnn.")


def _networks(keys: list[str]) -> list[str]:
    """The prefixes (``"net."``; ``""``: the root) under which ``keys`` hold a NeuroView network, shortest first; an
    ensemble's members (``net.members.0.``) said as the ensemble (``net.``)."""
    found = {k[:-len(_HEAD)] for k in keys if k == _HEAD or k.endswith("." + _HEAD)}
    found = {p for p in found if any(k.startswith(p + w) for k in keys for w in _WRAPPED)}
    return sorted({re.sub(r"members\.\d+\.$", "", p) for p in found}, key=lambda p: (len(p), p))


def held_under(state: dict) -> str:
    """``"'net.' (19 tensors: backbone.*, classifier.*, norm.*: a NeuroView network), 'aux.' (2 tensors: bias, weight)"``:
    the top-level prefixes of ``state``'s keys, each with how many tensors and which names it holds, a NeuroView network
    said as one (where it is deeper, its prefix)."""
    keys = [str(k) for k in state]
    nets, groups = _networks(keys), {}
    for k in keys:
        head, dot, rest = k.partition(".")
        groups.setdefault(head + dot, []).append(rest.partition(".")[0] + (".*" if "." in rest else ""))
    out = []
    for pre, names in groups.items():
        names = sorted(set(names))
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        net = next((p for p in nets if p and p.startswith(pre)), None) if pre.endswith(".") else None
        said = "" if net is None else ": a NeuroView network" if net == pre else f": a NeuroView network at {net!r}"
        n = len([k for k in keys if k.startswith(pre)]) if pre.endswith(".") else 1
        out.append(f"{pre!r} ({n} tensor{'s' * (n != 1)}: {shown}{said})" if pre.endswith(".") else f"{pre!r}")
    return ", ".join(out) or "no tensors at all"


def _way_in(state: dict) -> str:
    """How to load the NeuroView network a user's module holds: saved alone, by its architecture."""
    nets = [p for p in _networks([str(k) for k in state]) if p]
    attr = nets[0][:-1] if nets else "<the attribute that holds the network>"
    return (f"to load its network, save it alone and load that by its architecture: torch.save(module.{attr}.state_dict(), "
            "'w.pt'), then `neuroview explain --model ARCH --weights w.pt` (--model-args as it was built), or in Python "
            "neuroview.zoo.weights.load_weights(nv.create_model(ARCH, ...), 'w.pt', pickles=True)")


def foreign_refusal(ckpt: dict, what: str, where: str) -> str | None:
    """Why the Lightning checkpoint ``ckpt`` (as read) is not a NeuroViewModule's, which ``load_module`` rebuilds: its
    hyper-parameters name no ``arch``, or none of its tensors is under ``model.``; None where it is one."""
    state, hp = ckpt.get("state_dict"), ckpt.get("hyper_parameters")
    if not isinstance(state, dict):
        return None  # read as before: the load names it
    why = ["its hyper-parameters name no 'arch'"] * (not isinstance(hp, dict) or not isinstance(hp.get("arch"), str))
    why += ["none of its tensors is under 'model.'"] * (not any(str(k).startswith("model.") for k in state))
    if not why:
        return None
    return (f"{what}: {where} is the checkpoint of another LightningModule than NeuroViewModule ({' and '.join(why)}; "
            "NeuroViewModule keeps its architecture there and its network under 'model.'), which it cannot rebuild: its "
            f"tensors are under {held_under(state)}; {_way_in(state)}")


def held_elsewhere(own: dict, state: Any, what: str, path: Any) -> dict:
    """``own``, the tensors of a Lightning checkpoint's ``state`` under ``model.`` (NeuroViewModule's network); a
    ValueError naming ``what`` and the prefixes ``state``'s tensors are under where it holds some and none there
    (a user's own LightningModule's: they were called missing from the file)."""
    if own or not isinstance(state, dict) or not state:
        return own
    raise ValueError(f"{what}: {str(path)!r} is the checkpoint of another LightningModule than NeuroViewModule: none of its "
                     f"tensors is under 'model.', where NeuroViewModule keeps its network; they are under "
                     f"{held_under(state)}; {_way_in(state)}")
