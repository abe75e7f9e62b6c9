"""Review D of f9acc3d / d248cd2 / eac9c60 (the load-time pass that finds a zoo NeuroView-CNN's sites; load_weights).

- Two threads loading entries at once left every warning of the process silenced and ``torch.set_warn_always(True)``
  on: the pass saved and restored both process-wide switches without a lock, so the pass that ended last put back the
  other's "ignore". The pass now touches neither: what it warns is said at load.
- The pass runs the model's forward; a buffer that forward changes (a counter) stayed as the pass left it, so the
  loaded model's state was not the file's. Every buffer is put back after the pass.
- ``load_weights(arch_kwargs=...)`` checked the names against the file's architecture before the fit: an nv_lite file
  into nv_small_cnn gave a typo hint about nv_lite, not "the weights do not fit".
"""

from __future__ import annotations

import json
import threading
import warnings

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

import neuroview as nv
from neuroview.zoo import registry
from neuroview.zoo.pretrained import load_pretrained, save_pretrained
from neuroview.zoo.weights import ArchitectureError, load_weights

#: thread ident -> (entered, release): a Gate's first call in that thread says it is in the pass, then waits
_GATES: dict[int, tuple[threading.Event, threading.Event]] = {}


class Gate(nn.Module):
    """Identity; in a thread of :data:`_GATES`, its first call signals ``entered`` and waits for ``release``."""

    def forward(self, x):
        gate = _GATES.pop(threading.get_ident(), None)
        if gate is not None:
            gate[0].set()
            assert gate[1].wait(60)
        return x


class Counted(nn.Module):
    """A user's stem that counts the batches it saw (buffers of its state dict) and keeps the last batch's mean."""

    def __init__(self):
        super().__init__()
        self.register_buffer("seen", torch.zeros((), dtype=torch.long))
        self.register_buffer("last_mean", torch.zeros(()))

    def forward(self, x):
        self.seen += 1
        self.last_mean.copy_(x.mean())
        return x


def m7_gated(*, num_classes: int = 2) -> nn.Module:
    """A user's module: the Gate ahead of the NeuroView-CNN (a site search holds a lock, this pass part does not)."""
    bb = nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(4, num_classes))
    return nn.Sequential(Gate(), nv.NeuroViewCNN(bb, num_classes))


def m7_counted(*, num_classes: int = 2) -> nn.Module:
    bb = nn.Sequential(Counted(), nn.Conv1d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(4, num_classes))
    return nv.NeuroViewCNN(bb, num_classes)


def m7_same(*, num_classes: int = 2) -> nn.Module:
    """padding='same' with an even kernel: torch warns (once a process unless set_warn_always)."""
    bb = nn.Sequential(nn.Conv1d(1, 4, 4, padding="same"), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(4, num_classes))
    return nv.NeuroViewCNN(bb, num_classes)


BUILDERS = (m7_gated, m7_counted, m7_same)


@pytest.fixture(autouse=True)
def registered():
    for f in BUILDERS:
        nv.register_model(f)
    yield
    for f in BUILDERS:
        registry._MODELS.pop(f.__name__, None)


def _saved(arch: str, root, x: torch.Tensor) -> nn.Module:
    torch.manual_seed(0)
    net = nv.create_model(arch).eval()
    with torch.no_grad():
        net(x)  # the sites, found on a real batch
    save_pretrained(net, f"{arch}.t", architecture=arch, arch_kwargs={}, dataset={"name": "toy"}, recipe=None,
                    seed=0, metrics={}, root=root)
    return net


def test_two_overlapping_loads_leave_the_process_wide_warning_switches_as_they_were(tmp_path):
    _saved("m7_gated", tmp_path, torch.randn(4, 1, 20))
    always, filters = torch.is_warn_always_enabled(), list(warnings.filters)
    gates = [(threading.Event(), threading.Event()) for _ in range(2)]
    out, errors = {}, []

    def load(i):
        _GATES[threading.get_ident()] = gates[i]
        try:
            out[i] = load_pretrained("m7_gated.t", root=tmp_path)
        except BaseException as e:  # noqa: BLE001 - said by the main thread
            errors.append(e)

    a, b = threading.Thread(target=load, args=(0,)), threading.Thread(target=load, args=(1,))
    try:
        a.start()
        assert gates[0][0].wait(60)  # A is inside its pass
        b.start()
        assert gates[1][0].wait(60)  # B too: the two passes overlap
        # while both passes run, this thread's warnings are as it set them (were: all ignored, torch's said every time)
        assert list(warnings.filters) == filters and torch.is_warn_always_enabled() == always
        gates[0][1].set()
        a.join(60)  # A ends first, B last: B restored what it saved, A's "ignore" (was)
        gates[1][1].set()
        b.join(60)
    finally:
        for g in gates:
            g[1].set()
        _GATES.clear()
    assert not errors and all(out[i][1].sites is not None for i in (0, 1))  # found by the pass
    assert torch.is_warn_always_enabled() == always  # was: True for good
    assert list(warnings.filters) == filters  # was: ('ignore', None, Warning, None, 0) first, for good


def test_a_warning_of_the_load_time_pass_is_said_at_load(tmp_path):
    x = torch.randn(4, 1, 20)
    _saved("m7_same", tmp_path, x)
    always = torch.is_warn_always_enabled()
    torch.set_warn_always(True)  # torch's warn-once warns at every call: this test sees it whatever ran before
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            back = load_pretrained("m7_same.t", root=tmp_path)
        assert back.sites is not None
        assert any("padding='same'" in str(w.message) for w in seen)  # said at load now (was: kept for the first batch)
    finally:
        torch.set_warn_always(always)


def test_the_load_time_pass_leaves_every_buffer_as_the_file_holds_it(tmp_path):
    x = torch.randn(5, 1, 30)
    net = _saved("m7_counted", tmp_path, x)
    assert int(net.backbone[0].seen) > 0  # the saved network had seen batches: its file holds that count
    file = load_file(str(tmp_path / "m7_counted.t.safetensors"))
    want_seen, want_mean = int(file["backbone.0.seen"]), float(file["backbone.0.last_mean"])
    back = load_pretrained("m7_counted.t", root=tmp_path)
    assert back.sites is not None  # the pass ran (the sites found at load)
    assert int(back.backbone[0].seen) == want_seen and float(back.backbone[0].last_mean) == want_mean  # was: seen + 1
    state = back.state_dict()
    assert set(state) == set(file)
    assert [k for k in file if not torch.equal(state[k], file[k])] == []  # was: ['backbone.0.seen', 'backbone.0.last_mean']


def _lite_file(tmp_path) -> str:
    torch.manual_seed(0)
    lite = nv.create_model("nv_lite", in_channels=1, num_classes=2).eval()
    with torch.no_grad():
        lite(torch.randn(4, 1, 64))
    path = str(tmp_path / "lite.safetensors")
    save_file({k: v.contiguous() for k, v in lite.state_dict().items()}, path,
              metadata={"neuroview.architecture": "nv_lite", "neuroview.arch_kwargs": json.dumps({"in_channels": 1, "num_classes": 2})})
    return path


@pytest.mark.parametrize("what", ["path", "--weights"])
def test_a_file_of_another_network_is_refused_as_not_fitting_before_its_arch_kwargs_names(tmp_path, what):
    path = _lite_file(tmp_path)
    model = nv.create_model("nv_small_cnn", in_channels=1, num_classes=2, widths=[4])
    with pytest.raises(ArchitectureError, match=f"{what}: the weights do not fit a NeuroViewCNN"):  # was: TypeError
        load_weights(model, path, what=what, arch_kwargs={"widths": [4]})  # the model's own builder arguments


def test_a_typo_in_arch_kwargs_is_named_as_the_command_line_names_it(tmp_path):
    path = _lite_file(tmp_path)
    model = nv.create_model("nv_lite", in_channels=1, num_classes=2)
    with pytest.raises(TypeError, match=r"^arch_kwargs: widht: unexpected keyword argument 'widht' of nv_lite"):
        load_weights(model, path, arch_kwargs={"widht": 4})
    with pytest.raises(TypeError, match=r"^--model-args: widht: unexpected keyword argument 'widht' of nv_lite"):
        load_weights(model, path, what="--weights", arch_kwargs={"widht": 4})  # was: "arch_kwargs: ..."
    assert model.classifier is None  # a head built to compare is taken down again
