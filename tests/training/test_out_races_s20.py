"""Two runs of a command that writes zoo entries into one ``--out`` (probe P8, finding 6; probe P9, finding F5).

- The loser of two ``neuroview sparsify`` (or ``minirocket``) runs into one ``--out`` found the name free before its
  work and taken at its save: a 20-line traceback, exit 1, advising the Python argument ``overwrite=True``. Now one
  line, exit 2, naming the command's options (``--name`` / ``--tag`` first), the other run's entry kept.
- Every ``neuroview fit`` checkpoint is ``last.ckpt``, so every sparse entry of one defaults to ``<arch>.last_sparse``:
  the second run's refusal advised only another ``--out`` or ``--overwrite``, which deletes the first run's entry. Now
  it names ``--name`` first, and says the name came from the checkpoint's file.

"Another run" is played by a save into ``--out`` made while this run works (after its check before the work), with
``metrics={"tag": "other run"}``: the entry that stays says by that tag whose it is.
"""

from __future__ import annotations

from pathlib import Path

import torch

from neuroview.zoo import pretrained as zoo
from neuroview.zoo.pretrained import read_manifest
from test_out_and_seed_s19 import _series  # a tiny .npz whose classes a real fit tells apart

REPO = Path(__file__).resolve().parents[2]
OTHER = {"tag": "other run"}


def _other_run_saves(net, name: str, out: Path) -> None:
    cfg = net.pretrained_cfg
    zoo.save_pretrained(net, name, architecture=cfg["architecture"], arch_kwargs=cfg["arch_kwargs"],
                        dataset={"name": "other"}, recipe=None, seed=None, metrics=OTHER, root=out)


def test_the_loser_of_two_sparsify_runs_into_one_out_gets_one_line_naming_name_and_exit_2(tmp_path, monkeypatch, capsys):
    import neuroview.training.sparsify_cli as sparsify_cli

    out, real = tmp_path / "sp", sparsify_cli.sparsify

    def meanwhile(net, dm, **kwargs):  # this run works; another run into the same --out saves the same name
        sparse = real(net, dm, **kwargs)
        _other_run_saves(net, "nv_small_cnn.digits_sparse", out)
        return sparse

    monkeypatch.setattr(sparsify_cli, "sparsify", meanwhile)
    assert sparsify_cli.main(["nv_small_cnn.digits", "--out", str(out)]) == 2  # was a ValueError traceback (exit 1)
    err = capsys.readouterr().err
    assert err.startswith(f"neuroview sparsify: out: {out} now holds nv_small_cnn.digits_sparse, written by another run")
    assert "--name nv_small_cnn.<tag>" in err and "overwrite=True" not in err and len(err.strip().splitlines()) == 1
    assert read_manifest(out)["nv_small_cnn.digits_sparse"]["metrics"] == OTHER  # the other run's entry, kept


def test_the_loser_of_two_minirocket_runs_into_one_out_gets_one_line_naming_tag_and_exit_2(tmp_path, monkeypatch, capsys):
    import neuroview.training.ridge as ridge
    from neuroview.training.minirocket_cli import main as minirocket_main

    out, data, real = tmp_path / "mr", _series(tmp_path / "s.npz"), ridge.minirocket

    def meanwhile(dm, **kwargs):
        net = real(dm, **kwargs)
        bb = net.backbone
        zoo.save_pretrained(net, "nv_minirocket.s", architecture="nv_minirocket", arch_kwargs={
            "num_classes": net.num_classes, "in_channels": bb.in_channels, "max_len": bb.input_length, "num_features": 84,
            "seed": 0}, dataset={"name": "other"}, recipe=None, seed=None, metrics=OTHER, root=out)
        return net

    monkeypatch.setattr(ridge, "minirocket", meanwhile)
    assert minirocket_main(["--data", data, "--num-features", "84", "--out", str(out)]) == 2  # was a traceback
    err = capsys.readouterr().err
    assert err.startswith(f"neuroview minirocket: out: {out} now holds nv_minirocket.s, written by another run")
    assert "--tag <tag>" in err and "overwrite=True" not in err and len(err.strip().splitlines()) == 1
    assert read_manifest(out)["nv_minirocket.s"]["metrics"] == OTHER


def test_a_checkpoint_s_default_sparse_name_held_by_another_run_is_refused_naming_name_first(tmp_path, capsys):
    from neuroview.training.cli import cli_main
    from neuroview.training.module import load_module
    from neuroview.training.sparsify_cli import main as sparsify_main

    cli_main(["fit", "--config", str(REPO / "recipes" / "digits_nv_small_cnn.yaml"), "--trainer.max_epochs", "1",
              "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1", "--trainer.enable_progress_bar",
              "false", "--trainer.default_root_dir", str(tmp_path / "run")], run=True)
    ckpt = next((tmp_path / "run").rglob("last.ckpt"))
    module = load_module(str(ckpt), what="source")
    net, hp = module.model.eval(), module.hparams
    from neuroview.zoo.build import arch_kwargs

    net.pretrained_cfg = {"architecture": hp["arch"], "arch_kwargs": arch_kwargs(
        hp["arch"], num_classes=hp["num_classes"], in_channels=hp["in_channels"], max_len=hp.get("max_len"),
        model_kwargs=hp.get("model_kwargs"))}
    out = tmp_path / "sp"
    _other_run_saves(net, "nv_small_cnn.last_sparse", out)  # an earlier run's last.ckpt, sparsified into --out
    before = (out / "manifest.json").read_bytes()
    capsys.readouterr()
    assert sparsify_main([str(ckpt), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"neuroview sparsify: out: {out} already holds nv_small_cnn.last_sparse (an earlier run's); its "
                          "name comes from the checkpoint's file name ('last.ckpt'), not from its run: give this run's "
                          "entry a name of its own with --name nv_small_cnn.<tag>, or pick another --out")
    assert err.index("--name") < err.index("--overwrite") and (out / "manifest.json").read_bytes() == before
    # a zoo entry's default name: the refusal as before, and --name offered too
    _other_run_saves(net, "nv_small_cnn.digits_sparse", out)
    assert sparsify_main(["nv_small_cnn.digits", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert (f"out: {out} already holds nv_small_cnn.digits_sparse (an earlier run's); pick another --out or pass "
            "--overwrite to replace it, or keep both: give this run's entry a name of its own with --name "
            "nv_small_cnn.<tag>") in err
    kept = zoo.load_pretrained("nv_small_cnn.last_sparse", root=out, _probe=False).state_dict()
    assert all(torch.equal(v, kept[k]) for k, v in net.state_dict().items())  # the earlier entry untouched
