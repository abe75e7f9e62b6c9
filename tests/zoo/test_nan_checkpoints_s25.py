"""A diverged run's Lightning checkpoint (probe P5, finding 1): NaN weights, or a BatchNorm ``running_var`` gone Inf, in
the ``.ckpt`` that ``neuroview fit`` wrote. ``load_weights`` refused such a file by name, but ``load_module`` /
``load_model``, ``neuroview explain --ckpt``, ``explain --model A --weights X.ckpt``, ``neuroview sparsify X.ckpt`` and
``neuroview retrofit X.ckpt`` read it without a check: the NaN codes were blamed on ``--data`` ("pass the data it was
trained on") or on a site that "mixes samples", and the Inf statistics gave a whole report, exit 0. Each is now refused
naming the option as typed, the file and the tensor, as ``load_weights`` words it; a finite checkpoint loads and resumes."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from neuroview.data import DigitsDataModule
from neuroview.training.module import NeuroViewModule, load_model, load_module
from neuroview.training.sparsify_cli import main as sparsify_main
from neuroview.viz.report import main as explain_main

#: the tensors poisoned below, as the file names them (NeuroViewModule keeps its network under ``model.``)
WEIGHT, VAR = "model.backbone.features.0.0.weight", "model.backbone.features.0.1.running_var"


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    """``{"finite", "nan", "inf"}`` -> a checkpoint of one step of nv_small_cnn on digits; ``nan``: one NaN weight of
    the first conv; ``inf``: the first BatchNorm's running_var Inf at one channel (what lr=1e6 left, weights finite)."""
    tmp = tmp_path_factory.mktemp("nan_ckpt")
    torch.manual_seed(0)
    m = NeuroViewModule("nv_small_cnn", num_classes=10, in_channels=1, model_kwargs={"widths": [8, 16]}, scheduler="none")
    tr = pl.Trainer(max_steps=1, limit_val_batches=0, accelerator="cpu", logger=False, enable_checkpointing=False,
                    enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(tmp / "run"))
    tr.fit(m, DigitsDataModule(batch_size=64))
    tr.save_checkpoint(tmp / "finite.ckpt")
    saved = torch.load(tmp / "finite.ckpt", map_location="cpu", weights_only=True)
    assert WEIGHT in saved["state_dict"] and VAR in saved["state_dict"]  # the names this test poisons
    out = {"finite": str(tmp / "finite.ckpt")}
    for name, key, value in (("nan", WEIGHT, float("nan")), ("inf", VAR, float("inf"))):
        bad = {**saved, "state_dict": {**saved["state_dict"]}}
        bad["state_dict"][key] = saved["state_dict"][key].clone()
        bad["state_dict"][key].view(-1)[0] = value
        torch.save(bad, tmp / f"{name}.ckpt")
        out[name] = str(tmp / f"{name}.ckpt")
    return out


def _tensor(key: str) -> str:
    return key.removeprefix("model.")  # named as load_weights names the same file's tensor


@pytest.mark.parametrize("case,key", [("nan", WEIGHT), ("inf", VAR)])
def test_load_module_refuses_a_checkpoint_holding_nan_or_inf_naming_what_and_the_tensor(ckpts, case, key):
    with pytest.raises(ValueError) as e:
        load_module(ckpts[case], what="source")
    msg = str(e.value)
    assert msg.startswith(f"source: {ckpts[case]!r} holds NaN or Inf in 1 tensor (first: ['{_tensor(key)}: 1 of ")
    with pytest.raises(ValueError, match=r"^ckpt_path: .* holds NaN or Inf in 1 tensor"):
        load_model(ckpts[case])  # its default name


def test_load_module_takes_a_finite_checkpoint_as_before(ckpts):
    net = load_model(ckpts["finite"])
    assert all(torch.isfinite(t).all() for t in net.state_dict().values() if t.is_floating_point())
    assert torch.isfinite(net(torch.rand(3, 1, 8, 8))).all()


@pytest.mark.filterwarnings("ignore")  # saved mid-epoch: a resume warns that its loaders cannot replay the epoch
def test_a_finite_checkpoint_still_resumes_through_lightning(ckpts, tmp_path):
    m = NeuroViewModule("nv_small_cnn", num_classes=10, in_channels=1, model_kwargs={"widths": [8, 16]}, scheduler="none")
    tr = pl.Trainer(max_steps=2, limit_val_batches=0, accelerator="cpu", logger=False, enable_checkpointing=False,
                    enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(tmp_path))
    tr.fit(m, DigitsDataModule(batch_size=64), ckpt_path=ckpts["finite"])
    assert tr.global_step == 2


@pytest.mark.parametrize("case,key", [("nan", WEIGHT), ("inf", VAR)])
@pytest.mark.parametrize("how", ["--ckpt", "--weights"])
def test_explain_refuses_a_checkpoint_holding_nan_or_inf_naming_the_option(ckpts, case, key, how, tmp_path, capsys):
    source = ["--ckpt", ckpts[case]] if how == "--ckpt" else ["--model", "nv_small_cnn", "--weights", ckpts[case]]
    rc = explain_main([*source, "--data", "digits", "--out", str(tmp_path / "rep"), "--samples", "8", "--no-gallery",
                       "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert f"{how}: {ckpts[case]!r} holds NaN or Inf in 1 tensor (first: ['{_tensor(key)}: 1 of " in err
    assert "pass the data it was trained on" not in err
    assert not (tmp_path / "rep" / "report.json").exists()


@pytest.mark.parametrize("case,key", [("nan", WEIGHT), ("inf", VAR)])
def test_sparsify_command_refuses_a_checkpoint_holding_nan_or_inf_naming_the_source(ckpts, case, key, tmp_path, capsys):
    rc = sparsify_main([ckpts[case], "--out", str(tmp_path / "sp")])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert f"source: {ckpts[case]!r} holds NaN or Inf in 1 tensor (first: ['{_tensor(key)}: 1 of " in err
    assert not (tmp_path / "sp").exists() or not any((tmp_path / "sp").iterdir())


def test_retrofit_refuses_a_standard_network_s_checkpoint_holding_nan_naming_the_source(tmp_path, capsys):
    from neuroview.training.retrofit import main as retrofit_main  # noqa: PLC0415

    torch.manual_seed(0)
    m = NeuroViewModule("small_cnn", num_classes=10, in_channels=1, model_kwargs={"widths": [8, 16]}, scheduler="none")
    tr = pl.Trainer(max_steps=1, limit_val_batches=0, accelerator="cpu", logger=False, enable_checkpointing=False,
                    enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(tmp_path / "run"))
    tr.fit(m, DigitsDataModule(batch_size=64))
    tr.save_checkpoint(tmp_path / "std.ckpt")
    saved = torch.load(tmp_path / "std.ckpt", map_location="cpu", weights_only=True)
    saved["state_dict"]["model.features.0.0.weight"].view(-1)[0] = float("nan")
    torch.save(saved, tmp_path / "std_nan.ckpt")
    rc = retrofit_main([str(tmp_path / "std_nan.ckpt"), "--out", str(tmp_path / "out.safetensors"), "--epochs", "1"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert f"source: {str(tmp_path / 'std_nan.ckpt')!r} holds NaN or Inf in 1 tensor (first: ['features.0.0.weight: 1 of 72'])" in err
    assert not (tmp_path / "out.safetensors").exists()


@pytest.mark.parametrize("sub", ["test", "fit"])
def test_the_cli_refuses_a_ckpt_path_holding_nan_or_inf_before_running(ckpts, sub, tmp_path):
    """``neuroview test --ckpt_path`` scored a diverged run's NaN network ("a weight or an activation that overflows"),
    and ``fit --ckpt_path`` resumed it to train on in NaN: refused by name before the trainer runs."""
    from neuroview.training.cli import cli_main

    args = [sub, "--config", "recipes/digits_nv_small_cnn.yaml", "--model.model_kwargs.widths", "[8,16]",
            "--model.scheduler", "none", "--trainer.default_root_dir", str(tmp_path), "--ckpt_path", ckpts["nan"]]
    with pytest.raises(ValueError, match=r"^ckpt_path: .*nan\.ckpt' holds NaN or Inf in 1 tensor \(first: "
                                         r"\['backbone\.features\.0\.0\.weight: 1 of .*a diverged run's: pass an earlier"):
        cli_main(args)


@pytest.mark.filterwarnings("ignore")
def test_the_python_api_s_checkpoint_loads_refuse_a_diverged_run(ckpts, tmp_path):
    """``Trainer.fit(..., ckpt_path=nan.ckpt)`` resumed a diverged run to train on in NaN, and ``load_from_checkpoint``
    / ``Trainer.test(ckpt_path=inf.ckpt)`` scored a dead network at chance: NeuroViewModule.on_load_checkpoint refuses."""
    m = NeuroViewModule("nv_small_cnn", num_classes=10, in_channels=1, model_kwargs={"widths": [8, 16]}, scheduler="none")
    tr = pl.Trainer(max_steps=2, limit_val_batches=0, accelerator="cpu", logger=False, enable_checkpointing=False,
                    enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"^ckpt_path: the checkpoint holds NaN or Inf in 1 tensor .*a diverged run's"):
        tr.fit(m, DigitsDataModule(batch_size=64), ckpt_path=ckpts["nan"])
    with pytest.raises(ValueError, match=r"^ckpt_path: the checkpoint holds NaN or Inf in 1 tensor \(first: \['backbone"):
        NeuroViewModule.load_from_checkpoint(ckpts["inf"], weights_only=True)
    with pytest.raises(ValueError, match=r"a diverged run's: pass an earlier checkpoint"):  # not "restore the file"
        load_module(ckpts["nan"], what="--ckpt")
