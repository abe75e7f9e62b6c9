"""The classes a NeuroView network decides over: what its head says once it has one; and a NeuroView-CNN's head,
built for them once its units are known.

``num_classes`` was stored at construction, and a head put in place since for another task
(``net.classifier = nn.Linear(net.num_units, 5)``) left it stale: the forward pass and a CNN's ``explain`` used the new
head, while ``sparsify``, ``unit_gallery``, the readability and ablation checks and an RNN's ``explain`` read the old
count (the new classes' labels refused, or a bare reshape error). :data:`NUM_CLASSES` (and :func:`ensemble_classes`)
read the head instead; the count given to the constructor answers only while a lazy network has no head yet. A
property is a data descriptor: it is read before a value that a pickle made before it kept in the instance's
``__dict__``.

Imports only torch and core helpers.
"""

from __future__ import annotations

import operator

from torch import Tensor, nn

from ._utils import factory
from .head import CodeNorm
from .lazy_head import watch

__all__ = ["NUM_CLASSES", "build_cnn_head", "ensemble_classes", "global_head_width", "head_classes"]


def _width(fc, name: str) -> int:
    n = getattr(fc, "out_features", None)
    if isinstance(n, bool) or not hasattr(type(n), "__index__"):  # (not an AttributeError: nn.Module.__getattr__ next)
        raise TypeError(f"{name}: expected an nn.Linear whose out_features are the classes, got {type(fc).__name__}")
    return operator.index(n)  # an int, also where it was built with numpy's


def head_classes(net: nn.Module) -> int | None:
    """The classes ``net``'s head decides over (its classifier's ``out_features``; an RNN's ``step_shared`` must say
    the same), or None while it has none (a lazy network before its first batch, an ensemble without a global head)."""
    mods = net.__dict__.get("_modules", {})
    fc = mods.get("classifier", net.__dict__.get("classifier"))
    if fc is None:
        return None
    n, shared = _width(fc, "net.classifier"), mods.get("step_shared")
    if shared is not None and _width(shared, "net.step_shared") != n:
        raise ValueError(f"net.step_shared: the shared part of the weight decides over {shared.out_features} classes "
                         f"but net.classifier over {n}; replace both (net.step_shared = nn.Linear(net.num_features // "
                         f"net.steps, {n}, bias=False)), or drop the shared part (net.step_shared = None)")
    return n


def _get(net: nn.Module) -> int:
    n = head_classes(net)
    return n if n is not None else net.__dict__.get("_num_classes", net.__dict__.get("num_classes"))


def _set(net: nn.Module, value) -> None:
    n = head_classes(net)
    if n is not None and value != n:  # stored apart from the head, it was read by half the package
        raise ValueError(f"num_classes: the network's head (net.classifier) decides over {n} classes, got {value!r}; "
                         f"to change them put a head of {value!r} classes in its place: net.classifier = "
                         f"nn.Linear(net.classifier.in_features, {value!r})")
    net.__dict__["_num_classes"] = value


NUM_CLASSES = property(_get, _set, doc="The classes the head decides over (the constructor's count before it is built).")


def set_ensemble_classes(ens: nn.Module, value, count) -> None:
    """``ens.num_classes = value``: refused where its head, or its members' (``count(member)``), decide over another."""
    n = ensemble_classes(ens, count)
    if n is not None and value != n and (head_classes(ens) is not None or ens.__dict__.get("_modules", {}).get("members")):
        raise ValueError(f"num_classes: the ensemble's members (or its global head) decide over {n} classes, got "
                         f"{value!r}; to change them give every member a head of {value!r} classes (members[i].classifier)")
    ens.__dict__["_num_classes"] = value


def ensemble_classes(ens: nn.Module, count) -> int:
    """An ensemble's classes: its global head's (nv.sparsify's), else its members' (``count(member)``), which must agree."""
    n = head_classes(ens)
    members = ens.__dict__.get("_modules", {}).get("members")
    if n is not None or members is None:
        return n if n is not None else ens.__dict__.get("_num_classes", ens.__dict__.get("num_classes"))
    counts = sorted({count(m) for m in members} - {None})  # standard members' too
    if len(counts) > 1:
        raise ValueError(f"members: their heads decide over different class counts ({counts}), and the ensemble "
                         "averages their logits; give every member a head of one count (members[i].classifier)")
    return counts[0] if counts else ens.__dict__.get("_num_classes")


def global_head_width(ens: nn.Module, codes: Tensor) -> Tensor:
    """``codes``, or an error where an ensemble's global head reads another width (weights loaded for other members
    with strict=False: a bare matmul error)."""
    if codes.shape[1] != ens.classifier.in_features:
        raise ValueError(f"members: their sites have {codes.shape[1]} units but the global head reads "
                         f"{ens.classifier.in_features}: its weights were made for other members")
    return codes


def build_cnn_head(net: nn.Module, num_units: int) -> None:
    """A NeuroView-CNN's normalization and classifier over ``num_units`` codes, for the constructor's class count
    (discovery's, or a checkpoint's shapes): a head that trains from its initial weights draws them from the caller's
    (seeded) generator; a head already there must read ``num_units``."""
    if net.classifier is None:
        kw = factory(net.backbone)
        net.norm = CodeNorm(num_units, floor=net._floor, **kw) if net._normalize else None
        net.classifier = nn.Linear(num_units, net.num_classes, **kw)
        # built on a first batch after net.eval(): new modules start in training mode, and a head
        # left there would batch-normalize (and move its statistics) inside an eval forward
        for m in [m for m in (net.norm, net.classifier) if m is not None]:
            m.train(net.training)
        watch(net)  # an optimizer made before this does not hold the head: said at its first step
    elif net.classifier.in_features != num_units:
        raise ValueError(f"backbone: its sites have {num_units} units but the classifier reads {net.classifier.in_features}: "
                         "the weights were made for another backbone, or the backbone took another path")
