"""Fine-tune a sparse NeuroView network: its backbone learns to serve the few units its head reads.

:func:`neuroview.sparsify` refits the head on frozen codes: the few units it keeps were learned to serve a dense
head. :func:`finetune_sparse` trains the backbone and the head's nonzero weights further on the training split with
the head's support fixed: a weight that is zero stays exactly zero, so each class reads the same units as before, and
every decision is still one exact linear map of the codes. The head's standardization is a fixed affine map while it
trains (folded into the head at eval), then re-estimated on the fine-tuned codes, the head rescaled to keep the
decision. SLDD-Model (Norrenbrock et al. 2022) and QPM fine-tune their backbones once their sparse layer is chosen.

``mode="train"`` (the default) trains as the recipes do: dropout on, BatchNorm on batch statistics
(its running statistics re-estimated). ``mode="eval"`` trains the function ``explain`` reads:
running statistics kept, no dropout; the surrogate gradients of the codes still reach the backbone.
Both were judged on data no network of the study had seen (``benchmarks/sparse_finetune_choice.py``,
the test split never read): in train mode 5 epochs kept 14 of the zoo's 16 entries within 1 point
of their dense network against 13 without fine-tuning, and the zoo's sparse entries are made so
(``FINETUNE_EPOCHS``); in eval mode no number of epochs from 5 to 40 did better than none. The
study fine-tuned without a readability budget; the zoo's entries keep theirs (``max_k90``).

>>> import torch, neuroview as nv
>>> from torch import nn
>>> net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 16, 3), nn.ReLU()), 2, input_shape=(1, 20)).eval()
>>> x = torch.randn(60, 1, 20); y = (x[:, 0, 5:10].mean(1) > 0).long()
>>> sparse = nv.sparsify(net, [(x, y)], tolerance=5.0)
>>> tuned = nv.finetune_sparse(sparse, [(x, y)], epochs=3)
>>> bool(((tuned.classifier.weight != 0) == (sparse.classifier.weight != 0)).all())
True

May import ``neuroview.core``, the leaf modules and :mod:`.sparsify`.
"""

from __future__ import annotations

import copy
import math
import numbers
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, IterableDataset, SequentialSampler

from .._batch import (as_batches, call_model, caller_stacklevel, check_lengths, in_order, kept_generators, module_loader,
                      outside_inference_mode, series_input, unpack)
from ..core._utils import as_labels, batch_labels, named_samples, own_rng, wrapped_hint
from ..core.cnn import NeuroViewCNN
from ..core.ensemble import Ensemble
from ..core.reach import current
from ..core.rnn import NeuroViewRNN
from .sparse_checks import check_budget, check_seed, warn_labels
from .sparsify import _batches, _features, _group_ids, _is_rnn, _k90, classes_checked, derived_cfg

__all__ = ["finetune_sparse", "training_k90", "unfreeze_backbone", "FINETUNE_EPOCHS", "FINETUNE_LR"]

FINETUNE_EPOCHS = 5  # the zoo's sparse entries: chosen on held-out data (module docstring)
MODES = ("train", "eval")

FINETUNE_LR = 1e-4  # the CNN recipes' final rate (a tenth of their 1e-3 peak); the study's rate for every entry


def _train_batches(data):
    """A data module's training loader (shuffled, as its recipe trains); any other iterable as it is,
    unless it reads once (a generator: every epoch, the budget's check and the re-centring read it again).
    A data module's loader with persistent workers is read through a rebuild without them (:func:`_unpersisted`)."""
    if hasattr(data, "train_dataloader") and hasattr(data, "setup"):
        return _unpersisted(module_loader(data, "train"))  # set up once: a random split in setup changed every epoch
    data = as_batches(data, "train")
    if isinstance(data, Iterator):  # the second epoch would find it empty, and say the loader was empty
        raise TypeError(f"train: expected batches that can be read again (a DataLoader, a list of batches or a data "
                        f"module: every epoch reads them, then the re-centring), got a one-shot {type(data).__name__}; "
                        "pass list(...) of it")
    return data


def _unpersisted(loader):
    """A DataLoader with ``persistent_workers`` as the same loader without them, rebuilt over the same dataset, sampler
    (or batch sampler), collate, workers and generator; anything else as it is. A persistent loader keeps its iterator
    between passes and draws no new base seed for its workers there: the first pass of a call shuffled by the state of
    the global RNG after that draw, not at ``seed``, and its workers' random draws went on from the last pass, so
    ``finetune_sparse(seed=3)`` gave another network at each call. Rebuilt, not reset: its iterator is PyTorch's private
    state, and the caller's loader (its workers too) is left as it was. Each pass then starts its workers afresh, as a
    loader without persistent workers does (what a seed makes reproducible here)."""
    if not (isinstance(loader, DataLoader) and loader.persistent_workers and loader.num_workers > 0):
        return loader
    if isinstance(loader.dataset, IterableDataset):  # no sampler to give: it deals itself
        order = {"batch_size": loader.batch_size, "drop_last": loader.drop_last}
    elif loader.batch_sampler is not None:  # shuffle, batch size and drop_last inside it (and its generator)
        order = {"batch_sampler": loader.batch_sampler}
    else:  # batch_size=None: the sampler's samples one at a time
        order = {"batch_size": None, "sampler": loader.sampler}
    return DataLoader(loader.dataset, **order, collate_fn=loader.collate_fn, num_workers=loader.num_workers,
                      pin_memory=loader.pin_memory, timeout=loader.timeout, worker_init_fn=loader.worker_init_fn,
                      multiprocessing_context=loader.multiprocessing_context, generator=loader.generator,
                      prefetch_factor=loader.prefetch_factor, persistent_workers=False)


def _check(net, epochs, lr, weight_decay, mode) -> None:
    if not isinstance(net, (NeuroViewCNN, NeuroViewRNN, Ensemble)):
        ours = lambda m: isinstance(m, (NeuroViewCNN, NeuroViewRNN, Ensemble))  # noqa: E731 - inside DDP, compile: named
        raise TypeError("sparse: expected a NeuroViewCNN, a NeuroViewRNN or an Ensemble with a global head "
                        "(nv.sparsify(net, ...))" + (wrapped_hint(net, ours, "sparse") or f", got {type(net).__name__}"))
    if isinstance(net, Ensemble) and net.classifier is None:
        raise ValueError("sparse: an Ensemble deciding with its members' mean, not a global head; nv.sparsify(ensemble, ...) "
                         "builds and fits one")
    if getattr(net, "classifier", None) is None:
        raise ValueError("sparse: the network has no classifier yet (run one batch through it, or nv.sparsify it)")
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 0:
        raise ValueError(f"epochs: expected an int >= 0, got {epochs!r}")
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
    if epochs and any(p.dtype == torch.float16 for p in net.parameters() if p.requires_grad):  # AdamW's eps is 0 there
        raise TypeError("sparse: float16 weights to train, which AdamW cannot train (its eps 1e-8 rounds to 0 in float16: "
                        "the weights became NaN); fine-tune a float32 copy (sparse.float()) and cast the result back")
    for name, value, low in (("lr", lr, "> 0"), ("weight_decay", weight_decay, ">= 0")):
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or not (value > 0 if name == "lr" else value >= 0):
            raise ValueError(f"{name}: expected a finite number {low}, got {value!r}")


def training_k90(net: nn.Module, train, q: float = 0.5) -> tuple[float, float | None]:
    """``(k90, k90 in steps or None)``: the ``q`` quantile over the training split's decisions of
    ``net`` (predicted logit, against the training mean code), as :func:`neuroview.sparsify`'s
    budget counts them; no label is read. An RNN series' steps past its end (padding) are one item, their sum, at
    either level, as ``exp.k90`` and the path's k90 count them (each padded step counted apart here made a dense
    head's padded series need more steps than its explanation says)."""
    lengths: list = []  # each batch's series' lengths in steps (an RNN's)
    f, _ = _features(net, _batches(train, "train"), "train", lengths=lengths)
    with torch.no_grad():
        norm = net.norm  # its eval-time map, whatever mode the network is in
        z = ((f - norm.running_mean) * norm.scale()).float() if norm is not None else f.float()
        point, mean = (net.classifier.weight.detach().float(), net.classifier.bias.detach().float()), z.mean(0)
        steps = _group_ids(net, "step") if _is_rnn(net) else None
        n = torch.cat(lengths) if lengths else None
        k = float(_k90(point, z, steps, mean=mean, lengths=n, level="features").float().quantile(q))
        return k, None if steps is None else float(_k90(point, z, steps, mean=mean, lengths=n).float().quantile(q))


def _recentre(net: nn.Module, train) -> None:
    """Move the head's standardization to the fine-tuned codes' training mean and variance, the bias taking the mean's
    difference and each weight column ``old scale / new scale`` (the same decision to float rounding; a zero stays
    zero), so that ``baseline="mean"`` reads against the training mean code and ``standardized=True`` weighs each unit by
    its code's spread now, as after ``sparsify`` (its spreads ranked units by codes the backbone no longer computed)."""
    f, _ = _features(net, _batches(train, "train"), "train")
    norm, head = net.norm, net.classifier
    with torch.no_grad():
        new, old = f.mean(0).to(norm.running_mean.dtype), norm.scale(torch.float64)
        shift = (new - norm.running_mean).double() * old  # what the standardized codes lose
        head.bias.add_((head.weight.double() @ shift).to(head.bias.dtype))
        norm.running_mean.copy_(new)
        norm.running_var.copy_(f.double().var(0, unbiased=False).to(norm.running_var.dtype))
        head.weight.copy_((head.weight.double() * (old / norm.scale(torch.float64))).to(head.weight.dtype))


def _epoch(net: nn.Module, train, opt, keep: torch.Tensor, mode: str, seen: list | None = None) -> tuple[float, int]:
    """One pass over ``train`` with the head's zero weights held at zero: ``(mean training loss,
    batches skipped)``; ``seen`` (a list) gets each batch's labels."""
    weight, device = net.classifier.weight, net.classifier.weight.device
    # BatchNorm takes no statistics from one sample in train mode: such a batch is dropped, as the data
    # modules' drop_last does; a network without BatchNorm trains on it
    single_fails = mode == "train" and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())
    total, n, skipped, read = 0.0, 0, 0, 0
    loader = _train_batches(train)
    for j, batch in enumerate(loader):
        x, lengths, y = unpack(batch, what="train", net=net)
        if y is None:
            raise ValueError("train: expected batches (x, y) or (x, lengths, y) with labels, got bare inputs")
        if not isinstance(x, torch.Tensor):  # (numpy series: a bare AttributeError on .to)
            raise TypeError(f"x: expected a torch.Tensor, got {type(x).__name__}")
        start, read = read, read + len(x)  # the samples of the pass before this batch's
        if _is_rnn(net):  # its layout first: steps-last series named as such, not as lengths
            series_input(x, net, "train")
        # (x, y, other) is read as (x, lengths, y): trained on `other` as the labels; an RNN's own check named `lengths`
        lengths = check_lengths(lengths, x, "train", y)
        y = as_labels(y, "train", weight.shape[0])  # bools: classes 0 and 1 of a 2-class head, else refused
        if seen is not None:  # its classes, before the copy to the device (a CPU loader's: no sync)
            seen.append(torch.unique(y.detach()).cpu())
        x, y = x.to(device), y.to(device)
        if single_fails and len(y) < 2:
            skipped += 1
            continue
        # an RNN's series channels-first [B, C, T] as the data modules give them, checked and named as `train`
        with _named(loader, j, start):  # a NaN named as a row of the data, not in an `x` never passed
            logits = net(series_input(x, net, "train"), lengths=lengths) if _is_rnn(net) else call_model(net, x, lengths)
        loss = F.cross_entropy(logits, batch_labels(y, len(logits), logits.shape[1], "train"))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if weight.grad is not None:
            weight.grad.mul_(keep)
        opt.step()
        with torch.no_grad():
            weight.mul_(keep)  # exactly zero where it was: the same units per class
        total, n = total + float(loss.detach()) * len(y), n + len(y)
    if n == 0:
        if skipped:
            raise ValueError("train: expected at least one batch of 2 or more samples (BatchNorm in train mode), "
                             "got batches of one sample each")
        raise ValueError("train: expected at least one batch, got an empty loader")
    return total / n, skipped


def _dealer(loader) -> str | None:
    """The class of what deals a DataLoader's samples in another order than its dataset's (``shuffle=True``'s
    RandomSampler, a sampler of one's own), or None where they come in order (anything not a DataLoader as well)."""
    if not isinstance(loader, DataLoader) or isinstance(loader.dataset, IterableDataset):
        return None
    bs = loader.batch_sampler
    s = bs.sampler if type(bs) is BatchSampler else loader.sampler if bs is None else bs
    return None if isinstance(s, SequentialSampler) else type(s).__name__


@contextmanager
def _named(loader, batch: int, before: int):
    """:func:`named_samples` for batch ``batch`` of the training ``loader``. Where it deals its samples in another order
    than its dataset's, their place in this epoch's order is no row of the data (the advice to drop those samples could
    not be followed): the dataset's rows that hold NaN or Inf are found by reading it in order, or, where its order
    cannot be undone, the message says the place is in the loader's own order."""
    try:
        with named_samples("train", batch, before):
            yield
    except ValueError as e:
        found, dealer = getattr(e.__cause__, "nonfinite_samples", None), _dealer(loader)
        if not found or dealer is None:
            raise
        rows = _nan_rows(loader)
        s, verb = ("s", "contain") if len(rows or found) > 1 else ("", "contains")
        if rows:
            said = (f"{rows[0] if len(rows) == 1 else rows[:5]}{' and more' * (len(rows) > 5)} of the dataset (the "
                    f"loader shuffles: met in batch {batch} of this epoch)")
        else:
            said = (f"{found[0] if len(found) == 1 else found[:5]} of batch {batch} in the order the loader deals them "
                    f"(its {dealer} is not the dataset's order: read the data with shuffle=False to find the row)")
        raise ValueError(f"train: sample{s} {said} {verb} NaN or Inf; clean the data first (drop or fill those "
                         "samples)") from e.__cause__


def _nan_rows(loader) -> list[int]:
    """The rows of ``loader``'s dataset whose input holds NaN or Inf, read in order and unaugmented (:func:`in_order`);
    none where its order cannot be undone (a sampler of its own: read as it deals, no row of the data)."""
    ordered, rows, seen = in_order(loader, subsets=False), [], 0
    if ordered is loader:
        return []
    for batch in ordered:
        x = unpack(batch)[0]
        if isinstance(x, torch.Tensor) and x.dim():
            if x.is_floating_point() or x.is_complex():
                rows += (torch.nonzero(~torch.isfinite(x.reshape(len(x), -1)).all(1)).flatten() + seen).tolist()
            seen += len(x)
    return rows


def _body(m: nn.Module) -> nn.Module:
    return m.rnn if _is_rnn(m) else m.backbone


def unfreeze_backbone(net: nn.Module) -> nn.Module:
    """``net`` (returned) with what its decision reaches made trainable: every parameter of each backbone (an RNN's
    ``rnn``; each member's) but those its wrapper found unreached when it found its sites (``net.frozen``, and those
    frozen then already: the backbone's own head). ``backbone.requires_grad_(True)`` unfroze the head too, which then
    never gets a gradient (plain DDP waits for it: warned at the next training pass).

    >>> import torch, neuroview as nv
    >>> from torch import nn
    >>> net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(72, 2)), 2,
    ...                       example_input=torch.randn(2, 1, 20)).requires_grad_(False)
    >>> [n for n, p in unfreeze_backbone(net).backbone.named_parameters() if p.requires_grad]
    ['0.weight', '0.bias']
    """
    for m in getattr(net, "members", None) or [net]:
        names = tuple(m.__dict__.get("frozen", ())) + tuple(m.__dict__.get("_kept_frozen", ()))
        held = {id(p) for n in names for p in current(m.backbone, n)} if names else set()
        for p in _body(m).parameters():
            if id(p) not in held:
                p.requires_grad_(True)
    return net


def _prepare(net: nn.Module, mode: str, epochs: int) -> tuple[torch.Tensor, list]:
    """Set the copy ``net`` to train in ``mode``: ``(the head's support as 0/1 weights, the parameters to train)``."""
    net.train(mode == "train")
    body = []
    for m in getattr(net, "members", None) or [net]:
        own = [p for n, p in _body(m).named_parameters() if n not in getattr(m, "frozen", ())]
        if own and not any(p.requires_grad for p in own):
            # a frozen backbone (nv.retrofit's) is a fixed function: its BatchNorm statistics and dropout are part of it
            # (train mode moved the running statistics, and with them the codes the head reads)
            _body(m).eval()
        body += own
    for m in net.modules():
        if isinstance(m, nn.RNNBase) and not m.dropout:
            m.train()  # the same computation (no dropout inside), and cuDNN's backward needs it
    if net.norm is not None:
        net.norm.eval()  # the standardization sparsify fitted stays as it is
    weight = net.classifier.weight
    keep = (weight.detach() != 0).to(weight.dtype)
    params = [p for p in net.parameters() if p.requires_grad]
    if not params and epochs:  # AdamW's bare "optimizer got an empty parameter list"
        raise ValueError("sparse: expected a network with parameters to train, got one whose parameters all have "
                         "requires_grad=False (frozen); unfreeze what fine-tuning may change (sparse.classifier.requires_grad_(True); "
                         "the backbone: neuroview.training.sparse_finetune.unfreeze_backbone(sparse))")
    if epochs and params and body and not any(p.requires_grad for p in body):  # (none, as MiniRocket's: nothing to say)
        warnings.warn("sparse: its backbone is frozen (requires_grad=False throughout, as nv.retrofit leaves it): only "
                      "the head's nonzero weights train; unfreeze what its decision reaches "
                      "(neuroview.training.sparse_finetune.unfreeze_backbone(sparse): not the backbone's own head, which "
                      "plain DDP would wait on) to fine-tune it for the units it reads", stacklevel=caller_stacklevel())
    return keep, params


def _seed(seed: int, device: torch.device) -> None:
    """The generators :func:`own_rng` saves seeded with ``seed``: the CPU's, and ``device``'s where it is CUDA, MPS or
    XPU (its dropout draws there; MPS and XPU untried here: no such machine); no other GPU's, which the fork does not
    give back (``data/batches.py`` seeds so too). A network on another kind of accelerator has its device's generator
    seeded too, so that its dropout follows the seed as before; that one generator the fork does not give back."""
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        with torch.cuda.device(device):
            torch.cuda.manual_seed(seed)
    elif device.type != "cpu" and callable(getattr(getattr(torch, device.type, None), "manual_seed", None)):
        getattr(torch, device.type).manual_seed(seed)


@outside_inference_mode
def finetune_sparse(sparse: nn.Module, train, *, epochs: int = FINETUNE_EPOCHS, lr: float = FINETUNE_LR,
                    weight_decay: float = 0.0, seed: int = 0, mode: str = "train", max_k90: float | None = None,
                    max_k90_steps: float | None = None, k90_quantile: float = 0.5) -> nn.Module:
    """A copy of ``sparse`` trained further with its head's support fixed (see the module docstring).

    Args:
        sparse: a NeuroView network, usually from :func:`neuroview.sparsify`; never changed.
        train: the training split: a data module of :mod:`neuroview.data` (its shuffled training
            loader) or an iterable of batches ``(x, y)`` / ``(x, lengths, y)``, of every class of the
            network (one class only, or none of a class in any of its epochs, is warned of: ``sparsify`` refuses it).
        epochs: passes over ``train`` (0: an unchanged copy). In train mode a network with
            BatchNorm skips a batch of a single sample (BatchNorm takes no statistics from one; the
            data modules' training loaders drop such a last batch), counted in
            ``result.finetuned["skipped_batches"]``.
        lr, weight_decay: AdamW's, for the backbone and the head's nonzero weights.
        seed: an int in [0, 2**64), the shuffle and dropout of the fine-tuning (``result.finetuned["seed"]``); the
            caller's random state (the CPU's generator and every GPU's) is left as it was. A loader with
            ``persistent_workers`` is read through a copy without them (its kept iterator shuffled by the loader's
            history, not by the seed).
        mode: ``"train"`` (batch statistics and dropout, as the recipes train) or ``"eval"`` (the
            function explained: running statistics kept, no dropout). A backbone whose parameters are
            all frozen (none requires grad, as :func:`neuroview.retrofit` leaves it) stays in eval mode
            in either: its BatchNorm statistics and dropout are part of the frozen function.
        max_k90, max_k90_steps, k90_quantile: the readability budget of :func:`neuroview.sparsify`:
            the support is fixed, but the weights move and k90 with them. With a budget the network
            of the last epoch whose training decisions still meet it is returned (the one given
            when the first epoch already breaks it).

    The head's standardization is then moved to the fine-tuned codes' training mean and variance (bias and weights
    take the difference: the same decision): ``baseline="mean"`` is the training mean code, standardized importance
    the codes' spread now. The result keeps ``sparse.sparsity_path``; ``result.finetuned`` records the epochs (and
    ``epochs_kept`` within the budget), the rate, each epoch's mean training loss; ``"earlier"``: ``sparse``'s, oldest first.
    """
    _check(sparse, epochs, lr, weight_decay, mode)
    check_budget(sparse, max_k90, max_k90_steps, k90_quantile)
    check_seed(seed, "the fine-tuning's shuffle and dropout")  # 1.5 was truncated to 1, "a" failed in a bare int()
    epochs, lr, weight_decay = int(epochs), float(lr), float(weight_decay)  # numpy's scalars as the record keeps them
    budget = max_k90 is not None or max_k90_steps is not None
    net = derived_cfg(copy.deepcopy(sparse), "finetuned_from")  # a zoo entry's record is of its weights, not these
    train = _unpersisted(classes_checked(sparse, train, "train"))  # every pass (epochs, budget, re-centring) from the seed
    keep, params = _prepare(net, mode, epochs)
    weight = net.classifier.weight
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay) if params else None
    device = weight.device
    losses, kept, last, skipped = [], 0, copy.deepcopy(net.state_dict()) if budget else None, 0
    # it trains under a caller's no_grad too; a loader's own generator g shuffles by the seed, and g is left as it was
    with own_rng(device), kept_generators(train, seed), torch.enable_grad():
        _seed(seed, device)  # what own_rng saved, not torch.manual_seed: that reseeded every GPU's generator for good
        seen: list = []  # the classes of its batches, over every epoch (a shuffled drop_last pass may miss a small one)
        for epoch in range(epochs):
            loss, skip = _epoch(net, train, opt, keep, mode, seen)
            if not math.isfinite(loss):  # never a network of NaN weights returned as fine-tuned
                raise ValueError(f"sparse: fine-tuning's training loss is {loss} at epoch {epoch} (lr={lr}); the network "
                                 "diverged: pass a smaller lr, or epochs=0")
            losses.append(loss)
            skipped += skip
            if budget:
                with own_rng(device):
                    k, k_steps = training_k90(net, train, k90_quantile)  # a loader draws a seed: not the training's
                if (max_k90 is not None and k > max_k90) or (max_k90_steps is not None and k_steps > max_k90_steps):
                    break
                kept, last = epoch + 1, copy.deepcopy(net.state_dict())
            else:
                kept = epoch + 1
    if seen:  # one class only, or none of a class: every decision moved toward the classes it saw
        warn_labels(torch.cat(seen), net.num_classes, len(losses))
    if budget and kept < len(losses):
        net.load_state_dict(last)
    net.eval()
    if kept and net.norm is not None:
        with own_rng(device):
            _recentre(net, train)
    before = dict(getattr(net, "finetuned", None) or {})  # a fine-tuned network's (its copy's): kept flat, to replay
    earlier = {"earlier": [*before.pop("earlier", []), before]} if before else {}
    net.finetuned = {"epochs": epochs, "lr": lr, "weight_decay": weight_decay, "mode": mode, "train_loss": losses,
                     "epochs_kept": kept, "skipped_batches": skipped, "seed": int(seed), **earlier}
    return net
