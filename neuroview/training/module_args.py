"""The numeric options of :class:`~neuroview.training.module.NeuroViewModule`, checked by name when it is built.

``not lr > 0`` refused NaN but let infinity through (the run trained to NaN weights without an error), a string
or None failed in a bare comparison naming no option, and an SGD momentum of 1 or more (which never decays) passed.
Imports nothing of neuroview.
"""

from __future__ import annotations

import decimal
import math
import numbers

__all__ = ["check_numbers"]


def _number(name: str, v, lo: float, hi: float = math.inf, *, lo_open: bool = False, hi_open: bool = False,
            none: bool = False) -> None:
    """``v`` a finite real number (numpy's too, never a bool) in the interval given, or None where ``none``."""
    if v is None and none:
        return
    if getattr(v, "ndim", None) == 0 and hasattr(v, "item"):  # a 0-d tensor or numpy array: the number it holds
        v = v.item()
    if isinstance(v, decimal.Decimal):
        v = float(v)
    ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
    ok = ok and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
    if not ok:
        span = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open or hi == math.inf else ']'}"
        raise ValueError(f"{name}: expected a finite number in {span}{' or None' if none else ''}, got {v!r}")


def check_numbers(*, lr, classifier_lr, weight_decay, classifier_weight_decay, momentum, warmup_epochs,
                  plateau_patience, label_smoothing, l1_classifier, group_l1_classifier, optimizer="sgd") -> None:
    """Each numeric option of the module in its range (``classifier_lr`` and ``classifier_weight_decay`` may be None:
    the backbone's); ``momentum`` only where the ``optimizer`` reads it (SGD); ``plateau_patience`` an int."""
    _number("lr", lr, 0, lo_open=True)
    _number("classifier_lr", classifier_lr, 0, lo_open=True, none=True)
    if optimizer == "sgd":
        _number("momentum", momentum, 0, 1, hi_open=True)
    _number("label_smoothing", label_smoothing, 0, 1, hi_open=True)
    _number("classifier_weight_decay", classifier_weight_decay, 0, none=True)
    for name, v in (("weight_decay", weight_decay), ("l1_classifier", l1_classifier),
                    ("group_l1_classifier", group_l1_classifier), ("warmup_epochs", warmup_epochs),
                    ("plateau_patience", plateau_patience)):
        _number(name, v, 0)
    # and a count of epochs (validations with 'plateau'): 2.5 was taken and ran as 2
    patience = plateau_patience.item() if getattr(plateau_patience, "ndim", None) == 0 else plateau_patience
    if isinstance(patience, bool) or not isinstance(patience, numbers.Integral) or patience < 0:
        raise ValueError(f"plateau_patience: expected an int >= 0 (epochs without improvement; validations with "
                         f"scheduler 'plateau'), got {plateau_patience!r}")
