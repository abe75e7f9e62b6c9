"""An explanation's ``bias`` against a baseline: the baseline's logit ``b + W baseline``, kept so through edits.

Contributions against a baseline are ``W (codes - baseline)``, so they sum to the logit only with ``b + W baseline``,
where ``b`` is the head's own bias. ``dataclasses.replace`` and ``exp.baseline = ...`` used to keep the bias they were
handed: another baseline, or a refitted head's ``weight``/``bias``/``logits`` (docs/ERRORS.md), then missed every logit
by ``W baseline`` without a word. So each bias an explanation settles on is recorded here with the head's own ``b``
and the weight and baseline it pairs with. A copy that carries that bias under another weight or baseline derives it
again; a bias of the caller's own is the baseline's logit as documented, or the head's own ``b`` where the logits say
so (they are ``codes W + b``, not ``(codes - baseline) W + b``). Where the logits fit neither (hand-built placeholders)
the code cannot tell, and the bias is taken as given. A pickled or deep-copied explanation (an RNN's too) records its
bias as the one it was built with. Given contributions (an RNN's ``time_importance``
too) do not follow a baseline: another one is refused naming it.

Imports only torch and core modules.
"""

from __future__ import annotations

import weakref

import torch
from torch import Tensor

from .explanation_given import GIVEN

__all__ = ["BaselineFollows", "settle", "assigned", "check_baseline"]

#: id(bias) -> (a weak reference to that bias, the head's own b (None: the bias itself), weak references to the weight
#: and baseline it pairs with)
_PAIRED: dict[int, tuple] = {}


def settle(exp) -> None:
    """At construction (``dataclasses.replace`` and ``load`` too): the baseline checked, and ``exp.bias`` the
    baseline's logit of this weight and baseline where the contributions are formed from them."""
    check_baseline(exp, exp.baseline)
    pair, given = _pair(exp.bias), _given(exp)
    moved = pair is not None and not (_alive(pair[2]) is exp.weight and _alive(pair[3]) is exp.baseline)
    if given and moved and _alive(pair[3]) is not exp.baseline:
        raise _refusal(given)
    if not _formed(exp) or given:
        return _register(exp, None)
    fit = _fit(exp) if moved or (pair is None and exp.baseline is not None) else None
    if moved and not (fit is not None and fit[0] <= fit[2]):  # a bias carried (replace) to another weight or
        # baseline, which no longer sums to the logits with them: the head's b, the baseline's logit under them
        exp.bias = pair[1] if exp.baseline is None else pair[1] + _wm(exp.weight, exp.baseline).to(pair[1].dtype)
        _register(exp, pair[1])
    elif pair is None:  # the caller's own: the baseline's logit, or a refitted head's b where its logits say so
        head = exp.bias if fit is not None and fit[1] <= fit[2] and fit[1] < fit[0] else None
        if head is not None:
            exp.bias = head + _wm(exp.weight, exp.baseline).to(head.dtype)
        _register(exp, head)
    # else an explanation's own bias under its own weight and baseline (or exact under these too): its record stands


def assigned(exp, value) -> None:
    """``exp.baseline = value``, before it is taken: checked, and the bias moved by ``W (value - baseline)``."""
    check_baseline(exp, value)
    old = exp.baseline
    if value is old or _same(value, old):  # the same values (moved to another device): nothing to derive
        return
    if given := _given(exp):
        raise _refusal(given)
    if _formed(exp):
        pair = _pair(exp.bias)
        head = pair[1] if pair is not None else exp.bias if old is None else exp.bias - _wm(exp.weight, old).to(exp.bias.dtype)
        object.__setattr__(exp, "bias", head if value is None else head + _wm(exp.weight, value).to(head.dtype))
        object.__setattr__(exp, "baseline", value)  # registered with it; the caller sets it again, the same object
        _register(exp, head)


def check_baseline(exp, value) -> None:
    """A ValueError naming ``baseline`` where ``value`` is no tensor of the codes' shape without the batch dim."""
    if value is None or (isinstance(value, Tensor) and exp.codes is None):
        return
    shape = list(exp.codes.shape[1:]) if exp.codes is not None else None
    if not isinstance(value, Tensor) or list(value.shape) not in (shape, [1, *shape]):
        got = f"shape {list(value.shape)}" if isinstance(value, Tensor) else repr(value)
        want = f"a tensor of shape {shape}" if shape is not None else "a tensor"
        raise ValueError(f"baseline: expected None or {want} (the codes' without the batch dim: one value per "
                         f"feature), got {got}")


def _refusal(given: list[str]) -> ValueError:
    what, unset = " and ".join(given), ", ".join(f"{g}=None" for g in given)
    return ValueError(f"baseline: this explanation's {what} were given (passed in or set), which a new baseline does "
                      f"not change; form them from the codes and weight first (exp.{given[0]} = None, or "
                      f"dataclasses.replace(exp, {unset}, baseline=...))")


def _given(exp) -> list[str]:
    return [public for public, private in GIVEN.items() if exp.__dict__.get(private) is not None]


def _formed(exp) -> bool:
    return exp.codes is not None and exp.weight is not None and isinstance(exp.bias, Tensor)


def _wm(weight: Tensor, baseline: Tensor) -> Tensor:
    """``W baseline`` ``[C]``, as ``explain`` adds it to the bias (autocast off)."""
    with torch.autocast(weight.device.type, enabled=False):
        return weight.flatten(1) @ baseline.reshape(-1).to(device=weight.device, dtype=weight.dtype)


def _fit(exp) -> tuple[float, float, float] | None:
    """How far the logits are from ``(codes - baseline) W + bias`` (the bias given is the baseline's logit) and from
    ``codes W + bias`` (it is the head's own ``b``), and the float tolerance of either: largest absolute differences.
    None where the values cannot be read (meta, compiling, an empty batch, shapes that do not pair); NaN never fits."""
    c, w, lg, b = exp.codes, exp.weight, exp.logits, exp.bias
    if (torch.compiler.is_compiling() or "meta" in (c.device.type, w.device.type) or not isinstance(lg, Tensor)
            or lg.numel() == 0 or c[0].numel() != w[0].numel() or tuple(lg.shape) != (len(c), len(w))
            or tuple(b.shape) != (len(w),)):
        return None
    dt = torch.promote_types(torch.promote_types(c.dtype, w.dtype), torch.float32)
    with torch.no_grad(), torch.autocast(c.device.type, enabled=False):
        c, w = c.flatten(1).to(dt), w.flatten(1).to(dt)
        raw, lg, b = c @ w.T, lg.to(device=c.device, dtype=dt), b.to(device=c.device, dtype=dt)
        wm = 0 if exp.baseline is None else _wm(w, exp.baseline)
        scale = 1 + lg.abs().amax() + c.norm(dim=1).amax() * w.norm(dim=1).amax()  # bounds every |term| summed
        errs = torch.stack([(lg - raw + wm - b).abs().amax(), (lg - raw - b).abs().amax(), 1e-4 * scale])
        return tuple(errs.nan_to_num(float("inf")).tolist())  # one sync


def _same(a, b) -> bool:
    if a is None or b is None or a.shape != b.shape or "meta" in (a.device.type, b.device.type):
        return False
    return torch.equal(a.to(device=b.device, dtype=b.dtype), b)


def _alive(ref):
    return None if ref is None else ref()


def _pair(bias) -> tuple | None:
    entry = _PAIRED.get(id(bias))
    if entry is None or entry[0]() is not bias:
        return None
    return entry if entry[1] is not None else (entry[0], bias, *entry[2:])  # the head's b is the bias itself


def _register(exp, head: Tensor | None) -> None:
    """Record ``exp.bias`` with the head's own ``b`` (derived here where None) and the weight and baseline."""
    bias = exp.bias
    if not isinstance(bias, Tensor):
        return
    if head is None:
        head = bias if exp.baseline is None or not _formed(exp) else bias - _wm(exp.weight, exp.baseline).to(bias.dtype)
    key = id(bias)

    def gone(ref, key=key, paired=_PAIRED):  # the bias is freed: its record with it (an id is reused only after); the
        if paired.get(key, (None,))[0] is ref:  # dict bound here: at exit the module's globals are None before the last
            del paired[key]

    ref = weakref.ref(bias, gone)  # never the bias itself in its record (None: it is the head's b), which kept it
    _PAIRED[key] = (ref, None if head is bias else head, _ref(exp.weight), _ref(exp.baseline))  # alive for good


def _ref(t):
    return None if t is None else weakref.ref(t)


class BaselineFollows:
    """Base of the explanation fields: ``exp.baseline = ...`` moves the bias with it (:func:`assigned`), or is refused
    naming ``baseline``; the dataclass ``__init__`` sets it as given (:func:`settle` follows)."""

    def __setattr__(self, name: str, value) -> None:
        if name == "baseline" and "baseline" in self.__dict__:
            assigned(self, value)
        object.__setattr__(self, name, value)

    def __setstate__(self, state: dict) -> None:  # pickled or deep-copied: its bias recorded as the one it was built with
        self.__dict__.update(state)  # (an RNN explanation's own __setstate__ ends here too)
        _register(self, None)
