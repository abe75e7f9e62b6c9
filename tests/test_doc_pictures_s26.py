"""The pictures and sentences of docs/TIME_SERIES.md and docs/EXPLAIN.md say what the code draws (probe s26 P2).

Finding 1: two heatmaps of TIME_SERIES.md, drawn before constant units read 0, showed initialisation noise as
weights; finding 4: ``ucr_pictures.class_means`` read a shuffling ``drop_last`` loader, so the drawn class means left
out a random training series and changed between runs; finding 2: the waterfall's first bar was called "the logit
of the average training digit", which it is not (it is the average training logit, 0.8 away for class "0")."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("ucr_pictures", REPO / "benchmarks" / "ucr_pictures.py")
ucr_pictures = sys.modules.setdefault("ucr_pictures", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(ucr_pictures)


class _Shuffled:
    """A data module whose training loader deals as Lightning's do: shuffled, the last short batch dropped."""

    num_classes = 2

    def __init__(self, x, y):
        self.x, self.y = x, y

    def train_dataloader(self):
        return DataLoader(TensorDataset(self.x, self.y), batch_size=4, shuffle=True, drop_last=True)


def test_class_means_read_every_training_series_whatever_the_loader_deals():
    torch.manual_seed(0)
    x, y = torch.randn(10, 1, 6), torch.tensor([0, 1] * 5)  # 10 series in batches of 4: drop_last leaves out 2
    x[9] += 100.0  # a series a dropped batch would leave out of class 1's mean, by far
    want = torch.stack([x[y == c, 0].mean(0) for c in (0, 1)])  # [C, T]: each class's mean, every series counted
    got = [ucr_pictures.class_means(_Shuffled(x, y), 1) for _ in range(4)]
    for g in got:  # before: 8 of the 10 series, a different 8 each call (up to 20 off here)
        assert g.shape == (2, 6, 1)
        torch.testing.assert_close(g[..., 0], want, rtol=0, atol=1e-5)
    windows = ucr_pictures.class_means(_Shuffled(x, y), 2)[..., 0]  # a step is 2 samples: their mean
    torch.testing.assert_close(windows, (want[:, 0::2] + want[:, 1::2]) / 2, rtol=0, atol=1e-5)


def _entries():
    from neuroview.zoo.pretrained import read_manifest

    page = (REPO / "docs" / "TIME_SERIES.md").read_text()
    drawn = re.findall(r"!\[([^\]]+)\]\(img/ucr/([^)]+)\.png\)", page)
    return read_manifest(), [name for name, file in drawn if name == file]


@pytest.mark.slow  # 11 pictures, 5-10 s each on 2 cores: re-drawn from the zoo's weights
@pytest.mark.parametrize("name", _entries()[1])
def test_each_time_series_picture_is_what_the_script_draws_today(name, tmp_path):
    import matplotlib.image as mi

    manifest = _entries()[0]
    fig = ucr_pictures.picture(name, manifest[name])
    fig.savefig(tmp_path / "new.png", dpi=72, bbox_inches="tight")
    new, old = mi.imread(tmp_path / "new.png"), mi.imread(REPO / "docs" / "img" / "ucr" / f"{name}.png")
    # before: nv_lite.italypowerdemand / .japanesevowels drew two constant units as weighted (mean |diff| 0.02),
    # nv_gru.italypowerdemand a class mean of 66 of the 67 series
    assert new.shape == old.shape, f"{name}: re-run python benchmarks/ucr_pictures.py"
    assert abs(new - old).max() == 0, f"{name}: differs (mean |diff| {abs(new - old).mean():.4f}); re-run the script"


def test_the_waterfall_s_first_bar_is_called_what_it_is():
    import neuroview as nv
    from neuroview.zoo.evaluate import make_datamodule

    from neuroview.zoo.pretrained import read_manifest

    manifest = read_manifest()
    net = nv.create_model("nv_small_cnn.digits_sparse", pretrained=True).eval()
    dm = make_datamodule(manifest["nv_small_cnn.digits_sparse"]["dataset"]["data_module"])
    dm.setup("fit")
    data = dm._dataset("train")
    x = torch.stack([data[i][0] for i in range(len(data))])
    with torch.no_grad():
        average_logit, logit_of_average = net(x).mean(0)[0], net(x.mean(0, keepdim=True))[0, 0]
    # the README's number for the first bar (-2.47) is the average training logit, not the average digit's logit
    assert round(float(average_logit), 2) == -2.47 and abs(float(logit_of_average) - float(average_logit)) > 0.5
    said = {p: (REPO / p).read_text() for p in ("docs/EXPLAIN.md", "README.md", "neuroview/viz/decision.py")}
    for path, text in said.items():
        flat = " ".join(text.split())
        assert "logit of the average" not in flat and "average sample's logit" not in flat, path
    for path in ("docs/EXPLAIN.md", "README.md"):  # what the first bar is, in the words the figure's number bears out
        flat = " ".join(said[path].split())
        assert "the average training logit" in flat and "the logit at the training split's mean code" in flat, path
