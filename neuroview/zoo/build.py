"""Building a registered architecture: the one place that turns a name and arguments into a network.

:func:`builder` finds a registered builder (an unknown name is an error that suggests close
ones); :func:`arch_kwargs` routes the data's shape to the argument names a builder takes, which
is what the Lightning module does and what a manifest entry records; :func:`build_model` is the
two together. May import ``.registry`` only (so ``api`` and ``pretrained`` can both use it).
"""

from __future__ import annotations

import difflib
import inspect
import operator
import sys
from typing import Any, Callable

import numpy as np
from torch import nn

from .registry import _MODELS, check_members

# the commands that build a saved architecture: the one running is named in the advice to import one's own
_COMMANDS = ("fit", "validate", "test", "predict", "explain", "sparsify", "retrofit", "minirocket")

__all__ = ["builder", "arch_kwargs", "build_model", "one_network", "check_count", "route_features", "routed"]


def check_count(value: Any, name: str, least: int) -> int:
    """``value`` as a plain int >= ``least`` (numpy's integers too: ``y.max() + 1``, ``X.shape[1]``), or an error
    naming ``name``; a bool is no count."""
    try:
        ok = not isinstance(value, (bool, np.bool_)) and operator.index(value) >= least
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"{name}: expected an int >= {least}, got {value!r}")
    return operator.index(value)


def builder(name: str, what: str = "name", *, trained: bool = False) -> Callable[..., nn.Module]:
    """The registered builder of ``name``; an ``arch.tag`` zoo name gives its ``arch``'s builder only where
    ``trained`` (its weights are being loaded): built without them, the tag's data shape would be dropped."""
    if not isinstance(name, str):  # else a bare AttributeError of str.partition
        raise ValueError(f"{what}: expected a model name (a string such as 'nv_lite' or 'nv_lite.gunpoint'), "
                         f"got {name!r}")
    arch, dot, _ = name.partition(".")
    if arch not in _MODELS:
        close = _close(arch)
        if what in ("arch", "architecture"):  # typed (--model.arch) or saved (a checkpoint's): maybe the user's own
            raise ValueError(_unregistered(name, what, close))
        hint = f"; did you mean {close}?" if close else "; see neuroview.list_models()"
        raise ValueError(f"{what}: unknown model {name!r}{hint}")
    if dot and not trained:  # a random network of the architecture's default shape, not the entry it names
        if what != "name":
            raise ValueError(f"{what}: {name!r} names a trained entry: expected an architecture, e.g. {arch!r}")
        # create_model's name is also what `neuroview explain --model` / `retrofit --arch` give it: a command line has
        # no pretrained=True, so its words are said too
        raise ValueError(f"{what}: {name!r} names a trained entry: pass pretrained=True, or the architecture {arch!r} "
                         f"(Python); on the command line the entry name alone loads its weights, and a weight file of "
                         f"your own takes the architecture: --model {arch} (explain), --arch {arch} (retrofit)")
    return _MODELS[arch]


def _close(arch: str) -> list[str]:
    """Zoo names near ``arch``: those it begins (``nv_vit`` for ``nv_vit_tiny``), then difflib's at its own cutoff."""
    starts = [m for m in sorted(_MODELS) if m.startswith(arch)] if arch else []
    return starts + [m for m in difflib.get_close_matches(arch, list(_MODELS), n=3) if m not in starts]


def _unregistered(name: str, what: str, close: list[str]) -> str:
    """The refusal of an architecture ``name`` no builder of this process is registered for (``close``: zoo names near
    it, offered first: a typo; the advice for one's own follows, as `nv_mycnn` is near `nv_rnn` at difflib's cutoff). A
    checkpoint's ``arch`` (or a saved entry's ``architecture``) names the builder it was trained with: one of the
    user's own (``nv.register_model``), known only to a process that imported the code registering it. The command
    advised is a script file, run as the command running now was: ``python -c`` broke every DDP fit (Lightning starts
    each other process by running ``sys.argv[0]`` again, there ``-c``)."""
    sub = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] in _COMMANDS else "<command>"
    near = (f"did you mean {close}? If not a typo: " if close else
            "none of neuroview's own (neuroview.list_models()) is near it; ")
    return (f"{what}: unknown model {name!r}: no architecture of that name is registered in this process; {near}"
            f"one of your own, registered with nv.register_model "
            f"in your code, is known only where the module that registers it was imported: import it first (Python: "
            f"`import my_models` before neuroview.training.module.load_module, nv.sparsify or nv.unit_gallery reads "
            f"the checkpoint; a command: a script file my_cli.py holding `import my_models; from neuroview.cli import "
            f"main; raise SystemExit(main())`, run as `python my_cli.py {sub} ...` in place of `neuroview {sub} ...`, "
            f"where my_models.py calls nv.register_model)")


def one_network(name: str, build: Callable[..., nn.Module], kwargs: dict) -> dict:
    """``kwargs`` for ``build``, refusing ``members`` (an ensemble) where the architecture builds one network
    only (the RNNs, MiniRocket: a bare ``unexpected keyword argument 'members'`` from deep inside);
    ``members=1`` asks for one network and is dropped."""
    if "members" in kwargs and "members" not in inspect.signature(build, follow_wrapped=False).parameters:
        check_members(kwargs["members"])
        if kwargs["members"] != 1:
            raise ValueError(f"members: {name.split('.', 1)[0]} builds one network (ensembles of members: the CNN "
                             f"architectures, e.g. nv_lite), got members={kwargs['members']!r}")
        kwargs = {k: v for k, v in kwargs.items() if k != "members"}
    return kwargs


def arch_kwargs(arch: str, *, num_classes: int, in_channels: int, max_len: int | None = None,
                model_kwargs: dict | None = None) -> dict[str, Any]:
    """The builder's keyword arguments: the data's shape under the names it takes, then ``model_kwargs``.

    ``in_channels`` is passed as ``in_features`` to RNN builders, ``max_len`` only to builders
    that take it (NeuroView-RNNs, which need it).

    >>> arch_kwargs("nv_gru", num_classes=3, in_channels=2, max_len=30, model_kwargs={"hidden_size": 8})
    {'num_classes': 3, 'in_features': 2, 'max_len': 30, 'hidden_size': 8}
    """
    params = inspect.signature(builder(arch, "arch")).parameters
    kw: dict[str, Any] = {"num_classes": num_classes}
    kw["in_features" if "in_features" in params else "in_channels"] = in_channels
    if "max_len" in params:
        if max_len is None and "max_len" not in (model_kwargs or {}):
            raise ValueError(f"max_len: {arch!r} needs the longest sequence length; got None (use a sequence data module)")
        kw["max_len"] = max_len
    return kw | dict(model_kwargs or {})


def build_model(arch: str, *, num_classes: int, in_channels: int, max_len: int | None = None,
                model_kwargs: dict | None = None) -> nn.Module:
    """Build ``arch`` for data of this shape (see :func:`arch_kwargs`).

    >>> build_model("nv_gru", num_classes=3, in_channels=2, max_len=30).max_len
    30
    """
    kw = arch_kwargs(arch, num_classes=num_classes, in_channels=in_channels, max_len=max_len, model_kwargs=model_kwargs)
    build = builder(arch, "arch")
    return build(**one_network(arch, build, kw))


def route_features(build: Callable[..., nn.Module], kwargs: dict, what: str = "in_channels") -> dict:
    """``kwargs`` with ``in_channels`` passed as ``in_features`` to a builder that takes the latter (the RNNs), as
    :func:`arch_kwargs` routes it for training: the one rule of ``create_model`` and ``save_pretrained``. Both given,
    unequal, are an error naming ``what``.

    >>> route_features(lambda *, in_features, num_classes: None, {"in_channels": 3, "num_classes": 2})
    {'num_classes': 2, 'in_features': 3}
    """
    params = inspect.signature(build).parameters
    if "in_channels" not in kwargs or "in_channels" in params or "in_features" not in params:
        return kwargs
    kwargs = dict(kwargs)
    v = kwargs.pop("in_channels")
    if "in_features" in kwargs and kwargs["in_features"] != v:
        named = "" if what == "in_channels" else "in_channels is "  # the argument named once: 'in_channels: in_channels is'
        raise ValueError(f"{what}: {named}an RNN's in_features (input features per step) under the CNNs' name; "
                         f"expected it alone or equal to in_features={kwargs['in_features']!r}, got {v!r}")
    kwargs["in_features"] = v
    return kwargs


def routed(architecture: str, kwargs: dict, what: str = "in_channels") -> dict:
    """:func:`route_features` for the builder registered as ``architecture``: what ``load_pretrained`` and ``save_pretrained``
    apply, as ``create_model`` does. An unknown architecture leaves ``kwargs`` as they are: its caller names it."""
    try:
        build = builder(architecture, "architecture")
    except ValueError:
        return kwargs
    return route_features(build, kwargs, what)
