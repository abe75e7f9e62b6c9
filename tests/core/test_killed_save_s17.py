"""``Explanation.save`` killed (SIGKILL: no Python handler runs) over an earlier explanation keeps it (probe s17,
finding 3): the earlier pair was moved to hidden ``.old`` files nothing mentioned, load failed on the missing
sidecar, and saving again refused, calling its own half-written tensors "no neuroview explanation's"."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

import neuroview as nv

#: A child that saves the explanation of a seed-argv[2] network to argv[1], killing itself with SIGKILL where
#: argv[3] says: "tensors" (as the .safetensors is written), "sidecar" (the tensors in place, as the .json is
#: written), "after" (both in place, before the leftovers are removed), "none".
CHILD = textwrap.dedent("""
    import os, signal, sys, torch
    torch.set_num_threads(1)
    import neuroview._io as io
    sys.path.insert(0, sys.argv[4])
    from test_killed_save_s17 import _explanation
    where = sys.argv[3]
    real, settle = io.atomic_write, getattr(io, "_settle", None)  # the step after both are in place
    def write(path, data):
        if (where, path.suffix) in (("tensors", ".safetensors"), ("sidecar", ".json")):
            os.kill(os.getpid(), signal.SIGKILL)
        real(path, data)
    def settled(*a, **k):
        if where == "after":
            os.kill(os.getpid(), signal.SIGKILL)
        settle(*a, **k)
    io.atomic_write = write
    if settle is not None:
        io._settle = settled
    _explanation(int(sys.argv[2])).save(sys.argv[1])
""")


def _explanation(seed: int):
    torch.manual_seed(seed)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()), 3, input_shape=(1, 8, 8)).eval()
    return net.explain(torch.rand(5, 1, 8, 8))


def _save_in_child(path, seed, where):
    r = subprocess.run([sys.executable, "-c", CHILD, str(path), str(seed), where, os.path.dirname(__file__)],
                       capture_output=True, text=True, timeout=120)
    return r.returncode, r.stderr[-2000:]


@pytest.mark.parametrize("where", ["tensors", "sidecar"])
def test_a_killed_save_over_an_explanation_keeps_the_earlier_one(tmp_path, where):
    first, second = _explanation(0), _explanation(1)
    assert not torch.equal(first.logits, second.logits)
    first.save(tmp_path / "e")
    pair = {n: (tmp_path / n).read_bytes() for n in ("e.safetensors", "e.json")}
    rc, err = _save_in_child(tmp_path / "e", 1, where)
    assert rc == -9, err
    # before: FileNotFoundError "expected .../e.json", the earlier pair in .e.json.<random>.old files
    back = nv.Explanation.load(tmp_path / "e")
    torch.testing.assert_close(back.logits, first.logits, rtol=0, atol=0)
    assert {n: (tmp_path / n).read_bytes() for n in os.listdir(tmp_path)} == pair  # the earlier pair, nothing else
    # before: FileExistsError "e.safetensors exists and is no neuroview explanation's"
    rc, err = _save_in_child(tmp_path / "e", 1, "none")
    assert rc == 0, err
    torch.testing.assert_close(nv.Explanation.load(tmp_path / "e").logits, second.logits, rtol=0, atol=0)
    assert sorted(os.listdir(tmp_path)) == ["e.json", "e.safetensors"]


def test_a_save_killed_after_both_files_are_in_place_is_the_new_one(tmp_path):
    _explanation(0).save(tmp_path / "e")
    rc, err = _save_in_child(tmp_path / "e", 1, "after")
    assert rc == -9, err
    assert len(os.listdir(tmp_path)) > 2  # its journal and the link to the earlier tensors, left by the kill
    torch.testing.assert_close(nv.Explanation.load(tmp_path / "e").logits, _explanation(1).logits, rtol=0, atol=0)
    assert sorted(os.listdir(tmp_path)) == ["e.json", "e.safetensors"]


def test_a_killed_first_save_leaves_nothing_in_the_way(tmp_path):
    rc, err = _save_in_child(tmp_path / "e", 1, "sidecar")
    assert rc == -9, err
    with pytest.raises(FileNotFoundError, match="path: expected .*e.safetensors"):
        nv.Explanation.load(tmp_path / "e")  # the new tensors without their sidecar: removed, not read
    assert os.listdir(tmp_path) == []
    _explanation(1).save(tmp_path / "e")  # before: refused, its own half-save "no neuroview explanation's"
    torch.testing.assert_close(nv.Explanation.load(tmp_path / "e").logits, _explanation(1).logits, rtol=0, atol=0)


def test_an_earlier_neuroview_s_leftovers_are_named(tmp_path):
    """What the save before this fix left after a kill: the earlier pair as hidden .old files, new tensors alone."""
    _explanation(0).save(tmp_path / "e")
    (tmp_path / "e.json").rename(tmp_path / ".e.json.pluca976.old")
    with pytest.raises(FileNotFoundError, match=r"expected .*e\.json.*\.e\.json\.pluca976\.old.*mv \.e\.json\.pluca976\.old e\.json"):
        nv.Explanation.load(tmp_path / "e")
    (tmp_path / ".e.json.pluca976.old").rename(tmp_path / "e.json")
    torch.testing.assert_close(nv.Explanation.load(tmp_path / "e").logits, _explanation(0).logits, rtol=0, atol=0)
