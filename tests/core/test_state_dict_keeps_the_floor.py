"""A head's variance floor travels with its state dict (in its metadata, as BatchNorm's version does): it decides the
function as the running statistics do.

The floor was a constructor argument only, so ``torch.save(net.state_dict())`` of a network trained without one
(the zoo's ``nv_small_cnn`` entries, ``norm_floor=0``) loaded "<All keys matched successfully>" into a network
built with the default 0.1 and decided otherwise: logits up to 0.84 apart on digits' test split, one prediction
changed, and ``neuroview explain --weights w.pt`` explained that other function.
"""

from __future__ import annotations

import io

import torch
from torch import nn

import neuroview as nv
from neuroview.core.head import CodeNorm


def _net(floor):
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv1d(1, 6, 3), nn.ReLU(), nn.Conv1d(6, 6, 3), nn.ReLU())
    return nv.NeuroViewCNN(backbone, 3, input_shape=(1, 16), norm_floor=floor)


def test_a_state_dict_loads_as_the_function_it_was_saved_as():
    x = torch.randn(64, 1, 16)
    trained = _net(0.0).train()
    with torch.no_grad():
        trained(x)
        trained.norm.running_var[:3] = 1e-4  # features of tiny variance, which a floor of 0.1 lifts
    trained.eval()
    state = trained.state_dict()
    assert "norm.floor" not in state and state._metadata["norm"]["floor"] == 0.0  # no key added: metadata
    buf = io.BytesIO()
    torch.save(state, buf)  # as a user saves it, and as a Lightning checkpoint holds it
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    fresh = _net(0.1)
    fresh(x[:2])  # its head built, with the default floor
    fresh.load_state_dict(saved)  # strict: every key matches
    fresh.eval()
    assert fresh.norm.floor == 0.0
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), trained(x), rtol=0, atol=0)
        ref = _net(0.1)
        ref(x[:2])
        ref.load_state_dict(dict(saved))  # a plain dict of the same tensors: nothing says the floor
        assert ref.norm.floor == 0.1
        # the same tensors under the default floor decide otherwise: what every state dict loaded as before
        assert (ref.eval()(x) - trained(x)).abs().max() > 1e-3
        # the state dict is still tensors only: torch.func reads it as parameters and buffers
        torch.testing.assert_close(torch.func.functional_call(trained, dict(state), (x,)), trained(x))


def test_a_state_dict_saved_before_the_floor_was_kept_loads_with_the_model_s_own():
    norm = CodeNorm(4, floor=0.25)
    old = dict(CodeNorm(4, floor=0.0).state_dict())  # no metadata, as files saved before
    assert norm.load_state_dict(old) is not None  # strict
    assert norm.floor == 0.25


def test_a_network_that_loaded_another_floor_is_saved_and_compared_with_it(tmp_path):
    import pytest

    from neuroview.zoo import pretrained as zoo

    kw = {"num_classes": 3, "in_channels": 1, "widths": [4, 8]}
    torch.manual_seed(0)
    trained = nv.create_model("nv_small_cnn", norm_floor=0.0, **kw)
    x = torch.randn(8, 1, 8, 8)
    trained.train()(x)
    net = nv.create_model("nv_small_cnn", **kw)  # built with the default floor
    net(x[:2])
    net.load_state_dict(trained.state_dict())  # now the floor-0 function
    with pytest.raises(ValueError, match=r"floor: model 0\.0, arch_kwargs build 0\.1"):
        zoo.save_pretrained(net, "nv_small_cnn.toy", architecture="nv_small_cnn", arch_kwargs=kw,
                            dataset={"name": "none"}, recipe=None, seed=0, metrics={}, root=tmp_path)
    zoo.save_pretrained(net, "nv_small_cnn.toy", architecture="nv_small_cnn", arch_kwargs=kw | {"norm_floor": 0.0},
                        dataset={"name": "none"}, recipe=None, seed=0, metrics={}, root=tmp_path)
    back = nv.create_model("nv_small_cnn.toy", pretrained=True, root=tmp_path)
    torch.testing.assert_close(back.eval()(x), net.eval()(x), rtol=0, atol=0)
