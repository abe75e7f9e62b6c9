"""Which modules are activations, and where their affine regions break.

One registry serves the built-in cases and the user's: ``register_activation(cls,
breakpoints=(0.0,))`` adds a class, and PyTorch's own activation classes are registered the same
way below. The ecosystem's classes (timm's ``GELU``, ``Swish``, ``HardSwish``, ...; Hugging Face's
``GELUActivation``, ...) are recognised by module and class name, so neither timm nor transformers
is ever imported. A parameter-free module whose class name looks like an activation but that is
in no table is reported as left out (see :func:`looks_like_activation`), never silently taken; a
subclass of a known class with a ``forward`` of its own is read at its parent's breakpoints, with a
warning naming the registration that gives it its own (:func:`_inherited`).

Imports only torch and :mod:`neuroview.core.reach` (a warning's line: the user's).
"""

from __future__ import annotations

import math
import os
import numbers
import re
import warnings
import weakref

import torch
from torch import nn

from .reach import _user_level

#: class -> region breakpoints of its code (the number of breakpoints below z is the code).
_REGISTRY: dict[type, tuple[float, ...]] = {}
#: Registered classes whose instances carry their own breakpoints (``min_val``, ``max_val``), used where
#: such a class is the nearest registered one in a module's MRO (not for a user's registered subclass).
_FROM_INSTANCE: set[type] = set()
#: Bumped by every registration: a network's sites found before it read their breakpoints again (recorder).
_GENERATION = [0]
_PROCESS = int.from_bytes(os.urandom(8), "little")  # this process's: a pickled count is another's


def register_activation(cls: type, breakpoints: tuple[float, ...] = (0.0,)) -> type:
    """Make every module of class ``cls`` (and its subclasses) a site found by ``wrap``.

    ``breakpoints`` are where the activation's affine (or smooth) regions meet; the code of a
    unit is the number of breakpoints its pre-activation exceeds (``(0.0,)``: the on/off bit of a
    ReLU-like unit). Returns ``cls``, so it works as a decorator too.

    >>> class Square(nn.Module):
    ...     def forward(self, x): return x.relu() ** 2
    >>> _ = register_activation(Square, breakpoints=(0.0,))
    >>> is_activation(Square()), breakpoints(Square())
    (True, (0.0,))
    """
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        raise TypeError(f"cls: expected an nn.Module subclass, got {cls!r}")
    if cls in _FROM_INSTANCE:  # registered again, every nn.ReLU6 and Hardtanh(-2, 2) in the process took its points
        raise ValueError(f"cls: {cls.__name__}'s breakpoints are each instance's min_val and max_val (nn.ReLU6: 0 "
                         f"and 6); register a subclass of it for breakpoints of your own, got {cls!r}")
    _REGISTRY[cls] = _checked_points(breakpoints)
    _GENERATION[0] += 1  # a class registered again after wrapping: its sites follow (the points a fresh wrap takes)
    return cls


def _checked_points(breakpoints) -> tuple[float, ...]:
    """``breakpoints`` as a tuple of floats, or an error naming what was given: a NaN breakpoint made
    every code NaN, an infinite one a constant code, and a string was read digit by digit."""
    what = f"breakpoints: expected a non-empty, increasing tuple of finite numbers, got {breakpoints!r}"
    if isinstance(breakpoints, numbers.Real) or getattr(breakpoints, "ndim", None) == 0:
        breakpoints = (breakpoints,)  # a lone number (or 0-d array / tensor): one breakpoint
    if isinstance(breakpoints, (str, bytes)) or not hasattr(breakpoints, "__iter__"):
        raise TypeError(what)
    items = list(breakpoints)
    if any(isinstance(p, (str, bytes, bool)) for p in items):  # float("0.5") and float(True) would pass
        raise TypeError(what)
    try:
        points = tuple(float(p) for p in items)
    except (TypeError, ValueError, RuntimeError):  # RuntimeError: a many-element tensor, on some torch versions
        raise TypeError(what) from None
    if not points or not all(map(math.isfinite, points)) or list(points) != sorted(set(points)):
        raise ValueError(what)
    return points


for _cls in (nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.CELU, nn.SELU, nn.GELU, nn.SiLU, nn.Mish,
             nn.Softplus, nn.Tanh, nn.Sigmoid):
    register_activation(_cls, (0.0,))  # smooth ones take the breakpoint of the ReLU they smooth
register_activation(nn.Hardswish, (-3.0, 3.0))
register_activation(nn.Hardsigmoid, (-3.0, 3.0))
# nn.Hardtanh (and nn.ReLU6, its subclass) read their breakpoints off the instance, see breakpoints()
_REGISTRY[nn.Hardtanh] = (-1.0, 1.0)
_FROM_INSTANCE.add(nn.Hardtanh)

#: The ecosystem's activation classes, by (top-level package, class name): no import needed.
ECOSYSTEM: dict[tuple[str, str], tuple[float, ...]] = {
    **{("timm", n): (0.0,) for n in ("GELU", "GELUTanh", "QuickGELU", "Swish", "SwishMe", "SwishJit", "Mish", "MishMe",
                                     "MishJit", "Sigmoid", "Tanh", "PReLU", "SiLU", "ReLU", "LeakyReLU")},
    **{("timm", n): (-3.0, 3.0) for n in ("HardSwish", "HardSwishMe", "HardSwishJit", "HardSigmoid", "HardSigmoidMe",
                                          "HardSigmoidJit")},
    **{("timm", n): (-2.0, 0.0) for n in ("HardMish", "HardMishMe", "HardMishJit")},  # 0.5 x clamp(x + 2, 0, 2)
    **{("transformers", n): (0.0,) for n in ("GELUActivation", "NewGELUActivation", "FastGELUActivation",
                                             "QuickGELUActivation", "SiLUActivation", "MishActivation",
                                             "GELUTanh", "PytorchGELUTanh", "AccurateGELUActivation")},
}

_ACT_NAME = re.compile(r"relu|gelu|swish|silu|sigmoid|tanh|mish|elu$|softplus|glu|act(ivation)?$|hard", re.I)


def _nearest(module: nn.Module) -> tuple[type | None, tuple[float, ...] | None]:
    """The nearest class in ``module``'s MRO that a table knows, and its breakpoints (``None, None``: none)."""
    for kind in type(module).__mro__:
        if kind in _REGISTRY:
            return _inherited(type(module), kind), _REGISTRY[kind]
        key = (kind.__module__.split(".", 1)[0], kind.__name__)
        if key in ECOSYSTEM:
            return _inherited(type(module), kind), ECOSYSTEM[key]
    return None, None


#: torch's own subclasses with a forward of their own that compute their parent's function (on quantized tensors)
_SAME_FUNCTION = {("torch.ao.nn.quantized.modules.activation", n) for n in ("ELU", "Hardswish", "LeakyReLU", "Sigmoid")}
_NAMED: "weakref.WeakSet[type]" = weakref.WeakSet()  # the classes warned of (once each)


def _inherited(cls: type, kind: type) -> type:
    """``kind``, the nearest known class of ``cls``, whose breakpoints ``cls`` is read at: said once per class where
    ``cls`` computes its own forward (its pieces may meet elsewhere: ``F.relu(x - 1)`` in an ``nn.ReLU`` subclass)."""
    if (cls is kind or cls.forward is kind.forward or torch.compiler.is_compiling() or cls in _NAMED
            or (cls.__module__, cls.__name__) in _SAME_FUNCTION):  # (compiled: a Hardtanh's bounds are read each pass)
        return kind
    _NAMED.add(cls)
    points = "(its min_val and max_val)" if kind in _FROM_INSTANCE else (_REGISTRY.get(kind) or ECOSYSTEM.get(
        (kind.__module__.split(".", 1)[0], kind.__name__)))
    warnings.warn(f"wrap: {cls.__name__} subclasses {kind.__name__} but has its own forward, so NeuroView cannot tell "
                  f"where its affine pieces meet: its codes are read at {kind.__name__}'s breakpoints {points}; if they "
                  f"are not its own, register it before wrapping, nv.register_activation({cls.__name__}, "
                  "breakpoints=(...)) (where its pieces meet), which silences this", stacklevel=_user_level())
    return kind


def _lookup(module: nn.Module) -> tuple[float, ...] | None:
    return _nearest(module)[1]


def is_activation(module: nn.Module) -> bool:
    """Whether ``module`` is a registered (or ecosystem) activation, i.e. a site by default."""
    return _lookup(module) is not None


def breakpoints(module: nn.Module) -> tuple[float, ...]:
    """Region breakpoints of an activation module (``(0.0,)`` for any other module)."""
    kind, points = _nearest(module)
    # ReLU6 is a Hardtanh too, with its own bounds; a user's registered Hardtanh subclass keeps its breakpoints
    if kind in _FROM_INSTANCE:
        return (float(module.min_val), float(module.max_val))
    return points or (0.0,)


def generation() -> tuple[int, int]:
    """``(this process, how many registrations it has made)``: another count than a network's sites were read at, in
    this process, and the registry may give them other breakpoints; another process's (a network unpickled here) says
    nothing of this registry, whose breakpoints its head was not trained on."""
    return _PROCESS, _GENERATION[0]


def points_now(module: nn.Module, points: tuple[float, ...]) -> tuple[float, ...]:
    """``points``, the breakpoints of the site of the activation ``module`` when they were last read, as ``module`` has
    them now: an ``nn.Hardtanh``'s (``nn.ReLU6``'s) are its ``min_val`` and ``max_val``, which a clip schedule sets
    after wrapping. Read at each pass: for any other module one ``isinstance``, for a Hardtanh two attribute reads;
    ``points`` itself where they are unchanged."""
    if not isinstance(module, nn.Hardtanh) or _nearest(module)[0] not in _FROM_INSTANCE:
        return points
    now = (module.min_val, module.max_val)  # floats (a 0-d tensor: read as Hardtanh's forward reads it)
    return points if now == points else (float(now[0]), float(now[1]))


def looks_like_activation(module: nn.Module) -> bool:
    """A parameter-free leaf whose class name reads like an activation (``GLU``, ``Softsign``,
    a user's ``MyReLU``, ...) but that no table knows: reported when wrapping, never a site."""
    if is_activation(module) or any(True for _ in module.children()) or any(True for _ in module.parameters(recurse=False)):
        return False
    return bool(_ACT_NAME.search(type(module).__name__)) or type(module).__module__ == "torch.nn.modules.activation"
