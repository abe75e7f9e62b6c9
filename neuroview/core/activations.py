"""Which modules are activations, and where their affine regions break.

One registry serves the built-in cases and the user's: ``register_activation(cls,
breakpoints=(0.0,))`` adds a class, and PyTorch's own activation classes are registered the same
way below. The ecosystem's classes (timm's ``GELU``, ``Swish``, ``HardSwish``, ...; Hugging Face's
``GELUActivation``, ...) are recognised by module and class name, so neither timm nor transformers
is ever imported. A parameter-free module whose class name looks like an activation but that is
in no table is reported as left out (see :func:`looks_like_activation`), never silently taken.

Imports only torch.
"""

from __future__ import annotations

import re

from torch import nn

#: class -> region breakpoints of its code (the number of breakpoints below z is the code).
_REGISTRY: dict[type, tuple[float, ...]] = {}


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
    points = tuple(float(p) for p in breakpoints)
    if not points or list(points) != sorted(set(points)):
        raise ValueError(f"breakpoints: expected a non-empty, increasing tuple of numbers, got {breakpoints!r}")
    _REGISTRY[cls] = points
    return cls


for _cls in (nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.CELU, nn.SELU, nn.GELU, nn.SiLU, nn.Mish,
             nn.Softplus, nn.Tanh, nn.Sigmoid):
    register_activation(_cls, (0.0,))  # smooth ones take the breakpoint of the ReLU they smooth
register_activation(nn.Hardswish, (-3.0, 3.0))
register_activation(nn.Hardsigmoid, (-3.0, 3.0))
# nn.Hardtanh (and nn.ReLU6, its subclass) read their breakpoints off the instance, see breakpoints()
register_activation(nn.Hardtanh, (-1.0, 1.0))

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


def _lookup(module: nn.Module) -> tuple[float, ...] | None:
    for kind in type(module).__mro__:
        if kind in _REGISTRY:
            return _REGISTRY[kind]
        key = (kind.__module__.split(".", 1)[0], kind.__name__)
        if key in ECOSYSTEM:
            return ECOSYSTEM[key]
    return None


def is_activation(module: nn.Module) -> bool:
    """Whether ``module`` is a registered (or ecosystem) activation, i.e. a site by default."""
    return _lookup(module) is not None


def breakpoints(module: nn.Module) -> tuple[float, ...]:
    """Region breakpoints of an activation module (``(0.0,)`` for any other module)."""
    if isinstance(module, nn.Hardtanh):  # ReLU6 is a Hardtanh too, with its own bounds
        return (float(module.min_val), float(module.max_val))
    return _lookup(module) or (0.0,)


def looks_like_activation(module: nn.Module) -> bool:
    """A parameter-free leaf whose class name reads like an activation (``GLU``, ``Softsign``,
    a user's ``MyReLU``, ...) but that no table knows: reported when wrapping, never a site."""
    if is_activation(module) or any(True for _ in module.children()) or any(True for _ in module.parameters(recurse=False)):
        return False
    return bool(_ACT_NAME.search(type(module).__name__)) or type(module).__module__ == "torch.nn.modules.activation"
