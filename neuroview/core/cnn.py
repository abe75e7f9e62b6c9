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

import itertools
import math
from typing import Mapping, Sequence

import torch
from torch import Tensor, nn

from ._utils import describe, explaining, extension, factory, own_rng, positive_int, restore_modes, rnn_pointer
from .discovery import DISCOVERING, find_sites, probe_input
from .explanation import CNNExplanation
from .readable import resolve_baseline
from .head import FLOOR, adopt_norm, checked_floor, constant_features, decide, fold, folded_logits, head_dtype, load_fits, refuse_single
from .hooks import install, uninstall
from .guards import Guarded
from .head_classes import NUM_CLASSES, build_cnn_head
from . import edits, head_stats, load_checks, own_decision, settings, site_notes, unseen
from .reach import freeze_unreached, held_state, hold, module_names, thaw
from .paths import PathRecorder, note_running, run, watch_hooks, watch_trainable
from .pass_checks import refuse_tracing, require_all_sites, require_finite_codes
from .sites import Site, generation
from .state import snapshot
from .targets import find_targets

__all__ = ["NeuroViewCNN", "Site"]


class NeuroViewCNN(Guarded):
    """Wrap a CNN (or MLP, or vision transformer) so that one linear classifier over all unit codes decides.

    Args:
        backbone: any ``nn.Module``, used as is (its forward and weight values untouched); one hook
            per site module and one where the pass stops (:mod:`neuroview.core.hooks`; and on the modules the
            first batch did not run that later ones may, :mod:`neuroview.core.paths`) stay on it
            while this network lives, and ``unwrap()`` removes them.
        num_classes: number of classes, at least 2.
        layers: the sites: a module's name reads every call of it; a site name the network reports reads that call
            alone (``'act:1'``; ``'act:0'`` is the first call, site ``'act'``; the module's name beside one of its site
            names is its first call). Default: every activation module (:mod:`neuroview.core.activations`;
            ``nv.register_activation`` adds classes). Codes come from an activation's input, another module's output.
        quantizer: ``"hard"`` (the default: the region code itself, the method's vector
            quantization, trained through a sigmoid straight-through gradient), ``"soft"``
            (``sigmoid(z / tau)``) or ``"none"`` (the activation output itself). The default
            was chosen by ``benchmarks/quantizers.py``: ``hard`` is within 1 point of the
            standard CNN on digits and mnist1d while being the faithful on/off code; ``none``
            is the most accurate (README, "Which quantizer is the default").
        tau: temperature of the soft code and of the hard code's surrogate gradient (positive, finite, at least
            :data:`~neuroview.core.settings.TAU_MIN`; these settings are checked wherever they are set).
        grad_state: what a site keeps for that gradient where its activation does not keep the
            pre-activation (ReLU, in-place ones): ``"uint4"`` (the default), ``"uint8"`` or ``"bf16"``
            (:class:`~neuroview.core.quantize._MeanCode`, README "Lean training state"; compiled, 4 bits become 8).
        normalize: standardize the code vector with running statistics (no affine, a variance
            floor, statistics shared across DDP ranks: :class:`neuroview.core.head.CodeNorm`).
            At eval it is folded into the classifier, so the decision stays exactly linear.
        norm_floor: that normalization's variance floor, relative to the mean variance (``CodeNorm``'s
            ``floor``); 0 rebuilds a checkpoint trained before the floor existed as it was trained.
        example_input: a real batch ``[B, C, *spatial]`` to find the sites on now. Without it (and without
            ``input_shape``) the sites and the classifier are found on the first batch the network sees, as PyTorch's
            lazy modules do: run one batch before building the optimizer (the Lightning module does so in ``setup``).
            Finding them runs the backbone 3 more times (4 with a leaf module of no known kind: :mod:`.unseen`), on 2- and 3-sample slices, with every hook on it (yours too).
        input_shape: ``(C, *spatial)`` of one sample, to find the sites now on a random (seeded) input.
        unit_axis: where the units lie in the pre-activation, ``1`` (channels first) or ``-1`` (channels last): a
            module's key sets each of its calls, a site's (``'act:1'``) that call alone, over the module's; else found.
        stop_early: stop the backbone's forward pass after the last site (its own head never computed); forward hooks
            on the modules the stop unwinds (``backbone``'s own) then do not run: named once in a warning.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        layers: Sequence[str] | None = None,
        quantizer: str = "hard",
        tau: float = 1.0,
        grad_state: str = "uint4",
        normalize: bool = True,
        norm_floor: float = FLOOR,
        example_input: Tensor | None = None,
        input_shape: Sequence[int] | None = None,
        unit_axis: Mapping[str, int] | None = None,
        stop_early: bool = True,
    ):
        super().__init__()
        num_classes = settings.check_args(NeuroViewCNN, backbone, num_classes, quantizer, tau, grad_state)
        self.backbone = backbone
        self.num_classes = num_classes
        self.quantizer, self.tau, self.grad_state = quantizer, tau, grad_state  # checked wherever set: settings
        self.stop_early = stop_early
        self.check_finite = True
        self.unit_axis = settings.unit_axes(unit_axis)
        # Optional (codes [B, U], code maps) -> (codes, code maps) after every capture: ablate_units sets it
        # within a `with`, so that a removed unit's own code is 0 whatever the quantizer and the site kind.
        self._codes_hook = None
        #: (module name, call number) -> why that call is not a site (found on the first batch)
        self.not_sites: dict[tuple[str, int], str] = {}
        # hooked module -> (its name, code from its input, recorded before it runs): what this network's
        # recorders read from the shared hooks (neuroview.core.hooks); the module to stop at
        self._plan: dict = {}
        self._stop: str | None = None
        self._stop_at: tuple = ()
        self._installed = False  # hooks on the backbone from discovery until the network goes or unwrap()
        self.frozen: tuple[str, ...] = ()  # backbone parameters the decision never reaches: frozen until unwrap()
        # the modules to hook: found now for the errors (a layers= name of no module), and again when the sites are
        # found where the model was edited since (a lazy wrap's first batch reads the model as that batch finds it)
        self._targets, self.left_out = find_targets(backbone, layers)
        self._layers = None if layers is None else list(layers)
        edits.take(self)
        self._named = layers is not None  # named modules must all run; of all activations, those that run are sites
        self.sites: list[Site] | None = None
        self.input_shape: tuple[int, ...] | None = None
        # The head is built once the number of units is known: on discovery, or from a state dict
        self._normalize, self._floor = settings.flag("normalize", normalize), checked_floor(norm_floor)
        self.norm, self.classifier = None, None  # CodeNorm | None, nn.Linear | None
        if example_input is None and input_shape is not None:  # random, not zeros: identical samples cannot tell
            example_input = probe_input(tuple(int(s) for s in input_shape), **factory(backbone))  # a site's order
        if example_input is not None:
            self.discover(example_input)

    # checked as the constructor checks them wherever they are set (net.tau annealed each step, a member's setting):
    # a typo or a negative temperature set as an attribute was taken as it came
    quantizer = settings.checked("quantizer", settings.check_quantizer)
    tau = settings.checked("tau", settings.check_tau)
    grad_state = settings.checked("grad_state", settings.check_grad_state)
    num_classes = NUM_CLASSES  # what the head says once built: a head put in place for another task (head_classes)
    __getstate__ = held_state  # (deepcopy, pickle) with the modules put in place of those it froze in: the user's

    # ----------------------------------------------------------------- sites
    def _install(self) -> None:
        """One hook per site module (and on the module to stop at), shared with any other network wrapping the
        backbone; they go when this network is deleted or unwrapped."""
        called = {s.module for s in self.sites} | {m for m, _ in self.not_sites}
        self._none = self.quantizer == "none"  # "none" reads an activation's output, the others its input
        self._plan = {m: (n, fi, fi and not self._none) for n, m, fi in self._targets if n in called}
        named = dict(self.backbone.named_modules())
        self._stop_at = (named[self._stop],) if self._stop in named else ()
        wanted = [(m, pre) for m, (_, _, pre) in self._plan.items()] + [(m, True) for m in self._stop_at]
        install(self, wanted + watch_hooks(self))  # and on what the first batch did not run (neuroview.core.paths)
        self._installed = True

    def __setstate__(self, state) -> None:
        for k in ("quantizer", "tau", "grad_state", "num_classes"):  # pickled before they were properties
            state.setdefault("_" + k, state.pop(k)) if k in state else None
        super().__setstate__(state)
        self._install() if self.__dict__.get("_installed") else None  # a copy records through its own backbone's hooks
        hold(self, self.__dict__.get("frozen", ()), self.__dict__.pop("_swapped", ()))  # not a head put in place since

    @torch.no_grad()
    def discover(self, x: Tensor) -> list[Site]:
        """Find the sites (each one's unit axis and unit count) on the real batch ``x``, in eval mode, and build the
        classifier over their units; the first forward pass calls it when built without ``example_input``."""
        if not isinstance(x, Tensor) or x.dim() < 2 or x.shape[0] == 0:
            raise ValueError(f"x: expected a non-empty batch [B, C, ...], got {describe(x)}")
        with torch.inference_mode(False):  # a first batch under inference_mode: a head and a reach pass autograd can use
            keep = snapshot(self.backbone)  # what its passes change of the backbone goes back (neuroview.core.state)
            self._ran: set[str] = set()  # what they run: later passes watch what they did not (neuroview.core.paths)
            done = note_running(self.backbone, self._ran)
            try:
                return self._discover(x[:3].clone())  # 2 and 3 samples tell the sites; a copy, which no pass may change
            except (ValueError, TypeError) as e:  # a GRU + head found no units here: the error names the RNN route
                pointed = rnn_pointer(self.backbone, self.num_classes, e)
                if pointed is None:
                    raise
                raise pointed from e
            finally:
                done(), keep()

    def _discover(self, x: Tensor) -> list[Site]:  # noqa: D102
        if "_layers" in self.__dict__ and not edits.unchanged(self):  # edited (or replaced) since the targets were found
            self._targets, self.left_out = find_targets(self.backbone, self._layers)
        restore = restore_modes(self)
        try:  # on the module tree its first forward leaves (a lazy build's), read in every later pass: edits since, named
            self.eval()
            found, not_sites, stop = edits.found_on_built(self, lambda: find_sites(
                self.backbone, self._targets, self.quantizer, self.unit_axis, x, named=getattr(self, "_named", False)))
        finally:
            restore()
        edits.require_called(self._targets, found, not_sites, getattr(self, "_named", False), self.backbone)
        names = {s.name for s in found} | {s.module for s in found} | {f"{s.module}:0" for s in found if s.name == s.module}
        unknown = sorted(set(self.unit_axis) - names)
        if unknown:
            raise ValueError(f"unit_axis: {unknown} name no site; the sites are {[s.name for s in found]}")
        loaded = self.__dict__.get("_loaded_sites")  # (head, sites): those its state dict was trained on
        why = settings.sites_clash(loaded[1], found, not_sites, self.backbone) if loaded and loaded[0] is self.classifier is not None else None
        if why:
            raise ValueError(why)
        self.sites, self.not_sites, self._stop, self.input_shape = found, not_sites, stop, tuple(x.shape[1:])
        # token ids: a float batch's failure is said as x's (neuroview.core.hooks.failed); the registry read, this process's
        self.__dict__.update(_input_dtype=x.dtype, _points_read=generation(), _kinds_read=generation())
        built = self.classifier is None
        try:  # interrupted (an error, Ctrl-C), nothing is found: the next batch finds it all again, the reach too
            if self._installed:
                uninstall(self, self.backbone)
            self._install()  # now, not inside the first (possibly compiled) forward pass
            self._build_head(sum(s.channels for s in found))
            self._watch = {}  # the reach pass decides what is frozen: nothing to watch in it
            self.frozen = freeze_unreached(self, x)  # else plain DDP waits for their gradients (neuroview.core.reach)
            install(self, watch_hooks(self))  # what later batches run that these passes did not (neuroview.core.paths)
        except BaseException:
            uninstall(self, self.backbone)
            self.sites, self._installed = None, False
            self.norm, self.classifier = (None, None) if built else (self.norm, self.classifier)  # a checkpoint's stays
            raise
        site_notes.warn_frozen_rnns(self, x)  # the RNNs the reach pass found cut off (and the sites read by no value)
        unseen.warn_unseen_modules(self, x)  # activation modules of no known class after the last site: what they cut
        return self.sites

    def build_head(self, num_units: int) -> None:
        """Build the normalization and the global classifier over ``num_units`` codes (done by
        :meth:`discover`, or from a checkpoint's shapes before its weights are loaded). The weights replace its initial
        ones: the caller's random state is not drawn from (a pretrained model or a load left a seeded script off)."""
        with own_rng(factory(self.backbone).get("device")):
            self._build_head(num_units)

    _build_head = build_cnn_head  # discovery's (neuroview.core.head_classes)

    def _sites(self) -> list[Site]:
        if self.sites is None:
            raise RuntimeError("sites: not found yet; they are found on the first batch: call net(x) once, "
                               "or build with example_input=x")
        return self.sites

    num_units = property(lambda self: sum(s.channels for s in self._sites()), doc="Units the classifier reads.")

    # --------------------------------------------------------------- forward
    _check_input = settings.check_input  # x's type, rank, channels, dtype and values

    def _codes(self, x: Tensor, maps: bool = False, deciding: bool = False) -> tuple[Tensor, list[Tensor]]:
        refuse_tracing(self)  # torch.jit.trace, and torch.export before the sites are found: said by name
        self._check_input(x)
        if self.sites is None or not self._installed or self.__dict__.get("_none") != (self.quantizer == "none"):
            with DISCOVERING:  # two threads' first batches find the sites once
                if self.sites is None:
                    self.discover(x)
                if not self._installed or self.__dict__.get("_none") != (self.quantizer == "none"):  # unwrapped, or
                    uninstall(self, self.backbone)  # the quantizer set since to or from "none" reads the other side
                    self._install()
        edits.require_unedited(self)  # a site's name moved onto another module, an activation added: named
        if deciding and self.norm is not None and self.norm.training:  # forward: before the
            refuse_single(x.shape[0])  # backbone moves its BatchNorm statistics for a batch the head then refuses
        watch_trainable(self)  # training: an unreached parameter made trainable again, named (plain DDP fails on it)
        rec = PathRecorder(self, maps, x.shape[0])  # (len(x) would fix torch.export's batch)
        run(self, x, rec)
        require_all_sites(self, rec.codes)  # a site this batch skipped: named
        codes, maps = torch.cat(rec.codes, dim=1), rec.code_maps
        require_finite_codes(self, x, codes)  # a finite x that overflowed (float16 under autocast): not read as class 0
        return self._codes_hook(codes, maps) if self._codes_hook is not None else (codes, maps)

    def codes(self, x: Tensor) -> Tensor:
        """``[B, U]``: the code vector ``c(x)`` the global classifier reads (float32)."""
        return self._codes(x)[0]

    def effective_classifier(self) -> tuple[Tensor, Tensor]:
        """``(W [C, U], b [C])`` with ``logits == codes @ W.T + b`` in eval mode (normalization folded in)."""
        if self.classifier is None:  # built with the sites, on the first batch: say so
            self._sites()
        return fold(self.classifier, self.norm)

    def head(self, codes: Tensor) -> Tensor:
        """Logits from codes: batch statistics while training, the folded linear map at eval;
        float32, with autocast off."""
        return decide(codes, self.classifier, self.norm)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self._codes(x, deciding=True)[0])

    # ------------------------------------------------------------ explaining
    @torch.no_grad()
    def explain(self, x: Tensor, *, target: Tensor | int | None = None, maps: bool = False,
                baseline: Tensor | str | None = None) -> CNNExplanation:
        """Exact per-unit explanation of ``x``, computed in eval mode in one forward pass.

        Keeps the codes ``[B, U]``, the effective weights ``[C, U]`` and the bias; the contributions of the
        classes asked (``target``: an int, a ``[B]`` tensor, default each sample's predicted class) are
        ``exp.for_class()`` ``[B, U]``, and the dense ``exp.contributions`` ``[B, C, U]`` is built only when
        read. For any class c, ``for_class(c).sum(-1) + bias[c] == logits[:, c] == net.eval()(x)[:, c]`` (a subclass
        whose own ``forward`` or ``head`` gives other logits is refused by name: :mod:`neuroview.core.own_decision`).
        With ``maps=True`` the per-position code maps are kept for :meth:`CNNExplanation.spatial_map`.
        ``baseline``: the codes the contributions are taken against. ``None`` (zero codes: the bias is the
        classifier's own), ``"mean"`` (the training split's mean code, from the normalization's statistics: a running
        estimate, exact after :func:`neuroview.sparsify` but for a bfloat16 head's rounding; the bias is then the logit
        of the average sample) or a ``[U]`` tensor (:func:`neuroview.mean_codes` computes it exactly). Either way
        the contributions plus ``exp.bias`` sum to the logit. Every submodule keeps its train/eval mode.
        """
        restore = explaining(self)
        try:
            codes, cmaps = self._codes(x, maps=maps)
        finally:
            restore()
        exp = self._explain_codes(codes, cmaps if maps else None, target=target, baseline=baseline)
        own_decision.require_own_decision(self, exp.logits, x)  # a subclass's own forward or head: its logits
        return exp

    @torch.no_grad()
    def _explain_codes(self, codes: Tensor, cmaps: list[Tensor] | None = None, *, target=None, baseline=None) -> CNNExplanation:
        """:meth:`explain` of codes (and maps) this network computed in eval mode: its ensemble's batched pass."""
        w, b = self.effective_classifier()
        dt = head_dtype(codes, w)
        codes, w, b = codes.to(dt), w.detach().to(dt), b.detach().to(dt)
        logits = folded_logits(codes, w, b)  # (w, b: fold's copies, which keep the explanation fixed under training)
        base, b = resolve_baseline(baseline, head_stats.mean_features(self.norm, baseline), (w.shape[1],), w, b)  # ('mean': seen?)
        exp = CNNExplanation(
            logits=logits, bias=b, codes=codes, weight=w, baseline=base,
            units=self.units, site_slices=self.site_slices,
            code_maps=dict(zip((s.name for s in self.sites), cmaps)) if cmaps is not None else None,
        )
        exp.target = exp.targets(target)
        return exp

    @property
    def units(self) -> list[tuple[str, int]]:
        """``(site name, channel)`` of every unit, in code-vector order."""
        return [(s.name, c) for s in self._sites() for c in range(s.channels)]

    @property
    def site_slices(self) -> dict[str, slice]:
        ends = list(itertools.accumulate((s.channels for s in self._sites()), initial=0))
        return {s.name: slice(a, b) for s, a, b in zip(self.sites, ends, ends[1:])}

    @torch.no_grad()
    def unit_importance(self, standardized: bool = False) -> Tensor:
        """``[C, U]`` global unit-class weights. By default the effective weight ``W[c, u]`` of each unit's code, the one with ``contributions = W * codes``.
        Codes of different layers vary on very different scales, so to *rank* units use ``standardized=True``:
        the weight times the (floored) running standard deviation of the unit's code, i.e. how much the logit
        moves when the code moves by one typical amount (the classifier's own weight when ``normalize=True``;
        with ``normalize=False`` there are no running statistics: the raw weight, to scale by the codes' std yourself).
        Either way 0 for a unit whose code was the same for every sample of each training batch (dead, or always on,
        by the normalization's statistics: :func:`~neuroview.core.head.constant_features`): training never moved its
        weight, which is initialisation noise, not importance. ``explain`` keeps it (the network's exact function)."""
        head_stats.warn_unstandardized(self.norm) if standardized else None  # statistics no batch set: the raw weights
        w = self.effective_classifier()[0].detach()  # fold's copy: no one else's
        w = w / self.norm.scale() if standardized and self.norm is not None else w
        constant = constant_features(self.norm)
        return w if constant is None else w.masked_fill(constant.to(w.device), 0.0)

    @torch.no_grad()
    def site_importance(self, standardized: bool = True) -> Tensor:
        """``[C, S]`` sum of absolute unit weights per site: how much of each class each site carries."""
        w = self.unit_importance(standardized).abs()
        return torch.stack([w[:, s].sum(-1) for s in self.site_slices.values()], -1)

    def top_units(self, k: int = 5, standardized: bool = True) -> list[list[tuple[str, int, float]]]:
        """Per class, the ``k`` units of largest weight among those it reads, ``(site, channel, weight)`` (0: unread,
        or a unit whose code never changed in training: see :meth:`unit_importance`)."""
        w, units = self.unit_importance(standardized), self.units  # zeros ranked last: they came above negative weights
        vals, idx = torch.where(w != 0, w, -torch.inf).topk(min(positive_int(k, "k"), w.shape[1]), dim=1)
        return [[(*units[i], v) for i, v in zip(ir, vr) if v > -math.inf] for ir, vr in zip(idx.tolist(), vals.tolist())]

    def unit_gallery(self, loader, units, k: int = 6, **kw):
        """What each of ``units`` responds to in ``loader``'s samples: ``nv.unit_gallery(self, loader, units, k)``."""
        return extension("unit_gallery")(self, loader, units, k, **kw)

    def unwrap(self) -> nn.Module:
        """The backbone as it was given: hooks removed (a later forward installs them), :attr:`frozen` trainable again
        (also where you froze the model meanwhile: ``requires_grad_(False)`` on a frozen parameter changes nothing to see)."""
        uninstall(self, self.backbone)
        self._installed, self.frozen = False, thaw(self, self.frozen)
        return self.backbone

    unreached = property(lambda self: module_names(self.frozen), doc="Modules of :attr:`frozen` (``backbone.fc``); a parameter of the backbone itself by name (``backbone.scale``).")

    def extra_repr(self) -> str:
        found = f"sites={len(self.sites)}, units={self.num_units}" if self.sites is not None else "sites=<found on the first batch>"
        return f"num_classes={self.num_classes}, quantizer={self.quantizer!r}, tau={self.tau}, {found}, input_shape={self.input_shape}"

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        meta = getattr(destination, "_metadata", None)  # settings and sites, as CodeNorm keeps its floor: no key added
        if meta is not None and prefix[:-1] in meta:
            meta[prefix[:-1]].update(settings.record(self))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing, unexpected, error_msgs):
        # a file made for another function (settings; sites, after the backbone's own record): raised, not collected,
        # else torch went on to copy the backbone, classifier and norm of a network nested in another module
        if load_checks.refuse(self, prefix, local_metadata, error_msgs):
            return  # refused at the backbone's turn, before it copies anything
        load_checks.take_tau(self, local_metadata)  # a soft code's tau, from the file
        # a lazy wrap learns its unit count (the first batch checks it) and a normalization it was built without
        key = prefix + "classifier.weight"  # (nv.sparsify adds one) from the checkpoint: its weights load into a fresh wrap
        if load_fits(self, state_dict, prefix):  # (one torch refuses for a size changes nothing here)
            self.build_head(state_dict[key].shape[1]) if self.classifier is None and key in state_dict else None
            self.norm = adopt_norm(self.norm, state_dict, prefix, self.classifier, local_metadata, self)
        if self.sites is None:  # a lazy wrap: its first batch's sites are checked against the file's (_discover)
            self.__dict__["_loaded_sites"] = (self.classifier, settings.saved_sites(local_metadata))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing, unexpected, error_msgs)

