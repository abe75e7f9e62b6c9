"""A zoo export killed (SIGKILL: no Python handler runs) keeps the zoo whole (probe s17, finding 1): the manifest
was moved to a hidden file before anything new was written, so a kill left none (48 entries listed as 0, the next
export wrote a manifest of its own entry only), and a reader during an export saw an empty zoo."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from neuroview.zoo import pretrained as zoo
from test_zoo_file_safety import _net, _save  # a small_cnn, its export into a given root

#: A child that exports small_cnn.<argv[2]> (weights drawn with seed argv[3]) into the zoo argv[1], and kills
#: itself with SIGKILL where argv[4] says: "weights" (as the weight file is written), "manifest" (the weights in
#: place, as the manifest is written), "pause" (prints "writing" as the weights are written, sleeps 4 s, goes on).
CHILD = textwrap.dedent("""
    import os, signal, sys, time, torch
    torch.set_num_threads(1)
    import neuroview as nv
    import neuroview._io as io
    from neuroview.zoo import pretrained as zoo
    root, tag, seed, where = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    real = io.atomic_write
    def write(path, data):
        target = "manifest" if path.name == "manifest.json" else "weights"
        if where == "pause" and target == "weights":
            print("writing", flush=True); time.sleep(4)
        elif where == target:
            os.kill(os.getpid(), signal.SIGKILL)
        real(path, data)
    io.atomic_write = write
    torch.manual_seed(seed)
    net = nv.create_model("small_cnn", widths=[8]).eval()
    zoo.save_pretrained(net, "small_cnn." + tag, architecture="small_cnn", arch_kwargs={"widths": [8]},
                        dataset={"name": "none"}, recipe=None, seed=seed, metrics={}, root=root, overwrite=True)
    print("saved", flush=True)
""")


def _child(root, tag, seed, where, **kw):
    return subprocess.Popen([sys.executable, "-c", CHILD, str(root), tag, str(seed), where], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def _zoo(tmp_path):
    """A zoo of two entries, the outputs of each on a fixed batch, and the manifest's bytes."""
    root, x, want = tmp_path / "zoo", torch.rand(3, 1, 28, 28), {}
    for name, seed in (("small_cnn.a", 0), ("small_cnn.b", 1)):
        net = _net(seed)
        _save(net, name, root)
        with torch.no_grad():
            want[name] = net(x)
    return root, x, want, (root / "manifest.json").read_bytes()


def _check_whole(root, x, want):
    """Every entry of ``want`` listed and loading its own weights (outputs as computed before)."""
    assert zoo.list_pretrained(root=root) == sorted(want)
    for name, out in want.items():
        with torch.no_grad():
            torch.testing.assert_close(zoo.load_pretrained(name, root=root)(x), out, rtol=0, atol=0)


@pytest.mark.parametrize("where", ["weights", "manifest"])
@pytest.mark.parametrize("tag", ["c", "a"])  # a new entry; the entry a, exported again over itself
def test_a_killed_export_keeps_the_manifest_and_the_next_export_works(tmp_path, where, tag):
    root, x, want, manifest = _zoo(tmp_path)
    proc = _child(root, tag, 7, where)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == -9, err[-2000:]
    # before: no manifest.json at all (moved to .manifest.json.<random>.old), so the zoo listed no entry
    assert (root / "manifest.json").read_bytes() == manifest  # the old manifest, whole, at every instant
    _check_whole(root, x, want)  # a reader finds every entry with its own old weights (a's were replaced: put back)
    assert sorted(os.listdir(root)) == [".manifest.lock", "manifest.json", "small_cnn.a.safetensors",
                                        "small_cnn.b.safetensors"]  # nothing of the killed run left
    new = _net(7)
    _save(new, f"small_cnn.{tag}", root, overwrite=True)  # before: "no entry: an orphan" (its weight file beside no manifest)
    with torch.no_grad():
        want[f"small_cnn.{tag}"] = new(x)
    _check_whole(root, x, want)
    doc = json.loads((root / "manifest.json").read_text())
    for name, entry in doc["entries"].items():
        assert entry["sha256"] == hashlib.sha256((root / entry["file"]).read_bytes()).hexdigest(), name


def test_the_next_export_undoes_a_killed_overwrite_before_a_reader_does(tmp_path):
    root, x, want, manifest = _zoo(tmp_path)
    proc = _child(root, "a", 7, "manifest")
    proc.communicate(timeout=120)
    assert proc.returncode == -9
    assert any(n.endswith(".old") for n in os.listdir(root))  # the old weights of a, kept beside the new ones
    new = _net(8)
    _save(new, "small_cnn.c", root)  # another entry: the killed export of a undone first, a's weights back
    with torch.no_grad():
        want["small_cnn.c"] = new(x)
    _check_whole(root, x, want)
    assert not any(n.startswith(".") and n != ".manifest.lock" for n in os.listdir(root))


def test_a_reader_during_an_export_sees_the_whole_zoo(tmp_path):
    root, x, want, _ = _zoo(tmp_path)
    proc = _child(root, "c", 7, "pause")
    try:
        assert proc.stdout.readline().strip() == "writing"
        # before: 0 entries and "no trained entry 'small_cnn.a'": the manifest was moved aside for the export
        _check_whole(root, x, want)
        assert proc.stdout.readline().strip() == "saved"
    finally:
        proc.communicate(timeout=120)
    assert proc.returncode == 0
    assert zoo.list_pretrained(root=root) == ["small_cnn.a", "small_cnn.b", "small_cnn.c"]


def test_a_killed_first_export_leaves_no_orphan_in_the_way(tmp_path):
    root = tmp_path / "zoo"
    proc = _child(root, "c", 7, "manifest")  # the folder's first export: no manifest before it
    proc.communicate(timeout=120)
    assert proc.returncode == -9
    zoo.refuse_existing(root, ["small_cnn.c"], overwrite=False)  # before: "... no entry: an orphan"
    assert zoo.list_pretrained(root=root) == [] and sorted(os.listdir(root)) == [".manifest.lock"]
    x, new = torch.rand(2, 1, 28, 28), _net(7)
    _save(new, "small_cnn.c", root)
    with torch.no_grad():
        _check_whole(root, x, {"small_cnn.c": new(x)})
