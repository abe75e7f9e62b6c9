"""The zoo's public surface: ``list_models`` and ``create_model``, over the architectures of
:mod:`.registry` and the trained checkpoints of :mod:`.pretrained`.

May import: ``.registry``, ``.build``, ``.pretrained`` (and through them ``neuroview.core``).
"""

from __future__ import annotations

import fnmatch

from torch import nn

from .build import builder, one_network
from .pretrained import list_pretrained, load_pretrained, unknown_entry
from .registry import _MODELS


def list_models(pattern: str | None = None, *, pretrained: bool = False) -> list[str]:
    """Sorted names of the registered architectures, optionally filtered by a glob ``pattern``.

    ``pretrained=True`` lists the trained checkpoints instead (``arch.tag``, timm style), each a
    name that ``create_model(name, pretrained=True)`` loads.

    >>> "nv_small_cnn" in list_models("nv_*")
    True
    """
    if pretrained:
        return list_pretrained(pattern)
    names = sorted(_MODELS)
    return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names


def create_model(name: str, *, pretrained: bool = False, num_classes: int | None = None, **kwargs) -> nn.Module:
    """Build a registered architecture; ``pretrained=True`` loads its trained zoo checkpoint.

    >>> net = create_model("nv_small_cnn", num_classes=10, in_channels=1)
    >>> type(net).__name__, net.num_classes
    ('NeuroViewCNN', 10)
    """
    try:
        build = builder(name)  # an unknown name fails here, with suggestions, before any file is read
    except ValueError:
        if "." in name:  # `arch.tag` names a trained checkpoint: suggest checkpoints, not architectures
            raise unknown_entry(name, kwargs.get("root")) from None
        raise
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    for key in ("in_channels", "in_features", "max_len"):  # the data's shape: a builder's own error names neither
        v = kwargs.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"{key}: expected an int >= 1, got {v!r}")
    kwargs = one_network(name, build, kwargs)
    if pretrained:
        return load_pretrained(name, **kwargs)
    return build(**kwargs)
