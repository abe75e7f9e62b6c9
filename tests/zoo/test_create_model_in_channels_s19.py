"""create_model(name, pretrained=True, in_channels=...) of an RNN entry names the argument the user passed."""

from __future__ import annotations

import pytest
import torch

import neuroview as nv
from neuroview.zoo.pretrained import load_pretrained


def test_create_model_of_an_rnn_entry_names_in_channels_as_passed():
    """nv_gru.gunpoint reads one feature per step (GunPoint is univariate): 3 clashes with the checkpoint's 1."""
    with pytest.raises(ValueError) as e:
        nv.create_model("nv_gru.gunpoint", pretrained=True, in_channels=3)
    said = str(e.value)
    assert "got in_channels=3 (an RNN's in_features; checkpoint: 1)" in said, said
    assert "in_features=3" not in said
    with pytest.raises(ValueError) as by_load:  # load_pretrained says the same
        load_pretrained("nv_gru.gunpoint", in_channels=3)
    assert str(by_load.value) == said


def test_create_model_of_an_rnn_entry_with_its_own_in_channels_loads_the_entry():
    net = nv.create_model("nv_gru.gunpoint", pretrained=True, in_channels=1)
    same = nv.create_model("nv_gru.gunpoint", pretrained=True)
    assert net.input_size == 1
    x = torch.randn(2, 150, 1)
    assert torch.equal(net(x), same(x))  # the same checkpoint's weights


def test_create_model_of_an_rnn_entry_given_in_features_still_names_in_features():
    with pytest.raises(ValueError, match=r"got in_features=3 \(checkpoint: 1\)\. Build"):
        nv.create_model("nv_gru.gunpoint", pretrained=True, in_features=3)


def test_create_model_of_a_cnn_entry_names_in_channels():
    with pytest.raises(ValueError, match=r"got in_channels=3 \(checkpoint: 1\)\. Build"):
        nv.create_model("nv_small_cnn.digits", pretrained=True, in_channels=3)


def test_create_model_of_an_rnn_entry_refuses_unequal_in_channels_and_in_features_by_name():
    with pytest.raises(ValueError, match=r"^in_channels: an RNN's in_features .* in_features=1, got 3$"):
        nv.create_model("nv_gru.gunpoint", pretrained=True, in_channels=3, in_features=1)
