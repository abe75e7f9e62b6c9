"""Splits a file brings of its own (an .npz's ``X_test``/``X_val``, a CSV's ``test_path``/``val_path``): what they
leave unused and what they must not be.

Holds :func:`warn_fraction_unused` (a ``test_fraction``/``val_fraction`` the user set, which such a split leaves
unread) and :func:`warn_training_again` (a held-out split that is the training data itself). Imports only numpy.
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np

__all__ = ["warn_fraction_unused", "warn_training_again"]


def warn_fraction_unused(dm, option: str, split: str, given_by: str) -> None:
    """Warn (once per data module and option) that ``option`` of ``dm`` is not used, where it differs from the default of
    ``dm``'s class: the ``split`` split is the file's own (``given_by``: ``X_test``, ``test_path`` ...), yet the run's
    hparams record the value as if it had carved it. ``val_fraction=0`` is not warned about: it carves nothing, which is
    what happens (the ``ucr_*`` recipes set it, and an .npz of one's own under them may well hold an ``X_val``)."""
    value = getattr(dm, option, None)
    said = dm.__dict__.setdefault("_said_unused", set())
    if value is None or option in said or (option == "val_fraction" and value == 0):
        return
    param = inspect.signature(type(dm).__init__).parameters.get(option)
    if param is None or param.default is inspect.Parameter.empty or value == param.default:
        return
    said.add(option)
    warnings.warn(f"{option}: {value!r} is not used: {type(dm).__name__} reads the {split} split of its own ({given_by}), "
                  f"so no {split} split is carved from the training data; drop {option} (the run's hparams record it "
                  f"as given), or drop {given_by} to carve {value!r} of the training data", UserWarning, stacklevel=3)


def warn_training_again(train, held_out, what: str, where: str) -> None:
    """Warn where the held-out series ``held_out`` (a test or validation split given by ``what``: ``test_path``,
    ``X_test`` ...) are the training series ``train`` themselves, value for value (the same file, a copy of it, an
    ``X_test`` that is ``X``): the split's accuracy is training accuracy, scored as if unseen. A warning, not an error:
    a file scored whole by a model trained elsewhere was written that way (``X_test=X``) before such files were read
    whole, and its training split only names the classes there."""
    if not _same_series(train, held_out):
        return
    warnings.warn(f"{what}: its series are the training series of {where}, value for value (the same file, a copy of "
                  f"it, or X given again): its accuracy would be training accuracy, scored as if unseen; pass series "
                  "the model does not train on, or drop it to carve a split from the training data", UserWarning,
                  stacklevel=3)


def _same_series(a, b) -> bool:
    """Whether ``a`` and ``b`` (arrays, or lists of arrays of several lengths) hold the same series in the same order,
    of the same shapes."""
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(np.shape(s) == np.shape(t) and np.array_equal(s, t) for s, t in zip(a, b))
    return np.shape(a) == np.shape(b) and np.array_equal(a, b)
