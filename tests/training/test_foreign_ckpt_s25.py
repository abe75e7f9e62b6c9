"""A Lightning checkpoint of a user's OWN LightningModule that holds a NeuroView network (probe P1, finding 2).

The network sits at ``self.net`` (an ``aux`` head beside it), or at ``self.model`` beside another module. Every ``.ckpt``
reader of the command line (``neuroview explain --ckpt``, ``explain --model A --weights X.ckpt``, ``neuroview sparsify
X.ckpt``) went to ``NeuroViewModule.load_from_checkpoint`` and ended in torch's raw RuntimeError traceback, exit 1
("Unexpected key(s) ... net.backbone...", or a size mismatch of a NeuroViewModule rebuilt from hyper-parameters the
user's module never had); ``load_weights`` said "20 tensors missing from the file" of a file that holds all of them
under ``net.``. Each is now refused naming the option as typed, the prefixes the tensors are under, and the way in."""

from __future__ import annotations

import warnings

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import neuroview as nv
from neuroview.training.module import load_model, load_module
from neuroview.training.sparsify_cli import main as sparsify_main
from neuroview.viz.report import main as explain_main
from neuroview.zoo.weights import load_weights

KW = {"num_classes": 10, "widths": (4, 8)}


class Mine(pl.LightningModule):
    """A user's own module: the NeuroView network at ``self.<at>``, a Linear head ``aux`` (or ``other``) beside it."""

    def __init__(self, at: str = "net", beside: str = "aux"):
        super().__init__()
        self.at, self.beside = at, beside
        setattr(self, at, nv.create_model("nv_small_cnn", **KW))
        getattr(self, at)(torch.rand(4, 1, 8, 8))  # its head built before the optimizer is made
        setattr(self, beside, nn.Linear(64, 10))

    def forward(self, x):
        return getattr(self, self.at)(x)

    def training_step(self, batch, i):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y) + nn.functional.cross_entropy(getattr(self, self.beside)(x.flatten(1)), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _saved(tmp, at: str, beside: str) -> tuple[str, Mine]:
    torch.manual_seed(0)
    m = Mine(at, beside)
    tr = pl.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                    enable_model_summary=False, default_root_dir=str(tmp))
    data = TensorDataset(torch.rand(16, 1, 8, 8), torch.arange(16) % 10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's advice on workers and logging
        tr.fit(m, DataLoader(data, batch_size=8))
    path = tmp / f"{at}.ckpt"
    tr.save_checkpoint(path)
    return str(path), m.eval()


@pytest.fixture(scope="module")
def mine(tmp_path_factory):
    """``{"net": (path, module), "model": (path, module)}``: the network at ``self.net`` beside ``aux``, and at
    ``self.model`` beside ``other``."""
    tmp = tmp_path_factory.mktemp("foreign_ckpt")
    out = {"net": _saved(tmp, "net", "aux"), "model": _saved(tmp, "model", "other")}
    keys = torch.load(out["net"][0], map_location="cpu", weights_only=True)["state_dict"]
    assert "net.backbone.features.0.0.weight" in keys and "aux.weight" in keys and not any(k.startswith("model.") for k in keys)
    return out


def _says_the_way_in(msg: str, at: str) -> None:
    assert "another LightningModule" in msg, msg
    assert f"torch.save(module.{at}.state_dict(), 'w.pt')" in msg, msg
    assert "--model ARCH --weights w.pt" in msg and "load_weights(" in msg, msg


def test_load_module_refuses_a_user_module_s_checkpoint_naming_the_prefix_its_network_is_under(mine):
    path = mine["net"][0]
    with pytest.raises(ValueError) as e:
        load_module(path, what="source")
    msg = str(e.value)
    assert msg.startswith(f"source: {path!r} ")
    assert "'net.' (" in msg and "backbone.*" in msg and "classifier.*" in msg and "a NeuroView network" in msg, msg
    assert "'aux.' (2 tensors" in msg, msg
    _says_the_way_in(msg, "net")
    with pytest.raises(ValueError, match=r"^ckpt_path: .*another LightningModule"):
        load_model(path)  # its default name


def test_a_network_at_model_beside_another_module_is_refused_not_rebuilt_from_missing_hyper_parameters(mine):
    """Its tensors are under 'model.', as NeuroViewModule's, but its hyper-parameters name no 'arch': a NeuroViewModule
    rebuilt with the default architecture gave torch's size mismatch."""
    path = mine["model"][0]
    with pytest.raises(ValueError) as e:
        load_module(path, what="--ckpt")
    msg = str(e.value)
    assert msg.startswith(f"--ckpt: {path!r} ") and "'arch'" in msg, msg
    assert "'model.' (" in msg and "'other.' (2 tensors" in msg, msg
    _says_the_way_in(msg, "model")


@pytest.mark.parametrize("how", ["--ckpt", "--weights"])
def test_explain_refuses_a_user_module_s_checkpoint_naming_the_option_and_the_prefix(mine, how, tmp_path, capsys):
    path = mine["net"][0]
    source = ["--ckpt", path] if how == "--ckpt" else ["--model", "nv_small_cnn", "--weights", path]
    rc = explain_main([*source, "--data", "digits", "--out", str(tmp_path / "rep"), "--samples", "8", "--no-gallery",
                       "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err and "Unexpected key" not in err
    assert f"{how}: {path!r} " in err and "another LightningModule" in err and "'net.' (" in err, err
    assert not (tmp_path / "rep" / "report.json").exists()


def test_sparsify_command_refuses_a_user_module_s_checkpoint_naming_the_source_and_the_prefix(mine, tmp_path, capsys):
    path = mine["net"][0]
    rc = sparsify_main([path, "--data", "digits", "--out", str(tmp_path / "sp")])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err and "Unexpected key" not in err
    assert f"source: {path!r} " in err and "another LightningModule" in err and "'net.' (" in err, err
    assert not (tmp_path / "sp").exists() or not any((tmp_path / "sp").iterdir())


def test_load_weights_names_the_prefix_rather_than_calling_the_tensors_missing(mine):
    path = mine["net"][0]
    with pytest.raises(ValueError) as e:
        load_weights(nv.create_model("nv_small_cnn", **KW), path, pickles=True)
    msg = str(e.value)
    assert msg.startswith(f"path: {path!r} ") and "missing from the file" not in msg, msg
    assert "'net.' (" in msg and "'aux.' (2 tensors" in msg and "'model.'" in msg, msg
    assert "torch.save(module.net.state_dict(), 'w.pt')" in msg, msg


def test_the_way_in_the_refusal_gives_loads_the_same_network(mine, tmp_path):
    """``torch.save(module.net.state_dict(), 'w.pt')``, then ``load_weights(net, 'w.pt')``: the user's network, exactly."""
    _, module = mine["net"]
    torch.save(module.net.state_dict(), tmp_path / "w.pt")
    net = load_weights(nv.create_model("nv_small_cnn", **KW), tmp_path / "w.pt", pickles=True).eval()
    x = torch.rand(5, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(net(x), module.net(x))


def test_the_cli_ckpt_path_refuses_another_module_s_checkpoint_by_name(tmp_path):
    """``neuroview test --ckpt_path MINE.ckpt`` read the file in the CLI's own check, not through load_module: torch's
    raw "Unexpected key(s)" traceback, exit 1; now the same refusal, naming ckpt_path and the prefix."""
    from neuroview.training.cli import cli_main

    path, _ = _saved(tmp_path, "net", "aux")
    with pytest.raises(ValueError, match=r"^ckpt_path: .*'net\.'"):
        cli_main(["test", "--config", "recipes/digits_nv_small_cnn.yaml", "--trainer.default_root_dir", str(tmp_path / "r"),
                  "--ckpt_path", path])
