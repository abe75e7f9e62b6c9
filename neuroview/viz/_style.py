"""Shared look and helpers of the plotting modules: the colour scales, figures, class names, grids.

Every figure is a ``matplotlib.figure.Figure`` built without pyplot; :func:`_mpl` imports
matplotlib (an optional extra) when a figure is drawn, never at import time. Signed
importance uses a diverging colormap centred at 0 (red adds to the logit, blue takes from it).

Imports: torch and :mod:`neuroview.core`; matplotlib only inside functions.
"""

from __future__ import annotations

import math
from typing import Sequence

from torch import Tensor

from ..core._utils import as_labels, name_sequence
from ..core.explanation import Explanation

CMAP = "RdBu_r"  # diverging: red adds to the logit, blue takes from it, white is 0
POS, NEG = "#b2182b", "#2166ac"


def _mpl():
    try:
        import matplotlib  # noqa: PLC0415 - optional dependency, imported only when drawing
        from matplotlib import colors  # noqa: PLC0415
        from matplotlib.figure import Figure  # noqa: PLC0415
    except ImportError as e:
        raise ImportError("neuroview.viz.plots needs matplotlib: pip install 'neuroview[plots]'") from e
    return matplotlib, colors, Figure


def _figure(w: float, h: float):
    Figure = _mpl()[2]
    # cap the size so that a model with hundreds of sites still gives a picture one can open
    return Figure(figsize=(min(w, 30.0), min(h, 60.0)), layout="constrained", dpi=100)


def _names(num_classes: int, class_names: Sequence | None) -> list[str]:
    if class_names is None:
        return [f"class {c}" for c in range(num_classes)]
    name_sequence(class_names)
    names = [str(n) for n in class_names]
    if len(names) != num_classes:
        raise ValueError(f"class_names: expected {num_classes} names (one per class), got {len(names)}")
    # labels such as "1" and "2" (UCR sets, digits) would read as tick values on an axis
    shown = [f"class {n}" if _is_number(n) else n for n in names]
    _distinct(shown, names)
    return [_plain(n) for n in shown]


def _plain(text: str) -> str:
    """``text`` drawn as it is: a ``$`` escaped, which matplotlib read as mathtext ("US$5-US$10" drawn mangled,
    "$\\foo$" a ParseFatalException that ended the report). Only text of the user's: neuroview's own has no ``$``."""
    return str(text).replace("$", r"\$")


def _label_list(labels, arg: str, what: str) -> list[str]:
    """User labels of another kind than classes (``unit_names``) under :func:`name_sequence`'s rule: one string is
    refused, where its characters were read as the labels ("kernel_1x9" labelled 10 units a letter each)."""
    try:
        name_sequence(labels)
    except TypeError:
        raise TypeError(f"{arg}: expected a sequence of labels, one per {what}, got {type(labels).__name__} "
                        f"{labels!r:.60}") from None
    return [str(n) for n in labels]


def _distinct(shown: list[str], names: list[str]) -> None:
    """Two classes drawn under one name read as one (the tables refuse them too: ``class_labels``)."""
    if len(set(shown)) != len(shown):
        raise ValueError(f"class_names: expected distinct names, got {names}")


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _measured(values) -> list[Tensor]:
    """The values that are numbers: NaN marks a mean over no sample (a class absent from ``y``), on no scale."""
    return [v[~v.isnan()] for v in values]


def _sym_norm(*values: Tensor):
    colors = _mpl()[1]
    m = max((float(v.abs().max()) if v.numel() else 0.0 for v in _measured(values)), default=0.0)  # no map: none
    m = m if m > 0 else 1.0
    return colors.Normalize(vmin=-m, vmax=m)


def _scale(*values: Tensor):
    """``(norm, cmap)``: diverging and centred at 0 for signed values, sequential from 0 for
    values that cannot be negative (a norm of weights), so white always means 0. NaN is left out."""
    colors = _mpl()[1]
    values = _measured(values)
    if all(bool((v >= 0).all()) for v in values):
        m = max((float(v.max()) if v.numel() else 0.0) for v in values)
        return colors.Normalize(vmin=0.0, vmax=m if m > 0 else 1.0), "Reds"
    return _sym_norm(*values), CMAP


def _index(value, num_classes: int, what: str) -> int:
    """One class index from an int, a whole-number float or a one-element tensor; a name (a string, even "1"),
    a fraction or a bool is an error naming ``what``, where ``int()`` read "1" as index 1 and 1.7 as 1."""
    if isinstance(value, bool) or "bool" in str(getattr(value, "dtype", "")):  # numpy's and torch's bools too
        raise TypeError(f"{what}: expected a class index, got the bool {value}")
    t = as_labels(value, what).reshape(-1)
    if len(t) != 1:
        raise ValueError(f"{what}: expected one class index, got {len(t)} values")
    if not 0 <= int(t[0]) < num_classes:
        raise ValueError(f"{what}: expected a class index in [0, {num_classes}), got {int(t[0])}")
    return int(t[0])


def _classes(classes, num_classes: int) -> list[int]:
    if classes is None:
        return list(range(num_classes))
    if isinstance(classes, (str, int)) or getattr(classes, "ndim", None) == 0:
        classes = [classes]  # one class: an int, a numpy integer, a 0-dim tensor or array
    out = [_index(c, num_classes, "classes") for c in classes]
    bad = [c for c in out if not 0 <= c < num_classes]
    if bad or not out:
        raise ValueError(f"classes: expected a non-empty list of class indices in [0, {num_classes}), got {list(classes)}")
    return out


def _grid(fig, n: int, max_cols: int, **kw):
    ncols = min(max_cols, n)
    nrows = math.ceil(n / ncols)
    axes = list(fig.subplots(nrows, ncols, squeeze=False, **kw).ravel())
    for ax in axes[n:]:
        ax.remove()  # an empty panel would read as a missing result
    return axes[:n]


def _target(exp: Explanation, sample: int, target) -> int:
    """``target``, else the class the explanation was asked for (``explain(x, target=...)``; by default the predicted one)."""
    if target is None:
        return int(exp.targets()[sample])
    return _index(target, exp.num_classes, "target")


def _label_text(label, names: list[str]) -> str:
    return names[_index(label, len(names), "label")] if label is not None else "?"


def _percent():
    from matplotlib.ticker import PercentFormatter  # noqa: PLC0415

    return PercentFormatter(1.0)
