"""Shared look and helpers of the plotting modules: the colour scales, figures, class names, grids.

Every figure is a ``matplotlib.figure.Figure`` built without pyplot; :func:`_mpl` imports
matplotlib (an optional extra) when a figure is drawn, never at import time. Signed
importance uses a diverging colormap centred at 0 (red adds to the logit, blue takes from it).

Imports: torch and :mod:`neuroview.core`; matplotlib, and :mod:`neuroview.data.splits` (the rule for a label that
is a number), only inside functions.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
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
    names = [str(n) for n in name_sequence(class_names)]  # a tensor's values as their text, not "tensor(1)"
    if len(names) != num_classes:
        raise ValueError(f"class_names: expected {num_classes} names (one per class), got {len(names)}")
    # labels such as "1" and "2" (UCR sets, digits) would read as tick values on an axis
    shown = [f"class {n}" if _is_number(n) else n for n in names]
    _distinct(shown, names)
    return [_plain(n) for n in _shorten(shown)]  # "$" escaped last: a cut never splits its escape


LONG = 40  # characters of a class name drawn whole


def _cut(name: str, limit: int) -> str:
    """``name`` cut in the middle to ``limit`` characters, its start and end kept with an ellipsis between ("Northern
    cardinal (C…in breeding plumage"): a class is told apart by its start as often as by its end."""
    if len(name) <= limit:
        return name
    head = limit // 2
    return name[:head].rstrip() + "\u2026" + name[len(name) - (limit - 1 - head):].lstrip()


def _shorten(names: list[str], limit: int = LONG) -> list[str]:
    """Distinct ``names``, each longer than ``limit`` characters cut in the middle (:func:`_cut`). Drawn whole, long
    names ran off a figure saved plainly (``fig.savefig(path)``): heatmap rows kept only their (alike) ends. The cut
    grows until the names stay distinct ("… left …" and "… right …" cut alike), whole at worst."""
    longest = max(map(len, names), default=0)
    while limit < longest:
        cut = [_cut(n, limit) for n in names]
        if len(set(cut)) == len(cut):
            return cut
        limit += 10
    return list(names)


def _text_inches(texts, size: float) -> float:
    """The width of the widest of ``texts`` (one line each) at ``size`` points, in inches; 0 for none."""
    from matplotlib.font_manager import FontProperties  # noqa: PLC0415 - optional dependency, when drawing
    from matplotlib.textpath import TextToPath  # noqa: PLC0415

    font, path = FontProperties(size=size), TextToPath()
    longest = sorted({str(t) for t in texts}, key=len)[-20:]  # the widest is among the longest: 1,000 names took 0.5 s
    return max((path.get_text_width_height_descent(t, font, ismath=False)[0] for t in longest), default=0.0) / 72


def _wrap(text: str, inches: float, size: float, whole: Sequence[str] = ()) -> str:
    """``text`` broken at spaces into lines at most ``inches`` wide at ``size`` points (a longer word stays whole);
    unchanged where it fits. A title wider than its figure is cut off where the figure is saved plainly. The phrases
    ``whole`` (class names) are never broken: "true class\n0)" read as if "true class" were the truth."""
    if _text_inches(text.split("\n"), size) <= inches:  # each of its own lines fits
        return text
    glued = {p: p.replace(" ", _GLUE) for p in sorted(set(whole), key=len, reverse=True) if " " in p}
    for p, g in glued.items():
        text = text.replace(p, g)
    lines, line = [], ""
    for word in text.replace("\n", " \n ").split(" "):
        trial = f"{line} {word}" if line else word
        if word == "\n" or (line and _text_inches([trial.replace(_GLUE, " ")], size) > inches):
            lines.append(line)
            line = "" if word == "\n" else word
        else:
            line = trial
    return "\n".join(lines + [line]).replace(_GLUE, " ")


_GLUE = "\u0000"  # a space inside a phrase :func:`_wrap` keeps whole, while it wraps (never in a drawn text)


def _plain(text: str) -> str:
    """``text`` drawn as it is: a ``$`` escaped, which matplotlib read as mathtext ("US$5-US$10" drawn mangled,
    "$\\foo$" a ParseFatalException that ended the report). Only text of the user's: neuroview's own has no ``$``."""
    return str(text).replace("$", r"\$")


def _unit_label(site: str, channel: int) -> str:
    """A unit's drawn label, ``"site #channel"``: the site is the user's module name, which may hold a ``$``
    (``nn.Sequential`` takes any name without a dot); drawn as mathtext it mislabelled the unit, and ``\\foo`` ended
    every figure's savefig. A gallery's rows are matched by the raw name, never by this one."""
    return f"{_plain(site)} #{channel}"


def _finite_decision(exp: Explanation, sample: int, tgt: int, row: Tensor | None = None) -> None:
    """A clear error where the decision drawn is no number (any logit of the sample: "predicted" is argmax's reading of
    NaN), the bias or the ``row`` of contributions drawn: a head weight NaN after a diverged run, an overflow. Drawn,
    its bars were blank, the rest "adding nothing" (as k90 refuses it)."""
    logits = exp.logits[sample].detach().cpu().double()
    bias = float(exp.bias[tgt])
    bad = 0 if row is None else int((~torch.isfinite(row.detach())).sum())
    if bool(torch.isfinite(logits).all()) and math.isfinite(bias) and not bad:
        return
    c = tgt if not math.isfinite(float(logits[tgt])) else next((i for i, v in enumerate(logits.tolist())
                                                                   if not math.isfinite(v)), tgt)
    held = [w for w, b in ((f"{bad} of its {len(row) if row is not None else 0} contributions", bad),
                           (f"its bias ({bias})", not math.isfinite(bias))) if b]
    raise ValueError(f"exp: sample {sample}'s logit of class {c} is {float(logits[c])}" + (
        f" ({' and '.join(held)} NaN or Inf)" if held else "") + ": a non-finite decision (a head weight NaN after a "
        "diverged training run, an overflow) has no parts to draw, nor a predicted class; check the network's weights "
        "(torch.isfinite)")


def _finite_weights(w: Tensor, units: Sequence, arg: str = "source") -> None:
    """A clear error where a classifier's weights hold NaN or Inf: ranked, NaN came first as a blank bar; drawn, a
    white cell, which the colour scale defines as 0."""
    bad = ~torch.isfinite(w)
    if bool(bad.any()):
        c, u = (int(i) for i in bad.nonzero()[0])
        raise ValueError(f"{arg}: expected finite classifier weights, got {int(bad.sum())} NaN or Inf (the first: class "
                         f"{c}'s weight of unit {units[u][0]!r} #{units[u][1]}, {float(w[c, u])}); a head weight NaN "
                         "after a diverged training run has no picture: check the network's weights")


def _picture(x: Tensor):
    """``(image, cmap, vmin, vmax, constant)``: an input ``[C, H, W]`` drawn as an image, RGB for 3 channels (scaled
    to its range), else the channel mean in grey (scaled by imshow). A constant image has no range: scaled by it, a
    white page and a grey photo were both drawn black. It is drawn as it is where it lies in [0, 1], else mid-grey,
    and ``constant`` (its value, else None) says so."""
    x = x.detach().cpu().float()
    img = x if x.shape[0] == 3 else x.mean(0, keepdim=True)
    lo, hi = float(img.min()), float(img.max())
    if hi > lo or not math.isfinite(lo):
        if x.shape[0] == 3:
            return ((img - lo) / (hi - lo)).permute(1, 2, 0).numpy(), None, None, None, None
        return img[0].numpy(), "gray", None, None, None
    flat = img.clamp(0.0, 1.0) if 0.0 <= lo <= 1.0 else torch.full_like(img, 0.5)
    if x.shape[0] == 3:
        return flat.permute(1, 2, 0).numpy(), None, None, None, lo
    return flat[0].numpy(), "gray", 0.0, 1.0, lo


def _constant_note(value: float | None) -> str:
    """The words for a constant input drawn mid-grey (outside [0, 1]: it has no shade of its own); none else."""
    return "" if value is None or 0.0 <= value <= 1.0 else f"constant input {value:.3g}, drawn grey"


def _label_list(labels, arg: str, what: str) -> list[str]:
    """User labels of another kind than classes (``unit_names``) under :func:`name_sequence`'s rule: one string is
    refused, where its characters were read as the labels ("kernel_1x9" labelled 10 units a letter each)."""
    try:
        labels = name_sequence(labels, arg, what)
    except TypeError:
        raise TypeError(f"{arg}: expected a sequence of labels, one per {what}, got {type(labels).__name__} "
                        f"{labels!r:.60}") from None
    return [str(n) for n in labels]


def _distinct(shown: list[str], names: list[str]) -> None:
    """Two classes drawn under one name read as one (the tables refuse them too: ``class_labels``). Where the names
    given are distinct and only the drawn ones are not ("1" drawn as "class 1", a name given too), the error says so:
    "expected distinct names" alone was false of them."""
    from ..data.splits import apart_how, same_text  # noqa: PLC0415 - neuroview.data imports Lightning: only when drawn

    blank = [i for i, n in enumerate(names) if not n.strip()]
    if blank:  # drawn as no title: a panel of no class
        raise ValueError(f"class_names: expected a name that prints for every class, got {names[blank[0]]!r} for class "
                         f"{blank[0]} (empty or only whitespace)")
    if len(set(shown)) == len(shown):
        pair = same_text(shown)  # "cat" and "cat ", NFC and NFD "café": two classes drawn under one name
        if pair is not None:
            raise ValueError(f"class_names: expected names that print apart, got {pair[0]!r} and {pair[1]!r}: "
                             f"{apart_how(*pair)}")
        return
    why = ""
    if len(set(names)) == len(names):
        i = next(i for i, s in enumerate(shown) if shown.count(s) > 1 and s != names[i])
        other = next(names[j] for j, s in enumerate(shown) if s == shown[i] and j != i)
        why = (f", drawn as {shown}: {names[i]!r} is drawn as {shown[i]!r} (a name that is a number gets the prefix "
               f"'class ', where alone it would read as a tick value), which {other!r} already is; rename one")
    raise ValueError(f"class_names: expected distinct names, got {names}{why}")


def _is_number(s: str) -> bool:
    """Whether the class name ``s`` reads as a number by the data's rule (:func:`neuroview.data.splits.label_number`:
    ASCII digits as written), so that the plots prefix "class " where the data reads a number. Python's ``float`` drew
    "1_0", "inf" and "١", text labels to the data, as "class 1_0", "class inf" and "class ١"."""
    from ..data.splits import label_number  # noqa: PLC0415 - neuroview.data imports Lightning: only when names are drawn

    return label_number(s) is not None


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
