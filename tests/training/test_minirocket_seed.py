"""`nv.minirocket` is one network for a seed, whatever order a loader gives its series in; it reads the
training split once; and the MiniRocket and ridge entry points name what they cannot take."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import neuroview as nv
from neuroview.cli import main as cli


def _series(n: int = 40, t: int = 30):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 1, t, generator=g)
    return x, (x[:, 0, 5:10].mean(1) > 0).long()


def _same(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


def test_a_shuffling_loader_gives_one_network_for_a_seed_and_the_callers_rng_is_kept():
    """Each bias comes from a series drawn by its index: in the order a shuffling loader gave that time (37 of
    200 test predictions differed between two calls with seed=0)."""
    x, y = _series()
    loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True)
    torch.manual_seed(5)
    expected = torch.rand(2)
    torch.manual_seed(5)
    a = nv.minirocket(loader, num_features=168, seed=0)
    assert torch.equal(torch.rand(2), expected)  # the draws of the caller's own generator, unchanged
    b = nv.minirocket(loader, num_features=168, seed=0)
    assert _same(a, b)
    assert not torch.equal(nv.minirocket(loader, num_features=168, seed=1).backbone.biases, a.backbone.biases)


def test_the_training_split_is_read_once_and_the_batching_does_not_matter():
    x, y = _series()
    once = nv.minirocket(zip([x[:16], x[16:]], [y[:16], y[16:]]), num_features=168, seed=2)  # a one-shot iterable
    listed = nv.minirocket([(x[i:i + 7], y[i:i + 7]) for i in range(0, 40, 7)], num_features=168, seed=2)
    assert _same(once, listed)
    # the biases of the series in that order, independently: MiniRocket.fit on the whole tensor
    ref = nv.create_model("nv_minirocket", num_classes=2, in_channels=1, max_len=30, num_features=168, seed=2)
    assert torch.equal(ref.backbone.fit(x).biases, once.backbone.biases)


def test_integer_series_are_read_as_float_and_ragged_batches_are_named():
    x, y = _series()
    ints = (3 * x).round()
    as_int = nv.minirocket([(ints.long(), y)], num_features=168)  # was a bare "mean(): could not infer output dtype"
    as_float = nv.minirocket([(ints, y)], num_features=168)
    assert _same(as_int, as_float)
    assert torch.equal(as_int(ints.long()), as_float(ints))
    with pytest.raises(ValueError, match=r"train: expected series of one shape \[C, T\] in every batch .* got \[1, 30\] in "
                                         r"the first batch and \[1, 25\] in batch 2 \(a variable-length set"):
        nv.minirocket([(x[:10], y[:10]), (x[10:, :, :25], y[10:])], num_features=168)
    with pytest.raises(ValueError, match=r"got \[1, 30\] in the first batch and \[2, 30\] in batch 2$"):
        nv.minirocket([(x[:10], y[:10]), (x[10:].repeat(1, 2, 1), y[10:])], num_features=168)


def test_fit_ridge_head_names_another_model_and_takes_one_penalty_alone():
    x, y = _series()
    with pytest.raises(TypeError, match="net: expected a NeuroView network .* got Sequential"):  # a bare AttributeError
        nv.fit_ridge_head(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), [(x, y)])
    net = nv.wrap(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), 2, input_shape=(1, 30))
    alone = nv.fit_ridge_head(net, [(x, y)], alphas=0.5)  # a bare "'float' object is not iterable"
    assert alone.ridge.alphas == (0.5,) and _same(alone, nv.fit_ridge_head(net, [(x, y)], alphas=[0.5]))
    for bad in ("a", [float("inf")], True):
        with pytest.raises(ValueError, match=r"alphas: expected one or more penalties > 0, finite"):
            nv.fit_ridge_head(net, [(x, y)], alphas=bad)


def test_the_command_refuses_normalize_with_a_json_spec(tmp_path, capsys):
    """--normalize none with a JSON --data spec was ignored, silently: the spec's own normalization was used."""
    x, y = _series(30, 20)
    np.savez(tmp_path / "s.npz", X=x.numpy(), y=y.numpy())
    spec = json.dumps({"class_path": "neuroview.data.NpzDataModule", "init_args": {"path": str(tmp_path / "s.npz")}})
    assert cli(["minirocket", "--data", spec, "--num-features", "84", "--normalize", "none", "--out", str(tmp_path / "z")]) == 2
    assert "--normalize: a JSON --data spec sets its own normalization" in capsys.readouterr().err
    assert not (tmp_path / "z").exists()
