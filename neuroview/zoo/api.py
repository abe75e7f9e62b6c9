"""The zoo's public surface: ``list_models`` and ``create_model``, over the architectures of
:mod:`.registry` and the trained checkpoints of :mod:`.pretrained`.

May import: ``.registry``, ``.pretrained`` (and through them ``neuroview.core``).
"""

from __future__ import annotations

import difflib
import fnmatch

from torch import nn

from .pretrained import list_pretrained, load_pretrained
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
    arch = name.split(".", 1)[0]
    if arch not in _MODELS:
        close = difflib.get_close_matches(arch, list(_MODELS), n=3)
        hint = f"; did you mean {close}?" if close else f"; see neuroview.list_models()"
        raise ValueError(f"name: unknown model {name!r}{hint}")
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if pretrained:
        return load_pretrained(name, **kwargs)
    return _MODELS[arch](**kwargs)
