"""The zoo's public surface: ``list_models`` and ``create_model``, over the architectures of
:mod:`.registry` and the trained checkpoints of :mod:`.pretrained`.

May import: ``.registry``, ``.architectures`` (its ``check_flag``), ``.build``, ``.pretrained`` (and through
them ``neuroview.core``).
"""

from __future__ import annotations

import fnmatch
import inspect
from typing import Callable

from torch import nn

from .architectures import check_flag
from .build import builder, check_count, one_network
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


def create_model(name: str, *, pretrained: bool = False, num_classes: int | None = None, **kwargs) -> nn.Module:
    """Build a registered architecture; ``pretrained=True`` loads its trained zoo checkpoint.

    >>> net = create_model("nv_small_cnn", num_classes=10, in_channels=1)
    >>> type(net).__name__, net.num_classes
    ('NeuroViewCNN', 10)
    """
    pretrained = check_flag(pretrained, "pretrained")  # pretrained="False" loaded the weights
    try:  # an unknown name fails here, with suggestions, before any file is read; so does a tag without its weights
        build = builder(name, trained=pretrained)
    except ValueError:
        if isinstance(name, str) and "." in name and name.split(".", 1)[0] not in _MODELS:  # a typo in `arch.tag`
            raise unknown_entry(name, kwargs.get("root")) from None  # suggests checkpoints
        raise
    if num_classes is not None:  # numpy's integers (y.max() + 1) passed on as plain ints
        kwargs["num_classes"] = check_count(num_classes, "num_classes", 2)
    for key in ("in_channels", "in_features", "max_len"):  # the data's shape: a builder's own error names neither
        if kwargs.get(key) is not None:
            kwargs[key] = check_count(kwargs[key], key, 1)
    kwargs = one_network(name, build, _features(build, kwargs))
    if pretrained:
        return load_pretrained(name, **kwargs)
    if not hasattr(build, "passed_on"):  # the RNN builders name an argument they do not take themselves
        check_arguments(name, kwargs)
    return build(**kwargs)


def _features(build: Callable[..., nn.Module], kwargs: dict) -> dict:
    """``in_channels`` passed as ``in_features`` to a builder that takes the latter (the RNNs), as
    :func:`~neuroview.zoo.build.arch_kwargs` routes it for training; both, unequal, are an error."""
    params = inspect.signature(build).parameters
    if "in_channels" not in kwargs or "in_channels" in params or "in_features" not in params:
        return kwargs
    kwargs = dict(kwargs)
    v = kwargs.pop("in_channels")
    if "in_features" in kwargs and kwargs["in_features"] != v:
        raise ValueError(f"in_channels: an RNN's in_features (input features per step) under the CNNs' name; expected "
                         f"it alone or equal to in_features={kwargs['in_features']!r}, got {v!r}")
    kwargs["in_features"] = v
    return kwargs
