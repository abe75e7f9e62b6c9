"""A sparse multinomial logistic regression along a regularization path, on fixed features.

The solver behind :func:`neuroview.sparsify`, in the spirit of Wong et al. 2021 (glm_saga): the
features are computed once, the penalty starts where every weight is zero and decreases
geometrically, and each point of the path starts from the previous one (warm starts). Full-batch
FISTA (with adaptive restart) and a fixed step ``1 / L``: the mean cross-entropy's gradient is ``L``-Lipschitz with
``L = ||[X, 1]||_2^2 / (2 N)``, so every step decreases the objective and the path is
deterministic, on CPU or GPU alike.

The penalty is the sparse group lasso, per class:

    lam * ( a * ||W||_1  +  (1 - a) * sum_{c, g} sqrt(|g|) * ||W[c, g]||_2 )

``groups`` gives each feature's group (``None``: every feature alone, where both parts are ``|w|``:
plain L1 ``lam * ||W||_1`` whatever ``a``). For a
NeuroView-RNN a group is a time step, so a decision reads few steps (and, through the L1 part,
few hidden states in each). The bias is not penalized.

Imports only torch.

>>> import torch
>>> g = torch.Generator().manual_seed(0)
>>> x = torch.randn(200, 20, generator=g); y = (x[:, 3] > 0).long()
>>> path = fit_path(x, y, 2, lambdas=lambda_grid(x, y, 2, points=8))
>>> [int((w != 0).any(0).sum()) for w, _ in path][:3]   # the first feature to enter is feature 3
[0, 1, 1]
>>> int((path[1][0] != 0).any(0).nonzero()[0])
3
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["fit_path", "iter_path", "lambda_grid", "penalty_max", "relax", "soft_targets", "targets"]


def _group_index(groups: Tensor | None, n_features: int, device) -> tuple[Tensor, Tensor] | None:
    """``(group of each feature [F], sqrt(size) of each group [G])``, or None for no groups."""
    if groups is None:
        return None
    groups = torch.as_tensor(groups, device=device).long()
    if groups.shape != (n_features,) or (len(groups) and groups.min() < 0):
        raise ValueError(f"groups: expected one non-negative group id per feature ([{n_features}]), got shape {tuple(groups.shape)}")
    _, inv = torch.unique(groups, return_inverse=True)
    sizes = torch.bincount(inv).float()
    return inv, sizes.sqrt()


def _group_norms(w: Tensor, inv: Tensor, n_groups: int) -> Tensor:
    return w.new_zeros(w.shape[0], n_groups).index_add_(1, inv, w.square()).sqrt()


def _prox(w: Tensor, t: Tensor, a: float, grp) -> Tensor:
    """The sparse group lasso's proximal map: soft-threshold each weight, then shrink each group."""
    w = w.sign() * (w.abs() - t * a).clamp_min(0)
    if grp is None or a >= 1:
        return w
    inv, root = grp
    norms = _group_norms(w, inv, len(root))
    shrink = (1 - t * (1 - a) * root.to(w.dtype) / norms.clamp_min(1e-30)).clamp_min(0)
    return w * shrink[:, inv]


def targets(y: Tensor, num_classes: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """``[N, C]`` the probabilities the fit aims at: one-hot rows of the classes ``y [N]``, or ``y``
    itself where it is already ``[N, C]`` probabilities (soft targets: a dense network's decisions)."""
    if y.is_floating_point():
        if y.dim() != 2 or y.shape[1] != num_classes:
            raise ValueError(f"y: expected classes [N] or probabilities [N, {num_classes}], got shape {tuple(y.shape)}")
        sums = y.sum(1, dtype=torch.float64)  # a low-precision row sums to 1 within its own rounding
        if not bool(torch.isfinite(y).all()) or bool((y < 0).any()) or bool(((sums - 1).abs() > max(1e-4, torch.finfo(y.dtype).eps)).any()):
            raise ValueError("y: soft targets must be finite, non-negative rows summing to 1")
        return y.to(dtype)
    return F.one_hot(y, num_classes).to(dtype)


def soft_targets(logits: Tensor, distill: float) -> Tensor:
    """``[N, C]`` float32 ``softmax(logits / distill)`` (:func:`neuroview.sparsify`'s ``distill``): as float32 gives it
    where that is finite; else from a float64 ``log_softmax`` of each row less its largest logit (``logits / 1e-40``
    overflowed float32: NaN rows, then refused as ``y``). Still not finite (the logits are not): an error naming distill."""
    t = torch.softmax(logits.float() / distill, 1)
    if bool(torch.isfinite(t).all()):
        return t
    z = logits.double()
    t = torch.log_softmax((z - z.amax(1, keepdim=True)) / distill, 1).exp().float()
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"distill: the dense network's probabilities at temperature {distill!r} are not finite (its "
                         "logits on the training split are not); pass distill=None to fit the labels")
    return t


def _start(x: Tensor, y: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
    """The all-zero weights' optimal bias (the log class priors) and the gradient there, ``[C, F]``."""
    onehot = targets(y, num_classes, x.dtype)
    b = onehot.mean(0).clamp_min(1e-12).log()
    p = torch.softmax(b, 0).expand(len(y), -1) - onehot
    return b, p.T @ x / len(y)


def penalty_max(x: Tensor, y: Tensor, num_classes: int, *, groups: Tensor | None = None, l1_ratio: float = 1.0) -> float:
    """The smallest ``lam`` at which every weight is zero (the path's first point)."""
    _, grad = _start(x, y, num_classes)
    grp = _group_index(groups, x.shape[1], x.device)
    top = float(grad.abs().max())
    if grp is None or l1_ratio >= 1:
        return top / max(l1_ratio, 1e-12) if grp is not None else top
    # a group stays zero while ||soft(grad_g, lam a)|| <= lam (1 - a) sqrt|g|: bisect lam per group
    inv, root = grp
    lo = torch.zeros(len(root), dtype=grad.dtype, device=grad.device)  # on the features' device, as inv is
    hi = torch.full((len(root),), top / max(l1_ratio, 1e-12) + 1e-12, dtype=grad.dtype, device=grad.device)
    for _ in range(60):
        mid = (lo + hi) / 2
        soft = (grad.abs() - mid[inv] * l1_ratio).clamp_min(0)
        norms = _group_norms(soft, inv, len(root)).amax(0)
        ok = norms <= mid * (1 - l1_ratio) * root.to(grad.dtype)
        hi, lo = torch.where(ok, mid, hi), torch.where(ok, lo, mid)
    return float(hi.max())


def lambda_grid(x: Tensor, y: Tensor, num_classes: int, *, groups: Tensor | None = None, l1_ratio: float = 1.0,
                points: int = 40, ratio: float = 1e-3) -> Tensor:
    """``points`` penalties from :func:`penalty_max` down to ``ratio`` times it, geometrically."""
    top = penalty_max(x, y, num_classes, groups=groups, l1_ratio=l1_ratio) * (1 + 1e-4)  # rounding: 0 at the first point
    return torch.logspace(math.log10(top), math.log10(top * ratio), points, dtype=torch.float64)


#: Above this many multiply-adds (``n * f * min(n, f)``) the step's spectral norm comes from subspace
#: iteration instead of an SVD: the SVD of MiniRocket's 4,000 x 9,996 MNIST-1D codes took 73 s on one
#: thread at every point of the path, subspace iteration 2.5 s (``benchmarks/sparsify_cost.py``).
#: Every zoo entry stays below it (the largest, nv_gru.japanesevowels: 270 x 6,657 x 270 = 4.9e8) and
#: keeps its exact SVD.
_SVD_WORK = 1e9


def _norm2(a: Tensor) -> float:
    """The largest singular value of ``a``, squared (the Lipschitz constant's matrix part): exact
    (an SVD) for small matrices; for large ones subspace iteration on ``a^T a`` (8 vectors,
    Rayleigh-Ritz, until the estimate moves less than 1e-6 of itself), times 1.01. The estimate
    approaches the true value from below; once converged, the margin covers what is left, so the
    step stays at most ``1 / L`` (tested on matrices of known spectra, nearly flat ones too)."""
    n, f = a.shape
    if n * f * min(n, f) <= _SVD_WORK:
        return float(torch.linalg.matrix_norm(a, ord=2)) ** 2
    g = torch.Generator().manual_seed(0)
    q = torch.linalg.qr(torch.randn(f, 8, generator=g, dtype=a.dtype).to(a.device))[0]
    est = 0.0
    for _ in range(200):
        m = a @ q
        top = float(torch.linalg.eigvalsh(m.T @ m)[-1])
        if abs(top - est) <= 1e-6 * top:
            break
        est = top
        q = torch.linalg.qr(a.T @ m)[0]
    return max(top, est) * 1.01


def _fista(x: Tensor, onehot: Tensor, w: Tensor, b: Tensor, lam: float, a: float, grp, max_iter: int,
           tol: float, ridge: float = 0.0, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """One point of the path on the columns ``x`` holds: FISTA with adaptive restart from ``(w, b)``.
    ``ridge`` adds ``ridge / 2 * ||W||^2`` to the smooth part; ``mask`` keeps the weights it marks
    False at 0 (a projection, the prox of their constraint)."""
    n = x.shape[0]
    ones = torch.ones(n, 1, dtype=x.dtype, device=x.device)
    step = 1.0 / max(_norm2(torch.cat([x, ones], 1)) / (2 * n) + ridge, 1e-12)
    t = torch.tensor(step * lam, dtype=x.dtype, device=x.device)
    zw, zb, mom = w, b, 1.0
    for _ in range(max_iter):
        p = torch.softmax(x @ zw.T + zb, 1) - onehot  # [N, C]
        w_new = _prox(zw - step * ((p.T @ x) / n + ridge * zw), t, a, grp)
        if mask is not None:
            w_new = w_new * mask
        b_new = zb - step * p.mean(0)
        # the composite gradient (Nesterov's gradient mapping): zero exactly at the point's optimum
        moved = max(float((w_new - zw).abs().max()) if w.numel() else 0.0, float((b_new - zb).abs().max())) / step
        # adaptive restart (O'Donoghue & Candes 2015): momentum against the step's direction is dropped
        if float(((zw - w_new) * (w_new - w)).sum() + ((zb - b_new) * (b_new - b)).sum()) > 0:
            mom = 1.0
        mom_new = (1 + math.sqrt(1 + 4 * mom * mom)) / 2
        zw = w_new + (mom - 1) / mom_new * (w_new - w)
        zb = b_new + (mom - 1) / mom_new * (b_new - b)
        w, b, mom = w_new, b_new, mom_new
        if moved <= tol:
            break
    return w, b


def _grow(active: Tensor, score: Tensor, threshold: float, least: int = 64) -> Tensor:
    """``active`` and the features outside it whose ``score`` exceeds ``threshold``, the largest
    first and at most as many as ``active`` holds (at least ``least``): the working set at most
    doubles a round. Hidden states of neighbouring steps are nearly collinear, so thousands pass
    the strong rule at once while a handful enter the model; the KKT check after each round adds
    whatever else the point needs (nv_gru.japanesevowels: 78 s to 18 s for ``sparsify``)."""
    cand = ~active & (score > threshold)
    limit = max(least, int(active.sum()))
    if int(cand.sum()) > limit:
        top = torch.where(cand, score, torch.full_like(score, -1.0)).topk(limit).indices
        cand = torch.zeros_like(cand)
        cand[top] = True
    return active | cand


def fit_path(x: Tensor, y: Tensor, num_classes: int, **kw) -> list[tuple[Tensor, Tensor]]:
    """``(W [C, F], b [C])`` at each penalty of ``lambdas`` (largest first): :func:`iter_path`, all of it."""
    return list(iter_path(x, y, num_classes, **kw))


def iter_path(x: Tensor, y: Tensor, num_classes: int, *, lambdas: Tensor, groups: Tensor | None = None,
              l1_ratio: float = 1.0, max_iter: int = 2000, tol: float = 1e-3):
    """Yield ``(W [C, F], b [C])`` at each penalty of ``lambdas`` (largest first), warm-started.

    ``x [N, F]`` are the (standardized) features and ``y [N]`` the classes (or ``[N, C]`` soft
    targets: the cross-entropy against them, :func:`targets`). A point stops after
    ``max_iter`` steps or when its gradient mapping (the step's move over the step size: the
    penalized objective's gradient, zero at the optimum) is at most ``tol`` in every weight.

    Each point is solved on a working set of features: those already in use and those the
    sequential strong rule (Tibshirani et al. 2012) expects to enter, ``|grad| >= a (2 lam - lam_prev)``
    (the strongest of them, the set at most doubling: :func:`_grow`); then every feature left out
    is checked against the optimality condition ``|grad| <= a lam`` (which makes its zero weight
    optimal, group part included) and the strongest violators join the set, until none is left.
    The answer is the full problem's, to the solver's tolerance; only the columns read change.
    """
    if not 0 <= l1_ratio <= 1:
        raise ValueError(f"l1_ratio: expected a number in [0, 1], got {l1_ratio!r}")
    n, f = x.shape
    grp = _group_index(groups, f, x.device)
    # no groups: every feature its own group, where both parts of the penalty are |w| (sqrt(1) = 1): plain L1, in full
    a = float(l1_ratio) if grp is not None else 1.0
    onehot = targets(y, num_classes, x.dtype)
    b, _ = _start(x, y, num_classes)
    w = x.new_zeros(num_classes, f)
    prev = None
    for lam in lambdas.tolist():
        grad = (torch.softmax(x @ w.T + b, 1) - onehot).T @ x / n  # [C, F] at the warm start
        if a > 0:
            cut = a * (2 * lam - (prev if prev is not None else lam))
            active = _grow((w != 0).any(0), grad.abs().amax(0), cut)
        else:  # no per-weight part: the strong rule needs one, so every feature is in the set
            active = torch.ones(f, dtype=torch.bool, device=x.device)
        while True:
            cols = active.nonzero()[:, 0]
            sub = None if grp is None else (grp[0][cols], grp[1])
            ws, b = _fista(x[:, cols], onehot, w[:, cols], b, lam, a, sub, max_iter, tol)
            w = torch.zeros_like(w)
            w[:, cols] = ws
            if bool(active.all()):
                break
            grad = (torch.softmax(x @ w.T + b, 1) - onehot).T @ x / n
            score = grad.abs().amax(0)
            late = ~active & (score > a * lam * (1 + 1e-9))
            if not bool(late.any()):
                break
            active = _grow(active, score, a * lam * (1 + 1e-9))
        prev = lam
        yield w.clone(), b.clone()


def relax(x: Tensor, y: Tensor, w: Tensor, b: Tensor, *, l2: float = 1e-2, max_iter: int = 300,
          tol: float = 1e-3) -> tuple[Tensor, Tensor]:
    """A relaxed-lasso refit (after Meinshausen 2007): the weights of ``w``'s support, and only those, refitted with a
    fixed ridge ``l2 / 2 * ||W||^2`` on the mean cross-entropy of ``x`` (the codes in standardized units) in place of
    the path's L1 shrinkage. The ridge is not scaled to the point's own penalty: ``l2`` (``sparsify``'s ``relaxed``,
    0.1) was chosen on held-out data for the zoo's networks, and at the dense end of a path, or on few, weak units, it
    can shrink more than the path did and cost accuracy; ``relaxed=None`` keeps the path's own weights (compare both
    on validation data when in doubt). Zero weights stay exactly zero. FISTA from ``(w, b)`` on the support's columns."""
    mask = w != 0
    cols = mask.any(0).nonzero()[:, 0]
    if not len(cols):
        return w.clone(), b.clone()
    onehot = targets(y, w.shape[0], x.dtype)
    ws, b = _fista(x[:, cols], onehot, w[:, cols], b, 0.0, 1.0, None, max_iter, tol, ridge=l2, mask=mask[:, cols])
    out = torch.zeros_like(w)
    out[:, cols] = ws
    return out, b
