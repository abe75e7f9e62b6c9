"""own_rng gives back the generator of the device it is given where that is MPS or XPU (s24, F2): it forked CUDA's
only, and finetune_sparse seeds an MPS/XPU network's device generator inside it, so the caller's dropout draws there
were reseeded for good. No such machine here: torch.mps's and torch.xpu's generator functions are replaced by fakes
that keep one state each, and the CPU path is checked unchanged."""

from __future__ import annotations

import pytest
import torch

from neuroview.core._utils import own_rng


class _FakeGenerator:
    """One device generator: ``manual_seed`` and draws move its state; ``get_rng_state``/``set_rng_state`` as torch's."""

    def __init__(self, kind: str):
        self.kind, self.state, self.calls = kind, torch.tensor([7, 7, 7], dtype=torch.uint8), []

    def install(self, monkeypatch) -> "_FakeGenerator":
        mod = getattr(torch, self.kind)
        monkeypatch.setattr(mod, "get_rng_state", self.get_rng_state)
        monkeypatch.setattr(mod, "set_rng_state", self.set_rng_state)
        monkeypatch.setattr(mod, "manual_seed", self.manual_seed)
        return self

    def get_rng_state(self, device=None):
        self.calls.append(("get", device))
        return self.state.clone()

    def set_rng_state(self, new_state, device=None):
        self.calls.append(("set", device))
        self.state = new_state.clone()

    def manual_seed(self, seed: int):
        self.state = torch.tensor([seed % 256] * 3, dtype=torch.uint8)


@pytest.mark.parametrize("kind", ["mps", "xpu"])
def test_own_rng_gives_back_an_mps_or_xpu_device_generator(monkeypatch, kind):
    gen = _FakeGenerator(kind).install(monkeypatch)
    cpu = torch.get_rng_state()
    with own_rng(torch.device(kind)):
        getattr(torch, kind).manual_seed(123)  # what finetune_sparse's _seed does to the network's device
        assert gen.state.tolist() == [123, 123, 123]
        torch.rand(3)
    assert gen.state.tolist() == [7, 7, 7]  # was [123, 123, 123]: the caller's generator reseeded for good
    assert torch.equal(torch.get_rng_state(), cpu)
    assert [c[0] for c in gen.calls] == ["get", "set"] and torch.device(gen.calls[0][1]).type == kind


def test_own_rng_gives_back_a_device_generator_by_string_and_after_an_error(monkeypatch):
    gen = _FakeGenerator("mps").install(monkeypatch)
    with pytest.raises(RuntimeError, match="inside"), own_rng("mps"):
        torch.mps.manual_seed(9)
        raise RuntimeError("inside")
    assert gen.state.tolist() == [7, 7, 7]


@pytest.mark.parametrize("device", [None, "cpu", torch.device("cpu"), "meta"])
def test_own_rng_cpu_path_is_unchanged_and_touches_no_other_device(monkeypatch, device):
    gens = [_FakeGenerator(kind).install(monkeypatch) for kind in ("mps", "xpu")]
    torch.manual_seed(4)
    expected = torch.rand(5)  # the caller's next draws, had the block drawn nothing
    torch.manual_seed(4)
    with own_rng(device):
        torch.manual_seed(99)
        torch.rand(100)
    assert torch.equal(torch.rand(5), expected)
    assert all(not g.calls for g in gens)  # no MPS or XPU generator read or set for a CPU network
