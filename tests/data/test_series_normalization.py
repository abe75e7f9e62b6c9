"""Per-series normalization (``normalize="series"``) and ``batch_size="auto"`` on every data module:
raw recordings, whatever each one's scale and offset, reach the network as the UCR archive's
z-normalized series do."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

import neuroview as nv
from neuroview.data import (
    CIFAR10DataModule,
    DigitsDataModule,
    MNIST1DDataModule,
    MNISTDataModule,
    CsvDataModule,
    NpzDataModule,
    UCRDataModule,
)
from neuroview.data.arrays import auto_batch_size, per_series_normalize

MODULES = [DigitsDataModule, MNIST1DDataModule, MNISTDataModule, CIFAR10DataModule, NpzDataModule, CsvDataModule,
           UCRDataModule]


@pytest.mark.parametrize("cls", MODULES, ids=lambda c: c.__name__)
def test_every_data_module_takes_auto_batch_size_and_series_normalization(cls):
    # the command line checks values against the signature: an `int` there drops a recipe's `auto`
    params = inspect.signature(cls).parameters
    assert "'auto'" in str(params["batch_size"].annotation), params["batch_size"]
    assert "'series'" in str(params["normalize"].annotation), params["normalize"]
    args = {NpzDataModule: ("x.npz",), CsvDataModule: ("x.csv",)}.get(cls, ())
    dm = cls(*args, batch_size="auto", normalize="series")  # nothing is loaded yet
    assert dm._batch_size == "auto" and dm.normalize == "series"
    assert "'sample'" in str(params["normalize"].annotation)
    with pytest.raises(ValueError, match="normalize: expected true, false, 'series' or 'sample'"):
        cls(*args, normalize="channel-wise")


def test_auto_batch_size_of_a_module_that_did_not_default_to_it():
    dm = DigitsDataModule(batch_size="auto", val_fraction=0.1)
    dm.setup("fit")
    assert dm.batch_size == auto_batch_size(dm.split_sizes()["train"]) == 64
    assert next(iter(dm.train_dataloader()))[0].shape[0] == 64


def test_per_series_normalize_ignores_each_series_scale_and_offset():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, 40, generator=g)
    a = torch.rand(6, 3, 1, generator=g) * 20 + 0.05  # every series and channel its own scale and offset
    b = torch.randn(6, 3, 1, generator=g) * 100
    z = per_series_normalize(x)
    torch.testing.assert_close(per_series_normalize(a * x + b), z, rtol=0, atol=1e-4)
    torch.testing.assert_close(z.mean(-1), torch.zeros(6, 3), rtol=0, atol=1e-6)
    torch.testing.assert_close(z.std(-1, unbiased=False), torch.ones(6, 3), rtol=0, atol=1e-5)
    # padded series: statistics over the real steps only, the padding stays exactly zero
    lengths = torch.tensor([40, 30, 12, 40, 1, 25])
    xp = x * (torch.arange(40) < lengths[:, None, None])
    zp = per_series_normalize(xp, lengths)
    for i, n in enumerate(lengths.tolist()):
        assert (zp[i, :, n:] == 0).all()
        if n > 1:
            torch.testing.assert_close(zp[i, :, :n], per_series_normalize(x[i:i + 1, :, :n])[0], rtol=0, atol=1e-5)
    assert (zp[4] == 0).all()  # one step: a constant series, zeros rather than NaN
    assert (per_series_normalize(torch.full((2, 1, 5), 3.0)) == 0).all()


def test_sample_normalization_keeps_the_channels_levels_relative_to_each_other():
    # "sample": one mean and std per series over all its channels and steps; a common scale and
    # offset of the recording goes, the channels' levels relative to each other stay (JapaneseVowels'
    # 12 cepstral coefficients: "series" would set every one to mean 0, std 1)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 20, generator=g) + torch.tensor([0.0, 5.0, -3.0]).view(1, 3, 1)
    z = per_series_normalize(x, joint=True)
    torch.testing.assert_close(per_series_normalize(7.5 * x - 40, joint=True), z, rtol=0, atol=1e-4)
    torch.testing.assert_close(z.mean((1, 2)), torch.zeros(4), rtol=0, atol=1e-6)
    assert (z[:, 1].mean(-1) > z[:, 0].mean(-1)).all() and (z[:, 2].mean(-1) < z[:, 0].mean(-1)).all()
    torch.testing.assert_close(per_series_normalize(x[:, :1], joint=True), per_series_normalize(x[:, :1]))  # one channel: the same
    dm = UCRDataModule("BasicMotions", val_fraction=0.0, normalize="sample")
    dm.setup("fit")
    xs = dm._dataset("train")[list(range(40))][0]
    torch.testing.assert_close(xs.mean((1, 2)), torch.zeros(40), rtol=0, atol=1e-5)
    torch.testing.assert_close(xs.std((1, 2), unbiased=False), torch.ones(40), rtol=0, atol=1e-5)


def _gunpoint_rescaled(path, seed: int = 0):
    """GunPoint as aeon ships it (each series z-normalized), written to an .npz with every series
    multiplied by a random factor in [0.05, 20] and shifted by a random offset in [-100, 100]."""
    from aeon.datasets import load_classification

    rng = np.random.default_rng(seed)
    arrays = {}
    for split, suffix in (("train", ""), ("test", "_test")):
        x, y = load_classification("GunPoint", split=split)
        a = np.exp(rng.uniform(np.log(0.05), np.log(20), (len(x), 1, 1)))
        arrays["X" + suffix] = (a * x + rng.uniform(-100, 100, (len(x), 1, 1))).astype(np.float32)
        arrays["y" + suffix] = y.astype(str)
    np.savez(path, **arrays)
    return path


def test_rescaled_series_reach_the_network_as_the_archive_s(tmp_path):
    path = _gunpoint_rescaled(tmp_path / "gunpoint_raw.npz")
    kw = dict(batch_size="auto", val_fraction=0.0, normalize="series")
    ref, raw = UCRDataModule("GunPoint", **kw), NpzDataModule(str(path), **kw)
    for dm in (ref, raw):
        dm.setup("fit")
    assert raw.batch_size == ref.batch_size == auto_batch_size(50) and raw.class_names == ref.class_names
    for split in ("train", "test"):
        xr, yr = ref._dataset(split)[list(range(len(ref._dataset(split))))]
        xw, yw = raw._dataset(split)[list(range(len(raw._dataset(split))))]
        assert torch.equal(yr, yw)
        torch.testing.assert_close(xw, xr, rtol=0, atol=2e-4)
    # standardizing each channel over the split instead keeps every series' own scale: far apart
    chan = NpzDataModule(str(path), val_fraction=0.0)
    chan.setup("fit")
    xc, xr = chan._dataset("train")[list(range(50))][0], ref._dataset("train")[list(range(50))][0]
    assert (xc - xr).abs().max() > 1.0


def _fit_and_score(dm, steps: int, seed: int = 0) -> float:
    torch.manual_seed(seed)
    dm.setup("fit")
    # the surrogate state the margins below were measured with: 60 steps turn any change of the
    # gradient's rounding into several points (archive GunPoint, seeds 0-15: 91.8 ± 12.3 with "bf16",
    # 92.0 ± 7.9 with the default 4-bit slopes, seed 0 82.7), which is not what this test is about
    net = nv.create_model("nv_lite", num_classes=dm.num_classes, in_channels=dm.in_channels, grad_state="bf16")
    x, y = dm._dataset("train")[list(range(dm.split_sizes()["train"]))]
    net(x[:4])  # finds its sites
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-2)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        i = torch.randint(len(y), (16,), generator=g)
        loss = torch.nn.functional.cross_entropy(net(x[i]), y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    xt, yt = dm._dataset("test")[list(range(dm.split_sizes()["test"]))]
    with torch.no_grad():
        return (net.eval()(xt).argmax(-1) == yt).float().mean().item()


def test_accuracy_holds_on_rescaled_series(tmp_path):
    # one training-level check: the same short training (300 steps) on the archive's GunPoint and on
    # every series rescaled and shifted at random, median of 3 seeds. Inputs agree to 2e-4 (above), but
    # a short training turns any change of float rounding into points either way: at 60 steps one
    # change of LITE's depthwise convolution (the same sums, another order) moved a seed from 99.3 to
    # 79.3, and at 150 steps the exact fixed filters (float64, rounded once) left the archive's own
    # series at 60.7, 100 and 73.3 where float32's had given 62.0, 98.7 and 100.0. At 300 steps: the
    # archive's 99.3, 98.0, 99.3, rescaled 94.7, 100, 97.3, and each channel standardized over the split
    # instead 59.3, 72.0, 64.7. Torch 2.11 on CPU (at 150 steps): rescaled 94.0 against 99.3, so the
    # tolerance is 10 points, still far above what the wrong normalization gives
    torch.set_num_threads(1)
    path = _gunpoint_rescaled(tmp_path / "gunpoint_raw.npz", seed=1)
    modules = {"ref": lambda: UCRDataModule("GunPoint", val_fraction=0.0, normalize="series"),
               "raw": lambda: NpzDataModule(str(path), val_fraction=0.0, normalize="series"),
               "chan": lambda: NpzDataModule(str(path), val_fraction=0.0, normalize=True)}
    acc = {k: sorted(_fit_and_score(make(), steps=300, seed=s) for s in range(3))[1] for k, make in modules.items()}
    assert acc["ref"] > 0.9 and acc["raw"] >= acc["ref"] - 0.1 and acc["chan"] < acc["raw"] - 0.2, acc
