"""Fixes of a second probe of sparsify, mean_codes, readability and finetune_sparse: a loader with a
sampler of its own is refused (its draws put one sample in the fitting and the held-out folds); a
data module's augmenting training loader is read unaugmented; a kept point below the tolerance is
warned about; numpy scalars pass; an empty validation split given as ``val``, a class absent from
the training split, a never-built network, a frozen network, dict batches and ``(x, y, other)``
batches are refused by name; an unwrapped network stays unwrapped; a refitted head forgets its
fine-tuning record; ridge heads keep each code's scale for ``standardized=True``."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, SubsetRandomSampler, TensorDataset, WeightedRandomSampler

import neuroview as nv
from neuroview.data.arrays import ArrayDataModule
from neuroview.training.sparsity_path import choose_point


def _fit(net, x, y, steps: int):
    """``net`` trained ``steps`` full-batch Adam steps on ``(x, y)``, in eval mode."""
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    return net.eval()


def _trained(classes: int = 3, seed: int = 0, steps: int = 20):
    torch.manual_seed(seed)
    x = torch.randn(60, 1, 24)
    y = torch.arange(60) % classes
    x[:, 0, 5:10] += y[:, None].float() * 1.5
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 8, 3), nn.ReLU()), classes, input_shape=(1, 24))
    return _fit(net, x, y, steps), x, y


class _Arrays(ArrayDataModule):
    """The fixture's series as a neuroview data module; ``jitter``: it augments its training samples."""

    def __init__(self, x, y, jitter: bool = False, **kw):
        super().__init__(**kw)
        self._xy, self.jitter = (x.numpy(), y.numpy()), jitter

    def load(self):
        x, y = self._xy
        return {"train": (x[:48], y[:48]), "test": (x[48:], y[48:])}

    def augmentation(self):
        return (lambda s: s + torch.randn_like(s)) if self.jitter else None  # redrawn at every read


@pytest.fixture(scope="module")
def trained():
    return _trained()


def _hooks(module: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in module.modules())


# ------------------------------------------------------------- which samples are read
@pytest.mark.parametrize("sampler", ["weighted", "subset"])
def test_a_subset_or_weighted_sampler_is_read_as_the_samples_it_draws_from_each_once(trained, sampler):
    """Read as drawn, one sample fell in the fitting and the held-out folds, 38 of 60 were read, two identical calls
    gave two heads. Now the samples the sampler draws from (weight > 0; the subset), each once, in order."""
    net, x, y = trained
    ds = TensorDataset(x, y)
    if sampler == "weighted":
        w = torch.ones(60)
        w[::7] = 0  # never drawn
        s, keep = WeightedRandomSampler(w, 60), torch.nonzero(w > 0).flatten()
    else:
        keep = torch.arange(5, 60, 2)
        s = SubsetRandomSampler(keep[torch.randperm(len(keep))].tolist())
    loader = DataLoader(ds, batch_size=16, sampler=s)
    torch.testing.assert_close(nv.mean_codes(net, loader), net.codes(x[keep]).mean(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, b = nv.sparsify(net, loader, points=8), nv.sparsify(net, [(x[keep], y[keep])], points=8)
    torch.testing.assert_close(a.classifier.weight, b.classifier.weight, rtol=0, atol=0)


def test_a_sampler_that_cannot_be_read_once_is_refused_by_sparsify_and_read_by_mean_codes(trained):
    net, x, y = trained

    class Buckets(torch.utils.data.Sampler):  # a batch sampler of one's own (length buckets): no order to undo
        def __iter__(self):
            return iter([list(range(0, 60, 2)), list(range(1, 60, 2))])

        def __len__(self):
            return 2

    loader = DataLoader(TensorDataset(x, y), batch_sampler=Buckets())
    with pytest.raises(ValueError, match=r"^train: expected a DataLoader that reads its dataset in order.*Buckets.*read once"):
        nv.sparsify(net, loader)
    torch.testing.assert_close(nv.mean_codes(net, loader), net.codes(x).mean(0))  # a mean needs no order


def test_a_data_modules_augmenting_training_loader_is_read_unaugmented(trained):
    net, x, y = trained
    dm = _Arrays(x, y, jitter=True, val_fraction=0.0, normalize=False, batch_size=8)
    dm.setup("fit")
    exact = nv.mean_codes(net, dm)  # the data module itself: its training split, unaugmented
    torch.testing.assert_close(exact, net.codes(x[:48]).mean(0))
    torch.testing.assert_close(nv.mean_codes(net, dm.train_dataloader()), exact)
    assert dm.train_dataloader().dataset.augment is not None  # the module's own loader still augments


# ------------------------------------------------------------- the reference and the tolerance
def test_a_kept_point_below_the_tolerance_is_warned_about():
    units = torch.tensor([0.0, 1.0, 2.0, 3.0])
    acc = torch.tensor([40.0, 70.0, 80.0, 75.0])
    loss = torch.tensor([1.0, 0.2, 0.5, 0.6])[:, None].expand(4, 3)  # point 1 alone keeps the deviance
    with pytest.warns(UserWarning, match=r"no point of the path it may keep is within tolerance=1 .*90.0%.*80.0%"):
        assert choose_point(acc, loss, units, 90.0, 1.0, 0.99) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the most accurate within the tolerance: kept without a word
        assert choose_point(acc, loss, units, 80.5, 1.0, 0.99) == 2


def test_the_cross_validation_reference_is_a_point_every_class_reads_from():
    """The path's most accurate point here has a class reading no unit, which is never kept: held against it,
    the kept point was 8 points below the reference without a word."""
    g = torch.Generator().manual_seed(4)
    x = torch.randn(60, 1, 24, generator=g)
    y = torch.arange(60) % 3
    x[:, 0, 5:10] += y[:, None].float() * 1.5
    torch.manual_seed(4)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 8, 3), nn.ReLU(), nn.Conv1d(8, 8, 3), nn.ReLU()), 3,
                          input_shape=(1, 24))
    p = nv.sparsify(_fit(net, x, y, 15), [(x, y)]).sparsity_path
    eligible = p.min_units_per_class > 0  # every class reads a unit there
    assert float(p.val_acc.max()) > float(p.val_acc[eligible].max())  # the case: the best point is not eligible
    assert bool(eligible[p.chosen]) and p.reference == pytest.approx(float(p.val_acc[eligible].max()))
    assert float(p.val_acc[p.chosen]) >= p.reference - p.tolerance


# ------------------------------------------------------------- arguments and inputs
def test_numpy_scalars_pass_as_the_numbers_they_are(trained):
    net, x, y = trained
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = nv.sparsify(net, [(x, y)], tolerance=np.float32(1.0), folds=np.int64(3), deviance=np.float64(0.99),
                        max_units_per_class=np.int64(4), points=8)
        b = nv.sparsify(net, [(x, y)], tolerance=1.0, folds=3, deviance=0.99, max_units_per_class=4, points=8)
    torch.testing.assert_close(a.classifier.weight, b.classifier.weight, rtol=0, atol=0)
    tuned = nv.finetune_sparse(a, [(x, y)], epochs=np.int64(1), lr=np.float32(1e-4))
    assert tuned.finetuned["epochs"] == 1 and type(tuned.finetuned["epochs"]) is int


def test_val_that_carves_no_validation_split_is_refused(trained):
    net, x, y = trained
    dm = _Arrays(x, y, val_fraction=0.0, normalize=False)
    with pytest.raises(ValueError, match=r"val: expected validation batches, got a _Arrays that carves no "):
        nv.sparsify(net, [(x, y)], val=dm)


def test_a_class_absent_from_the_training_split_is_named(trained):
    net, x, y = trained
    keep = y != 1
    with pytest.raises(ValueError, match=r"train: expected samples of each of the network's 3 classes, got none of class \[1\]"):
        nv.sparsify(net, [(x[keep], y[keep])])


def test_readability_and_mean_codes_refuse_a_network_never_built(trained):
    _, x, y = trained
    lazy = nv.wrap(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), num_classes=3)
    for call in (lambda: nv.readability(lazy, [(x, y)]), lambda: nv.mean_codes(lazy, [(x, y)])):
        with pytest.raises(ValueError, match="classifier was never built"):
            call()
    assert lazy.classifier is None  # no random head built on the caller's network


def test_mean_codes_needs_no_labels(trained):
    net, x, y = trained
    torch.testing.assert_close(nv.mean_codes(net, [x[:30], x[30:]]), net.codes(x).mean(0))


def test_dict_batches_are_named(trained):
    net, x, y = trained
    for call, what in ((lambda d: nv.sparsify(net, d), "train"), (lambda d: nv.mean_codes(net, d), "train"),
                       (lambda d: nv.readability(net, d), "batches")):
        with pytest.raises(ValueError, match=rf"{what}: expected .* got a dict with keys \['x', 'y'\]"):
            call({"x": x, "y": y})


def test_a_cnn_given_x_y_other_is_refused_not_scored_against_other(trained):
    net, x, y = trained
    other = torch.randint(0, 3, (60,))
    for call in (lambda: nv.sparsify(net, [(x, y, other)]), lambda: nv.readability(net, [(x, y, other)])):
        with pytest.raises(ValueError, match=r"middle item is not lengths .*\[1, 24\].*values 0 to 2"):
            call()
    lengths = torch.full((60,), 24)  # real lengths pass
    assert nv.readability(net, [(x, lengths, y)])["samples"] == 60


def test_finetune_sparse_trains_under_no_grad_and_names_a_frozen_network(trained):
    net, x, y = trained
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sparse = nv.sparsify(net, [(x, y)], points=8)
    with torch.no_grad():
        tuned = nv.finetune_sparse(sparse, [(x, y)], epochs=1, lr=1e-2)
    assert not torch.equal(tuned.classifier.weight, sparse.classifier.weight)  # it trained
    frozen = sparse.requires_grad_(False)
    with pytest.raises(ValueError, match=r"sparse: expected a network with parameters to train.*requires_grad=False"):
        nv.finetune_sparse(frozen, [(x, y)], epochs=1)


# ------------------------------------------------------------- the network given, and the copy
def test_sparsify_leaves_an_unwrapped_network_unwrapped():
    net, x, y = _trained()
    mine = net.unwrap()
    assert _hooks(mine) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sparse = nv.sparsify(net, [(x, y)], points=8)
        nv.mean_codes(net, [(x, y)])
    assert _hooks(mine) == 0
    torch.testing.assert_close(sparse(x), sparse.explain(x).logits)  # the copy records through its own hooks


def test_a_refitted_head_forgets_the_fine_tuning_it_no_longer_has(trained):
    net, x, y = trained
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tuned = nv.finetune_sparse(nv.sparsify(net, [(x, y)], points=8), [(x, y)], epochs=1)
        again = nv.sparsify(tuned, [(x, y)], points=8)
    assert hasattr(tuned, "finetuned") and not hasattr(again, "finetuned")


def test_a_ridge_head_keeps_each_codes_scale_for_standardized_importance(trained):
    net, x, y = trained
    fit = nv.fit_ridge_head(net, [(x, y)])
    codes = fit.codes(x)
    std = codes.var(0, unbiased=False).sqrt()
    raw = fit.unit_importance()  # the weight on each raw code
    torch.testing.assert_close(fit(x), codes @ raw.T + fit.effective_classifier()[1], rtol=1e-5, atol=1e-5)
    varies = std > 1e-3 * std.mean()  # away from the normalization's variance floor
    torch.testing.assert_close(fit.unit_importance(standardized=True)[:, varies], (raw * std)[:, varies],
                               rtol=1e-3, atol=1e-6)


def test_the_report_reads_unlabelled_gallery_data(tmp_path):
    """Its baseline, the mean code of gallery_data, needed labels that the gallery itself does not."""
    pytest.importorskip("matplotlib").use("Agg")
    from neuroview.viz.report import write_report

    torch.manual_seed(0)
    cnn = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 3, 3), nn.ReLU()), 2, input_shape=(1, 10)).eval()
    x = torch.randn(12, 1, 10)
    write_report(cnn, x[:4], None, tmp_path / "r", progress=False, examples=2, gallery_data=[x])
    assert (tmp_path / "r" / "index.html").is_file()


def test_a_sampler_inside_a_batch_sampler_is_read_as_the_samples_it_draws_from(trained):
    """The second review: DataLoader(batch_sampler=BatchSampler(WeightedRandomSampler(...))) passed as in order
    (loader.sampler is then a SequentialSampler that reads nothing), one sample in two folds."""
    from torch.utils.data import BatchSampler, RandomSampler

    from neuroview._batch import in_order

    net, x, y = trained
    ds = TensorDataset(x, y)
    w = torch.ones(60)
    w[:6] = 0
    for inner, keep in ((WeightedRandomSampler(w, 60), torch.arange(6, 60)), (RandomSampler(ds), torch.arange(60))):
        for drop in (False, True):
            loader = DataLoader(ds, batch_sampler=BatchSampler(inner, 16, drop))
            read = torch.cat([b[0] for b in in_order(loader, strict="once")])
            assert torch.equal(read, x[keep])


def test_the_predictions_and_init_weights_need_no_class_names(tmp_path):
    """The second review: a user's data module whose class_names is None failed the prediction writer (all
    predictions lost) and the init_weights check with a bare TypeError."""
    import pytorch_lightning as pl

    from neuroview.training.callbacks import PredictionWriter
    from neuroview.training.module import NeuroViewModule

    x, y = torch.randn(12, 1, 6), torch.arange(12) % 2

    class DM(pl.LightningDataModule):
        class_names = None

        def predict_dataloader(self):
            return DataLoader(TensorDataset(x, y), batch_size=4)

        test_dataloader = predict_dataloader

    m = NeuroViewModule("nv_small_cnn", num_classes=2, in_channels=1, model_kwargs={"widths": [4], "dims": 1})
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[PredictionWriter(str(tmp_path))])
    trainer.predict(m, datamodule=DM())
    rows = (tmp_path / "predictions.csv").read_text().splitlines()
    assert rows[0].startswith("split_index,target,pred,prob_0") and len(rows) == 13
