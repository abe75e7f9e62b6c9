"""The checks :func:`~neuroview.zoo.pretrained.save_pretrained` makes of a network before it writes it: that its
``arch_kwargs`` rebuild a network of its normalization and shared part (:func:`check_normalize`) and of its settings
(:func:`check_same_settings`: the NeuroView ones, and every layer's own, :func:`settings`), and how arguments compare
as the manifest stores them (:func:`plain`).

May import torch and the zoo's ``.weights`` (what a network exposes of its settings).
"""

from __future__ import annotations

import json
from typing import Any

from torch import nn

from .weights import _EXPOSED, _NOT_COMPUTED, ArchitectureError, exposed

__all__ = ["check_normalize", "check_same_settings", "settings", "plain"]


def plain(v: Any) -> Any:
    # JSON turns tuples into lists: compare arguments the way the manifest stores them
    return json.loads(json.dumps(v, default=str)) if isinstance(v, (tuple, list, dict)) else v


def check_normalize(model: nn.Module, rebuilt: nn.Module, state: dict, arch_kwargs: dict) -> None:
    """A ValueError naming ``normalize`` where ``arch_kwargs`` build a normalization the network has not, or the reverse:
    by its tensors (``norm.*``) alone, the refusal named missing or unexpected tensors, not the argument. So for ``shared_steps``,
    both ways (``step_shared.weight``)."""
    if arch_kwargs.get("shared_steps") and not any(k.endswith("step_shared.weight") for k in state) \
            and any(k.endswith("step_shared.weight") for k in rebuilt.state_dict()):
        raise ValueError("arch_kwargs: shared_steps=True, but the network has no shared part (step_shared is None: nv.sparsify "
                         "merged it into its classifier); save it with shared_steps=False, as neuroview sparsify does")
    if not arch_kwargs.get("shared_steps") and any(k.endswith("step_shared.weight") for k in state) \
            and not any(k.endswith("step_shared.weight") for k in rebuilt.state_dict()):
        given = "shared_steps is False" + ("" if "shared_steps" in arch_kwargs else " (the default)")
        raise ValueError(f"arch_kwargs: {given}, but the network has a shared part (step_shared.weight); save it with shared_steps=True")
    if arch_kwargs.get("normalize") is False and any(k.startswith("norm.") for k in state) \
            and not any(k.startswith("norm.") for k in rebuilt.state_dict()):
        raise ValueError("arch_kwargs: normalize=False, but the network standardizes its features (norm.*: nv.sparsify "
                         "keeps the standardization its path was fitted on); save it with normalize=True, as "
                         "neuroview sparsify does")
    theirs = dict(rebuilt.named_modules())  # a default wrap whose normalization a normalize=False file's load dropped
    builds = lambda m: m._normalize if hasattr(m, "_normalize") else getattr(m, "norm", None) is not None  # noqa: E731
    dropped = [f"{n}.norm" if n else "norm" for n, m in model.named_modules() if getattr(m, "classifier", None) is not None
               and hasattr(m, "norm") and m.norm is None and n in theirs and builds(theirs[n]) is True]
    if dropped:
        given = "normalize is True" + ("" if "normalize" in arch_kwargs else " (the default)")
        raise ValueError(f"arch_kwargs: {given}, but the network has no normalization ({', '.join(dropped)} "
                         f"{'is' if len(dropped) == 1 else 'are'} None: it loaded the weights of a network built with "
                         "normalize=False); save it with normalize=False")


def check_same_settings(model: nn.Module, rebuilt: nn.Module, arch_kwargs: dict) -> None:
    """An ArchitectureError where ``arch_kwargs`` rebuild a network whose NeuroView settings (quantizer, tau, ...)
    differ from ``model``'s: its tensors fit, and the entry would load as another function, without a word (its
    file's own record would say the same wrong thing). ``normalize`` is told by the tensors (``norm.*``) where the head is
    built; a head built on the first batch has none yet, so there it is compared. The layers' widths are told by the
    tensors too, but not their other settings (:func:`settings`), which are compared too."""
    mine, theirs = dict(model.named_modules()), dict(rebuilt.named_modules())
    clash = [f"{name or 'model'}.{key}: model {exposed(m, attr)!r}, arch_kwargs build {exposed(theirs[name], attr)!r}"
             for name, m in mine.items() if name in theirs for key, attr in _EXPOSED.items()  # an ensemble's: its members'
             if (key != "normalize" or getattr(m, "classifier", 0) is None) and not isinstance(getattr(m, "members", None), nn.ModuleList) and hasattr(m, attr) and hasattr(theirs[name], attr)
             and plain(exposed(m, attr)) != plain(exposed(theirs[name], attr))]
    # then every layer's own settings, which no tensor shape tells (an attention's num_heads, an RNN's nonlinearity)
    clash = clash or [f"{name or 'model'}.{attr}: model {v!r}, arch_kwargs build {other[attr]!r}"
                      for name, m in mine.items() if name in theirs for other in (settings(theirs[name]),)
                      for attr, v in settings(m).items() if attr in other and plain(v) != plain(other[attr])]
    if clash:
        raise ArchitectureError(f"arch_kwargs: {arch_kwargs} rebuild a network with other settings than the model's "
                                f"({'; '.join(clash[:4])}); pass the arguments the model was built with")


#: Plain attributes of a module that are no setting of the function it computes: its mode, a switch of checks, arguments
#: of speed only, and what a NeuroView-CNN records of the data it found its sites on (the per-sample ``input_shape``, at
#: any of which a fully convolutional network computes one function; what it froze or left out): no argument sets them.
STATE = frozenset({"training", "check_finite", "input_shape", "frozen", "left_out"}) | _NOT_COMPUTED


def settings(module: nn.Module) -> dict[str, Any]:
    """The public int/float/str/bool attributes of ``module`` itself (``eps``, ``num_heads``, ``nonlinearity``,
    ``negative_slope``, a Dropout's ``p`` ...) and its lists of numbers (a MiniRocket's ``dilations``), less :data:`STATE`."""
    return {k: v for k, v in vars(module).items() if not k.startswith("_") and k not in STATE and (isinstance(v, (int, float, str, bool))
            or isinstance(v, (list, tuple)) and all(isinstance(e, (int, float)) for e in v))}
