"""Paths the zoo and the explanations are given (probe P4, findings 1, 3 and 4):

- a ``~`` that no shell expanded (``--zoo=~/zoo``, a quoted ``'~/zoo'``, ``NEUROVIEW_CHECKPOINTS="~/zoo"`` in a
  ``.env`` file) made a folder literally named ``~`` in the working directory on export, and on load read the
  manifest from ``./~/zoo`` but the weights from the home folder;
- an entry name (or an explanation's file name) longer than a file system takes was accepted, and the write
  failed after the work in a bare ``OSError [Errno 36]``;
- ``FILE.NPZ`` / ``FILE.CSV`` (an upper-case suffix) was refused as "not a path" by the commands' ``--data``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neuroview as nv
from neuroview.zoo import pretrained as zoo

KW = {"widths": [8]}


def _small(seed: int = 0):
    torch.manual_seed(seed)
    return nv.create_model("small_cnn", **KW).eval()


def _save(net, name: str, root, **kw):
    return zoo.save_pretrained(net, name, architecture="small_cnn", arch_kwargs=KW, dataset={"name": "none"},
                               recipe=None, seed=0, metrics={}, root=root, **kw)


# ------------------------------------------------------------------------------------------- finding 1: ~
def test_a_zoo_folder_given_as_tilde_is_the_home_folder_s_for_writes_and_reads(home, monkeypatch):
    net = _small()
    _save(net, "small_cnn.t", "~/zoo")
    assert (home / "zoo" / "small_cnn.t.safetensors").is_file() and (home / "zoo" / "manifest.json").is_file()
    assert not (home.parent / "cwd" / "~").exists()  # no folder named "~" in the working directory
    assert zoo.list_pretrained(root="~/zoo") == ["small_cnn.t"]
    zoo.check_root("~/zoo")  # a folder: no refusal
    loaded = nv.create_model("small_cnn.t", pretrained=True, root="~/zoo")
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in loaded.state_dict().items())
    # the same folder through the variable, as a .env file leaves it
    monkeypatch.setenv("NEUROVIEW_CHECKPOINTS", "~/zoo")
    assert zoo.list_pretrained() == ["small_cnn.t"]
    assert zoo.checkpoints_dir() == home / "zoo"
    # an export's check before the work reads the same folder: the entry held there is found
    with pytest.raises(ValueError, match=rf"out: {home / 'zoo'} already holds small_cnn.t"):
        zoo.refuse_existing("~/zoo", ["small_cnn.t"], overwrite=False)
    with pytest.raises(ValueError, match=r"root: expected a checkpoint folder, got '~/none' \('.*home/none'\) \(no such folder\)"):
        zoo.check_root("~/none")


def test_explain_and_minirocket_read_and_write_a_tilde_zoo_in_the_home_folder(home, capsys):
    from neuroview.training.minirocket_cli import main as minirocket_main
    from neuroview.viz.report import main as explain_main

    _save(_small(), "small_cnn.t", "~/zoo")
    # found in ~/zoo (it was "root: expected a checkpoint folder, got '~/zoo' (no such folder)"): refused as what it is
    assert explain_main(["--model", "small_cnn.t", "--zoo", "~/zoo", "--out", "~/rep", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "small_cnn.t is a standard network" in err and "no such folder" not in err
    # minirocket --out ~/mr whose folder holds the entry already: refused before the work, the real path said
    _save(_small(), "small_cnn.other", home / "mr")  # a zoo folder there
    manifest = (home / "mr" / "manifest.json")
    text = manifest.read_text().replace('"small_cnn.other"', '"nv_minirocket.none"')
    manifest.write_text(text)
    assert minirocket_main(["--data", "none.npz", "--out", "~/mr"]) == 2
    assert f"out: {home / 'mr'} already holds nv_minirocket.none" in capsys.readouterr().err
    assert not (home.parent / "cwd" / "~").exists()


# ------------------------------------------------------------------------------------ finding 3: long names
def test_an_entry_name_too_long_for_a_file_system_is_refused_before_anything_is_written(tmp_path):
    longest = "small_cnn." + "a" * 219  # 229 characters: the longest name taken (zoo.MAX_NAME)
    # the writer's longest siblings of its file, .<name>.safetensors.<8>.tmp and .old, are then exactly 255 bytes
    assert len(f".{longest}.safetensors.12345678.old") == 255 and zoo.MAX_NAME == 229
    _save(_small(), longest, tmp_path / "zoo")  # the limit is one a file system takes: saved and loaded
    _save(_small(1), longest, tmp_path / "zoo", overwrite=True)  # a replacement too (its .old link beside it)
    assert nv.create_model(longest, pretrained=True, root=tmp_path / "zoo").pretrained_cfg["name"] == longest
    for name in (longest + "a", "small_cnn." + "a" * 250):
        with pytest.raises(ValueError, match=r"^--name: expected a name of at most 229 characters .* got one of "
                                             rf"{len(name)}"):
            zoo.check_entry_name(name, "small_cnn", "--name")
    with pytest.raises(ValueError, match=r"^name: expected a name of at most 229 characters"):
        _save(_small(), "small_cnn." + "a" * 250, tmp_path / "other")  # was OSError [Errno 36] File name too long
    assert not (tmp_path / "other").exists()
    with pytest.raises(ValueError, match=r"^name: expected a name of at most 229"):
        zoo.refuse_existing(tmp_path / "zoo", ["small_cnn." + "a" * 250], overwrite=False)


def test_explanation_save_refuses_a_name_too_long_by_name_and_saves_the_longest_it_takes(tmp_path):
    torch.manual_seed(0)
    net = nv.wrap(torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU()), num_classes=3)
    x = torch.randn(5, 1, 8, 8)
    net(x)
    exp = net.eval().explain(x)
    stem = "e" * 218  # the longest saved: the writer's temporary sibling of the sidecar then takes exactly 255 bytes
    assert len(f".{stem}.json.neuroview-journal.12345678.tmp") == 255
    exp.save(tmp_path / stem)
    assert torch.equal(type(exp).load(tmp_path / stem).logits, exp.logits)
    for path, said in ((tmp_path / ("e" * 300), "file name 'eeee"), (tmp_path / (stem + "e"), "file name 'eeee"),
                       (tmp_path / ("d" * 256) / "x", "folder name 'dddd")):
        with pytest.raises(ValueError, match=rf"^path: expected folder names of at most 255 bytes .* got a {said}"):
            exp.save(path)  # was OSError [Errno 36] File name too long
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"{stem}.safetensors", f"{stem}.json"])


# ------------------------------------------------------------------------------- finding 4: FILE.NPZ, FILE.CSV
def test_an_upper_case_npz_or_csv_suffix_is_read_as_that_file(tmp_path):
    from neuroview.training.data_arg import data_module
    from neuroview.training.minirocket_cli import data_spec
    from neuroview.viz.report import data_module as explain_data

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((30, 1, 16)).astype("float32"), np.arange(30) % 3
    with open(tmp_path / "SMALL.NPZ", "wb") as f:  # np.savez would add ".npz" to a name it does not end in
        np.savez(f, X=X, y=y)
    rows = np.concatenate([y[:, None], X[:, 0]], axis=1)
    np.savetxt(tmp_path / "SMALL.CSV", rows, delimiter=",", fmt="%g")
    for f, kind in (("SMALL.NPZ", "NpzDataModule"), ("SMALL.CSV", "CsvDataModule")):
        path = str(tmp_path / f)
        assert type(data_module(path)).__name__ == kind  # retrofit's and sparsify's --data
        assert type(explain_data(path)).__name__ == kind  # explain's
        assert data_spec(path)["class_path"] == f"neuroview.data.{kind}"  # minirocket's
    dm = explain_data(str(tmp_path / "SMALL.NPZ"))
    dm.setup("fit")
    n = sum(len(b[-1]) for b in dm._loader("train")) + sum(len(b[-1]) for b in dm.val_dataloader())
    assert n == len(dm._dataset("train")) + len(dm._dataset("val")) > 0
    # a file of another suffix is refused, saying it is a file of a suffix none reads
    np.save(tmp_path / "x.npy", X)
    with pytest.raises(ValueError, match=r"got '.*x\.npy' \(a file, but its suffix '\.npy' is none of \.npz, \.csv, \.tsv\)"):
        explain_data(str(tmp_path / "x.npy"))


# ------------------------------------------------------------- review R5 of e1f51a3: findings 1, 5, 6, 7, 8, 9
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
from argparse import Namespace  # noqa: E402
from pathlib import Path  # noqa: E402

from neuroview.zoo import files  # noqa: E402


def _chattr(flag: str, path: Path) -> bool:
    """``chattr flag path`` as root (a folder root cannot write into otherwise); False where it cannot be set."""
    if os.geteuid() != 0 or shutil.which("chattr") is None:
        return False
    return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0


def test_a_zoo_folder_named_tilde_and_no_user_s_name_is_that_folder_not_a_runtime_error(home, monkeypatch):
    # R5-1: pathlib's expanduser raised "Could not determine home directory" for "~no_such_user_xyz"
    assert files.checkpoints_dir("~no_such_user_xyz") == Path("~no_such_user_xyz")
    _save(_small(), "small_cnn.t", "~no_such_user_xyz")
    assert (home.parent / "cwd" / "~no_such_user_xyz" / "small_cnn.t.safetensors").is_file()
    assert zoo.list_pretrained(root="~no_such_user_xyz") == ["small_cnn.t"]
    with pytest.raises(ValueError, match=r"out: ~no_such_user_xyz already holds small_cnn.t"):
        zoo.refuse_existing("~no_such_user_xyz", ["small_cnn.t"], overwrite=False)
    assert files.unwritable("~no_such_user_xyz") is None
    monkeypatch.setenv("NEUROVIEW_CHECKPOINTS", "~no_such_user_xyz")
    assert zoo.list_pretrained() == ["small_cnn.t"]
    # ~ and ~/x are still the home folder's
    assert files.checkpoints_dir("~") == home and files.checkpoints_dir("~/z") == home / "z"


def test_a_name_of_229_characters_is_taken_and_the_refusal_names_the_option_that_sets_it(tmp_path, capsys):
    # R5-6: a cap of 200 refused 201..229, which file systems take; its advice named no option the user could set
    from neuroview.training.minirocket_cli import main as minirocket_main

    rng = np.random.default_rng(0)
    y = np.arange(30) % 3
    X = (rng.standard_normal((30, 1, 16)) + y[:, None, None]).astype("float32")
    data = tmp_path / ("s" * 220 + ".npz")  # its stem makes a name of 14 + 220 + 7 > 229 characters
    np.savez(data, X=X, y=y)
    out = tmp_path / "mr"
    assert minirocket_main(["--data", str(data), "--num-features", "84", "--max-k90", "10", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--data: expected a name of at most 229 characters" in err and "pass a shorter --tag" in err
    assert not out.exists()
    assert minirocket_main(["--data", str(data), "--num-features", "84", "--out", str(out), "--tag", "t" * 215]) == 0
    assert zoo.list_pretrained(root=out) == ["nv_minirocket." + "t" * 215]  # 229 characters: written
    with pytest.raises(ValueError, match=r"^--name: expected a name of at most 229 .*; pick a shorter one"):
        zoo.refuse_existing(tmp_path / "z", ["small_cnn." + "a" * 220], False, "--name")


def test_explanation_load_takes_a_pair_whose_stem_is_too_long_to_save_under(tmp_path):
    # R5-7: load made no temporary file, yet refused stems of 219..243 bytes
    torch.manual_seed(0)
    net = nv.wrap(torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU()), num_classes=3)
    x = torch.randn(5, 1, 8, 8)
    net(x)
    exp = net.eval().explain(x)
    exp.save(tmp_path / "short")
    stem = "e" * 243  # the longest a file system takes: <stem>.safetensors is 255 bytes
    for suffix in (".safetensors", ".json"):
        os.rename(tmp_path / f"short{suffix}", tmp_path / f"{stem}{suffix}")
    assert torch.equal(type(exp).load(tmp_path / stem).logits, exp.logits)
    with pytest.raises(ValueError, match=r"^path: expected .* a file name of at most 218 bytes"):
        exp.save(tmp_path / stem)  # a save still leaves room for its temporary files
    with pytest.raises(ValueError, match=r"^path: expected .* a file name of at most 243 bytes .* \(244 bytes"):
        type(exp).load(tmp_path / (stem + "e"))  # the bare OSError [Errno 36] is still said by name


def test_an_out_whose_names_are_too_long_is_refused_before_the_work(tmp_path):
    # R5-5: a folder name over 255 bytes was a bare traceback; retrofit's file of 242..255 bytes failed after the fit
    from neuroview.training.retrofit_out import check_out
    from neuroview.training.sparsify_cli import not_written

    with pytest.raises(ValueError, match=r"^out: expected a folder .* a folder name of 300 bytes .*; pick a shorter --out"):
        zoo.refuse_existing(tmp_path / ("o" * 300) / "zoo", ["small_cnn.a"], False)
    longest = "w" * (255 - 14 - len(".safetensors")) + ".safetensors"  # .<name>.<8>.tmp is then 255 bytes
    assert len(f".{longest}.12345678.tmp") == 255
    assert check_out(Namespace(out=str(tmp_path / longest), overwrite=False)) is None
    said = check_out(Namespace(out=str(tmp_path / ("w" + longest)), overwrite=False))
    assert said.startswith("has a file name of 242 bytes") and said.endswith("pick a shorter --out")
    said = check_out(Namespace(out=str(tmp_path / ("d" * 256) / "w.safetensors"), overwrite=False))
    assert said.startswith("has a folder name of 256 bytes")
    import errno

    assert "pick a shorter --out" in not_written("x", OSError(errno.ENAMETOOLONG, "File name too long"))
    assert "free the disk, and run" in not_written("x", OSError(errno.ENOSPC, "No space left on device"))
    assert "make the folder writable" in not_written("x", OSError(errno.EPERM, "Operation not permitted"))


def test_the_probe_of_an_append_only_folder_leaves_at_most_one_file_and_says_why(tmp_path):
    # R5-8: each check left a .neuroview-probe.<random>.tmp it could not remove
    assert files.unwritable(tmp_path) is None and list(tmp_path.iterdir()) == []  # a writable folder: nothing left
    ap = tmp_path / "ap"
    ap.mkdir()
    if not _chattr("+a", ap):
        pytest.skip("needs root and chattr +a to make an append-only folder")
    try:
        for _ in range(3):
            where, why = files.unwritable(ap / "zoo")
            assert where == ap and "files can be made in it but not removed or renamed" in why
        assert [p.name for p in ap.iterdir()] == [files.PROBE]  # one, not one a check
        with pytest.raises(ValueError, match=r"which cannot be written .*not removed or renamed"):
            zoo.refuse_existing(ap, ["small_cnn.a"], False)
    finally:
        _chattr("-a", ap)


def test_overwrite_of_a_file_that_cannot_be_replaced_is_refused_before_the_work(tmp_path):
    # R5-9: an immutable earlier --out file was found only by the rename after the work
    from neuroview.training.retrofit_out import check_out

    _save(_small(), "small_cnn.a", tmp_path / "zoo")
    w = tmp_path / "w.safetensors"
    w.write_bytes(b"earlier")
    assert check_out(Namespace(out=str(w), overwrite=True)) is None
    zoo.refuse_existing(tmp_path / "zoo", ["small_cnn.a"], True)  # replaceable: no refusal
    entry = tmp_path / "zoo" / "small_cnn.a.safetensors"
    if not (_chattr("+i", entry) and _chattr("+i", w)):
        _chattr("-i", entry)
        pytest.skip("needs root and chattr +i to make a file that cannot be replaced")
    try:
        assert check_out(Namespace(out=str(w), overwrite=True)).startswith("exists and cannot be replaced: ")
        with pytest.raises(ValueError, match=r"^out: '.*small_cnn\.a\.safetensors' cannot be replaced: "):
            zoo.refuse_existing(tmp_path / "zoo", ["small_cnn.a"], True)
    finally:
        _chattr("-i", entry)
        _chattr("-i", w)
