"""Review R4 finding 6: the plots prefixed "class " to a class name Python's ``float`` reads ("1_0", "inf",
"Infinity", Arabic-Indic and full-width digits), where the data modules read those labels as text names: a class the
data calls ``inf`` was drawn as "class inf". The plots now follow the data's rule (ASCII digits as written, no
underscores, no inf): the expected drawings below are written out by hand from that rule."""

import pytest
import torch
from torch import nn

import neuroview as nv

pytest.importorskip("matplotlib")
from neuroview.viz import plots  # noqa: E402


def _cnn(classes: int) -> nv.NeuroViewCNN:
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU())
    return nv.NeuroViewCNN(backbone, classes, example_input=torch.rand(2, 1, 6, 6)).eval()


TEXT = ["1_0", "inf", "Infinity", "-Inf", "nan_x", "\u0661", "\uff11"]  # text names to the data: drawn as given
NUMBERS = ["1", "2.5", "1e3", "-0", ".5", "+7", "01"]  # numbers to the data: "class " keeps them off the tick values
DRAWN = ["class 1", "class 2.5", "class 1e3", "class -0", "class .5", "class +7", "class 01"]


@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")  # DejaVu has no full-width digits: drawn as boxes
def test_names_the_data_reads_as_text_are_drawn_as_given_and_numbers_get_the_prefix():
    net = _cnn(len(TEXT))
    rows = [t.get_text() for t in plots.unit_heatmap(net, class_names=TEXT).axes[0].get_yticklabels()]
    assert rows == TEXT  # was "class 1_0", "class inf", ..., "class ١", "class １"
    rows = [t.get_text() for t in plots.unit_heatmap(net, class_names=NUMBERS).axes[0].get_yticklabels()]
    assert rows == DRAWN
    titles = [ax.get_title() for ax in plots.top_units(net, class_names=TEXT).axes[:len(TEXT)]]
    assert titles == TEXT


def test_a_text_name_beside_its_prefixed_spelling_is_two_classes():
    """ "inf" and "class inf" are two names the data reads apart; drawn as "class inf" twice, they were refused."""
    fig = plots.top_units(_cnn(3), class_names=["inf", "class inf", "1"])
    assert [ax.get_title() for ax in fig.axes[:3]] == ["inf", "class inf", "class 1"]
