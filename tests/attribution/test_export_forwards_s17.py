"""``neuroview.attribution.export`` passes on the new arguments of what it wraps (d288c6c).

- ``load_explanation(path, window=)``: an RNN explanation file of an earlier neuroview does not record its window and
  is refused without one, naming ``window=``; ``Explanation.load`` took it, ``load_explanation`` did not.
- ``explanation_records(exp, class_names, target=)``: ``to_records(target=)`` gives each sample's rows for its class
  only; ``explanation_records`` took no ``target``.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.attribution.export import explanation_records, load_explanation, save_explanation
from neuroview.core.explanation import Explanation


def test_load_explanation_takes_the_window_an_older_file_leaves_out(tmp_path):
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(4, 4, batch_first=True), 3, max_len=12, window=4).eval()
    exp = net.explain(torch.randn(2, 12, 1, generator=torch.Generator().manual_seed(1)))
    save_explanation(exp, tmp_path / "old.safetensors")
    side = tmp_path / "old.json"  # as a version-2 writer left it: no window, no max_len
    meta = json.loads(side.read_text())
    meta.pop("window", None), meta.pop("max_len", None)
    side.write_text(json.dumps({**meta, "version": 2}))
    with pytest.raises(ValueError, match=r"window: .*does not record its window"):
        load_explanation(tmp_path / "old.safetensors")
    back = load_explanation(tmp_path / "old.safetensors", window=4)  # was: TypeError, unexpected keyword 'window'
    assert back.window == 4
    # by hand: step t of a window of 4 reads input samples 4t to 4t + 4
    assert {(r["step"], r["input_samples"]) for r in back.to_records()} == {(0, "0:4"), (1, "4:8"), (2, "8:12")}
    torch.testing.assert_close(back.time_importance, exp.time_importance, rtol=0, atol=0)
    save_explanation(exp, tmp_path / "new.safetensors")  # a file that records its window: the one given is checked
    assert load_explanation(tmp_path / "new.safetensors", window=4).window == 4
    with pytest.raises(ValueError, match="window: .* records window=4, got window=2"):
        load_explanation(tmp_path / "new.safetensors", window=2)


def test_explanation_records_take_the_target():
    codes = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    weight = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.5, 0.0]])
    exp = Explanation(logits=codes @ weight.T, bias=torch.zeros(2), codes=codes, weight=weight)
    rows = explanation_records(exp, ["a", "b"], target=torch.tensor([1, 0]))  # was: TypeError, unexpected 'target'
    # by hand: contribution = weight[class, feature] * code[sample, feature], the sample's own class only
    assert [(r["sample"], r["class"], r["feature"], r["contribution"]) for r in rows] == [
        (0, "b", 0, 2.0), (0, "b", 1, 1.0), (0, "b", 2, 0.0), (1, "a", 0, 4.0), (1, "a", 1, 0.0), (1, "a", 2, -6.0)]
    assert explanation_records(exp, target=1) == [r for r in explanation_records(exp) if r["class"] == 1]
    assert len(explanation_records(exp)) == 2 * 2 * 3  # every class without it, as before
