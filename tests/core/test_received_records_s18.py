"""A folder received from elsewhere (a tarball, ``cp -r``) brings the crash-recovery records of neuroview's writers
along: an ``atomic_write_all`` journal (``.<name>.neuroview-journal``) or a report run's set-aside folder with its
moves list (``.neuroview-old.*.tmp/.neuroview-moves.json``). Probe s18 (P6, findings 1 and 2): reading such a zoo
or explanation, or writing a report into such a folder, deleted or overwrote files beside the folder and files named
by an absolute path, with no word said. Every path a record names must stay inside its own folder; a record that
does not is refused by name, and nothing is touched."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview import _io
from neuroview.zoo.pretrained import list_pretrained

MANIFEST = json.dumps({"format": 1, "entries": {}})


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _tree(root) -> dict:
    """Every file under ``root`` (links as links) with its content: what a refusal must leave as it was."""
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            out[os.path.relpath(p, root)] = os.readlink(p) if os.path.islink(p) else (
                None if os.path.isdir(p) else open(p, "rb").read())
    return out


def _received_zoo(tmp_path, files, owner=None):
    """A received zoo folder ``tmp_path/zoo`` (an empty manifest, a payload) beside files of the user's, with a
    journal whose ``files`` are ``files`` followed by the manifest (``None`` in a record: the manifest's own sha)."""
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    (zoo / "manifest.json").write_text(MANIFEST)
    (zoo / "payload.txt").write_text("from the sender\n")
    (tmp_path / "results.txt").write_text("three weeks of work\n")
    (tmp_path / "notes.txt").write_text("my notes\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "data.txt").write_text("kept elsewhere\n")
    records = [list(f) for f in files] + [["manifest.json", "0" * 64, None, True]]
    (zoo / ".manifest.json.neuroview-journal").write_text(json.dumps({"owner": owner, "files": records}))
    return zoo


#: journal records that name files outside the folder: each would have been removed or replaced on recovery
ESCAPES = {
    "dot-dot": lambda t: [["../results.txt", "0" * 64, None, False]],  # a new file of the killed write: removed
    "absolute": lambda t: [[str(t / "results.txt"), "0" * 64, None, False]],
    "kept-put-back-outside": lambda t: [["../notes.txt", "0" * 64, ".payload.txt.0123abcd.old", True]],
    "kept-from-inside": lambda t: [["../notes.txt", "0" * 64, "payload.txt", True]],  # the finding's own
    "inner-dot-dot": lambda t: [["sub/../../results.txt", "0" * 64, None, False]],
    "through-a-link": lambda t: [["link/data.txt", "0" * 64, None, False]],  # link -> ../outside
    "kept-outside": lambda t: [["payload.txt", "0" * 64, "../notes.txt", True]],  # the kept file removed when done
}


@pytest.mark.parametrize("case", sorted(ESCAPES))
def test_recover_refuses_a_journal_naming_files_outside_its_folder(tmp_path, case):
    zoo = _received_zoo(tmp_path, ESCAPES[case](tmp_path))
    (zoo / "sub").mkdir()
    os.symlink("../outside", zoo / "link")
    before = _tree(tmp_path)
    with pytest.raises(ValueError) as caught:
        _io.recover(zoo / "manifest.json", busy_ok=True)
    msg = str(caught.value)
    assert repr(str(zoo)) in msg and ".manifest.json.neuroview-journal" in msg and "nothing was changed" in msg, msg
    bad = ESCAPES[case](tmp_path)[0]
    assert repr(bad[0]) in msg or repr(bad[2]) in msg, msg  # the record it refuses
    assert _tree(tmp_path) == before  # not a file beside it touched, nor one inside it, nor the journal


def test_a_journal_of_a_finished_write_is_refused_too(tmp_path):
    """The last file matches its sha (the write was done): the kept file it names is removed, so it must be inside."""
    zoo = _received_zoo(tmp_path, [])
    record = {"owner": None, "files": [["payload.txt", "0" * 64, "../notes.txt", True],
                                       ["manifest.json", _sha(MANIFEST), None, True]]}
    (zoo / ".manifest.json.neuroview-journal").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="'../notes.txt'"):
        _io.recover(zoo / "manifest.json")
    assert (tmp_path / "notes.txt").read_text() == "my notes\n"


@pytest.mark.parametrize("bad", [
    {"owner": "not-an-owner", "files": [["../results.txt", "0" * 64, None, False], ["manifest.json", "0" * 64, None, True]]},
    {"owner": None, "files": "../results.txt"},
    {"owner": None, "files": []},
    {"owner": None, "files": [["../results.txt"], ["manifest.json", "0" * 64, None, True]]},
])
def test_a_journal_not_as_neuroview_writes_it_touches_nothing(tmp_path, bad):
    """A journal of another shape is an error (not a named one: no neuroview writes it), and nothing is done."""
    zoo = _received_zoo(tmp_path, [])
    (zoo / ".manifest.json.neuroview-journal").write_text(json.dumps(bad))
    before = _tree(tmp_path)
    with pytest.raises((ValueError, TypeError, IndexError, FileExistsError)):
        _io.recover(zoo / "manifest.json")
    assert _tree(tmp_path) == before


def test_listing_a_received_zoo_refuses_its_journal_and_deletes_nothing(tmp_path, capsys):
    """Finding 1: list_pretrained and `neuroview zoo` deleted results.txt and replaced notes.txt, then listed []."""
    from neuroview.zoo.cli import main as zoo_main

    zoo = _received_zoo(tmp_path, [["../results.txt", "0" * 64, None, False],
                                   ["../notes.txt", "0" * 64, "payload.txt", True]])
    before = _tree(tmp_path)
    with pytest.raises(ValueError, match=r"^root: folder .*zoo.*'\.\./results\.txt'"):
        list_pretrained(root=zoo)
    assert zoo_main(["--root", str(zoo)]) == 2
    assert "'../results.txt'" in capsys.readouterr().err
    assert _tree(tmp_path) == before
    assert (tmp_path / "results.txt").read_text() == "three weeks of work\n"
    assert (tmp_path / "notes.txt").read_text() == "my notes\n"


def _explanation():
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()), 3, input_shape=(1, 8, 8)).eval()
    return net.explain(torch.rand(5, 1, 8, 8))


def test_loading_a_received_explanation_refuses_its_journal_and_deletes_nothing(tmp_path):
    """Finding 1 (f2): Explanation.load gave the right explanation back and deleted ../thesis.tex without a word."""
    folder = tmp_path / "received"
    _explanation().save(folder / "e")
    (tmp_path / "thesis.tex").write_text("\\documentclass{article}\n")
    record = {"owner": None, "files": [["../thesis.tex", "0" * 64, None, False], ["e.json", "0" * 64, None, True]]}
    (folder / ".e.json.neuroview-journal").write_text(json.dumps(record))
    before = _tree(tmp_path)
    with pytest.raises(ValueError, match=r"^path: folder .*'\.\./thesis\.tex'"):
        nv.Explanation.load(folder / "e")
    with pytest.raises(ValueError, match=r"^path: folder .*'\.\./thesis\.tex'"):
        _explanation().save(folder / "e")
    assert _tree(tmp_path) == before


def test_a_journal_of_the_folder_s_own_files_is_still_undone(tmp_path):
    """The check refuses no write of neuroview's own (its journals name files of one folder): a killed write is undone
    as before, its new file removed, the kept one put back, its temporary files gone."""
    root = tmp_path / "f"
    root.mkdir()
    (root / "last.json").write_text("old last\n")
    (root / "a.bin").write_text("new a\n")
    (root / ".a.bin.0123abcd.old").write_text("old a\n")
    (root / "b.bin").write_text("new b, no earlier one\n")
    (root / ".b.bin.0a1b.tmp").write_text("a temporary file the killed write left")
    record = {"owner": None, "files": [["a.bin", "1" * 64, ".a.bin.0123abcd.old", True], ["b.bin", "2" * 64, None, False],
                                       ["last.json", "3" * 64, None, True]]}  # the last file not the new one: undone
    (root / ".last.json.neuroview-journal").write_text(json.dumps(record))
    _io.recover(root / "last.json")
    assert sorted(os.listdir(root)) == ["a.bin", "last.json"]
    assert (root / "a.bin").read_text() == "old a\n"


def test_a_journal_naming_a_path_below_its_folder_is_refused_too(tmp_path):
    """neuroview writes no journal that names a subfolder's file: one that does is refused (a link may lead out)."""
    zoo = _received_zoo(tmp_path, [["sub/x.bin", "0" * 64, None, False]])
    (zoo / "sub").mkdir()
    (zoo / "sub" / "x.bin").write_text("x")
    before = _tree(tmp_path)
    with pytest.raises(ValueError, match="'sub/x.bin'"):
        _io.recover(zoo / "manifest.json")
    assert _tree(tmp_path) == before


# ------------------------------------------------------------------ finding 2: a report folder's moves list
def _received_report(tmp_path, record, where="inside"):
    """A received report ``tmp_path/rep`` (index.html, a file of the user's) with a set-aside folder of a killed
    run, inside it or beside it, whose moves list is ``record``; a file of the user's and a folder beside it."""
    rep = tmp_path / "rep"
    rep.mkdir()
    (rep / "index.html").write_text("<html>old report</html>")
    (rep / "my_own.txt").write_text("mine\n")
    (tmp_path / "paper.docx").write_text("my paper\n")
    (tmp_path / "elsewhere").mkdir()
    (rep / "mydir").mkdir()
    old = rep / ".neuroview-old.x.tmp" if where == "inside" else tmp_path / ".rep.neuroview-old.x.tmp"
    old.mkdir()
    (old / _io.MOVES).write_text(json.dumps(record))
    return rep, old


MOVES = {
    "dot-dot": {"stage": ".neuroview-stage.x.tmp", "names": ["../paper.docx"]},  # the finding's (stage made valid)
    "finding": {"stage": "no-such-stage", "names": ["../paper.docx"]},
    "absolute": {"stage": ".neuroview-stage.x.tmp", "names": ["PAPER"]},  # PAPER: the absolute path of paper.docx
    "the-folder-itself": {"stage": ".neuroview-stage.x.tmp", "names": ["."]},  # removed rep whole, my_own.txt too
    "a-path": {"stage": ".neuroview-stage.x.tmp", "names": ["mydir/../../paper.docx"]},
    "stage-outside": {"stage": "../elsewhere", "names": ["index.html"]},  # moved index.html out of the folder
    "stage-not-a-stage": {"stage": "mydir", "names": ["index.html"]},
}


@pytest.mark.parametrize("where", ["inside", "beside"])
@pytest.mark.parametrize("case", sorted(MOVES))
def test_a_moves_list_naming_anything_but_the_folder_s_files_is_refused(tmp_path, case, where):
    record = json.loads(json.dumps(MOVES[case]).replace("PAPER", str(tmp_path / "paper.docx")))
    rep, old = _received_report(tmp_path, record, where)
    before = _tree(tmp_path)
    for call in (lambda: _io.recover_dir(rep), lambda: _io.staged_dir(rep).__enter__()):
        with pytest.raises(ValueError) as caught:
            call()
        msg = str(caught.value)
        assert repr(str(rep)) in msg and old.name in msg and "nothing was moved" in msg, msg
        assert _tree(tmp_path) == before
    assert (tmp_path / "paper.docx").read_text() == "my paper\n"


def test_writing_into_a_received_report_refuses_its_moves_list_before_writing(tmp_path):
    """Finding 2 (api): the report's new files were moved in and paper.docx beside the folder was deleted."""
    rep, old = _received_report(tmp_path, {"stage": "no-such-stage", "names": ["../paper.docx"]})
    with pytest.raises(ValueError, match=r"'\.\./paper\.docx'"):
        with _io.staged_dir(rep) as stage:
            (stage / "index.html").write_text("new")
    assert (tmp_path / "paper.docx").read_text() == "my paper\n"
    assert (rep / "index.html").read_text() == "<html>old report</html>"


def test_a_moves_list_of_the_folder_s_own_files_is_still_undone(tmp_path):
    """A run killed as it moved its files in (index.html moved in, the earlier one set aside) is undone as before."""
    rep = tmp_path / "rep"
    rep.mkdir()
    (rep / "index.html").write_text("new, moved in")
    (rep / "my_own.txt").write_text("mine\n")
    stage = rep / ".neuroview-stage.x.tmp"
    stage.mkdir()
    (stage / "table.csv").write_text("not moved yet")
    old = rep / ".neuroview-old.x.tmp"
    old.mkdir()
    (old / "index.html").write_text("the earlier one")
    (old / _io.MOVES).write_text(json.dumps({"stage": stage.name, "names": ["index.html", "table.csv"]}))
    _io.recover_dir(rep)
    assert sorted(os.listdir(rep)) == ["index.html", "my_own.txt"]
    assert (rep / "index.html").read_text() == "the earlier one"


# ------------------------------------------------------------------ review R1 of 78ad981: what still escaped
def _user_folder(tmp_path, name, files):
    """A folder of the user's beside the received one, holding ``files`` ({name: text})."""
    folder = tmp_path / name
    folder.mkdir()
    for n, text in files.items():
        (folder / n).write_text(text)
    return folder


@pytest.mark.parametrize("where", ["inside", "beside"])
@pytest.mark.parametrize("moves", [None, ["thesis.tex"]])
def test_a_set_aside_folder_that_is_a_link_is_refused_before_anything_moves(tmp_path, where, moves):
    """R1 r2: ``D/.neuroview-old.x.tmp -> ../Documents`` (no moves list: read as an earlier neuroview's leftover) moved
    every file of the user's Documents into the received folder, unlinking the sender's namesakes first."""
    docs = _user_folder(tmp_path, "Documents", {"thesis.tex": "three years\n", "paper.docx": "my paper\n"})
    if moves is not None:
        (docs / _io.MOVES).write_text(json.dumps({"stage": ".neuroview-stage.x.tmp", "names": moves}))
    rep = _user_folder(tmp_path, "rep", {"index.html": "<html>sent</html>", "paper.docx": "the sender's\n"})
    link = rep / ".neuroview-old.x.tmp" if where == "inside" else tmp_path / ".rep.neuroview-old.x.tmp"
    os.symlink(os.path.relpath(docs, link.parent), link)
    before = _tree(tmp_path)
    for call in (lambda: _io.recover_dir(rep), lambda: _io.staged_dir(rep).__enter__()):
        with pytest.raises(ValueError) as caught:
            call()
        msg = str(caught.value)
        assert isinstance(caught.value, _io.Received)
        assert repr(str(rep)) in msg and "links" in msg and str(link) in msg and "nothing was moved" in msg, msg
        assert _tree(tmp_path) == before
    assert sorted(os.listdir(docs)) == sorted(["thesis.tex", "paper.docx"] + ([_io.MOVES] if moves else []))
    assert (docs / "thesis.tex").read_text() == "three years\n"


@pytest.mark.parametrize("stage_name", [".neuroview-stage.x.tmp", "sent.neuroview-stage.link"])
def test_a_staging_folder_that_is_a_link_is_refused_before_anything_moves(tmp_path, stage_name):
    """R1 r1: ``D/.neuroview-stage.x.tmp -> ../home_ssh`` beside a real set-aside folder whose moves list names
    ``authorized_keys``: the user's ``authorized_keys`` outside D was replaced with the sender's. The second name is
    no leftover recover_dir looks for (no ``.tmp``): only the moves list names it."""
    ssh = _user_folder(tmp_path, "home_ssh", {"authorized_keys": "ssh-ed25519 MINE\n"})
    rep = _user_folder(tmp_path, "rep", {"index.html": "<html>sent</html>", "authorized_keys": "ssh-ed25519 SENT\n"})
    os.symlink("../home_ssh", rep / stage_name)
    old = rep / ".neuroview-old.x.tmp"
    old.mkdir()
    (old / "authorized_keys").write_text("ssh-ed25519 ATTACKER\n")
    (old / _io.MOVES).write_text(json.dumps({"stage": stage_name, "names": ["authorized_keys"]}))
    before = _tree(tmp_path)
    for call in (lambda: _io.recover_dir(rep), lambda: _io.staged_dir(rep).__enter__()):
        with pytest.raises(_io.Received) as caught:
            call()
        msg = str(caught.value)
        assert str(rep / stage_name) in msg and "nothing was moved" in msg, msg
        assert "names files outside it" not in msg, msg  # its names are the folder's own: the stage is what is wrong
        assert _tree(tmp_path) == before
    assert (ssh / "authorized_keys").read_text() == "ssh-ed25519 MINE\n"


def test_atomic_write_all_of_files_in_two_folders_is_refused_before_writing(tmp_path):
    """R1 r3: a write of ``weights/a.bin`` and ``manifest.json`` wrote both, then raised the received-folder
    message ('the journal of a killed write') and left its journal, which every later read then refused."""
    files = {tmp_path / "weights" / "a.bin": b"weights", tmp_path / "manifest.json": b"{}"}
    with pytest.raises(ValueError) as caught:
        _io.atomic_write_all(files)
    msg = str(caught.value)
    assert msg.startswith("files: expected files of one folder") and str(tmp_path / "weights" / "a.bin") in msg, msg
    assert not isinstance(caught.value, _io.Received)
    assert _tree(tmp_path) == {}  # nothing written, no journal, no folder made
    _io.recover(tmp_path / "manifest.json")  # nothing left to refuse


def test_atomic_write_all_of_one_folder_named_two_ways_writes_and_leaves_no_journal(tmp_path, monkeypatch):
    """The writer's own journal is not checked as a received one: a relative and an absolute name of one folder write
    the pair, with nothing left beside it (the earlier file replaced, its kept link gone)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.bin").write_bytes(b"old")
    _io.atomic_write_all({"a.bin": b"new", tmp_path / "m.json": b"{}"})
    assert _tree(tmp_path) == {"a.bin": b"new", "m.json": b"{}"}


def test_a_journal_refusal_names_each_file_once(tmp_path):
    """R1 r4: a row without a kept file was listed twice (``['../results.txt', '../results.txt', '../notes.txt']``)."""
    zoo = _received_zoo(tmp_path, [["../results.txt", "0" * 64, None, False],
                                   ["../notes.txt", "0" * 64, "payload.txt", True]])
    with pytest.raises(_io.Received) as caught:
        _io.recover(zoo / "manifest.json")
    assert "names files outside it: ['../results.txt', '../notes.txt'];" in str(caught.value), str(caught.value)


def test_a_moves_list_staged_elsewhere_is_named_as_its_staging_folder_with_the_full_path(tmp_path):
    """R1 r5 (a): names that are the folder's own but a stage ``../elsewhere`` read 'names files outside it:
    ['index.html']'; r4: a set-aside folder beside the report was named by its bare name after the report's path."""
    rep, old = _received_report(tmp_path, {"stage": "../elsewhere", "names": ["index.html"]}, where="beside")
    with pytest.raises(_io.Received) as caught:
        _io.recover_dir(rep)
    msg = str(caught.value)
    assert f"the set-aside folder {str(old)!r}" in msg, msg  # beside rep, not in it: its own full path
    assert f"staging folder {str(rep.parent / '../elsewhere')!r}" in msg and "files outside it" not in msg, msg


def test_only_the_received_record_refusal_is_named_after_the_argument(tmp_path, monkeypatch):
    """R1 r5 (b): every ValueError of recover was given a ``root: `` / ``path: `` prefix, naming nothing; only the
    refusal of a received record is (its message names the folder), any other error passes as it was raised."""
    from neuroview.core import saving
    from neuroview.zoo import manifest_io

    zoo = _received_zoo(tmp_path, [])
    (zoo / ".manifest.json.neuroview-journal").unlink()

    def other(*a, **k):
        raise ValueError("some other fault")

    for module in (manifest_io, saving):
        monkeypatch.setattr(module, "recover", other)
    with pytest.raises(ValueError, match=r"^some other fault$"):
        list_pretrained(root=zoo)
    with pytest.raises(ValueError, match=r"^some other fault$"):
        nv.Explanation.load(tmp_path / "e")

    def received(*a, **k):
        raise _io.Received("folder 'x': sent")

    for module in (manifest_io, saving):
        monkeypatch.setattr(module, "recover", received)
    with pytest.raises(ValueError, match=r"^root: folder 'x': sent$"):
        list_pretrained(root=zoo)
    with pytest.raises(ValueError, match=r"^path: folder 'x': sent$"):
        nv.Explanation.load(tmp_path / "e")
