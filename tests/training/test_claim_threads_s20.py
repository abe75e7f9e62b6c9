"""Two fits of one process (two threads, two trainers in a notebook) into one checkpoint folder (probe P12, finding
2): ``claim_folder`` released any earlier claim of this process as "a fit that did not end", so a second fit in
another thread took a live fit's folder (set its live ``last.ckpt`` aside, removed its marker); and a claim released
twice closed a descriptor number used again since (another claim's, or any file of the user's). Forced
interleavings with events, never timing."""

from __future__ import annotations

import json
import os
import threading

import pytest

from neuroview._io import _owner, _same_file
from neuroview.training.run_folder import claim_folder, marker_of, release_folder


def test_a_fit_in_another_thread_is_refused_by_name_and_the_live_claim_kept(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    marker, claimed, end, got = marker_of(folder), threading.Event(), threading.Event(), {}

    def fit_a():
        got["A"] = claim_folder(folder, tmp_path)
        claimed.set()
        assert end.wait(60)  # A fits
        release_folder(got["A"])

    ta = threading.Thread(target=fit_a, daemon=True)
    ta.start()
    try:
        assert claimed.wait(60)
        a = got["A"]
        with pytest.raises(ValueError) as e:  # before: no refusal; A's marker and lock taken over
            claim_folder(folder, tmp_path)
        said = str(e.value)
        assert said.startswith(f"trainer.default_root_dir: another `neuroview fit` (pid {os.getpid()} on this host: "
                               "this process, a fit in another thread still running")
        assert f"its marker is {marker}" in said and "--trainer.default_root_dir DIR" in said
        # A's claim is whole: its marker, naming this process, is the file A holds open and locked
        assert json.loads(marker.read_text())["owner"] == _owner() and _same_file(a.fd, marker)
    finally:
        end.set()
        ta.join(60)
    assert not marker.exists()  # A's own release, once it ended
    release_folder(b := claim_folder(folder, tmp_path))  # the folder is free again: a later fit takes it
    assert b is not None and not marker.exists()


def test_a_claim_released_twice_closes_no_descriptor_of_another(tmp_path):
    """The sequential behaviour kept: a fit of this thread that never released (its trainer dropped) leaves its
    claim to the next fit here; the dropped fit's late release (teardown) then neither removes the new claim's
    marker nor closes its descriptor, which the lowest free number made the same number."""
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    marker = marker_of(folder)
    a = claim_folder(folder, tmp_path)
    number = a.fd
    b = claim_folder(folder, tmp_path)  # the same thread: a's fit has ended without a release
    assert b.fd == number  # a's descriptor closed, its number the next open's: the case of the fault
    release_folder(a)  # before: the marker (b's) removed and b's descriptor closed
    assert marker.exists() and _same_file(b.fd, marker)
    release_folder(b)
    assert not marker.exists()
    with open(tmp_path / "unrelated.txt", "w") as f:  # the user's file, given the number b held
        assert f.fileno() == number
        release_folder(b)  # before: closed the user's file ([Errno 9] Bad file descriptor on its next write)
        f.write("still open")
    assert (tmp_path / "unrelated.txt").read_text() == "still open"


def test_a_claim_left_by_a_thread_that_ended_is_taken_by_the_next_fit(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    got = {}
    t = threading.Thread(target=lambda: got.setdefault("A", claim_folder(folder, tmp_path)))  # never released
    t.start()
    t.join(60)
    b = claim_folder(folder, tmp_path)  # its fit ended with its thread: the folder is taken, as before
    assert b is not None and _same_file(b.fd, marker_of(folder))
    release_folder(got["A"])
    assert _same_file(b.fd, marker_of(folder))
    release_folder(b)
    assert not marker_of(folder).exists()
