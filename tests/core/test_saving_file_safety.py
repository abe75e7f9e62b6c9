"""Interrupted writes leave the earlier files whole: an explanation's pair, a report folder; and an output
folder that is a symlink is written through, one with a file in its way refused by name; a sidecar that does
not fit its tensors refused."""

import hashlib
import json
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import neuroview as nv  # noqa: E402
import neuroview.core.saving as saving  # noqa: E402
from neuroview import _io  # noqa: E402
from neuroview.viz.report import write_report  # noqa: E402
from nets import small_report_cnn  # noqa: E402

torch.set_num_threads(1)


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative name -> SHA-256 of its bytes)."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _interrupt_json(monkeypatch):
    """Every atomic write of a .json file raises KeyboardInterrupt (the second of an explanation's two)."""
    real = _io.atomic_write

    def flaky(path, data):
        if Path(path).suffix == ".json":
            raise KeyboardInterrupt("Ctrl-C while the sidecar is written")
        return real(path, data)

    monkeypatch.setattr(_io, "atomic_write", flaky)
    monkeypatch.setattr(saving, "atomic_write", flaky, raising=False)  # the name saving.py used to call


def test_interrupted_save_over_an_explanation_keeps_the_earlier_one(tmp_path, monkeypatch):
    net, x, _ = small_report_cnn()
    first, second = net.explain(x[:3]), net.explain(x[5:9])
    first.save(tmp_path / "e")
    before = _snapshot(tmp_path)
    _interrupt_json(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        second.save(tmp_path / "e")
    monkeypatch.undo()
    # before: a new .safetensors beside the old sidecar, and load said "does not match its sidecar"
    assert _snapshot(tmp_path) == before  # the same two files, byte for byte, and no temporary left
    back = nv.Explanation.load(tmp_path / "e")
    assert torch.equal(back.logits, first.logits) and not torch.equal(back.logits[:3], second.logits[:3])


def test_interrupted_first_save_leaves_no_file(tmp_path, monkeypatch):
    net, x, _ = small_report_cnn()
    _interrupt_json(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        net.explain(x[:2]).save(tmp_path / "e")
    assert os.listdir(tmp_path) == []  # before: a lone e.safetensors without its sidecar


def _staged_write(out: Path) -> None:
    with _io.staged_dir(out) as stage:
        for name in ("a.txt", "b.txt", "c.txt"):
            (stage / name).write_text(f"new {name}")


@pytest.mark.parametrize("k", range(1, 6))  # 3: the last rename; 4, 5: none left to fail
def test_interrupted_overwrite_leaves_the_old_folder_or_the_new(tmp_path, monkeypatch, k):
    """A Ctrl-C at the k-th rename while a staged folder replaces a non-empty one."""
    out = tmp_path / "out"
    out.mkdir()
    for name in ("a.txt", "b.txt", "c.txt", "mine.txt"):
        (out / name).write_text(f"old {name}")
    before = _snapshot(out)
    new = {"a.txt": "new a.txt", "b.txt": "new b.txt", "c.txt": "new c.txt", "mine.txt": "old mine.txt"}
    real, calls = os.replace, [0]

    def flaky(a, b):
        calls[0] += 1
        if calls[0] == k:
            raise KeyboardInterrupt(f"Ctrl-C at rename {k}")
        return real(a, b)

    monkeypatch.setattr(_io.os, "replace", flaky)
    try:
        _staged_write(out)
        interrupted = False
    except KeyboardInterrupt:
        interrupted = True
    monkeypatch.undo()
    # before: at k = 2, a.txt was new and b.txt, c.txt old
    if interrupted:
        assert _snapshot(out) == before
    else:
        assert {n: (out / n).read_text() for n in os.listdir(out)} == new
    assert sorted(os.listdir(tmp_path)) == ["out"]  # no staging or set-aside folder left


def test_interrupted_report_overwrite_keeps_the_old_report(tmp_path, monkeypatch):
    net, x, y = small_report_cnn()
    out = tmp_path / "rep"
    write_report(net, x, y, out, examples=0, progress=False, dpi=30, about={"run": "old"})
    (out / "notes.txt").write_text("mine")
    before = _snapshot(out)
    real, n = os.replace, [0]

    def flaky(a, b):  # the second rename that moves something into, out of or onto ``out``
        n[0] += out in {Path(a), Path(b), Path(a).parent, Path(b).parent}
        if n[0] == 2:
            n[0] += 1
            raise KeyboardInterrupt("Ctrl-C while the report is moved into place")
        return real(a, b)

    monkeypatch.setattr(_io.os, "replace", flaky)
    with pytest.raises(KeyboardInterrupt):
        write_report(net, x[:4], y[:4], out, examples=0, progress=False, dpi=30, overwrite=True, about={"run": "new"})
    monkeypatch.undo()
    assert _snapshot(out) == before  # before: 3 files new, the rest (report.json, index.html) old
    assert sorted(os.listdir(tmp_path)) == ["rep"]
    files = write_report(net, x[:4], y[:4], out, examples=0, progress=False, dpi=30, overwrite=True, about={"run": "new"})
    assert '"run": "new"' in (out / "report.json").read_text() and (out / "notes.txt").read_text() == "mine"
    assert set(os.listdir(out)) == set(files) | {"notes.txt"}


def test_symlinked_output_folder_is_written_through(tmp_path):
    net, x, y = small_report_cnn()
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to("real")
    # before: NotADirectoryError from rmdir on the link, after the whole explanation
    files = write_report(net, x, y, tmp_path / "link", examples=1, progress=False, dpi=30)
    assert (tmp_path / "link").is_symlink() and sorted(os.listdir(tmp_path / "real")) == sorted(files)
    (tmp_path / "real" / "notes.txt").write_text("mine")
    _staged_write(tmp_path / "link")  # a non-empty target: its other files stay
    assert (tmp_path / "link").is_symlink() and (tmp_path / "real" / "a.txt").read_text() == "new a.txt"
    assert (tmp_path / "real" / "notes.txt").read_text() == "mine"
    assert sorted(os.listdir(tmp_path)) == ["link", "real"]


def test_a_file_in_the_way_of_the_folder_is_refused_by_name(tmp_path):
    (tmp_path / "afile").write_text("precious")
    ran = []
    # before: FileExistsError "[Errno 17] File exists: ...afile", naming neither the folder nor what was expected
    with pytest.raises(ValueError, match=r"afile/sub'.*expected a folder.*afile'.* not a folder"):
        with _io.staged_dir(tmp_path / "afile" / "sub"):
            ran.append(True)
    assert not ran and (tmp_path / "afile").read_text() == "precious"
    assert sorted(os.listdir(tmp_path)) == ["afile"]


@pytest.mark.parametrize("edit", ["drop_units", "shift_slices", "not_pairs"])
def test_a_sidecar_that_does_not_fit_its_tensors_is_refused(tmp_path, edit):
    """The SHA-256 covers the tensors only: a sidecar edited (or from another explanation) loaded without a word,
    and its tables dropped units (42 rows of 60) or named them wrongly."""
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.Conv1d(4, 6, 3), nn.ReLU()), 3,
                          input_shape=(1, 16)).eval()
    exp = net.explain(torch.randn(2, 1, 16))
    exp.save(tmp_path / "e.safetensors")
    back = nv.Explanation.load(tmp_path / "e.safetensors")
    assert back.units == exp.units and len(back.to_records()) == 2 * 3 * 10  # as saved: loads as it was
    side = tmp_path / "e.json"
    meta = json.loads(side.read_text())
    if edit == "drop_units":
        meta["units"] = meta["units"][:-3]
    elif edit == "shift_slices":
        meta["site_slices"] = {k: [a + 1, b + 1] for k, (a, b) in meta["site_slices"].items()}
    else:
        meta["units"] = [u[0] for u in meta["units"]]
    side.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"path: its sidecar"):
        nv.Explanation.load(tmp_path / "e.safetensors")
