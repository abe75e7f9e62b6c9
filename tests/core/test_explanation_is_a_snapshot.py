"""An explanation a user holds (a probe of 2026-12-06): nothing the caller does afterwards to the tensors it passed in
or got back changes its answers; its files neither overwrite a user's nor load when they do not belong together.
Expected values come from the codes and the effective classifier, computed here."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

import neuroview as nv
from nets import with_running_stats


@pytest.fixture
def cnn():
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Conv2d(3, 4, 3), nn.ReLU())
    x = torch.randn(4, 1, 7, 7)
    return with_running_stats(nv.wrap(backbone, num_classes=3, input_shape=(1, 7, 7)), x), x


def _by_hand(net, x, target):
    w, b = net.effective_classifier()
    return net.codes(x) * w[target]


def test_the_callers_target_and_lengths_are_copied(cnn):
    net, x = cnn
    y = torch.tensor([0, 1, 2, 0])
    exp = net.explain(x, target=y)
    want = _by_hand(net, x, torch.tensor([0, 1, 2, 0]))
    y.fill_(2)  # the caller reuses its label tensor
    assert torch.allclose(exp.for_class(), want, atol=1e-6)
    got = exp.targets()
    got.zero_()
    assert exp.target.tolist() == [0, 1, 2, 0]
    labels = np.array([0, 1, 2, 0])
    exp = net.explain(x, target=labels)
    labels[:] = 2
    assert exp.target.tolist() == [0, 1, 2, 0]
    torch.manual_seed(0)
    rnn = with_running_stats(nv.wrap(nn.GRU(2, 3, batch_first=True), num_classes=2, max_len=5), torch.randn(2, 5, 2))
    lengths = torch.tensor([5, 3])
    exp = rnn.explain(torch.randn(2, 5, 2), lengths=lengths)
    lengths[1] = 1
    assert exp.lengths.tolist() == [5, 3]


def test_editing_the_dense_contributions_changes_no_later_answer(cnn):
    net, x = cnn
    exp = net.explain(x)
    before = (exp.for_class(1).clone(), exp.by_site(1).clone(), exp.k90())
    c = exp.contributions
    c[:, :, 0] = 0  # an ablation table made in place
    assert torch.equal(exp.for_class(1), before[0]) and torch.equal(exp.by_site(1), before[1]) and exp.k90() == before[2]
    assert float(exp.residual(1).abs().max()) < 1e-5
    assert torch.allclose(exp.contributions[:, 1], _by_hand(net, x, torch.full((4,), 1)), atol=1e-6)


def test_class_names_must_be_a_sequence_and_explanations_compare_by_identity(cnn):
    net, x = cnn
    exp = net.explain(x)
    for bad in ({0: "cat", 1: "dog", 2: "owl"}, "dog"):
        with pytest.raises(TypeError, match=r"class_names: expected a sequence of names, one per class, got (dict|str)"):
            exp.to_records(class_names=bad)
    assert {r["class"] for r in exp.to_records(class_names=["cat", "dog", "owl"])} == {"cat", "dog", "owl"}
    assert exp == exp and exp != net.explain(x) and exp in [exp] and isinstance(hash(exp), int)


def test_save_replaces_an_explanation_but_no_file_of_the_users(cnn, tmp_path):
    net, x = cnn
    exp = net.explain(x)
    (tmp_path / "model.safetensors").write_bytes(b"the user's weights")
    (tmp_path / "results.json").write_text('{"accuracy": 0.9}')
    for name in ("model", "results"):
        with pytest.raises(FileExistsError, match=r"exists and is no neuroview explanation's"):
            exp.save(tmp_path / name)
    assert (tmp_path / "model.safetensors").read_bytes() == b"the user's weights"
    assert json.loads((tmp_path / "results.json").read_text()) == {"accuracy": 0.9}
    exp.save(tmp_path / "e")
    net.explain(x[:2]).save(tmp_path / "e")  # an earlier explanation: replaced
    assert nv.Explanation.load(tmp_path / "e").logits.shape == (2, 3)


def test_load_reads_a_device_and_refuses_a_sidecar_that_does_not_fit(cnn, tmp_path):
    net, x = cnn
    exp = net.explain(x, maps=True)
    exp.save(tmp_path / "e")
    with pytest.raises(TypeError, match=r"device: expected a str or torch.device, got dtype torch.float16"):
        nv.Explanation.load(tmp_path / "e", device=torch.float16)
    with pytest.raises(ValueError, match=r"device: 'gpu' is no device this torch can use"):
        nv.Explanation.load(tmp_path / "e", device="gpu")
    meta_path = tmp_path / "e.json"
    meta = json.loads(meta_path.read_text())

    def edited(change):
        m = json.loads(json.dumps(meta))
        change(m)
        meta_path.write_text(json.dumps(m))
        return lambda: nv.Explanation.load(tmp_path / "e")
    with pytest.raises(ValueError, match=r"its sidecar names unit 0 \('3', 3\), where its site_slices put channel 0 of '1'"):
        edited(lambda m: m.__setitem__("units", m["units"][::-1]))()
    with pytest.raises(ValueError, match=r"its sidecar's code maps \['3', '1'\] name no site .* or hold another number"):
        edited(lambda m: m.__setitem__("code_maps", m["code_maps"][::-1]))()
    with pytest.raises(ValueError, match=r"its sidecar's code maps \['a'\]"):
        edited(lambda m: m.__setitem__("code_maps", ["a", m["code_maps"][1]]))()
    with pytest.raises(ValueError, match=r"its sidecar says RNNExplanation, whose codes have 5 dims"):
        edited(lambda m: m.__setitem__("type", "RNNExplanation"))()
    meta_path.write_text(json.dumps(meta))
    back = nv.Explanation.load(tmp_path / "e")
    assert back.units == exp.units and torch.equal(back.spatial_map("3"), exp.spatial_map("3"))


def test_a_file_that_stored_the_dense_contributions_loads_as_a_snapshot_too(cnn, tmp_path):
    # version-1 files kept the dense contributions beside the codes and weight: loaded, they were handed out as stored
    from neuroview.core import saving  # noqa: PLC0415

    net, x = cnn
    exp = net.explain(x)
    tensors, meta = exp._state()
    saving.save(tmp_path / "v1", "CNNExplanation", tensors | {"contributions": exp.contributions}, meta)
    back = nv.Explanation.load(tmp_path / "v1")
    before = back.for_class(0).clone()
    back.contributions[:, 0] *= 0
    assert torch.equal(back.for_class(0), before) and float(back.residual().abs().max()) < 1e-5
