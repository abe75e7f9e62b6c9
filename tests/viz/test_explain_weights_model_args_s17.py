"""``neuroview explain --weights`` and a zoo file whose record leaves out a setting its entry gives (c1c1578).

A copy of an installed zoo entry's file saved before its record held ``norm_floor``, whose tensors are not the entry's
(an earlier release), is refused: which floor it was trained with, nothing tells. ``load_weights(arch_kwargs=)`` says
it from Python; on the command line the report did not pass ``--model-args`` on to it, so the file could not be
explained at all, and the refusal named ``load_weights(..., arch_kwargs=...)``, which no command line can call. Now
``--model-args`` supplies it there, and the refusal names ``--model-args``.
"""

from __future__ import annotations

import argparse
import json

import pytest
import torch
from safetensors.torch import save_file

import neuroview as nv
from neuroview.viz.report import main, resolve_model
from neuroview.zoo.weights import ArchitectureError

NAME, ARCH = "nv_small_cnn.toy", "nv_small_cnn"
KW = {"in_channels": 1, "num_classes": 3, "quantizer": "soft", "widths": [4]}
X = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def _net(**kw):
    torch.manual_seed(1)
    net = nv.create_model(ARCH, **KW, **kw)
    net.eval()(X)  # its sites and head, found on a first batch
    return net


def _state(floor: float, shift: float = 0.0) -> dict:
    """A network's tensors whose running variances are small enough that a floor of 0.1 moves its logits."""
    net = _net(norm_floor=floor)
    with torch.no_grad():
        net.norm.running_var.copy_(torch.linspace(1e-4, 2.0, len(net.norm.running_var)))
        net.classifier.weight.add_(shift)
    return {k: v.clone().contiguous() for k, v in net.state_dict().items()}


def _write(path, state: dict, kwargs: dict) -> str:
    meta = {"neuroview.architecture": ARCH, "neuroview.arch_kwargs": json.dumps(kwargs), "neuroview.name": NAME}
    save_file(state, str(path), metadata=meta)
    return str(path)


def _reference(state: dict, floor: float) -> torch.Tensor:
    """The tensors in a network built with ``floor``, loaded by torch itself (no neuroview check)."""
    net = _net(norm_floor=floor)
    net.load_state_dict(state)
    with torch.no_grad():
        return net.eval()(X)


@pytest.fixture
def old_copy(tmp_path, monkeypatch):
    """An installed zoo entry trained with ``norm_floor: 0.0``, and a file naming it whose record leaves the floor out
    and whose tensors are another network's (trained with the default floor, 0.1)."""
    root = tmp_path / "zoo"
    root.mkdir()
    _write(root / f"{NAME}.safetensors", _state(0.0), {**KW, "norm_floor": 0.0})
    entry = {"architecture": ARCH, "arch_kwargs": {**KW, "norm_floor": 0.0}, "file": f"{NAME}.safetensors"}
    (root / "manifest.json").write_text(json.dumps({"format": 1, "entries": {NAME: entry}}))
    monkeypatch.setenv("NEUROVIEW_CHECKPOINTS", str(root))
    other = _state(0.1, shift=1.0)
    return _write(tmp_path / "old.safetensors", other, KW), other


def _args(weights: str, model_args: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(weights=weights, model=ARCH, model_args=model_args, ckpt=None, zoo=None)


def test_the_floor_matters_here(old_copy):
    _, other = old_copy
    assert (_reference(other, 0.0) - _reference(other, 0.1)).abs().max() > 0.05  # the case can fail


def test_model_args_give_the_floor_the_file_does_not_record(old_copy):
    path, other = old_copy
    for floor in (0.1, 0.0):  # what is said is what it is built and loaded with: either, as told
        model, about, _ = resolve_model(_args(path, json.dumps({"norm_floor": floor})))  # was refused for both
        assert model.norm.floor == floor and about["weights"] == path
        with torch.no_grad():
            torch.testing.assert_close(model(X), _reference(other, floor), rtol=0, atol=0)


def test_without_them_the_refusal_names_the_command_line_s_ways(old_copy, tmp_path, capsys):
    path, _ = old_copy
    with pytest.raises(ArchitectureError, match=r"--weights: .*does not record norm_floor.*Say it: --model-args "
                                                r"'\{\"norm_floor\": \.\.\.\}', or explain the entry: --model nv_small_cnn\.toy "
                                                r"without --weights$"):
        resolve_model(_args(path))
    assert main(["--model", ARCH, "--weights", path, "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--model-args '{\"norm_floor\": ...}'" in err and "load_weights(" not in err
    # a setting the file records is not overruled by --model-args (refused before any load, as before)
    with pytest.raises(ValueError, match=r"--model-args: old\.safetensors was built with other arguments: quantizer='hard'"):
        resolve_model(_args(path, '{"quantizer": "hard", "norm_floor": 0.1}'))
