"""`neuroview demo`, the README's first next step, run as a user runs it."""

from __future__ import annotations

import re

import pytest

from neuroview.training.demo import main as demo


def test_neuroview_demo_trains_explains_and_prints_the_top_units(capsys):
    """It crashed on every run (`len(net.sites)` before the sites were found on a first batch): the
    test of --epochs 0 had taken that TypeError for one of the epochs."""
    assert demo(["--epochs", "1", "--top", "2"]) == 0
    out = capsys.readouterr().out
    sites, units = map(int, re.search(r"NeuroView-CNN on digits: (\d+) sites, (\d+) units", out).groups())
    assert sites >= 2 and units > sites
    residual = float(re.search(r"= ([0-9.e+-]+)\n", out).group(1))
    assert residual < 1e-4  # the decision is its units' contributions plus the bias
    assert len(re.findall(r"^  class \d: ", out, re.M)) == 10


def test_neuroview_demo_names_an_unknown_quantizer(capsys):
    with pytest.raises(SystemExit) as e:
        demo(["--quantizer", "bogus"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--quantizer:" in err and "bogus" in err and "Traceback" not in err
