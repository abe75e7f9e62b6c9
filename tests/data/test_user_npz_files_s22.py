"""NpzDataModule and three ways a user's own ``.npz`` is commonly written (findings 7, 8 and 3 of probe P5, s22):
an object array (pandas' ``df["label"].values``, ragged series) was refused as "not an .npz", naming no key; series
padded with NaN past their ends were refused with "fill or drop them" (a CSV of the same rows reads as shorter
series); series zero-padded at the end (or, under ``padding='auto'``, at the start) without ``lengths`` were read
whole, the padding as data, without a word."""

import warnings

import numpy as np
import pytest

from neuroview.data import CsvDataModule, NpzDataModule


def _ragged(n_series: int = 12, steps: int = 9, channels: int = 2):
    """Lengths (some full) and each series' own values, distinct and nonzero (series i, channel c, step t:
    100 i + 10 c + t + 1)."""
    lengths = np.array([steps if i % 4 == 0 else 3 + i % 5 for i in range(n_series)])
    own = [np.array([[100 * i + 10 * c + t + 1 for t in range(n)] for c in range(channels)], np.float32)
           for i, n in enumerate(lengths)]
    return lengths, own


def _padded(own, steps: int = 9, value: float = np.nan, at_end: bool = True) -> np.ndarray:
    x = np.full((len(own), own[0].shape[0], steps), value, np.float32)
    for i, s in enumerate(own):
        x[i, :, :s.shape[1]] = s if at_end else x[i, :, :s.shape[1]]
        if not at_end:
            x[i, :, steps - s.shape[1]:] = s
    return x


def _served(dm):
    """The training split as served, each series cut to its served length (file order: no carve)."""
    x, _, lengths = dm._splits["train"]
    return [x[i, :, :int(n)].numpy() for i, n in enumerate(lengths)]


# ------------------------------------------------------------------------- finding 7: object arrays
def test_an_object_label_array_is_named_with_its_fix(tmp_path):
    x = np.random.default_rng(0).normal(size=(20, 1, 8)).astype(np.float32)
    np.savez(tmp_path / "obj_y.npz", X=x, y=np.array(["walk", "run"] * 10, dtype=object))  # pandas' .values
    with pytest.raises(ValueError, match=r"path: y of obj_y\.npz is an object array .*np\.asarray\(y, dtype=str\)"):
        NpzDataModule(str(tmp_path / "obj_y.npz")).setup("fit")


def test_ragged_series_in_an_object_array_are_named_with_the_lengths_fix(tmp_path):
    ragged = np.empty(20, dtype=object)
    ragged[:] = [np.ones((1, 5 + i % 3), np.float32) for i in range(20)]
    np.savez(tmp_path / "obj_x.npz", X=ragged, y=np.arange(20) % 2, y_test=np.array(["a", 1], dtype=object),
             X_test=np.zeros((2, 1, 5)))
    with pytest.raises(ValueError, match=r"path: X, y_test of obj_x\.npz are object arrays .*X: series of several "
                                         r"lengths.*store each series' length as lengths.*y_test: labels"):
        NpzDataModule(str(tmp_path / "obj_x.npz")).setup("fit")


def test_a_file_that_is_no_npz_is_still_refused_as_one(tmp_path):
    (tmp_path / "bad.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="expected an .npz file of plain arrays X and y"):
        NpzDataModule(str(tmp_path / "bad.npz")).setup("fit")


# ------------------------------------------------------------------------- finding 8: NaN past the series' ends
def test_nan_padded_series_read_as_shorter_series_as_a_csv_reads_them(tmp_path):
    lengths, own = _ragged()
    x = _padded(own)
    np.savez(tmp_path / "nan.npz", X=x, y=np.arange(12) % 2, X_test=x[:4], y_test=np.arange(4) % 2)
    dm = NpzDataModule(str(tmp_path / "nan.npz"), val_fraction=0, normalize=False)
    dm.setup("fit")
    assert dm.variable_length
    assert all(np.array_equal(s, w) for s, w in zip(_served(dm), own))
    assert dm._splits["train"][2].tolist() == lengths.tolist()
    assert dm._splits["test"][2].tolist() == lengths[:4].tolist()
    # the same rows as a CSV of one channel read the same lengths
    one = _padded([s[:1] for s in own])
    (tmp_path / "nan.csv").write_text("".join(
        ",".join([str(i % 2)] + ["NaN" if np.isnan(v) else f"{v:g}" for v in one[i, 0]]) + "\n" for i in range(12)))
    csv = CsvDataModule(str(tmp_path / "nan.csv"), test_path=str(tmp_path / "nan.csv"), val_fraction=0, normalize=False,
                        header=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the training file as its own test file
        csv.setup("fit")
    np.savez(tmp_path / "one.npz", X=one, y=np.arange(12) % 2, X_test=one[:4], y_test=np.arange(4) % 2)
    npz = NpzDataModule(str(tmp_path / "one.npz"), val_fraction=0, normalize=False)
    npz.setup("fit")
    assert npz._splits["train"][2].tolist() == csv._splits["train"][2].tolist() == lengths.tolist()


def test_nan_padding_under_pre_and_at_the_wrong_end(tmp_path):
    lengths, own = _ragged()
    x = _padded(own, at_end=False)
    np.savez(tmp_path / "pre.npz", X=x, y=np.arange(12) % 2, X_test=x[:4], y_test=np.arange(4) % 2)
    dm = NpzDataModule(str(tmp_path / "pre.npz"), val_fraction=0, normalize=False, padding="pre")
    dm.setup("fit")
    assert all(np.array_equal(s, w) for s, w in zip(_served(dm), own))
    with pytest.raises(ValueError, match=r"holds NaN only at the start of 9 series.*pass padding='pre'"):
        NpzDataModule(str(tmp_path / "pre.npz"), val_fraction=0).setup("fit")
    x = _padded(own)
    np.savez(tmp_path / "post.npz", X=x, y=np.arange(12) % 2, X_test=x[:4], y_test=np.arange(4) % 2)
    with pytest.raises(ValueError, match=r"holds NaN only at the end of 9 series.*pass padding='post'"):
        NpzDataModule(str(tmp_path / "post.npz"), val_fraction=0, padding="pre").setup("fit")


def test_nan_inside_a_series_or_in_one_channel_is_still_refused(tmp_path):
    lengths, own = _ragged()
    x = _padded(own)
    inside = x.copy()
    inside[5, 0, 1] = np.nan  # a gap inside series 5
    np.savez(tmp_path / "gap.npz", X=inside, y=np.arange(12) % 2, X_test=x[:4], y_test=np.arange(4) % 2)
    with pytest.raises(ValueError, match=r"X holds NaN or inf in 1 series \(the first: series 5\)"):
        NpzDataModule(str(tmp_path / "gap.npz"), val_fraction=0).setup("fit")
    one = _padded(own, value=0.0)
    one[2, 1, 7:] = np.nan  # one channel ends early, the other does not: no padding of the series
    np.savez(tmp_path / "chan.npz", X=one, y=np.arange(12) % 2, X_test=x[:4], y_test=np.arange(4) % 2)
    with pytest.raises(ValueError, match=r"X holds NaN or inf in 1 series \(the first: series 2\)"):
        NpzDataModule(str(tmp_path / "chan.npz"), val_fraction=0).setup("fit")
    empty = x.copy()
    empty[3] = np.nan
    np.savez(tmp_path / "empty.npz", X=empty, y=np.arange(12) % 2, X_test=x[:4], y_test=np.arange(4) % 2)
    with pytest.raises(ValueError, match=r"X of empty\.npz holds 1 series NaN throughout \(the first: series 3\)"):
        NpzDataModule(str(tmp_path / "empty.npz"), val_fraction=0).setup("fit")


# ------------------------------------------------------------------------- finding 3: zero padding without lengths
def _zero_padded(at_end: bool, n_series: int = 40, steps: int = 60):
    rng = np.random.default_rng(0)
    lengths = rng.integers(20, steps + 1, n_series)
    own = [rng.normal(size=(2, n)).astype(np.float32) for n in lengths]
    return _padded(own, steps, 0.0, at_end), lengths


def _warnings_of(path, **kw) -> list[str]:
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        NpzDataModule(str(path), **kw).setup("fit")
    return [str(m.message) for m in w if str(m.message).startswith("padding:")]


@pytest.mark.parametrize("padding", ["auto", "post"])
def test_series_zero_padded_at_the_end_without_lengths_are_warned_about(tmp_path, padding):
    x, lengths = _zero_padded(at_end=True)
    flat = int((lengths <= 58).sum())  # padded by 2 steps or more: flat (zeros) over as many at the end
    np.savez(tmp_path / "post.npz", X=x, y=np.arange(40) % 2)
    said = _warnings_of(tmp_path / "post.npz", padding=padding)
    assert len(said) == 1 and f"{flat} of its 40 series end flat" in said[0] and "lengths" in said[0]
    # the recipe the warning gives finds the lengths
    assert (60 - (x[..., ::-1] != 0).any(1).argmax(-1)).tolist() == lengths.tolist()
    np.savez(tmp_path / "with.npz", X=x, y=np.arange(40) % 2, lengths=lengths)  # with lengths: nothing to say
    assert _warnings_of(tmp_path / "with.npz", padding=padding) == []


def test_series_zero_padded_at_the_start_are_warned_about_under_auto(tmp_path):
    x, lengths = _zero_padded(at_end=False)
    np.savez(tmp_path / "pre.npz", X=x, y=np.arange(40) % 2)
    said = _warnings_of(tmp_path / "pre.npz")
    assert len(said) == 1 and "series start flat" in said[0] and "padding='pre'" in said[0]
    assert (60 - (x != 0).any(1).argmax(-1)).tolist() == lengths.tolist()


def test_series_of_one_length_or_at_rest_alike_are_not_warned_about(tmp_path):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "plain.npz", X=rng.normal(size=(40, 2, 60)).astype(np.float32), y=np.arange(40) % 2)
    assert _warnings_of(tmp_path / "plain.npz") == []
    rest = rng.normal(size=(40, 2, 60)).astype(np.float32)
    rest[..., 50:] = 0.0  # every recording ends at rest for 10 steps: one run length, not padding
    np.savez(tmp_path / "rest.npz", X=rest, y=np.arange(40) % 2)
    assert _warnings_of(tmp_path / "rest.npz") == []


# ------------------------------------------------------------------------- review R4 finding 2: ordinary data at rest
# Every step of these files is real data (nothing padded), written without lengths, read under the default 'auto'.
def _spike_counts(n_series: int = 120, steps: int = 50):
    """Binned spike counts of one neuron, 0.3-0.6 spikes a bin (the class in the rate): 0 is an ordinary count, so
    most series begin (and many end) with a few empty bins, of varying number."""
    rng = np.random.default_rng(0)
    y = np.arange(n_series) % 3
    return rng.poisson(0.3 + 0.15 * y[:, None, None], (n_series, 1, steps)).astype(np.float32), y


def _row_wise_images(n_images: int = 120):
    """Images ``[N, 28, 28]`` read as 28 rows (channels) by 28 steps (sequential MNIST): a stroke in the middle, blank
    margins of 2 to 7 columns on the left and 2 to 7 on the right."""
    rng = np.random.default_rng(0)
    x = np.zeros((n_images, 28, 28), np.float32)
    for i in range(n_images):
        r0, c0 = rng.integers(2, 8, 2)
        r1, c1 = rng.integers(20, 26, 2)
        x[i, r0:r1, c0:c1] = rng.random((r1 - r0, c1 - c0)) > 0.5
        x[i, r0, c0] = x[i, r0, c1 - 1] = 1.0  # each image's first and last stroke columns are not blank
    return x, np.arange(n_images) % 10


def test_binned_spike_counts_are_not_warned_about_as_padded(tmp_path):
    x, y = _spike_counts()
    head = (x == x[..., :1]).all(1).argmin(1)  # the steps each series begins with at its first count
    assert (head >= 2).sum() > 60 and len(np.unique(head[head >= 2])) > 1  # the shape the warning keyed on
    assert (x[..., 20:30] == 0).mean() > 0.4  # but an empty bin is common inside the series too: no padding value
    np.savez(tmp_path / "counts.npz", X=x, y=y)
    assert _warnings_of(tmp_path / "counts.npz") == []
    assert _warnings_of(tmp_path / "counts.npz", padding="post") == []
    assert _warnings_of(tmp_path / "counts.npz", padding="pre") == []


def test_images_read_row_by_row_are_not_warned_about_as_padded(tmp_path):
    x, y = _row_wise_images()
    blank = (x == 0).all(1)  # [N, 28] blank columns
    left, right = blank.argmin(1), blank[:, ::-1].argmin(1)
    assert (left >= 2).all() and (right >= 2).all() and len(np.unique(right)) > 1  # margins at both ends, no padding
    np.savez(tmp_path / "rows.npz", X=x, y=y)
    assert _warnings_of(tmp_path / "rows.npz", layout="channels_first") == []
    assert _warnings_of(tmp_path / "rows.npz", layout="channels_first", padding="post") == []


def test_a_zero_padded_file_whose_values_hold_zeros_inside_is_still_warned_about(tmp_path):
    """Zero padding of real values, a few of them exactly 0 inside (under 5% of the steps): still padding."""
    x, lengths = _zero_padded(at_end=True)
    rng = np.random.default_rng(3)
    for i, n in enumerate(lengths):
        x[i, :, rng.integers(0, n - 1)] = 0.0  # one step inside each series at 0 in both channels
    np.savez(tmp_path / "post.npz", X=x, y=np.arange(40) % 2)
    said = _warnings_of(tmp_path / "post.npz")
    assert len(said) == 1 and "series end flat" in said[0]


def test_a_quiet_start_at_zero_is_warned_about_only_as_possible_padding(tmp_path):
    """Responses after a baseline of exactly 0 (onset at step 5 to 24) read exactly as zero padding at the start does
    (a run of a value found nowhere else, of several lengths): the warning stays, but says it may be a start at rest,
    in which case nothing is to be cut."""
    rng = np.random.default_rng(0)
    y = np.arange(120) % 3
    onset, t = rng.integers(5, 25, 120), np.arange(50)
    after = t[None] >= onset[:, None]
    x = np.where(after, np.sin((t[None] - onset[:, None]) / (3 + y[:, None])) + 1.5
                 + 0.05 * rng.standard_normal((120, 50)), 0.0)[:, None].astype(np.float32)
    np.savez(tmp_path / "onset.npz", X=x, y=y)
    said = _warnings_of(tmp_path / "onset.npz")
    assert len(said) == 1 and "120 of its 120 series start flat" in said[0]
    assert "if those steps are padding" in said[0] and "begin at rest" in said[0]


# ------------------------------------------------------------------------- second review S3, findings 2 and 3
def _first_sample_repeated(n_series: int = 40, steps: int = 100, channels: int = 6):
    """Sensor recordings as BasicMotions ships them: equal length, steps 0 and 1 equal in every channel of every series
    (the sensor repeats its first sample), a value found nowhere else in the series."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n_series, channels, steps)).astype(np.float32)
    x[..., 1] = x[..., 0]
    return x, np.arange(n_series) % 4


def test_zero_end_padding_is_warned_about_when_each_series_repeats_its_first_sample(tmp_path):
    x, y = _first_sample_repeated()
    lengths = np.random.default_rng(1).integers(40, 101, len(x))
    padded = np.zeros_like(x)
    for i, n in enumerate(lengths):
        padded[i, :, :n] = x[i, :, :n]  # zero padding at the end: a 2-step flat start beside a 0..60-step zero tail
    flat = int((lengths <= 98).sum())  # padded by 2 steps or more
    np.savez(tmp_path / "post.npz", X=padded, y=y)
    for padding in ("auto", "post"):
        said = _warnings_of(tmp_path / "post.npz", padding=padding)
        assert len(said) == 1 and f"{flat} of its 40 series end flat" in said[0], (padding, said)


def test_equal_length_series_that_repeat_their_first_sample_are_not_warned_about_under_pre(tmp_path):
    x, y = _first_sample_repeated()
    assert ((x[..., 0] == x[..., 1]).all(1)).all()  # every series begins flat for exactly 2 steps: no padding
    np.savez(tmp_path / "equal.npz", X=x, y=y)
    for padding in ("pre", "auto", "post"):
        assert _warnings_of(tmp_path / "equal.npz", padding=padding) == [], padding


def test_pre_padding_of_series_that_repeat_their_first_sample_is_still_warned_about(tmp_path):
    x, y = _first_sample_repeated()
    lengths = np.random.default_rng(2).integers(40, 98, len(x))
    padded = np.zeros_like(x)
    for i, n in enumerate(lengths):
        padded[i, :, -n:] = x[i, :, :n]  # zero padding at the start, 3 steps or more
    np.savez(tmp_path / "pre.npz", X=padded, y=y)
    said = _warnings_of(tmp_path / "pre.npz", padding="pre")
    assert len(said) == 1 and "40 of its 40 series begin flat" in said[0], said
