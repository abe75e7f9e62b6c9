"""Fixes of a probe of the closed-form ridge head and MiniRocket: fit_ridge_head on a NeuroViewRNN with
``shared_steps`` returns the ridge it reports (the shared part of the weight was left in the logits);
nv.minirocket reads float64 series and refuses string labels or a single class by the argument the
caller passed; MiniRocket.describe takes the 0-dim tensor explain() ranks units by; the max_len
error's hint truncates the steps of a data module's channels-first batches, not their channels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.zoo.architectures.rocket import MiniRocket


def _ridge_by_hand(f: np.ndarray, y: np.ndarray, num_classes: int, alpha: float):
    """The ridge onto +-1 class targets on standardized features, the intercept unpenalized: the mean of
    the targets (the features are centred), ``W = (Z^T Z + alpha I)^-1 Z^T (Y - mean Y)``; in float64."""
    mean, std = f.mean(0), f.std(0)
    std = np.where(std > 0, std, 1.0)
    z = (f - mean) / std
    t = 2.0 * np.eye(num_classes)[y] - 1.0
    w = np.linalg.solve(z.T @ z + alpha * np.eye(z.shape[1]), z.T @ (t - t.mean(0)))
    return lambda g: ((g - mean) / std) @ w + t.mean(0)


def test_fit_ridge_head_of_an_rnn_with_shared_steps_gives_the_ridge_it_reports():
    """The trained step_shared part stayed in the weight beside the ridge: logits off by up to 0.11."""
    torch.manual_seed(0)
    x = torch.randn(40, 2, 12); y = torch.arange(40) % 2; x[:, 0, 3:6] += y[:, None].float()  # channels first
    net = nv.NeuroViewRNN(nn.GRU(2, 4, batch_first=True), 2, max_len=12, shared_steps=True).eval()
    with torch.no_grad():
        net.step_shared.weight.normal_(0, 0.5)  # what training leaves there
    out = nv.fit_ridge_head(net, [(x, y)])
    assert float(net.step_shared.weight.detach().abs().sum()) > 0  # the caller's network is not changed
    xt = torch.randn(10, 12, 2)  # the network reads [B, T, F]
    with torch.no_grad():
        f, ft, logits = out.features(x.transpose(1, 2)).flatten(1), out.features(xt).flatten(1), out(xt)
    ridge = _ridge_by_hand(f.double().numpy(), y.numpy(), 2, out.ridge.alpha)
    np.testing.assert_allclose(logits.double().numpy(), ridge(ft.double().numpy()), atol=1e-4)
    w, b = out.effective_classifier()  # explain() sums to the same logits
    torch.testing.assert_close(ft @ w.T + b, logits, atol=1e-4, rtol=0)


def test_minirocket_reads_float64_series_as_float32():
    """float64 series (numpy's default) failed after the biases were fitted, naming `x` and "the model"."""
    rng = np.random.RandomState(0)
    x, y = rng.randn(20, 1, 40), np.arange(20) % 2
    net = nv.minirocket([(x, y)], num_features=84)
    ref = nv.minirocket([(x.astype(np.float32), y)], num_features=84)
    xt = torch.as_tensor(rng.randn(5, 1, 40), dtype=torch.float32)
    torch.testing.assert_close(net.backbone.biases, ref.backbone.biases, atol=0, rtol=0)
    torch.testing.assert_close(net(xt), ref(xt), atol=0, rtol=0)
    # a float64 nv_minirocket keeps reading its series in float64
    n64 = nv.create_model("nv_minirocket", num_classes=2, in_channels=1, max_len=40, num_features=84).double()
    assert nv.fit_minirocket(n64, [(torch.as_tensor(x, dtype=torch.float32), y)])(xt.double()).dtype == torch.float64


@pytest.mark.parametrize("labels", [np.array(["a", "b"] * 10), np.array([b"a", b"b"] * 10),
                                    np.array(["a", 1] * 10, dtype=object)], ids=["str", "bytes", "object"])
def test_string_labels_in_a_numpy_array_are_refused_by_name(labels):
    """PyTorch's bare "can't convert np.ndarray of type numpy.str_" before."""
    x = torch.randn(20, 1, 40)
    with pytest.raises(TypeError, match=r"train: expected class indices, got the string .*a.* in an array of dtype .*"
                                        r"class_names.index"):
        nv.minirocket([(x, labels)], num_features=84)
    with pytest.raises(TypeError, match=r"train: expected class indices, got an array of dtype object; convert it"):
        nv.minirocket([(x, np.array([0, 1] * 10, dtype=object))], num_features=84)


def test_minirocket_with_one_class_names_train_not_num_classes():
    """Every label 0 was read as num_classes=1 and refused as `num_classes`, never passed."""
    x = torch.randn(20, 1, 40)
    for label in (0, 1):
        with pytest.raises(ValueError, match=rf"^train: expected samples of at least 2 classes, got only class \[{label}\]$"):
            nv.minirocket([(x, torch.full((20,), label))], num_features=84)


def test_describe_takes_the_index_explain_ranks_units_by():
    """A 0-dim tensor or np.int64 in range was refused: "expected an index in [0, 84), got tensor(47)"."""
    m = MiniRocket(input_length=40, num_features=84)
    for u in (torch.tensor(47), torch.tensor(47, dtype=torch.int32), np.int64(47), np.int32(47)):
        assert m.describe(u) == m.describe(47)
    for bad in (True, torch.tensor(True), 47.0, torch.tensor(47.0), np.float64(47), torch.tensor([47]), 84, -1,
                torch.tensor(84), "47"):
        with pytest.raises(ValueError, match=r"unit: expected an index in \[0, 84\)"):
            m.describe(bad)


def test_max_len_hint_truncates_the_steps_of_channels_first_batches():
    """retrofit of channels-first [B, C, T] batches suggested x[:, :6], which cuts channels (and fails again)."""
    x, y = torch.randn(40, 2, 12), torch.arange(40) % 2
    with pytest.raises(ValueError, match=r"truncate the steps axis \(x\[:, :6\] for \[B, T, F\]; x\[\.\.\., :6\] for a "
                                         r"data module's \[B, C, T\] batches\) or pass a larger max_len="):
        nv.retrofit(nn.GRU(2, 4, batch_first=True), [(x, y)], num_classes=2, max_len=6)
    nv.retrofit(nn.GRU(2, 4, batch_first=True), [(x[..., :6], y)], num_classes=2, max_len=6)  # the hint works
    net = nv.NeuroViewRNN(nn.GRU(2, 4), 2, max_len=6)  # steps first: [T, B, F]
    with pytest.raises(ValueError, match=r"\(x\[:6\] for \[T, B, F\]; x\[\.\.\., :6\] for a data module's"):
        net(torch.randn(12, 3, 2))


def test_closed_form_fits_and_mean_codes_keep_no_graph():
    # the training codes were computed with autograd on: every batch's graph through a trained backbone was kept
    # until the ridge was done (1.5 GB for 3,000 digits), and ridge.py's float() of a tensor needing grad warned
    import warnings

    import neuroview.training.sparsify as S

    torch.manual_seed(0)
    net = nv.create_model("nv_small_cnn", num_classes=3, in_channels=1, widths=(4, 8))
    x, y = torch.randn(24, 1, 8, 8), torch.arange(24) % 3
    with torch.no_grad():
        net(x[:2])
    feats, _ = S._features(net, [(x, y)], "train")
    assert not feats.requires_grad and feats.grad_fn is None
    assert not nv.mean_codes(net, [(x, y)]).requires_grad
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Converting a tensor with requires_grad=True to a scalar" before
        nv.fit_ridge_head(net, [(x, y)])
