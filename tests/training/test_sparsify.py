"""nv.sparsify: a new network whose head reads few units, exact explanations, validation only from
the training split (the test split is never read), clear errors; and the path solver's optimality,
checked against the lasso's own optimality conditions rather than the solver's code."""

from __future__ import annotations

import copy
import statistics
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import neuroview as nv
from neuroview.data import DigitsDataModule
from neuroview.training import glm
from neuroview.training.glm import fit_path, lambda_grid, relax


def _planted(n=120, seed=0):
    """Series whose class is the sign of the mean of samples 4..9 (the rest is noise)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 24, generator=g)
    y = (x[:, 0, 4:10].mean(1) > 0).long()
    return x, y


def _cnn(seed=0):
    torch.manual_seed(seed)
    return nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 12, 3), nn.ReLU(), nn.Conv1d(12, 12, 3), nn.ReLU()), 2,
                           input_shape=(1, 24)).eval()


@pytest.mark.parametrize("svd_work", [glm._SVD_WORK, 0])  # the step's norm from an SVD, and by subspace iteration
def test_lasso_path_meets_the_optimality_conditions(one_thread, monkeypatch, svd_work):
    monkeypatch.setattr(glm, "_SVD_WORK", svd_work)
    # KKT of  mean CE + lam ||W||_1:  |grad| <= lam where w = 0, grad = -lam sign(w) where w != 0
    g = torch.Generator().manual_seed(1)
    x = torch.randn(150, 12, generator=g)
    y = (x[:, 0] - 0.5 * x[:, 5] + 0.3 * torch.randn(150, generator=g) > 0).long() + (x[:, 2] > 1).long()
    lams = lambda_grid(x, y, 3, points=4)
    for lam, (w, b) in zip(lams.tolist(), fit_path(x, y, 3, lambdas=lams, tol=1e-5, max_iter=5000)):
        wv, bv = w.clone().requires_grad_(True), b.clone().requires_grad_(True)
        F.cross_entropy(x @ wv.T + bv, y).backward()
        grad = wv.grad
        assert bv.grad.abs().max() < 1e-4  # the bias is not penalized
        zero = w == 0
        assert (grad[zero].abs() <= lam * (1 + 1e-3) + 1e-5).all()
        assert torch.allclose(grad[~zero], -lam * w[~zero].sign(), atol=1e-4)
    assert (fit_path(x, y, 3, lambdas=lams[:1])[0][0] == 0).all()  # the first point: every weight zero


@pytest.mark.parametrize("spectrum", ["spread", "close"])
def test_the_norm_of_a_large_matrix_bounds_the_largest_singular_value(monkeypatch, spectrum):
    """Subspace iteration (large matrices) against the singular values the matrix was built with:
    never below the largest (the step stays within 1 / L), at most 1.02 times it."""
    g = torch.Generator().manual_seed(0)
    u = torch.linalg.qr(torch.randn(300, 120, generator=g, dtype=torch.float64))[0]
    v = torch.linalg.qr(torch.randn(200, 120, generator=g, dtype=torch.float64))[0]
    s = torch.linspace(10, 0.1, 120, dtype=torch.float64) if spectrum == "spread" else 10 - 0.02 * torch.arange(120.0).double()
    a = (u * s) @ v.T
    monkeypatch.setattr(glm, "_SVD_WORK", 0)
    est = glm._norm2(a)
    assert 100.0 <= est <= 1.02 * 100.0
    monkeypatch.setattr(glm, "_SVD_WORK", 1e9)
    assert glm._norm2(a) == pytest.approx(100.0, rel=1e-9)  # small: the SVD


def test_relax_keeps_the_support_and_lowers_the_loss():
    x, y = torch.randn(80, 6), torch.randint(0, 2, (80,))
    w = torch.tensor([[0.1, 0.0, 0.0, 0.2, 0.0, 0.0], [0.0, 0.0, 0.0, -0.1, 0.0, 0.0]])
    b = torch.zeros(2)
    w2, b2 = relax(x, y, w, b, l2=0.0)
    assert torch.equal(w2 == 0, w == 0)
    assert F.cross_entropy(x @ w2.T + b2, y) <= F.cross_entropy(x @ w.T + b, y)


def test_sparsify_returns_a_sparser_exact_network_and_leaves_the_given_one_alone():
    net = _cnn()
    x, y = _planted()
    net.train()
    for _ in range(3):
        net(x[:32])
    net.eval()
    before = copy.deepcopy(net.state_dict())
    sparse = nv.sparsify(net, [(x[i:i + 40], y[i:i + 40]) for i in range(0, 120, 40)], tolerance=2.0, points=10, folds=3, max_iter=200)
    assert sparse is not net and type(sparse) is type(net)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert not sparse.training
    upc = nv.units_per_class(sparse)
    assert upc.max() < net.num_units and upc.min() >= 1
    path = sparse.sparsity_path
    assert path.units_per_class[path.chosen] == pytest.approx(upc.float().mean().item())
    assert path.val_acc[path.chosen] >= path.reference - 2.0
    assert len(path.to_records()) == len(path.lambdas) and "cross-validation" in path.validation
    # still one exact linear decision: the explanation sums to the logit, against zero or the mean code
    xt = torch.randn(9, 1, 24)
    for baseline in (None, "mean"):
        exp = sparse.explain(xt, baseline=baseline)
        assert torch.allclose(exp.for_class().sum(-1) + exp.bias[exp.target], sparse(xt).gather(1, exp.target[:, None])[:, 0], atol=1e-5)
        assert exp.k90(per_sample=True).max() <= upc.max()
    # the baseline 'mean' is the exact training mean code
    assert torch.allclose(sparse.norm.running_mean, nv.mean_codes(net, [(x, y)]), atol=1e-6)


def test_the_folds_paths_side_by_side_give_the_same_network(monkeypatch):
    """A large problem walks the cross-validation folds' paths in threads: the same points to the bit."""
    from neuroview.training import sparsify as module

    net = _cnn().eval()
    x, y = _planted()
    batches = [(x[i:i + 40], y[i:i + 40]) for i in range(0, 120, 40)]
    kw = dict(tolerance=2.0, points=8, folds=3, max_iter=200)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        one = nv.sparsify(net, batches, **kw)
        pools = []
        monkeypatch.setattr(module, "_POOL_ROWS", 0)
        monkeypatch.setattr(module, "ThreadPoolExecutor", lambda n: pools.append(n) or ThreadPoolExecutor(n))
        two = nv.sparsify(net, batches, **kw)
        assert torch.get_num_threads() == 2  # the caller's count is back
    finally:
        torch.set_num_threads(threads)
    assert pools == [2]
    assert torch.equal(one.classifier.weight, two.classifier.weight) and torch.equal(one.classifier.bias, two.classifier.bias)
    assert torch.equal(one.sparsity_path.val_acc, two.sparsity_path.val_acc)
    assert torch.equal(one.sparsity_path.val_loss, two.sparsity_path.val_loss)


def test_sparsify_rnn_groups_by_step():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(80, 1, 10, generator=g)
    y = (x[:, 0, 6] > 0).long()
    net = nv.NeuroViewRNN(nn.GRU(1, 8, batch_first=True), 2, max_len=10).eval()
    sparse = nv.sparsify(net, [(x, y)], tolerance=5.0, points=10, folds=3, max_iter=200)
    w = sparse.effective_classifier()[0].reshape(2, *sparse.feature_shape)  # [C, L, D, T, H]
    steps = (w != 0).any(-1).any(1).any(1).sum(-1)  # steps each class reads
    assert steps.max() < 10
    assert sparse.sparsity_path.groups == "step"
    exp = sparse.explain(x[:5].transpose(1, 2))
    assert exp.k90(per_sample=True, level="steps").max() <= steps.max()
    assert torch.allclose(exp.time_importance.sum(-1) + exp.bias, exp.logits, atol=1e-5)


class _Spy(DigitsDataModule):
    """Digits that records which splits were read."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.read = []

    def _dataset(self, split, train=False):
        self.read.append(split)
        return super()._dataset(split, train)


def test_sparsify_never_reads_the_test_split_and_uses_the_validation_split():
    dm = _Spy(batch_size=64)
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU()), 10, input_shape=(1, 8, 8)).train()
    sparse = nv.sparsify(net, dm, points=8, max_iter=200)
    assert all(m.training for m in net.modules())  # the network given keeps its mode
    assert "test" not in dm.read and {"train", "val"} <= set(dm.read)
    assert "validation samples" in sparse.sparsity_path.validation


def test_sparsify_errors_name_the_argument():
    net = _cnn()
    x, y = _planted(40)
    with pytest.raises(ValueError, match="tolerance"):
        nv.sparsify(net, [(x, y)], tolerance=-1)
    with pytest.raises(TypeError, match="net: expected a NeuroViewCNN, a NeuroViewRNN .* got Linear"):
        nv.sparsify(nn.Linear(3, 2), [(x, y)])
    with pytest.raises(TypeError, match="got an Ensemble of LITEs"):  # standard members: no codes to read
        nv.sparsify(nv.create_model("lite", num_classes=2, members=2), [(x, y)])
    with pytest.raises(ValueError, match="at least 2 classes"):
        nv.sparsify(net, [(x, torch.zeros_like(y))])
    with pytest.raises(ValueError, match="too few to carve"):
        nv.sparsify(net, [(x[:6], torch.tensor([0, 1, 0, 1, 0, 1]))])
    with pytest.raises(ValueError, match="groups"):
        nv.sparsify(net, [(x, y)], groups="step")
    with pytest.raises(ValueError, match="train: expected at least one batch"):
        nv.sparsify(net, [])


@pytest.mark.parametrize("kw, match", [
    ({"points": 1}, r"points: expected an int >= 2"),        # max(): Expected reduction dim ...
    ({"ratio": 0}, r"ratio: expected .* in \(0, 1\), got 0"),  # math domain error
    ({"ratio": 2}, r"ratio: expected"),
    ({"max_iter": 0}, r"max_iter: expected an int >= 1"),
    ({"l1_ratio": "a"}, r"l1_ratio: expected None or the L1 share"),
    ({"seed": "a"}, r"seed: expected an int"),
    ({"relaxed": -1.0}, r"relaxed: expected None or a ridge >= 0"),  # fitted one unit per class at chance, unsaid
])
def test_sparsify_path_settings_name_the_argument(kw, match):
    x, y = _planted(40)
    with pytest.raises(ValueError, match=match):
        nv.sparsify(_cnn(), [(x, y)], **kw)


def test_sparsify_finetune_and_readability_name_labels_the_network_cannot_read():
    """Labels out of the head's classes, short or one-hot reached torch bare ('Target 7 is out of bounds', 'mat1
    and mat2 shapes cannot be multiplied'); readability took y - 1 and gave an accuracy of 6.7%."""
    net = _cnn()
    x, y = _planted(40)
    with pytest.raises(ValueError, match=r"val: labels must lie in \[0, 2\) \(the network's classes\), got \[7\]"):
        nv.sparsify(net, [(x, y)], val=[(x[:6], torch.full((6,), 7))])
    with pytest.raises(ValueError, match=r"train: expected one class index per sample, shape \[40\], got labels of shape \(30,\)"):
        nv.sparsify(net, [(x, y[:30])])
    with pytest.raises(ValueError, match=r"shape \(40, 2\) \(one-hot rows: pass y.argmax\(1\)\)"):
        nv.sparsify(net, [(x, F.one_hot(y, 2))])
    sparse = nv.sparsify(net, [(x, y)], points=6, max_iter=50)
    with pytest.raises(ValueError, match=r"train: labels must lie in \[0, 2\)"):
        nv.finetune_sparse(sparse, [(x, y + 5)], epochs=1)
    with pytest.raises(TypeError, match=r"train: expected batches that can be read again .* one-shot generator"):
        nv.finetune_sparse(sparse, (b for b in [(x, y)]), epochs=1)
    with pytest.raises(ValueError, match=r"batches: labels must lie in \[0, 2\)"):
        nv.readability(sparse, [(x, y - 1)])
    with pytest.raises(ValueError, match=r"baseline: expected None, 'zero', 'mean' or a tensor"):
        nv.unit_gallery(sparse, [(x, y)], [0], baseline="median")
    dead = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), 2, input_shape=(1, 20)).eval()
    with torch.no_grad():
        dead.backbone[0].weight.zero_(), dead.backbone[0].bias.fill_(-1.0)  # every unit off for every sample
    with pytest.raises(ValueError, match=r"train: the network's 4 codes are the same for all 40 training samples"):
        nv.sparsify(dead, [(x, y)])


def test_choose_point_keeps_the_sparsest_point_within_tolerance_and_the_deviance_share():
    from neuroview.training.sparsify import choose_point

    # five points, sparsest first: no unit, then 1, 2, 4, 8 units per class
    units = torch.tensor([0.0, 1.0, 2.0, 4.0, 8.0])
    acc = torch.tensor([50.0, 90.0, 99.5, 100.0, 100.0])
    # mean validation losses 1.0, 0.5, 0.3, 0.2, 0.1: the largest drop is 0.9
    loss = torch.tensor([1.0, 0.5, 0.3, 0.2, 0.1])[:, None].expand(5, 3)
    assert choose_point(acc, loss, units, 100.0, 1.0, 0.0) == 2  # 99.5 is within 1 point; 90 is not
    assert choose_point(acc, loss, units, 100.0, 1.0, 0.8) == 3  # a drop of 0.7 < 0.72, 0.8 >= 0.72
    assert choose_point(acc, loss, units, 100.0, 1.0, 1.0) == 4  # only the best loss keeps all of it
    assert choose_point(acc, loss, units, 100.0, 20.0, 0.0) == 1
    # nothing within tolerance: the most accurate point that reads a unit, the sparsest of them
    assert choose_point(acc, loss, units, 200.0, 1.0, 0.0) == 3
    # groups first: fewer groups wins over fewer units
    assert choose_point(acc, loss, units, 100.0, 1.0, 0.0, groups=torch.tensor([0.0, 5, 5, 1, 5])) == 3


def test_choose_point_keeps_within_a_k90_budget():
    from neuroview.training.sparsify import choose_point

    units = torch.tensor([0.0, 1.0, 2.0, 4.0, 8.0])
    acc = torch.tensor([50.0, 90.0, 99.5, 100.0, 100.0])
    loss = torch.tensor([1.0, 0.5, 0.3, 0.2, 0.1])[:, None].expand(5, 3)
    k90 = torch.tensor([0.0, 1.0, 2.0, 3.0, 6.0])
    # the deviance rule alone keeps point 4 (k90 6); a budget of 3 keeps the rule among points 1..3:
    # none keeps all of the loss drop, so the most accurate of them
    assert choose_point(acc, loss, units, 100.0, 1.0, 1.0, k90=k90) == 4
    assert choose_point(acc, loss, units, 100.0, 1.0, 1.0, k90=k90, max_k90=3) == 3
    # within the budget the rule still applies: 99.5 is within 1 point at deviance 0
    assert choose_point(acc, loss, units, 100.0, 1.0, 0.0, k90=k90, max_k90=3) == 2
    # ties in accuracy inside the budget: the lower validation loss
    flat = torch.tensor([50.0, 90.0, 95.0, 95.0, 100.0])
    assert choose_point(flat, loss, units, 100.0, 1.0, 1.0, k90=k90, max_k90=3) == 3
    # a budget no point meets: the point of smallest k90 that reads a unit
    assert choose_point(acc, loss, units, 100.0, 1.0, 1.0, k90=torch.tensor([0.0, 7, 8, 9, 9]), max_k90=3) == 1
    with pytest.raises(ValueError, match="k90"):
        choose_point(acc, loss, units, 100.0, 1.0, 1.0, max_k90=3)


def _k90_by_hand(contributions: torch.Tensor) -> list[int]:
    """Per row: the fewest contributions, largest |value| first, whose |values| reach 90% of the row's sum."""
    out = []
    for row in contributions.tolist():
        a = sorted((abs(v) for v in row), reverse=True)
        total, run, k = sum(a), 0.0, 0
        while total > 0 and run < 0.9 * total * (1 - 1e-12):
            run += a[k]
            k += 1
        out.append(k)
    return out


def _trained_cnn(x, y, steps=150):
    net = _cnn().train()
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    return net.eval()


def test_sparsify_within_a_k90_budget_reads_that_few_contributions(one_thread):
    x, y = _planted(200)
    net = _trained_cnn(x[:150], y[:150])
    train, val = [(x[:150], y[:150])], [(x[150:], y[150:])]
    free = nv.sparsify(net, train, val, points=12, max_iter=200)
    budget = nv.sparsify(net, train, val, points=12, max_iter=200, max_k90=4)
    path = budget.sparsity_path
    assert path.max_k90 == 4.0 and float(path.k90[path.chosen]) <= 4
    assert float(free.sparsity_path.k90[free.sparsity_path.chosen]) > 4  # the budget binds here
    assert "within 4" in str(path) and "k90" in path.to_records()[0]
    # the kept head's decisions on the training split, against its mean code, counted by hand
    exp = budget.explain(x[:150], baseline=nv.mean_codes(budget, train))
    contrib = exp.for_class(exp.predicted).flatten(1)
    assert statistics.median(_k90_by_hand(contrib)) == float(path.k90[path.chosen])
    # still exact: the predicted logit is the baseline's logit plus the contributions
    rows = torch.arange(len(contrib))
    assert torch.allclose(exp.bias[exp.predicted] + contrib.sum(1), budget(x[:150])[rows, exp.predicted], atol=1e-4)
    with pytest.raises(ValueError, match="max_k90"):
        nv.sparsify(net, train, max_k90=0)


def test_an_rnn_budget_in_steps_counts_each_steps_summed_evidence(one_thread):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(120, 1, 12, generator=g)
    y = (x[:, 0, 3:9].sum(1) > 0).long()  # evidence spread over six steps
    net = nv.NeuroViewRNN(nn.GRU(1, 6, batch_first=True), 2, max_len=12).train()
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    for _ in range(60):
        opt.zero_grad()
        F.cross_entropy(net(x.transpose(1, 2)), y).backward()
        opt.step()
    net.eval()
    train = [(x, y)]
    free = nv.sparsify(net, train, points=12, folds=3, max_iter=200)
    budget = nv.sparsify(net, train, points=12, folds=3, max_iter=200, max_k90=1000, max_k90_steps=2)
    path = budget.sparsity_path
    assert path.max_k90_steps == 2.0 and float(path.k90_steps[path.chosen]) <= 2
    assert float(free.sparsity_path.k90_steps[free.sparsity_path.chosen]) > 2  # the budget binds here
    assert "steps within 2" in str(path) and "k90_steps" in path.to_records()[0]
    # by hand: the training decisions' contributions against the mean code, summed over each step's
    # hidden states ([B, L, D, T, H] -> [B, T]), counted largest first
    exp = budget.explain(x.transpose(1, 2), baseline=nv.mean_codes(budget, train))
    contrib = exp.for_class(exp.predicted).reshape(len(x), *budget.feature_shape)
    per_step = contrib.sum(dim=(1, 2, 4))
    assert statistics.median(_k90_by_hand(per_step)) == float(path.k90_steps[path.chosen])
    assert statistics.median(_k90_by_hand(contrib.flatten(1))) == float(path.k90[path.chosen])
    with pytest.raises(ValueError, match="max_k90_steps: a budget in time steps needs a NeuroViewRNN"):
        nv.sparsify(_cnn(), [_planted(40)], max_k90_steps=3)
    with pytest.raises(ValueError, match="max_k90_steps: expected"):
        nv.sparsify(net, train, max_k90_steps=0)


def test_a_budget_for_every_decision_holds_for_each_one_not_just_the_median(one_thread):
    x, y = _planted(200)
    net = _trained_cnn(x[:150], y[:150])
    train, val = [(x[:150], y[:150])], [(x[150:], y[150:])]
    median = nv.sparsify(net, train, val, points=12, max_iter=200, max_k90=6)
    every = nv.sparsify(net, train, val, points=12, max_iter=200, max_k90=6, k90_quantile=1.0)
    hand = {}
    for name, sparse in (("median", median), ("every", every)):
        exp = sparse.explain(x[:150], baseline=nv.mean_codes(sparse, train))
        hand[name] = _k90_by_hand(exp.for_class(exp.predicted).flatten(1))
    # the median budget bounds the median decision, not each one: they spread above it here (how far
    # depends on the trained network, so on the machine's rounding: over 6 on one CPU, 5 on another)
    half = median.sparsity_path
    assert float(half.k90[half.chosen]) == statistics.median(hand["median"]) <= 6
    assert max(hand["median"]) > statistics.median(hand["median"])
    path = every.sparsity_path
    assert max(hand["every"]) <= 6 and float(path.k90[path.chosen]) == max(hand["every"])
    assert path.k90_quantile == 1.0 and "for 100% of the training decisions" in str(path)
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="k90_quantile: expected"):
            nv.sparsify(net, train, max_k90=6, k90_quantile=bad)


def test_finetune_sparse_keeps_the_units_each_class_reads_and_stays_exact(one_thread):
    x, y = _planted(200)
    net = _trained_cnn(x[:150], y[:150], steps=40)
    train = [(x[i:i + 30], y[i:i + 30]) for i in range(0, 150, 30)]
    sparse = nv.sparsify(net, train, points=12, max_iter=200, max_k90=4)
    before = {k: v.clone() for k, v in sparse.state_dict().items()}
    tuned = nv.finetune_sparse(sparse, train, epochs=15, lr=1e-3)
    # the support is the sparse head's, weight for weight; the standardization the fine-tuned codes' (their spread)
    assert torch.equal(tuned.classifier.weight != 0, sparse.classifier.weight != 0)
    with torch.no_grad():
        assert torch.allclose(tuned.norm.running_var, tuned.codes(x[:150]).var(0, unbiased=False), rtol=1e-4, atol=1e-7)
    # its mean moved to the fine-tuned codes' training mean: "mean" is still the training mean code
    assert torch.allclose(tuned.norm.running_mean, nv.mean_codes(tuned, train), atol=1e-5)
    exp_mean = tuned.explain(x[150:], baseline="mean")
    assert torch.allclose(exp_mean.bias, tuned.head(nv.mean_codes(tuned, train)[None])[0], atol=1e-4)
    assert not torch.equal(tuned.classifier.weight, sparse.classifier.weight)  # it did learn
    assert tuned.finetuned["train_loss"][-1] < tuned.finetuned["train_loss"][0]
    assert all(torch.equal(v, sparse.state_dict()[k]) for k, v in before.items())  # the input is untouched
    exp = tuned.explain(x[150:], baseline=nv.mean_codes(tuned, train))
    rows = torch.arange(50)
    total = exp.bias[exp.predicted] + exp.for_class(exp.predicted).flatten(1).sum(1)
    assert torch.allclose(total, tuned(x[150:])[rows, exp.predicted], atol=1e-4)
    # the same seed, the same network; the caller's random state is left as it was
    state = torch.random.get_rng_state()
    again = nv.finetune_sparse(sparse, train, epochs=15, lr=1e-3)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(again.classifier.weight, tuned.classifier.weight)


def test_finetune_sparse_trains_an_rnn_and_rejects_bad_arguments(one_thread):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(60, 1, 12, generator=g)
    y = (x[:, 0, 3:9].sum(1) > 0).long()
    net = nv.NeuroViewRNN(nn.GRU(1, 6, batch_first=True), 2, max_len=12).eval()
    sparse = nv.sparsify(net, [(x, y)], points=8, folds=3, max_iter=100)
    tuned = nv.finetune_sparse(sparse, [(x, y)], epochs=3, lr=1e-2)
    assert torch.equal(tuned.classifier.weight != 0, sparse.classifier.weight != 0)
    moved = [n for (n, a), b in zip(tuned.named_parameters(), sparse.parameters()) if not torch.equal(a, b)]
    assert any("weight_hh" in n for n in moved)  # the recurrent weights learned too
    for kw, match in (({"epochs": -1}, "epochs: expected an int >= 0, got -1"), ({"epochs": 2.5}, "epochs"),
                      ({"epochs": 1, "lr": 0}, "lr: expected a finite number > 0, got 0"),
                      ({"epochs": 1, "weight_decay": float("nan")}, "weight_decay: expected")):
        with pytest.raises(ValueError, match=match):
            nv.finetune_sparse(sparse, [(x, y)], **kw)
    with pytest.raises(TypeError, match="sparse: expected a NeuroViewCNN, a NeuroViewRNN or an Ensemble"):
        nv.finetune_sparse(nn.Linear(3, 2), [(x, y)], epochs=1)
    with pytest.raises(ValueError, match="with labels"):
        nv.finetune_sparse(sparse, [x], epochs=1)


def test_finetune_sparse_in_eval_mode_keeps_batchnorm_statistics(one_thread):
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 8, 3), nn.BatchNorm1d(8), nn.ReLU()), 2, input_shape=(1, 24))
    x, y = _planted(80)
    net.train()
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    for _ in range(30):
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    sparse = nv.sparsify(net.eval(), [(x, y)], points=8, folds=3, max_iter=100)
    batches = [(x[i:i + 4], y[i:i + 4]) for i in range(0, 80, 4)]
    tuned = nv.finetune_sparse(sparse, batches, epochs=2, lr=1e-2, mode="eval")
    bn, before = tuned.backbone[1], sparse.backbone[1]
    assert torch.equal(bn.running_mean, before.running_mean) and torch.equal(bn.running_var, before.running_var)
    assert not torch.equal(bn.weight, before.weight)  # its affine weights learned
    assert not tuned.training and tuned.finetuned["mode"] == "eval"
    # the default trains as the recipes do: batch statistics, the running ones re-estimated
    recipe = nv.finetune_sparse(sparse, batches, epochs=2, lr=1e-2)
    assert recipe.finetuned["mode"] == "train" and not torch.equal(recipe.backbone[1].running_mean, before.running_mean)
    with torch.no_grad():  # the head's scale: the fine-tuned codes' spread (sparsify's no longer theirs)
        assert torch.allclose(recipe.norm.running_var, recipe.codes(x).var(0, unbiased=False), rtol=1e-4, atol=1e-7)
    with pytest.raises(ValueError, match="mode: expected one of"):
        nv.finetune_sparse(sparse, batches, epochs=1, mode="frozen")
    # a last batch of one sample: BatchNorm cannot train on it, so train mode skips it and says so
    ragged = [(x[:79], y[:79]), (x[79:], y[79:])]
    tuned = nv.finetune_sparse(sparse, ragged, epochs=2, lr=1e-2)
    assert tuned.finetuned["skipped_batches"] == 2
    assert nv.finetune_sparse(sparse, ragged, epochs=1, mode="eval").finetuned["skipped_batches"] == 0
    with pytest.raises(ValueError, match="train: expected at least one batch of 2 or more samples .BatchNorm in train mode., got batches of one"):
        nv.finetune_sparse(sparse, [(x[:1], y[:1])], epochs=1)


def test_finetune_sparse_within_a_budget_returns_the_last_epoch_that_meets_it(one_thread):
    from neuroview.training.sparse_finetune import training_k90

    x, y = _planted(200)
    net = _trained_cnn(x[:150], y[:150], steps=40)
    train = [(x[i:i + 30], y[i:i + 30]) for i in range(0, 150, 30)]
    sparse = nv.sparsify(net, train, points=12, max_iter=200, max_k90=6)
    path = sparse.sparsity_path
    assert training_k90(sparse, train)[0] == float(path.k90[path.chosen])  # counted as sparsify's budget counts it
    # by hand: the k90 after each number of epochs (the runs are deterministic), and the epochs a
    # budget keeps: those before the first that breaks it
    runs = [nv.finetune_sparse(sparse, train, epochs=e, lr=0.1) for e in range(1, 7)]
    ks = [training_k90(r, train)[0] for r in runs]
    assert len(set(ks)) > 1  # the weights move, and k90 with them
    for budget in sorted(set(ks)):
        held = nv.finetune_sparse(sparse, train, epochs=6, lr=0.1, max_k90=budget)
        kept = next((e for e, k in enumerate(ks) if k > budget), 6)
        assert held.finetuned["epochs_kept"] == kept
        expected = runs[kept - 1] if kept else sparse
        assert torch.equal(held.classifier.weight, expected.classifier.weight)
        assert training_k90(held, train)[0] <= max(budget, training_k90(sparse, train)[0])
    with pytest.raises(ValueError, match="max_k90_steps: a budget in time steps needs a NeuroViewRNN"):
        nv.finetune_sparse(sparse, train, epochs=1, max_k90_steps=3)


def test_a_budget_that_never_binds_leaves_the_finetuning_as_it_is(one_thread):
    from torch.utils.data import DataLoader, TensorDataset

    x, y = _planted(120)
    net = _trained_cnn(x, y, steps=40)
    sparse = nv.sparsify(net, [(x, y)], points=8, max_iter=100, max_k90=6)
    # a shuffled loader: counting k90 between epochs iterates it too, which must not move the shuffle
    loader = DataLoader(TensorDataset(x, y), batch_size=20, shuffle=True)
    free = nv.finetune_sparse(sparse, loader, epochs=3, lr=1e-2)
    held = nv.finetune_sparse(sparse, loader, epochs=3, lr=1e-2, max_k90=1000)
    assert held.finetuned["epochs_kept"] == 3
    assert torch.equal(free.classifier.weight, held.classifier.weight)


def test_recentring_the_head_moves_its_mean_not_its_decision(one_thread):
    import copy

    from neuroview.training.sparse_finetune import _recentre

    x, y = _planted(120)
    sparse = nv.sparsify(_trained_cnn(x, y, steps=40), [(x, y)], points=8, max_iter=100)
    moved = copy.deepcopy(sparse)
    with torch.no_grad():
        moved.backbone[0].weight.mul_(1.3)  # the codes' mean moves away from the head's statistics
    before = moved(x)
    assert not torch.allclose(moved.norm.running_mean, nv.mean_codes(moved, [(x, y)]), atol=1e-3)
    _recentre(moved, [(x, y)])
    assert torch.allclose(moved.norm.running_mean, nv.mean_codes(moved, [(x, y)]), atol=1e-6)
    assert torch.allclose(moved(x), before, atol=1e-5)


def test_finetune_sparse_in_bfloat16_keeps_its_support_and_sums_to_the_logit(one_thread):
    x, y = _planted(120)
    sparse = nv.sparsify(_trained_cnn(x, y, steps=40), [(x, y)], points=8, max_iter=100).to(torch.bfloat16)
    xb = x.to(torch.bfloat16)
    tuned = nv.finetune_sparse(sparse, [(xb, y)], epochs=3, lr=1e-2)
    assert tuned.classifier.weight.dtype == torch.bfloat16
    assert torch.equal(tuned.classifier.weight != 0, sparse.classifier.weight != 0)
    assert not torch.equal(tuned.classifier.weight, sparse.classifier.weight)
    exp = tuned.explain(xb, baseline="mean")
    total = exp.bias[exp.predicted] + exp.for_class(exp.predicted).flatten(1).sum(1)
    logits = tuned(xb)[torch.arange(len(x)), exp.predicted]
    assert torch.allclose(total.float(), logits.float(), atol=1e-3)
    # no BatchNorm here: a batch of one sample trains like any other
    alone = nv.finetune_sparse(sparse, [(xb[:1], y[:1])], epochs=1, lr=1e-2)
    assert alone.finetuned["skipped_batches"] == 0 and not torch.equal(alone.classifier.weight, sparse.classifier.weight)


def test_sparsify_an_ensemble_gives_one_sparse_head_over_every_members_units(one_thread, tmp_path):
    from neuroview.zoo import pretrained as zoo

    torch.manual_seed(0)
    kw = {"num_classes": 2, "in_channels": 1, "members": 3}
    net = nv.create_model("nv_lite", **kw)
    x, y = _planted(90)
    net.train()(x[:16])
    net.eval()
    before = copy.deepcopy(net.state_dict())
    batches = [(x[i:i + 30], y[i:i + 30]) for i in range(0, 90, 30)]
    sparse = nv.sparsify(net, batches, tolerance=5.0)
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items()) and net.classifier is None
    assert isinstance(sparse, nv.Ensemble) and sparse.classifier.in_features == 3 * 194
    read = nv.units_per_class(sparse)
    assert (read >= 1).all() and (read < 3 * 194 // 4).all()  # a few units of any member, not all of them
    # one linear map over all members' codes, not the mean of the members' own heads
    w, b = sparse.effective_classifier()
    torch.testing.assert_close(sparse(x), sparse.codes(x) @ w.T + b, rtol=0, atol=1e-5)
    assert not torch.allclose(sparse(x), torch.stack([m(x) for m in sparse.members]).mean(0))
    for baseline in (None, "mean"):
        exp = sparse.explain(x, baseline=baseline)
        for c in range(2):
            torch.testing.assert_close(exp.for_class(c).sum(-1) + exp.bias[c], sparse(x)[:, c], rtol=0, atol=1e-5)
    assert (exp.weight != 0).sum(1).tolist() == read.tolist()
    with pytest.raises(RuntimeError, match="member_logits: this ensemble decides with one global head"):
        sparse.member_logits(x)
    # its weights load into a fresh ensemble of the same members (the zoo builds the head from their shapes)
    ds = {"name": "none", "data_module": {"class_path": "neuroview.data.UCRDataModule", "init_args": {}}}
    zoo.save_pretrained(sparse, "nv_lite.planted_sparse", architecture="nv_lite", arch_kwargs=kw, dataset=ds,
                        recipe=None, seed=0, metrics={"test_acc": 0.5}, root=tmp_path)
    back = zoo.load_pretrained("nv_lite.planted_sparse", root=tmp_path)
    torch.testing.assert_close(back(x), sparse(x))
    # fine-tuning keeps the support of the global head
    tuned = nv.finetune_sparse(sparse, batches, epochs=1)
    assert torch.equal(tuned.classifier.weight != 0, sparse.classifier.weight != 0)
    with pytest.raises(ValueError, match="sparse: an Ensemble deciding with its members' mean"):
        nv.finetune_sparse(net, batches, epochs=1)
