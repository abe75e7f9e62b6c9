"""Whether a NeuroView-CNN takes a state dict: refused, by name, before torch copies any tensor of it.

A state dict made for another function (another quantizer, a head trained on other sites; a MiniRocket backbone of
other dilations or biases per dilation) is refused with a ``RuntimeError`` raised from the network's own
``_load_from_state_dict``, not appended to torch's error list: torch copies a module's own tensors and then its
children's, and reports the list at the end, so a network nested in another module (a Lightning module, an
``nn.ModuleDict``) had its backbone, classifier and norm overwritten before the refusal. Raised there, it stops the
load before any of them (the modules loaded before it in a container are torch's order, as for any refusal).

The backbone's own record speaks first where it keeps one (a MiniRocket: ``_plan_clash``): other biases per dilation, or
another series length, give the same site names at other widths, and the sites check's advice (``layers=[...]``)
was the wrong fix. The network cannot read that record (nested, torch hands it no ``_metadata``), so its refusal for
the sites waits for the backbone's own check, in the same load, before the backbone copies anything.

Imports of neuroview.core only ``settings``.
"""

from __future__ import annotations

from torch import nn

from . import settings

__all__ = ["refuse", "take_tau"]


def _error(net: nn.Module, why: list[str]) -> RuntimeError:
    return RuntimeError(f"Error(s) in loading state_dict for {type(net).__name__}:\n\t" + "\n\t".join(why))


class _Held:
    """A sites refusal held until the backbone's own check of the same load has run, raised before the backbone
    copies any tensor; one load only (the load is known by torch's list of error messages, passed to every module),
    then it takes itself off."""

    def __init__(self, error_msgs: list, error: RuntimeError):
        self.error_msgs, self.error, self.handle = error_msgs, error, None

    def release(self) -> None:
        """Off the backbone, raising nothing: its own check refused the load first (a MiniRocket calls this)."""
        self.handle.remove()

    def __call__(self, module, state_dict, prefix, local_metadata, strict, missing, unexpected, error_msgs) -> None:
        self.handle.remove()
        if error_msgs is self.error_msgs:
            raise self.error


def refuse(net: nn.Module, prefix: str, local_metadata, error_msgs: list) -> bool:
    """Raise a ``RuntimeError`` naming why the state dict whose metadata for ``net`` (the NeuroView-CNN at ``prefix``
    of the module that loads it) is ``local_metadata`` computes another function there; nothing where it agrees or
    records nothing. Where the only reason is the sites and the backbone keeps its own record (``_plan_clash``: a
    MiniRocket's series length, dilations and biases per dilation, which set the sites' widths), the refusal waits
    for the backbone's own check, which torch runs next, and is raised before the backbone copies any tensor
    (True: ``net`` takes nothing of this load meanwhile)."""
    why = settings.clashes(local_metadata, net)
    if not why:
        return False
    if callable(getattr(net.backbone, "_plan_clash", None)) and all(w.startswith("sites:") for w in why):
        held = _Held(error_msgs, _error(net, [prefix + w for w in why]))  # (one the backbone refused leaves itself
        held.handle = net.backbone.register_load_state_dict_pre_hook(held)  # at its next load, of another list)
        return True
    raise _error(net, [prefix + w for w in why])


def take_tau(net: nn.Module, local_metadata) -> None:
    """A soft network's ``tau`` taken from the state dict it loads (the soft code is a function of it), said by the
    load that called this one (guards) once it succeeds, and put back where it fails."""
    tau = settings.saved_tau(local_metadata, net)
    if tau is not None:
        net.__dict__["_load_notes"] = [f"tau: the state dict's soft network had tau={tau}, the model {net.tau}: "
                                       f"the load takes {tau} (the soft code is a function of it); set net.tau "
                                       "after loading to train on with another"]
        net.tau = tau
