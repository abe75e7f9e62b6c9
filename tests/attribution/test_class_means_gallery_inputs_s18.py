"""importance.class_means reads integer inputs (uint8 images, integer series) as floats, as the gallery's class means
do; unit_gallery refuses numpy samples by name (as readability and the other loader readers do), for a CNN and an RNN."""

import numpy as np
import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.attribution import importance as imp

X = [[[1], [2], [3]], [[2], [5], [0]]]  # [B=2, T=3, F=1], both samples of class 0


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64, torch.int32])
def test_class_means_of_integer_inputs_are_float_means(dtype):
    x, y = torch.tensor(X, dtype=dtype), torch.tensor([0, 0])
    got = imp.class_means(x, y, 2)
    assert got.is_floating_point()
    assert got[0, :, 0].tolist() == [1.5, 3.5, 1.5]  # (1 + 2) / 2, (2 + 5) / 2, (3 + 0) / 2
    assert got[1].abs().sum().item() == 0.0  # a class with no sample: zeros, as documented


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64])
def test_class_means_of_integer_inputs_with_lengths_leave_padding_out(dtype):
    x, y = torch.tensor(X, dtype=dtype), torch.tensor([0, 0])
    got = imp.class_means(x, y, 2, lengths=torch.tensor([3, 1]))
    assert got.is_floating_point()
    assert got[0, :, 0].tolist() == [1.5, 2.0, 3.0]  # positions 1 and 2: sample 0 alone reaches them
    assert got[1].abs().sum().item() == 0.0


def test_class_means_of_a_numpy_uint8_batch_match_its_float_means():
    x = np.array(X, dtype=np.uint8)
    got = imp.class_means(x, np.array([0, 0]), 1)
    assert got.is_floating_point() and got[0, :, 0].tolist() == [1.5, 3.5, 1.5]
    # the means of a uint8 image batch do not wrap around at 256
    big = imp.class_means(np.full((2, 1, 2, 2), 200, dtype=np.uint8), np.array([0, 0]), 1)
    assert big.flatten().tolist() == [200.0] * 4


def _cnn():
    torch.manual_seed(0)
    net = nv.wrap(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.Conv1d(4, 4, 3), nn.ReLU()), num_classes=2)
    net.train()
    net(torch.randn(4, 1, 16))
    return net.eval()


def _rnn():
    torch.manual_seed(0)
    net = nv.wrap(nn.GRU(1, 3, batch_first=True), num_classes=2, max_len=16)
    net.train()
    net(torch.randn(4, 16, 1))
    return net.eval()


@pytest.mark.parametrize("make", [_cnn, _rnn], ids=["cnn", "rnn"])
def test_unit_gallery_refuses_numpy_samples_by_name(make):
    net = make()
    x = np.random.default_rng(0).normal(size=(20, 1, 16)).astype(np.float32)  # channels-first, as required
    y = np.arange(20) % 2
    with pytest.raises(TypeError, match=r"x: expected a torch\.Tensor, got ndarray \(the samples of a batch of loader") as e:
        nv.unit_gallery(net, [(x, y)], units=[0], k=3)
    assert "channels-first" not in str(e.value)  # the layout is right: the type is not
    assert "torch.as_tensor" in str(e.value)


def test_unit_gallery_refuses_numpy_samples_in_a_later_batch():
    net = _cnn()
    x = torch.randn(10, 1, 16)
    with pytest.raises(TypeError, match=r"x: expected a torch\.Tensor, got ndarray \(the samples of a batch of loader"):
        nv.unit_gallery(net, [(x, torch.arange(10) % 2), (x.numpy(), np.arange(10) % 2)], units=[0], k=3)


def test_unit_gallery_of_the_same_samples_as_tensors_still_works():
    net = _cnn()
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(20, 1, 16)).astype(np.float32))
    g = nv.unit_gallery(net, [(x, torch.arange(20) % 2)], units=[0], k=3)
    codes = net.codes(x)[:, 0]
    assert g.index[0].tolist() == codes.argsort(descending=True, stable=True)[:3].tolist()


@pytest.mark.parametrize("make", [_cnn, _rnn], ids=["cnn", "rnn"])
def test_readability_refuses_numpy_samples_by_their_type_not_their_layout(make):
    x = np.random.default_rng(0).normal(size=(20, 1, 16)).astype(np.float32)  # channels-first, as required
    with pytest.raises(TypeError, match=r"x: expected a torch\.Tensor, got ndarray \(the samples of a batch of batches") as e:
        nv.readability(make(), [(x, np.arange(20) % 2)])
    assert "channels-first" not in str(e.value)
