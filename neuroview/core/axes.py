"""Where a site's samples and units lie, told from real layers and real batches, never guessed.

- **Sample axis**: the one dim of the pre-activation whose size follows the batch size, found by
  running discovery on two batch sizes (:func:`sample_dim`). It is dim 0 for ``[B, C, H, W]``
  and ``[B, N, C]``, dim 0 with positions folded in for windows (``[B * k, N, C]``, sample-major
  as a reshape of ``[B, k, ...]`` lays them), dim 1 for sequence-first ``[T, B, C]``; a call
  with no such dim (Swin-V2's position-bias MLP on a coordinate table) is not a site.
- **Unit axis** (1 or -1 of the sample-first view): where the width of the layer that produced
  the pre-activation fits (followed through pooling, crops, resizing and padding that keep that axis, and pure moves of dims:
  :mod:`neuroview.core.lineage`); else where the width of the layer that reads the activation's output
  fits, unless the tensor was a layer's map with its units on dim 1 before an op not followed (the reader
  takes another axis: a guess); else a clear error naming ``unit_axis=`` (:func:`unit_axis`). ``unit_axis[site]`` sets
  one call (``'act:1'``), ``unit_axis[module]`` each call of the module that has no key of its own
  (:func:`call_axis`); either is refused where it contradicts a producing layer's width (not the input's assumed one).
  A layer's units a pure move left on a middle dim are refused, unless a key names the axis the reading layer reads
  (an axial MLP's ``Linear(W)``: its inputs are the units, as the user says).

Imports only torch.
"""

from __future__ import annotations

import torch
from torch import nn

#: ``(feature count, natural unit axis)``: a layer's output width, or the width it reads; the axis is None where
#: the layer does not say (a LayerNorm subclass with a forward of its own, which may permute)
Width = tuple[int, int | None]


def produces(m: nn.Module) -> Width | None:
    """The width and natural axis of ``m``'s output, for the layers whose outputs carry units."""
    if isinstance(m, nn.modules.conv._ConvNd):
        return m.out_channels, 1
    if isinstance(m, nn.Linear) and not isinstance(m, nn.modules.lazy.LazyModuleMixin):
        return m.out_features, -1
    return _norm(m) or ((m.embedding_dim, -1) if isinstance(m, nn.Embedding) else None)


def produced(m: nn.Module, out) -> Width | None:
    """:func:`produces`, with the axis a LayerNorm subclass of its own forward does not say read off its output
    ``out``: the axis (1 or -1) along which ``(out - bias) / weight`` has mean 0 and variance about 1 at every
    position. CLIP's fp16-casting LayerNorm normalizes the last axis, torchvision's LayerNorm2d dim 1; where both
    dims fit and the output tells neither (or both), the axis stays unknown."""
    width = produces(m)
    if width is None or width[1] is not None or not isinstance(out, torch.Tensor) or out.dim() < 3:
        return width
    c, found = width[0], []
    w = m.weight.detach().double() if m.weight is not None else torch.ones(c, dtype=torch.float64, device=out.device)
    b = m.bias.detach().double() if getattr(m, "bias", None) is not None else torch.zeros_like(w)
    if bool((w == 0).any()):
        return width
    for axis in (1, -1):
        if out.shape[axis] != c:
            continue
        view = [1] * out.dim()
        view[axis] = c
        u = (out.detach().double() - b.view(view)) / w.view(view)
        mean, var = u.mean(axis), u.var(axis, unbiased=False)
        if bool((mean.abs() < 1e-3).all()) and bool(((var - 1).abs() < 0.05).all()):
            found.append(axis)
    return (c, found[0]) if len(found) == 1 else width


def consumes(m: nn.Module) -> Width | None:
    """The width and natural axis of what ``m`` reads (its input's units), for the same layers."""
    if isinstance(m, nn.modules.conv._ConvNd):
        return m.in_channels, 1
    if isinstance(m, nn.Linear) and not isinstance(m, nn.modules.lazy.LazyModuleMixin):
        return m.in_features, -1
    return _norm(m)


def _norm(m: nn.Module) -> Width | None:
    if isinstance(m, nn.modules.batchnorm._NormBase):  # BatchNorm*, InstanceNorm*
        return m.num_features, 1
    if isinstance(m, nn.GroupNorm):
        return m.num_channels, 1
    # LayerNorm([C, T]) normalizes several dims together: it does not say which one holds units
    if isinstance(m, nn.LayerNorm) and len(m.normalized_shape) == 1:
        # torchvision's and timm's LayerNorm2d permute [B, C, H, W] to normalize C last and back: a subclass with a
        # forward of its own says its width, not its axis (on C x C maps both fit, and -1 read the columns)
        return m.normalized_shape[0], -1 if type(m).forward is nn.LayerNorm.forward else None
    return None


class Axis(int):
    """A unit axis found with no key where the rule before 7b5a825 read another axis of as many features (``before``):
    a norm over another axis than its input's layer (``nn.LayerNorm(T)`` of a square conv map), whose steps a head
    saved then read. A load of a file that records no axes refuses it there (:mod:`neuroview.core.settings`)."""

    before: int | None = None


def fits(shape: tuple[int, ...], width: Width | None) -> int | None:
    """The axis (1 or -1) of ``shape`` that ``width`` says holds the units, if one fits (both fitting: the
    layer's natural axis, None where it has none)."""
    if width is None or len(shape) < 2:
        return None
    count, natural = width
    found = [d for d in (1, -1) if shape[d] == count]
    return (natural if len(found) == 2 else found[0]) if found else None


def unit_axis(name: str, shape: tuple[int, ...], producer: Width | None, consumer: Width | None,
              override: int | None, key: str | None = None, advice: str = "") -> int:
    """The unit axis (1 or -1) of the sample-first pre-activation of ``shape`` at site ``name``.

    The producing layer decides where its width fits (both dims fitting: its natural axis); when
    no layer produced the tensor (a concatenation, a reshape) or its width fits nowhere, the
    layer that reads the activation's output decides; else ``unit_axis=`` must. An override (``unit_axis[key]``,
    ``key`` the site's name by default) that puts the units where a producing layer's width does not fit, while the
    other axis alone fits it, is an error ending in ``advice`` (``producer``: None for the network's own input, whose
    dim 1 is assumed, never a layer's).
    """
    if override is not None:
        key = name if key is None else key
        axis = _given(override, key, shape)
        seen, n = fits(shape, producer), len(shape)
        # 8 columns of a 4-channel conv map read as its units: the explanation summed exactly and said nothing. On a
        # square map too: ``fits`` gives the layer's own axis there, or the one a pure move took it to (P6 finding 3).
        # Not on [B, C], whose dim 1 is its last; nor a norm's own axis beside its input's layer (its per-step weights:
        # nn.LayerNorm(T) over a conv map, whose steps heads saved before 7b5a825 read: review R1 findings 1 and 4)
        if seen is not None and seen % n != axis % n and fits(shape, getattr(producer, "norm", None)) != axis:
            where = (f"which fit dim {seen} only (dim {axis} holds {shape[axis]})" if shape[1] != shape[-1] else
                     f"which lie on dim {seen}, followed from that layer (dim {axis} holds as many, not its units)")
            raise ValueError(
                f"unit_axis: got {override!r} for site {name!r}{'' if key == name else f' (by its key {key!r})'}, "
                f"but its input has shape {tuple(shape)}, made by a layer with {producer[0]} features, {where}; "
                + (advice or f"leave {key!r} out of unit_axis: its axis is found"))
        return 1 if n == 2 else axis  # one axis of [B, C]: recorded as 1, as found, so the saved heads agree
    axis = told(shape, producer, consumer)
    if axis is not None:
        return axis
    both = lambda w: " (as many as dims 1 and -1 hold, and it does not say which)" if shape[1] == shape[-1] == w[0] else ""  # noqa: E731
    why = [f"the layer that produced it has {producer[0]} features{both(producer)}" if producer else "no layer produced it as it is",
           f"the layer that reads the output takes {consumer[0]}{both(consumer)}" if consumer else "no layer reads the output as it is"]
    raise ValueError(
        f"unit_axis: cannot tell where the units of site {name!r} lie: its input has shape {tuple(shape)}, "
        f"{why[0]} and {why[1]}; pass unit_axis={{{key or name!r}: 1 or -1}}{advice}"
    )


def _given(override, key: str, shape: tuple[int, ...]) -> int:
    """``unit_axis[key]`` checked, as 1 or -1: an int only (True and 1.0 equal 1 and were taken as axis 1; "-1"
    printed unquoted looked valid); the last dim by number (3 of a rank-4 input) is -1."""
    axis = None if isinstance(override, bool) or not hasattr(override, "__index__") else override.__index__()
    if axis not in (1, -1, len(shape) - 1):
        raise ValueError(f"unit_axis: expected a mapping of site name to 1 or -1, got {override!r} for site {key!r}")
    return 1 if axis == 1 else -1


def told(shape: tuple[int, ...], producer: Width | None, consumer: Width | None) -> int | None:
    """The unit axis the layers tell: where the producing layer's width fits, else the reading layer's; None where
    neither fits (a ``[B, C]`` input: 1)."""
    if len(shape) == 2:
        return 1
    for width in (producer, consumer):
        axis = fits(shape, width)
        if axis is not None:
            return axis
    return None


def call_axis(call, shape: tuple[int, ...], sd: int, overrides: dict, names: list[str], alias: bool = True) -> int:
    """The unit axis of discovery's call ``call`` (its sample-first input of ``shape``, samples on dim ``sd`` of the
    input; ``names``: the site names of every call of its module, in order).

    ``unit_axis[site]`` sets that call alone (``'act:1'``; ``'act:0'`` is the first call, site ``'act'``, unless
    ``alias`` is False: a module of the backbone is named ``'act:0'``, and the key is its);
    ``unit_axis[module]`` sets every call of the module that has no key of its own, as it always did (MiniRocket's
    ``{'act': 1}``, also where ``layers=['act:1']`` makes only a later call a site); else the layers tell
    (:func:`told`); else a clear error naming the key to pass. An override that contradicts a producing layer's
    width is refused (:func:`unit_axis`), naming the site's own key. Also an error where the layer that reads the
    output takes the last dim of a layer's map whose units were on dim 1 before an op not followed: the reader is
    no answer there; nor where a pure move took the layer's units to a middle dim (:func:`_refuse_middle`)."""
    producer = None if getattr(call, "assumed", False) else call.producer  # the input's dim 1: no layer's width
    site = call.name if call.calls else f"{call.module}:0" if alias else None
    key = site if site in overrides else call.module if call.module in overrides else None
    hint = call.hint if call.hint is not None and len(call.hint) == 2 else None  # (width, op, dim): a middle dim
    if hint is not call.hint and _middle(call, sd):  # a reader over dim 1 or the last dim is no answer: it reads positions
        reads = _reader_axis(shape, call.consumer)  # ... unless the key says so: an axial MLP's Linear(W) (review S1 #3)
        if key is None or reads is None or _given(overrides[key], key, shape) != reads:
            _refuse_middle(call, key, reads, site if len(names) > 1 and site is not None else call.name)
    if key is not None:
        advice = _own_key(call, key, names, fits(shape, producer), alias)
        return unit_axis(call.name, shape, producer, call.consumer, overrides[key], key, advice)
    axis = told(shape, call.producer, call.consumer)
    if axis is not None and not (call.producer is None and hint is not None and sd == 0 and axis != 1):
        return _before(axis, shape, call.producer)
    own = site if len(names) > 1 and site is not None else call.name  # 'act:0': the first call alone
    if axis is None and call.hint is not None and call.hint[1] == "sum" and len(call.hint) == 3:
        _refuse_sum(call, shape, own, _several(call, names))
    if axis is None:
        return unit_axis(call.name, shape, call.producer, call.consumer, None, own, _several(call, names))
    (count, _), op = hint  # a conv map, then torch.roll: the Linear reading the output over time is no answer
    raise ValueError(f"unit_axis: cannot tell where the units of site {call.name!r} lie: its input has shape "
                     f"{tuple(shape)}, the layer that produced it has {count} features on dim 1 before an op that "
                     f"may move them ({op}), and the layer that reads the output takes {call.consumer[0]} on dim -1; "
                     f"pass unit_axis={{{own!r}: 1 or -1}}{_several(call, names)}")


def _before(axis: int, shape: tuple[int, ...], producer) -> int:
    """``axis`` as an :class:`Axis` recording the axis the rule before 7b5a825 read, where that was another of as many
    features: a norm's own axis (:class:`~neuroview.core.lineage.Normed`) beside its input's layer (review S1 finding 2)."""
    old = fits(shape, getattr(producer, "norm", None))
    if old is None or old % len(shape) == axis % len(shape) or shape[old] != shape[axis]:
        return axis
    out = Axis(axis)
    out.before = old
    return out


def _middle(call, sd: int) -> bool:
    """Whether the layer's units that a pure move took to dim ``call.hint[2]`` of the call's input lie on a middle dim
    of its sample-first view (samples on dim ``sd``): on no axis a site reads."""
    d, n = call.hint[2], len(call.shape)
    return isinstance(d, int) and d != sd and (d + 1 if d < sd else d) not in (1, n - 1) and call.shape[d] == call.hint[0][0]


def _reader_axis(shape: tuple[int, ...], consumer) -> int | None:
    """The axis (1 or -1) the layer that reads a site's output reads its width on, where it fits there (a Linear: the
    last dim; a conv: dim 1); None where no layer reads it or its width fits no axis it reads."""
    if consumer is None:
        return None
    axes = [a for a in ((1, -1) if consumer[1] is None else (1 if consumer[1] == 1 else -1,)) if shape[a] == consumer[0]]
    return axes[0] if len(axes) == 1 else None


def _refuse_middle(call, key: str | None, reads: int | None = None, own: str | None = None) -> None:
    """The error for a site whose producing layer's units a pure move took to a middle dim (``[B, H, C, W]`` of
    ``transpose(1, 2)``): ``unit_axis`` can only read rows or columns there (P6 finding 4), or, said by a key, the
    inputs of the layer that reads the output (``reads``: its axis; an axial MLP's Linear(W), as wraps before b1769e3
    read them: review S1 finding 3)."""
    (count, _), op, d = call.hint
    given = (f" (unit_axis={{{key!r}: ...}} reads dim 1 or the last dim, which hold {call.shape[1]} and "
             f"{call.shape[-1]} positions, not its units)") if key is not None else ""
    out = "" if reads is None else (
        f"; or, to take the {call.consumer[0]} inputs of the layer that reads the output as its units (as wraps before "
        f"b1769e3 did: their saved heads load so), pass unit_axis={{{key or own or call.name!r}: {reads}}}")
    raise ValueError(f"unit_axis: the units of site {call.name!r} lie on no axis it reads: its input has shape "
                     f"{tuple(call.shape)}, and the {count} features of the layer that produced it lie on dim {d} after "
                     f"{op}{given}; NeuroView reads units on dim 1 or the last dim: move them there before the "
                     f"activation (e.g. .movedim({d}, -1)), or name other sites with layers=[...]{out}")


def _refuse_sum(call, shape: tuple[int, ...], key: str, several: str) -> None:
    """The error for a site whose input is a sum of two layers' maps whose widths lie on dim 1 and the last dim
    (``h + Linear(T)(h)`` of a conv map), read by no layer: either may be its units (review R1 finding 6)."""
    (a, _), _, (b, _) = call.hint
    raise ValueError(f"unit_axis: cannot tell where the units of site {call.name!r} lie: its input has shape "
                     f"{tuple(shape)}, a sum of a layer's map with {a} features on dim 1 and one with {b} on dim -1, "
                     f"and no layer reads the output as it is; pass unit_axis={{{key!r}: 1 (the {a}) or -1 (the {b})}}"
                     f"{several}")


def _several(call, names: list[str]) -> str:
    """What a site's key is where its module is called at several places (``names``: its calls' site names)."""
    if len(names) < 2:
        return ""
    return f" (site {call.name!r} alone: the key {call.module!r} of its module sets each of its calls {names})"


def _own_key(call, key: str, names: list[str], seen: int | None, alias: bool = True) -> str:
    """The advice after an override ``unit_axis[key]`` refused at ``call``: leave the key out, or give the call
    its own (``seen``: the axis its producing layer tells) where the module's key, which reaches each of its calls,
    was meant for other calls."""
    if key != call.module or len(names) < 2:
        return f"leave {key!r} out of unit_axis: its axis is found"
    if call.calls:
        return (f"the key {key!r} of module {key!r} sets each of its calls {names}: give this call a key of its own "
                f"beside it, unit_axis={{{call.name!r}: {seen}}}")
    first = f", or give this first call its own, unit_axis={{{key + ':0'!r}: {seen}}}" if alias else ""
    return (f"the key {key!r} of module {key!r} sets each of its calls {names}, this first one too: leave {key!r} out "
            f"of unit_axis and give the calls that need one a key of their own ({names[1]!r}, ...){first}")


def sample_dim(name: str, small: tuple[int, ...], large: tuple[int, ...], b_small: int, b_large: int,
               advice: str = "leave it out with layers=[...]") -> int | None:
    """The dim of a site's input that holds the samples, from its shapes at two batch sizes: the
    one dim that grows in proportion to the batch (``B * k`` rows, ``k`` positions folded in).
    None when no dim follows the batch (a table computed once per pass)."""
    if len(small) != len(large):
        raise ValueError(f"site {name!r}: its input has rank {len(small)} for {b_small} samples and {len(large)} for {b_large}")
    moved = [d for d, (a, b) in enumerate(zip(small, large)) if a != b]
    if not moved:
        return None
    d = moved[0]
    if len(moved) > 1 or small[d] % b_small or large[d] * b_small != small[d] * b_large:
        raise ValueError(
            f"site {name!r}: cannot tell which dim of its input holds the samples: shape {tuple(small)} for "
            f"{b_small} samples, {tuple(large)} for {b_large}; {advice}"
        )
    return d
