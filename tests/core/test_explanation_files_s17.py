"""Explanation files and tables at scale and across versions.

- The file format version is 3 since an RNN explanation records its ``window`` (and ``max_len``): a version-2 RNN
  file without a window (saved before it was recorded) was read as ``window=1`` (step 9 of a window of 4 said it
  read sample 9, it read 36-39); it is now refused unless ``Explanation.load(path, window=...)`` says it.
- ``time_importance`` ``[B, C, T]`` is formed when read (it was built for every class at each ``explain`` and saved:
  488 MiB beside 4 MiB of codes at 1,000 classes), with the same numbers, and not saved where codes and weight are.
- ``to_records`` / ``to_frame`` take ``target=`` (as ``for_class`` does): each sample's rows for its class only.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.core import saving
from neuroview.core.explanation import CNNExplanation, Explanation, RNNExplanation


def _rnn(window: int = 1, classes: int = 3, max_len: int = 12):
    torch.manual_seed(0)
    return nv.NeuroViewRNN(nn.GRU(window, 4, batch_first=True), classes, max_len=max_len, window=window).eval()


def _x(b: int = 3, t: int = 12):
    return torch.randn(b, t, 1, generator=torch.Generator().manual_seed(1))


def _as_version_2(path) -> None:
    """Rewrite a sidecar as a version-2 writer left it: no window, no max_len (nor the version of today)."""
    side = path.with_suffix(".json")
    meta = json.loads(side.read_text())
    meta.pop("window", None), meta.pop("max_len", None)
    side.write_text(json.dumps({**meta, "version": 2}))


# ------------------------------------------------------------------ 2. the window, recorded and versioned
def test_the_format_version_is_4_and_a_saved_rnn_explanation_records_its_window(tmp_path):
    assert saving.VERSION == 4  # 3: the window always; 4: given contributions kept (test_explanation_given_s20.py),
    # written only where some were given: a file of the network's own numbers stays readable by version-3 readers
    for window in (1, 4):
        exp = _rnn(window).explain(_x())
        exp.save(tmp_path / f"w{window}")
        meta = json.loads((tmp_path / f"w{window}.json").read_text())
        assert meta["version"] == 3 and meta["window"] == window  # window 1 too: "not recorded" is no longer 1
        back = Explanation.load(tmp_path / f"w{window}")
        assert back.window == window and back.max_len == exp.max_len


def test_an_older_rnn_file_without_its_window_is_refused_and_loads_with_one(tmp_path):
    exp = _rnn(4).explain(_x())  # steps of 4 samples: step 2 reads samples 8:12
    exp.save(tmp_path / "old")
    _as_version_2(tmp_path / "old.safetensors")
    with pytest.raises(ValueError, match=r"window: .*format version 2.*does not record its window.*Explanation\.load\(path, window=\.\.\.\)"):
        Explanation.load(tmp_path / "old")  # it loaded as window=1: "step 2 read sample 2"
    back = Explanation.load(tmp_path / "old", window=4)
    assert back.window == 4
    rows = [r for r in back.to_records() if r["step"] == 2]
    assert {r["input_samples"] for r in rows} == {"8:12"}
    torch.testing.assert_close(back.time_importance, exp.time_importance, rtol=0, atol=0)


def test_the_window_given_must_be_the_recorded_one_and_a_cnn_has_none(tmp_path):
    _rnn(4).explain(_x()).save(tmp_path / "new")
    assert Explanation.load(tmp_path / "new", window=4).window == 4
    with pytest.raises(ValueError, match=r"window: .* records window=4, got window=2"):
        Explanation.load(tmp_path / "new", window=2)
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="window: expected a positive int"):
            Explanation.load(tmp_path / "new", window=bad)
    torch.manual_seed(0)
    cnn = nv.create_model("nv_small_cnn", num_classes=3, in_channels=1, widths=[4])
    e = cnn.explain(torch.randn(2, 1, 8, 8))
    e.save(tmp_path / "cnn")
    _as_version_2(tmp_path / "cnn.safetensors")  # a CNN explanation has no steps: an older one loads as before
    back = Explanation.load(tmp_path / "cnn")
    assert isinstance(back, CNNExplanation)
    torch.testing.assert_close(back.contributions, e.contributions, rtol=0, atol=0)
    with pytest.raises(ValueError, match="window: .*CNNExplanation, which has no steps"):
        Explanation.load(tmp_path / "cnn", window=1)


def test_a_version_3_sidecar_without_a_window_is_refused(tmp_path):
    _rnn(4).explain(_x()).save(tmp_path / "e")
    side = tmp_path / "e.json"
    meta = json.loads(side.read_text())
    del meta["window"]
    for version in (3, 4):
        side.write_text(json.dumps({**meta, "version": version}))
        with pytest.raises(ValueError, match=rf"path: .*format version {version}\) records no window, which every RNN "
                                             r"explanation of version 3 or later does"):
            Explanation.load(tmp_path / "e")


# ------------------------------------------------------------------ 3. time_importance formed when read
def _hand_built():
    """Codes and weights set by hand: time_importance[b, c, t] = sum over l, d, h of W[c, l, d, t, h] * h[b, l, d, t, h]."""
    codes = torch.arange(2 * 2 * 1 * 3 * 2, dtype=torch.float32).reshape(2, 2, 1, 3, 2) / 10  # [B, L, D, T, H]
    weight = torch.tensor([1.0, -1.0, 0.5])[:, None, None, None, None] * torch.ones(3, 2, 1, 3, 2)  # [C, L, D, T, H]
    weight[2, 1, 0, 2, 1] = 4.0
    logits = codes.flatten(1) @ weight.flatten(1).T
    return RNNExplanation(logits=logits, bias=torch.zeros(3), codes=codes, weight=weight)


def test_time_importance_is_formed_on_read_with_the_known_numbers():
    exp = _hand_built()
    assert exp._time_importance is None  # nothing [B, C, T] is kept
    want = torch.zeros(2, 3, 3)
    for b in range(2):
        for c in range(3):
            for t in range(3):
                want[b, c, t] = sum(float(exp.weight[c, l, 0, t, h] * exp.codes[b, l, 0, t, h]) for l in range(2) for h in range(2))
    torch.testing.assert_close(exp.time_importance, want)
    # a new tensor at each read: editing it changes no later answer
    exp.time_importance[0, 0, 0] = 99.0
    torch.testing.assert_close(exp.time_importance, want)
    assert exp.time_importance.sum(-1).add(exp.bias).sub(exp.logits).abs().max() < 1e-5
    torch.testing.assert_close(exp.steps_for_class(2), want[:, 2])
    torch.testing.assert_close(exp.steps_for_class(torch.tensor([1, 0])), want[[0, 1], [1, 0]])


def test_explain_time_importance_equals_the_eager_einsum_exactly():
    net = _rnn(1, classes=5)
    x = _x(4)
    lengths = torch.tensor([12, 9, 5, 12])
    for baseline in (None, "mean"):
        exp = net.explain(x, lengths, baseline=baseline)
        assert exp._time_importance is None
        # what explain() built for every class before: one einsum over the features of each step
        n, (steps, width) = net.num_layers * net.num_directions, net.feature_shape[2:]
        delta = exp.codes if exp.baseline is None else exp.codes - exp.baseline
        eager = torch.einsum("bkth,ckth->bct", delta.reshape(4, n, steps, width), exp.weight.reshape(-1, n, steps, width))
        assert torch.equal(exp.time_importance, eager)
        torch.testing.assert_close(exp.time_importance, exp.contributions.sum(dim=(2, 3, 5)))
        assert exp.k90(level="steps") == pytest.approx(float(nv.core.readable.k_share(eager[torch.arange(4), exp.target], 0.9,
                                                                                            "c").float().quantile(0.5)))


def test_save_leaves_out_what_codes_and_weight_rebuild_and_old_files_holding_it_load(tmp_path):
    exp = _rnn(4).explain(_x())
    exp.save(tmp_path / "e")
    assert "time_importance" not in json.loads((tmp_path / "e.json").read_text())["tensors"]
    back = Explanation.load(tmp_path / "e")
    assert torch.equal(back.time_importance, exp.time_importance)
    # an older file holding it (and no codes: made from contributions alone) loads it as saved
    given = torch.full((3, 3, 3), 0.25)
    old = RNNExplanation(logits=exp.logits, bias=exp.bias, contributions=exp.contributions, time_importance=given,
                         window=4, max_len=12)
    old.save(tmp_path / "o")
    assert "time_importance" in json.loads((tmp_path / "o.json").read_text())["tensors"]
    assert torch.equal(Explanation.load(tmp_path / "o").time_importance, given)
    # a version-2 file with codes, weight and time_importance (as saved before), told its window
    saving.save(tmp_path / "v2", "RNNExplanation", {"logits": exp.logits, "bias": exp.bias, "codes": exp.codes,
                                                      "weight": exp.weight, "time_importance": given}, {})
    _as_version_2(tmp_path / "v2.safetensors")
    assert torch.equal(Explanation.load(tmp_path / "v2", window=4).time_importance, given)


# ------------------------------------------------------------------ 4. tables limited to classes
def _full_rows_of(rows: list[dict], t: list[int], names=None) -> list[dict]:
    return [r for r in rows if r["class"] == (names[t[r["sample"]]] if names else t[r["sample"]])]


def test_cnn_records_for_a_target_are_the_full_table_rows_of_those_classes():
    torch.manual_seed(0)
    net = nv.create_model("nv_small_cnn", num_classes=4, in_channels=1, widths=[4, 8])
    x = torch.randn(3, 1, 8, 8)
    names = ["a", "b", "c", "d"]
    for kw in ({}, {"baseline": "mean"}):
        exp = net.explain(x, **kw)
        full = exp.to_records(names)
        t = torch.tensor([3, 0, 3])
        assert exp.to_records(names, target=t) == _full_rows_of(full, t.tolist(), names)
        assert exp.to_records(target=1) == _full_rows_of(exp.to_records(), [1, 1, 1])
        assert exp.to_records(target=exp.target) == _full_rows_of(exp.to_records(), exp.predicted.tolist())
        assert len(exp.to_records(target=1)) == 3 * len(exp.units)  # B x U rows, not B x C x U
    # known by hand: a contribution is weight[class, unit] * code
    r = exp.to_records(target=2)[5]
    u = exp.units.index((r["site"], r["channel"]))
    assert r["contribution"] == pytest.approx(float(exp.weight[2, u]) * (r["code"] - r["baseline"]))
    with pytest.raises(ValueError, match="target: expected a class index in"):
        exp.to_records(target=4)


def test_plain_and_rnn_records_for_a_target_are_the_full_table_rows():
    exp = Explanation(logits=torch.zeros(2, 3), bias=torch.zeros(3), codes=torch.tensor([[1.0, 2.0], [3.0, -1.0]]),
                      weight=torch.tensor([[1.0, 0.0], [0.5, 2.0], [-1.0, 1.0]]))
    assert exp.to_records(target=torch.tensor([1, 2])) == [
        {"sample": 0, "class": 1, "feature": 0, "contribution": 0.5}, {"sample": 0, "class": 1, "feature": 1, "contribution": 4.0},
        {"sample": 1, "class": 2, "feature": 0, "contribution": -3.0}, {"sample": 1, "class": 2, "feature": 1, "contribution": -1.0}]
    assert exp.to_records(target=torch.tensor([1, 2])) == _full_rows_of(exp.to_records(), [1, 2])
    rnn = _hand_built()
    t = [2, 0]
    full = _full_rows_of(rnn.to_records(), t)
    got = rnn.to_records(target=torch.tensor(t))
    assert [{k: v for k, v in r.items() if k != "contribution"} for r in got] == \
        [{k: v for k, v in r.items() if k != "contribution"} for r in full]
    assert [r["contribution"] for r in got] == pytest.approx([r["contribution"] for r in full], rel=1e-6, abs=1e-7)
    # by hand: layer 1, step 2 of class 2 reads weight 0.5 and 4.0 on sample 0's codes there
    row = next(r for r in got if r["sample"] == 0 and r["layer"] == 1 and r["step"] == 2)
    assert row["contribution"] == pytest.approx(0.5 * float(rnn.codes[0, 1, 0, 2, 0]) + 4.0 * float(rnn.codes[0, 1, 0, 2, 1]))
    win = _rnn(4).explain(_x())
    assert [r["input_samples"] for r in win.to_records(target=1) if r["sample"] == 0] == ["0:4", "4:8", "8:12"]


def test_to_frame_takes_the_target_too():
    pd = pytest.importorskip("pandas")
    exp = _rnn(1).explain(_x())
    frame = exp.to_frame(target=exp.target)
    assert isinstance(frame, pd.DataFrame) and len(frame) == 3 * 12
    assert frame["class"].tolist() == [int(c) for c in exp.target for _ in range(12)]


def test_version_4_is_written_only_where_contributions_were_given(tmp_path):
    exp = _rnn(1).explain(_x())
    exp.save(tmp_path / "own")
    assert json.loads((tmp_path / "own.json").read_text())["version"] == 3  # the network's own numbers: v3 readers read it
    halved = exp.contributions / 2  # an edit: no longer what codes and weight form
    exp.contributions = halved
    exp.save(tmp_path / "edited")
    meta = json.loads((tmp_path / "edited.json").read_text())
    assert meta["version"] == 4 and "contributions" in meta["given"]  # a v3 reader refuses it, never drops the edit
    assert torch.equal(Explanation.load(tmp_path / "edited").contributions, halved)
