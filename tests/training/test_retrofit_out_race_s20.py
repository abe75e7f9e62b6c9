"""Two ``neuroview retrofit --out F`` runs without ``--overwrite`` (probe P8, finding 2): the start-up check found no
``F``, another run wrote ``F`` during the fit, and the final rename replaced it without a word, both runs exit 0.
The other run's file is made at the moment this run serializes its weights (after the check), never by timing."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from neuroview.training import retrofit_out

THEIRS = b"the other run's weights"


def _args(out, overwrite):
    return SimpleNamespace(out=str(out), overwrite=overwrite, source="small_cnn.digits", arch=None, arch_kwargs=None,
                           data=None)


def _net():
    net = nn.Linear(2, 3)
    with torch.no_grad():
        net.weight.fill_(0.5)
        net.bias.copy_(torch.tensor([1.0, 2.0, 3.0]))
    return net


@pytest.fixture
def other_run_meanwhile(monkeypatch, tmp_path):
    out = tmp_path / "rf.safetensors"
    real = retrofit_out.save_bytes

    def serialized_while_another_run_wrote(tensors, metadata=None):
        out.write_bytes(THEIRS)
        return real(tensors, metadata=metadata)

    monkeypatch.setattr(retrofit_out, "save_bytes", serialized_while_another_run_wrote)
    return out


def test_without_overwrite_the_file_written_meanwhile_stays(other_run_meanwhile, tmp_path, capsys):
    args = _args(out := other_run_meanwhile, overwrite=False)
    assert retrofit_out.check_out(args) is None  # none there at the start
    assert retrofit_out.write_out(args, _net(), _net(), None) == 2
    assert out.read_bytes() == THEIRS
    err = capsys.readouterr().err
    assert f"out: {out} exists" in err and "another run" in err and "--overwrite" in err and "Errno" not in err, err
    assert os.listdir(tmp_path) == ["rf.safetensors"]  # no temporary left


def test_with_overwrite_it_is_replaced(other_run_meanwhile, tmp_path):
    args = _args(out := other_run_meanwhile, overwrite=True)
    assert retrofit_out.write_out(args, _net(), _net(), None) == 0
    back = load_file(out)
    assert torch.equal(back["bias"], torch.tensor([1.0, 2.0, 3.0])) and torch.equal(back["weight"], torch.full((3, 2), 0.5))
    assert os.listdir(tmp_path) == ["rf.safetensors"]


def test_a_new_file_is_written_without_overwrite(tmp_path, capsys):
    args = _args(out := tmp_path / "rf.safetensors", overwrite=False)
    assert retrofit_out.write_out(args, _net(), _net(), None) == 0
    assert torch.equal(load_file(out)["bias"], torch.tensor([1.0, 2.0, 3.0]))
    assert f"written to {out}" in capsys.readouterr().out


def test_a_symlink_to_a_missing_file_is_refused_before_the_fit(tmp_path):
    """review R9, finding 3: ``exists()`` follows the link and finds nothing, so the check let the fit run; the
    write after it met the link and blamed "another run" (the network lost, exit 2)."""
    (tmp_path / "weights").mkdir()
    os.symlink(tmp_path / "weights" / "final.safetensors", out := tmp_path / "rf.safetensors")
    why = retrofit_out.check_out(_args(out, overwrite=False))
    assert why is not None and "symlink to a missing file" in why and "--overwrite" in why, why
    assert "another run" not in why and str(tmp_path / "weights" / "final.safetensors") in why, why
    assert os.path.islink(out) and os.listdir(tmp_path / "weights") == []  # nothing written, the link left


def test_with_overwrite_a_symlink_to_a_missing_file_is_replaced_by_the_file(tmp_path):
    os.symlink(tmp_path / "gone.safetensors", out := tmp_path / "rf.safetensors")
    args = _args(out, overwrite=True)
    assert retrofit_out.check_out(args) is None
    assert retrofit_out.write_out(args, _net(), _net(), None) == 0
    assert not os.path.islink(out) and torch.equal(load_file(out)["bias"], torch.tensor([1.0, 2.0, 3.0]))
    assert sorted(os.listdir(tmp_path)) == ["rf.safetensors"]
