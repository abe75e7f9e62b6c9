"""``neuroview explain --data X``, X the model's own training data, loaded it three times (session 17, fault 5).

Once to read X as the model was trained (``read_as``: its normalization), once as ``--data``, and once more for
the baseline, the mean code of the model's own training split, from a second data module of the same arguments.
That last one is now the ``--data`` module itself where its class and arguments are the training record's (the same
split): two loads, and the same baseline bit for bit. The training split is still read twice (the mean code, then
the gallery): the gallery's units are the waterfalls' and those come from the explanation against that mean code.
"""

from __future__ import annotations

import collections

import pytest
import torch
from safetensors.torch import load_file

import neuroview as nv
from neuroview.data import digits
from neuroview.training.sparsify import mean_codes
from neuroview.zoo.pretrained import make_datamodule


def test_explain_with_the_model_s_own_data_loads_it_twice_not_three_times(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from neuroview.cli import main

    loads = collections.Counter()
    original = digits.DigitsDataModule.load

    def counted(self):
        loads[id(self)] += 1
        return original(self)

    monkeypatch.setattr(digits.DigitsDataModule, "load", counted)
    out = tmp_path / "r"
    assert main(["explain", "--model", "nv_small_cnn.digits", "--data", "digits", "--out", str(out), "--no-progress",
                 "--samples", "8", "--examples", "1"]) == 0
    assert sum(loads.values()) == 2  # was 3: the baseline's data module loaded the same set again
    net = nv.create_model("nv_small_cnn.digits", pretrained=True)
    monkeypatch.setattr(digits.DigitsDataModule, "load", original)
    want = mean_codes(net, make_datamodule(net.pretrained_cfg["dataset"]["data_module"]))  # computed apart
    got = load_file(str(out / "explanation.safetensors"))["baseline"]
    assert torch.equal(got.reshape(want.shape), want.to(got.dtype))
