"""Batches as the data modules give them, and the layout each model reads.

A batch is ``(x, y)``, ``(x, lengths, y)`` for variable-length sequences, or a bare ``x``, with ``x`` channels-first
(``[B, C, ...]``). Models whose ``forward`` takes ``lengths`` (the RNN family) read ``[B, T, C]`` instead. A leaf next
to ``_io``: imports torch only, so that the zoo's evaluation loop, the Lightning module and retrofit can all share it.
"""

from __future__ import annotations

import copy
import functools
import inspect
import os
import sys
import weakref
from contextlib import contextmanager, suppress

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import (BatchSampler, DataLoader, Dataset, IterableDataset, RandomSampler, SequentialSampler, Subset,
                              SubsetRandomSampler, WeightedRandomSampler)


def unpack(batch, device: torch.device | None = None, what: str = "batch",
           net: nn.Module | None = None) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """``(x, lengths, y)`` of a batch; ``lengths`` and ``y`` None where it has none; one sample as a dataset gives it to
    ``net`` (the network that reads it) an error naming ``what`` (:func:`refuse_samples`). ``device``: where to put the
    tensors (a loader gives CPU batches; a loop outside Lightning feeding a network on a GPU passes its device)."""
    refuse_samples(batch, what, net)
    if isinstance(batch, Tensor):
        parts = batch, None, None
    elif isinstance(batch, dict) or not isinstance(batch, (tuple, list)):  # batch[0] of a dict was a bare KeyError
        got = f"a dict with keys {list(batch)[:5]}" if isinstance(batch, dict) else f"a {type(batch).__name__}"
        raise ValueError(f"batch: expected a tensor, (x, y) or (x, lengths, y) as the data modules give them, got {got}; "
                         "map such batches to tuples first, e.g. ((b['x'], b['y']) for b in loader)")
    elif len(batch) == 3:
        parts = batch[0], batch[1], batch[2]
    elif len(batch) == 2:
        parts = batch[0], None, batch[1]
    elif len(batch) == 1:
        parts = batch[0], None, None
    else:
        raise ValueError(f"batch: expected (x, y) or (x, lengths, y), got a {type(batch).__name__} of {len(batch)} items")
    return parts if device is None else tuple(t.to(device) if isinstance(t, Tensor) else t for t in parts)


def refuse_samples(batch, what: str, net=None) -> None:
    """An error naming ``what`` where ``batch`` is one sample as a dataset gives it to ``net``: ``x`` of its
    :func:`sample_rank` (no batch axis) and a scalar label (a 0-d tensor or array, a number). Judged on each batch as
    read, never by a look into a loader (whole batches read with batch_size=None pass); x's rank or the labels' shape
    was named, not the cause. No ``net``, or one whose rank is not known yet (a lazy CNN's): nothing judged."""
    y = batch[-1] if isinstance(batch, (tuple, list)) and len(batch) in (2, 3) and isinstance(batch[0], Tensor) else None
    if not ((isinstance(y, (Tensor, np.ndarray)) and y.ndim == 0) or isinstance(y, (int, float, np.number))):
        return  # labels of a batch: the network's rank (a signature read) is not looked up on every batch
    if (rank := sample_rank(net)) is not None and batch[0].dim() == rank:  # a whole batch with one tag is no sample
        raise ValueError(f"{what}: its batches are single samples as a dataset gives them (x of shape {tuple(batch[0].shape)}, "
                         "one sample without its batch axis, and a scalar label): samples handed one at a time (a DataLoader "
                         "with batch_size=None, a list or generator of dataset items); pass DataLoader(dataset, "
                         "batch_size=...), whose batches (x, y) hold one label per sample")


def sample_rank(net: nn.Module | None) -> int | None:
    """The rank of one sample as a dataset gives it to ``net`` (channels-first, no batch axis): a sequence model's
    ``[C, T]`` 2, a CNN's ``len(input_shape)`` once its sites are found (an ensemble's: its members'); else None."""
    members = getattr(net, "members", None)
    net = members[0] if isinstance(members, nn.ModuleList) and len(members) else net
    shape = getattr(net, "input_shape", None)
    return 2 if isinstance(net, nn.Module) and takes_lengths(net) else len(shape) if isinstance(shape, tuple) else None


def check_lengths(lengths, x: Tensor, what: str, last=None):
    """The middle item of a batch ``(x, lengths, y)`` (``x`` channels-first, ``[B, C, T]``), for a network that reads
    lengths (an RNN: its own check named ``lengths``, an argument the user never passed) or not (a CNN): integers in
    ``[1, T]``, one per sample. A batch ``(x, y, other)`` is read so too, and took ``other`` for the labels; ``last``
    (the batch's last item): where it would pass as lengths, the message asks whether the batches are (x, y, lengths).
    Returns the lengths as an int64 tensor (a list's, numpy's, any integer dtype's, as the RNN reads them), or None."""
    if lengths is None:
        return None
    if isinstance(lengths, (list, tuple, np.ndarray)):  # a list or numpy's, as the RNN readers take them
        with suppress(TypeError, ValueError, RuntimeError):  # not numbers: named below as no lengths
            lengths = torch.as_tensor(np.asarray(lengths))
    given, lengths = lengths, _int64(lengths)
    n = x.shape[-1] if isinstance(x, Tensor) and x.dim() > 1 else None
    if not _steps(lengths, x, n):
        got = f"shape {tuple(given.shape)}, {given.dtype}" if isinstance(given, Tensor) else type(given).__name__
        if isinstance(lengths, Tensor) and lengths.numel() and not lengths.is_floating_point() and lengths.dtype != torch.bool:
            got += f", values {min(v := given.flatten().tolist())} to {max(v)}"  # as given: a uint64's 2**64 - 1 too
        swapped = isinstance(last, Tensor) and last is not given and _steps(_int64(last), x, n)
        hint = "; if they are (x, y, lengths), pass (x, lengths, y) as the data modules give them" if swapped else ""
        raise ValueError(f"{what}: a batch of 3 items is read as (x, lengths, y), and its middle item is not lengths (one "
                         f"integer per sample in [1, {n}], the steps of x): got {got}; pass batches (x, y){hint}")
    return lengths


def _int64(t):
    """An integer tensor ``t`` as int64 (torch compares no uint64 on the CPU: a bare NotImplementedError), a uint64's
    values past int64's range at its maximum (out of any range of steps, not wrapped round); anything else as it is."""
    if not isinstance(t, Tensor) or t.dtype in (torch.int64, torch.bool) or t.is_floating_point() or t.is_complex():
        return t
    return t.long().masked_fill(t.long() < 0, torch.iinfo(torch.int64).max) if t.dtype == torch.uint64 else t.long()


def _steps(lengths, x, n: int | None) -> bool:
    """Whether ``lengths`` holds one integer per sample of ``x`` in ``[1, n]``."""
    return (isinstance(lengths, Tensor) and lengths.dim() == 1 and len(lengths) == len(x) and n is not None
            and not lengths.is_floating_point() and lengths.dtype != torch.bool
            and bool(((lengths >= 1) & (lengths <= n)).all()))


def as_batches(data, what: str = "batches"):
    """``data`` as an iterable of batches: one batch given alone (a tensor, ``(x, y)`` or ``(x, lengths, y)`` as a tuple,
    or as the list a DataLoader gives: ``x`` of rank 2 or more, then items of as many rows and a lower rank, one-hot
    labels too; a list of bare batches holds items of one rank) becomes a list of it, where iterating it would read its
    labels as inputs; anything else (a loader, a list of batches) as it is; a dict an error naming ``what``."""
    if isinstance(data, dict):
        raise ValueError(f"{what}: expected a data module, a DataLoader or an iterable of batches (x, y) or "
                         f"(x, lengths, y), got a dict with keys {list(data)[:5]}; pass [(x, y)] or a DataLoader")
    if isinstance(data, Tensor) or (isinstance(data, tuple) and 1 < len(data) < 4 and isinstance(data[0], Tensor)):
        return [data]
    if (isinstance(data, list) and 1 < len(data) < 4 and isinstance(data[0], Tensor) and data[0].dim() > 1
            and all(isinstance(t, Tensor) and 1 <= t.dim() < data[0].dim() and len(t) == len(data[0]) for t in data[1:])):
        return [tuple(data)]
    if isinstance(data, Dataset) and not isinstance(data, IterableDataset):  # read sample by sample as batches
        raise ValueError(f"{what}: expected a data module, a DataLoader or an iterable of batches (x, y) or "
                         f"(x, lengths, y), got a {type(data).__name__} (a Dataset: DataLoader(dataset, batch_size=...))")
    return data


def in_order(loader, *, strict: str | None = None, what: str = "loader", subsets: bool = True):
    """``loader`` read in order and whole: a DataLoader that shuffles or drops its last batch (a training loader) rebuilt
    over its dataset, same batch size and collate, so that what is fitted on it (the folds of a cross-validation, an index
    into the split) depends on the samples, not on how the loader deals them. A sampler or batch sampler of its own cannot
    be undone, nor a ``RandomSampler`` that draws a number of samples of its own (``num_samples=k``, ``replacement=True``:
    a random subsample): read as it is, or, with ``strict`` (the reason an order is needed), an error naming ``what``;
    but a ``SubsetRandomSampler`` and a ``WeightedRandomSampler`` (a balancing loader) say which samples they draw from:
    those, each once, in order (``subsets=False``: not, where an index must name a sample of the dataset, not of the
    subset). A neuroview dataset that augments its samples is read without augmentation. An IterableDataset read by
    several workers is read by this process alone: each worker iterates all of it unless it shards itself
    (``get_worker_info()``, which a loader cannot see), and every sample was read once per worker. Else as it is."""
    if not isinstance(loader, DataLoader):
        return loader
    iterable = isinstance(loader.dataset, IterableDataset)
    dealt = iterable and loader.num_workers > 1  # read once per worker (sparsify's folds held each sample twice)
    # the sampler and batch size inside a plain BatchSampler, given as batch_sampler= too (loader.sampler is then a
    # SequentialSampler that reads nothing, and a weighted one inside put a sample in two folds)
    bs = loader.batch_sampler
    plain = type(bs) is BatchSampler
    sampler, size, drop = (bs.sampler, bs.batch_size, bs.drop_last) if plain else (loader.sampler, loader.batch_size, loader.drop_last)
    ordered = iterable or isinstance(sampler, SequentialSampler)
    augments = getattr(loader.dataset, "augment", None) is not None and hasattr(loader.dataset, "x")  # an ArrayDataset's
    if ordered and not drop and not augments and not dealt and (iterable or bs is None or plain):
        return loader
    dataset = loader.dataset
    drawn = _drawn(sampler, len(dataset)) if subsets and not iterable else None
    if drawn is None and not iterable and (size is None or not _permutes(sampler, len(dataset))):
        if strict is None:
            return loader
        kind = type(bs if size is None and bs is not None else sampler).__name__  # batch_size=None: the sampler
        if size is not None and isinstance(sampler, RandomSampler):  # a subsample, or with replacement
            kind += f" that draws {sampler.num_samples} of its {len(dataset)} samples" + " with replacement" * sampler.replacement
        raise ValueError(f"{what}: expected a DataLoader that reads its dataset in order, or shuffles it with a batch_size "
                         f"(rebuilt here in order), got one with a {kind}; pass DataLoader(dataset, batch_size, "
                         f"shuffle=False) over the same samples, {strict}")
    if augments:  # a data module's training loader (dm.train_dataloader()): its samples as they are, not redrawn
        dataset = copy.copy(dataset)
        dataset.augment = None
    if drawn is not None:
        dataset = Subset(dataset, drawn)
    return DataLoader(dataset, batch_size=size, shuffle=False, drop_last=False,
                      collate_fn=loader.collate_fn, num_workers=0 if dealt else loader.num_workers,
                      pin_memory=loader.pin_memory, worker_init_fn=loader.worker_init_fn)


def _permutes(s, n: int) -> bool:
    """Whether sampler ``s`` deals each of the ``n`` samples once, in order or shuffled."""
    return isinstance(s, SequentialSampler) or (isinstance(s, RandomSampler) and not s.replacement and s.num_samples == n)


def _drawn(s, n: int) -> list[int] | None:
    """The samples of ``n`` a subset or weighted sampler ``s`` draws from, sorted (each once); None for another."""
    if isinstance(s, SubsetRandomSampler):
        return sorted({int(i) for i in s.indices if 0 <= int(i) < n})
    if isinstance(s, WeightedRandomSampler):  # draws among the samples of weight > 0 (with replacement, or not)
        return [i for i in torch.nonzero(torch.as_tensor(s.weights) > 0).flatten().tolist() if i < n]
    return None


def split_batches(data, split: str, what: str, strict: str | None = None, subsets: bool = True):
    """The batches of ``data``'s whole ``split``, in order and without augmentation: a neuroview data module's through
    ``_loader`` (None for a validation split it does not carve); another LightningDataModule's ``{split}_dataloader()``
    and a DataLoader read :func:`in_order` (a training loader shuffles and drops its last partial batch: a head fitted on
    it missed samples, and a cross-validation's folds moved with the shuffle); one batch given alone as a list of it; any
    other iterable of batches as it is. ``what`` names the argument; ``strict`` (why each sample must be read once): a
    loader whose sampler cannot be read so is an error."""
    if hasattr(data, "_loader") and hasattr(data, "setup"):
        data.setup("fit")
        if split == "val" and "val" not in data._prepared_splits():
            return None
        return data._loader(split)
    if callable(getattr(data, f"{split}_dataloader", None)) and not isinstance(data, DataLoader):
        data = module_loader(data, split)
    data = in_order(as_batches(data, what), strict=strict, what=what, subsets=subsets)
    if not hasattr(data, "__iter__"):
        raise ValueError(f"{what}: expected a data module, a DataLoader or an iterable of batches (x, y) or "
                         f"(x, lengths, y), got a {type(data).__name__}")
    return data


def own_val_split(data):
    """The validation batches of a user's own LightningDataModule given as the training data (``sparsify(net, dm)``),
    or None where it has none: Lightning's default ``val_dataloader`` (it raises: not implemented), one that returns
    None, or an empty loader. Anything that is not a data module: None."""
    make = getattr(type(data), "val_dataloader", None)
    if isinstance(data, DataLoader) or not callable(make) or not callable(getattr(data, "train_dataloader", None)):
        return None
    if getattr(make, "__qualname__", "").startswith("DataHooks."):  # Lightning's own, which raises when called
        return None
    try:
        loader = module_loader(data, "val")
    except (AttributeError, NotImplementedError):  # set up without a split (a dataset never made, "not implemented")
        return None
    except Exception as e:  # noqa: BLE001 - the user's loader failing (a val.csv unreadable): named, not cross-validated
        if type(e).__name__ == "MisconfigurationException":  # Lightning's own "no val_dataloader"
            return None
        raise ValueError(f"train: {type(data).__name__}.val_dataloader() failed ({type(e).__name__}: {e}); fix it, or "
                         "pass val= the batches to validate on") from e
    loader = list(loader.values()) if isinstance(loader, dict) else loader  # named loaders: which validates is not ours
    if isinstance(loader, (list, tuple)) and loader and all(isinstance(v, DataLoader) for v in loader):
        if len(loader) > 1:  # its loaders were read as batches
            raise ValueError(f"train: expected a data module whose val_dataloader() gives one loader, got {len(loader)} "
                             f"loaders from {type(data).__name__}; pass val= the one to validate on")
        loader = loader[0]
    if loader is None or getattr(loader, "dataset", True) is None:
        return None
    with suppress(TypeError):  # an iterable without a length: read as it is
        if len(loader) == 0:  # an empty split is none (a loader of no batches, an empty list)
            return None
    return split_batches(loader, "val", "val")


@contextmanager
def kept_generators(data, seed: int | None = None):
    """A block after which the generators of a DataLoader ``data`` (its own, its sampler's: each once) are as they were: a
    loader draws its shuffle and its workers' base seed from them, the caller's. ``seed``: seeded with it inside."""
    drawers = (data, getattr(data, "sampler", None), getattr(getattr(data, "batch_sampler", None), "sampler", None))
    found = [getattr(d, "generator", None) for d in drawers] if isinstance(data, DataLoader) else []
    gens = [g for i, g in enumerate(found) if isinstance(g, torch.Generator) and all(g is not h for h in found[:i])]
    states = [g.get_state() for g in gens]
    try:
        for g in gens if seed is not None else ():
            g.manual_seed(seed)
        yield
    finally:
        for g, state in zip(gens, states):
            g.set_state(state)


_SKIP_DIRS = tuple(os.path.dirname(os.path.abspath(f)) + os.sep for f in (__file__, torch.__file__))  # neuroview, torch
_SKIP_FILES = (os.path.abspath(inspect.getfile(contextmanager)),)  # contextlib


def caller_stacklevel() -> int:
    """The ``stacklevel`` of a ``warnings.warn`` call that points at the first frame outside neuroview (the user's
    line), past the package's own frames and the torch and contextlib wrappers between them (``outside_inference_mode``,
    ``torch.no_grad``): a fixed stacklevel pointed at one of those."""
    frame, level = sys._getframe(1), 1  # the function about to warn
    while frame is not None:
        name = os.path.abspath(frame.f_code.co_filename)
        if not (name.startswith(_SKIP_DIRS) or name in _SKIP_FILES):
            return level
        frame, level = frame.f_back, level + 1
    return level - 1


_SET_UP: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # id -> a user data module set up here


def module_loader(data, split: str):
    """A LightningDataModule's ``{split}_dataloader()``, its ``setup("fit")`` called at most once: a module whose loader
    already reads (set up by its user, or by Lightning's fit) is read as it is, another set up once and remembered. A
    setup that splits at random (``random_split``, as Lightning's docs show) called at every read dealt each read other
    samples: ``sparsify(net, dm, val=dm)`` scored its validation on samples it had fitted on, and the caller's module
    held another split afterwards. Not set up: its loader raises (no dataset attribute) or reads ``DataLoader(None)``."""
    make = getattr(data, f"{split}_dataloader")
    if _SET_UP.get(id(data)) is not data:  # by id: a dataclass module (its own __eq__) is unhashable
        loader = None
        with suppress(Exception):  # not set up yet: a missing dataset attribute, Lightning's not-implemented
            loader = make()
        if loader is not None and getattr(loader, "dataset", True) is not None:
            return loader
        if callable(getattr(data, "setup", None)):
            data.setup("fit")  # as Lightning calls it before the loaders
        with suppress(TypeError):  # no weak reference to it: set up at each read, as before
            _SET_UP[id(data)] = data
    return make()


def takes_lengths(model: nn.Module) -> bool:
    """Whether ``model.forward`` takes ``lengths``: the sign of a model that reads ``[B, T, C]``; an ensemble
    (``members``) is one where its members are (its forward takes lengths for them)."""
    members = getattr(model, "members", None)
    if isinstance(members, nn.ModuleList) and len(members):
        return all(takes_lengths(m) for m in members)
    return "lengths" in inspect.signature(model.forward).parameters


def steps_first(x: Tensor, model: nn.Module | None = None) -> Tensor:
    """``[B, C, T]`` (what the data modules give) as ``model`` reads a sequence: ``[B, T, C]``, or
    ``[T, B, C]`` where ``model.batch_first`` is False (PyTorch's default for ``nn.GRU`` and its kin,
    which a NeuroViewRNN keeps): handed ``[B, T, C]``, such a network reads samples as steps."""
    xs = x.transpose(1, 2)
    members = getattr(model, "members", None)  # an ensemble reads as its members do (nv.Ensemble's batch_first: theirs)
    model = members[0] if isinstance(members, nn.ModuleList) and len(members) and not hasattr(model, "batch_first") else model
    return xs.transpose(0, 1) if model is not None and getattr(model, "batch_first", True) is False else xs


def series_input(x: Tensor, model: nn.Module, what: str = "loader") -> Tensor:
    """A loader's channels-first series ``[B, C, T]``, checked against ``model.input_size``, in the
    RNN's own layout (:func:`steps_first`); ``what`` names the argument the batches came from."""
    c = getattr(model, "input_size", None)
    if not isinstance(x, Tensor) or x.dim() != 3 or (c is not None and x.shape[1] != c):
        got = f"shape {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{what}: expected channels-first series [B, {c if c is not None else 'C'}, T] as the data "
                         f"modules give them, got {got}")
    return steps_first(x, model)


def check_reads(model: nn.Module, x: Tensor, lengths: Tensor | None, what: str) -> None:
    """One forward pass of ``model`` on two samples of a channels-first batch, so that data of another
    shape is named as ``what`` (a command's ``--data``) before any work, not as the model's ``x``."""
    try:
        with torch.no_grad():
            call_model(model, x[:2], None if lengths is None else lengths[:2])
    except (ValueError, RuntimeError) as e:
        c = _input_channels(model)
        if c is not None and x.dim() >= 2 and x.shape[1] != c:  # torch's "weight of size [17, 2, 97]" named neither count
            raise ValueError(f"{what} gives series of {x.shape[1]} channels, where the model reads {c}; pass data of "
                             f"{c} channels") from e
        raise ValueError(f"{what} gives samples of shape {tuple(x.shape[1:])}, which the model does not read ({e}); "
                         "pass the data it was trained on") from e


def _input_channels(model: nn.Module) -> int | None:
    """The channels ``model`` reads: an RNN's ``input_size``, else its first convolution's ``in_channels`` (asked only
    once a forward pass failed, to name the counts); None where it has neither."""
    members = getattr(model, "members", None)  # an ensemble reads as its members do
    model = members[0] if isinstance(members, nn.ModuleList) and len(members) else model
    c = getattr(model, "input_size", None)
    if isinstance(c, int):
        return c
    conv = next((m for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)), None)
    return conv.in_channels if conv is not None else None


def call_model(model: nn.Module, x: Tensor, lengths: Tensor | None = None, *, sequence: bool | None = None) -> Tensor:
    """``model``'s logits of a channels-first ``x``; a sequence model gets ``[B, T, C]`` and the lengths. ``sequence``:
    whether ``model`` is one (default: :func:`takes_lengths`; callers that run many batches may pass it once found)."""
    if takes_lengths(model) if sequence is None else sequence:
        return model(steps_first(x, model), lengths=lengths)
    return model(x)


def outside_inference_mode(fn):
    """``fn`` run with torch's inference mode off, for the tools that make or train a network (``sparsify``,
    ``fit_ridge_head``, ``finetune_sparse``): called under ``torch.inference_mode()`` (a Lightning test loop, a
    user's ``with``), their copies and heads were inference tensors, which no later forward outside it can save
    for backward (a bare RuntimeError at the next training step or load), and training failed at once."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        with torch.inference_mode(False):
            return fn(*args, **kwargs)
    return run


def filled(batches):
    """``batches`` without those of 0 samples: an empty batch is no end of the data (as :func:`unit_gallery` reads it),
    and a loop that explained it failed naming ``x``; an iterable of nothing but empty batches still ends empty."""
    for batch in batches:
        x = batch if isinstance(batch, Tensor) else batch[0] if isinstance(batch, (tuple, list)) and len(batch) else None
        if not (isinstance(x, Tensor) and x.dim() and not len(x)):
            yield batch


def refuse_lengths(net, lengths, what: str = "train", x: Tensor | None = None) -> None:
    """A clear error where ``net`` (a NeuroView network, an Ensemble of them, or None: a MiniRocket still to be built)
    whose backbone reads series of one length (``one_length``: MiniRocket) is given a batch with ``lengths`` shorter
    than its series: its codes counted the padding as data. Any other network: nothing. With the batch's ``x`` the
    middle item is checked as lengths first (:func:`check_lengths`: ``(x, y, other)`` is named so, not as padding),
    and lengths that are every series' whole length pass."""
    nets = getattr(net, "members", None) or [net]
    if lengths is None or not any(m is None or getattr(getattr(m, "backbone", m), "one_length", False) for m in nets):
        return
    if x is not None:
        lengths = check_lengths(lengths, x, what)  # a list or numpy's as a tensor
        if isinstance(x, Tensor) and x.dim() > 1 and bool((lengths >= x.shape[-1]).all()):  # no padding to read
            return
    raise ValueError(f"{what}: MiniRocket reads series of one length; got batches with lengths "
                     "(a variable-length set: stretch its series, UCRDataModule(resample=True))")
