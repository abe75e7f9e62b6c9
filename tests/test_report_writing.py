"""`neuroview explain` writes all of its report or nothing, says what it lacks before it starts, and its
page, progress bar and examples say what happened."""

import json

import matplotlib

matplotlib.use("Agg")


def test_explain_a_checkpoint_of_the_main_job_without_naming_its_data(tmp_path, capsys):
    """`neuroview fit` then `neuroview explain --ckpt`: the network finds its sites on its first batch,
    so it has not seen data when the command guesses which data it was trained on."""
    import pytorch_lightning as pl

    from neuroview.cli import main as cli
    from neuroview.data import DigitsDataModule
    from neuroview.training.module import NeuroViewModule

    module = NeuroViewModule("nv_small_cnn", num_classes=10, in_channels=1, model_kwargs={"widths": [4]})
    trainer = pl.Trainer(default_root_dir=tmp_path, accelerator="cpu", max_steps=1, limit_val_batches=0, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, datamodule=DigitsDataModule(batch_size=16))
    trainer.save_checkpoint(tmp_path / "main.ckpt")
    out = tmp_path / "report"
    rc = cli(["explain", "--ckpt", str(tmp_path / "main.ckpt"), "--samples", "8", "--examples", "1", "--no-progress",
              "--dpi", "30", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    assert json.loads((out / "report.json").read_text())["data"] == "digits"
