"""What :func:`.retrofit.retrofit` reads of the standard network it is given, checked with errors that name the
argument, what was expected and what was given: its weights (none on the meta device), its number of classes, its
output (logits ``[B, num_classes]``, :func:`standard_logits`: read as its NeuroView variant reads the batch; scored by
:func:`standard_scores`; a single output's kind decided over the training split by :class:`OutputCheck`), the training
split's classes (:func:`check_train_labels`).

May import ``neuroview.core``, ``.sparse_checks`` and the leaf modules.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._batch import call_model, check_lengths, takes_lengths, unpack
from ..core._utils import factory, own_rng
from ..core.rnn import NeuroViewRNN
from .sparse_checks import check_labels

__all__ = ["check_weights", "num_classes_of", "task_classes", "OutputCheck", "as_batch", "checked_logits",
           "standard_logits", "standard_scores", "check_train_labels"]


def check_weights(model: nn.Module) -> None:
    """Refuse a network with a parameter or buffer on the meta device (built under ``torch.device("meta")``, its
    weights never loaded): torch's bare "Tensor.item() cannot be called on meta tensors" named nothing."""
    meta = next((n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta), None)
    if meta is not None:
        raise ValueError(f"model: expected a network with weights, got one whose {meta} is on the meta device (no "
                         "values); load its weights first (model.to_empty(device='cpu'), then load_state_dict)")


def num_classes_of(model: nn.Module) -> int:
    """``model.num_classes``, else the ``out_features`` of its ``fc``, ``classifier`` or ``head``: an nn.Linear, or the
    last nn.Linear of an nn.Sequential (torchvision's VGG, MobileNet); a model that is an nn.Sequential: its last.
    One output is a single-logit (sigmoid / BCE) head: a task of 2 classes, as :func:`checked_logits` scores it (it
    was read as ``num_classes=1``, which the wrap refused, naming an argument the user never passed)."""
    n = getattr(model, "num_classes", None)
    if isinstance(n, int) and not isinstance(n, bool):
        return 2 if n == 1 else n
    heads = [(a, getattr(model, a)) for a in ("fc", "classifier", "head") if isinstance(getattr(model, a, None), nn.Module)]
    for _, m in heads + ([("", model)] if isinstance(model, nn.Sequential) else []):
        linear = [s for s in (m.modules() if isinstance(m, nn.Sequential) else [m]) if isinstance(s, nn.Linear)]
        if linear:
            return 2 if linear[-1].out_features == 1 else linear[-1].out_features
    found = "".join(f"; its {a} is a {type(m).__name__}" for a, m in heads)
    raise ValueError(f"num_classes: could not read it from the {type(model).__name__} (no num_classes, and no nn.Linear "
                     f"as its fc, classifier or head or last in one of them{found}); pass num_classes=")


def task_classes(model: nn.Module, num_classes) -> int:
    """The classes of the NeuroView network retrofitted to ``model``: ``num_classes`` where given, else
    :func:`num_classes_of`; ``num_classes=1`` (a single-logit model's output count) refused, pointing to 2."""
    if num_classes is None:
        return num_classes_of(model)
    if num_classes == 1 and not isinstance(num_classes, bool):  # the wrap's "expected an int >= 2" gave no way out
        raise ValueError("num_classes: expected an int >= 2 (a NeuroView head gives one logit per class; a single-logit "
                         "sigmoid / BCE model decides 2 classes: class 1 where its logit is > 0), got num_classes=1; "
                         "pass num_classes=2, or leave it out")
    return num_classes


@torch.no_grad()
def standard_logits(standard: nn.Module, net: nn.Module, x: Tensor, lengths) -> Tensor:
    """The standard network's logits of a batch as its NeuroView variant ``net`` reads it: steps-first for a
    NeuroView-RNN; channels-first for a NeuroView-CNN, with the lengths where its forward takes them (a masked
    pooling: scored without them, a padded set's accuracy was another network's)."""
    if isinstance(net, NeuroViewRNN):
        return call_model(standard, x, lengths, sequence=True)
    if lengths is None or not takes_lengths(standard):
        return standard(x)
    return standard(x, lengths=check_lengths(lengths, x, "batch").to(x.device))  # a list's too, as a tensor


class OutputCheck:
    """The standard network's output on the training batches, read as they pass (:meth:`read`), and :meth:`check`-ed
    once they are all read, before the head is fitted: each batch's output must be :func:`checked_logits` (a bare
    nn.RNN/LSTM/GRU gives hidden states: nothing to read), ``x`` read as its NeuroView variant ``net`` reads it.

    A single output's kind is its last module's, where the hook of :func:`standard_scores` sees it; otherwise it is a
    logit. What no module tells is decided over the whole training split, never one batch (a logit model's first batch
    of one sample was refused whenever its logit lay in [0, 1]): refused where every training output lies in [0, 1] (a
    ``torch.sigmoid`` in the forward?). Outputs that are all <= 0 are read as logits (a class prior's bias, imbalanced
    data, an untrained network: refusing them refused ordinary models), so an ``F.logsigmoid`` in the forward reads as
    class 0 everywhere: end such a forward in an ``nn.LogSigmoid`` module. The standard network runs on the training
    batches only until its output is settled (more than one output, a module's, or one outside [0, 1]: a logit model's
    first batch, as a rule), with the caller's RNG kept."""

    def __init__(self, standard: nn.Module, net: nn.Module):
        self.standard, self.net, self.samples = standard, net, 0
        self.settled = isinstance(standard, nn.RNNBase)
        self.in_unit = True  # every single output so far in [0, 1]

    def read(self, batches):
        """``batches``, handed on one by one; each read by the standard network after the codes' pass took it (an
        input of another shape is named by their checks)."""
        device = factory(self.net).get("device")
        for batch in batches:
            yield batch
            if not self.settled:
                x, lengths, _ = unpack(batch, device)
                with own_rng(device):  # a forward that draws moves no loader's or augmentation's draws
                    standard_scores(self.standard, self.net, x, lengths, self)

    def saw(self, out: Tensor, kind: str) -> None:
        """One batch's output ``[B, outputs]`` of the given ``kind``."""
        if out.shape[-1] != 1 or kind != "logit":
            self.settled = True
            return
        self.samples += len(out)
        self.in_unit &= bool(((out >= 0) & (out <= 1)).all())
        self.settled = not self.in_unit  # (all <= 0 is a logit too: a class prior's bias, imbalanced data)

    def check(self) -> None:
        if self.settled or not self.samples or not self.in_unit:
            return
        raise ValueError(f"model: its single output lies in [0, 1] for every training sample ({self.samples}), and "
                             "comes from no nn.Sigmoid module: a probability (torch.sigmoid in its forward: class 1 where "
                             "> 0.5) and a logit (class 1 where > 0) cannot be told apart; return the logit (drop the "
                             "sigmoid, as for nn.BCEWithLogitsLoss), or end the forward in an nn.Sigmoid module")


@torch.no_grad()
def standard_scores(standard: nn.Module, net: nn.Module, x: Tensor, lengths, seen: OutputCheck | None = None) -> Tensor:
    """The standard network's :func:`checked_logits` of a batch. A single output that is an ``nn.Sigmoid`` module's
    (``nn.BCELoss``'s model: a probability) or an ``nn.LogSigmoid`` module's (a log-probability), not a logit, is seen
    by a hook on the forward; the last such module called decides. ``seen``: told the output and its kind."""
    last = []  # the output of the last nn.Sigmoid / nn.LogSigmoid module called, and its kind

    def keep(module, _args, out) -> None:
        last[:] = [out, "log-probability" if isinstance(module, nn.LogSigmoid) else "probability"]

    hooks = [m.register_forward_hook(keep) for m in standard.modules() if isinstance(m, (nn.Sigmoid, nn.LogSigmoid))]
    try:
        out = standard_logits(standard, net, x, lengths)
    finally:
        for h in hooks:
            h.remove()
    out = as_batch(out, len(x))
    kind = last[1] if last and isinstance(out, Tensor) and _output_of(last[0], out) else "logit"
    scores = checked_logits(out, net.num_classes, kind, len(x))
    if seen is not None:
        seen.saw(out, kind)
    return scores


def as_batch(out, n: int):
    """A batch of ``n``'s output squeezed, as ``[B, outputs]``: one output per sample (``[B]`` from ``.squeeze(-1)``, a
    0-dim tensor from a bare ``.squeeze()`` of a batch of one) as ``[B, 1]``; a batch of one's outputs ``[C]`` as
    ``[1, C]`` (a batch of one's [1, 1] was refused as "a tensor of shape ()"). Anything else: as it is."""
    if isinstance(out, Tensor) and out.dim() < 2 and out.numel() == n:
        return out.reshape(n, 1)
    return out[None] if isinstance(out, Tensor) and out.dim() == 1 and n == 1 else out


def checked_logits(out, num_classes: int, kind: str = "logit", batch: int | None = None) -> Tensor:
    """The standard network's output ``out`` (:func:`as_batch`), checked: logits ``[B, num_classes]`` (``batch``: B),
    the NeuroView network's task. One output ``[B, 1]`` of a 2-class task is scored by its ``kind``: a ``"logit"`` as
    the logits ``[-out / 2, out / 2]`` (class 1 where ``out > 0``, the probabilities its sigmoid gives); a
    ``"probability"`` ``p`` (an nn.Sigmoid module's) as the log-probabilities ``[log(1 - p), log p]`` (class 1 where
    ``p > 0.5``; read as a logit: class 1 everywhere); a ``"log-probability"`` ``lp`` (an nn.LogSigmoid module's) as
    ``[log(1 - exp(lp)), lp]`` (class 1 where ``lp > log 0.5``; read as a logit: class 0 everywhere)."""
    if not isinstance(out, Tensor) or out.dim() != 2 or (batch is not None and len(out) != batch):
        got = f"a tensor of shape {tuple(out.shape)}" if isinstance(out, Tensor) else f"a {type(out).__name__}"
        of = "" if batch is None or not isinstance(out, Tensor) else f" for a batch of {batch}"
        raise ValueError(f"model: expected a forward that returns logits [B, num_classes] (the cost compares them with "
                         f"the NeuroView network's), got {got}{of}; wrap it in a module whose forward returns them alone")
    if out.shape[-1] == 1 and num_classes == 2:  # (argmax picks the first of a tie: class 0 at out == 0, as out > 0)
        if kind == "probability":
            return torch.cat([1 - out, out], -1).log()  # (a tie at p == 0.5: class 0, as the logit 0)
        if kind == "log-probability":
            return torch.cat([torch.log(-torch.expm1(out)), out], -1)  # (a tie at lp == log 0.5: class 0)
        return torch.cat([-out / 2, out / 2], -1)
    if out.shape[-1] == 1:  # its advice was num_classes=1, which the wrap refuses
        raise ValueError(f"num_classes: the model's output is one logit (a sigmoid / BCE head: a 2-class task), the "
                         f"NeuroView network's classes {num_classes} (num_classes=, else its num_classes, fc or "
                         "classifier); pass num_classes=2")
    if out.shape[-1] != num_classes:  # a hidden layer named fc, or num_classes= given wrong: the cost compares two tasks
        raise ValueError(f"num_classes: the model's output has {out.shape[-1]} classes, the NeuroView network "
                         f"{num_classes} (num_classes=, else its num_classes, fc or classifier); pass "
                         f"num_classes={out.shape[-1]}")
    return out


def _output_of(module_out, out: Tensor) -> bool:
    """Whether ``out`` holds the values of ``module_out``, an nn.Sigmoid / nn.LogSigmoid module's output (a Flatten or
    view after it too)."""
    return (isinstance(module_out, Tensor) and module_out.numel() == out.numel()
            and torch.equal(module_out.reshape(out.shape), out))


def check_train_labels(y: Tensor, num_classes: int, standard: nn.Module) -> None:
    """:func:`.sparse_checks.check_labels` of the training split's labels ``y``. A bare nn.RNN/LSTM/GRU has no output
    to read its classes from, so its ``num_classes`` is the caller's own: where the split holds classes ``0 .. k-1``
    of fewer, ``num_classes=k`` is offered too, as :func:`.ridge.minirocket` offers it."""
    try:
        check_labels(y, num_classes)
    except ValueError as e:
        held = torch.unique(y).tolist()
        if not isinstance(standard, nn.RNNBase) or len(held) < 2 or held != list(range(len(held))):
            raise
        raise ValueError(f"{e}, or the classes it holds as num_classes={len(held)}") from None
