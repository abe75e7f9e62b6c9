"""Data modules: shapes, splits, normalization, and the published file formats on tiny files."""

from __future__ import annotations

import gzip
import pickle
import struct
import warnings

import numpy as np
import pytest
import torch

from neuroview.data import (
    CIFAR10DataModule,
    DigitsDataModule,
    MNIST1DDataModule,
    MNISTDataModule,
    NpzDataModule,
    UCRDataModule,
    load_cifar_batch,
    read_idx,
)


from datafiles import make_cifar, make_mnist, write_idx  # noqa: E402,F401 - tiny files in the real formats


# ------------------------------------------------------------------------------- digits
def test_digits_shapes_splits_and_train_only_normalization():
    dm = DigitsDataModule(batch_size=32, seed=3)
    dm.setup("fit")
    sizes = dm.split_sizes()
    assert sum(sizes.values()) == 1797 and sizes["test"] == 359
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (32, 1, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.long
    xs = torch.cat([b[0] for b in DigitsDataModule(batch_size=32, seed=3)._loader("train")])
    assert abs(xs.mean().item()) < 1e-4 and abs(xs.std().item() - 1) < 1e-2  # standardized with train stats
    # the test split never moves with the validation seed
    other = DigitsDataModule(seed=4)
    other.setup()
    assert torch.equal(other._splits["test"][1], dm._splits["test"][1])
    assert not torch.equal(other._splits["val"][1], dm._splits["val"][1])


def test_validation_split_is_stratified_and_reproducible():
    a, b = DigitsDataModule(seed=0), DigitsDataModule(seed=0)
    a.setup(), b.setup()
    assert torch.equal(a._splits["val"][0], b._splits["val"][0])
    counts = torch.bincount(a._splits["val"][1], minlength=10)
    assert counts.min() >= 12 and counts.max() <= 16


def test_k_folds_hold_out_every_training_sample_once_stratified():
    from neuroview.data.splits import stratified_fold

    y = np.array(["a"] * 13 + ["b"] * 7 + ["c"])  # 21 samples; class c has one
    held = [stratified_fold(y, 5, f, seed=3) for f in range(5)]
    for keep, out in held:
        assert np.intersect1d(keep, out).size == 0 and len(keep) + len(out) == 21
        assert "c" in y[keep]  # a class of one sample is never held out whole
    every = np.sort(np.concatenate([out for _, out in held]))
    assert every.tolist() == list(range(20))  # each of a's and b's samples held out exactly once
    for c, n in (("a", 13), ("b", 7)):
        per_fold = [int((y[out] == c).sum()) for _, out in held]
        assert sum(per_fold) == n and max(per_fold) - min(per_fold) <= 1  # stratified: n / 5 each, within one
    assert np.array_equal(stratified_fold(y, 5, 2, seed=3)[1], held[2][1])  # the same seed, the same fold


def test_val_fold_holds_out_that_fold_of_the_training_split(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "mine.npz"
    np.savez(path, X=rng.normal(size=(100, 1, 8)).astype(np.float32), y=np.array(["cat", "dog"] * 50))
    vals, trains = [], []
    for f in range(5):
        dm = NpzDataModule(str(path), val_fraction=0.2, val_fold=f, seed=1)
        dm.setup("fit")
        assert dm.split_sizes() == {"train": 64, "val": 16, "test": 20} and "val_fold=" in repr(dm)
        vals.append(dm._splits["val"][0][:, 0, 0])
        trains.append(dm._splits["train"][0][:, 0, 0])
    # the five validation folds are disjoint and together the whole training split (the splits hold raw values)
    raw = torch.cat([vals[0], trains[0]]).sort().values
    assert torch.equal(torch.cat(vals).sort().values, raw)
    with pytest.raises(ValueError, match=r"val_fold: expected an int in \[0, 5\) \(val_fraction 0.2: 5 folds\), got 5"):
        NpzDataModule(str(path), val_fraction=0.2, val_fold=5)
    with pytest.raises(ValueError, match="val_fraction: with val_fold, expected 1 / k"):
        NpzDataModule(str(path), val_fraction=0.3, val_fold=0)
    with pytest.raises(ValueError, match="val_fraction: with val_fold"):
        UCRDataModule("GunPoint", val_fraction=0.0, val_fold=0)


@pytest.mark.parametrize("kw, match", [({"batch_size": 0}, "batch_size"), ({"val_fraction": 1.0}, "val_fraction"),
                                       ({"test_fraction": 0}, "test_fraction"),
                                       ({"eval_batch_size": 0}, r"eval_batch_size: expected None \(4 x batch_size\) or a positive int, got 0"),
                                       ({"eval_batch_size": -2}, "eval_batch_size"),
                                       ({"seed": -1}, r"seed: expected an int >= 0 \(the splits' shuffle\), got -1")])
def test_bad_arguments_name_the_argument(kw, match):
    with pytest.raises(ValueError, match=match):
        DigitsDataModule(**kw)


# ------------------------------------------------------------------------------ mnist1d
def test_mnist1d_is_generated_once_then_read_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path))
    dm = MNIST1DDataModule()
    dm.prepare_data()
    assert (tmp_path / "mnist1d_default_v1.npz").is_file()
    assert not list(tmp_path.glob("*.tmp"))  # the atomic write left nothing behind
    import mnist1d.data

    monkeypatch.setattr(mnist1d.data, "make_dataset", lambda *a, **k: pytest.fail("regenerated despite the cache"))
    dm2 = MNIST1DDataModule(batch_size=16)
    dm2.setup("fit")
    assert dm2.split_sizes()["test"] == 1000 and abs(dm2.split_sizes()["val"] - 400) <= 5
    x, y = next(iter(dm2.train_dataloader()))
    assert x.shape == (16, 1, 40) and (dm2.num_classes, dm2.in_channels, dm2.max_len) == (10, 1, 40)


# ---------------------------------------------------------------------------------- UCR
def test_ucr_fixed_length_labels_encoded():
    dm = UCRDataModule("BasicMotions", batch_size=4)
    assert (dm.num_classes, dm.in_channels, dm.max_len, dm.variable_length) == (4, 6, 100, False)
    assert dm.class_names == ["badminton", "running", "standing", "walking"]
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 6, 100) and int(y.max()) < 4


def test_ucr_numeric_labels_in_numeric_order():
    dm = UCRDataModule("PickupGestureWiimoteZ")
    assert dm.class_names == [str(i) for i in range(1, 11)]  # not "1", "10", "2", ...


def test_ucr_variable_length_is_padded_with_lengths_and_zero_padding():
    dm = UCRDataModule("JapaneseVowels", batch_size=64)
    with pytest.warns(UserWarning, match="1 test series of up to 29 steps truncated to 26 steps"):
        dm.setup("test")
    # training series reach 26 steps; the one test series of 29 is cut to 26 (issue 14)
    assert dm.variable_length and dm.max_len == 26 and dm.in_channels == 12
    x, lengths, y = next(iter(dm.test_dataloader()))
    assert x.shape[1:] == (12, 26) and lengths.dtype == torch.long and int(lengths.min()) >= 7
    for xi, n in zip(x, lengths):
        assert xi[:, n:].abs().sum() == 0 and xi[:, n - 1].abs().sum() > 0


def test_ucr_unknown_name_suggests():
    with pytest.raises(ValueError, match="GunPoint"):
        UCRDataModule("Gunpoint")


# --------------------------------------------------------------------------------- MNIST
@pytest.mark.parametrize("gz", [True, False])
def test_mnist_reads_idx_files(tmp_path, gz):
    make_mnist(tmp_path / "MNIST" / "raw", gz=gz)  # torchvision's layout is found too
    dm = MNISTDataModule(root=str(tmp_path), batch_size=8, val_fraction=0.25)
    dm.prepare_data()  # download=False: must not touch the network
    dm.setup("fit")
    assert dm.split_sizes() == {"train": 30, "val": 10, "test": 20}
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 1, 28, 28) and x.dtype == torch.float32
    assert dm._splits["train"][0].dtype == torch.uint8  # stored compactly, standardized per sample


def test_read_idx_round_trip_and_errors(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a-idx3-ubyte", arr, gz=False)
    assert np.array_equal(read_idx(tmp_path / "a-idx3-ubyte"), arr)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04\x05")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad")


def test_mnist_missing_files_say_how_to_get_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True"):
        MNISTDataModule(root=str(tmp_path)).setup()


# ------------------------------------------------------------------------------ CIFAR-10
def test_cifar_reads_python_batches(tmp_path):
    make_cifar(tmp_path)
    dm = CIFAR10DataModule(root=str(tmp_path), batch_size=16, num_workers=0)
    dm.setup("fit")
    assert dm.split_sizes() == {"train": 90, "val": 10, "test": 20}
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (16, 3, 32, 32) and dm.class_names[0] == "airplane"
    b = load_cifar_batch(tmp_path / "cifar-10-batches-py" / "test_batch")
    assert b["data"].shape == (20, 3, 32, 32) and b["labels"].tolist()[:3] == [0, 1, 2]


def test_cifar_unpickler_refuses_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_cifar_batch(path)


def test_cifar_missing_files_say_how_to_get_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True"):
        CIFAR10DataModule(root=str(tmp_path)).setup()


# ------------------------------------------------------------------------------------ npz
def test_npz_string_labels_and_seeded_splits(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "mine.npz"
    np.savez(path, X=rng.normal(size=(100, 3, 16)).astype(np.float32), y=np.array(["cat", "dog"] * 50))
    dm = NpzDataModule(str(path), batch_size=10, seed=1)
    assert (dm.num_classes, dm.in_channels, dm.max_len, dm.class_names) == (2, 3, 16, ["cat", "dog"])
    dm.setup("fit")
    assert dm.split_sizes() == {"train": 72, "val": 8, "test": 20}
    again = NpzDataModule(str(path), seed=1)
    again.setup()
    assert torch.equal(again._splits["test"][0], dm._splits["test"][0])


def test_npz_bytes_labels_are_named_as_text(tmp_path):
    """np.savez keeps np.array([b"cat"]) as bytes: the classes were named "b'cat'" in every report."""
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "b.npz", X=rng.normal(size=(20, 1, 8)).astype(np.float32), y=np.array([b"cat", b"dog"] * 10),
             X_test=rng.normal(size=(4, 1, 8)).astype(np.float32), y_test=np.array([b"dog", b"cat"] * 2))
    dm = NpzDataModule(str(tmp_path / "b.npz"), val_fraction=0)
    dm.setup()
    assert dm.class_names == ["cat", "dog"] and dm._splits["test"][1].tolist() == [1, 0, 1, 0]


def test_npz_own_test_split_and_lengths(tmp_path):
    path = tmp_path / "seq.npz"
    x = np.ones((20, 2, 10), np.float32)
    np.savez(path, X=x, y=np.arange(20) % 2, lengths=np.arange(20) % 8 + 3,
             X_test=x[:6], y_test=np.arange(6) % 2, lengths_test=np.full(6, 10))
    dm = NpzDataModule(str(path), batch_size=4)
    dm.setup()
    assert dm.variable_length and dm.split_sizes()["test"] == 6
    x, lengths, y = next(iter(dm.test_dataloader()))
    assert lengths.tolist() == [10] * 6


def test_npz_channels_last_is_asked_for_not_guessed(tmp_path):
    """Keras' [N, T, C] saved as is: read as [N, C, T] it was 40 channels of 3 steps, and the network
    trained on it without a word. Now refused under layout='auto'; layout='channels_last' reads it."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 40, 3)).astype(np.float32)  # 30 series of 40 steps, 3 channels last
    lengths = np.arange(30) % 20 + 21
    np.savez(tmp_path / "keras.npz", X=x, y=np.arange(30) % 2, lengths=lengths)
    with pytest.raises(ValueError, match=r"path: X of keras.npz has shape \[30, 40, 3\].*40 channels of 3.*layout='channels_last'"):
        NpzDataModule(str(tmp_path / "keras.npz")).setup()
    dm = NpzDataModule(str(tmp_path / "keras.npz"), layout="channels_last", normalize=False, val_fraction=0, test_fraction=0.2)
    dm.setup()
    assert (dm.in_channels, dm.max_len) == (3, int(lengths.max()))
    xb, _, lb = dm._splits["test"]
    keep, test = __import__("neuroview.data.arrays", fromlist=["x"]).stratified_split((np.arange(30) % 2).astype(str), 0.2, 1)
    first = test[0]
    n = int(lengths[first])  # the first test series, its own steps in channels-first order
    assert int(lb[0]) == n and torch.equal(xb[0, :, :n], torch.from_numpy(x[first, :n].T))
    # many channels of few steps, said to be so, is read as it is
    np.savez(tmp_path / "eeg.npz", X=rng.normal(size=(30, 16, 8)).astype(np.float32), y=np.arange(30) % 2)
    with pytest.raises(ValueError, match="layout='channels_first'"):
        NpzDataModule(str(tmp_path / "eeg.npz")).setup()
    dm = NpzDataModule(str(tmp_path / "eeg.npz"), layout="channels_first")
    assert (dm.in_channels, dm.max_len) == (16, 8)
    with pytest.raises(ValueError, match=r"layout: expected 'auto'.*got 'NTC'"):
        NpzDataModule(str(tmp_path / "eeg.npz"), layout="NTC")


def _ragged_npz(path, train_len, val_len=None, test_len=None, t=12):
    """An .npz of variable-length series (every real step nonzero) with these lengths per split."""
    rng = np.random.default_rng(0)
    arrays = {}
    for suffix, lengths in (("", train_len), ("_val", val_len), ("_test", test_len)):
        if lengths is not None:
            lengths = np.asarray(lengths)
            arrays.update({"X" + suffix: rng.uniform(1, 2, (len(lengths), 2, t)).astype(np.float32),
                           "y" + suffix: np.arange(len(lengths)) % 2, "lengths" + suffix: lengths})
    np.savez(path, **arrays)
    return arrays


def test_max_len_is_the_longest_training_series_and_longer_ones_are_truncated(tmp_path):
    arrays = _ragged_npz(tmp_path / "seq.npz", train_len=np.arange(20) % 6 + 3,  # 3..8 steps
                         val_len=[4, 11, 6, 3], test_len=[4, 12, 9, 8, 5, 10])
    dm = NpzDataModule(str(tmp_path / "seq.npz"), batch_size=4, normalize=False)
    with pytest.warns(UserWarning) as caught:
        assert dm.max_len == 8  # not 12: no training series reaches past step 8
        dm.setup("fit")
        batches = list(dm.test_dataloader()) + list(dm.val_dataloader())
    messages = [str(w.message) for w in caught if "truncated" in str(w.message)]
    assert messages == ["NpzDataModule: 1 val series of up to 11 steps and 3 test series of up to 12 steps truncated "
                        "to 8 steps, the longest training series (max_len: the classifier has no trained weights "
                        "for later steps)"]  # once, however often the splits are read
    x, _, lengths = dm._splits["test"]
    assert x.shape == (6, 2, 8) and lengths.tolist() == [4, 8, 8, 8, 5, 8]
    assert torch.equal(x[1], torch.as_tensor(arrays["X_test"][1, :, :8]))  # the first 8 steps, as they were
    for xb, lb, _ in batches:
        assert xb.shape[-1] == 8 and int(lb.max()) <= 8
        for xi, n in zip(xb, lb):
            assert xi[:, n:].abs().sum() == 0 and bool((xi[:, :n] != 0).all())


def test_resample_stretches_every_series_to_max_len_by_linear_interpolation(tmp_path):
    # one channel, known answers: [0, 2] -> [0, 1, 2, 3, 4] / 2 ... stretched to the longest training series (5)
    ramp = np.arange(12, dtype=np.float32)
    np.savez(tmp_path / "seq.npz", X=np.stack([ramp * 2, ramp, ramp])[:, None], y=np.array([0, 1, 1]),
             lengths=np.array([2, 5, 1]), X_test=np.stack([ramp, ramp])[:, None], y_test=np.array([0, 1]),
             lengths_test=np.array([9, 3]))
    dm = NpzDataModule(str(tmp_path / "seq.npz"), batch_size=4, val_fraction=0, normalize=False, resample=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a longer test series is shrunk, not truncated: no warning
        dm.setup("fit")
        x, lengths = dm._splits["train"][0][:, 0], dm._splits["train"][2]
        test = dm._splits["test"][0][:, 0]
    assert dm.max_len == 5 and not dm.variable_length and lengths is None
    assert torch.allclose(x, torch.tensor([[0, 0.5, 1, 1.5, 2], [0, 1, 2, 3, 4], [0, 0, 0, 0, 0.0]]))
    assert torch.allclose(test, torch.tensor([[0, 2, 4, 6, 8], [0, 0.5, 1, 1.5, 2.0]]))  # 9 steps shrunk, 3 stretched
    assert len(next(iter(dm.train_dataloader()))) == 2  # (x, y): nothing to mask
    # a series of no steps has nothing to stretch: a clear error, not a NaN series
    np.savez(tmp_path / "empty.npz", X=np.ones((3, 1, 4), np.float32), y=np.array([0, 1, 1]), lengths=np.array([2, 0, 4]))
    with pytest.raises(ValueError, match=r"path: lengths must hold one whole number in \[1, 4\] .* values 0 to 4"):
        NpzDataModule(str(tmp_path / "empty.npz"), val_fraction=0, test_fraction=0.34, resample=True).setup("fit")


def test_a_carved_validation_split_does_not_extend_max_len(tmp_path):
    # one series of 10 steps; seed 3 carves it into the validation split, which the model never fits
    _ragged_npz(tmp_path / "seq.npz", train_len=[3, 4, 5, 6, 7, 8, 9, 9] * 2 + [3, 4, 5, 6, 7, 8, 9, 10], test_len=[5, 6])
    dm = NpzDataModule(str(tmp_path / "seq.npz"), batch_size=4, val_fraction=0.25, seed=3)
    with pytest.warns(UserWarning, match="1 val series of up to 10 steps truncated to 9 steps"):
        dm.setup("fit")
    assert dm.max_len == int(dm._splits["train"][2].max()) == 9
    assert dm._splits["val"][0].shape[-1] == 9 and int(dm._splits["val"][2].max()) == 9


def test_npz_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="path"):
        NpzDataModule(str(tmp_path / "none.npz")).setup()
    np.savez(tmp_path / "bad.npz", X=np.zeros((4, 3)))
    with pytest.raises(ValueError, match="'X' and 'y'"):
        NpzDataModule(str(tmp_path / "bad.npz")).setup()
    # a training split of one class: a classifier of one class, refused by name at setup (it failed only
    # when the model was built, as "num_classes: expected an int >= 2, got 1"); the test split alone may hold one
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "one.npz", X=rng.normal(size=(20, 1, 8)).astype(np.float32), y=np.full(20, "a"))
    with pytest.raises(ValueError, match=r"y: expected labels of at least 2 classes in the training split, got only \['a'\]"):
        NpzDataModule(str(tmp_path / "one.npz")).setup()
    np.savez(tmp_path / "ok.npz", X=rng.normal(size=(20, 1, 8)).astype(np.float32), y=np.arange(20) % 2,
             X_test=rng.normal(size=(3, 1, 8)).astype(np.float32), y_test=np.zeros(3, int))
    dm = NpzDataModule(str(tmp_path / "ok.npz"))
    dm.setup()
    assert dm.num_classes == 2
    # one NaN spread over its whole channel through the normalization; a NaN label was a class "nan"
    x = rng.normal(size=(20, 1, 8)).astype(np.float32)
    x[3, 0, 2] = np.nan
    np.savez(tmp_path / "nan.npz", X=x, y=np.arange(20) % 2)
    with pytest.raises(ValueError, match=r"path: X holds NaN or inf in 1 series \(the first: series 3\)"):
        NpzDataModule(str(tmp_path / "nan.npz")).setup()
    x[3, 0, 2], y = 0.0, (np.arange(20) % 2).astype(float)
    y[5] = np.nan
    np.savez(tmp_path / "nany.npz", X=x, y=y)
    with pytest.raises(ValueError, match=r"path: y holds NaN or inf at series 5"):
        NpzDataModule(str(tmp_path / "nany.npz")).setup()
    x[3, 0, 6:] = np.nan  # padding past a series' length is not read
    np.savez(tmp_path / "pad.npz", X=x, y=np.arange(20) % 2, lengths=np.array([8, 8, 8, 6] + [8] * 16))
    dm = NpzDataModule(str(tmp_path / "pad.npz"))
    dm.setup()
    assert all(bool(torch.isfinite(b[0]).all()) for b in dm.train_dataloader())


def test_a_data_module_of_your_own_refuses_non_finite_series_by_split():
    from neuroview.data.arrays import ArrayDataModule

    x = np.random.default_rng(0).normal(size=(10, 1, 6)).astype(np.float32)
    x[7, 0, 1] = np.inf

    class Mine(ArrayDataModule):
        def load(self):
            return {"train": (x[:8], np.arange(8) % 2), "test": (x[8:], np.arange(2))}

    with pytest.raises(ValueError, match=r"Mine: X: expected finite values, got NaN or inf in 1 series of the train split"):
        Mine(val_fraction=0).setup()


def test_auto_batch_size_and_no_validation_split():
    from neuroview.data.arrays import auto_batch_size

    dm = UCRDataModule("BasicMotions", val_fraction=0.0)  # 40 training series
    dm.setup("fit")
    assert dm.split_sizes() == {"train": 40, "test": 40}
    assert dm.batch_size == auto_batch_size(40) == 4 and dm.eval_batch_size == 16
    assert dm.val_dataloader() == []
    assert len(dm.train_dataloader()) == 10
    dm = UCRDataModule("JapaneseVowels", val_fraction=0.2)
    dm.setup("fit")
    assert dm.batch_size == dm.split_sizes()["train"] // 10
    assert [auto_batch_size(n) for n in (1, 49, 50, 639, 640, 10**6)] == [4, 4, 5, 63, 64, 64]
    with pytest.raises(ValueError, match="batch_size: expected a positive int or 'auto', got 'big'"):
        UCRDataModule("GunPoint", batch_size="big")
    with pytest.raises(ValueError, match=r"val_fraction: expected a number in \[0, 1\), got 1.0"):
        UCRDataModule("GunPoint", val_fraction=1.0)


def test_ucr_other_sets_need_download():
    with pytest.raises(ValueError, match="download=True"):
        UCRDataModule("Coffee")
    assert UCRDataModule("Coffee", download=True).name == "Coffee"  # nothing is fetched before setup


def test_repr_does_not_load_the_data():
    dm = UCRDataModule("GunPoint", val_fraction=0.0)
    assert repr(dm) == "UCRDataModule(batch_size='auto', val_fraction=0.0, seed=0)" and dm._splits is None
