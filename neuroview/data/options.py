"""A data module's batch sizes, checked, and its arguments as a checkpoint records them.

Holds :func:`auto_batch_size`, :func:`check_batch_size` and :func:`check_eval_batch_size` (the constructor's checks,
which the setters run too: Lightning's batch-size tuner sets ``batch_size``), :func:`whole_number` (the other counts and
indices: ``seed``, ``num_workers``, ``channels``, ...) and :func:`record_hparams`: the module's ``hparams`` (a Lightning
checkpoint's ``datamodule_hyper_parameters``) as plain Python values, each as it was given. Imports third-party
libraries only; nothing from neuroview.
"""

from __future__ import annotations

import copy
import numbers
import os
from decimal import Decimal

import numpy as np


def auto_batch_size(n: int) -> int:
    """The batch size ``batch_size="auto"`` picks for ``n`` training samples: a tenth of them,
    within [4, 64] (Ismail Fawaz et al.'s rule for UCR sets, capped where sets are large).

    >>> auto_batch_size(40), auto_batch_size(270), auto_batch_size(3600)
    (4, 27, 64)
    """
    return int(min(max(n // 10, 4), 64))


def check_batch_size(value) -> None:
    """A ValueError naming ``batch_size`` unless ``value`` is a positive int or ``"auto"``."""
    if value != "auto" and (not isinstance(value, numbers.Integral) or isinstance(value, (bool, np.bool_)) or value < 1):
        raise ValueError(f"batch_size: expected a positive int or 'auto', got {value!r}")


def check_eval_batch_size(value) -> None:
    """A ValueError naming ``eval_batch_size`` unless ``value`` is None or a positive int."""
    # 0 was read as unset (4 x batch_size), -2 failed in torch's DataLoader
    if value is not None and (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1):
        raise ValueError(f"eval_batch_size: expected None (4 x batch_size) or a positive int, got {value!r}")


def whole_number(value, name: str, expected: str, low: int | None = 0) -> int:
    """``value`` as a plain int, numpy's ints too (``seed=np.int64(1)`` from ``np.arange``, a fold from ``np.unique``),
    or a ValueError naming ``name`` (``expected`` says what it takes): a bool is no count, nor below ``low``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or (low is not None and value < low):
        raise ValueError(f"{name}: expected {expected}, got {value!r}")
    return int(value)


def plain(value):
    """``value`` as plain Python: a numpy scalar or 0-dim array as its Python number (or bool, or text), a Fraction or
    Decimal as a float, a path as text, inside lists, tuples and dicts too; anything else as it is. A checkpoint
    holding a numpy scalar or a Fraction does not load with ``torch.load(weights_only=True)``."""
    if isinstance(value, (bool, str, type(None))):
        return value
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, np.generic):  # before float: np.float64 is one
        value = value.item()
    if isinstance(value, Decimal) or (isinstance(value, numbers.Rational) and not isinstance(value, int)):
        return float(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if type(value) in (list, tuple):
        return type(value)(plain(v) for v in value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def record_hparams(dm) -> None:
    """``dm.hparams`` as plain Python (:func:`plain`), each as it was given: every one is kept (a user's subclass
    that fixes ``resample`` in its ``super().__init__`` call is read so, and a checkpoint's reading options reach the
    other files a model scores), and a subclass's own value of a base argument's name stays its own."""
    for key in list(dm.hparams):
        dm.hparams[key] = plain(dm.hparams[key])
    dm._hparams_initial = copy.deepcopy(dm._hparams)
