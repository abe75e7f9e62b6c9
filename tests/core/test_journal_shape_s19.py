"""A received folder's crash-recovery records of the wrong shape (s19, left by the s18 reviewers): an
``atomic_write_all`` journal or a report's moves list that parses as JSON but is not what neuroview writes gave a bare
AttributeError / IndexError / ValueError, or was taken for one cut short as it was written: the journal deleted, the
set-aside folder (the earlier files of a report) removed. Each is now refused by name, nothing touched. And with
several set-aside folders in one report folder, every record is checked before any is undone.

Text that is not JSON is refused too (s19, R2 finding 1), but where neuroview can leave it: a journal is only ever the
empty placeholder or the whole record renamed over it (``_start_journal``), and a moves list, written in place, is cut
short only before any move, its set-aside folder holding nothing else. A non-empty journal that is no JSON (a stray
byte, a truncated copy, bytes that are no UTF-8, JSON nested past the reader) was deleted without a word, its kept file
left hidden; a moves list like that beside the earlier files of a report had them all deleted."""

from __future__ import annotations

import json
import os

import pytest

from neuroview import _io
from neuroview.zoo.pretrained import list_pretrained
from test_received_records_s18 import _tree  # every file and folder under a root, with its content

JOURNAL = ".manifest.json.neuroview-journal"
LAST = ["manifest.json", "0" * 64, None, True]


def _zoo(tmp_path, journal: str):
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    (zoo / "manifest.json").write_text(json.dumps({"format": 1, "entries": {}}))
    (zoo / "a.bin").write_text("the sender's\n")
    (zoo / JOURNAL).write_text(journal)
    (tmp_path / "results.txt").write_text("three weeks of work\n")
    return zoo


#: journals of another shape than atomic_write_all writes
JOURNALS = {
    "owner-an-int": {"owner": 5, "files": [LAST]},
    "owner-a-list": {"owner": [1, 2], "files": [LAST]},
    "owner-not-pid-start-host": {"owner": "not-an-owner", "files": [LAST]},
    "no-owner": {"files": [LAST]},
    "row-of-two": {"owner": None, "files": [["a.bin", "0" * 64], LAST]},
    "row-of-five": {"owner": None, "files": [["a.bin", "0" * 64, None, True, 1], LAST]},
    "row-a-string": {"owner": None, "files": ["manifest.json"]},
    "existed-a-string": {"owner": None, "files": [["a.bin", "0" * 64, None, "yes"], LAST]},
    "sha-a-number": {"owner": None, "files": [["manifest.json", 0, None, True]]},
    "kept-a-number": {"owner": None, "files": [["a.bin", "0" * 64, 7, True], LAST]},
    "files-empty": {"owner": None, "files": []},
    "files-an-object": {"owner": None, "files": {"a.bin": 1}},
    "files-a-string": {"owner": None, "files": "manifest.json"},
    "a-json-list": [LAST],
    "an-object-without-files": {"owner": None},
    "a-json-null": None,
}


@pytest.mark.parametrize("case", sorted(JOURNALS))
def test_a_journal_of_the_wrong_shape_is_refused_by_name_and_nothing_is_touched(tmp_path, case):
    record = JOURNALS[case]
    found = json.dumps(record)[:200]  # what was found, as read
    zoo = _zoo(tmp_path, json.dumps(record))
    before = _tree(tmp_path)
    for busy_ok in (False, True):
        with pytest.raises(_io.Received) as caught:
            _io.recover(zoo / "manifest.json", busy_ok=busy_ok)
        msg = str(caught.value)
        assert msg.startswith(f"folder {str(zoo)!r}: {JOURNAL}, the journal of a killed write, "), msg
        assert 'expected {"owner": "<pid>-<start>-<host>" or null, "files": [[name, sha256, kept name or null, true or ' \
            'false], ...]}, got ' + found + "; nothing was changed" in msg, msg
        assert _tree(tmp_path) == before


def test_a_received_zoo_with_a_journal_of_the_wrong_shape_names_root(tmp_path):
    zoo = _zoo(tmp_path, json.dumps({"owner": 5, "files": [LAST]}))
    before = _tree(tmp_path)
    with pytest.raises(ValueError, match=rf"^root: folder .*{JOURNAL}, the journal of a killed write, .*got \{{\"owner\": 5,"):
        list_pretrained(root=zoo)
    assert _tree(tmp_path) == before


def test_the_empty_placeholder_of_a_journal_is_still_removed(tmp_path):
    """The placeholder is all a writer killed before its record was renamed in leaves: nothing of the write was done."""
    zoo = _zoo(tmp_path, "")
    _io.recover(zoo / "manifest.json")
    assert sorted(os.listdir(zoo)) == ["a.bin", "manifest.json"]


#: a whole journal as atomic_write_all writes one: a.bin kept as .a.bin.0123abcd.old, manifest.json the last file
WHOLE = ('{"owner": null, "files": [["a.bin", "' + "1" * 64 + '", ".a.bin.0123abcd.old", true], '
         '["manifest.json", "' + "0" * 64 + '", null, true]]}')
#: text no journal of neuroview's is: (text, the reader's reason, the start of the text as the message shows it)
NOT_JSON = {
    "a-whole-record-and-a-stray-byte": (WHOLE + "x", "JSONDecodeError: Extra data: line 1 column 234 (char 233)",
                                        """b'{"owner": null, "files": [["a.bin", "1111"""),
    "a-truncated-copy": (WHOLE[:70], "JSONDecodeError: Unterminated string starting at: line 1 column 37 (char 36)",
                         "b'" + '{"owner": null, "files": [["a.bin", "' + "1" * 33 + "'"),
    "bytes-that-are-no-utf8": (b"\x80\x81 not text", "UnicodeDecodeError: 'utf-8' codec can't decode byte 0x80",
                               r"b'\x80\x81 not text'"),
    "a-space": (" ", "JSONDecodeError: Expecting value: line 1 column 2 (char 1)", "b' '"),
    "zeros": (b"\0" * 8, "JSONDecodeError: Expecting value: line 1 column 1 (char 0)", r"b'\x00\x00\x00\x00\x00\x00\x00\x00'"),
    "nested-past-the-reader": ('{"owner": null, "files": ' + "[" * 100_000 + "]" * 100_000 + "}",
                               "RecursionError: maximum recursion depth exceeded", """b'{"owner": null, "files": [[[[[["""),
}


@pytest.mark.parametrize("case", sorted(NOT_JSON))
def test_a_journal_that_is_no_json_is_refused_by_name_and_nothing_is_touched(tmp_path, case):
    """Was taken for one cut short as it was written: deleted, and the earlier a.bin it kept left hidden, named by none."""
    text, reason, shown = NOT_JSON[case]
    zoo = _zoo(tmp_path, "")
    (zoo / JOURNAL).write_bytes(text if isinstance(text, bytes) else text.encode())
    (zoo / ".a.bin.0123abcd.old").write_text("the earlier a\n")
    before = _tree(tmp_path)
    for busy_ok in (False, True):
        with pytest.raises(_io.Received) as caught:
            _io.recover(zoo / "manifest.json", busy_ok=busy_ok)
        msg = str(caught.value)
        assert msg.startswith(f"folder {str(zoo)!r}: {JOURNAL}, the journal of a killed write, is not as neuroview writes "
                              'one: expected {"owner": "<pid>-<start>-<host>" or null, "files": [[name, sha256, kept name '
                              f"or null, true or false], ...]}}, got {len(text)} bytes that are not readable JSON "
                              f"({reason}"), msg
        assert "): " + shown in msg and msg.endswith("; nothing was changed (it came with a copied folder? delete it)"), msg
        assert _tree(tmp_path) == before


def test_a_received_zoo_with_a_journal_that_is_no_json_names_root(tmp_path):
    zoo = _zoo(tmp_path, WHOLE + "x")
    before = _tree(tmp_path)
    with pytest.raises(ValueError, match=rf"^root: folder .*{JOURNAL}, the journal of a killed write, .* bytes that are "
                                         r"not readable JSON \(JSONDecodeError: Extra data"):
        list_pretrained(root=zoo)
    assert _tree(tmp_path) == before


def test_a_journal_of_a_dead_writer_of_this_host_is_still_undone(tmp_path):
    """An owner as _owner() writes it (pid-start-host), of a process that no longer runs: undone as before."""
    zoo = _zoo(tmp_path, "")
    (zoo / ".a.bin.0123abcd.old").write_text("the earlier a\n")
    host = _io._owner().rsplit("-", 1)[1]
    record = {"owner": f"99999999-12345-{host}", "locked": True,
              "files": [["a.bin", "1" * 64, ".a.bin.0123abcd.old", True], ["new.bin", "2" * 64, None, False], LAST]}
    (zoo / "new.bin").write_text("new\n")
    (zoo / JOURNAL).write_text(json.dumps(record))
    _io.recover(zoo / "manifest.json")
    assert sorted(os.listdir(zoo)) == ["a.bin", "manifest.json"]
    assert (zoo / "a.bin").read_text() == "the earlier a\n"


# ------------------------------------------------------------------ a report folder's moves list
def _report(tmp_path):
    rep = tmp_path / "rep"
    rep.mkdir()
    (rep / "index.html").write_text("<html>new, moved in</html>")
    (rep / "my_own.txt").write_text("mine\n")
    (tmp_path / "paper.docx").write_text("my paper\n")
    return rep


def _set_aside(folder, moves, earlier="<html>the earlier one</html>"):
    folder.mkdir()
    (folder / "index.html").write_text(earlier)
    (folder / _io.MOVES).write_text(moves if isinstance(moves, str) else json.dumps(moves))
    return folder


#: moves lists of another shape than _move_in writes
MOVES = {
    "a-json-list": ["index.html"],
    "names-a-string": {"stage": ".neuroview-stage.x.tmp", "names": "index.html"},
    "stage-a-number": {"stage": 5, "names": ["index.html"]},
    "stage-empty": {"stage": "", "names": ["index.html"]},
    "no-names": {"stage": ".neuroview-stage.x.tmp"},
    "no-stage": {"names": ["index.html"]},
    "names-of-numbers": {"stage": ".neuroview-stage.x.tmp", "names": [1]},
}


@pytest.mark.parametrize("case", sorted(MOVES))
def test_a_moves_list_of_the_wrong_shape_is_refused_by_name_and_nothing_is_touched(tmp_path, case):
    record = MOVES[case]
    found = json.dumps(record)
    rep = _report(tmp_path)
    old = _set_aside(rep / ".neuroview-old.x.tmp", record)
    before = _tree(tmp_path)
    for call in (lambda: _io.recover_dir(rep), lambda: _io.staged_dir(rep).__enter__()):
        with pytest.raises(_io.Received) as caught:
            call()
        msg = str(caught.value)
        assert msg.startswith(f"folder {str(rep)!r}: the set-aside folder {str(old)!r}, left by a killed write, "), msg
        assert f'has a {_io.MOVES} not as neuroview writes one: expected {{"stage": its staging folder\'s name, "names": ' \
            f'[file names, ...]}}, got {found}; nothing was moved' in msg, msg
        assert _tree(tmp_path) == before


LISTED = '{"stage": ".neuroview-stage.x.tmp", "names": ["index.html"]}'  # as _move_in writes one


@pytest.mark.parametrize("text", ["", LISTED[:31], LISTED[:-1]])
def test_a_moves_list_cut_short_as_it_was_written_still_moves_nothing_back(tmp_path, text):
    """No JSON, and nothing but the list in its folder: the run was killed as it wrote the list, before any move; its
    set-aside folder goes, the report's files stay."""
    rep = _report(tmp_path)
    folder = rep / ".neuroview-old.x.tmp"
    folder.mkdir()
    (folder / _io.MOVES).write_text(text)
    _io.recover_dir(rep)
    assert sorted(os.listdir(rep)) == ["index.html", "my_own.txt"]
    assert (rep / "index.html").read_text() == "<html>new, moved in</html>"
    assert sorted(os.listdir(tmp_path)) == ["paper.docx", "rep"]


#: moves lists that are no JSON: (text, the reader's reason, the start of the text as the message shows it)
MOVES_NOT_JSON = {
    "a-whole-list-and-a-stray-byte": (LISTED + "x", "JSONDecodeError: Extra data: line 1 column 61 (char 60)",
                                      """b'{"stage": ".neuroview-stage.x.tmp", "names": ["index.html"]}x'"""),
    "a-truncated-copy": (LISTED[:31], "JSONDecodeError: Unterminated string starting at: line 1 column 11 (char 10)",
                         """b'{"stage": ".neuroview-stage.x.t'"""),
    "empty": ("", "JSONDecodeError: Expecting value: line 1 column 1 (char 0)", "b''"),
    "bytes-that-are-no-utf8": (b"\xff\xfe\xfd", "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff",
                               r"b'\xff\xfe\xfd'"),
    "nested-past-the-reader": ('{"stage": ".neuroview-stage.x.tmp", "names": ' + "[" * 100_000 + "]" * 100_000 + "}",
                               "RecursionError: maximum recursion depth exceeded",
                               """b'{"stage": ".neuroview-stage.x.tmp", "names": [[[[["""),
}


@pytest.mark.parametrize("case", sorted(MOVES_NOT_JSON))
def test_a_moves_list_that_is_no_json_beside_moved_files_is_refused_and_nothing_is_touched(tmp_path, case):
    """The set-aside folder holds the report's earlier index.html: some move was done, so the list was whole; it was
    taken for one cut short, and the folder with the earlier report removed."""
    text, reason, shown = MOVES_NOT_JSON[case]
    rep = _report(tmp_path)
    old = _set_aside(rep / ".neuroview-old.x.tmp", "")
    (old / _io.MOVES).write_bytes(text if isinstance(text, bytes) else text.encode())
    before = _tree(tmp_path)
    for call in (lambda: _io.recover_dir(rep), lambda: _io.staged_dir(rep).__enter__()):
        with pytest.raises(_io.Received) as caught:
            call()
        msg = str(caught.value)
        assert msg.startswith(f"folder {str(rep)!r}: the set-aside folder {str(old)!r}, left by a killed write, has a "
                              '.neuroview-moves.json not as neuroview writes one: expected {"stage": its staging folder\'s '
                              f"name, \"names\": [file names, ...]}}, got {len(text)} bytes that are not readable JSON "
                              f"({reason}"), msg
        assert "): " + shown in msg and msg.endswith("; nothing was moved (came with a copied folder? delete it)"), msg
        assert _tree(tmp_path) == before
    assert (old / "index.html").read_text() == "<html>the earlier one</html>"


@pytest.mark.parametrize("crafted", [{"stage": ".neuroview-stage.y.tmp", "names": ["../paper.docx"]},
                                     {"stage": "../elsewhere", "names": ["index.html"]},
                                     {"stage": ".neuroview-stage.y.tmp", "names": "index.html"}])
@pytest.mark.parametrize("genuine_where", ["beside", "inside"])
def test_every_set_aside_folder_is_checked_before_any_is_undone(tmp_path, crafted, genuine_where):
    """A genuine set-aside folder (its moves list names index.html of the folder) and a crafted one: the genuine one was
    undone (index.html put back, its set-aside folder removed) before the crafted one was refused."""
    rep = _report(tmp_path)
    beside, inside = tmp_path / ".rep.neuroview-old.x.tmp", rep / ".neuroview-old.y.tmp"
    genuine, other = (beside, inside) if genuine_where == "beside" else (inside, beside)
    _set_aside(genuine, {"stage": f"{'.rep' if genuine is beside else ''}.neuroview-stage.x.tmp", "names": ["index.html"]})
    _set_aside(other, crafted, earlier="the sender's")
    before = _tree(tmp_path)
    for call in (lambda: _io.recover_dir(rep), lambda: _io.staged_dir(rep).__enter__()):
        with pytest.raises(_io.Received) as caught:
            call()
        assert str(other) in str(caught.value) and "nothing was moved" in str(caught.value)
        assert _tree(tmp_path) == before
    assert (rep / "index.html").read_text() == "<html>new, moved in</html>"


def test_two_genuine_set_aside_folders_are_both_undone(tmp_path):
    rep = _report(tmp_path)
    (rep / "table.csv").write_text("new table")
    _set_aside(tmp_path / ".rep.neuroview-old.x.tmp", {"stage": ".rep.neuroview-stage.x.tmp", "names": ["index.html"]})
    inside = _set_aside(rep / ".neuroview-old.y.tmp", {"stage": ".neuroview-stage.y.tmp", "names": ["table.csv"]})
    (inside / "index.html").unlink()
    (inside / "table.csv").write_text("the earlier table")
    _io.recover_dir(rep)
    assert sorted(os.listdir(rep)) == ["index.html", "my_own.txt", "table.csv"]
    assert (rep / "index.html").read_text() == "<html>the earlier one</html>"
    assert (rep / "table.csv").read_text() == "the earlier table"
    assert sorted(os.listdir(tmp_path)) == ["paper.docx", "rep"]
