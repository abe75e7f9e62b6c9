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


@pytest.fixture
def home(tmp_path, monkeypatch):
    """``$HOME`` a folder of the test's, the working directory another: a ``./~`` made there is the fault."""
    (tmp_path / "home").mkdir()
    (tmp_path / "cwd").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NEUROVIEW_CHECKPOINTS", raising=False)
    monkeypatch.chdir(tmp_path / "cwd")
    return tmp_path / "home"


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
    longest = "small_cnn." + "a" * 190  # 200 characters: the longest name taken (zoo.MAX_NAME)
    _save(_small(), longest, tmp_path / "zoo")  # the limit is one a file system takes: saved and loaded
    assert nv.create_model(longest, pretrained=True, root=tmp_path / "zoo").pretrained_cfg["name"] == longest
    for name in (longest + "a", "small_cnn." + "a" * 250):
        with pytest.raises(ValueError, match=r"^--name: expected a name of at most 200 characters .* got one of "
                                             rf"{len(name)}"):
            zoo.check_entry_name(name, "small_cnn", "--name")
    with pytest.raises(ValueError, match=r"^name: expected a name of at most 200 characters"):
        _save(_small(), "small_cnn." + "a" * 250, tmp_path / "other")  # was OSError [Errno 36] File name too long
    assert not (tmp_path / "other").exists()
    with pytest.raises(ValueError, match=r"^name: expected a name of at most 200"):
        zoo.refuse_existing(tmp_path / "zoo", ["small_cnn." + "a" * 250], overwrite=False)


def test_explanation_save_refuses_a_name_too_long_by_name_and_saves_the_longest_it_takes(tmp_path):
    torch.manual_seed(0)
    net = nv.wrap(torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU()), num_classes=3)
    x = torch.randn(5, 1, 8, 8)
    net(x)
    exp = net.eval().explain(x)
    stem = "e" * 218  # the longest taken: the writer's temporary sibling of the sidecar then takes exactly 255 bytes
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
