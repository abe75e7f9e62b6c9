"""The LightningModule the ``Sparsify`` callback refits the head of, checked: its NeuroView network kept at ``model`` (as
:class:`~neuroview.training.module.NeuroViewModule` keeps it), and steps that feed that network the batches as the refit
reads them. A user's own module that keeps its network elsewhere (``self.net``) was refused as "net: ... got NoneType"
(a test alone: a bare AttributeError); one whose steps feed the network something else than the batch (an input stem,
an encoder) had a head refitted on the data module's raw batches swapped in, and its test scored that head through the
stem: 91% became 2%, without a word.

What the steps feed the network is observed where the test feeds it (:class:`FedCheck`: a forward pre-hook on ``model``
through the first test or predict batch after the refit), never by a call of the module's ``forward`` of the callback's
own: Lightning never calls ``forward`` itself (a module may have none, or one that is the network alone while its steps
put a stem in front), and a forward called on the channels-first batch was no measure of what an RNN reads.

May import Lightning, torch, ``neuroview._batch``, ``neuroview.core``, :mod:`.sparse_checks` and (inside the functions)
:mod:`.module`.
"""

from __future__ import annotations

import inspect
from typing import Callable

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from .._batch import steps_first, takes_lengths, unpack
from ..core._utils import wrapped_hint
from .sparse_checks import _kind, _takes, check_net

__all__ = ["FedCheck", "module_net", "watch_steps"]

_EXPECTED = "a NeuroViewCNN, a NeuroViewRNN (nv.wrap(model, ...)) or an Ensemble of NeuroView-CNNs"


def module_net(pl_module: pl.LightningModule) -> nn.Module:
    """``pl_module.model``, a network :func:`neuroview.sparsify` refits; else a TypeError naming the callback: a
    NeuroViewModule's (a standard ``arch``) in sparsify's words, another module's saying that the callback reads its
    ``model`` attribute, and where the module holds a NeuroView network instead (``'net'``), with the ways out."""
    net = getattr(pl_module, "model", None)
    if _takes(net):
        return net
    if _plain_neuroview_module(pl_module, forward=False):  # its arch is the one to change: sparsify's words
        try:
            check_net(net)
        except TypeError as e:
            raise TypeError(f"Sparsify: {e}") from None
    name = type(pl_module).__name__
    wrapped = wrapped_hint(net, _takes, f"{name}.model")[len(", got "):].split("; pass")[0]  # a compiled one's network
    got = "none" if net is None else wrapped or _kind(net)
    found = next((n for n, m in pl_module.named_modules() if n and _takes(m)), None)  # inside a wrapper too
    there = f" (it holds {_a(_kind(pl_module.get_submodule(found)))} at {found!r})" if found else ""
    raise TypeError(f"Sparsify: reads the LightningModule's 'model' attribute (where NeuroViewModule keeps its network): "
                    f"expected {_EXPECTED} at {name}.model, got {got}{there}; keep the network at {name}.model, or "
                    f"leave Sparsify out and call nv.sparsify(module.{found or '<network>'}, loader) yourself, with a "
                    "loader of what the network reads")


def watch_steps(pl_module: pl.LightningModule, step: str, refuse: Callable[[str], None]) -> "FedCheck | None":
    """A :class:`FedCheck` of what ``pl_module``'s ``step`` (``"test_step"``, ``"predict_step"``) feeds its ``model``; None
    for a NeuroViewModule whose forward and steps are NeuroViewModule's own (they call the network on the batch as the
    refit reads it: nothing watched, nothing compared)."""
    return None if _plain_neuroview_module(pl_module) else FedCheck(pl_module, step, refuse)


class FedCheck:
    """What a module's steps feed its network ``pl_module.model`` on one batch (:meth:`start` with that batch, a forward
    pre-hook, positional or keyword, on every call of the network until :meth:`end`), compared with the batch's ``x`` as
    the refit feeds it (``steps_first(x, net)`` for a sequence network: ``[B, T, C]``, or ``[T, B, C]`` where it is not
    batch-first) and, where the network takes them, its ``lengths``. A call given something else, to float tolerance,
    calls ``refuse`` with the message (before the network runs, so before the step logs or returns anything); no call by
    :meth:`end` too. What the step does with the network's logits (``log_softmax``, an argmax) is its own: the refit reads
    the network's codes. Nothing is drawn, no mode changed."""

    def __init__(self, pl_module: pl.LightningModule, step: str, refuse: Callable[[str], None]):
        self.net, self.name, self.step, self.refuse = pl_module.model, type(pl_module).__name__, step, refuse
        self.sequence = takes_lengths(self.net)
        self.signature = inspect.signature(self.net.forward)
        self.calls, self._hook, self._x, self._lengths = 0, None, None, None

    def start(self, batch) -> None:
        """Watch the network's calls on ``batch`` (as the step receives it)."""
        x, lengths, _ = unpack(batch)
        self._x = steps_first(x, self.net) if self.sequence and isinstance(x, Tensor) and x.dim() == 3 else x
        self._lengths = lengths if self.sequence else None
        self._hook = self.net.register_forward_pre_hook(self._see, with_kwargs=True)

    def end(self) -> None:
        """The batch is done: the hook removed; ``refuse`` where the network was never called on it."""
        self.close()
        if self._x is not None and not self.calls:
            self._refuse("was never called (the step decides with another network: a copy kept under another name?)")

    def close(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    def _see(self, module, args, kwargs):
        self.calls += 1
        try:
            given = self.signature.bind(*args, **kwargs).arguments
        except TypeError:
            given = {}
        first = next(iter(self.signature.parameters), "x")
        x = given.get(first, args[0] if args else kwargs.get("x"))
        bad = _not_the_batch(x, self._x)
        if bad is None and self.sequence:
            bad = _not_the_lengths(given.get("lengths"), self._lengths, self._x, getattr(self.net, "batch_first", True))
        if bad is not None:
            self._refuse(bad)

    def _refuse(self, bad: str) -> None:
        self.close()
        shape = tuple(self._x.shape) if isinstance(self._x, Tensor) else None
        reads = ", steps-first as it feeds a sequence network, with the batch's lengths" if self.sequence else ""
        self.refuse(f"Sparsify: {self.name}'s {self.step} does not feed its network the batch: on the first batch after "
                    f"the refit (x as the refit reads it: shape {shape}{reads}), its 'model' (the network the callback refitted "
                    f"on the data module's batches as they are) {bad}; the sparse head was fitted on inputs the module "
                    f"never feeds its network (an input stem or encoder in {self.name}'s steps or forward?): the dense "
                    f"network is put back and nothing is scored; leave Sparsify out and call nv.sparsify(module.model, "
                    f"loader) yourself, with a loader of what {self.name}'s steps give its network, then put the sparse "
                    "network back")


def _not_the_batch(got, x: Tensor) -> str | None:
    """How ``got`` (what the network was given) differs from ``x`` (to float tolerance), or None."""
    if not isinstance(got, Tensor):
        return "was called without an input tensor" if got is None else f"was given a {type(got).__name__}"
    if got.shape != x.shape:
        return f"was given x of shape {tuple(got.shape)}"
    a, b = got.double(), x.double().to(got.device)
    # the coarser of the two dtypes: a -true precision (bf16-true) casts the batch before the step calls the network
    eps = max(torch.finfo(t.dtype).eps for t in (x, got) if t.is_floating_point()) if x.is_floating_point() else 0.0
    tol = eps ** 0.5 * max(1.0, float(b.nan_to_num(0.0, 0.0, 0.0).abs().max()))
    if not bool(torch.isclose(a, b, rtol=0.0, atol=tol, equal_nan=True).all()):
        gap = float((a - b).abs().nan_to_num(float("inf")).max())
        return f"was given x that differs from the batch's by up to {gap:.3g}"
    return None


def _not_the_lengths(got, lengths, x: Tensor, batch_first: bool) -> str | None:
    """How the ``lengths`` a sequence network was given differ from the batch's (None: the whole ``x``), or None."""
    steps = x.shape[1 if batch_first else 0]

    def full(v):
        return None if v is None else torch.as_tensor(v).reshape(-1).long().cpu()

    got_t, want = full(got), full(lengths)
    if (got_t is None) != (want is None):
        short = want if got_t is None else got_t
        if bool((short == steps).all()):  # every series whole: the same as none
            return None
    elif got_t is None or (got_t.shape == want.shape and torch.equal(got_t, want)):
        return None
    if got_t is None:
        return (f"was given no lengths where the batch holds them ({want.tolist()[:4]}...: the padded steps read as "
                "data; pass the batch's lengths on to the network)")
    held = "holds none (every series whole)" if want is None else f"holds {want.tolist()[:4]}..."
    return f"was given lengths {got_t.tolist()[:4]}... where the batch {held}"


def _plain_neuroview_module(pl_module, forward: bool = True) -> bool:
    """Whether ``pl_module`` is a NeuroViewModule (``forward``: whose forward, test and predict steps are
    NeuroViewModule's own)."""
    from .module import NeuroViewModule  # noqa: PLC0415 - it imports the zoo, the data and the callbacks

    own = ("forward", "test_step", "predict_step") if forward else ()
    return isinstance(pl_module, NeuroViewModule) and all(getattr(type(pl_module), f) is getattr(NeuroViewModule, f)
                                                          for f in own)


def _a(kind: str) -> str:
    return kind if kind.startswith("an ") else f"a {kind}"
