"""What the sites cannot see, said when they are found: activation functions called outside activation
modules (``F.relu``: no site, so their units are not read), and gradient checkpointing inside the backbone
(which NeuroView cannot train through). :mod:`.discovery` logs both during its passes; this module judges
what it logged. Activation modules of a class no table knows (a ``Snake``, a ``Sine``) after the last site cut the
layers between them from the decision: :func:`warn_unseen_modules` tells them by what they do, not by name.

Imports only torch and the core modules :mod:`._utils`, :mod:`.reach` (the user's frame) and :mod:`.search_scope`.
"""

from __future__ import annotations

import copy
import sys
import warnings
import weakref
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from ._utils import own_rng, restore_modes
from .reach import _user_level
from .search_scope import own_pass

__all__ = ["activation_call", "checkpoints", "checkpointing", "checkpointing_message", "note_checkpointing",
           "refuse_inside_checkpoint", "warn_functional", "warn_unseen_modules"]

#: activation functions (``F.relu``, ``torch.tanh``, ``x.relu_()``, ...) whose calls are no site: named when wrapping
_FUNCTIONAL = frozenset({"relu", "relu6", "leaky_relu", "prelu", "rrelu", "elu", "celu", "selu", "gelu", "silu", "mish",
                         "softplus", "hardswish", "hardtanh", "hardsigmoid", "tanh", "sigmoid", "threshold", "glu",
                         "softsign", "logsigmoid", "log_sigmoid", "softshrink", "hardshrink", "tanhshrink"})
_NAMED = {"erf": "erf() (GELU's erf form)",  # 0.5 * x * (1 + erf(x / sqrt(2))): BERT-era code's GELU
          "erfc": "erfc() (GELU's erf form)", "ndtr": "ndtr() (GELU's normal-CDF form)", "expit": "expit() (sigmoid)"}


def activation_call(op: str, args, kwargs, before=None) -> str:
    """The activation function a torch function call ``op`` is (``"relu"``, ``"clamp(min=0)"``), or ``""``: a named
    one (``torch.special.expit`` as ``expit``), a floor at 0 (``clamp``/``clip``, ``maximum(x, 0)``) of a tensor of
    both signs (a variance kept >= 0 clips nothing: no activation), a LeakyReLU written ``maximum(x, a * x)``, or a
    gate by the sign of its own input (``x * (x > 0)``, ``where(x < 0, 0, x)``, ``masked_fill(x, x < 0, 0)``).
    Values of both signs means negatives beyond rounding (:func:`_both_signs`): a squared distance floored against
    rounding is no activation. ``relu`` is judged by its values too (ProtoPNet's ``F.relu`` of a distance).
    The mode sees a call once it ran: an in-place floor is judged on ``before`` (a copy of its input the caller took
    before the call), else on what it left (:func:`_floored`); an in-place gate (``x *= m``, ``masked_fill_``) cannot
    be told from a mask on values of one sign (``attn *= keep``): not named."""
    base = op.strip("_")
    base = base[8:] if base.startswith("special_") else base
    x = args[0] if args else kwargs.get("input")
    in_place = op.endswith("_") or kwargs.get("inplace") is True or (base == "relu" and args[1:2] == (True,))
    seen = not in_place or before is not None  # the floor's input itself, as it was before the call (F.relu(x, True))
    x = x if not in_place or before is None else before
    if base in ("clamp", "clamp_min", "clip"):  # clip: torch's alias of clamp
        low = kwargs.get("min", args[1] if len(args) > 1 else None)
        cut = _both_signs(x) if seen else _floored(x)
        return ("clip" if base == "clip" else "clamp") + "(min=0)" if _zero(low) and cut else ""
    if base == "relu" and seen and not _both_signs(x):  # a floor of values of one sign clips nothing
        return ""
    if base in ("maximum", "max", "fmax"):  # (max(x, dim) returns no tensor: never here)
        a, b = x, args[1] if len(args) > 1 else kwargs.get("other")
        if any(_zero(u) and _both_signs(v) for u, v in ((a, b), (b, a))):
            return f"{base}(x, 0)"
        return f"{base}(x, a * x)" if _leaky(a, b) or _leaky(b, a) else ""
    if base in ("mul", "multiply", "rmul", "where") and not op.endswith("_"):
        said = _sign_gate(base, [*args, *kwargs.values()])
        return "" if not said else f"x * ({said})" if base != "where" else \
            "where(x > 0, x, ...)" if said == "x > 0" else f"where({said}, ...)"
    if op == "masked_fill":
        fill = kwargs.get("value", args[2] if len(args) > 2 else None)
        said = _sign_gate(base, [x, kwargs.get("mask", args[1] if len(args) > 1 else None)]) if _zero(fill) else ""
        return f"masked_fill(x, {said}, 0)" if said else ""
    return _NAMED.get(base, base if base in _FUNCTIONAL else "")


def _both_signs(v) -> bool:
    """Whether ``v`` is a float tensor holding values of both signs beyond rounding (a floor at 0 of it clips
    something): each sign reaches past 1e-3 of its typical magnitude (the median of its non-zero magnitudes) and past
    4 ``eps`` (its dtype's) of its largest, the rounding of terms that large: a squared distance or a variance a hair
    below 0 by cancellation is of one sign, and a pre-activation (about half its values below 0, of the positives'
    size) is of both, however large its largest value (1e-3 of the largest hid a floor clipping half the values beside
    one outlier)."""
    try:
        if not (isinstance(v, Tensor) and v.is_floating_point() and v.numel()):
            return False
        d = v.detach()
        mags = d.abs()[d != 0]
        if not mags.numel():
            return False
        tol = max(1e-3 * float(mags.float().median()), 4 * torch.finfo(d.dtype).eps * float(mags.max()))
        return float(d.min()) < -tol and float(d.max()) > tol
    except Exception:  # noqa: BLE001 (a sparse or nested tensor: no finding, and never a failed pass)
        return False


def _floored(v) -> bool:
    """Whether ``v``, a float tensor an in-place floor at 0 just ran on, holds exact zeros beside positive values:
    what clipping values of both signs leaves, and also what a floor of values >= 0 with an exact 0 (a dead channel's
    variance) leaves: used only where the caller kept no copy of the input (``before`` of :func:`activation_call`)."""
    try:
        return isinstance(v, Tensor) and v.is_floating_point() and bool((v == 0).any()) and bool((v > 0).any())
    except Exception:  # noqa: BLE001
        return False


def _leaky(v, w) -> bool:
    """Whether ``w`` is ``a * v`` for one number 0 < a < 1, ``v`` a float tensor of both signs: ``max(v, w)`` is then
    a LeakyReLU of slope ``a`` (a fused branch, a residual, any other tensor is not)."""
    try:
        if not (_both_signs(v) and isinstance(w, Tensor) and w.shape == v.shape and w.is_floating_point()):
            return False
        on = v != 0
        r = (w[on].double() / v[on].double())
        return bool((w[~on] == 0).all()) and 0 < float(r.min()) and float(r.max()) < 1 and \
            float(r.max() - r.min()) <= max(1e-5, 4 * torch.finfo(w.dtype).eps) * float(r.max())  # a * v rounded
    except Exception:  # noqa: BLE001
        return False


def _zero(v) -> bool:
    """Whether ``v`` is the number 0 or a tensor of zeros (not a bool)."""
    if isinstance(v, Tensor):
        try:
            return v.dtype != torch.bool and v.numel() > 0 and not bool(v.any())
        except Exception:  # noqa: BLE001 (a sparse or nested tensor: no finding, and never a failed pass)
            return False
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == 0


def _sign_gate(base: str, given: list) -> str:
    """``"x > 0"`` or ``"x < 0"`` where a mask among ``given`` is that sign of the float tensor beside it (``x <= 0``
    too: the ReLU written out, or its mirror; either bit where ``x`` is 0), else ``""``; a mask of anything else
    (padding, attention) is no activation, nor is one beside a tensor of one sign (any mask of ones times softmax
    weights, any mask times zeros)."""
    ts = [t for t in given if isinstance(t, Tensor)]
    masks = [t for t in ts if t.dtype == torch.bool or (base not in ("where", "masked_fill") and t.is_floating_point())]
    try:
        for m in masks:
            for v in ts:
                if v is m or not _both_signs(v) or v.shape != m.shape or not bool(((m == 0) | (m == 1)).all()):
                    continue
                on, mb = v != 0, m != 0
                for sign, said in ((v > 0, "x > 0"), (v < 0, "x < 0")):
                    if torch.equal(mb[on], sign[on]):
                        return said
    except Exception:  # noqa: BLE001 (a sparse or nested tensor: no finding, and never a failed pass)
        pass
    return ""


def warn_functional(small: list, large: list, last: int, stop: str | None) -> None:
    """Warn of the activation-function calls logged by discovery's passes on 2 (``small``) and 3 (``large``) samples,
    each ``(op, module name, events before it, its input's shape)``; ``last``: the event of the last site. Calls whose
    input does not follow the batch (Swin-V2's ``16 * sigmoid(table)``, once a pass) hold no unit and are left out."""
    calls = small if len(small) != len(large) else [c for c, c3 in zip(small, large) if c[3] != c3[3]]
    if not calls:
        return
    counts: dict[tuple[str, str], int] = {}
    for op, where, *_ in calls:
        counts[(op, where)] = counts.get((op, where), 0) + 1
    said = ", ".join(f"{op if '(' in op else op + '()'} in " + (f"the forward of {where!r}" if where else "the backbone's own "
                     "forward") + (f" ({n} calls)" if n > 1 else "") for (op, where), n in counts.items())
    after = sum(at > last for _, _, at, _ in calls)
    cut = (f"; {after} of those calls come after the last site, where the decision stops (at {stop!r}): the layers "
           "from there on take no part in the decision and are frozen") if after else ""
    warnings.warn(f"wrap: the backbone calls activation functions outside any activation module: {said}. NeuroView "
                  f"quantizes module calls only, so the classifier reads none of their units{cut}. Replace them by "
                  "modules (nn.ReLU(), nn.GELU(), ...), or pass layers=[...] naming the sites to read, which silences "
                  "this", stacklevel=_user_level())


#: modules that are never an activation (a layer with weights, a regularizer, a reshape, a pooling), not tried; by
#: class name too, for the ecosystem's (torchvision's StochasticDepth and Permute, timm's DropPath), never imported
_PLAIN = (nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.Embedding,
          nn.modules.dropout._DropoutNd, nn.Identity, nn.Flatten, nn.Unflatten, nn.RNNBase, nn.MultiheadAttention)
_PLAIN_NAME = ("drop", "stochasticdepth", "identity", "permute", "transpose", "reshape", "flatten", "pool", "pad",
               "upsampl", "shuffle", "interpolat", "resize", "crop")


def warn_unseen_modules(net: nn.Module, x: Tensor) -> None:
    """Warn of the modules of ``net.backbone`` (a NeuroViewCNN whose default sites are found on ``x``) that run after
    the last site and act as activations, each output value a nonlinear function of its own input value alone (a
    ``Snake``, a ``Sine``), though no table knows their class, where layers with weights run between the last site and
    them: those layers take no part in the decision (frozen, by the wrapper or by the user), and would if the class
    were registered. One after which only the head runs cuts nothing it would gain, and is not named. Told by what
    they do, on their own input of one more eval-mode pass (run only where a leaf module of an unknown kind and an
    unreached layer with weights are both found; the caller's random state and the modules' buffers and attributes
    are left as they were; the backbone's own forward hooks do run once more), so that the ordinary layers that run
    after the last site (a transformer's last ``fc2`` and norm, a pooling, a drop path) are never named."""
    off = set(net.__dict__.get("frozen", ())) | set(net.__dict__.get("_kept_frozen", ()))  # every unreached parameter
    if getattr(net, "_named", True) or not off or torch.compiler.is_compiling():
        return
    backbone, left = net.backbone, {n for n, _ in net.left_out}
    targets = {id(m) for _, m, _ in net._targets}
    tried = {}
    for n, m in backbone.named_modules():
        if (n and id(m) not in targets and n not in left and next(m.children(), None) is None
                and not isinstance(m, _PLAIN) and not any(k in type(m).__name__.lower() for k in _PLAIN_NAME)
                and all(f"{n}.{k}" in off for k, _ in m.named_parameters(recurse=False))):
            tried.setdefault(m, n)
    holders = {o: backbone.get_submodule(o) for p in off if (o := p.rpartition(".")[0])}
    if not tried or not [m for m in holders.values() if m not in tried]:
        return
    with own_rng(x.device), _kept_state(backbone):
        found, cut = _after_last_site(net, x, tried, holders)
    if not found:
        return
    named, kinds = [tried[m] for m in found], list(dict.fromkeys(type(m).__name__ for m in found))
    one, many = len(named) == 1, len(kinds) > 1
    warnings.warn(f"wrap: {named} ({', '.join(kinds)}) run{'s' * one} after the last site, where the decision stops "
                  f"(at {net._stop!r}), and act{'s' * one} as {'an activation' if one else 'activations'} (each output "
                  f"value a nonlinear function of its own input value) of {'classes' if many else 'a class'} NeuroView "
                  f"does not know: the layers with weights between the last site and {'it' if one else 'them'} "
                  f"({cut[:6]}{' ...' if len(cut) > 6 else ''}) take no part in the decision and are frozen. If "
                  f"{'it is an activation' if one else 'they are activations'}, register "
                  f"{'their classes' if many else 'its class'} before wrapping, "
                  + "; ".join(f"nv.register_activation({k}, breakpoints=(0.0,))" for k in kinds)
                  + f" (where its pieces meet), so that {'its' if one else 'their'} calls are sites; or pass "
                  "layers=[...] naming the sites to read, which silences this", stacklevel=_user_level())


@contextmanager
def _kept_state(backbone: nn.Module):
    """A block after which the buffers and attributes (numbers, strings, tuples: a call counter, an initialised flag;
    tensors: a running max kept outside the buffers; lists and dicts, one level deep: a log, counters) of
    ``backbone``'s modules are as they were before it: a pass of ours leaves no trace in them."""
    plain = (int, float, bool, str, tuple, type(None), Tensor, list, dict)
    attrs = [(m, {k: (v, v.detach().clone() if isinstance(v, Tensor) else list(v) if isinstance(v, list) else dict(v)
                      if isinstance(v, dict) else v)
                  for k, v in vars(m).items() if not k.startswith("_") and k != "training" and isinstance(v, plain)})
             for m in backbone.modules()]
    bufs = [(m, k, b, b.clone()) for m in backbone.modules() for k, b in m._buffers.items() if b is not None]
    try:
        yield
    finally:
        with torch.no_grad():
            for m, saved in attrs:
                vars(m).update((k, v) for k, (v, _) in saved.items())
                for v, old in saved.values():
                    _put_back(v, old)
            for m, k, b, old in bufs:
                m._buffers[k] = b
                try:
                    if not torch.equal(b, old):
                        b.copy_(old)
                except Exception:  # noqa: BLE001 (an inference tensor: a note is never a failed wrap)
                    pass


def _put_back(v, old) -> None:
    """Put the contents ``old`` (a copy taken before a pass) back into the tensor, list or dict ``v``."""
    try:
        if isinstance(v, Tensor) and not torch.equal(v, old):
            v.copy_(old)
        elif isinstance(v, list):
            v[:] = old
        elif isinstance(v, dict):
            v.clear()
            v.update(old)
    except Exception:  # noqa: BLE001 (an inference tensor: a note is never a failed wrap)
        pass


def _after_last_site(net: nn.Module, x: Tensor, tried: dict, holders: dict) -> tuple[list[nn.Module], list[str]]:
    """The modules of ``tried`` that, in one eval-mode pass of ``net.backbone`` on ``x`` (``net``'s hooks record
    nothing outside its own passes), run after the last site with a module of ``holders`` (name -> module holding an
    unreached parameter) starting between the last site and them, and act as activations on the input they got there
    (:func:`_acts`); one on a vector per sample with no such module after it (an output activation: on the logits,
    an embedding) needs one more between, as the last of them is the head. And the names of the modules of
    ``holders`` between (``backbone.<name>``), in order. A pass that fails tells nothing."""
    sites = {s.module for s in net.sites}
    events: list[tuple[str, nn.Module, object]] = []
    hooks, restore = [], restore_modes(net.backbone)
    try:
        hooks += [m.register_forward_hook(lambda m, a, out: events.append(("site", m, None)))
                  for n, m, _ in net._targets if n in sites]
        hooks += [m.register_forward_pre_hook(lambda m, a: events.append(("layer", m, None))) for m in holders.values()]
        hooks += [m.register_forward_hook(lambda m, a, out: events.append(("tried", m, (a[0] if a else None, out))))
                  for m in tried]  # (an in-place module's input is its output by then: still a nonlinear function)
        net.backbone.eval()
        with torch.no_grad(), own_pass():
            net.backbone(x.clone())  # (an in-place op on the input: the caller's batch stays)
            for h in hooks:
                h.remove()
            last = max((i for i, (kind, _, _) in enumerate(events) if kind == "site"), default=len(events))
            acts: dict[nn.Module, bool] = {}
            found: dict[nn.Module, None] = {}
            cut: dict[nn.Module, None] = {}
            for i, (kind, m, z) in enumerate(events):
                if kind != "tried" or i <= last:
                    continue
                between = [h for k, h, _ in events[last + 1:i] if k == "layer" and h is not m]
                head = isinstance(z[1], Tensor) and z[1].dim() <= 2 and not any(k == "layer" for k, _, _ in events[i:])
                if not between[:-1] if head else not between:  # on the logits, the head ahead of it is the head
                    continue
                if m not in acts:
                    acts[m] = _acts(m, z[0])
                if not acts[m]:
                    continue
                found[m] = None
                cut.update((h, None) for h in between)
            names = {id(h): n for n, h in holders.items()}
            cut_names = [f"backbone.{names[id(h)]}" for h in cut if h not in found]
            return ([m for m in found], cut_names) if cut_names else ([], [])
    except Exception:  # noqa: BLE001 (the passes before this one ran; a note that cannot be made is not an error)
        return [], []
    finally:
        for h in hooks:
            h.remove()
        restore()


def _acts(m: nn.Module, z) -> bool:
    """Whether ``m`` (a leaf, in eval mode) acts as an activation on ``z``: it returns a float tensor of ``z``'s
    shape, not ``z`` itself (dropout at eval), where moving some input values moves those output values only
    (no norm, softmax or permute) and not as an affine map does (no scale, no shift: ``f(2z) - 2f(z) + f(0)`` and
    ``f(z) + f(-z) - 2f(0)`` are both 0 for those, not for a ReLU, a tanh, a sine). The forward of a deep copy of
    it is called directly: no hook runs, and ``m`` keeps no trace of the probes. A seeded generator of its own: the
    caller's random state is not drawn from."""
    if not isinstance(z, Tensor) or not z.is_floating_point() or z.numel() < 2:
        return False
    try:  # probed on a copy: whatever state its forward keeps (an observer's range, a log) sees no probe
        m = copy.deepcopy(m)
    except Exception:  # noqa: BLE001 (a module that cannot be copied is not probed: no finding)
        return False
    f = lambda t: m.forward(t.clone())  # noqa: E731 (an in-place activation: each call on its own copy)
    try:
        y = f(z)
        if not isinstance(y, Tensor) or y.shape != z.shape or not y.is_floating_point() or torch.equal(y, z):
            return False
        g = torch.Generator().manual_seed(0)
        moved = (torch.rand(z.shape, generator=g) < 0.5).to(z.device)
        step = torch.randn(z.shape, generator=g).to(z.device, z.dtype) * (z.float().std() + 1e-3).to(z.dtype)
        far = (f(z + step * moved) - y).double()[~moved].abs()
        if far.numel() and float(far.max()) > 1e-5 * float(y.double().abs().max() + 1e-12):
            return False
        y0, y2, yn = (f(t).double() for t in (torch.zeros_like(z), 2 * z, -z))
        y1 = y.double()
        off = ((y2 - 2 * y1 + y0).abs() + (y1 + yn - 2 * y0).abs()).sum()
        size = (y2.abs() + 2 * y1.abs() + yn.abs() + 2 * y0.abs()).sum()
        return bool(off > max(1e-3, 8 * torch.finfo(z.dtype).eps) * size)
    except Exception:  # noqa: BLE001 (a module that refuses another input is no finding)
        return False


def checkpoints() -> int:
    """How many frames of ``torch.utils.checkpoint`` (either mode) the caller runs inside: read off the call stack,
    once per module call of discovery."""
    f, n = sys._getframe(1), 0
    while f is not None:
        n += f.f_code.co_filename.replace("\\", "/").endswith("torch/utils/checkpoint.py")
        f = f.f_back
    return n


#: backbone -> the modules discovery saw run inside torch.utils.checkpoint (weakly: it goes with the backbone)
_SEEN: "weakref.WeakKeyDictionary[nn.Module, list[str]]" = weakref.WeakKeyDictionary()


def checkpointing(backbone: nn.Module) -> list[str]:
    """The modules of ``backbone`` with gradient checkpointing: seen running inside ``torch.utils.checkpoint`` as the
    sites were found, or switched on by the ecosystem's flags (Hugging Face's ``gradient_checkpointing``, timm's
    ``grad_checkpointing``), which checkpoint only while training and so are not seen in eval mode."""
    flags = [n or "the backbone" for n, m in backbone.named_modules()
             if getattr(m, "gradient_checkpointing", False) is True or getattr(m, "grad_checkpointing", False) is True]
    return list(dict.fromkeys(_SEEN.get(backbone, []) + flags))


def refuse_inside_checkpoint() -> None:
    """Refuse finding the sites inside a checkpoint of the whole network: their extra passes would save tensors its
    recomputation does not (torch's CheckpointError in backward)."""
    if checkpoints():
        raise ValueError("x: the sites are found on the first batch, and this one runs inside torch.utils.checkpoint; "
                         "find them outside it first: build with example_input=x, or call the network once outside")


def note_checkpointing(backbone: nn.Module, checkpointed: list[str]) -> None:
    """Note the modules discovery saw run inside ``torch.utils.checkpoint`` (``checkpointed``) and warn of them and of
    the flags' modules (:func:`checkpointing`). NeuroView cannot train a backbone through them, which
    ``NeuroViewModule`` refuses when the backbone trains; a frozen one (``retrofit``, ``freeze_backbone``) only reads
    its codes, as it may."""
    if checkpointed:
        _SEEN[backbone] = checkpointed
    else:  # found again without: what an earlier discovery saw is no longer so
        _SEEN.pop(backbone, None)
    names = checkpointing(backbone)
    if names:
        warnings.warn(checkpointing_message(names), stacklevel=_user_level())


def checkpointing_message(names: list[str]) -> str:
    """Why a backbone with gradient checkpointing in ``names`` cannot be trained through NeuroView, and the fix."""
    return (f"backbone: {names[:6]}{' ...' if len(names) > 6 else ''} run inside torch.utils.checkpoint (gradient "
            "checkpointing; or have it switched on for training), which NeuroView cannot train the backbone through: "
            "with use_reentrant=True the codes of their sites carry no gradient and their weights look unreached "
            "(frozen), with use_reentrant=False their recomputation fails in backward. A frozen backbone (retrofit, "
            "freeze_backbone) is read as it is; to train it, turn checkpointing off (timm: "
            "model.set_grad_checkpointing(False); Hugging Face: model.gradient_checkpointing_disable())")
