"""`neuroview sparsify <zoo entry>` writes a zoo entry that loads and explains itself with few units;
the `Sparsify` callback ends a Lightning run with a sparse head; `neuroview zoo` shows readability."""

from __future__ import annotations

import json

import pytest
import torch

import neuroview as nv
from neuroview.training.sparsify import DEVIANCE
from neuroview.training.sparsify_cli import main as sparsify_main
from neuroview.zoo.cli import format_table
from neuroview.zoo.pretrained import read_manifest


def test_sparsify_command_writes_a_sparse_zoo_entry(tmp_path, capsys):
    out = tmp_path / "zoo"
    # the README's readable flow: a budget of 10 contributions per decision
    assert sparsify_main(["nv_lite.gunpoint", "--max-k90", "10", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "nv_lite.gunpoint_sparse" in printed and "neuroview explain --model nv_lite.gunpoint_sparse" in printed
    entry = read_manifest(out)["nv_lite.gunpoint_sparse"]
    assert entry["sparsified_from"] == "nv_lite.gunpoint"
    # trained with its recipe as of another commit: the sparse entry says so too (`neuroview zoo` shows it)
    assert entry["training"]["recipe_commit"] == read_manifest()["nv_lite.gunpoint"]["training"]["recipe_commit"]
    net = nv.create_model("nv_lite.gunpoint_sparse", pretrained=True, root=out)
    upc = nv.units_per_class(net)
    assert upc.float().mean().item() == pytest.approx(entry["metrics"]["units_per_class"])
    assert upc.max() <= 194 // 4  # of 194 units
    assert entry["sparsify"]["deviance"] == DEVIANCE and entry["sparsify"]["max_k90"] == 10
    assert entry["metrics"]["k90"] <= 10 + 2  # measured on the test split; the budget was kept on validation
    x = torch.randn(4, 1, 150)
    exp = net.explain(x, baseline="mean")
    assert torch.allclose(exp.for_class().sum(-1) + exp.bias[exp.target], net(x).gather(1, exp.target[:, None])[:, 0], atol=1e-5)
    # the path kept with the entry: the point chosen is within tolerance on validation, never the test split
    points = entry["sparsify"]["path"]
    assert sum(p["chosen"] for p in points) == 1
    assert "k90" in format_table({"nv_lite.gunpoint_sparse": entry})
    # a second run into the same folder: refused before any work, the first run's entry kept as it was
    # (it was replaced without a word); --overwrite replaces it
    before = (out / "nv_lite.gunpoint_sparse.safetensors").read_bytes(), (out / "manifest.json").read_bytes()
    assert sparsify_main(["nv_lite.gunpoint", "--tolerance", "3", "--out", str(out)]) == 2
    assert ("out: " + str(out) + " already holds nv_lite.gunpoint_sparse (an earlier run's); pick another --out or pass "
            "--overwrite") in capsys.readouterr().err
    assert ((out / "nv_lite.gunpoint_sparse.safetensors").read_bytes(), (out / "manifest.json").read_bytes()) == before
    assert sparsify_main(["nv_lite.gunpoint", "--tolerance", "3", "--out", str(out), "--overwrite"]) == 0
    assert read_manifest(out)["nv_lite.gunpoint_sparse"]["sparsify"]["tolerance"] == 3.0
    # an entry of a zoo folder of one's own is a source too (--zoo, as explain's); it needed $NEUROVIEW_CHECKPOINTS
    again = tmp_path / "again"
    assert sparsify_main(["nv_lite.gunpoint_sparse", "--zoo", str(out), "--max-k90", "10", "--out", str(again)]) == 0
    assert read_manifest(again)["nv_lite.gunpoint_sparse_sparse"]["sparsified_from"] == "nv_lite.gunpoint_sparse"


def test_sparsify_command_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:  # before the work (it was refused as `epochs` once the path was walked)
        sparsify_main(["nv_lite.gunpoint", "--finetune", "-1", "--out", str(tmp_path)])
    assert e.value.code == 2 and "--finetune: expected epochs >= 0, got -1" in capsys.readouterr().err
    assert sparsify_main(["run.ckpt", "--zoo", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "--zoo: the folder a zoo entry is read from" in capsys.readouterr().err
    assert sparsify_main(["missing.ckpt", "--out", str(tmp_path)]) == 2
    assert "source: no such checkpoint" in capsys.readouterr().err
    assert sparsify_main(["nv_lite.gunpoint", "--tolerance", "-1", "--out", str(tmp_path)]) == 2
    assert "tolerance" in capsys.readouterr().err
    assert sparsify_main(["nv_lite.gunpoint", "--max-k90", "0", "--out", str(tmp_path)]) == 2
    assert "max_k90" in capsys.readouterr().err
    assert sparsify_main(["nv_lite.gunpoint", "--distill", "0", "--out", str(tmp_path)]) == 2
    assert "distill: expected None or a temperature > 0, got 0.0" in capsys.readouterr().err
    # data the network cannot read is named as --data before the work (it was the model's own "x: ... failed")
    assert sparsify_main(["nv_small_cnn.digits", "--data", "mnist1d", "--out", str(tmp_path)]) == 2
    assert "--data: mnist1d gives samples of shape (1, 40), which the model does not read" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing written on an error
    # --out that is a file: refused before the work (a bare FileExistsError after it)
    afile = tmp_path / "afile"
    afile.write_text("mine")
    assert sparsify_main(["nv_lite.gunpoint", "--out", str(afile)]) == 2
    assert "out: expected a folder to write zoo entries into" in capsys.readouterr().err and afile.read_text() == "mine"


def test_an_entry_sparsified_on_other_data_records_that_data(tmp_path, capsys):
    """Its manifest named the source's dataset (GunPoint) beside an accuracy measured on ItalyPowerDemand."""
    out = tmp_path / "sp"
    assert sparsify_main(["nv_lite.gunpoint", "--data", "ItalyPowerDemand", "--out", str(out)]) == 0
    # and names it: nv_lite.gunpoint_sparse would promise GunPoint
    assert list(read_manifest(out)) == ["nv_lite.gunpoint_italypowerdemand_sparse"]
    entry = read_manifest(out)["nv_lite.gunpoint_italypowerdemand_sparse"]
    assert entry["dataset"]["name"] == "ItalyPowerDemand"
    # read as the source's own data was (its normalize and resample), and so recorded for explain to rebuild
    spec = entry["dataset"]["data_module"]
    assert spec["class_path"] == "neuroview.data.UCRDataModule"
    assert {k: spec["init_args"][k] for k in ("name", "normalize", "resample")} == {
        "name": "ItalyPowerDemand", "normalize": True, "resample": True}
    # its splits, and the data the source was trained on, whose statistics and length it was read by
    assert spec["init_args"]["seed"] == 0 and spec["read_like"]["init_args"]["name"] == "GunPoint"
    assert entry["metrics"]["test_size"] == 1029  # ItalyPowerDemand's test split, where its accuracy was measured
    assert "explain --model nv_lite.gunpoint_italypowerdemand_sparse" in capsys.readouterr().out


def test_sparsify_name_is_checked_before_the_work(tmp_path, capsys):
    out = tmp_path / "sp"
    for bad in ("nv_gru.gunpoint_sparse", "mine", "nv_lite.a b"):  # another architecture, no dot, a space
        assert sparsify_main(["nv_lite.gunpoint", "--name", bad, "--out", str(out)]) == 2
        assert "--name: expected 'nv_lite.<tag>'" in capsys.readouterr().err and not out.exists()
    assert sparsify_main(["nv_lite.gunpoint", "--name", "nv_lite.gp_few", "--max-k90", "10", "--out", str(out)]) == 0
    assert list(read_manifest(out)) == ["nv_lite.gp_few"]


def test_sparsify_command_distills_and_records_it(tmp_path, capsys):
    out = tmp_path / "zoo"
    assert sparsify_main(["nv_lite.gunpoint", "--max-k90", "10", "--distill", "2", "--out", str(out)]) == 0
    assert "fitted to the dense network's probabilities at T = 2" in capsys.readouterr().out
    entry = read_manifest(out)["nv_lite.gunpoint_sparse"]
    assert entry["sparsify"]["distill"] == 2.0
    net = nv.create_model("nv_lite.gunpoint_sparse", pretrained=True, root=out)
    assert nv.units_per_class(net).max() < 194


def test_zoo_table_shows_readability():
    entry = {"dataset": {"name": "gunpoint"}, "num_params": 10, "recipe": "r.yaml",
             "metrics": {"test_acc": 0.98, "units_per_class": 4.5, "k90": 3.0}}
    rnn = {**entry, "metrics": {**entry["metrics"], "k90_steps": 1.0}}
    table = format_table({"nv_lite.x_sparse": entry, "nv_gru.x_sparse": rnn, "lite.x": {"metrics": {"test_acc": 1.0}}})
    assert "units/class" in table and " 4.5 " in table and "3 (1 steps)" in table
    standard = next(line for line in table.splitlines() if line.startswith("lite.x"))
    assert standard.split()[4:6] == ["-", "-"]  # a standard network has neither


def test_sparsify_callback_ends_a_run_with_a_sparse_head(tmp_path):
    from neuroview.training.cli import cli_main
    from neuroview.training.module import NeuroViewModule  # noqa: F401 - the CLI's model class

    recipe = str(__import__("pathlib").Path(__file__).resolve().parents[2] / "recipes" / "digits_nv_small_cnn.yaml")
    cli = cli_main(["fit", "--config", recipe, "--model.model_kwargs", "{widths: [8, 16]}", "--trainer.max_epochs", "1",
                    "--trainer.limit_train_batches", "5", "--trainer.enable_progress_bar", "false",
                    "--trainer.callbacks+=neuroview.training.sparse_callback.Sparsify",
                    "--trainer.callbacks.init_args.finetune", "1",
                    "--trainer.callbacks.init_args.max_units_per_class", "4",
                    "--trainer.callbacks.init_args.distill", "1.0",
                    "--trainer.default_root_dir", str(tmp_path)], run=True)
    model = cli.model.model
    assert hasattr(model, "sparsity_path")
    assert 1 <= int((model.classifier.weight != 0).sum(1).max()) <= 4  # the cap, through the recipe option
    run = next(tmp_path.rglob("sparse_path.json"))
    record = json.loads(run.read_text())
    assert record["summary"].startswith("sparse head") and "at most 4 units per class" in record["summary"]
    assert "fitted to the dense network's probabilities at T = 1" in record["summary"]  # the recipe option
    assert record["finetuned"]["epochs"] == 1 and model.finetuned["epochs_kept"] == 1
    # the backbone the test scored is not the one fitted: it learned for the sparse head's units
    fitted = torch.load(next(tmp_path.rglob("last.ckpt")), map_location="cpu", weights_only=False)["state_dict"]
    conv = next(k for k in fitted if k.startswith("model.backbone.") and k.endswith("weight"))
    assert not torch.equal(model.state_dict()[conv.removeprefix("model.")], fitted[conv])
    assert (run.parent / "sparse.safetensors").is_file()
    from safetensors import safe_open

    with safe_open(str(run.parent / "sparse.safetensors"), "pt") as f:  # how to rebuild it, and the data it read
        meta = f.metadata()
    assert meta["neuroview.architecture"] == "nv_small_cnn" and json.loads(meta["neuroview.arch_kwargs"])["widths"] == [8, 16]
    assert json.loads(meta["neuroview.data"])["class_path"] == "neuroview.data.DigitsDataModule"
    assert json.loads(meta["neuroview.classes"]) == [str(d) for d in range(10)]  # what explain --weights checks data by


def test_sparsify_command_can_finetune_the_backbone_with_the_support_fixed(tmp_path):
    out = tmp_path / "zoo"
    assert sparsify_main(["nv_lite.gunpoint", "--max-k90", "10", "--finetune", "1", "--out", str(out)]) == 0
    entry = read_manifest(out)["nv_lite.gunpoint_sparse"]
    assert entry["sparsify"]["finetune"] == 1
    tuned = nv.create_model("nv_lite.gunpoint_sparse", pretrained=True, root=out)
    dense = nv.create_model("nv_lite.gunpoint", pretrained=True)
    changed = [k for k, v in tuned.state_dict().items() if k.startswith("backbone.") and not torch.equal(v, dense.state_dict()[k])]
    assert any(k.endswith(".weight") for k in changed)  # the backbone learned
    assert entry["metrics"]["units_per_class"] == pytest.approx(nv.units_per_class(tuned).float().mean().item())


def test_the_ensemble_recipe_checkpoint_sparsifies_into_an_entry_that_knows_its_data(tmp_path, capsys):
    # the default time-series recipe trains an ensemble: `neuroview sparsify <its last.ckpt>` gives one
    # sparse head over every member's units, and the entry records the data `neuroview explain` reads
    from neuroview.training.cli import cli_main
    from neuroview.viz.report import resolve_data

    recipe = str(__import__("pathlib").Path(__file__).resolve().parents[2] / "recipes" / "ucr_nv_cnn.yaml")
    cli_main(["fit", "--config", recipe, "--model.model_kwargs.members", "2", "--trainer.max_epochs", "2",
              "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path / "run")], run=True)
    ckpt = next((tmp_path / "run").rglob("last.ckpt"))
    out = tmp_path / "zoo"
    assert sparsify_main([str(ckpt), "--data", "GunPoint", "--max-k90", "10", "--out", str(out)]) == 0
    entry = read_manifest(out)["nv_lite.last_sparse"]
    net = nv.create_model("nv_lite.last_sparse", pretrained=True, root=out)
    assert isinstance(net, nv.Ensemble) and len(net) == 2 and net.classifier.in_features == 2 * 194
    assert nv.units_per_class(net).float().mean().item() == pytest.approx(entry["metrics"]["units_per_class"])
    dm, name = resolve_data(None, entry["dataset"], net)
    assert type(dm).__name__ == "UCRDataModule" and dm.name == "GunPoint" and name == "GunPoint"
    with pytest.raises(ValueError, match="data: the model does not say what data it was trained on"):
        resolve_data(None, {"name": "mine", "data_module": None}, net)


def test_a_shared_steps_checkpoint_sparsifies_into_an_entry_that_loads(tmp_path, capsys):
    # the sparse head holds the shared part in its own weight: the entry is built without it, and loads
    from neuroview.training.cli import cli_main

    recipe = str(__import__("pathlib").Path(__file__).resolve().parents[2] / "recipes" / "ucr_nv_rnn.yaml")
    cli_main(["fit", "--config", recipe, "--model.model_kwargs.shared_steps", "true", "--model.model_kwargs.hidden_size", "4",
              "--model.model_kwargs.max_steps", "10", "--trainer.max_epochs", "2", "--trainer.enable_progress_bar", "false",
              "--trainer.default_root_dir", str(tmp_path / "run")], run=True)
    ckpt = next((tmp_path / "run").rglob("last.ckpt"))
    out = tmp_path / "zoo"
    assert sparsify_main([str(ckpt), "--data", "GunPoint", "--out", str(out)]) == 0
    entry = read_manifest(out)["nv_gru.last_sparse"]
    assert entry["arch_kwargs"]["shared_steps"] is False
    net = nv.create_model("nv_gru.last_sparse", pretrained=True, root=out)
    assert net.step_shared is None and nv.units_per_class(net).float().mean().item() == pytest.approx(
        entry["metrics"]["units_per_class"])


def test_sparsify_command_caps_the_steps_each_class_reads(tmp_path, capsys):
    out = tmp_path / "zoo"
    assert sparsify_main(["nv_gru.gunpoint", "--max-steps-per-class", "3", "--out", str(out)]) == 0
    assert "at most 3 steps per class" in capsys.readouterr().out
    entry = read_manifest(out)["nv_gru.gunpoint_sparse"]
    assert entry["sparsify"]["max_steps_per_class"] == 3 and entry["sparsify"]["max_units_per_class"] is None
    net = nv.create_model("nv_gru.gunpoint_sparse", pretrained=True, root=out)
    w = net.classifier.weight.reshape(net.num_classes, *net.feature_shape)  # [C, L, D, T, H]
    steps = (w != 0).any(4).any(2).any(1).sum(1)  # the steps each class reads, counted from the weights
    assert 1 <= int(steps.max()) <= 3
    assert sparsify_main(["nv_lite.gunpoint", "--max-steps-per-class", "3", "--out", str(tmp_path / "cnn")]) == 2
    assert "max_steps_per_class: a cap in time steps needs a NeuroViewRNN" in capsys.readouterr().err
    assert not (tmp_path / "cnn").exists()
