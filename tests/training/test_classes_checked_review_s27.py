"""Review R5 of 2a79bf6 (data modules checked against the classes a network records): the Sparsify callback refused,
after a whole fit, a network just fitted on the data module's own classes; a data module naming its classes in
``setup()`` was never checked (the check ran before the entry point set it up); ``nv.fit_minirocket`` skipped the check
``fit_ridge_head`` makes; an Ensemble of recorded members was not checked; ``write_report(gallery_data=)`` refused only
after its work, naming ``loader``."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import neuroview as nv
from neuroview.training.sparse_callback import Sparsify

from test_classes_checked_s27 import WORDS, _calls, _dm, _file, _net, _refused, files  # noqa: F401 - a fixture


class _SetupNames(pl.LightningDataModule):
    """A user's data module that names its classes in ``setup()``, as Lightning's docs make datasets there."""

    def setup(self, stage=None):
        self.class_names = ["a", "b"]
        self.ds = TensorDataset(torch.randn(20, 1, 24), torch.arange(20) % 2)

    def train_dataloader(self):
        return DataLoader(self.ds, batch_size=8)


def test_a_data_module_naming_its_classes_in_setup_is_checked():
    net = _net()
    with _calls(net.backbone) as seen:
        _refused("train", nv.sparsify, net, _SetupNames(), points=5)
        _refused("train", nv.fit_ridge_head, net, _SetupNames())
        _refused("loader", nv.unit_gallery, net, _SetupNames(), units=[0], k=2)
    assert not seen, "codes were computed before the refusal"
    dm = _SetupNames()
    dm.setup()
    _refused("train", nv.sparsify, net, dm, points=5)  # the same answer set up or not
    assert nv.unit_gallery(_net(record=None), _SetupNames(), units=[0], k=2).k == 2  # nothing recorded: as before


def test_fit_minirocket_refuses_a_data_module_of_other_classes(files, monkeypatch):
    good, renamed = files
    mr = nv.create_model("nv_minirocket", num_classes=2, in_channels=1, max_len=24, num_features=84)
    mr.pretrained_cfg = {"name": "mr.ab", "dataset": {"class_names": ["1", "2"]}}
    fitted, fit = [], type(mr.backbone).fit
    monkeypatch.setattr(type(mr.backbone), "fit", lambda self, x: fitted.append(1) or fit(self, x))  # the biases' fit
    _refused("train", nv.fit_minirocket, mr, _dm(renamed))
    assert not fitted, "the biases were fitted before the refusal"
    out = nv.fit_minirocket(mr, _dm(good))
    assert nv.unit_gallery(out, _dm(good), units=[0], k=2).k == 2
    _refused("loader", nv.unit_gallery, out, _dm(renamed), units=[0], k=2)


@pytest.mark.filterwarnings("ignore:members:UserWarning")
def test_an_ensemble_of_recorded_members_is_checked_against_their_names(files):
    good, renamed = files
    ens = nv.Ensemble([_net(), _net()]).eval()
    message = _refused("train", nv.sparsify, ens, _dm(renamed), points=5)
    assert message.endswith("; the model's names are those its members record; an Ensemble trained since on other "
                            "classes records them: net.pretrained_cfg = {'dataset': {'class_names': [...]}}"), message
    ens.pretrained_cfg = {"dataset": {"class_names": ["a", "b"]}}  # the override it names
    assert nv.unit_gallery(ens, _dm(renamed), units=[0], k=2).k == 2
    del ens.pretrained_cfg
    _refused("loader", nv.unit_gallery, ens, _dm(renamed), units=[0], k=2)
    assert nv.unit_gallery(ens, _dm(good), units=[0], k=2).k == 2
    other = _net()
    other.pretrained_cfg["dataset"] = {"class_names": ["2", "1"]}
    with pytest.raises(ValueError) as e:  # which names its outputs have cannot be told: the override named
        nv.sparsify(nv.Ensemble([_net(), other]).eval(), _dm(good), points=5)
    assert str(e.value).startswith("net: its members record other classes: members.0 ['1', '2'], members.1 ['2', '1']"), str(e.value)
    assert "pretrained_cfg = {'dataset': {'class_names': [...]}}" in str(e.value)
    nv.sparsify(nv.Ensemble([_net(), other]).eval(), _dm(good).train_dataloader(), points=5, tolerance=50.0)  # loader


class _Mine(pl.LightningModule):
    """A user's module holding a network that records classes '1', '2' (as ``create_model(entry, pretrained=True)``)."""

    def __init__(self):
        super().__init__()
        self.model = _net()

    def forward(self, x):
        return self.model(x)

    def training_step(self, batch, i):
        x, y = batch
        return nn.functional.cross_entropy(self.model(x), y)

    def test_step(self, batch, i):
        x, y = batch
        self.log("acc", (self.model(x).argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), 1e-2)


def _trainer(tmp_path, **kw) -> pl.Trainer:
    return pl.Trainer(callbacks=[Sparsify(tolerance=50.0, **kw)], logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(tmp_path),
                      accelerator="cpu", devices=1, max_epochs=1)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("finetune", [0, 1])
def test_sparsify_callback_takes_a_network_this_run_fitted_on_the_data_modules_classes(files, tmp_path, finetune):
    _, renamed = files
    module, dm = _Mine(), _dm(renamed)
    trainer = _trainer(tmp_path, finetune=finetune)
    trainer.fit(module, datamodule=dm)
    trainer.test(module, datamodule=dm, verbose=False)  # refused 'train: ... the model's outputs are ['1', '2']' before
    assert getattr(module.model, "sparsity_path", None) is not None
    with pytest.raises(ValueError) as e:  # its data module since of other classes than the fit's
        trainer.test(_Mine(), datamodule=_dm(renamed), verbose=False)
    assert str(e.value).startswith(f"Sparsify: datamodule: {WORDS}"), str(e.value)


@pytest.mark.filterwarnings("ignore")
def test_sparsify_callback_still_refuses_an_unfitted_network_of_other_classes_naming_itself(files, tmp_path):
    good, renamed = files
    with pytest.raises(ValueError) as e:
        _trainer(tmp_path).test(_Mine(), datamodule=_dm(renamed), verbose=False)
    assert str(e.value).startswith(f"Sparsify: datamodule: {WORDS}"), str(e.value)
    _trainer(tmp_path).test(_Mine(), datamodule=_dm(good), verbose=False)


def test_write_report_refuses_gallery_data_of_other_classes_before_any_work(files, tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("jinja2")
    from neuroview.viz.report_writer import write_report

    _, renamed = files
    net = _net()
    with _calls(net.backbone) as seen:
        _refused("gallery_data", write_report, net, torch.randn(4, 1, 24), None, tmp_path / "report", examples=1,
                 progress=False, gallery_data=_dm(renamed))  # baseline "auto": a mean_codes pass over it came first
    assert not seen, "the network was run before the refusal"
    assert not (tmp_path / "report").exists()
