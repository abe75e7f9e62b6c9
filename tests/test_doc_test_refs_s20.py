"""Every test the docs name as evidence exists: docs/ERRORS.md's "Test" column and the README's
references are how a reader finds what holds a behaviour, and a renamed or misplaced test left
them pointing at nothing (seven rows read ``T`::test_...``, one named a test renamed since).

A reference is ```tests/<file>.py``` or ```tests/<file>.py::<function>```; a bare ```::<function>```
continues the file named last before it (the docs' own shorthand within a row). Read-only: parses
the test tree, runs nothing.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REF = re.compile(r"(\S?)`(tests/[\w/]+\.py)?(::(\w+))?")


def _functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def broken_refs(text: str, root: Path) -> list[str]:
    """``line: reason`` for each reference in ``text`` whose file or function is not under ``root``."""
    out, last, known = [], None, {}
    for ln, line in enumerate(text.splitlines(), 1):
        for m in REF.finditer(line):
            before, file, _, fn = m.groups()
            if file:
                last = file
                if not (root / file).is_file():
                    out.append(f"{ln}: no file {file}")
                    continue
            if fn is None:
                continue
            if not file and (before.isalnum() or last is None):  # X`::fn`: something else where a file should be
                out.append(f"{ln}: `::{fn}` follows {before!r}, not a test file")
                continue
            where = file or last
            if where not in known:
                known[where] = _functions(root / where) if (root / where).is_file() else set()
            if fn not in known[where]:
                out.append(f"{ln}: no function {fn} in {where}")
    return out


@pytest.mark.parametrize("doc", ["docs/ERRORS.md", "README.md"])
def test_every_test_the_docs_name_exists(doc):
    assert broken_refs((REPO / doc).read_text(encoding="utf-8"), REPO) == []


def test_a_renamed_test_or_a_stray_character_is_caught(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("def test_one():\n    pass\n\nclass T:\n    def test_two(self): ...\n")
    text = ("| w | `tests/test_b.py` |\n"
            "| x | `tests/test_a.py::test_one`, `::test_two` |\n"  # both there (a method counts)
            "| y | `tests/test_a.py::test_gone` |\n"
            "| z | T`::test_one` |\n"
            "| v | `::test_one` continues test_a.py from the rows above |\n")
    assert broken_refs(text, tmp_path) == [
        "1: no file tests/test_b.py",
        "3: no function test_gone in tests/test_a.py",
        "4: `::test_one` follows 'T', not a test file",
    ]
