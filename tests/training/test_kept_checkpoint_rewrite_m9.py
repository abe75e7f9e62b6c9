"""A checkpoint kept aside by a new run (``<name>-v<N>.ckpt``) names its own files by their kept names (review revE,
findings 2 and 8). One holding objects a ``weights_only`` load refuses (a path in its hyper-parameters) was renamed and
then passed over without a word: it still names its best by the old name. It is not unpickled (the new run did not ask
to read it, and neuroview resumes no such file): a warning says so and names the kept files. A kept checkpoint is
rewritten from its mapped file (``mmap``), not loaded whole."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest
import torch

from neuroview.training.earlier_runs import _name_kept_inside
from neuroview.zoo.weights import read_checkpoint

KEY = "Checkpoint{'monitor': 'val_acc', 'mode': 'max'}"


def _checkpoint(folder: pathlib.Path, **hparams) -> dict:
    best = str(folder / "best.ckpt")
    return {"state_dict": {"w": torch.arange(6.0).reshape(2, 3)}, "hyper_parameters": {"lr": 0.1, **hparams},
            "callbacks": {KEY: {"best_model_path": best, "kth_best_model_path": best, "best_k_models": {best: torch.tensor(0.5)},
                                "last_model_path": str(folder / "last.ckpt"), "dirpath": str(folder)}}}


def _moved(folder: pathlib.Path) -> dict:
    return {os.path.realpath(folder / "last.ckpt"): folder / "last-v1.ckpt",
            os.path.realpath(folder / "best.ckpt"): folder / "best-v1.ckpt"}


def test_a_plain_kept_checkpoint_names_its_kept_files(tmp_path):
    torch.save(_checkpoint(tmp_path), tmp_path / "last-v1.ckpt")
    _name_kept_inside(tmp_path / "last-v1.ckpt", _moved(tmp_path))
    got = torch.load(tmp_path / "last-v1.ckpt", weights_only=True)
    state = got["callbacks"][KEY]
    assert state["best_model_path"] == state["kth_best_model_path"] == str(tmp_path / "best-v1.ckpt")
    assert list(state["best_k_models"]) == [str(tmp_path / "best-v1.ckpt")]
    assert state["last_model_path"] == str(tmp_path / "last-v1.ckpt")
    assert torch.equal(got["state_dict"]["w"], torch.arange(6.0).reshape(2, 3))  # read from the mapped file
    assert state["dirpath"] == str(tmp_path) and got["hyper_parameters"] == {"lr": 0.1}


def test_a_kept_checkpoint_with_a_path_in_its_hparams_is_not_passed_over_silently(tmp_path):
    torch.save(_checkpoint(tmp_path, data=pathlib.Path("data/x")), tmp_path / "last-v1.ckpt")
    before = (tmp_path / "last-v1.ckpt").read_bytes()
    with pytest.warns(UserWarning) as caught:
        _name_kept_inside(tmp_path / "last-v1.ckpt", _moved(tmp_path))
    said = str(caught[-1].message)
    assert "last-v1.ckpt holds objects a weights_only load refuses (pathlib." in said
    assert "were not renamed inside it" in said and "best.ckpt as best-v1.ckpt" in said and "last.ckpt as last-v1.ckpt" in said
    assert (tmp_path / "last-v1.ckpt").read_bytes() == before  # never unpickled, nor half rewritten
    # the file is one neuroview does not resume anyway, the kept names rewritten or not
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        read_checkpoint(tmp_path / "last-v1.ckpt", "ckpt_path")


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", b"PK\x03\x04 cut short"])
def test_a_kept_file_that_is_no_checkpoint_stays_as_it_is_without_a_warning(tmp_path, content, recwarn):
    (tmp_path / "last-v1.ckpt").write_bytes(content)
    _name_kept_inside(tmp_path / "last-v1.ckpt", _moved(tmp_path))
    assert (tmp_path / "last-v1.ckpt").read_bytes() == content
    assert not [w for w in recwarn if "weights_only" in str(w.message)]


def test_a_kept_checkpoint_of_the_legacy_format_is_still_rewritten(tmp_path):
    torch.save(_checkpoint(tmp_path), tmp_path / "last-v1.ckpt", _use_new_zipfile_serialization=False)  # not mappable
    _name_kept_inside(tmp_path / "last-v1.ckpt", _moved(tmp_path))
    got = torch.load(tmp_path / "last-v1.ckpt", weights_only=True)
    assert got["callbacks"][KEY]["best_model_path"] == str(tmp_path / "best-v1.ckpt")


PEAK = r'''
import os, sys, pathlib, threading, time
from neuroview.training.earlier_runs import _name_kept_inside
d = pathlib.Path(sys.argv[1])

def anon():  # the process's anonymous memory: a mapped file's pages are the file's, not held twice
    return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("RssAnon:"))

peak, done = [0], threading.Event()
def poll():
    while not done.is_set():
        peak[0] = max(peak[0], anon())
        time.sleep(0.0005)
start = anon()
t = threading.Thread(target=poll)
t.start()
_name_kept_inside(d / "last-v1.ckpt", {os.path.realpath(d / "best.ckpt"): d / "best-v1.ckpt"})
done.set()
t.join()
print(peak[0] - start)
'''


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the process's memory from /proc")
def test_rewriting_a_kept_checkpoint_does_not_hold_its_tensors_twice(tmp_path):
    size = 64 * 2**20
    ck = _checkpoint(tmp_path)
    ck["state_dict"]["w"] = torch.ones(size // 4)
    torch.save(ck, tmp_path / "last-v1.ckpt")
    del ck
    out = subprocess.run([sys.executable, "-c", PEAK, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    extra = int(out.stdout.split()[-1])
    # loaded whole, then serialized: 2 x the file more at the peak (384 MB for 192 MB); mapped: the serialized copy
    assert extra < 1.5 * size, f"{extra / 2**20:.0f} MB more at the peak for a {size / 2**20:.0f} MB checkpoint"
    got = torch.load(tmp_path / "last-v1.ckpt", weights_only=True, mmap=True)
    assert got["callbacks"][KEY]["best_model_path"] == str(tmp_path / "best-v1.ckpt")
    assert torch.equal(got["state_dict"]["w"][-3:], torch.ones(3))
