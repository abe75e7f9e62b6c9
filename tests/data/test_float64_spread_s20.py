"""Float64 series whose spread is below 1e-8 in absolute terms. No threshold of a series' own size tells signal
(``1 + 7e-10 x``, the same series as ``1e9 + 0.7 x`` divided by 1e9) from float64 rounding (``0.5 +- 4.6e-12``, the
np.gradient of a constant speed) there, while a spread above 1e-8 is a measurement even at 1e-13 of its size
(``1e9 + 1e-4 x``). So the reading is the one before 3d6e630, bit for bit (centered or refused above 1e-8, flat below),
and a series or channel read as flat although its float64 values vary by more than their rounding is named in a
warning with the fix, never silently (a review of 3d6e630)."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
import torch

from neuroview.data import ArrayDataModule, NpzDataModule
from neuroview.data.stats import per_series_normalize

FLAT = "vary by less than 1e-8 but by more than float64 rounding of their values"


def _series(n: int = 12, t: int = 40) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 1, t))


def _z(x: np.ndarray, joint: bool) -> np.ndarray:  # numpy's float64 z-score, by hand
    axes = (1, 2) if joint else (2,)
    return (x - x.mean(axis=axes, keepdims=True)) / x.std(axis=axes, keepdims=True)


def _speed(n: int = 12, t: int = 100) -> np.ndarray:
    """A constant speed of 0.5 from positions 1000 + 10 k + 0.5 t: 0.5 in math, float64 rounding of 9e-12 of it."""
    s = np.arange(t) * 0.01
    return np.stack([np.gradient(1000.0 + 10 * k + 0.5 * s, s) for k in range(n)])[:, None]


def _served(x: np.ndarray, normalize, tmp_path, test: np.ndarray | None = None):
    """What the network reads of the test split (the training series unless ``test``), and the flat-series warnings."""
    y = np.arange(len(x)) % 2
    xt = x if test is None else test
    np.savez(tmp_path / "d.npz", X=x, y=y, X_test=xt, y_test=np.arange(len(xt)) % 2)
    dm = NpzDataModule(str(tmp_path / "d.npz"), val_fraction=0.0, normalize=normalize)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        dm.setup()
    flat = [str(w.message) for w in seen if "float64 rounding" in str(w.message)]
    return torch.cat([b[0] for b in dm.test_dataloader()]).numpy(), flat  # as the network reads it


@pytest.mark.parametrize("normalize", ["series", "sample"])
@pytest.mark.parametrize("a, b", [(0.7, 1e9), (1e-6, -3.0), (7e-10, 0.0)])
def test_a_float64_series_a_x_plus_b_serves_the_z_score_of_x(tmp_path, normalize, a, b):
    x = _series()
    got, flat = _served(b + a * x, normalize, tmp_path)
    assert np.abs(got - _z(x, normalize == "sample")).max() < 1e-5 and not flat


@pytest.mark.parametrize("normalize", ["series", "sample"])
@pytest.mark.parametrize("a, b", [(1e-4, 1e9), (1e-3, 1e10)])
def test_a_real_spread_below_1e12_of_its_size_is_centered_as_before(tmp_path, normalize, a, b):
    """1e9 +- 1e-4 (800 float64 steps) was served as flat zeros by 3d6e630 (a spread below 1e-12 of its size counted as
    none); it is centered in float64 and z-normalized again, to the float64 rounding of its stored values (1e-3)."""
    x = _series()
    got, flat = _served(b + a * x, normalize, tmp_path)
    assert np.abs(got - _z(x, normalize == "sample")).max() < 5e-3 and not flat
    assert abs(float(got.std()) - 1) < 1e-2


@pytest.mark.parametrize("normalize", [True, False])
def test_read_as_it_is_or_by_channel_a_real_spread_below_1e12_is_refused_by_name(tmp_path, normalize):
    with pytest.raises(ValueError, match=r"X \(train split\): channel 0 holds values around 1e\+09 that vary by (9\.\d+e-05|0\.0001\d*): "
                                         r"read as float32.*loses more than 1% of that spread; subtract the offset"):
        _served(1e9 + 1e-4 * _series(), normalize, tmp_path)


@pytest.mark.parametrize("normalize", ["series", "sample"])
def test_float64_rounding_noise_among_ordinary_series_reads_as_zeros_and_is_named(tmp_path, normalize):
    """np.gradient of a constant speed (0.5 +- 4.6e-12) was blown up to unit noise by 3d6e630; it reads as the constant
    it is (exact zeros), and a warning names it with the fix should that variation be signal."""
    x = _series(12, 100)
    raw = x.copy()
    raw[3] = _speed()[3]
    got, flat = _served(raw, normalize, tmp_path)
    assert (got[3] == 0).all()
    keep = [i for i in range(12) if i != 3]
    assert np.abs(got[keep] - _z(x, normalize == "sample")[keep]).max() < 1e-5
    assert len(flat) == 1  # one warning naming the training split and the test split (R8-5: it was one per split)
    assert flat[0].startswith("NpzDataModule: X: 1 of 12 series of the train split and 1 of 12 of the test split " + FLAT)
    assert "series 3 of the train split holds values around 0.5 that vary by 4.59e-12" in flat[0]
    assert "subtract the offset or rescale the data" in flat[0]


@pytest.mark.parametrize("normalize", ["series", "sample"])
@pytest.mark.parametrize("offset", [1.0, 0.0, 1e4])
def test_a_tiny_spread_read_as_flat_is_named_whatever_its_offset(tmp_path, normalize, offset):
    """1 + 7e-10 x (float32 cast: one value), 7e-10 x and 1e4 + 1e-9 x among ordinary series: read as no spread as
    before 3d6e630 (zeros, or values within 1e-8 of them), and now named, with how many, the split, level and spread."""
    x = _series()
    raw = x.copy()
    raw[5] = offset + (1e-9 if offset == 1e4 else 7e-10) * x[5]
    got, flat = _served(raw, normalize, tmp_path)
    assert np.abs(got[5]).max() < 1e-8
    assert len(flat) == 1 and "1 of 12 series of the train split and 1 of 12 of the test split" in flat[0]
    assert f"series 5 of the train split holds values around {float(raw[5].mean()):.6g} that vary by {float(raw[5].std()):.3g}" in flat[0]


@pytest.mark.parametrize("normalize", ["series", "sample"])
def test_a_set_of_only_tiny_spreads_around_1_reads_as_zeros_and_is_named(tmp_path, normalize):
    x = _series()
    got, flat = _served(1.0 + 7e-10 * x, normalize, tmp_path)
    assert (got == 0).all()
    assert len(flat) == 1 and "12 of 12 series of the train split" in flat[0] and "(spreads " in flat[0] and "multiply by 1e9" in flat[0]


def test_a_variable_length_set_centered_above_1e_8_flat_and_named_below():
    x = _series(8, 30)

    def module(a, b):
        class Mine(ArrayDataModule):
            def load(self):
                xs = [b + a * s[:, :20 + i] for i, s in enumerate(x)]
                return {"train": (xs, np.arange(8) % 2), "test": (xs, np.arange(8) % 2)}
        dm = Mine(val_fraction=0.0, normalize="series")
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            dm.setup()
        return dm._splits["test"], [str(w.message) for w in seen if "float64 rounding" in str(w.message)]

    (xb, _, lengths), flat = module(0.7, 1e9)
    assert not flat
    for i in range(8):
        n = 20 + i
        assert int(lengths[i]) == n and np.abs(xb[i, :, :n].numpy() - _z(x[i:i + 1, :, :n], False)[0]).max() < 1e-5
    (xb, _, _), flat = module(7e-10, 1.0)
    assert (xb == 0).all() and len(flat) == 1 and "8 of 8 series of the train split and 8 of 8 of the test" in flat[0]


@pytest.mark.parametrize("normalize", [True, False])
def test_read_as_it_is_or_by_channel_a_flat_channel_that_varies_loads_as_before_and_is_named(tmp_path, normalize):
    """A second channel of np.gradient rounding (0.5 +- 4.2e-12) was refused by 3d6e630 with advice that does not help;
    it loads as its constant again, and a warning names the channel; 1 + 7e-10 x alone the same."""
    x = _series(12, 100)
    got, flat = _served(np.concatenate([x, _speed()], 1), normalize, tmp_path)
    assert (got[:, 1] == (0.0 if normalize else 0.5)).all()  # standardized: the constant minus its mean
    assert len(flat) == 1 and "1 of 2 channels of the train split and 1 of 2 of the test split " + FLAT in flat[0]
    assert "channel 1 of the train split holds values around 0.5 that vary by 4.2" in flat[0]
    got, flat = _served(1.0 + 7e-10 * _series(), normalize, tmp_path)
    assert (got == (0.0 if normalize else 1.0)).all() and len(flat) == 1
    assert "channel 0 of the train split holds values around 1 that vary by" in flat[0]
    # by channel, rescaling alone keeps the offset that float32 cannot hold beside the spread: refused on the next load
    assert "subtract the offset (rescaled alone" in flat[0] and "or pass normalize='series'" in flat[0]
    assert "multiply by 1e9" not in flat[0]


@pytest.mark.parametrize("normalize", ["series", "sample"])
def test_one_setup_names_the_flat_series_of_every_split_in_one_warning(normalize):
    """Review R8-5: the same flat series were named once per split, train, the validation carved from it and test:
    three paragraphs per setup. One warning now, counting each split's (15 of 30, 5 of 10, 5 of 10: counted by hand
    from the split), and setup('test') and reading every loader add none."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 1, 50))
    x[1::2, 0] = 1 + 7e-10 * x[1::2, 0]  # the odd series: in the band

    class Mine(ArrayDataModule):
        def load(self):
            return {"train": (x, np.arange(40) % 2), "test": (x[:10], np.arange(10) % 2)}

    dm = Mine(val_fraction=0.25, normalize=normalize)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        dm.setup("fit")
        dm.setup("test")
        for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
            for _ in loader:
                pass
    flat = [str(w.message) for w in seen if FLAT in str(w.message)]
    assert len(flat) == 1, flat
    assert flat[0].startswith(f"Mine: X: 15 of 30 series of the train split, 5 of 10 of the val split and 5 of 10 of "
                              f"the test split {FLAT} (spreads ")
    assert flat[0].count("If that variation is signal") == 1
    served = torch.cat([dm._splits[n][0] for n in ("train", "val", "test")])
    assert int((served.flatten(1) == 0).all(1).sum()) == 25  # every series named reads as flat zeros


@pytest.mark.parametrize("normalize", ["series", "sample", True])
def test_constants_and_ordinary_series_are_not_named(tmp_path, normalize):
    x = _series()
    raw = x.copy()
    raw[3], raw[4] = 0.1, 0.0  # 0.1 is inexact: its float64 mean may miss it by a step
    got, flat = _served(raw, normalize, tmp_path)
    assert not flat
    if normalize != True:  # noqa: E712
        assert (got[3] == 0).all() and (got[4] == 0).all()


@pytest.mark.parametrize("normalize", ["series", "sample", True])
def test_a_test_split_of_more_channels_meets_the_named_refusal(tmp_path, normalize):
    """3d6e630 wrote the test split's per-channel judgment into the training split's scale: torch's bare RuntimeError."""
    train = _series(10, 50)
    test = np.concatenate([train, train], 1)
    test[2, 0] = 1e9 + 0.7 * train[2, 0]
    with pytest.raises(ValueError, match=r"X: the test split has 2 channels \(shape \(10, 2, 50\)\), the training split 1"):
        _served(train, normalize, tmp_path, test=test)


def test_per_series_normalize_takes_one_scale_per_series_in_chunks_too():
    """Over 2048 series the scale went to every chunk whole: one per series could not broadcast."""
    x = torch.as_tensor(_series(2100, 10))
    x[5] *= 1e-9  # no spread judged against 1 (the default rule), a spread where its scale is 0
    scale = torch.ones(2100, 1, 1, dtype=torch.float64)
    scale[5] = 0.0
    got = per_series_normalize(x, scale=scale)
    want = torch.as_tensor(_z(x.numpy(), False)).float()
    assert (got - want).abs().max() < 1e-5
    assert (per_series_normalize(x, scale=torch.ones(1, 1, 1, dtype=torch.float64))[5] - x[5].float()).abs().max() < 1e-6
    assert (per_series_normalize(torch.full((3, 1, 5), 2.5, dtype=torch.float64), scale=torch.zeros(3, 1, 1)) == 0).all()


@pytest.mark.parametrize("n", [100, 3000])
def test_per_series_normalize_takes_a_number_a_0_d_or_a_per_channel_scale_over_any_count(n):
    """Over 2,048 series 3d6e630 sliced the scale by series: a number, a 0-d tensor and a [C, 1] scale failed."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, 3, 10))
    x[5, 0] *= 1e-9
    x[5, 2] *= 1e-9
    want = _z(x, False)
    for scale in (1.0, torch.tensor(1.0, dtype=torch.float64)):
        got = per_series_normalize(torch.as_tensor(x), scale=scale).numpy()
        assert np.abs(got[6:] - want[6:]).max() < 1e-5 and np.abs(got[5, ::2]).max() < 1e-8  # 1e-9 x against 1: flat
    per_channel = torch.tensor([[1.0], [1.0], [0.0]], dtype=torch.float64)  # channel 2: any spread is one
    got = per_series_normalize(torch.as_tensor(x), scale=per_channel).numpy()
    assert np.abs(got[5, 0]).max() < 1e-8 and np.abs(got[5, 2] - want[5, 2]).max() < 1e-5
    assert np.abs(got[6:] - want[6:]).max() < 1e-5


def test_the_docstring_promises_float_rounding_and_says_where_it_ends(tmp_path):
    """The ArrayDataModule docstring said ``a * x + b`` gives "exactly" what ``x`` gives; it differs by float32 rounding
    of the values over their spread, and below a spread of 1e-8 the series may read as flat (whatever its offset)."""
    doc = " ".join(inspect.getdoc(ArrayDataModule).split())
    assert "gives exactly" not in doc and "up to float32 rounding, about 1e-7 relative" in doc
    assert "6e-8 of ``max |a * x + b|`` over the std of ``a * x``" in doc and "The promise ends below a std of 1e-8" in doc
    x = _series()
    ref, _ = _served(x, "series", tmp_path)
    a = np.linspace(0.1, 10, len(x))[:, None, None]
    for b in (np.linspace(-5, 5, len(x))[:, None, None], 1e9):
        y = a * x + b  # float64, as a user's file holds it
        got, _ = _served(y, "series", tmp_path)
        stored = np.where(np.abs(y).max(2, keepdims=True) * 2.0 ** -24 > 1e-4 * y.std(2, keepdims=True),
                          y - y.mean(2, keepdims=True), y)  # float64 series centered first where the cast errs by 1e-4
        bound = 2.0 ** -24 * (np.abs(stored).max(2, keepdims=True) / y.std(2, keepdims=True)
                              + np.abs(x).max(2, keepdims=True) / x.std(2, keepdims=True))
        assert (np.abs(got - ref) <= 2 * bound + 5e-7).all()  # + the float32 rounding of the served z-scores
    tiny, _ = _served(7e-10 * x + 1.0, "series", tmp_path)
    assert (tiny == 0).all()  # below a std of 1e-8, where the cast loses it: flat, as the docstring says
