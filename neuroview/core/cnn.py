"""NeuroView-CNN: every unit's code, averaged over positions, into one global linear classifier.

>>> import torch, neuroview as nv
>>> from torch import nn
>>> cnn = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Conv2d(8, 16, 3), nn.ReLU())
>>> net = nv.NeuroViewCNN(cnn, num_classes=10, input_shape=(1, 8, 8)).eval()
>>> net(torch.randn(4, 1, 8, 8)).shape
torch.Size([4, 10])
>>> exp = net.explain(torch.randn(4, 1, 8, 8))
>>> exp.contributions.shape, exp.units[8]
(torch.Size([4, 10, 24]), ('3', 0))
"""

from __future__ import annotations

import difflib
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._factory import factory_kwargs
from .explanation import CNNExplanation
from .quantize import QUANTIZERS, ACTIVATIONS, breakpoints, code_map, is_activation, mean_code


@dataclass(frozen=True)
class Site:
    """One call of a module during the backbone's forward pass."""

    name: str  # unique: module name, with ':k' for the k-th extra call of the same module
    module: str  # the module's name in the backbone
    channels: int  # number of units
    points: tuple[float, ...]  # region breakpoints of the code
    from_input: bool  # code from the module's input (activations) or its output (named modules)


class _StopForward(Exception):
    """Raised once the last site is captured: nothing after it takes part in the decision."""


class _Recorder:
    """Collects the per-site codes of one forward pass, in call order."""

    def __init__(self, net: "NeuroViewCNN", maps: bool, discover: bool):
        self.net, self.maps, self.discover = net, maps, discover
        self.codes: list[Tensor] = []
        self.code_maps: list[Tensor] = []
        self.found: list[Site] = []
        self.calls: dict[str, int] = {}

    def record(self, module_name: str, module: nn.Module, z: Tensor, from_input: bool, output: Tensor | None) -> None:
        net = self.net
        k = len(self.codes)
        calls = self.calls.get(module_name, 0)
        self.calls[module_name] = calls + 1
        if not isinstance(z, Tensor) or z.dim() < 2:
            raise ValueError(f"site {module_name!r}: expected a tensor of shape [B, C, ...], got {_describe(z)}")
        if self.discover:
            name = module_name if calls == 0 else f"{module_name}:{calls}"
            pts = breakpoints(module) if from_input else (0.0,)
            self.found.append(Site(name, module_name, z.shape[1], pts, from_input))
            site = self.found[-1]
        else:
            if k >= len(net.sites) or net.sites[k].module != module_name or net.sites[k].channels != z.shape[1]:
                expect = net.sites[k] if k < len(net.sites) else "no more sites"
                raise RuntimeError(
                    f"backbone: its forward pass took another path than when it was wrapped: call {k} was "
                    f"{module_name!r} with {z.shape[1]} channels, expected {expect}"
                )
            site = net.sites[k]
        if net.quantizer == "none":
            src = output if from_input else z
            self.codes.append(src.flatten(2).mean(-1) if src.dim() > 2 else src)
            if self.maps:
                self.code_maps.append(src.detach().clone())
        else:
            self.codes.append(mean_code(z, site.points, net.quantizer, net.tau))
            if self.maps:
                self.code_maps.append(code_map(z.detach(), site.points, net.quantizer, net.tau))
        if not self.discover and net.stop_early and len(self.codes) == len(net.sites):
            raise _StopForward


def _describe(v) -> str:
    return f"tensor of shape {tuple(v.shape)}" if isinstance(v, Tensor) else type(v).__name__


class NeuroViewCNN(nn.Module):
    """Wrap a CNN (or MLP) so that one linear classifier over all unit codes decides.

    Args:
        backbone: any ``nn.Module``; it is used as is and never modified (hooks live only
            for the duration of a forward pass).
        num_classes: number of classes, at least 2.
        layers: names of the modules whose calls are the sites. Default: every activation
            module (see :data:`neuroview.core.quantize.ACTIVATIONS`). For an activation module the
            code comes from its input (the pre-activation); for any other module (e.g. a
            BatchNorm) from its output.
        quantizer: ``"hard"`` (the default: the region code itself, the method's vector
            quantization, trained through a sigmoid straight-through gradient), ``"soft"``
            (``sigmoid(z / tau)``) or ``"none"`` (the activation output itself). The default
            was chosen by ``benchmarks/quantizers.py``: ``hard`` is within 1 point of the
            standard CNN on digits and mnist1d while being the faithful on/off code; ``none``
            is the most accurate (README, "Which quantizer is the default").
        tau: temperature of the soft code and of the hard code's surrogate gradient.
        normalize: standardize the code vector with running statistics (a BatchNorm without
            affine). At eval it is folded into the classifier, so the decision stays exactly
            linear in the codes.
        input_shape: ``(C, *spatial)`` of one sample, for the dry run that finds the sites.
            Inferred from the first Conv/Linear module when omitted.
        stop_early: stop the backbone's forward pass after the last site, so the backbone's
            own head is never computed.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        layers: Sequence[str] | None = None,
        quantizer: str = "hard",
        tau: float = 1.0,
        normalize: bool = True,
        input_shape: Sequence[int] | None = None,
        stop_early: bool = True,
    ):
        super().__init__()
        if not isinstance(backbone, nn.Module):
            raise TypeError(f"backbone: expected an nn.Module, got {type(backbone).__name__}")
        if isinstance(backbone, NeuroViewCNN):
            raise TypeError("backbone: already a NeuroViewCNN; wrap its .backbone instead")
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes: expected an int >= 2, got {num_classes!r}")
        if quantizer not in QUANTIZERS:
            raise ValueError(f"quantizer: expected one of {QUANTIZERS}, got {quantizer!r}")
        if not tau > 0:
            raise ValueError(f"tau: expected a positive number, got {tau!r}")
        self.backbone = backbone
        self.num_classes = num_classes
        self.quantizer = quantizer
        self.tau = float(tau)
        self.stop_early = stop_early
        self.check_finite = True
        # Optional (codes [B, U], code maps) -> (codes, code maps), applied after every capture;
        # neuroview.attribution.faithfulness.ablate_units sets it, for the duration of a `with`, so that a
        # removed unit's own code is 0 whatever the quantizer and the site kind.
        self._codes_hook = None
        self._targets = self._find_targets(layers)
        self.input_shape = tuple(int(s) for s in input_shape) if input_shape is not None else _infer_input_shape(backbone)
        self.sites: list[Site] = self._discover()
        self.num_units = sum(s.channels for s in self.sites)
        self.norm = nn.BatchNorm1d(self.num_units, affine=False) if normalize else None
        self.classifier = nn.Linear(self.num_units, num_classes)

    # ----------------------------------------------------------------- sites
    def _find_targets(self, layers: Sequence[str] | None) -> list[tuple[str, nn.Module, bool]]:
        named = dict(self.backbone.named_modules())
        if layers is None:
            found = [(n, m, True) for n, m in named.items() if n and is_activation(m)]
            if is_activation(self.backbone):
                found.insert(0, ("", self.backbone, True))
            if not found:
                raise ValueError(
                    "backbone: found no activation module (looked for "
                    f"{', '.join(sorted(t.__name__ for t in ACTIVATIONS))}). If it calls functional "
                    "activations such as F.relu, replace them by modules (nn.ReLU()), or pass "
                    "layers=[...] naming the modules whose outputs to quantize."
                )
            return found
        if isinstance(layers, str) or not len(layers):
            raise ValueError(f"layers: expected a non-empty list of module names, got {layers!r}")
        out = []
        for name in layers:
            if name not in named:
                close = difflib.get_close_matches(str(name), [n for n in named if n], n=3)
                hint = f"; did you mean {close}?" if close else ""
                raise ValueError(f"layers: no module named {name!r} in backbone{hint}")
            out.append((name, named[name], is_activation(named[name])))
        return out

    @contextmanager
    def _capture(self, maps: bool = False, discover: bool = False) -> Iterator[_Recorder]:
        rec = _Recorder(self, maps, discover)
        handles = []
        for name, module, from_input in self._targets:
            if from_input and self.quantizer != "none":
                def pre(mod, args, name=name):
                    rec.record(name, mod, args[0] if args else None, True, None)
                handles.append(module.register_forward_pre_hook(pre))
            else:
                def post(mod, args, output, name=name, from_input=from_input):
                    z = args[0] if from_input and args else output
                    rec.record(name, mod, z, from_input, output)
                handles.append(module.register_forward_hook(post))
        try:
            yield rec
        finally:
            for h in handles:
                h.remove()

    def _discover(self) -> list[Site]:
        modes = {m: m.training for m in self.backbone.modules()}
        x = torch.zeros(2, *self.input_shape, **factory_kwargs(self.backbone))
        try:
            self.backbone.eval()
            with torch.no_grad(), self._capture(discover=True) as rec:
                try:
                    self.backbone(x)
                except Exception as e:
                    raise ValueError(
                        f"input_shape: the dry run of the backbone on a zero input of shape {tuple(x.shape)} failed "
                        f"({type(e).__name__}: {e}); pass input_shape=(C, *spatial) of one sample"
                    ) from e
        finally:
            for m, mode in modes.items():
                m.train(mode)
        if not rec.found:
            raise ValueError(f"layers: none of the modules {[n for n, _, _ in self._targets]} was called in the forward pass")
        return rec.found

    # --------------------------------------------------------------- forward
    def _check_input(self, x: Tensor) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(f"x: expected a torch.Tensor, got {type(x).__name__}")
        want = len(self.input_shape) + 1
        if x.dim() != want:
            dims = "[B, " + ", ".join(["C"] + [f"D{i}" for i in range(1, want - 1)]) + "]"
            raise ValueError(f"x: expected a tensor of rank {want} {dims} like (B, {', '.join(map(str, self.input_shape))}), got shape {tuple(x.shape)}")
        if x.shape[0] == 0:
            raise ValueError(f"x: expected a non-empty batch, got shape {tuple(x.shape)}")
        if x.shape[1] != self.input_shape[0]:
            raise ValueError(f"x: expected {self.input_shape[0]} channels at dim 1, got shape {tuple(x.shape)}")
        p = next(self.parameters(), None)
        # under autocast the ops cast for themselves; otherwise PyTorch's own error names neither x nor the fix
        if p is not None and x.dtype != p.dtype and not torch.is_autocast_enabled(x.device.type):
            raise TypeError(f"x: expected dtype {p.dtype} (the model's parameters), got {x.dtype}; convert x (x.to({p.dtype})) or the model")
        if self.check_finite and x.is_floating_point() and not torch.isfinite(x).all():
            bad = (~torch.isfinite(x)).sum().item()
            raise ValueError(f"x: contains NaN or Inf ({bad} of {x.numel()} values); clean the input first")

    def _codes(self, x: Tensor, maps: bool = False) -> tuple[Tensor, list[Tensor]]:
        self._check_input(x)
        with self._capture(maps=maps) as rec:
            try:
                self.backbone(x)
            except _StopForward:
                pass
        if len(rec.codes) != len(self.sites):
            raise RuntimeError(f"backbone: its forward pass called {len(rec.codes)} sites, expected {len(self.sites)}")
        codes, maps = torch.cat(rec.codes, dim=1), rec.code_maps
        if self._codes_hook is not None:
            codes, maps = self._codes_hook(codes, maps)
        return codes, maps

    def codes(self, x: Tensor) -> Tensor:
        """``[B, U]``: the code vector ``c(x)`` the global classifier reads."""
        return self._codes(x)[0]

    def effective_classifier(self) -> tuple[Tensor, Tensor]:
        """``(W [C, U], b [C])`` with ``logits == codes @ W.T + b`` in eval mode (normalization folded in)."""
        w, b = self.classifier.weight, self.classifier.bias
        if self.norm is None:
            return w, b
        scale = torch.rsqrt(self.norm.running_var + self.norm.eps)
        w = w * scale
        return w, b - w @ self.norm.running_mean

    def head(self, codes: Tensor) -> Tensor:
        """Logits from codes: batch statistics while training, the folded linear map at eval."""
        if self.training and self.norm is not None:
            return self.classifier(self.norm(codes))
        w, b = self.effective_classifier()
        return F.linear(codes, w, b)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self._codes(x)[0])

    # ------------------------------------------------------------ explaining
    @torch.no_grad()
    def explain(self, x: Tensor, *, maps: bool = False) -> CNNExplanation:
        """Exact per-unit explanation of ``x``, computed in eval mode in one forward pass.

        ``contributions[b, c, u] = W[c, u] * codes[b, u]`` and
        ``contributions.sum(-1) + bias == logits == net.eval()(x)``. With ``maps=True`` the
        per-position code maps are kept for :meth:`CNNExplanation.spatial_map`.
        """
        was_training = self.training
        self.eval()
        try:
            codes, cmaps = self._codes(x, maps=maps)
        finally:
            self.train(was_training)
        w, b = self.effective_classifier()
        return CNNExplanation(
            logits=F.linear(codes, w, b),
            bias=b.detach().clone(),
            contributions=codes[:, None, :] * w[None],
            codes=codes,
            units=self.units,
            site_slices=self.site_slices,
            code_maps=dict(zip((s.name for s in self.sites), cmaps)) if maps else None,
            weight=w.detach().clone(),
        )

    @property
    def units(self) -> list[tuple[str, int]]:
        """``(site name, channel)`` of every unit, in code-vector order."""
        return [(s.name, c) for s in self.sites for c in range(s.channels)]

    @property
    def site_slices(self) -> dict[str, slice]:
        out, start = {}, 0
        for s in self.sites:
            out[s.name] = slice(start, start + s.channels)
            start += s.channels
        return out

    @torch.no_grad()
    def unit_importance(self, standardized: bool = False) -> Tensor:
        """``[C, U]`` global unit-class weights.

        By default the effective weight ``W[c, u]`` of each unit's code, the one with
        ``contributions = W * codes``. Codes of different layers vary on very different scales,
        so to *rank* units use ``standardized=True``: the weight times the running standard
        deviation of the unit's code, i.e. how much the logit moves when the code moves by one
        typical amount (equal to the classifier's own weight when ``normalize=True``).
        """
        w = self.effective_classifier()[0].detach().clone()
        if standardized and self.norm is not None:
            w = w * torch.sqrt(self.norm.running_var + self.norm.eps)
        return w

    @torch.no_grad()
    def site_importance(self, standardized: bool = True) -> Tensor:
        """``[C, S]`` sum of absolute unit weights per site: how much of each class each site carries."""
        w = self.unit_importance(standardized).abs()
        return torch.stack([w[:, s].sum(-1) for s in self.site_slices.values()], -1)

    def top_units(self, k: int = 5, standardized: bool = True) -> list[list[tuple[str, int, float]]]:
        """Per class, the ``k`` units with the largest weight: ``(site, channel, weight)``."""
        w = self.unit_importance(standardized)
        vals, idx = w.topk(min(k, w.shape[1]), dim=1)
        units = self.units
        return [[(*units[i], v) for i, v in zip(ir, vr)] for ir, vr in zip(idx.tolist(), vals.tolist())]

    def unwrap(self) -> nn.Module:
        """The backbone, exactly as it was given (no hooks are left on it)."""
        return self.backbone

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, quantizer={self.quantizer!r}, tau={self.tau}, "
                f"sites={len(self.sites)}, units={self.num_units}, input_shape={self.input_shape}")


def _infer_input_shape(backbone: nn.Module) -> tuple[int, ...]:
    sizes = {nn.Conv1d: 64, nn.Conv2d: 32, nn.Conv3d: 16}
    for m in backbone.modules():
        if isinstance(m, (nn.Flatten, nn.Unflatten)):
            break
        for kind, size in sizes.items():
            if isinstance(m, kind):
                return (m.in_channels, *[size] * (int(kind.__name__[-2]) ))
        if isinstance(m, nn.Linear):
            return (m.in_features,)
    raise ValueError(
        "input_shape: could not infer it from the backbone (its first layer is not a Conv or Linear); "
        "pass input_shape=(C, *spatial) of one sample"
    )
