"""``nv.sparsify``, ``nv.retrofit`` and ``nv.finetune_sparse`` took a data module whose classes were not the ones the
network records (a zoo entry's ``dataset.class_names``) without a word, where ``neuroview sparsify/retrofit --data``
refuses the same file: GunPoint with its labels renamed ('1' -> 'b', '2' -> 'a', so that the data module numbers 'a',
the entry's '2', as 0) gave a sparse copy whose outputs index the file's classes under a record naming the entry (149
of 150 test series named wrongly from it), and a retrofit that scored the standard entry 0% (a cost of -99 points) on
series it classifies 100% right. ``nv.unit_gallery`` (and ``write_report``'s ``gallery_data``) read such a module's
labels as the network's classes too. Now each refuses it before any work, in the command line's words, naming its own
argument; data of the same names in the same order, plain loaders of integer labels (nothing to compare) and networks
that record no names run as before. Networks here record their classes by hand, as ``create_model(..., pretrained=True)``
sets them."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import neuroview as nv
from neuroview.data import NpzDataModule

# the command line's words (`neuroview sparsify --data`), written out: what follows the argument's name
WORDS = ("its classes, in order, are ['a', 'b']; the model's outputs are ['1', '2']: a data module numbers the classes "
         "it reads, so its class i would be scored and named as the model's class i. Pass data of the classes the model "
         "was trained on (every one of them in its training split)")
RECORD = {"name": "tiny.ab", "dataset": {"name": "ab", "class_names": ["1", "2"]}}


def _file(folder, names: tuple[str, str]) -> str:
    """40 series of 24 steps, class k (``names[k]``) drawn around k: the same series under either pair of names."""
    rng = np.random.default_rng(0)
    k = np.arange(40) % 2
    x = (rng.normal(size=(40, 1, 24)) + 2.0 * k[:, None, None]).astype(np.float32)
    path = folder / f"{''.join(names)}.npz"
    np.savez(path, X=x, y=np.array([names[i] for i in k]))
    return str(path)


@pytest.fixture
def files(tmp_path):
    """``(file of classes '1', '2', the same series as classes 'b', 'a')``: sorted, 'a' (the '2' series) is class 0."""
    return _file(tmp_path, ("1", "2")), _file(tmp_path, ("b", "a"))


def _dm(path: str) -> NpzDataModule:
    return NpzDataModule(path, batch_size=8, val_fraction=0, test_fraction=0.25)


def _net(record: dict | None = RECORD) -> nn.Module:
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), 2, input_shape=(1, 24)).eval()
    if record is not None:
        net.pretrained_cfg = {**record, "dataset": dict(record["dataset"])}
    return net


def _standard(record: dict | None = RECORD) -> nn.Module:
    torch.manual_seed(0)
    std = nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(4, 2)).eval()
    if record is not None:
        std.pretrained_cfg = {**record, "dataset": dict(record["dataset"])}
    return std


@contextlib.contextmanager
def _calls(module: nn.Module):
    """A list that counts the forward calls of ``module`` inside the block (none: refused before any work)."""
    seen: list = []
    handle = module.register_forward_hook(lambda *_: seen.append(1))
    try:
        yield seen
    finally:
        handle.remove()


def _refused(what: str, fn, *args, **kw) -> str:
    with pytest.raises(ValueError) as e:
        fn(*args, **kw)
    assert str(e.value).startswith(f"{what}: {WORDS}"), str(e.value)
    return str(e.value)


def test_sparsify_refuses_data_of_other_classes_before_any_work(files):
    good, renamed = files
    net = _net()
    with _calls(net.backbone) as seen:
        message = _refused("train", nv.sparsify, net, _dm(renamed), points=5)
        _refused("val", nv.sparsify, net, _dm(good), val=_dm(renamed), points=5)
    assert not seen, "codes were computed before the refusal"
    # where the names come from, and the override of a network trained since on other classes
    assert message.endswith("; the model's names are those its record holds, pretrained_cfg['dataset']['class_names']; "
                            "a network trained since on other classes records them: pretrained_cfg['dataset'] = "
                            "{'class_names': [...]}"), message


def test_sparsify_still_takes_the_same_classes_loaders_and_unrecorded_networks(files):
    good, renamed = files
    sparse = nv.sparsify(_net(), _dm(good), points=5, tolerance=50.0)
    assert sparse.pretrained_cfg == {"sparsified_from": "tiny.ab"}
    nv.sparsify(_net(), _dm(renamed).train_dataloader(), points=5, tolerance=50.0)  # integer labels: nothing to compare
    nv.sparsify(_net(record=None), _dm(renamed), points=5, tolerance=50.0)  # a network that names no classes


def test_retrofit_refuses_train_and_test_of_other_classes_before_any_work(files):
    good, renamed = files
    std = _standard()
    with _calls(std[0]) as seen:
        _refused("train", nv.retrofit, std, _dm(renamed), _dm(renamed))
        _refused("test", nv.retrofit, std, _dm(good), _dm(renamed))
    assert not seen, "the network was run before the refusal"
    res = nv.retrofit(std, _dm(good), _dm(good))
    assert res.test_size == 10 and res.standard_acc is not None
    assert nv.retrofit(_standard(record=None), _dm(renamed), _dm(renamed)).test_size == 10


def test_finetune_sparse_refuses_data_of_other_classes_also_for_a_sparse_copy(files):
    good, renamed = files
    net = _net()
    with _calls(net.backbone) as seen:
        _refused("train", nv.finetune_sparse, net, _dm(renamed), epochs=1)
    assert not seen
    copy = nv.sparsify(net, _dm(good), points=5, tolerance=50.0)  # records {"sparsified_from": "tiny.ab"} only
    message = _refused("train", nv.finetune_sparse, copy, _dm(renamed), epochs=1)
    assert "the model's names are those of the zoo entry 'tiny.ab' it was made from;" in message
    tuned = nv.finetune_sparse(copy, _dm(good), epochs=1)
    _refused("train", nv.finetune_sparse, tuned, _dm(renamed), epochs=1)  # a copy of a copy: its source's classes too
    nv.finetune_sparse(copy, _dm(renamed).train_dataloader(), epochs=1)  # a plain loader: as before
    copy.pretrained_cfg["dataset"] = {"class_names": ["a", "b"]}  # the override the error names: the copy's own names
    nv.finetune_sparse(copy, _dm(renamed), epochs=0)
    with pytest.raises(ValueError, match=r"^train: its classes, in order, are \['1', '2'\]; the model's outputs are "
                                         r"\['a', 'b'\]"):
        nv.finetune_sparse(copy, _dm(good), epochs=0)


@pytest.mark.parametrize("record", [{"loaded_from": "other.safetensors", "was": "tiny.ab"},
                                    {"finetuned_from": "tiny.ab", "after": {"loaded_from": "other.safetensors"}}])
def test_a_copy_whose_head_is_of_unchecked_data_is_not_held_to_the_entry(files, record):
    """A network loaded with another file keeps the entry's record aside (its bytes loaded back give it again), but its
    outputs may index other classes: nothing is refused."""
    _, renamed = files
    net = _net()
    net.__dict__["_neuroview_entry_record"] = net.pretrained_cfg
    net.pretrained_cfg = record
    nv.finetune_sparse(net, _dm(renamed), epochs=0)


def test_unit_gallery_refuses_a_data_module_of_other_classes(files):
    good, renamed = files
    net = _net()
    _refused("loader", nv.unit_gallery, net, _dm(renamed), units=[0], k=2)
    _refused("loader", net.unit_gallery, _dm(renamed), [0], k=2)
    assert nv.unit_gallery(net, _dm(good), units=[0], k=2).k == 2
    assert nv.unit_gallery(_net(record=None), _dm(renamed), units=[0], k=2).k == 2


def test_write_report_refuses_gallery_data_of_other_classes(files, tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("jinja2")
    from neuroview.viz.report_writer import write_report

    _, renamed = files
    x = torch.randn(4, 1, 24)
    _refused("gallery_data", write_report, _net(), x, None, tmp_path / "report", examples=1, progress=False,
             gallery_data=_dm(renamed), baseline=None)  # named as write_report's argument, not unit_gallery's loader
    assert not (tmp_path / "report").exists()


class _OwnModule(pl.LightningDataModule):
    """A user's data module that names its classes, as neuroview's do."""

    class_names = ["a", "b"]

    def train_dataloader(self):
        x = torch.randn(20, 1, 24)
        return DataLoader(TensorDataset(x, torch.arange(20) % 2), batch_size=8)


def test_a_users_data_module_that_names_its_classes_is_checked_too():
    _refused("train", nv.sparsify, _net(), _OwnModule(), points=5)


@pytest.mark.slow
def test_gunpoint_renamed_is_refused_in_the_command_lines_words(tmp_path):
    """The probe's case: GunPoint (aeon) with its labels renamed '1' -> 'b', '2' -> 'a', given to the zoo's entries."""
    from aeon.datasets import load_classification

    from neuroview.training.sparsify_cli import main

    (xtr, ytr), (xte, yte) = (load_classification("GunPoint", split=s) for s in ("train", "test"))
    ren = {"1": "b", "2": "a"}
    path = str(tmp_path / "gp_renamed.npz")
    np.savez(path, X=xtr.astype(np.float32), y=np.array([ren[v] for v in ytr]),
             X_test=xte.astype(np.float32), y_test=np.array([ren[v] for v in yte]))
    said = io.StringIO()
    with contextlib.redirect_stderr(said):
        assert main(["nv_lite.gunpoint", "--data", path, "--out", str(tmp_path / "zoo")]) == 2
    cli = said.getvalue().strip().splitlines()[-1]
    assert cli.startswith(f"neuroview sparsify: --data: {path}: {WORDS}"), cli
    dm = NpzDataModule(path, val_fraction=0, resample=True)
    message = _refused("train", nv.sparsify, nv.create_model("nv_lite.gunpoint", pretrained=True), dm)
    assert message[len("train: "):].startswith(cli[len(f"neuroview sparsify: --data: {path}: "):] + "; the model's names")
    _refused("train", nv.retrofit, nv.create_model("lite.gunpoint", pretrained=True), dm, dm)
    same = str(tmp_path / "gp_same.npz")  # GunPoint's own names: read, and scored as the manifest says (100%)
    np.savez(same, X=xtr.astype(np.float32), y=ytr, X_test=xte.astype(np.float32), y_test=yte)
    dm = NpzDataModule(same, val_fraction=0, resample=True)
    assert nv.retrofit(nv.create_model("lite.gunpoint", pretrained=True), dm, dm).standard_acc == 1.0


def test_fit_ridge_head_refuses_a_data_module_of_other_classes_and_its_copy_is_held_to_them(files):
    """``fit_ridge_head`` refitted the entry's head on the file's numbering (output 0 became 'a', the entry's '2') and
    recorded ``refitted_from`` the entry: now refused before any work, and its copy is checked like a sparse one."""
    good, renamed = files
    net = _net()
    _refused("train", nv.fit_ridge_head, net, _dm(renamed))
    refit = nv.fit_ridge_head(net, _dm(good))
    _refused("train", nv.finetune_sparse, refit, _dm(renamed), epochs=0)  # a copy of it: its source's classes too
    assert nv.fit_ridge_head(_net(record=None), _dm(renamed)) is not None  # nothing recorded: nothing to compare
