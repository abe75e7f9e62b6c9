"""The LightningModule the ``Sparsify`` callback refits the head of, checked: its NeuroView network kept at ``model`` (as
:class:`~neuroview.training.module.NeuroViewModule` keeps it), and a forward that is that network's on the batches the
refit reads. A user's own module that keeps its network elsewhere (``self.net``) was refused as "net: ... got NoneType"
(a test alone: a bare AttributeError); one whose forward feeds the network something else than the batch (an input stem,
an encoder) had a head refitted on the data module's raw batches swapped in, and its test scored that head through the
stem: 91% became 2%, without a word.

May import Lightning, torch, numpy, ``neuroview._batch``, ``neuroview.core``, :mod:`.first_batch`, :mod:`.sparse_checks`
and (inside the functions) :mod:`.module`.
"""

from __future__ import annotations

import inspect
import random
from contextlib import contextmanager

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from .._batch import split_batches, unpack
from ..core._utils import factory, own_rng, restore_modes, wrapped_hint
from .first_batch import _peek
from .sparse_checks import _kind, _takes, check_net

__all__ = ["check_forward", "module_net"]

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


def check_forward(pl_module: pl.LightningModule, dm, dtype: torch.dtype | None) -> None:
    """A ValueError naming the callback where ``pl_module(x)`` does not feed its ``model`` the batch ``x`` as it is (to
    float tolerance) on two samples of the training split the refit reads (``dm``'s, as :func:`neuroview.sparsify` reads
    it; ``dtype``: the cast a ``-true`` precision gives each batch), never calls it, or cannot be called on them: the head
    would be fitted on inputs the module never feeds its network. What the forward does with the network's logits
    (``log_softmax``, a temperature) is its own: the refit reads the network's codes. Run in eval mode, without a graph;
    every module's mode, torch's (the network's device's too), numpy's and Python's generators and the loader's own are
    left as they were. Nothing is run for a NeuroViewModule whose forward is NeuroViewModule's: it calls its network on
    the batch, as the refit does."""
    if _plain_neuroview_module(pl_module):
        return
    net, name = pl_module.model, type(pl_module).__name__
    device = factory(net).get("device")
    restore = restore_modes(pl_module)
    fed: list = []
    hook = net.register_forward_pre_hook(lambda m, args: fed.append(args[0] if args else None))
    try:  # everything after the hold inside: a hold never let go would keep the modules' modes from coming back
        with _kept_rngs(device), torch.no_grad():
            batch = _peek(split_batches(dm, "train", "train"))
            if batch is None:
                return  # no training batch: sparsify refuses the empty split by name
            x, lengths, _ = unpack(batch, device, "train", net)
            x, lengths = x[:2], lengths[:2] if isinstance(lengths, Tensor) else lengths
            x = x.to(dtype) if dtype is not None and x.is_floating_point() else x
            pl_module.eval()
            way = (f"leave Sparsify out and call nv.sparsify(module.model, loader) yourself, with a loader of what {name}'s "
                   "forward gives its network, then put the sparse network back (the dense one is left as trained)")
            try:
                if not len(x):
                    raise ValueError("the training split's first batch holds no sample")
                pl_module(x, lengths) if lengths is not None and _binds(pl_module, x, lengths) else pl_module(x)
            except Exception as e:  # noqa: BLE001 - the user's forward: any failure means the callback cannot tell
                raise ValueError(f"Sparsify: {name}'s forward could not be called on two training samples x of shape "
                                 f"{tuple(x.shape)} as the refit reads them ({type(e).__name__}: {e}), so the callback "
                                 f"cannot tell whether the module feeds its 'model' (the network it refits) those "
                                 f"batches; {way}") from None
    finally:
        hook.remove()
        restore()
    bad = _not_the_batch(fed, x)
    if bad is not None:
        raise ValueError(f"Sparsify: {name}'s forward does not feed its network the batch: on two training samples of "
                         f"shape {tuple(x.shape)}, its 'model' (the network the callback refits on the batches as they "
                         f"are) {bad}; the sparse head would be fitted on inputs the module never feeds its network (an "
                         f"input stem or encoder in {name}.forward?) and then scored through that forward; {way}")


def _not_the_batch(fed: list, x: Tensor) -> str | None:
    """What the module's forward gave its network instead of ``x`` (each call's first argument), or None where every
    call got ``x`` (to float tolerance)."""
    if not fed:
        return "was never called"
    for got in fed:
        if not isinstance(got, Tensor) or got.shape != x.shape:
            return f"was given {tuple(got.shape) if isinstance(got, Tensor) else type(got).__name__}"
        a, b = got.double(), x.double()
        tol = torch.finfo(x.dtype).eps ** 0.5 * max(1.0, float(b.nan_to_num(0.0, 0.0, 0.0).abs().max())) \
            if x.is_floating_point() else 0.0
        if not bool(torch.isclose(a, b, rtol=0.0, atol=tol, equal_nan=True).all()):
            gap = float((a - b).abs().nan_to_num(float("inf")).max())
            return f"was given inputs that differ from the batch by up to {gap:.3g}"
    return None


def _plain_neuroview_module(pl_module, forward: bool = True) -> bool:
    """Whether ``pl_module`` is a NeuroViewModule (``forward``: whose forward is NeuroViewModule's own)."""
    from .module import NeuroViewModule  # noqa: PLC0415 - it imports the zoo, the data and the callbacks

    return isinstance(pl_module, NeuroViewModule) and (not forward or type(pl_module).forward is NeuroViewModule.forward)


def _binds(pl_module, x, lengths) -> bool:
    """Whether ``pl_module``'s forward takes the batch's ``lengths`` as its second argument (NeuroViewModule's does)."""
    try:
        inspect.signature(pl_module.forward).bind(x, lengths)
    except (TypeError, ValueError):
        return False
    return True


def _a(kind: str) -> str:
    return kind if kind.startswith("an ") else f"a {kind}"


@contextmanager
def _kept_rngs(device):
    """torch's generators (and ``device``'s), numpy's and Python's global ones as they were after the block."""
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        with own_rng(device):
            yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
