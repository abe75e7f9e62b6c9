"""The model zoo: architectures (standard and NeuroView), their registry, and trained checkpoints.

Layout: ``registry`` (the decorator and the dict), ``architectures`` (the builders),
``pretrained`` (manifest, hashing, loading, the ``neuroview zoo`` command), ``api``
(``list_models``/``create_model``). May import ``neuroview.core`` and ``neuroview.data``; never
``training`` or ``viz``.
"""

from . import architectures  # noqa: F401 - registers the builders
from .api import create_model, list_models
from .registry import register_model

__all__ = ["create_model", "list_models", "register_model"]
