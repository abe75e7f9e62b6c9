"""MiniRocket (Dempster et al. 2021) as a network: its features are NeuroView codes already.

MiniRocket convolves each series with 84 fixed kernels of length 9 (weights -1, and 2 at three
taps) at a range of dilations, subtracts a handful of biases from each convolution, and keeps the
proportion of positive values (PPV) of each result: the mean over positions of the on/off code
``z > 0`` of ``z = conv(x) - bias``. That is the ``hard`` code of a ReLU site averaged over
positions, so a NeuroView-CNN around :class:`MiniRocket` reads exactly MiniRocket's ~10,000
features and decides with one linear map over them: MiniRocket's own classifier, whose every
logit splits into per-feature contributions (feature = kernel, dilation, bias), fitted in closed
form by :func:`neuroview.training.ridge.fit_minirocket` (the ridge with leave-one-out choice of
its penalty that MiniRocket is published with).

The parameters follow aeon's MiniRocket (``aeon.transformations.collection.convolution_based``,
after the authors' code): the dilations and the number of biases per dilation from the series
length, the biases as low-discrepancy quantiles of one random training series' convolution, a
random subset of channels summed per kernel and dilation (multivariate series), and the PPV over
the whole "same"-padded output for half of the kernel/dilation pairs, over its unpadded centre for
the other half. Each dilation is two sites (``act:2j`` padded, ``act:2j+1`` centre), so every
code is averaged over exactly MiniRocket's positions. :meth:`MiniRocket.load_aeon` takes a fitted
aeon transformer's parameters, the tests' outside reference.

May import torch and numpy only.
"""

from __future__ import annotations

import itertools
import math
import operator
import warnings

import numpy as np
import torch
from torch import Tensor, nn

from .fixed import exact_conv1d

#: the three taps of weight 2 of each of the 84 kernels (the other six are -1)
INDICES = np.array(list(itertools.combinations(range(9), 3)), dtype=np.int64)
NUM_KERNELS = len(INDICES)


def kernels() -> Tensor:
    """``[84, 9]``: MiniRocket's kernels, -1 everywhere and 2 at the taps of :data:`INDICES`."""
    w = -torch.ones(NUM_KERNELS, 9)
    w[torch.arange(NUM_KERNELS)[:, None], torch.as_tensor(INDICES)] = 2.0
    return w


def fit_dilations(length: int, num_features: int, max_dilations_per_kernel: int = 32) -> tuple[list[int], list[int]]:
    """``(dilations, biases per kernel at each)``: exponentially spaced up to ``(length - 1) / 8``.

    >>> fit_dilations(150, 10_000)[0][:6], sum(fit_dilations(150, 10_000)[1])
    ([1, 2, 3, 4, 5, 6], 119)
    """
    per_kernel = num_features // NUM_KERNELS
    true_max = min(per_kernel, max_dilations_per_kernel)
    multiplier = per_kernel / true_max
    max_exponent = np.log2((length - 1) / (9 - 1))
    dilations, counts = np.unique(np.logspace(0, max_exponent, true_max, base=2).astype(np.int32), return_counts=True)
    counts = (counts * multiplier).astype(np.int32)
    for i in range(per_kernel - int(counts.sum())):  # the remainder, one a dilation from the first on
        counts[i % len(counts)] += 1
    return [int(d) for d in dilations], [int(c) for c in counts]


def quantiles(n: int) -> Tensor:
    """``[n]`` the low-discrepancy quantiles ``(i * golden ratio) mod 1``, ``i = 1..n``."""
    phi = (math.sqrt(5) + 1) / 2
    return torch.tensor([(i * phi) % 1 for i in range(1, n + 1)], dtype=torch.float32)


def _as_int(v) -> int | None:
    """``v`` as an int where it is an integer (numpy's too), else None; never a bool."""
    try:
        return None if isinstance(v, bool) else operator.index(v)
    except TypeError:
        return None


def _aeon_source(parameters):
    """What :meth:`MiniRocket.load_aeon` reads: ``parameters``, or the transformer a fitted aeon
    ``MiniRocketClassifier`` (or ``MiniRocketRegressor``) holds, which has no parameters of its own."""
    inner = getattr(parameters, "_transformer", None)
    return inner if inner is not None and not hasattr(parameters, "parameters") else parameters


def _shape_of(a) -> str:
    a = np.asarray(a, dtype=object) if isinstance(a, (list, tuple)) else a
    return f"{a.dtype} {tuple(a.shape)}" if isinstance(a, np.ndarray) else type(a).__name__


_BUILT = ("num_features", "max_dilations_per_kernel")  # what sets a MiniRocket's dilations, with its series length


def _plan(rec: dict, args: bool = False) -> str:
    """A MiniRocket's dilations and biases per each as a state dict's record ``rec`` keeps them, saying what it does
    not; with ``args``, only the arguments of :data:`_BUILT` it keeps (``num_features=..., ...``)."""
    per, built = rec.get("per_dilation"), ", ".join(f"{k}={rec[k]}" for k in _BUILT if _as_int(rec.get(k)) is not None)
    notes = ", ".join(n for n in ("" if isinstance(per, list) else "biases per dilation not recorded", built) if n)
    return built if args else f"dilations {rec.get('dilations')}" + (
        f" x biases per dilation {per}" if isinstance(per, list) else "") + (f" ({notes})" if notes else "")


class MiniRocket(nn.Module):
    """MiniRocket's transform over ``[B, C, T]`` series of length ``input_length``, with a linear head.

    Built with its kernels, dilations and channel subsets (drawn with ``seed``); :meth:`fit` sets
    the biases from training series. Its own forward returns ``fc(PPV features)``; wrapped in a
    NeuroView-CNN (``nv_minirocket``) the global classifier reads the same features as unit codes.

    Args:
        in_channels, input_length: the series' channels and length (the dilations depend on it).
        num_classes: the classes of the standard head ``fc``.
        num_features: about this many features (a multiple of 84: 10,000 gives 9,996).
        max_dilations_per_kernel: at most this many dilations.
        seed: the draws of channel subsets and, in :meth:`fit`, of the series each bias comes from.
    """

    one_length = True  # reads series of one length: a batch's lengths are refused (_batch.refuse_lengths)

    def __init__(self, *, in_channels: int = 1, input_length: int, num_classes: int = 2, num_features: int = 10_000,
                 max_dilations_per_kernel: int = 32, seed: int = 0):
        super().__init__()
        if not isinstance(input_length, int) or input_length < 9:
            raise ValueError(f"input_length: MiniRocket needs series of at least 9 steps, got {input_length!r}")
        if not isinstance(num_features, int) or num_features < NUM_KERNELS:
            raise ValueError(f"num_features: expected an int >= {NUM_KERNELS}, got {num_features!r}")
        # 0 divided by zero, -1 and 2.5 failed in numpy's draws with messages naming neither argument
        if _as_int(max_dilations_per_kernel) is None or max_dilations_per_kernel < 1:
            raise ValueError(f"max_dilations_per_kernel: expected an int >= 1, got {max_dilations_per_kernel!r}")
        if _as_int(seed) is None or not 0 <= seed < 2 ** 32:
            raise ValueError(f"seed: expected an int in [0, 2**32) (the draws of channel subsets and biases), got {seed!r}")
        self._max_dilations = max_dilations_per_kernel = _as_int(max_dilations_per_kernel)  # as given: a load's advice
        self.in_channels, self.input_length, self.seed = int(in_channels), input_length, int(seed)
        self.dilations, self.per_dilation = fit_dilations(input_length, num_features, max_dilations_per_kernel)
        rng = np.random.RandomState(seed)
        combos = NUM_KERNELS * len(self.dilations)
        n_ch = (2 ** rng.uniform(0, np.log2(min(in_channels, 9) + 1), combos)).astype(np.int32)
        mask = np.zeros((combos, in_channels), dtype=np.float32)
        for i, k in enumerate(n_ch):
            mask[i, rng.choice(in_channels, k, replace=False)] = 1.0
        self._set_weight(torch.from_numpy(mask))
        self.num_features = NUM_KERNELS * sum(self.per_dilation)
        self._plan = self._sites_plan()
        self.register_buffer("biases", torch.zeros(self.num_features))
        self.register_buffer("fitted", torch.tensor(False))
        self.act, self.fc = nn.ReLU(), nn.Linear(self.num_features, num_classes)

    def _sites_plan(self) -> list[tuple[int, slice, Tensor, Tensor]]:
        """One entry per site, in call order: ``(dilation index, positions, kernel of each unit,
        its feature index in aeon's order)``. Two sites a dilation j: the kernels k with
        ``(j + k)`` even read the whole padded output, the others its unpadded centre (aeon's ``_padding1``)."""
        plan, start = [], 0
        for j, n in enumerate(self.per_dilation):
            kernel, feature = torch.arange(NUM_KERNELS).repeat_interleave(n), torch.arange(start, start + NUM_KERNELS * n)
            pad = 4 * self.dilations[j]
            for half, where in ((0, slice(None)), (1, slice(pad, self.input_length - pad))):
                keep = (kernel + j) % 2 == half
                plan.append((j, where, kernel[keep], feature[keep]))
            start += NUM_KERNELS * n
        return plan

    def input_spans(self) -> dict[str, tuple[int, int]]:
        """``{site name: (first step, steps)}`` for the sites whose code map covers only part of the series: a
        centre site's map is position ``t`` of the unpadded centre, input step ``4d + t`` (``T - 8d`` steps), where
        a map stretched over the whole series put its codes at the wrong steps. The names are those of the sites a
        NeuroView-CNN finds (``act``, ``act:1``, ...: module ``act``, called once a site, in the order of the plan).

        >>> MiniRocket(input_length=30, num_features=168).input_spans()
        {'act:1': (4, 22), 'act:3': (12, 6)}
        """
        return {"act" if i == 0 else f"act:{i}": (where.start, where.stop - where.start)
                for i, (_, where, _, _) in enumerate(self._plan) if where.start is not None}

    def _set_weight(self, mask: Tensor) -> None:
        """``weight [D, 84, C, 9]``: kernel k at dilation d over the channels of its subset (``mask [D * 84, C]``)."""
        w = mask.view(len(self.dilations), NUM_KERNELS, self.in_channels, 1) * kernels()[None, :, None, :]
        self.weight.copy_(w) if "weight" in self._buffers else self.register_buffer("weight", w)

    def _convolve(self, x: Tensor, j: int, weight: Tensor | None = None, groups: int = 1) -> Tensor:
        """``[B, 84, T]``: every kernel at dilation ``j``, "same" zero padding, its channels summed; exact
        (:func:`~neuroview.zoo.architectures.fixed.exact_conv1d`), in ``x``'s precision even under autocast (a
        bfloat16 convolution would move values past the biases). A training series meets the biases drawn from its
        own convolution at 0 exactly, where float32's batch-dependent rounding flipped its codes."""
        d, w = self.dilations[j], self.weight[j] if weight is None else weight
        return exact_conv1d(x, w, dtype=x.dtype, dilation=d, padding=4 * d, groups=groups)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        # the series length sets the dilations, which no tensor's shape tells: kept in the metadata, refused on load
        if (meta := getattr(destination, "_metadata", None)) is not None and prefix[:-1] in meta:
            meta[prefix[:-1]].update(input_length=self.input_length, **self._record())

    def _record(self) -> dict:
        """What sets the dilations and biases per dilation, kept with them (an old pickle may lack the argument)."""
        return {"dilations": list(self.dilations), "per_dilation": list(self.per_dilation), "num_features":
                self.num_features, "max_dilations_per_kernel": self.__dict__.get("_max_dilations")}

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args):
        length = (local_metadata or {}).get("input_length")  # absent: saved before it was kept, or a plain dict
        if isinstance(length, int) and not isinstance(length, bool) and length != self.input_length:
            why = [f"{prefix}input_length: the state dict is of a MiniRocket of series of {length} steps (max_len; "
                   f"dilations {local_metadata.get('dilations')}), this one reads {self.input_length} (dilations "
                   f"{self.dilations}): build it with max_len={length}"]
        else:  # the same shapes, its biases read at other dilations
            why = self._plan_clash(local_metadata, prefix, state_dict.get(prefix + "biases"))
        for h in list(self._load_state_dict_pre_hooks.values()) if why else []:  # a refusal held for this check
            getattr(getattr(h, "hook", h), "release", lambda: None)()  # (neuroview.core.load_checks) comes off it
        if why:  # raised, not collected: torch would go on to copy its fc, and a NeuroView-CNN's head after it
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t" + "\n\t".join(why))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args)

    def _plan_clash(self, meta, prefix: str, biases=None) -> list[str]:
        """Why a state dict whose metadata is ``meta`` was saved from a MiniRocket of other dilations, or other
        biases per dilation, than this one's (none where it recorded neither: saved before they were kept)."""
        meta = meta if isinstance(meta, dict) else {}
        saved, mine = {k: meta.get(k) for k in ("dilations", "per_dilation")}, self._record()
        if all(not isinstance(v, list) or v == mine[k] for k, v in saved.items()):
            return []
        if all(_as_int(meta.get(k)) is not None for k in _BUILT):
            advice = f"build it with {_plan(meta, args=True)}, as it was saved"
        else:  # a record of the dilations only (saved before the rest was kept): what gives them at this length
            n = len(biases) if isinstance(biases, Tensor) and biases.dim() == 1 else self.num_features
            fits = [m for m in range(1, n // NUM_KERNELS + 1) if all(not isinstance(saved[k], list) or v == saved[k]
                    for k, v in zip(saved, fit_dilations(self.input_length, n, m)))]
            advice = (f"build it with num_features={n}, max_dilations_per_kernel={fits[0]}: at {self.input_length} steps "
                      "those give its dilations" if fits else f"no num_features={n} and max_dilations_per_kernel give "
                      f"its dilations at {self.input_length} steps: was it saved from another series length (max_len)?")
        return [f"{prefix}dilations: the state dict is of a MiniRocket of {_plan(meta)}, this one has {_plan(mine)}, set "
                "by the series length, num_features and max_dilations_per_kernel: its biases would be applied at other "
                f"dilations and kernels; {advice}"]

    def _check(self, x: Tensor) -> None:
        if x.dim() != 3 or x.shape[1] != self.in_channels or x.shape[2] != self.input_length:
            raise ValueError(f"x: MiniRocket expected series [B, {self.in_channels}, {self.input_length}] "
                             f"(in_channels, input_length), got shape {tuple(x.shape)}")
        if torch.compiler.is_compiling():  # torch.compile or torch.export: an assert traced into the graph, no branch
            torch._assert_async(torch.isfinite(x).all(), "x: MiniRocket expected finite series, got NaN or inf")
        elif not bool(torch.isfinite(x).all()):
            raise ValueError("x: MiniRocket expected finite series, got NaN or inf")

    @torch.no_grad()
    def fit(self, x: Tensor) -> MiniRocket:
        """Set the biases from training series ``x [N, C, T]``: for each kernel and dilation, the
        :func:`quantiles` of the convolution of one series drawn at random (``seed``). Returns self."""
        self._check(x)
        rng, q, start = np.random.RandomState(self.seed), quantiles(self.num_features).double(), 0
        for j, n in enumerate(self.per_dilation):
            picks = [int(rng.randint(len(x))) for _ in range(NUM_KERNELS)]
            # kernel k on its own series picks[k] only: one group a kernel
            flat = x[picks].float().reshape(1, NUM_KERNELS * self.in_channels, self.input_length)
            c = self._convolve(flat, j, self.weight[j], groups=NUM_KERNELS)[0].double()
            qs = q[start:start + NUM_KERNELS * n].view(NUM_KERNELS, n)
            self.biases[start:start + NUM_KERNELS * n] = torch.stack(
                [torch.quantile(c[k], qs[k]) for k in range(NUM_KERNELS)]).flatten().float()
            start += NUM_KERNELS * n
        self.fitted.fill_(True)
        return self

    def load_aeon(self, parameters) -> MiniRocket:
        """Take a fitted aeon ``MiniRocket``'s ``parameters`` (channel subsets, dilations, biases) as they are,
        or the fitted transformer itself (or a fitted aeon ``MiniRocketClassifier``, whose transformer it reads),
        whose channel count is then checked against ``in_channels``."""
        source = _aeon_source(parameters)
        fitted_on = getattr(source, "metadata_", {}).get("n_channels")  # a transformer knows its channel count
        if fitted_on is not None and int(fitted_on) != self.in_channels:
            raise ValueError(f"parameters: aeon's MiniRocket was fitted on series of {fitted_on} channels, this "
                             f"network reads {self.in_channels} (in_channels)")
        n_ch, ch_idx, biases = self._aeon_arrays(source)
        unread = sorted(set(range(self.in_channels)) - set(ch_idx.tolist()))
        if unread and fitted_on is None:  # fitted on fewer channels, most likely: those past them would never be read
            warnings.warn(f"parameters: aeon's channel subsets read none of channels {unread} of this network's "
                          f"{self.in_channels} (in_channels): fitted on series of fewer channels? Pass the fitted "
                          "transformer (load_aeon(t), not t.parameters) to have its channel count checked", stacklevel=2)
        mask, starts = torch.zeros(len(n_ch), self.in_channels), np.concatenate([[0], np.cumsum(n_ch)])
        for i in range(len(n_ch)):
            mask[i, torch.as_tensor(ch_idx[starts[i]:starts[i + 1]]).long()] = 1.0
        self._set_weight(mask)
        self.biases.copy_(torch.as_tensor(np.asarray(biases)))
        self.fitted.fill_(True)
        return self

    def _aeon_arrays(self, source) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(channels of each kernel and dilation, channel indices, biases)`` of aeon's ``parameters`` 5-tuple
        (``source.parameters`` where it has them), checked against this network's dilations and features: a
        transformer not fitted was a bare "cannot unpack" TypeError, arrays of other lengths a torch shape error."""
        arrays = getattr(source, "parameters", source)
        if isinstance(arrays, np.ndarray) and arrays.dtype == object and arrays.ndim == 1:  # np.save/np.load of it
            arrays = list(arrays)
        if not isinstance(arrays, (tuple, list)) or len(arrays) != 5:
            what = (f"a {len(arrays)}-{type(arrays).__name__}" if isinstance(arrays, (tuple, list)) else
                    f"an unfitted {type(source).__name__} (fit it first)" if getattr(source, "is_fitted", None) is False
                    else "None" if arrays is None else f"a {type(arrays).__name__}")  # (aeon's estimators say is_fitted)
            raise ValueError("parameters: expected a fitted aeon MiniRocket or MiniRocketClassifier, or the "
                             "transformer's .parameters, the 5-tuple (channels per combination, channel indices, "
                             f"dilations, features per dilation, biases), got {what}")
        try:
            n_ch, ch_idx, dilations, per, biases = (np.asarray(a) for a in arrays)
            ok = all(a.ndim == 1 and np.issubdtype(a.dtype, np.integer) for a in (n_ch, ch_idx, dilations, per))
            ok = ok and biases.ndim == 1 and np.issubdtype(biases.dtype, np.number)
        except (TypeError, ValueError):  # ragged: numpy refuses the array
            ok = False
        if not ok:
            shown = [f"{n}: {_shape_of(a)}" for n, a in zip(("channels", "indices", "dilations", "features", "biases"), arrays)]
            raise ValueError("parameters: expected aeon's 5-tuple of 1-d arrays (integers, the biases numbers), got "
                             f"{', '.join(shown)}")
        if [int(d) for d in dilations] != self.dilations or [int(c) for c in per] != self.per_dilation:
            raise ValueError(f"parameters: aeon's dilations {list(dilations)} x {list(per)} differ from this "
                             f"network's {self.dilations} x {self.per_dilation} (input_length, num_features)")
        combos = len(self.dilations) * NUM_KERNELS
        if len(n_ch) != combos or (combos and int(n_ch.min()) < 1) or int(n_ch.sum()) != len(ch_idx):
            raise ValueError(f"parameters: expected channel counts of len(dilations) * 84 = {combos} kernels and dilations, "
                             f"each >= 1, summing to the {len(ch_idx)} channel indices; got {len(n_ch)} counts summing to {int(n_ch.sum())}")
        if len(biases) != self.num_features:
            raise ValueError(f"parameters: expected {self.num_features} biases (num_features), got {len(biases)}")
        if ch_idx.size and (int(ch_idx.max()) >= self.in_channels or int(ch_idx.min()) < 0):  # a bare IndexError
            raise ValueError(f"parameters: aeon's channel subsets read channels up to {int(ch_idx.max())}, this "
                             f"network has {self.in_channels} (in_channels): fitted on series of more channels")
        return n_ch, ch_idx, biases

    def forward(self, x: Tensor) -> Tensor:
        x = x if not isinstance(x, Tensor) or x.is_floating_point() else x.float()  # integer series: a bare mean() error
        self._check(x)
        unfitted = ("MiniRocket: the biases are not fitted; call .fit(training series) first "
                    "(neuroview.training.ridge.fit_minirocket does, then fits the classifier)")
        if torch.compiler.is_compiling():  # the buffer's value steers no traced graph: asserted in it
            torch._assert_async(self.fitted, unfitted)
        elif not bool(self.fitted):
            raise RuntimeError(unfitted)
        feats, conv = [], {}
        for j, where, kernel, feature in self._plan:
            if j not in conv:
                conv = {j: self._convolve(x, j)}  # each dilation's convolution once, for its two sites
            c, n = conv[j], self.per_dilation[j]
            # a site's units run kernel by kernel, n biases each: the kernels' rows are gathered once and
            # the biases broadcast over them, so [B, units, T] is written in one pass (not gathered, then shifted)
            bias = self.biases[feature.to(x.device)].to(c.dtype).view(-1, n)
            z = (c[:, kernel[::n].to(x.device), where][:, :, None, :] - bias[None, :, :, None]).flatten(1, 2)
            a = self.act(z)
            # the PPV, the share of positions where z > 0: 1[a > 0] as ceil(min(a, 1)), in place on the
            # activation's own output (a fresh tensor of 4 bytes an element costs more than the pass)
            feats.append((a.clamp_(max=1).ceil_() if not a.requires_grad else (a > 0).to(a.dtype)).mean(-1))
        return self.fc(torch.cat(feats, 1))

    @property
    def cpu_batch(self) -> int:
        """The most series a forward on a CPU should take at once: its largest site then holds at most
        2^21 values (8 MB in float32). Fresh tensors of hundreds of MB cost more to map and fault in
        than to compute (the 4,000 MNIST-1D training series, one thread: 14.1 s in batches of 256,
        5.0 s in batches of 23, ``benchmarks/sparsify_cost.py --features``); the codes do not depend
        on the batch (a test). ``sparsify`` and ``fit_ridge_head`` read features so."""
        widest = max(len(feature) * len(range(self.input_length)[where]) for _, where, _, feature in self._plan)
        return max(1, 2 ** 21 // widest)

    def feature_order(self) -> Tensor:
        """``[F]``: for each unit, in the order the sites are called, its index in aeon's feature order."""
        return torch.cat([feature for _, _, _, feature in self._plan])

    def _where(self, f: int) -> tuple[int, int]:
        """``(dilation index, kernel)`` of feature ``f`` in aeon's order."""
        start = 0
        for j, n in enumerate(self.per_dilation):
            if f < start + NUM_KERNELS * n:
                return j, (f - start) // n
            start += NUM_KERNELS * n
        raise ValueError(f"feature {f} is past the last of {self.num_features}")

    def describe(self, unit: int, *, _order: Tensor | None = None) -> dict:
        """What unit ``unit`` (its index in the codes, as ``net.units`` counts) computes: its kernel's
        taps of weight 2, dilation, channels, bias, and whether its PPV covers the whole padded output.

        >>> MiniRocket(input_length=30, num_features=168).describe(0)
        {'taps': (0, 1, 2), 'dilation': 1, 'channels': (0,), 'bias': 0.0, 'whole': True}
        """
        u = unit if not isinstance(unit, Tensor) else unit.item() if unit.dim() == 0 and not unit.is_floating_point() else None
        u = _as_int(u)  # an int, numpy's or a 0-dim integer tensor (what explain()'s argmax gives); never a bool
        if u is None or not 0 <= u < self.num_features:
            raise ValueError(f"unit: expected an index in [0, {self.num_features}), got {unit!r}")
        f = int((self.feature_order() if _order is None else _order)[u])
        j, k = self._where(f)
        chans = torch.nonzero(self.weight[j, k, :, 0]).flatten().tolist()
        return {"taps": tuple(int(t) for t in INDICES[k]), "dilation": self.dilations[j],
                "channels": tuple(chans), "bias": float(self.biases[f]), "whole": (j + k) % 2 == 0}

    def unit_names(self) -> list[str]:
        """A short label of :meth:`describe` for every unit, in the codes' order: the taps of weight 2,
        the dilation, the bias, ``"mid"`` where the PPV covers only the unpadded centre, and the
        channels where there are several (what ``neuroview explain`` names a waterfall's bars by).

        >>> MiniRocket(input_length=30, num_features=168).unit_names()[42]
        'k013 d1 >0 mid'
        """
        order, out = self.feature_order(), []
        for u in range(self.num_features):
            d = self.describe(u, _order=order)
            chans = f" ch{','.join(map(str, d['channels']))}" if self.in_channels > 1 else ""
            out.append(f"k{''.join(map(str, d['taps']))} d{d['dilation']} >{d['bias']:.3g}{'' if d['whole'] else ' mid'}{chans}")
        return out

