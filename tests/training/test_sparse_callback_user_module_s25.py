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


@pytest.mark.parametrize("stem", [False, True])
def test_the_check_leaves_modes_and_rngs_as_they_were(stem):
    from neuroview.training.sparse_module_check import FedCheck

    def refuse(message):
        raise ValueError(message)

    m = Mine(stem=stem).train()
    m.model.backbone.eval()  # a frozen part, as a user may keep one
    check = FedCheck(m, "test_step", refuse)
    batch = (torch.randn(8, 1, 8, 8), torch.arange(8))
    torch.manual_seed(7), np.random.seed(7), random.seed(7)
    modes = [(n, s.training) for n, s in m.named_modules()]
    before = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    check.start(batch)
    if stem:
        with pytest.raises(ValueError, match=r"^Sparsify: Mine's test_step .*differs from the batch's"):
            m(batch[0])
    else:
        m(batch[0])
    check.end()
    after = (torch.get_rng_state(), np.random.get_state()[1], random.getstate())
    assert torch.equal(before[0], after[0]) and np.array_equal(before[1], after[1]) and before[2] == after[2]
    assert [(n, s.training) for n, s in m.named_modules()] == modes
    assert not m.model._forward_pre_hooks, "the hook removed"


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


# ---- R3 (review of c9e6e9d): what the module's steps feed its network, observed on the first test / predict batch ----

class Images(pl.LightningDataModule):
    """A tiny 2-class image data module (channels-first [B, 1, 8, 8]) for quick refits."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        y = torch.arange(64) % 2
        self.ds = torch.utils.data.TensorDataset(torch.randn(64, 1, 8, 8, generator=g) + y[:, None, None, None], y)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(self.ds, batch_size=16)

    test_dataloader = predict_dataloader = train_dataloader


class Seqs(pl.LightningDataModule):
    """A tiny 2-class sequence data module serving ``(x [B, C, T], lengths, y)`` channels-first, as every data module
    does (C=2, T=12: a network fed ``x`` itself instead of ``[B, T, C]`` gets another shape)."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        y = torch.arange(48) % 2
        x = torch.randn(48, 2, 12, generator=g) * 0.3 + y[:, None, None]
        lengths = torch.randint(6, 13, (48,), generator=g)
        for i, n in enumerate(lengths):
            x[i, :, n:] = 0
        self.ds = torch.utils.data.TensorDataset(x, lengths, y)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(self.ds, batch_size=16)

    test_dataloader = predict_dataloader = train_dataloader


class Small(pl.LightningModule):
    """A user's module over a tiny NeuroView-CNN at ``model``; its steps call ``self.feed(x)`` (the network's logits)."""

    def __init__(self, classes: int = 2):
        super().__init__()
        torch.manual_seed(0)
        self.model = nv.create_model("nv_small_cnn", num_classes=classes, widths=(4, 8))
        self.model(torch.randn(4, 1, 8, 8))

    def feed(self, x):
        return self(x)

    def training_step(self, b, i):
        return F.cross_entropy(self.feed(b[0]), b[-1])

    def test_step(self, b, i):
        self.log("test_acc", (self.feed(b[0]).argmax(1) == b[-1]).float().mean())

    def predict_step(self, b, i):
        return self.feed(b[0]).argmax(1)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), 1e-2)


class NoForward(Small):
    """No forward at all (Lightning never calls it): the steps call ``self.model`` on the batch."""

    def feed(self, x):
        return self.model(x)


class Keyword(Small):
    def forward(self, x):
        return self.model(x=x)  # the batch by keyword


class StemInSteps(Small):
    """forward is the network alone (export, predict on prepared inputs); the steps put a stem in front of it."""

    def forward(self, x):
        return self.model(x)

    def feed(self, x):
        return self.model(-3 * x + 1)


def _run(m, dm, root, predict=False):
    tr = _trainer(root, limit_test_batches=2, limit_predict_batches=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tr.fit(m, datamodule=dm)
        return tr.predict(m, datamodule=dm) if predict else tr.test(m, datamodule=dm, verbose=False)


@pytest.mark.parametrize("cls", [NoForward, Keyword])
def test_a_module_whose_steps_feed_its_network_the_batch_is_refitted(tmp_path, cls):
    m = cls()  # NoForward was refused as "could not be called"; Keyword as "was given NoneType"
    out = _run(m, Images(), tmp_path)
    assert m.model.sparsity_path is not None and "test_acc" in out[0]
    assert list(tmp_path.rglob("sparse.safetensors")), "the sparse file written once the first batch was checked"


@pytest.mark.parametrize("predict", [False, True])
def test_a_stem_in_the_steps_is_refused_before_anything_is_scored(tmp_path, predict):
    m = StemInSteps()
    tr = _trainer(tmp_path, limit_test_batches=2, limit_predict_batches=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tr.fit(m, datamodule=Images())
        dense = m.model
        with pytest.raises(ValueError) as e:  # was: refitted on the raw batches, scored through the stem (0.696 -> 0.100)
            tr.predict(m, datamodule=Images()) if predict else tr.test(m, datamodule=Images(), verbose=False)
    text = str(e.value)
    assert text.startswith("Sparsify: StemInSteps's "), text
    for part in ("predict_step" if predict else "test_step", "'model'", "differ", "nv.sparsify(module.model"):
        assert part in text, (part, text)
    assert m.model is dense and getattr(dense, "sparsity_path", None) is None  # the dense network put back
    assert not tr.callback_metrics and not list(tmp_path.rglob("sparse*")), "nothing logged, no sparse file"


class Logged(NeuroViewModule):
    """A NeuroViewModule subclass whose forward is NeuroViewModule's, called through super()."""

    def forward(self, x, lengths=None):
        return super().forward(x, lengths)


class SeqMine(pl.LightningModule):
    """A user's module over nv_gru fed as NeuroViewModule feeds it (``call_model``: ``[B, T, C]`` and the lengths);
    ``drop``: a forward that drops the lengths (the padded steps read as data)."""

    def __init__(self, drop: bool = False):
        super().__init__()
        torch.manual_seed(0)
        self.model, self.drop = nv.create_model("nv_gru", num_classes=2, in_channels=2, max_len=12, hidden_size=8), drop

    def forward(self, x, lengths=None):
        from neuroview._batch import call_model

        return call_model(self.model, x, None if self.drop else lengths)

    def training_step(self, b, i):
        return F.cross_entropy(self(b[0], b[1]), b[-1])

    def test_step(self, b, i):
        self.log("test_acc", (self(b[0], b[1]).argmax(1) == b[-1]).float().mean())

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), 1e-2)


@pytest.mark.parametrize("make", [lambda: Logged("nv_gru", num_classes=2, in_channels=2, max_len=12,
                                                 model_kwargs={"hidden_size": 8}), SeqMine],
                         ids=["NeuroViewModule_subclass", "user_module"])
def test_an_rnn_module_fed_as_the_refit_reads_is_refitted(tmp_path, make):
    pl.seed_everything(0)
    m = make()  # was refused: the network reads steps_first(x) ([B, T, C]), not the channels-first batch
    out = _run(m, Seqs(), tmp_path)
    assert m.model.sparsity_path is not None and "test_acc" in out[0]


def test_an_rnn_module_that_drops_the_lengths_is_refused(tmp_path):
    m = SeqMine(drop=True)
    with pytest.raises(ValueError, match=r"^Sparsify: SeqMine's test_step .*lengths"):
        _run(m, Seqs(), tmp_path)
    assert getattr(m.model, "sparsity_path", None) is None and not list(tmp_path.rglob("sparse*"))


class TwoInputs(Small):
    def forward(self, x, y):  # reads what no batch's x alone gives it: the callback never calls it itself
        return self.model(x) + y

    def feed(self, x):
        return self(x, 0.0)


def test_a_forward_the_batch_cannot_be_given_to_is_judged_by_what_the_steps_feed(tmp_path):
    m = TwoInputs()  # was refused as "could not be called" (the callback called forward(x) itself)
    _run(m, Images(), tmp_path)
    assert m.model.sparsity_path is not None


class NeverCalled(Small):
    """A module whose steps never call its 'model' (it decides with a copy kept elsewhere): refused."""

    def __init__(self):
        super().__init__()
        self.copy = [self.model]  # not a submodule: the network as it was before the refit

    def feed(self, x):
        return self.copy[0](x)


def test_steps_that_never_call_the_network_are_refused(tmp_path):
    m = NeverCalled()
    with pytest.raises(ValueError, match=r"^Sparsify: NeverCalled's test_step does not feed .*was never called"):
        _run(m, Images(), tmp_path)
    assert getattr(m.model, "sparsity_path", None) is None and not list(tmp_path.rglob("sparse*"))


def test_the_batch_cast_by_a_true_precision_is_still_the_batch():
    """Under ``precision='bf16-true'`` the step hands the network the batch cast to bfloat16: its rounding (up to 0.4%
    of a value) is the batch, read at the coarser dtype's tolerance; a stem is not."""
    from neuroview.training.sparse_module_check import _not_the_batch

    x = torch.randn(4, 1, 8, 8) * 3
    assert _not_the_batch(x.to(torch.bfloat16), x) is None
    assert "differs from the batch's" in _not_the_batch((-3 * x + 1).to(torch.bfloat16), x)
