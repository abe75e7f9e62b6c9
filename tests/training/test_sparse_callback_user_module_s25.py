"""The ``Sparsify`` callback on a user's own LightningModule (session 25, probe P1 finding 1): a module whose forward
feeds its network something else than the batch (an input stem) is refused before a head is fitted on inputs the
module never feeds it (the test scored 1.7% where the dense network scored 91%); a module that keeps its network under
another attribute is told that the callback reads ``model`` and where its network is (was: "net: ... got NoneType")."""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

import neuroview as nv
from neuroview.data import DigitsDataModule
from neuroview.training.module import NeuroViewModule
from neuroview.training.sparse_callback import Sparsify


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))


class Mine(pl.LightningModule):
    """A user's module (f1.py / f1b.py made tiny): its NeuroView network at ``at``, fed through a fixed stem
    ``-3x + 1`` (a standardization, standing in for an encoder) where ``stem``."""

    def __init__(self, at: str = "model", stem: bool = True):
        super().__init__()
        torch.manual_seed(0)
        self.register_buffer("a", torch.tensor(-3.0 if stem else 1.0))
        self.register_buffer("b", torch.tensor(1.0 if stem else 0.0))
        net = nv.create_model("nv_small_cnn", num_classes=10, widths=(4, 8))
        net(torch.randn(4, 1, 8, 8))  # built
        setattr(self, at, net)
        self.at = at

    def forward(self, x):
        return getattr(self, self.at)(self.a * x + self.b)

    def training_step(self, batch, i):
        return F.cross_entropy(self(batch[0]), batch[-1])

    def test_step(self, batch, i):
        self.log("test_acc", (self(batch[0]).argmax(1) == batch[-1]).float().mean())

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), 1e-2)


def _trainer(root, **kw):
    kw = {"logger": False, "enable_checkpointing": False, "max_epochs": 1, "limit_train_batches": 2,
          "limit_val_batches": 0, "limit_test_batches": 1, **kw}
    return pl.Trainer(enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=1,
                      default_root_dir=str(root), callbacks=[Sparsify()], **kw)


def test_a_user_module_whose_forward_is_not_its_model_is_refused(tmp_path):
    m = Mine(stem=True)
    tr = _trainer(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tr.fit(m, datamodule=DigitsDataModule(batch_size=64))
        dense = m.model
        with pytest.raises(ValueError) as e:  # was: the head fitted on model(x), scored through the stem: 0.914 -> 0.017
            tr.test(m, datamodule=DigitsDataModule(batch_size=64), verbose=False)
    text = str(e.value)
    assert text.startswith("Sparsify: "), text
    for part in ("Mine", "'model'", "forward", "nv.sparsify(module.model"):
        assert part in text, (part, text)
    assert m.model is dense and getattr(dense, "sparsity_path", None) is None  # the dense network left in place
    assert not list(tmp_path.rglob("sparse*")), "no sparse file written for a refused refit"


@pytest.mark.parametrize("fit", [True, False])
def test_a_user_module_without_a_model_attribute_names_it(tmp_path, fit):
    m = Mine(at="net", stem=False)
    tr = _trainer(tmp_path)
    dm = DigitsDataModule(batch_size=64)
    with warnings.catch_warnings(), pytest.raises(TypeError) as e:  # a test alone was a bare AttributeError
        warnings.simplefilter("ignore")
        tr.fit(m, datamodule=dm) if fit else tr.test(m, datamodule=dm, verbose=False)
    text = str(e.value)
    assert text.startswith("Sparsify: "), text  # was "Sparsify: net: expected a NeuroViewCNN ... got NoneType"
    for part in ("'model'", "Mine", "NeuroViewCNN at 'net'", "nv.sparsify(module.net"):
        assert part in text, (part, text)
    assert "got NoneType" not in text
    assert tr.global_step == 0 and getattr(m.net, "sparsity_path", None) is None


def test_a_user_module_whose_forward_is_its_model_is_refitted(tmp_path):
    m = Mine(stem=False)  # forward(x) == model(x): nothing to refuse
    tr = _trainer(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tr.fit(m, datamodule=DigitsDataModule(batch_size=64))
        out = tr.test(m, datamodule=DigitsDataModule(batch_size=64), verbose=False)
    assert m.model.sparsity_path is not None and "test_acc" in out[0]
    assert (m.model.classifier.weight == 0).any()  # a sparse head scored


def test_a_plain_neuroview_module_is_refitted_without_an_extra_forward(tmp_path):
    pl.seed_everything(0)
    m = NeuroViewModule("nv_small_cnn", num_classes=10, in_channels=1, model_kwargs={"widths": [4, 8]})
    tr = _trainer(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tr.fit(m, datamodule=DigitsDataModule(batch_size=64))
        calls = []
        handle = m.register_forward_pre_hook(lambda mod, args: calls.append(args[0].shape[0]))
        tr.test(m, datamodule=DigitsDataModule(batch_size=64), verbose=False)
        handle.remove()
    assert m.model.sparsity_path is not None
    assert len(calls) == 1, calls  # the one test batch (limit_test_batches=1): NeuroViewModule's forward is its model's


class Spun(NeuroViewModule):
    """A NeuroViewModule whose own forward puts a stem in front of its network: checked as a user's module is."""

    def forward(self, x, lengths=None):
        return super().forward(2 * x + 1, lengths)


def test_a_neuroview_module_subclass_with_its_own_forward_is_checked(tmp_path):
    pl.seed_everything(0)
    m = Spun("nv_small_cnn", num_classes=10, in_channels=1, model_kwargs={"widths": [4, 8]})
    tr = _trainer(tmp_path)
    with warnings.catch_warnings(), pytest.raises(ValueError, match=r"^Sparsify: .*Spun.*'model'"):
        warnings.simplefilter("ignore")
        tr.fit(m, datamodule=DigitsDataModule(batch_size=64))
        tr.test(m, datamodule=DigitsDataModule(batch_size=64), verbose=False)
    assert getattr(m.model, "sparsity_path", None) is None


class Loaders(pl.LightningDataModule):
    """A user's data module whose training loader draws from a generator of its own (read as it is: in order)."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.ds = torch.utils.data.TensorDataset(torch.randn(40, 1, 8, 8, generator=g), torch.arange(40) % 10)
        self.gen = torch.Generator().manual_seed(3)
        self.loader = torch.utils.data.DataLoader(self.ds, batch_size=8, generator=self.gen)  # each iter draws its seed

    def train_dataloader(self):
        return self.loader


@pytest.mark.parametrize("stem", [False, True])
def test_the_check_leaves_modes_rngs_and_the_loader_s_order_as_they_were(stem):
    from neuroview.training.sparse_module_check import check_forward

    m = Mine(stem=stem).train()
    m.model.backbone.eval()  # a frozen part, as a user may keep one
    dm = Loaders()
    torch.manual_seed(7), np.random.seed(7), random.seed(7)
    modes = [(n, s.training) for n, s in m.named_modules()]
    before = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate(), dm.gen.get_state())
    if stem:
        with pytest.raises(ValueError, match=r"^Sparsify: .*forward"):
            check_forward(m, dm, None)
    else:
        check_forward(m, dm, None)
    after = (torch.get_rng_state(), np.random.get_state()[1], random.getstate(), dm.gen.get_state())
    assert torch.equal(before[0], after[0]) and np.array_equal(before[1], after[1]) and before[2] == after[2]
    assert torch.equal(before[3], after[3])  # the loader's own: the next epoch's draws as they would have been
    assert [(n, s.training) for n, s in m.named_modules()] == modes


class TwoInputs(Mine):
    def forward(self, x, y):  # reads what no batch's x alone gives it
        return self.model(x) + y


def test_a_forward_the_batch_cannot_be_given_to_is_refused_not_guessed():
    from neuroview.training.sparse_module_check import check_forward

    with pytest.raises(ValueError, match=r"^Sparsify: .*TwoInputs.*could not be called"):
        check_forward(TwoInputs(stem=False), Loaders(), None)


class LogSoftmax(Mine):
    """A user's module that feeds its network the batch as it is and post-processes the logits: nothing to refuse
    (the refit reads the network's codes of the same batches; the forward's argmax is the network's)."""

    def forward(self, x):
        return F.log_softmax(self.model(x), dim=1)


def test_a_forward_that_post_processes_the_network_s_logits_is_refitted(tmp_path):
    m = LogSoftmax(stem=False)
    tr = _trainer(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tr.fit(m, datamodule=DigitsDataModule(batch_size=64))
        tr.test(m, datamodule=DigitsDataModule(batch_size=64), verbose=False)
    assert m.model.sparsity_path is not None and (m.model.classifier.weight == 0).any()


class NeverCalled(Mine):
    """A module whose forward never calls its 'model' (it holds a copy it decides with): refused."""

    def forward(self, x):
        return self.model.classifier(torch.zeros(x.shape[0], self.model.classifier.in_features))


def test_a_forward_that_never_calls_its_network_is_refused():
    from neuroview.training.sparse_module_check import check_forward

    with pytest.raises(ValueError, match=r"^Sparsify: NeverCalled's forward does not feed .*was never called"):
        check_forward(NeverCalled(stem=False), Loaders(), None)
