"""`neuroview explain` writes all of its report or nothing, says what it lacks before it starts, and its
page, progress bar and examples say what happened."""

import json
import os
import re
import subprocess
import sys
import time

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from neuroview.viz import plots  # noqa: E402
from neuroview.viz.report import pick_examples, write_report  # noqa: E402
from neuroview.viz.report_data import summary_lines  # noqa: E402
from nets import small_report_cnn, small_report_rnn  # noqa: E402




@pytest.fixture(scope="module")
def cnn():
    return small_report_cnn()


@pytest.fixture(scope="module")
def rnn():
    return small_report_rnn()


# ------------------------------------------------------------ all or nothing
def test_missing_matplotlib_is_named_before_anything_is_written(tmp_path):
    out = tmp_path / "report"
    code = ("import sys; sys.modules['matplotlib'] = None  # as in an install without the plots extra\n"
            "from neuroview.cli import main\n"
            f"sys.exit(main(['explain', '--model', 'nv_small_cnn.digits', '--samples', '8', '--out', {str(out)!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "matplotlib" in proc.stderr and "pip install 'neuroview[plots]'" in proc.stderr
    assert os.listdir(tmp_path) == []  # no report folder, no temporary one: a second try starts clean


def test_an_error_mid_report_leaves_the_folder_as_it_was(cnn, tmp_path, monkeypatch):
    net, x, y = cnn

    def breaks(*args, **kwargs):
        raise RuntimeError("drawing failed")

    monkeypatch.setattr(plots, "unit_heatmap", breaks)  # the first figure, after the tables are written
    new = tmp_path / "a" / "b" / "report"
    with pytest.raises(RuntimeError, match="drawing failed"):
        write_report(net, x, y, new, progress=False, dpi=30)
    assert os.listdir(tmp_path) == []  # neither the report, its temporary folder, nor the parents made for it

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(RuntimeError):
        write_report(net, x, y, mine, overwrite=True, progress=False, dpi=30)
    assert os.listdir(tmp_path) == ["mine"] and os.listdir(mine) == ["notes.txt"]

    monkeypatch.undo()
    files = write_report(net, x, y, new, progress=False, dpi=30, examples=0)  # the same folder, no --overwrite
    assert sorted(files) == sorted(os.listdir(new))
    files = write_report(net, x, y, mine, overwrite=True, progress=False, dpi=30, examples=0)
    assert sorted(os.listdir(mine)) == sorted(files + ["notes.txt"]) and (mine / "notes.txt").read_text() == "mine"
    assert sorted(os.listdir(tmp_path)) == ["a", "mine"]


# ------------------------------------------------------------ what the report says
@pytest.mark.parametrize("kind", ["cnn", "rnn"])
def test_as_many_examples_as_asked_and_the_bar_ends_at_its_total(kind, cnn, rnn, tmp_path, capsys):
    net, x, y = cnn if kind == "cnn" else rnn  # two classes: distinct classes alone give 2 examples, not 4
    files = write_report(net, x, y, tmp_path / "r", examples=4, batch_size=3, progress=True, dpi=30)
    per_sample = [f for f in files if f.startswith("waterfall_")]
    assert len(per_sample) == 4
    meta = json.loads((tmp_path / "r" / "report.json").read_text())
    assert len(meta["examples"]) == 4 == len(set(meta["examples"]))
    err = capsys.readouterr().err
    done, total = map(int, re.findall(r"(\d+)/(\d+)", err)[-1])
    figures = sum(f.endswith(".png") for f in files)
    assert done == total == -(-len(y) // 3) + 1 + figures + 1  # batches, tables, figures, the page


def test_pick_examples_makes_up_the_number_when_classes_run_out():
    pred, y = torch.tensor([0, 1, 1, 0, 1, 0]), torch.tensor([0, 1, 0, 0, 1, 0])
    assert pick_examples(pred, y, 4) == [0, 1, 2, 3]  # class 0, class 1, the mistake at 2, then the next sample
    assert pick_examples(pred, None, 4) == [0, 1, 2, 3]
    assert pick_examples(pred, y, 10) == list(range(6))  # never more than there are


def test_the_page_times_the_real_work(cnn, tmp_path):
    net, x, y = cnn
    assert "explained in 20 ms" in summary_lines(10, 0.02, 0.0, y, y)[-1]  # not "0.0 s"
    assert "explained in 2.5 s" in summary_lines(10, 2.5, 0.0, y, y)[-1]
    explain = net.explain

    def slow_explain(*args, **kwargs):
        time.sleep(0.1)
        return explain(*args, **kwargs)

    net.explain = slow_explain
    try:
        write_report(net, x, y, tmp_path / "r", examples=0, batch_size=5, progress=False, dpi=30)
    finally:
        del net.explain
    meta = json.loads((tmp_path / "r" / "report.json").read_text())
    assert meta["explain_seconds"] >= 0.2  # both batches
    page = (tmp_path / "r" / "index.html").read_text()
    assert re.search(r"explained in (\d+ ms|\d+\.\d s)", page) and "explained in 0.0 s" not in page


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
    # the data module records its class in the checkpoint (s19): read from there, as a `neuroview fit` checkpoint's
    # LightningCLI spec is, not guessed from the network's input ("digits" before the record)
    assert json.loads((out / "report.json").read_text())["data"] == "DigitsDataModule"


def test_overwrite_removes_the_earlier_report_s_files_and_keeps_the_user_s(cnn, rnn, tmp_path):
    """--overwrite kept the earlier report's files that the new one does not write: a CNN report sat beside an
    RNN's time_importance.csv and layer_time.png, and beside waterfalls of other samples named like its own."""
    out = tmp_path / "r"
    net_r, x_r, y_r = rnn
    first = write_report(net_r, x_r, y_r, out, examples=2, progress=False, dpi=30)
    (out / "notes.txt").write_text("mine")
    assert "time_importance.csv" in first
    net_c, x_c, y_c = cnn
    second = write_report(net_c, x_c, y_c, out, overwrite=True, examples=1, progress=False, dpi=30)
    assert sorted(os.listdir(out)) == sorted(second + ["notes.txt"]) and (out / "notes.txt").read_text() == "mine"
    assert "time_importance.csv" not in os.listdir(out)
    # a report.json that names files outside the folder (or none) deletes nothing there
    meta = json.loads((out / "report.json").read_text())
    meta["tables"].append({"file": "../outside.txt"})
    (out / "report.json").write_text(json.dumps(meta))
    (tmp_path / "outside.txt").write_text("kept")
    write_report(net_c, x_c, y_c, out, overwrite=True, examples=1, progress=False, dpi=30)
    assert (tmp_path / "outside.txt").read_text() == "kept"
