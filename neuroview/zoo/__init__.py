"""The model zoo: architectures (standard and NeuroView), their registry, and trained checkpoints.

Layout, low to high: ``registry`` (the decorator and the dict), ``architectures`` (the builders),
``build`` (a name and the data's shape to a network), ``weights`` (the one loader of weight
files), ``evaluate`` (scoring without Lightning), ``pretrained`` (manifest, hashing, loading and
exporting entries), ``api`` (``list_models``/``create_model``) and ``cli`` (``neuroview zoo``).
May import ``neuroview.core``, ``neuroview.data`` and the leaf modules ``neuroview._io``/``_batch``;
never ``training`` or ``viz``.
"""

from . import architectures  # noqa: F401 - registers the builders
from .api import create_model, list_models
from .registry import register_model

__all__ = ["create_model", "list_models", "register_model"]
