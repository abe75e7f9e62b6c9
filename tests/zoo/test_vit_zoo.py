"""The transformer of the zoo end to end, on its shipped checkpoint (no training here).

``nv_vit_tiny.digits``: its sites are token sites (units on the last dim of ``[B, N, hidden]``,
as many as the MLPs' hidden widths, counted here from the modules themselves), its
explanations of real digits are exact and survive save/load, and ``neuroview explain`` writes a
report for it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.cli import main as cli
from neuroview.zoo import pretrained as zoo

NAME = "nv_vit_tiny.digits"
ENTRIES = zoo.read_manifest(Path(__file__).resolve().parents[2] / "checkpoints")
pytestmark = pytest.mark.skipif(NAME not in ENTRIES, reason=f"{NAME} is not in checkpoints/manifest.json")


@pytest.fixture(scope="module")
def digits():
    """The pretrained network and the first 12 digits of its test split."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny network on a shared CPU: threads only wait on each other
    dm = zoo.make_datamodule(ENTRIES[NAME]["dataset"]["data_module"])
    dm.setup("test")
    x, y = next(iter(dm.test_dataloader()))
    yield nv.create_model(NAME, pretrained=True), x[:12], y[:12]
    torch.set_num_threads(n)


def test_its_sites_are_token_sites_of_the_mlp_hidden_features(digits):
    net, x, _ = digits
    assert isinstance(net, nv.NeuroViewCNN) and not net.training
    with torch.no_grad():
        net(x)  # the sites are found on the first real batch
    backbone = net.backbone
    gelus = [n for n, m in backbone.named_modules() if isinstance(m, nn.GELU)]
    hidden = [m.out_features for n, m in backbone.named_modules() if n.endswith("mlp.fc1")]
    assert len(hidden) == len(backbone.blocks) == len(gelus) == 4
    assert [s.name for s in net.sites] == gelus
    assert all(s.axis == -1 for s in net.sites)
    assert [s.channels for s in net.sites] == hidden
    assert net.num_units == sum(hidden) == net.classifier.in_features
    # the tokens: 16 patches of 2x2 on an 8x8 digit, and the class token
    assert backbone.patch_embed(x).flatten(2).shape[-1] + 1 == backbone.pos_embed.shape[1] == 17


def test_explanations_of_digits_are_exact_and_survive_save_load(digits, tmp_path):
    net, x, y = digits
    with torch.no_grad():
        logits = net.eval()(x)
    assert (logits.argmax(1) == y).float().mean() >= 0.9  # a trained network, not a random one
    exp = net.explain(x)
    pred = exp.predicted
    torch.testing.assert_close(exp.logits, logits, rtol=1e-5, atol=1e-5)
    got = exp.for_class(pred).sum(-1) + exp.bias[pred]
    torch.testing.assert_close(got, logits.gather(1, pred[:, None])[:, 0], rtol=1e-5, atol=1e-5)
    assert not net.training  # explain left the modes as it found them

    exp.save(tmp_path / "vit.safetensors")
    back = nv.Explanation.load(tmp_path / "vit.safetensors")
    assert isinstance(back, nv.CNNExplanation) and back.units == exp.units == net.units
    for field in ("logits", "bias", "codes", "weight"):
        assert torch.equal(getattr(back, field), getattr(exp, field)), field
    assert torch.equal(back.for_class(pred), exp.for_class(pred))


def test_cli_explain_writes_a_report(tmp_path, capsys):
    out = tmp_path / "report"
    rc = cli(["explain", "--model", NAME, "--samples", "16", "--examples", "1", "--no-progress", "--dpi", "40",
              "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    files = {p.name for p in out.iterdir()}
    assert {"index.html", "report.json", "unit_importance.csv", "predictions.csv", "explanation.safetensors"} <= files
    assert not any(f.startswith("spatial_maps_") for f in files)  # token sites have no image-shaped maps
    meta = json.loads((out / "report.json").read_text())
    assert len(meta["class_names"]) == 10
    exp = nv.Explanation.load(out / "explanation.safetensors")
    assert exp.logits.shape == (16, 10) and len(exp.units) == 512
