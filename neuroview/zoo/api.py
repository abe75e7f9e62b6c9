"""The zoo's public surface: ``list_models`` and ``create_model``, over the architectures of
:mod:`.registry` and the trained checkpoints of :mod:`.pretrained`.

May import: ``.registry``, ``.architectures`` (its ``check_flag``), ``.build``, ``.pretrained`` (and through
them ``neuroview.core``).
"""

from __future__ import annotations

import fnmatch
import numbers

from torch import nn

from .architectures import check_flag
from .build import builder, check_count, one_network, route_features
from .pretrained import check_arguments, list_pretrained, load_pretrained, unknown_entry
from .registry import _MODELS


def list_models(pattern: str | None = None, *, pretrained: bool = False) -> list[str]:
    """Sorted names of the registered architectures, optionally filtered by a glob ``pattern``.

    ``pretrained=True`` lists the trained checkpoints instead (``arch.tag``, timm style), each a
    name that ``create_model(name, pretrained=True)`` loads.

    >>> "nv_small_cnn" in list_models("nv_*")
    True
    """
    if pattern is not None and not isinstance(pattern, str):  # else a bare TypeError of fnmatch
        raise ValueError(f"pattern: expected a glob string such as 'nv_*' (or None for all), got {pattern!r}")
    if check_flag(pretrained, "pretrained"):
        return list_pretrained(pattern)
    names = sorted(_MODELS)
    return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names


def create_model(name: str, pretrained: bool = False, *, num_classes: int | None = None, **kwargs) -> nn.Module:
    """Build a registered architecture; ``pretrained=True`` loads its trained zoo checkpoint (by position too, as
    timm's ``create_model(model_name, pretrained=False, ...)`` takes it; every other argument by keyword).

    >>> net = create_model("nv_small_cnn", num_classes=10, in_channels=1)
    >>> type(net).__name__, net.num_classes
    ('NeuroViewCNN', 10)
    """
    if isinstance(pretrained, numbers.Integral) and not isinstance(pretrained, bool) and pretrained > 1:  # (name, 10)
        raise ValueError(f"pretrained: expected true or false, got {pretrained!r}; num_classes and every later argument "
                         f"are keyword-only: create_model({name!r}, num_classes={int(pretrained)})")
    pretrained = check_flag(pretrained, "pretrained")  # pretrained="False" loaded the weights
    try:  # an unknown name fails here, with suggestions, before any file is read; so does a tag without its weights
        build = builder(name, trained=pretrained)
    except ValueError:
        if isinstance(name, str) and "." in name and name.split(".", 1)[0] not in _MODELS:  # a typo in `arch.tag`
            _unregistered_entry(name, kwargs.get("root"))  # the entry is there: its architecture is what is missing
            raise unknown_entry(name, kwargs.get("root")) from None  # suggests checkpoints
        raise
    if num_classes is not None:  # numpy's integers (y.max() + 1) passed on as plain ints
        kwargs["num_classes"] = check_count(num_classes, "num_classes", 2)
    for key in ("in_channels", "in_features", "max_len"):  # the data's shape: a builder's own error names neither
        if kwargs.get(key) is not None:
            kwargs[key] = check_count(kwargs[key], key, 1)
    kwargs = one_network(name, build, kwargs)
    routed = route_features(build, kwargs)  # in_channels and in_features unequal: an error naming in_channels
    if pretrained:  # as passed: load_pretrained routes them itself, and a clash with the checkpoint names in_channels
        return load_pretrained(name, **kwargs)
    kwargs = routed
    if not hasattr(build, "passed_on"):  # the RNN builders name an argument they do not take themselves
        check_arguments(name, kwargs)
    return build(**kwargs)


def _unregistered_entry(name: str, root) -> None:
    """Where the zoo at ``root`` holds the entry ``name`` but no builder of its architecture is registered in this
    process (one of the user's own, its module not imported): that said, with how to import it. "did you mean
    ['nv_mycnn.last_sparse']" of the entry's own name blamed a typo."""
    try:
        held = name in list_pretrained(root=root)
    except Exception:  # noqa: BLE001 - no zoo there, or an unreadable one: unknown_entry names it
        return
    if held:
        try:
            builder(name.split(".", 1)[0], "architecture")
        except ValueError as e:
            raise ValueError(f"name: the entry {name!r} is in the zoo, but its {e}") from None
