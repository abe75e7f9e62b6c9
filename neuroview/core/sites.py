"""Sites: the calls of activation modules whose pre-activations give the unit codes.

A site is one call of a module during the backbone's forward pass (a module called twice gives
``name`` and ``name:1``). Its units are the features of the layer that produced the
pre-activation, wherever they lie in memory: dim 1 of a conv map ``[B, C, *spatial]`` or the
last dim of a channels-last map ``[B, H, W, C]`` (ConvNeXt's MLP) or of tokens ``[B, N, C]``
(ViT, Swin, Mixer); its samples lie on dim 0 (positions may be folded in: windows
``[B * k, N, C]``) or elsewhere (sequence-first ``[T, B, C]``).

The site record lives here; how the axes are told is :mod:`neuroview.core.axes`, how the sites
are found :mod:`neuroview.core.discovery`, the recorder of one pass
:mod:`neuroview.core.recorder`, and the hooks on the backbone :mod:`neuroview.core.hooks`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Site:
    """One call of a module during the backbone's forward pass."""

    name: str  # unique: module name, with ':k' for the k-th extra call of the same module
    module: str  # the module's name in the backbone
    channels: int  # number of units
    points: tuple[float, ...]  # region breakpoints of the code
    from_input: bool  # code from the module's input (activations) or its output (named modules)
    axis: int = 1  # where the units lie in the sample-first pre-activation: 1 (channels first) or -1 (last dim)
    sample_dim: int = 0  # the pre-activation's dim that holds the samples (1 for sequence-first [T, B, C])
    positions_first: bool = False  # positions folded ahead of the samples on it: row t * B + b of [T * B, C]
    folds: int = 1  # positions folded into the sample dim when it was found: with 1 their order was never told
