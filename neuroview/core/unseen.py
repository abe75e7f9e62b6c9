"""What the sites cannot see, said when they are found: activation functions called outside activation
modules (``F.relu``: no site, so their units are not read), and gradient checkpointing inside the backbone
(which NeuroView cannot train through). :mod:`.discovery` logs both during its passes; this module judges
what it logged. Imports only torch.
"""

from __future__ import annotations

import sys
import warnings
import weakref

from torch import nn

__all__ = ["activation_call", "checkpoints", "checkpointing", "checkpointing_message", "note_checkpointing",
           "refuse_inside_checkpoint", "warn_functional"]

#: activation functions (``F.relu``, ``torch.tanh``, ``x.relu_()``, ...) whose calls are no site: named when wrapping
_FUNCTIONAL = frozenset({"relu", "relu6", "leaky_relu", "prelu", "rrelu", "elu", "celu", "selu", "gelu", "silu", "mish",
                         "softplus", "hardswish", "hardtanh", "hardsigmoid", "tanh", "sigmoid", "threshold"})


def activation_call(op: str, args, kwargs) -> str:
    """The activation function a torch function call ``op`` is (``"relu"``, ``"clamp(min=0)"``), or ``""``."""
    base = op.strip("_")
    if base in ("clamp", "clamp_min"):
        low = kwargs.get("min", args[1] if len(args) > 1 else None)
        return "clamp(min=0)" if isinstance(low, (int, float)) and not isinstance(low, bool) and low == 0 else ""
    return base if base in _FUNCTIONAL else ""


def warn_functional(small: list, large: list, last: int, stop: str | None) -> None:
    """Warn of the activation-function calls logged by discovery's passes on 2 (``small``) and 3 (``large``) samples,
    each ``(op, module name, events before it, its input's shape)``; ``last``: the event of the last site. Calls whose
    input does not follow the batch (Swin-V2's ``16 * sigmoid(table)``, once a pass) hold no unit and are left out."""
    calls = small if len(small) != len(large) else [c for c, c3 in zip(small, large) if c[3] != c3[3]]
    if not calls:
        return
    counts: dict[tuple[str, str], int] = {}
    for op, where, *_ in calls:
        counts[(op, where)] = counts.get((op, where), 0) + 1
    said = ", ".join(f"{op if '(' in op else op + '()'} in " + (f"the forward of {where!r}" if where else "the backbone's own "
                     "forward") + (f" ({n} calls)" if n > 1 else "") for (op, where), n in counts.items())
    after = sum(at > last for _, _, at, _ in calls)
    cut = (f"; {after} of those calls come after the last site, where the decision stops (at {stop!r}): the layers "
           "from there on take no part in the decision and are frozen") if after else ""
    warnings.warn(f"wrap: the backbone calls activation functions outside any activation module: {said}. NeuroView "
                  f"quantizes module calls only, so the classifier reads none of their units{cut}. Replace them by "
                  "modules (nn.ReLU(), nn.GELU(), ...), or pass layers=[...] naming the sites to read, which silences "
                  "this", stacklevel=3)


def checkpoints() -> int:
    """How many frames of ``torch.utils.checkpoint`` (either mode) the caller runs inside: read off the call stack,
    once per module call of discovery."""
    f, n = sys._getframe(1), 0
    while f is not None:
        n += f.f_code.co_filename.replace("\\", "/").endswith("torch/utils/checkpoint.py")
        f = f.f_back
    return n


#: backbone -> the modules discovery saw run inside torch.utils.checkpoint (weakly: it goes with the backbone)
_SEEN: "weakref.WeakKeyDictionary[nn.Module, list[str]]" = weakref.WeakKeyDictionary()


def checkpointing(backbone: nn.Module) -> list[str]:
    """The modules of ``backbone`` with gradient checkpointing: seen running inside ``torch.utils.checkpoint`` as the
    sites were found, or switched on by the ecosystem's flags (Hugging Face's ``gradient_checkpointing``, timm's
    ``grad_checkpointing``), which checkpoint only while training and so are not seen in eval mode."""
    flags = [n or "the backbone" for n, m in backbone.named_modules()
             if getattr(m, "gradient_checkpointing", False) is True or getattr(m, "grad_checkpointing", False) is True]
    return list(dict.fromkeys(_SEEN.get(backbone, []) + flags))


def refuse_inside_checkpoint() -> None:
    """Refuse finding the sites inside a checkpoint of the whole network: their extra passes would save tensors its
    recomputation does not (torch's CheckpointError in backward)."""
    if checkpoints():
        raise ValueError("x: the sites are found on the first batch, and this one runs inside torch.utils.checkpoint; "
                         "find them outside it first: build with example_input=x, or call the network once outside")


def note_checkpointing(backbone: nn.Module, checkpointed: list[str]) -> None:
    """Note the modules discovery saw run inside ``torch.utils.checkpoint`` (``checkpointed``) and warn of them and of
    the flags' modules (:func:`checkpointing`). NeuroView cannot train a backbone through them, which
    ``NeuroViewModule`` refuses when the backbone trains; a frozen one (``retrofit``, ``freeze_backbone``) only reads
    its codes, as it may."""
    if checkpointed:
        _SEEN[backbone] = checkpointed
    else:  # found again without: what an earlier discovery saw is no longer so
        _SEEN.pop(backbone, None)
    names = checkpointing(backbone)
    if names:
        warnings.warn(checkpointing_message(names), stacklevel=3)


def checkpointing_message(names: list[str]) -> str:
    """Why a backbone with gradient checkpointing in ``names`` cannot be trained through NeuroView, and the fix."""
    return (f"backbone: {names[:6]}{' ...' if len(names) > 6 else ''} run inside torch.utils.checkpoint (gradient "
            "checkpointing; or have it switched on for training), which NeuroView cannot train the backbone through: "
            "with use_reentrant=True the codes of their sites carry no gradient and their weights look unreached "
            "(frozen), with use_reentrant=False their recomputation fails in backward. A frozen backbone (retrofit, "
            "freeze_backbone) is read as it is; to train it, turn checkpointing off (timm: "
            "model.set_grad_checkpointing(False); Hugging Face: model.gradient_checkpointing_disable())")
