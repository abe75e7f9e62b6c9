"""Finding the sites on real data: which calls are sites, where their samples and units lie, and
where the forward pass may stop.

:func:`find_sites` runs the backbone twice, on 2 and on 3 samples of the first batch (a float batch of
fewer, or of copies, gets random batch-mates: :func:`_passes`), with temporary hooks removed before it returns:

- every call of a target module is logged with the shape of its pre-activation, the layer that
  produced that tensor and the layer that reads the activation's output;
- a tensor's producing layer is followed through the ops that keep its layout (a residual add, a
  gate, dropout, in-place ops, pooling, crops, splits, permutes) and through concatenations, by a ``TorchFunctionMode``
  (:mod:`neuroview.core.lineage`);
- a call of a target module inside another activation target's call (a registered ``SquaredReLU``'s
  ``nn.ReLU``, also registered outside it: :func:`neuroview.core.targets.find_targets` leaves out those
  registered inside only) is an error in the default sites, a warning in named ones (read twice);
- the two batch sizes give each call's sample axis (:func:`neuroview.core.axes.sample_dim`);
- the first module to start after the last site is where later passes stop.

Imports only torch and the core modules below it.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from .activations import breakpoints, is_activation, looks_like_activation
from .axes import Width, call_axis, consumes, fits, produced, sample_dim
from .hooks import _ACTIVE, failed
from .lineage import Tags, op_name, tensors
from .reach import nested_stop, stand_ins
from .search_scope import Scope, own_pass, refuse_elsewhere
from .site_notes import refuse_meta, say_names
from .sites import Site
from .targets import leave_out, refuse_unknown_calls
from .unseen import activation_call, checkpoints, note_checkpointing, refuse_inside_checkpoint, warn_functional

#: held while a network finds its sites or installs its hooks, so two threads' first batches do it once
DISCOVERING = threading.RLock()
_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
_LAYERS = (nn.modules.conv._ConvNd, nn.Linear, *_NORMS, nn.Embedding)


@dataclass
class _Call:
    name: str  # the site name it would have: module name, ':k' for the k-th extra call
    module: str
    calls: int
    from_input: bool
    shape: tuple[int, ...] | None
    producer: Width | None
    consumer: Width | None = None
    profile: list | None = None  # per dim of the input, [rows, 2]: a weighted sum of z over the other dims and the
    # norm of its terms (float64, _weights)
    hint: tuple | None = None  # (width, op): its input was a layer's map, units on dim 1, before an op not followed;
    # (width, op, d): a pure move took the layer's units to the middle dim d
    inside: str | None = None  # the activation target whose call this call runs inside (its pre-activation's reader)
    assumed: bool = False  # its producer is the network's input's dim 1, assumed by contract: no layer's width


class _Lineage(TorchFunctionMode):
    def __init__(self, pass_):
        super().__init__()
        self.pass_ = pass_

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs, op = kwargs or {}, op_name(func)
        in_place = op in _IN_PLACE_FLOORS or (op in _FLOORS and (kwargs.get("inplace") is True or args[1:2] == (True,)))
        before = args[0].detach().clone() if in_place and args and isinstance(args[0], Tensor) else None  # F.relu(x, True)
        out = func(*args, **kwargs)  # (an in-place floor is judged on its input, copied before: what it left is >= 0)
        if not self.pass_.scope.ours():  # a second pass inside this one (a user's hook calling a network of it)
            return out
        if isinstance(out, Tensor):
            self.pass_.functional(op, args, kwargs, before)
        self.pass_.follow_all(op, args, kwargs, out)  # a pooling's values beside its indices, a split's pieces too
        return out


#: in-place floors at 0, judged on a copy of their input (:func:`~.unseen.activation_call`'s ``before``)
_IN_PLACE_FLOORS = frozenset({"clamp_", "clip_", "relu_", "clamp_min_"})
_FLOORS = frozenset({"relu", "threshold"})  # F.relu(x, inplace=True) reaches the mode as relu


class _Pass(Tags):
    """One discovery pass: its calls of target modules and the order modules started in."""

    def __init__(self, backbone: nn.Module, targets, quantizer: str):
        super().__init__()
        self.backbone, self.targets, self.quantizer = backbone, targets, quantizer
        self.calls: list[_Call] = []
        self.events: list[tuple[str, object]] = []  # ("start", module) and ("site", call index), in order
        # per layer whose forward is running: (the layer, its input, the site calls that took its width)
        self.open: list[tuple[nn.Module, object, list[int]]] = []
        self.counts: dict[str, int] = {}
        self.pending: dict[str, list[int]] = {}
        self.stack: list[nn.Module] = []  # the modules whose forward is running, outermost first
        self.shields: set[int] = set()  # ids of the modules inside which an activation function is no finding
        self.names: dict[nn.Module, str] = {}
        self.act_calls: list[tuple[str, str, int, tuple]] = []  # (op, the module whose forward called it, events so
        # far, its input's shape: a call on a table computed once a pass, with no sample axis, has no units to read)
        self.checkpointed: list[nn.Module] = []  # the outermost modules that ran inside torch.utils.checkpoint
        self.outside = 0  # the checkpoint frames around the whole pass (a user's checkpoint of the whole network)

    def functional(self, op: str, args, kwargs, before=None) -> None:
        """Log a call of an activation function (``F.relu``, ``x.clamp(min=0)``) outside every activation module:
        its units are no site, which the wrapper says (:func:`find_sites`)."""
        base = activation_call(op, args, kwargs, before)
        if base and not any(id(m) in self.shields for m in self.stack):
            shape = next((tuple(t.shape) for t in tensors(args, kwargs)), ())
            self.act_calls.append((base, self.names.get(self.stack[-1], "") if self.stack else "", len(self.events), shape))

    # ---------------------------------------------------------------- hooks
    def _start(self, module, args):
        self.events.append(("start", module))
        self.stack.append(module)
        if checkpoints() > self.outside and not any(m is c for m in self.stack[:-1] for c in self.checkpointed):
            self.checkpointed.append(module)  # the outermost, checkpointed inside the backbone (not the whole network)
        if isinstance(module, _LAYERS):
            self.open.append((module, args[0] if args else None, []))
            call = self.tag(args[0])[1] if args else None
            if call is not None and self.calls[call].consumer is None:
                self.calls[call].consumer = consumes(module)

    def _end(self, module, args, output):
        for i in range(len(self.stack) - 1, -1, -1):  # its innermost call (a caller may have caught one failing)
            if self.stack[i] is module:
                del self.stack[i]
                break
        if isinstance(module, _LAYERS):
            _, given, inside = self.open.pop()
            for k in inside:  # its width only where the layer returns that activation's output
                if self.tag(output)[1] != k:
                    self.calls[k].producer = None
            width = produced(module, output)
            if width is not None:  # a norm's input's layer on another axis keeps its units (LayerNorm(T) of a conv map)
                self.mark(output, self.normed(width, given, output) if isinstance(module, _NORMS) else width)

    def _record(self, name: str, module: nn.Module, z, from_input: bool) -> int:
        calls = self.counts.get(name, 0)
        self.counts[name] = calls + 1
        shape = tuple(z.shape) if isinstance(z, Tensor) else None
        width, reader, hint = self.tag(z)[0], None, self.hint(z)
        outer = next((self.names.get(m, "") for m in self.stack if m is not module and id(m) in self.activations), None)
        if width is None and self.open and shape is not None:
            layer, given, inside = self.open[-1]
            if z is given:  # a pre-activation layer (ResNet-v2's): its activation reads the layer's own input
                reader = consumes(layer)
            elif fits(shape, inner := produced(layer, z)) is not None:  # timm's BatchNormAct2d runs its activation
                width = inner  # inside the norm's own forward: kept if the norm returns its output (`_end`)
                inside.append(len(self.calls))
        profile = None
        if shape is not None and z.numel():  # an empty map has no profile: refused by name (find_sites)
            a, profile = z.detach().double(), []
            for d in range(a.dim()):  # per row of dim d: the weighted sum, and the norm of its terms (its noise scale)
                terms = (a * _weights(a.shape, d, a.device)).movedim(d, 0).reshape(a.shape[d], -1)
                profile.append(torch.stack([terms.sum(1), terms.square().sum(1).sqrt()], 1))
        self.calls.append(_Call(self._name(name, calls), name, calls, from_input, shape, width, reader, profile, hint, outer,
                                 self.assumed(width)))
        return len(self.calls) - 1

    def _name(self, name: str, calls: int) -> str:
        """The site name of call ``calls`` of module ``name``: ``name``, then ``name:k``; ``name::k`` (or more colons)
        where ``name:k`` names another module (a ModuleDict's key "relu:1") or site: site names are unique."""
        site, colons = name, 1
        while calls and (site == name or site in self.taken):
            site, colons = f"{name}{':' * colons}{calls}", colons + 1
        self.taken.add(site)
        return site

    def _pre(self, name, from_input, module, args):
        if from_input:
            k = self._record(name, module, args[0] if args else None, True)
            self.pending.setdefault(name, []).append(k)
            if self.quantizer != "none":  # later passes record it here, before an in-place activation runs
                self.events.append(("site", k))

    def _post(self, name, from_input, module, args, output):
        if from_input:
            k = self.pending[name].pop()
            width = self.calls[k].producer  # an activation keeps its input's layout
        else:
            k, width = self._record(name, module, output, False), None
        self.mark(output, width, k)
        if not from_input or self.quantizer == "none":
            self.events.append(("site", k))

    def run(self, x: Tensor) -> _Pass:
        handles = []
        self.names = {m: n for n, m in self.backbone.named_modules()}
        self.taken = set(self.names.values())  # the site names given, and the module names they must not take
        self.activations = {id(m) for _, m, from_input in self.targets if from_input}
        self.outside = checkpoints()
        self.shields = {id(m) for _, m, _ in self.targets} | {id(m) for m in self.names if looks_like_activation(m)}
        self.scope = here = Scope(self.backbone, lambda: getattr(_ACTIVE, "recs", ()))  # its own pass only
        try:
            for m in self.backbone.modules():
                handles += [m.register_forward_pre_hook(here.only(self._start)), m.register_forward_hook(here.only(self._end))]
            for name, module, from_input in self.targets:
                handles += [module.register_forward_pre_hook(here.only(partial(self._pre, name, from_input), name)),
                            module.register_forward_hook(here.only(partial(self._post, name, from_input)))]
            handles += here.hooks(self.backbone)
            if x.dim() > 2:  # the network's input is [B, C_in, *spatial]: the wrapper's documented contract
                self.input_width = (x.shape[1], 1)
                self.mark(x, self.input_width)
            with own_pass(), _Lineage(self):
                self.backbone(x)
        finally:
            for h in handles:
                h.remove()
        return self


def _weights(shape: tuple[int, ...], d: int, device) -> Tensor:
    """Fixed random signs and sizes in [-1, 1) over every dim of ``shape`` but ``d`` (size 1 there), the same at
    2 and 3 samples when ``d`` holds them: a row's weighted sum of z moves with any shift or rescaling of its
    units (batch statistics), which the plain sum of |z| of a standardized row hardly shows."""
    g = torch.Generator().manual_seed(0)
    size = (*shape[:d], 1, *shape[d + 1:])
    return (torch.rand(size, generator=g, dtype=torch.float64) * 2 - 1).to(device)


def _run(p: _Pass, x: Tensor) -> _Pass:
    try:
        return p.run(x)
    except Exception as e:
        compiled = [n or "the backbone" for n, m in p.backbone.named_modules() if type(m).__name__ == "OptimizedModule"]
        if compiled:  # Dynamo's own assertion named neither the compile nor the fix
            raise ValueError(f"backbone: {compiled[:3]} {'is' if len(compiled) == 1 else 'are'} torch.compile'd, and its "
                             "forward pass with the hooks that find the sites failed: wrap the plain model and compile "
                             f"the NeuroView network, torch.compile(nv.wrap(model, ...)) ({type(e).__name__}: {e})") from e
        raise ValueError(failed(x, e, None)) from e  # as a later batch's is named (an integer x: its dtype)


def probe_input(shape: tuple[int, ...], *, device=None, dtype=None) -> Tensor:
    """Three random samples of ``shape`` (seeded; the global random state is left alone) to find the
    sites on where no real batch is given (``input_shape=``). Random, not zeros: identical samples
    cannot tell a site whose positions are folded ahead of its samples from one folded after them."""
    x = torch.randn(3, *shape, generator=torch.Generator().manual_seed(0))
    return x.to(device=device, dtype=dtype if dtype is not None and dtype.is_floating_point else None)


def _distinct(x: Tensor) -> Tensor:
    """A float batch of fewer than 3 samples, with random batch-mates of its scale up to 3 (one whose first 3
    are copies of one sample, ``example_input=torch.zeros(8, ...)``: its first, with 2): a site's order is told by
    its samples' values at 2 and 3 samples, which copies of one sample leave the same either way, and a third
    sample that repeats the first hardly moves the batch statistics of a layer that mixes samples."""
    if not x.is_floating_point():
        return x  # an integer batch (token ids) keeps the order a reshape of [B, ...] gives
    if len(x) > 2:
        if not bool((x[:3] == x[:1]).all()):
            return x
        x = x[:1]
    x = x.detach()  # the search needs no graph, and float() of a tensor that requires grad has torch warn the user
    scale = float(x.float().std()) if x.numel() > 1 else 1.0
    scale = scale if scale > 0 and scale != float("inf") else 1.0
    return torch.cat([x, probe_input(tuple(x.shape[1:]), device=x.device, dtype=x.dtype)[:3 - len(x)] * scale + x.mean()])


def _passes(backbone: nn.Module, targets, quantizer: str, given: Tensor) -> tuple[_Pass, _Pass, Tensor]:
    """The passes on 2 and 3 samples of ``given`` with random batch-mates (:func:`_distinct`), and the batch they ran
    on; where the batch-mates fail the backbone (float-coded ids, ``x.long()`` into an embedding), of ``given`` as it
    is (its copies then refuse only a site whose order they cannot tell: :func:`_positions_first`)."""
    x = _distinct(given)
    for batch in (x, given) if x is not given else (x,):
        try:
            return (*(_run(_Pass(backbone, targets, quantizer), batch[torch.arange(k, device=x.device) % len(batch)])
                      for k in (2, 3)), batch)
        except ValueError:
            if batch is given:  # the error of the batch as given
                raise


def find_sites(backbone: nn.Module, targets, quantizer: str, overrides: dict, x: Tensor, *, named: bool = False):
    """``(sites, not_sites, stop)`` of ``backbone`` on the real batch ``x``: the :class:`Site` list,
    ``{(module, call): why}`` for the calls that are not sites, and the name of the module to stop
    at (None when nothing runs after the last site). Activation functions called outside every
    activation module (``F.relu``) are no site: a warning names them, unless the sites are ``named``."""
    refuse_inside_checkpoint()
    refuse_meta(backbone, x)  # the search compares the samples' values: none on meta
    tree = list(backbone.modules())  # a first forward that builds modules (a lazy build): see warn_functional below
    with stand_ins(backbone):  # a model made under inference_mode: autograd refuses its tensors (ordinary copies)
        small, large, x = _passes(backbone, targets, quantizer, x)
    refuse_elsewhere(small.scope, large.scope, targets)  # branches run on worker threads: their units never read
    alike = bool((x[:3] == x[:1]).all())  # copies of one sample (integer inputs): a folded site's order cannot be told
    note_checkpointing(backbone, [small.names.get(m, type(m).__name__) or "the backbone" for m in small.checkpointed])
    if [c.name for c in small.calls] != [c.name for c in large.calls]:
        raise ValueError(f"x: the backbone calls other modules for 3 samples than for 2: {[c.name for c in small.calls]} "
                         f"and {[c.name for c in large.calls]}")
    modules, only = {name: m for name, m, _ in targets}, getattr(targets, "calls", {})
    refuse_unknown_calls(targets, small.calls)
    sites, not_sites, last, scalar = [], {}, None, []
    for k, (c, c3) in enumerate(zip(small.calls, large.calls)):
        if c.module in only and c.name not in only[c.module]:  # layers=['act:1']: act's other calls are no sites
            not_sites[(c.module, c.calls)] = "layers=[...] names other calls of its module"
            continue
        calls_of = [d.name for d in small.calls if d.module == c.module]  # its module's calls, by site name
        advice = leave_out(c.name, c.module, calls_of)
        if c.inside is not None and not named:  # an activation's own nn.ReLU, registered outside it too (targets)
            outer = list(dict.fromkeys(d.inside for d in small.calls if d.module == c.module and d.inside is not None))
            raise ValueError(f"backbone: the activation {c.module!r} runs inside the activation{'s' * (len(outer) > 1)} "
                             f"{' and '.join(map(repr, outer))} (call {c.calls} of {c.module!r}, inside {c.inside!r}) and "
                             "is registered outside too: one module at two places, whose calls inside read the same "
                             f"pre-activation again; give {' and '.join(map(repr, outer))} "
                             f"{'modules of their' if len(outer) > 1 else 'a module of its'} own, or pass layers=[...] "
                             "naming the sites")
        if c.shape is None or c3.shape is None or not c.shape:
            how = (" as its first positional argument (a call by keyword, act(input=z), hides it from the hooks that "
                   "read it: call act(z))") if c.shape is None and c.from_input else ""
            raise ValueError(f"site {c.module!r}: expected a tensor of shape [B, C, ...]{how}, got {c.shape or 'no tensor'}")
        if 0 in c.shape:  # a crop or ZeroPad2d(-k) that leaves no positions, a Linear(n, 0): codes of 0 / 0
            raise ValueError(f"site {c.name!r}: its {'input' if c.from_input else 'output'} {c.shape} holds no values (size 0 "
                             f"on dims {[d for d, n in enumerate(c.shape) if not n]}) on the samples the sites are found on "
                             f"(of shape {tuple(x.shape[1:])}): no units, or no positions over which a unit's code is a mean "
                             f"(a map that shrinks to nothing at this size: find the sites on larger samples); or {advice}")
        sd = sample_dim(c.name, c.shape, c3.shape, 2, 3, advice)
        if sd is None:  # Swin-V2's position-bias MLP runs once per pass, on a table: no per-sample code
            not_sites[(c.module, c.calls)] = f"its input {c.shape} has no sample axis"
            continue
        shape = (c.shape[sd], *c.shape[:sd], *c.shape[sd + 1:])
        if len(shape) < 2:  # one value per sample (a gate, a temperature): no units to read
            if named:
                raise ValueError(f"layers: site {c.module!r} is applied to one value per sample (shape {c.shape} on "
                                 f"the 2 samples the sites are found on), expected [B, C, ...]: it has no units to "
                                 "read; leave it out of layers=[...]")
            not_sites[(c.module, c.calls)] = f"its input {c.shape} holds one value per sample"
            scalar.append(c.name)
            continue
        alias = f"{c.module}:0" not in small.names.values()  # a module named 'act:0' keeps its own key
        axis = call_axis(c, shape, sd, overrides, calls_of, alias)  # unit_axis['act:1'], else ['act'], else the layers
        pts = breakpoints(modules[c.module]) if c.from_input else (0.0,)
        sites.append(Site(c.name, c.module, shape[axis], pts, c.from_input, axis, sd, _positions_first(c, c3, sd, alike, advice),
                          folds=c.shape[sd] // 2))
        last = k
    say_names(small.calls, named)
    if scalar:
        warnings.warn(f"wrap: the activations {scalar} are applied to one value per sample (no units), so they are no "
                      "sites and the classifier reads none of their values; pass layers=[...] naming the sites to "
                      "read, which silences this", stacklevel=3)
    stop = _stop(small, modules[small.calls[last].module], last) if last is not None else None
    # an activation module these passes built (an nn.ReLU made by the first forward) ran, unhooked, calls they logged:
    # the sites are found again on the model built (edits.found_on_built), whose passes name the calls that are
    # functional. Another module built (a pooling assigned at every forward) runs none: said here (review R4 finding 1)
    known = {id(m) for m in tree}  # (tree keeps them alive: no id of theirs is reused)
    built = any(id(m) not in known and (is_activation(m) or looks_like_activation(m)) for m in backbone.modules())
    if last is not None and not named and not built:
        warn_functional(small.act_calls, large.act_calls, small.events.index(("site", last)), stop)
    return sites, not_sites, stop


def _positions_first(small: _Call, large: _Call, sd: int, alike: bool = False, advice: str = "") -> bool:
    """Whether the ``k`` positions folded into the sample dim come ahead of the samples (rows
    ``t * B + b``, a sequence-first ``[T, B, C]`` flattened) rather than after them (``b * k + t``,
    windows cut from ``[B, ...]``): told by which order gives sample 0 the same values at 2 and
    3 samples (its batch-mates differ), and sample 1's (with two positions folded, sample 0's rows
    are the passes' first two rows in either order). Identical samples cannot tell: a float batch of one gets
    random batch-mates (:func:`_distinct`); copies of one integer sample (``alike``) at a folded site
    are an error asking for a batch of different samples. Unfolded (``k == 1``), the same comparison
    catches a layer that mixes samples (a batch mean): a clear error rather than codes that
    depend on the batch."""
    k = small.shape[sd] // 2
    a, b = small.profile[sd], large.profile[sd]
    # a signed sum's rounding scales with the norm of its terms, not with the sum (which may lie near 0): rows match
    # within 1% of that norm, which a batch statistic's shift or scale of a few % of the units' spread exceeds
    same = lambda u, v: bool(((u[..., 0] - v[..., 0]).abs() <= 1e-2 * torch.maximum(u[..., 1], v[..., 1]) + 1e-300).all())  # noqa: E731
    if k > 1 and alike:
        raise ValueError(f"x: site {small.name!r} folds {k} positions into dim {sd} of its input {small.shape}, and the "
                         "samples it was found on are copies of one, which cannot tell whether positions come ahead "
                         "of the samples or after them; find the sites on a batch of different samples "
                         "(example_input=x, or a first batch of at least 2 different samples)")
    # both samples the two passes share: with k == 2 sample 0's rows alone are rows 0 and 1 in either order
    if same(a.view(2, k, 2), b.view(3, k, 2)[:2]):
        return False
    if k > 1 and same(a.view(k, 2, 2), b.view(k, 3, 2)[:, :2]):
        return True
    folds = f"folds {k} positions into dim {sd} in no order that keeps samples apart" if k > 1 else "mixes samples"
    raise ValueError(
        f"site {small.name!r}: the values of a sample change with its batch-mates (compared at 2 and 3 samples: "
        f"its input {small.shape} {folds}); {advice or 'leave it out with layers=[...]'}"
    )


def _stop(p: _Pass, module: nn.Module, last: int) -> str | None:
    """The first module to start after the last site is read, outside the site's own module (or the head of a
    NeuroView network whose backbone holds the site: :func:`neuroview.core.reach.nested_stop`)."""
    inside = set(module.modules())
    at = p.events.index(("site", last))
    names = {m: n for n, m in p.backbone.named_modules()}
    stop = nested_stop(p.backbone, module, next((m for kind, m in p.events[at + 1:] if kind == "start" and m not in inside), None))
    return names[stop] if stop is not None else None
