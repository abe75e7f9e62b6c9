"""The ``Sparsify`` callback (session 18): its ``sparse.safetensors`` opens with ``neuroview explain --weights`` after a
``shared_steps`` or ``normalize: false`` run; it refits under ``precision="bf16-true"`` / ``"64-true"`` in the network's
dtype; a ``fast_dev_run`` writes none of its files."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

import neuroview as nv
from neuroview.data import DigitsDataModule, NpzDataModule
from neuroview.training.module import NeuroViewModule
from neuroview.training import sparse_callback
from neuroview.training.sparse_callback import Sparsify, sparse_arch_kwargs
from neuroview.viz.report import _built_as
from neuroview.zoo.weights import load_weights


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))


def _trainer(root, cb, **kw):
    kw = {"logger": False, "enable_checkpointing": False, "max_epochs": 1, "limit_train_batches": 3,
          "limit_val_batches": 1, "limit_test_batches": 1, **kw}
    return pl.Trainer(enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=1,
                      default_root_dir=str(root), callbacks=[cb], **kw)


def _run(root, module, dm, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tr = _trainer(root, Sparsify(), **kw)
        tr.fit(module, datamodule=dm)
        tr.test(module, datamodule=dm, verbose=False)
    return module.model


def _explained_as_the_command_does(path, arch):
    """The network ``neuroview explain --model arch --weights path`` (no --model-args) builds and loads."""
    net = nv.create_model(arch, **_built_as(str(path), arch, {}))
    load_weights(net, path, what="--weights", pickles=True)
    return net.eval()


def _series(tmp_path, n=60, t=16):
    g = np.random.default_rng(0)
    y = np.arange(n) % 2
    x = g.normal(size=(n, 1, t)).astype("float32") + y[:, None, None] * np.linspace(0, 2, t, dtype="float32")
    np.savez(tmp_path / "s.npz", X=x, y=y)
    return NpzDataModule(str(tmp_path / "s.npz"), batch_size=16), t


def test_a_shared_steps_run_s_sparse_file_opens_with_explain_weights(tmp_path):
    dm, t = _series(tmp_path)
    pl.seed_everything(0)
    m = NeuroViewModule("nv_gru", num_classes=2, in_channels=1, max_len=t,
                        model_kwargs={"hidden_size": 8, "shared_steps": True})
    assert m.model.step_shared is not None  # the dense network holds a shared part
    sparse = _run(tmp_path, m, dm, limit_train_batches=2)
    assert sparse.step_shared is None  # merged by sparsify
    net = _explained_as_the_command_does(tmp_path / "sparse.safetensors", "nv_gru")  # was: 1 tensors missing
    x = torch.randn(5, 1, t, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(net(x.transpose(1, 2)), sparse.eval()(x.transpose(1, 2)), rtol=0, atol=1e-6)


def test_a_normalize_false_run_s_sparse_file_opens_with_explain_weights(tmp_path):
    pl.seed_everything(0)
    m = NeuroViewModule("nv_small_cnn", num_classes=10, in_channels=1,
                        model_kwargs={"widths": [4, 8], "normalize": False})
    assert m.model.norm is None
    sparse = _run(tmp_path, m, DigitsDataModule(batch_size=64))
    assert sparse.norm is not None  # sparsify standardizes the codes its path was fitted on
    net = _explained_as_the_command_does(tmp_path / "sparse.safetensors", "nv_small_cnn")  # was: 3 unexpected tensors
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(net(x), sparse.eval()(x), rtol=0, atol=1e-6)


def test_sparse_arch_kwargs_are_neuroview_sparsify_s():
    assert sparse_arch_kwargs({"normalize": False, "shared_steps": True, "hidden_size": 8}) == \
        {"normalize": True, "shared_steps": False, "hidden_size": 8}
    given = {"normalize": True, "widths": [4, 8]}
    assert sparse_arch_kwargs(given) == given and sparse_arch_kwargs({}) == {}


@pytest.mark.parametrize("precision, dtype", [("64-true", torch.float64), ("bf16-true", torch.bfloat16)])
def test_the_refit_reads_the_codes_in_the_precision_the_run_trains_in(tmp_path, precision, dtype):
    pl.seed_everything(0)
    dm = DigitsDataModule(batch_size=64)
    m = NeuroViewModule("nv_small_cnn", num_classes=10, in_channels=1, model_kwargs={"widths": [4, 8]})
    sparse = _run(tmp_path, m, dm, precision=precision)  # crashed: "x: expected dtype ..., got torch.float32"
    assert sparse.sparsity_path is not None and sparse.classifier.weight.dtype == dtype
    # the standardization is the training split's mean code, as the network computes its codes: in its own dtype
    xs = torch.cat([b[0] for b in dm._loader("train")])
    with torch.no_grad():
        codes = sparse.eval().codes(xs.to(dtype)).double()
    tol = 1e-12 if dtype == torch.float64 else 1e-2  # float32 codes of float32 inputs differ by ~1e-8 in float64
    torch.testing.assert_close(sparse.norm.running_mean.double(), codes.mean(0), rtol=0, atol=tol)
    # still exact: the contributions sum to the logit the network gives
    x = xs[:8].to(dtype)
    exp = sparse.explain(x)
    torch.testing.assert_close(exp.contributions.flatten(2).sum(-1) + exp.bias, exp.logits, rtol=0, atol=1e-4)
    torch.testing.assert_close(exp.logits.float(), sparse(x).float(), rtol=0, atol=5e-2)


def test_the_fine_tuning_after_a_bf16_true_refit_keeps_the_support_and_the_dtype(tmp_path, monkeypatch):
    pl.seed_everything(0)
    m = NeuroViewModule("nv_small_cnn", num_classes=10, in_channels=1, model_kwargs={"widths": [4, 8]})
    refit, real = [], sparse_callback.finetune_sparse

    def spy(net, *a, **k):  # the refit's support, as the fine-tuning receives it
        refit.append((net.classifier.weight != 0).clone())
        return real(net, *a, **k)

    monkeypatch.setattr(sparse_callback, "finetune_sparse", spy)
    cb = Sparsify(finetune=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tr = _trainer(tmp_path, cb, precision="bf16-true")
        tr.fit(m, datamodule=DigitsDataModule(batch_size=64))
        tr.test(m, datamodule=DigitsDataModule(batch_size=64), verbose=False)
    assert m.model.classifier.weight.dtype == torch.bfloat16 and m.model.finetuned["epochs"] == 1
    assert len(refit) == 1 and not refit[0].all()  # a sparse refit (the head is 10 x 12: some weight is 0)
    assert torch.equal(m.model.classifier.weight != 0, refit[0])  # the support kept exactly (was: any head passed)


def test_fast_dev_run_writes_no_sparse_file(tmp_path, caplog):
    pl.seed_everything(0)
    m = NeuroViewModule("nv_small_cnn", num_classes=10, in_channels=1, model_kwargs={"widths": [4, 8]})
    with caplog.at_level(logging.INFO):
        sparse = _run(tmp_path, m, DigitsDataModule(batch_size=64), fast_dev_run=True, logger=None)
    assert sparse.sparsity_path is not None  # refitted and tested all the same
    written = sorted(p.name for p in tmp_path.rglob("sparse*"))
    assert written == [], written  # were sparse.safetensors, sparse_path.json in the run's root
    assert "Sparsify: fast_dev_run: a smoke test writes no sparse.safetensors / sparse_path.json" in caplog.text
