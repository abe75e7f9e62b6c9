"""nv functions handed a NeuroView network inside torch's standard wrappers (DistributedDataParallel, DataParallel,
``torch.optim.swa_utils.AveragedModel``, torch.compile's OptimizedModule) name the way out: ``net.module``, the network
it wraps (``net._orig_mod`` for a compiled one), as the compiled case already did for ``readability`` (probe P4,
finding 4). They said only "got DistributedDataParallel"; ``sparsify`` did not name ``_orig_mod`` either."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

import neuroview as nv
from neuroview.core._utils import require_neuroview


def _net():
    torch.manual_seed(0)
    net = nv.wrap(nn.Sequential(nn.Conv1d(1, 2, 1), nn.ReLU()), num_classes=3, input_shape=(1, 4))
    return net.eval()


def _batches():
    return [(torch.randn(6, 1, 4, generator=torch.Generator().manual_seed(1)), torch.tensor([0, 1, 2, 0, 1, 2]))]


class _Wrapper(nn.Module):
    """A wrapper of torch's kind (DDP, FSDP's, DataParallel): the network as ``.module``."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


def _compiled_like(inner):
    """torch.compile's OptimizedModule: it compiles at its first call, which no refusal reaches."""
    return torch.compile(inner)


@pytest.mark.parametrize("wrap", [AveragedModel, nn.DataParallel, _Wrapper], ids=["AveragedModel", "DataParallel", "DDP-like"])
def test_readability_names_the_wrapped_network(wrap):
    net = _net()
    wrapped = wrap(net)
    name = {AveragedModel: "an AveragedModel", nn.DataParallel: "a DataParallel", _Wrapper: "a _Wrapper"}[wrap]
    with pytest.raises(TypeError, match=rf"net: expected a NeuroView network, got {name} \(around a NeuroViewCNN\); "
                                        r"pass net\.module, the network it wraps"):
        nv.readability(wrapped, _batches())
    nv.readability(wrapped.module, _batches())  # the way out named works


@pytest.mark.parametrize("wrap", [AveragedModel, nn.DataParallel, _Wrapper], ids=["AveragedModel", "DataParallel", "DDP-like"])
def test_sparsify_names_the_wrapped_network(wrap):
    wrapped = wrap(_net())
    name = {AveragedModel: "an AveragedModel", nn.DataParallel: "a DataParallel", _Wrapper: "a _Wrapper"}[wrap]
    with pytest.raises(TypeError, match=rf"net: expected a NeuroViewCNN, a NeuroViewRNN .* got {name} "
                                        r"\(around a NeuroViewCNN\); pass net\.module, the network it wraps"):
        nv.sparsify(wrapped, _batches())


def test_sparsify_names_a_compiled_networks_orig_mod_as_readability_does():
    compiled = _compiled_like(_net())
    with pytest.raises(TypeError, match=r"net: expected a NeuroViewCNN, .* got a torch\.compile'd OptimizedModule \(around a "
                                        r"NeuroViewCNN\); pass the network it compiled, net\._orig_mod"):
        nv.sparsify(compiled, _batches())
    with pytest.raises(TypeError, match=r"got a torch\.compile'd OptimizedModule \(around a NeuroViewCNN\); pass the network "
                                        r"it compiled, net\._orig_mod"):
        require_neuroview(compiled)


def test_wrappers_within_wrappers_name_the_whole_path():
    wrapped = _compiled_like(_Wrapper(_net()))  # torch.compile(DDP(net))
    with pytest.raises(TypeError, match=r"got a torch\.compile'd OptimizedModule \(around a _Wrapper around a NeuroViewCNN\); "
                                        r"pass net\._orig_mod\.module"):
        require_neuroview(wrapped)


def test_a_wrapper_of_another_model_is_refused_as_before():
    with pytest.raises(TypeError, match=r"net: expected a NeuroView network \(nv\.wrap\(model, num_classes=\.\.\.\), a zoo "
                                        r"'nv_\*' model\), got _Wrapper$"):
        require_neuroview(_Wrapper(nn.Linear(2, 2)))
    with pytest.raises(TypeError, match=r"net: expected a NeuroViewCNN, a NeuroViewRNN .* got _Wrapper$"):
        nv.sparsify(_Wrapper(nn.Linear(2, 2)), _batches())


@pytest.mark.parametrize("wrap", [nn.DataParallel, AveragedModel], ids=["DataParallel", "AveragedModel"])
def test_a_compiled_network_inside_a_wrapper_names_its_orig_mod(wrap):
    # R8 finding 4: the walk stopped at the OptimizedModule (it forwards explain), advising net.module, which
    # readability then refused in turn; sparsify named net.module._orig_mod
    wrapped = wrap(_compiled_like(_net()))
    name = {nn.DataParallel: "a DataParallel", AveragedModel: "an AveragedModel"}[wrap]
    hint = rf"got {name} \(around an OptimizedModule around a NeuroViewCNN\); pass net\.module\._orig_mod, the network they wrap"
    with pytest.raises(TypeError, match=hint):
        nv.readability(wrapped, _batches())
    with pytest.raises(TypeError, match=hint):
        nv.sparsify(wrapped, _batches())
    nv.readability(wrapped.module._orig_mod, _batches())  # the way out named works
