"""Small facts about modules and values that every core module needs: one home for each.

Imports only torch, and :mod:`.name_text` (the names' rule, :func:`name_sequence`, re-exported here).
"""

from __future__ import annotations

import operator
import threading
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from .name_text import name_sequence  # noqa: F401 - the names' rule, importable from here


def factory(module: nn.Module) -> dict:
    """``device`` and ``dtype`` of a module's first floating-point parameter or buffer, to build
    new layers (the global classifier) beside it; ``{}`` when it has none."""
    for t in (*module.parameters(), *module.buffers()):
        if t.is_floating_point():
            return {"device": t.device, "dtype": t.dtype}
    return {}


def param_dtype(module: nn.Module) -> torch.dtype | None:
    """dtype of a module's first parameter (None without parameters)."""
    p = next(module.parameters(), None)
    return None if p is None else p.dtype


def describe(v) -> str:
    """``tensor of shape (...)`` or the type name, for error messages."""
    return f"tensor of shape {tuple(v.shape)}" if isinstance(v, Tensor) else type(v).__name__


def is_bool(value) -> bool:
    """Whether ``value`` is a bool or holds bools: Python's, numpy's or torch's, a scalar, an array or a list."""
    if isinstance(value, (list, tuple)) and value:  # a mask as a list: [c == 2 for c in y]
        return all(is_bool(v) for v in value)
    dtype = getattr(value, "dtype", None)
    return isinstance(value, bool) or dtype == torch.bool or getattr(dtype, "kind", None) == "b"


def refuse_bools(value, what: str, hint: str, expected: str = "a class index or a tensor of them") -> None:
    """A TypeError naming ``what`` where ``value`` is a bool or a mask of them, given for class indices: True read as
    class 1, and a mask (``y == 2``: "the class-2 samples") as classes 1 and 0. ``hint``: what to pass instead;
    ``expected``: what ``what`` holds, for an argument of other integers (lengths, sample indices)."""
    if is_bool(value):
        raise TypeError(f"{what}: expected {expected}, got {value!r:.60} (booleans: {hint})")


def positive_int(value, what: str = "k", *, none: bool = False, least: int = 1) -> int | None:
    """``value`` as a positive int (a Python, numpy or 0-dim integer tensor int; ``None`` too with ``none``) of at
    least ``least``; else a ValueError naming ``what``. A bool is refused (``k=True`` read as 1), and so are 0 and
    negatives (an empty result, or torch's bare "selected index k out of range")."""
    if value is None and none:
        return None
    try:
        n = None if is_bool(value) else operator.index(value)  # numpy's and torch's too (k=torch.tensor(True) read as 1)
    except TypeError:
        n = None
    if n is None or n < least:
        want = "a positive int" if least == 1 else f"an int >= {least}"
        raise ValueError(f"{what}: expected {want}{' or None' if none else ''}, got {value!r}")
    return n


def require_finite(x: Tensor, where: str = "") -> None:
    """A clear error where the float input ``x`` holds NaN or Inf (a data-dependent check: one host
    sync where ``x`` is on a device). Under ``torch.compile`` an assert traced into the graph takes its
    place (no graph break; a ``RuntimeError`` with the same message, raised asynchronously on CUDA): a
    network a user compiles keeps the check (it returned finite logits for an Inf input). ``where``: what
    of ``x`` was checked, for the message (an RNN's padding zeroed first: " in its valid steps")."""
    if torch.compiler.is_compiling():
        if x.is_floating_point():
            torch._assert_async(torch.isfinite(x).all(), f"x: contains NaN or Inf{where}; clean the input first")
        return
    if x.device.type == "meta":  # no values to read: torch's shape inference (a meta network on a meta x)
        return
    try:
        finite = not x.is_floating_point() or bool(torch.isfinite(x).all())
    except RuntimeError as e:  # torch.func.vmap: no data-dependent branch (and no batched assert) inside it
        if "data-dependent control flow" not in str(e):
            raise
        raise ValueError("x: the network checks its input for NaN and Inf, which cannot be done inside "
                         "torch.func.vmap; set net.check_finite = False (and check the inputs before)") from None
    if not finite:
        bad = ~torch.isfinite(x)
        rows = bad.flatten(1).any(1).nonzero().flatten().tolist() if x.dim() > 1 else []  # dim 0 holds the samples
        at = f" in samples {rows[:5]}{' and more' if len(rows) > 5 else ''}" if rows else ""
        error = ValueError(f"x: contains NaN or Inf{where} ({int(bad.sum())} of {x.numel()} values){at}; clean the "
                           "input first")
        error.nonfinite_samples = rows  # the rows of x that hold them: a loop over a loader names them (named_samples)
        raise error


@contextmanager
def named_samples(what: str, batch: int, before: list | int):
    """A block reading batch ``batch`` (counted from 0) of a loader, ``before`` the samples read before it: their count,
    or the per-sample results of the earlier batches (one row per sample, counted only once an error needs them): a
    :func:`require_finite` error inside it re-raised naming ``what`` (the user's argument) and the samples, where the
    network's own "x: ... (1 of 1024 values)" named an ``x`` the user never passed and no row of the data set."""
    try:
        yield
    except ValueError as e:
        if not getattr(e, "nonfinite_samples", None):
            raise
        offset = before if isinstance(before, int) else sum(len(r) for r in before)
        rows = [offset + i for i in e.nonfinite_samples]
        more = " and more" if len(rows) > 5 else ""
        raise ValueError(f"{what}: sample{'s' if len(rows) > 1 else ''} {rows[0] if len(rows) == 1 else rows[:5]}{more} "
                         f"(batch {batch}, counted from 0 in the order read) contain{'' if len(rows) > 1 else 's'} NaN "
                         "or Inf; clean the data first (drop or fill those samples)") from e


def require_neuroview(net, what: str = "net") -> None:
    """A clear error where a function of NeuroView networks is handed another model (it failed with an AttributeError
    on ``explain`` or ``effective_classifier``), or one in torch's wrappers (:func:`wrapped_hint`): a ``torch.compile``d
    one forwards every attribute to the network, but ``isinstance`` sees an OptimizedModule."""
    ours = lambda m: callable(getattr(m, "effective_classifier", None)) and callable(getattr(m, "explain", None))  # noqa: E731
    if type(net).__name__ == "OptimizedModule" or not ours(net):
        raise TypeError(f"{what}: expected a NeuroView network" + (wrapped_hint(net, ours, what) or
                        f" (nv.wrap(model, num_classes=...), a zoo 'nv_*' model), got {type(net).__name__}"))


def wrapped_hint(net, accepts, what: str = "net") -> str:
    """``", got a DataParallel (around a NeuroViewCNN); pass net.module, ..."``: a refusal's end where ``net`` is torch's
    wrapper (``.module``: DDP, AveragedModel, FSDP's; torch.compile's ``._orig_mod``) of a network ``accepts``, else ``""``."""
    path, chain, inner, a = what, [], net, lambda m: f"{'an' if type(m).__name__[:1] in 'AEIOU' else 'a'} {type(m).__name__}"
    while len(chain) < 4:  # (by name, as discovery finds them: torch._dynamo is not imported here)
        attr = "_orig_mod" if type(inner).__name__ == "OptimizedModule" else "module"
        if not isinstance(getattr(inner, attr, None), nn.Module):
            return ""
        inner, path = getattr(inner, attr), f"{path}.{attr}"
        chain.append(a(inner))
        if type(inner).__name__ != "OptimizedModule" and accepts(inner):  # a compiled one: on to its _orig_mod
            how = (f"the network it compiled, {path} (the same weights), or the one you gave torch.compile" if len(chain) == 1
                   and attr == "_orig_mod" else f"{path}, the network {'they wrap' if chain[1:] else 'it wraps'} (the same weights)")
            kind = "a torch.compile'd OptimizedModule" if path.startswith(f"{what}._orig_mod") else a(net)
            return f", got {kind} (around {' around '.join(chain)}); pass {how}"
    return ""


def require_built(net, what: str = "net") -> None:
    """A network wrapped lazily (``nv.wrap(model, num_classes)`` without ``input_shape``, no batch seen) has no
    classifier yet: a function reading its decisions would build a random one on the caller's network and read it."""
    ensemble = isinstance(getattr(net, "members", None), nn.ModuleList)
    lazy = [i for i, m in enumerate(net.members if ensemble else [net]) if getattr(m, "classifier", None) is None]
    if lazy:
        whose = f"members {lazy} of an Ensemble have" if ensemble else f"a {type(net).__name__} has"
        raise ValueError(f"{what}: expected a trained NeuroView network, got one whose classifier was never built ({whose} "
                         "no head: wrapped without input_shape or example_input, and no batch seen); train it first, or "
                         "build it with example_input= (or input_shape=) and train it")


def as_labels(y, what: str = "y", num_classes: int | None = None) -> Tensor:
    """``y`` as long class indices. Whole numbers stored as floats (labels read from a CSV or a float array) pass; a
    fraction, NaN or Inf is an error naming ``what``, where ``.long()`` alone would truncate 0.7 to class 0 and go
    on with wrong labels. Bools, where the caller's network has ``num_classes=2``: a 2-class task's labels stored as
    bool (``is_anomaly``, ``df.label == "pos"``), read as classes 0 (False) and 1 (True), as the data modules read a
    bool label column; with more classes, or a count the caller does not know (None), refused by name
    (:func:`refuse_bools`): a mask (``y == 1``, "the class-1 samples") of a task of more classes was read as classes
    1 and 0."""
    if num_classes != 2:
        more = f" (a task of {num_classes} classes)" if num_classes is not None else ""
        refuse_bools(y, what, f"a mask picks samples, not classes{more}: pass each sample's class index, or y.long() "
                              "where True and False are classes 1 and 0")
    if isinstance(y, str) or (isinstance(y, (list, tuple)) and any(isinstance(v, str) for v in y)):
        raise TypeError(f"{what}: expected class indices, got the string {y!r}; a class's name is not its index "
                        "(class_names.index(name) gives it)")
    if getattr(getattr(y, "dtype", None), "kind", None) in ("U", "S", "O"):  # numpy's str, bytes, object: torch's bare TypeError
        text = [v for v in y.ravel().tolist() if isinstance(v, (str, bytes))][:1]
        raise TypeError(f"{what}: expected class indices, got " + (
            f"the string {text[0]!r} in an array of dtype {y.dtype}; a class's name is not its index "
            "(class_names.index(name) gives it)" if text else f"an array of dtype {y.dtype}; convert it (y.astype(int))"))
    y = torch.as_tensor(y)
    if y.is_complex():
        raise ValueError(f"{what}: expected integer class labels, got dtype {y.dtype}")
    if y.is_floating_point():
        bad = ~torch.isfinite(y) | (y != y.round())
        if bool(bad.any()):
            raise ValueError(f"{what}: expected integer class labels, got dtype {y.dtype} with values that are not "
                             f"whole numbers (e.g. {y[bad].flatten()[0].item()!r})")
    return y.long()


def batch_labels(y, n: int, num_classes: int, what: str) -> Tensor:
    """One batch's labels as class indices, one per sample in ``[0, num_classes)``; else an error naming ``what`` (one-hot
    rows, a short ``y`` or a label the head has no class for reached torch bare); bools as :func:`as_labels` reads
    them for ``num_classes``."""
    y = as_labels(y, what, num_classes)
    if y.shape != (n,):
        raise ValueError(f"{what}: expected one class index per sample, shape [{n}], got labels of shape {tuple(y.shape)}"
                         + (" (a column: pass y.squeeze(1))" if y.shape == (n, 1) else
                            " (one-hot rows: pass y.argmax(1))" if y.dim() == 2 and y.shape[0] == n else ""))
    if n and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        one = int(y.min()) >= 1 and int(y.max()) == num_classes
        raise ValueError(f"{what}: labels must lie in [0, {num_classes}) (the network's classes), got "
                         f"{sorted(torch.unique(y).tolist())}" + (" (labels counted from 1? pass y - 1)" if one else ""))
    return y


def own_rng(device: torch.device | str | None = None):
    """A block whose draws leave the caller's random state as it was (the CPU's, and ``device``'s where it is CUDA, MPS
    or XPU: finetune_sparse seeds it, and an MPS one stayed seeded): initial weights that are replaced anyway, a loader's seed."""
    device = torch.device(device or "cpu")
    kind = device.type if device.type in ("cuda", "mps", "xpu") else None  # None: no device's generator read or set
    return torch.random.fork_rng(devices=[device] if kind else [], device_type=kind)


def rng_as_built(built: tuple[torch.Tensor, int] | None) -> None:
    """Undo Lightning's reseed of a process: ``built`` is ``(CPU generator state, torch.initial_seed())`` taken when a
    module was built, and the caller passes it only under a strategy whose setup reseeds every process (DDP, FSDP:
    ``reset_seed``). Where the generator is now freshly seeded with that same seed, it is set back to ``state``, so a
    head built lazily draws what one process of the seed draws (it started 0.13 apart). A seed of the user's since
    (another seed) or any draw since leaves the generator as it is."""
    if built is None:
        return
    state, seed = built
    now = torch.get_rng_state()
    if torch.initial_seed() == seed and not torch.equal(now, state) and torch.equal(now, torch.Generator().manual_seed(seed).get_state()):
        torch.set_rng_state(state)


# Every module some call holds in its modes (restore_modes): id -> [holders, its mode when first held, the module].
# Two threads explaining one network share its modes: the first to hold a module saves its mode, the last to let go
# puts it back (the first to finish put back a training mode while the other's pass ran, and the other then saved
# and gave back eval mode for good).
_HELD: dict[int, list] = {}
_HELD_LOCK = threading.RLock()  # re-entrant: a train() override may explain


def restore_modes(module: nn.Module) -> "callable":
    """Remember every submodule's train/eval mode; the returned function puts each one back (``module.train(was)`` would
    flip a frozen eval-mode backbone into training). Each module's own flag is set directly: ``m.train(mode)`` on
    every module walked every subtree again (a module's calls grew with its depth, and toggling modes was most of a
    small ensemble's explain). A module whose class overrides ``train`` still gets its call (whatever else it sets),
    parents before children, so every flag ends as it was.

    Re-entrant and thread-safe: every caller sets eval mode inside, and a module held by several calls (two
    threads explaining one network, an ensemble's explain and its members') is put back only by the last one to
    let go, to the mode it had when first held. Calling the returned function again does nothing."""
    mods = list(module.modules())
    with _HELD_LOCK:
        held = _HELD.get
        for m in mods:
            entry = held(id(m))
            if entry is None:
                _HELD[id(m)] = [1, m.training, m]
            else:
                entry[0] += 1
    done = []

    def restore() -> None:
        with _HELD_LOCK:
            if done:
                return
            done.append(True)
            freed = []
            for m in mods:
                entry = _HELD[id(m)]
                entry[0] -= 1
                if not entry[0]:
                    freed.append(_HELD.pop(id(m)))
            base = nn.Module.train
            own = [type(m).train is not base for _, _, m in freed]
            # a train() override sets its children too: those still held by another call keep their flags
            kept = [(m, m.training) for m in mods if id(m) in _HELD] if any(own) else ()
            for (_, mode, m), call in zip(freed, own):
                if call:
                    m.train(mode)
                else:
                    m.training = mode
            for m, mode in kept:
                m.training = mode
            root = next((e for e in freed if e[2] is module), None)
            if root is not None:  # modules made during the hold (a lazy head built by explain) take the root's mode
                ids = {id(m) for m in mods}
                for m in module.modules():
                    if id(m) not in ids and id(m) not in _HELD:
                        m.training = root[1]
    return restore


def _hook_names(hooks) -> str:
    return ", ".join(getattr(h, "__qualname__", type(h).__name__) for h in hooks)


def _foreign(hooks) -> list:
    """The hooks that are neither neuroview's own (its site hooks, those finding the sites of an outer wrap that reads
    a NeuroView network as a layer) nor observers that only read shapes: Lightning's model summary, torch's
    ModuleTracker (FlopCounterMode's)."""
    def module(h) -> str:
        return getattr(getattr(h, "func", h), "__module__", None) or type(h).__module__
    return [h for h in hooks if not module(h).startswith(("neuroview.", "torch.utils.module_tracker"))
            and not module(h).endswith(".model_summary")]


def explaining(net: nn.Module) -> "callable":
    """:func:`restore_modes` of ``net``, then ``net.eval()``: what ``explain`` runs in, after
    :func:`refuse_own_hooks`."""
    refuse_own_hooks(net)
    restore = restore_modes(net)
    try:
        net.eval()
    except BaseException:  # (a train() override that fails) the hold is let go: no later call could give the modes back
        restore()
        raise
    return restore


def refuse_own_hooks(net: nn.Module, what: str = "explain") -> None:
    """Refuse a forward (pre-)hook on the network itself: ``explain`` computes the decision without calling the
    network, so the hook would not run and the explanation would not be of the logits ``net(x)`` returns
    (neuroview's own site hooks, which an outer wrap puts on a network it reads as a layer, are left alone)."""
    # (torch's global module hooks are left alone: they run for every module the pass calls, and are most often
    # observers, a profiler's or a test's; one that changed the network's own output would go unseen here)
    own = _foreign((*net._forward_pre_hooks.values(), *net._forward_hooks.values()))
    if own:
        raise ValueError(f"{what}: the {type(net).__name__} carries forward hooks of its own ({_hook_names(own)}), "
                         f"which {what} does not run (it computes the decision without calling the network): its logits "
                         "would not be those net(x) returns. Remove them (handle.remove()) first, or register an input "
                         "transform on net.backbone, whose hooks it runs")


def plain_head(*modules: nn.Module | None) -> None:
    """Refuse hooks on the head's modules (the classifier, the normalization): the decision reads their tensors with
    ``F.linear`` and never calls them at eval, so a hook there (old-style ``spectral_norm`` / ``weight_norm``, a
    user's forward hook) would run in some passes and not in others."""
    for m in modules:
        if m is None:
            continue
        if not isinstance(getattr(m, "weight", None), (Tensor, type(None))):
            raise TypeError(f"classifier: the network's head is a {type(m).__module__}.{type(m).__name__} whose weight is "
                            "no tensor (a quantized Linear: torch.ao.quantization); the decision reads its tensors, "
                            "so quantize the backbone only (quantize_dynamic(net.backbone, ...))")
        if m._forward_pre_hooks or m._forward_hooks or m._backward_hooks or m._backward_pre_hooks:
            hooks = _foreign((*m._forward_pre_hooks.values(), *m._forward_hooks.values(), *m._backward_hooks.values(),
                              *m._backward_pre_hooks.values()))
            if not hooks:
                continue
            raise ValueError(f"classifier: the network's head ({type(m).__name__}) carries hooks ({_hook_names(hooks)}); "
                             "the decision reads its tensors without calling it, so they would not run. Remove them; "
                             "to reparametrize the head's weight use torch.nn.utils.parametrize (e.g. "
                             "torch.nn.utils.parametrizations.spectral_norm / weight_norm, not the old hook-based ones)")


# Methods of the core networks whose code lives in a higher layer (the gallery reads data and
# lives in neuroview.attribution): that layer registers it here when imported, as `import
# neuroview` does, so the core never imports upwards.
_EXTENSIONS: dict[str, "callable"] = {}


def register_extension(name: str, fn: "callable") -> None:
    """Set the function behind the core method ``name`` (e.g. ``unit_gallery``)."""
    _EXTENSIONS[name] = fn


def extension(name: str) -> "callable":
    """The function registered for ``name``; ImportError naming the module when none is."""
    if name not in _EXTENSIONS:
        raise ImportError(f"{name} lives in neuroview.attribution; `import neuroview` registers it")
    return _EXTENSIONS[name]


def rnn_pointer(model: nn.Module, num_classes, e: Exception) -> Exception | None:
    """``e`` with the RNN route named, where the CNN route found no units to read in a model holding an ``nn.RNNBase``
    (a GRU + head, wrapped as a CNN: its errors never named the RNN); None for any other error (tau=-1, a typo)."""
    held = next(((n, m) for n, m in model.named_modules() if isinstance(m, nn.RNNBase)), None)
    if held is None or type(e) not in (ValueError, TypeError) or not any(
            k in str(e) for k in ("no activation module", "unit_axis")):
        return None
    name, rnn = held
    kind = f"nn.{type(rnn).__name__}" if type(rnn) in (nn.RNN, nn.LSTM, nn.GRU) else type(rnn).__name__
    ref = f"model.{name}" if all(p.isidentifier() for p in name.split(".")) else f"model.get_submodule({name!r})"
    return type(e)(f"{str(e).rstrip('.')}. The model holds an {kind} at '{name}', which NeuroViewCNN does not read: to "
                   f"read its states, wrap it (nv.wrap({ref}, {num_classes}, max_len=...)) or use nv.NeuroViewRNN")


def exact_values(t: torch.Tensor) -> torch.Tensor:
    """``t`` on the CPU for records (``to_records``): float64 kept, which a Python float holds exactly (a float32 cast
    moved a float64 explanation's sum off its logit by 1e-8), half and bfloat16 as float32."""
    t = t.detach().cpu()
    return t if t.dtype == torch.float64 else t.float()
