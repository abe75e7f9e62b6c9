"""The commands' ``--out`` and what an entry made of a run records (probes P4, finding 2 and 3, and P1, finding 3):

- an ``--out`` that cannot be written (a read-only or immutable folder) was found only after the work, in a bare
  PermissionError traceback, the work lost (sparsify, minirocket, retrofit); a final save that fails since (a disk
  filled during the work) was a traceback too: now a refusal before the work, and the save's error said with exit 2;
- ``sparsify --name <a name too long for the file system>`` passed its check before the work and failed after it;
- ``neuroview sparsify <run.ckpt>`` wrote ``seed: null`` though the run was seeded: `neuroview fit` now records its
  ``seed_everything`` in the checkpoint, and the entry says it (or, for a checkpoint without it, says it is not known).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

import neuroview as nv

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def readonly(tmp_path):
    """A folder nothing can be written into: immutable (``chattr +i``: root ignores ``chmod``), else ``chmod 555``;
    made writable again afterwards, whatever happened."""
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() == 0:
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(ro)], capture_output=True).returncode:
            pytest.skip("running as root, and this file system takes no chattr +i: no folder is read-only to root")
        try:
            yield ro
        finally:
            subprocess.run(["chattr", "-i", str(ro)], check=True)
    else:
        ro.chmod(0o555)
        try:
            yield ro
        finally:
            ro.chmod(0o755)


def _series(path: Path, n: int = 30, length: int = 32, classes: int = 3) -> str:
    rng = np.random.default_rng(0)
    y = np.arange(n) % classes
    X = (rng.standard_normal((n, 1, length)) + y[:, None, None]).astype("float32")  # classes apart: a real fit
    np.savez(path, X=X, y=y)
    return str(path)


def _images(path: Path, n: int = 200) -> str:
    from sklearn.datasets import load_digits

    d = load_digits()
    np.savez(path, X=(d.data[:n] / 16).reshape(-1, 1, 8, 8).astype("float32"), y=d.target[:n])
    return str(path)


# ---------------------------------------------------------------------------------------- finding 2: --out
def test_an_unwritable_out_is_refused_before_the_work(tmp_path, readonly, capsys):
    from neuroview.training.minirocket_cli import main as minirocket_main
    from neuroview.training.retrofit import main as retrofit_main
    from neuroview.zoo.pretrained import refuse_existing

    with pytest.raises(ValueError, match=r"^out: expected a folder to write zoo entries into, got '.*ro/zoo', to be made "
                                         r"in '.*ro', which cannot be written \((PermissionError|OSError): "):
        refuse_existing(readonly / "zoo", ["small_cnn.a"], overwrite=False)
    data = _series(tmp_path / "s.npz")
    assert minirocket_main(["--data", data, "--num-features", "84", "--out", str(readonly / "mr")]) == 2
    err = capsys.readouterr()
    assert "neuroview minirocket: out: expected a folder to write zoo entries into" in err.err and "cannot be written" in err.err
    assert "test accuracy" not in err.out  # no work done
    torch.manual_seed(0)
    std = nv.create_model("small_cnn", widths=[8])
    from safetensors.torch import save_file

    save_file(std.state_dict(), tmp_path / "w.safetensors")
    args = [str(tmp_path / "w.safetensors"), "--arch", "small_cnn", "--arch-kwargs", '{"widths": [8]}',
            "--data", _images(tmp_path / "d.npz"), "--out", str(readonly / "w.safetensors")]
    assert retrofit_main(args) == 2
    err = capsys.readouterr()
    assert f"neuroview retrofit: out: {readonly / 'w.safetensors'} cannot be written: its folder '{readonly}' takes no new file (" in err.err
    assert "retrofit of" not in err.out  # refused before the fit
    assert list(readonly.iterdir()) == []


def test_a_final_save_that_fails_is_said_with_exit_2_and_the_folder_kept(tmp_path, monkeypatch, capsys):
    from neuroview.training.minirocket_cli import main as minirocket_main
    from neuroview.zoo import pretrained

    out, data = tmp_path / "mr", _series(tmp_path / "s.npz")
    assert minirocket_main(["--data", data, "--num-features", "84", "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()

    def full(*a, **k):  # the disk filled during the work: the export's write fails
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pretrained, "save_pretrained_all", full)
    assert minirocket_main(["--data", data, "--num-features", "84", "--out", str(out), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"neuroview minirocket: out: could not write into '{out}' (OSError: [Errno 28] No space left")
    assert "Traceback" not in err and {p.name: p.read_bytes() for p in out.iterdir()} == before
    # retrofit's --out file alike: said, exit 2, an earlier file at --out kept
    from neuroview.training import retrofit_out
    from neuroview.training.retrofit import main as retrofit_main

    monkeypatch.setattr(retrofit_out, "atomic_write", full)
    torch.manual_seed(0)
    from safetensors.torch import save_file

    save_file(nv.create_model("small_cnn", widths=[8]).state_dict(), tmp_path / "w.safetensors")
    (tmp_path / "nv.safetensors").write_bytes(b"earlier")
    assert retrofit_main([str(tmp_path / "w.safetensors"), "--arch", "small_cnn", "--arch-kwargs", '{"widths": [8]}', "--data",
                          _images(tmp_path / "d.npz"), "--out", str(tmp_path / "nv.safetensors"), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"neuroview retrofit: out: could not write into '{tmp_path / 'nv.safetensors'}' (OSError: [Errno 28]")
    assert (tmp_path / "nv.safetensors").read_bytes() == b"earlier"


# ----------------------------------------------------------------------------------- finding 3: --name length
def test_sparsify_refuses_a_name_too_long_for_the_file_system_before_the_work(tmp_path, capsys):
    from neuroview.training.sparsify_cli import main as sparsify_main

    name = "nv_small_cnn." + "a" * 250
    assert sparsify_main(["nv_small_cnn.digits", "--name", name, "--out", str(tmp_path / "sp")]) == 2
    captured = capsys.readouterr()
    assert "neuroview sparsify: --name: expected a name of at most 229 characters" in captured.err
    assert "test split" not in captured.out and not (tmp_path / "sp").exists()  # refused before the work


# ------------------------------------------------------------------------------------ P1 finding 3: the seed
def test_a_fit_records_its_seed_and_sparsify_of_its_checkpoint_says_it(tmp_path, monkeypatch, capsys):
    from neuroview.training.cli import cli_main
    from neuroview.training.sparsify_cli import main as sparsify_main
    from neuroview.zoo.pretrained import read_manifest

    monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)  # Lightning sets it; put back as it was afterwards
    cli_main(["fit", "--config", str(REPO / "recipes" / "digits_nv_small_cnn.yaml"), "--seed_everything", "7",
              "--trainer.max_steps", "3", "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false",
              "--trainer.default_root_dir", str(tmp_path / "run")], run=True)
    ckpt = next((tmp_path / "run").rglob("last.ckpt"))
    saved = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert saved["neuroview_seed"] == 7
    out = tmp_path / "zoo"
    assert sparsify_main([str(ckpt), "--out", str(out), "--name", "nv_small_cnn.run"]) == 0
    entry = read_manifest(out)["nv_small_cnn.run"]
    assert entry["seed"] == 7 and entry["recipe"] is None
    assert entry["training"]["checkpoint"] == str(ckpt) and set(entry["training"]["not_recorded"]) == {"recipe"}
    # a checkpoint written before fits recorded their seed: null, and the entry says why
    from neuroview.training.sparsify_cli import _run_record

    del saved["neuroview_seed"]
    torch.save(saved, tmp_path / "old.ckpt")
    seed, record = _run_record(str(tmp_path / "old.ckpt"))
    assert seed is None and "records no seed_everything" in record["not_recorded"]["seed"]
    json.dumps(record)  # a manifest's JSON


# ----------------------------------------------------------------- review R5 of e1f51a3: findings 2, 3 and 4
def test_minirocket_writes_its_two_entries_as_one_when_the_second_file_fails(tmp_path, monkeypatch, capsys):
    # R5-2: the sparse entry's save failing after the dense one's left a new dense entry beside the earlier sparse one
    from neuroview import _io
    from neuroview.training.minirocket_cli import main as minirocket_main
    from neuroview.zoo.pretrained import read_manifest

    out, data = tmp_path / "mr", _series(tmp_path / "s.npz")
    assert minirocket_main(["--data", data, "--num-features", "84", "--max-k90", "10", "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert read_manifest(out)["nv_minirocket.s"]["arch_kwargs"]["num_features"] == 84
    capsys.readouterr()
    write, tried = _io.atomic_write, []

    def second_fails(path, data):  # the disk filled between the two entries' files
        tried.append(Path(path).name)
        if Path(path).name.endswith("_sparse.safetensors"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return write(path, data)

    monkeypatch.setattr(_io, "atomic_write", second_fails)
    assert minirocket_main(["--data", data, "--num-features", "168", "--max-k90", "10", "--out", str(out),
                            "--overwrite"]) == 2
    assert tried[:2] == ["nv_minirocket.s.safetensors", "nv_minirocket.s_sparse.safetensors"]  # the dense one was written
    err = capsys.readouterr().err
    assert "(OSError: [Errno 28] No space left on device)" in err and "free the disk, and run the command again" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # both entries the earlier run's, as said
    monkeypatch.setattr(_io, "atomic_write", write)
    assert minirocket_main(["--data", data, "--num-features", "168", "--max-k90", "10", "--out", str(out),
                            "--overwrite"]) == 0
    entries = read_manifest(out)
    assert [entries[n]["arch_kwargs"]["num_features"] for n in ("nv_minirocket.s", "nv_minirocket.s_sparse")] == [168, 168]


def test_a_tilde_data_file_is_read_checked_and_recorded_as_the_home_folder_s(tmp_path, monkeypatch):
    # R5-4: the entry recorded <cwd>/~/s.npz (no such file), and minirocket refused the file
    from neuroview.training.data_arg import data_module
    from neuroview.training.minirocket_cli import data_spec
    from neuroview.training.sparsify_cli import _data_spec

    (tmp_path / "home").mkdir()
    (tmp_path / "cwd").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path / "cwd")
    real = _series(tmp_path / "home" / "s.npz")
    assert data_spec("~/s.npz")["init_args"]["path"] == real
    assert _data_spec("~/s.npz", data_module("~/s.npz"))["init_args"]["path"] == real
    with pytest.raises(FileNotFoundError, match=r"--data: no such file '~/none.npz' \(.*home/none\.npz\)"):
        data_spec("~/none.npz")


def _fit(root: Path, *args: str) -> Path:
    from neuroview.training.cli import cli_main

    cli_main(["fit", "--config", str(REPO / "recipes" / "digits_nv_small_cnn.yaml"), "--trainer.max_epochs", "2",
              "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1", "--trainer.enable_progress_bar",
              "false", "--trainer.default_root_dir", str(root), *args], run=True)
    return next(root.rglob("last.ckpt"))


def test_the_checkpoint_records_the_run_s_seed_not_the_process_s_nor_the_resume_s(tmp_path, monkeypatch):
    # R5-3: an unseeded run started from a seeded parent recorded the parent's seed; a resume recorded its own
    monkeypatch.setenv("PL_GLOBAL_SEED", "5")  # a seeded notebook or driver's, inherited
    ckpt = _fit(tmp_path / "unseeded", "--seed_everything", "false")
    assert torch.load(ckpt, map_location="cpu", weights_only=True)["neuroview_seed"] is None
    every = ["--trainer.callbacks+=pytorch_lightning.callbacks.ModelCheckpoint", "--trainer.callbacks.dirpath",
             str(tmp_path / "every"), "--trainer.callbacks.save_top_k", "-1", "--trainer.callbacks.every_n_epochs", "1"]
    _fit(tmp_path / "seven", "--seed_everything", "7", *every)
    first, second = sorted((tmp_path / "every").glob("epoch=*.ckpt"))
    assert torch.load(first, map_location="cpu", weights_only=True)["neuroview_seed"] == 7
    # resumed without repeating --seed_everything 7: the recipe's seed_everything 0 applies, the run is the seed-7 one's
    resumed = torch.load(_fit(tmp_path / "resumed", "--ckpt_path", str(first)), map_location="cpu", weights_only=True)
    whole = torch.load(second, map_location="cpu", weights_only=True)
    assert all(torch.equal(whole["state_dict"][k], v) for k, v in resumed["state_dict"].items())  # the same run
    assert resumed["epoch"] == 1 and resumed["neuroview_seed"] == 7
