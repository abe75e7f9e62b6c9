"""Post-hoc baselines that NeuroView's own importance is compared with: Captum adapters and permutation.

Each function returns importance scores in the layout :mod:`neuroview.attribution.faithfulness`
ranks: ``[B, U]`` per unit of a NeuroView-CNN (Captum's layer attribution of each site),
``[B, T]`` per input step of a sequence model (Captum's IntegratedGradients, permutation).

Imports: torch, :mod:`neuroview.core` and :mod:`neuroview.attribution.ablation`; captum only
inside the functions that call it (an optional extra, ``pip install 'neuroview[bench]'``).
"""

from __future__ import annotations

import contextlib
import importlib.util

import torch
from torch import Tensor, nn

from ..core.cnn import NeuroViewCNN
from ..core.edits import site_module
from ..core.quantize import as_units
from ..core.reach_graph import stand_ins
from ..core.recorder import sample_first
from .ablation import rnn_forward, split_lengths, step_baseline, valid_steps

__all__ = ["has_captum", "sites_called_once", "captum_unit_scores", "integrated_gradients_scores", "permutation_scores"]


def has_captum() -> bool:
    return importlib.util.find_spec("captum") is not None


def sites_called_once(net: NeuroViewCNN) -> str | None:
    """Why Captum cannot attribute to ``net``'s sites (a module called twice), or None when it can (or cannot tell yet:
    sites not found, :func:`captum_unit_scores` finds them on its batch and asks again)."""
    seen: dict[str, int] = {}
    for s in net.sites or ():  # a lazy wrap's: None died with "'NoneType' object is not iterable"
        seen[s.module] = seen.get(s.module, 0) + 1
    twice = [m for m, n in seen.items() if n > 1]
    return (f"modules {twice} are called more than once per forward pass, and Captum's layer attribution "
            "attaches to a module, not to one call") if twice else None


def captum_unit_scores(net: NeuroViewCNN, x: Tensor, y: Tensor, method: str, n_steps: int, batch_size: int) -> Tensor:
    """``[B, U]``: LayerGradientXActivation (``layer_grad_x_act``) or LayerConductance of each unit
    for the class ``y``, summed over the site's positions (in the site's own layout). The same under the caller's
    ``torch.inference_mode()`` and of an inference tensor ``x`` (:func:`_with_grad`)."""
    if net.sites is None:  # a lazy wrap finds its units on its first batch: this one's, as net(x) would
        with torch.inference_mode(False), torch.no_grad():
            net.discover(x[:batch_size])
        if why := sites_called_once(net):
            raise ValueError(f"method={method!r}: {why}; compare on a network whose activation modules are each called once")
    with _with_grad(net):
        return _unit_scores(net, x, y, method, n_steps, batch_size)


def _unit_scores(net: NeuroViewCNN, x: Tensor, y: Tensor, method: str, n_steps: int, batch_size: int) -> Tensor:
    from captum.attr import LayerConductance, LayerGradientXActivation  # noqa: PLC0415 - optional dependency

    modules = {s.module: site_module(net, s) for s in net.sites}  # the hooked objects: a name may have moved since
    # The code of an activation site (hard/soft) is read from the pre-activation, which also
    # feeds everything downstream: attributing to the layer input covers both paths.
    to_input = [s.from_input and net.quantizer != "none" for s in net.sites]
    per_site: list[list[Tensor]] = [[] for _ in net.sites]
    for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
        a = units = None  # the last chunk's attribution holds its graph, and with it that chunk's copy
        xb, yb = _plain(xb, yb)  # one chunk's copy at a time, and only of an inference tensor
        for k, s in enumerate(net.sites):
            layer = modules[s.module]
            if method == "layer_grad_x_act":
                a = LayerGradientXActivation(net, layer).attribute(xb, target=yb, attribute_to_layer_input=to_input[k])
            elif not _folded(s):
                a = LayerConductance(net, layer).attribute(
                    xb, target=yb, n_steps=n_steps, attribute_to_layer_input=to_input[k],
                    internal_batch_size=max(2 * len(yb), 512))  # Captum needs >= 2 x the batch here
            else:  # Captum splits the layer's dim 0 as (steps x samples): attributed on a sample-first view
                proxy, dim = nn.Identity(), [1]
                with _sample_first_view(net, s, layer, proxy, to_input[k], dim):
                    a = LayerConductance(net, proxy).attribute(xb, target=yb, n_steps=n_steps,
                                                               internal_batch_size=max(2 * len(yb), 512))
                per_site[k].append(a.sum(dim[0]).detach())  # over the positions of [B, C, N] or [B, N, C]
                continue
            a = a[0] if isinstance(a, (tuple, list)) else a
            # summed over the site's own positions, along its own unit and sample axes (tokens [B, N, C],
            # channels last, sequence-first): dim 1 is a token axis there, and N == C would pass unnoticed
            units, dim = as_units(sample_first(a, s, len(yb)), s.axis, len(yb))
            per_site[k].append(units.sum(dim).detach())
    return torch.cat([torch.cat(parts) for parts in per_site], 1)


def _plain(*tensors) -> list:
    """``tensors`` with each inference tensor as an ordinary copy (others, None too, as they are), for a gradient taken
    under the caller's ``torch.inference_mode()`` (:func:`_with_grad`): an inference tensor cannot be saved for backward.
    Called on one chunk at a time: copies of all of ``x`` (and of the IG baseline), held for the whole call and made
    outside inference mode too, took 441 MB at peak against 135 MB for a 305 MB ``x``."""
    with torch.inference_mode(False):
        return [t.clone() if isinstance(t, Tensor) and t.is_inference() else t for t in tensors]


@contextlib.contextmanager
def _with_grad(net: nn.Module):
    """Grad on while inside, whatever the caller's mode: ``torch.enable_grad()`` (Captum's own switch) cannot undo
    ``torch.inference_mode()`` (how Lightning runs test and predict), where every Captum method died with torch's bare
    "element 0 of tensors does not require grad"; a network made under it runs on ordinary copies of its tensors."""
    with torch.inference_mode(False), torch.enable_grad(), stand_ins(net, "net"):
        yield


def _folded(site) -> bool:
    """Whether ``site``'s tensor does not hold the samples alone on dim 0: sequence-first ``[N, B, C]``, positions
    folded in (``[B * k, N, C]``). Captum's LayerConductance reshaped its dim 0 as (steps x samples) there: a bare
    shape error, or silently wrong numbers where N happened to equal steps + 1."""
    return site.sample_dim != 0 or site.positions_first or site.folds > 1


@contextlib.contextmanager
def _sample_first_view(net: NeuroViewCNN, site, layer: nn.Module, proxy: nn.Module, to_input: bool, dim: list):
    """While inside, ``site``'s tensor (its module's input where ``to_input``, else its output) flows through
    ``proxy`` as its sample-first view ``[B, C, N]`` / ``[B, N, C]`` (:func:`as_units`; its positions' dim set in
    ``dim[0]``) and back to its own layout: the same numbers, with the samples on dim 0 of what ``proxy`` is called
    on. Ahead of the network's own hooks, so its code is read downstream of ``proxy`` too."""
    batch = [0]

    def through(t: Tensor) -> Tensor:
        b = batch[0]

        def flat(u: Tensor) -> Tensor:  # a permutation of u's elements
            v, dim[0] = as_units(sample_first(u, site, b), site.axis, b)
            return v

        order = flat(torch.arange(t.numel(), device=t.device).view(t.shape)).reshape(-1)
        back = torch.empty_like(order)
        back[order] = torch.arange(order.numel(), device=t.device)
        return proxy(flat(t)).reshape(-1)[back].view(t.shape)

    def pre(module, args):
        return (through(args[0]), *args[1:]) if args and isinstance(args[0], Tensor) else None

    def post(module, args, out):
        return through(out) if isinstance(out, Tensor) else None

    hooks = [net.register_forward_pre_hook(lambda m, args: batch.__setitem__(0, len(args[0]))),
             layer.register_forward_pre_hook(pre, prepend=True) if to_input
             else layer.register_forward_hook(post, prepend=True)]
    try:
        yield
    finally:
        for h in hooks:
            h.remove()


def integrated_gradients_scores(net: nn.Module, x: Tensor, y: Tensor, lengths, baseline, n_steps: int,
                                batch_size: int) -> Tensor:
    """``[B, T]``: Captum's IntegratedGradients of batch-first ``x`` from ``baseline``, summed over features.
    The baseline is formed once for all of ``x`` (a ``[B, T, F]`` tensor holds one series per sample of ``x``)
    and split into the same chunks. The same under the caller's ``torch.inference_mode()`` (:func:`_with_grad`)."""
    from captum.attr import IntegratedGradients  # noqa: PLC0415 - optional dependency

    ig = IntegratedGradients(lambda inp, ln=None: rnn_forward(net, inp, ln))
    parts, bases = [], step_baseline(x, baseline, lengths).split(batch_size)
    with _with_grad(net):
        for chunk in zip(x.split(batch_size), bases, y.split(batch_size), split_lengths(lengths, len(x), batch_size)):
            xb, base, yb, lb = _plain(*chunk)
            a = ig.attribute(xb, baselines=base.contiguous(), target=yb, n_steps=n_steps,
                             internal_batch_size=max(len(yb), 256), additional_forward_args=None if lb is None else (lb,))
            parts.append(a.sum(-1).detach())
            a = None  # its graph would keep this chunk's copies alive through the next chunk's call
        return torch.cat(parts)


@torch.no_grad()
def permutation_scores(net: nn.Module, x: Tensor, y: Tensor, lengths, seed: int, repeats: int, batch_size: int) -> Tensor:
    """``[B, T]``: the drop of the true-class logit when step t is swapped with the same step of
    other samples (a random permutation of the batch), averaged over ``repeats``. At step t only the
    samples whose step t is valid (within ``lengths``) are permuted among themselves: a padded step
    swapped in would be a deletion (to the padding's zeros, or NaN), not a permutation."""
    def true_logit(inp):
        ls = split_lengths(lengths, len(inp), batch_size)
        return torch.cat([rnn_forward(net, xb, lb).gather(1, yb[:, None])[:, 0]
                          for xb, yb, lb in zip(inp.split(batch_size), y.split(batch_size), ls)])

    g = torch.Generator().manual_seed(seed)
    base = true_logit(x)
    valid = valid_steps(x, lengths)
    out = torch.zeros(x.shape[:2], device=x.device)
    for _ in range(repeats):
        for step in range(x.shape[1]):
            rows = valid[:, step].nonzero().flatten()  # every sample without lengths: the whole batch
            perm = rows[torch.randperm(len(rows), generator=g).to(x.device)]
            xp = x.clone()
            xp[rows, step] = x[perm, step]
            out[:, step] += base - true_logit(xp)
    return out / repeats
