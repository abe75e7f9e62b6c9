"""The zoo's fine-tuned sparse entries store the spreads of the codes their backbone computes now.

``nv.finetune_sparse`` ends by re-estimating the head's standardization (``norm.running_mean``, ``running_var``) on the
fine-tuned codes of the training split, the head rescaled so that every logit stays (ee8d37c). The entries exported
before that kept sparsify's statistics, of the backbone before fine-tuning: ``unit_importance(standardized=True)``,
``top_units`` and the report's rankings weighed units by spreads up to 3.6x off. ``benchmarks/sparsify_zoo.py
--recentre`` re-estimated them. The codes here are computed apart from the code under test: the network's public
``codes``, over the data module's training samples read one at a time (no ``_recentre``, no ``_features``). That every
file's sha256 matches the manifest is ``tests/zoo/test_zoo.py::test_every_checkpoint``'s.
"""

from __future__ import annotations

import pytest
import torch

import neuroview as nv
from neuroview.zoo.evaluate import make_datamodule
from neuroview.zoo.pretrained import read_manifest

ENTRIES = read_manifest()


def _training_codes(net, entry) -> torch.Tensor:
    dm = make_datamodule(entry["dataset"]["data_module"])
    dm.setup("fit")
    ds = dm.train_dataloader().dataset  # the training split (the loader shuffles and drops a last batch: not read)
    assert ds.augment is None  # the codes of the samples themselves
    items = [ds[i] for i in range(len(ds))]
    x = torch.stack([it[0] for it in items])
    n = torch.stack([it[1] for it in items]) if len(items[0]) == 3 else None  # (x, length, y): a series' steps
    rnn = isinstance(net, nv.NeuroViewRNN)  # its features: every step's hidden states, the series steps-first
    with torch.no_grad():
        return torch.cat([net._features(x[i:i + 256].transpose(1, 2), None if n is None else n[i:i + 256])[0].flatten(1)
                          if rnn else net.codes(x[i:i + 256]) for i in range(0, len(x), 256)]).double()


def _kept(entry) -> int:  # benchmarks' export records it under "training", `neuroview sparsify --finetune` under "sparsify"
    return max((entry.get(k) or {}).get("finetune_epochs_kept") or 0 for k in ("training", "sparsify"))


FINE_TUNED = sorted(n for n, e in ENTRIES.items() if n.endswith("_sparse") and _kept(e))


def _assert_spreads(name):
    if ENTRIES[name]["dataset"]["data_module"]["class_path"].endswith("UCRDataModule"):
        pytest.importorskip("aeon")
    net = nv.create_model(name, pretrained=True).eval()
    c = _training_codes(net, ENTRIES[name])
    torch.testing.assert_close(net.norm.running_mean.double(), c.mean(0), rtol=1e-3, atol=1e-5)
    torch.testing.assert_close(net.norm.running_var.double(), c.var(0, unbiased=False), rtol=1e-3, atol=1e-6)


@pytest.mark.slow  # about 90 s on 2 cores: every fine-tuned sparse entry's training split read once
@pytest.mark.parametrize("name", FINE_TUNED)
def test_every_fine_tuned_sparse_entry_stores_its_training_codes_spread(name):
    _assert_spreads(name)


@pytest.mark.parametrize("name", ["nv_small_cnn.digits_sparse", "nv_lite.gunpoint_sparse"])
def test_a_fine_tuned_sparse_entry_stores_its_training_codes_spread(name):
    if name.startswith("nv_lite."):
        pytest.importorskip("aeon")
    entry = ENTRIES[name]
    assert entry["training"]["finetune"] == 5 and entry["training"]["finetune_epochs_kept"] == 5  # fine-tuned: re-centred
    net = nv.create_model(name, pretrained=True).eval()
    c = _training_codes(net, entry)
    assert len(c) == {"nv_small_cnn.digits_sparse": 1295, "nv_lite.gunpoint_sparse": 50}[name]  # the whole split
    norm = net.norm
    torch.testing.assert_close(norm.running_mean.double(), c.mean(0), rtol=1e-3, atol=1e-5)
    torch.testing.assert_close(norm.running_var.double(), c.var(0, unbiased=False), rtol=1e-3, atol=1e-6)


def test_the_zoo_has_fourteen_fine_tuned_sparse_entries():  # the slow test's reach: a record missed shrinks it
    assert len(FINE_TUNED) == 14 and "nv_lite.italypowerdemand_sparse" not in FINE_TUNED


# ------------------------------------------------------------------ benchmarks/sparsify_zoo.py --recentre
def _sparsify_zoo():
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "sparsify_zoo.py"
    spec = importlib.util.spec_from_file_location("sparsify_zoo_s27", path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))  # its own helpers (_cache)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


def _zoo_of(tmp_path, monkeypatch, name, state=None):
    """A zoo folder of ``name`` alone (its file, or ``state`` saved with the file's own metadata), made the zoo."""
    import hashlib
    import json

    from safetensors import safe_open

    from neuroview._io import safetensors_bytes
    from neuroview.zoo.pretrained import checkpoints_dir

    entry = dict(ENTRIES[name])
    source = checkpoints_dir() / entry["file"]
    with safe_open(str(source), framework="pt") as f:
        meta = f.metadata()
    data = source.read_bytes() if state is None else safetensors_bytes(state, metadata=meta)
    entry["sha256"], entry["size_bytes"] = hashlib.sha256(data).hexdigest(), len(data)
    (tmp_path / entry["file"]).write_bytes(data)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": 1, "entries": {name: entry}}, indent=2, sort_keys=True)
                                            + "\n")
    monkeypatch.setenv("NEUROVIEW_CHECKPOINTS", str(tmp_path))
    return entry


@pytest.mark.slow  # about 10 s of CPU: the entry's test split read for its logits, accuracy and readability
def test_recentre_mends_stale_spreads_keeps_every_decision_and_then_changes_nothing(tmp_path, monkeypatch):
    pytest.importorskip("aeon")
    name = "nv_lite.gunpoint_sparse"
    net = nv.create_model(name, pretrained=True).eval()
    stale = {k: v.clone() for k, v in net.state_dict().items()}  # the spreads 4x, the head the same function
    old = net.norm.scale(torch.float64)
    net.norm.running_var.mul_(4.0)
    stale["norm.running_var"] = net.norm.running_var.clone()
    stale["classifier.weight"] = (net.classifier.weight.double() * old / net.norm.scale(torch.float64)).float()
    entry = _zoo_of(tmp_path, monkeypatch, name, stale)
    said = _sparsify_zoo().recentre(name)
    assert said.startswith("re-centred: stored spreads (std) off by up to 2x") and "predictions identical" in said
    assert "metrics moved by it: none" in said and "already differed from the manifest: none" in said
    import json

    from neuroview.zoo.pretrained import sha256_file

    written = json.loads((tmp_path / "manifest.json").read_text())["entries"][name]
    assert written["sha256"] == sha256_file(tmp_path / entry["file"]) != entry["sha256"]
    assert {k: v for k, v in written.items() if k != "sha256"} == {k: v for k, v in entry.items() if k != "sha256"}
    back = nv.create_model(name, pretrained=True).eval()
    c = _training_codes(back, entry)
    torch.testing.assert_close(back.norm.running_var.double(), c.var(0, unbiased=False), rtol=1e-3, atol=1e-6)
    files = (tmp_path / entry["file"]).read_bytes(), (tmp_path / "manifest.json").read_bytes()
    assert _sparsify_zoo().recentre(name) == "unchanged: its spreads are the fine-tuned codes' already"
    assert ((tmp_path / entry["file"]).read_bytes(), (tmp_path / "manifest.json").read_bytes()) == files


def test_recentre_refuses_a_head_that_would_change_a_decision(tmp_path, monkeypatch):
    pytest.importorskip("aeon")
    name = "nv_lite.gunpoint_sparse"
    entry = _zoo_of(tmp_path, monkeypatch, name)
    files = (tmp_path / entry["file"]).read_bytes(), (tmp_path / "manifest.json").read_bytes()

    def off(net, train):  # the spreads moved, the head not rescaled: the logits move
        net.norm.running_var.mul_(9.0)

    import neuroview.training.sparse_finetune as sf

    monkeypatch.setattr(sf, "_recentre", off)
    with pytest.raises(SystemExit, match=r"nv_lite.gunpoint_sparse: the re-centred head changes the decision .*"
                                         r"nothing written"):
        _sparsify_zoo().recentre(name)
    assert ((tmp_path / entry["file"]).read_bytes(), (tmp_path / "manifest.json").read_bytes()) == files


# ------------------------------------------------------------------ the script's record, words and names (fast)
def test_recentre_reads_the_fine_tuning_record_where_either_export_writes_it():
    sz = _sparsify_zoo()
    assert sz.finetune_kept({"training": {"finetune": 5, "finetune_epochs_kept": 5}}) == 5  # sparsify_zoo.py --export
    cli = {"training": {"recipe_commit": "4570113"}, "sparsify": {"finetune": 5, "finetune_epochs_kept": 3}}
    assert sz.finetune_kept(cli) == 3  # neuroview sparsify --finetune (sparsify_cli.sparsify_record)
    assert sz.finetune_kept({"sparsify": {"finetune": 0, "finetune_epochs_kept": None}}) == 0
    assert sz.finetune_kept({"training": {"finetune_epochs_kept": 0}}) == 0 and sz.finetune_kept({}) == 0


def test_recentre_reports_the_spreads_as_standard_deviations_either_way():
    sz = _sparsify_zoo()
    true = torch.tensor([1.0, 0.25, 9.0])
    assert sz.spread_off(true * 4, true) == pytest.approx(2.0)  # stored std 2x the codes': 2x, not 0.25x
    assert sz.spread_off(true / 9, true) == pytest.approx(3.0)  # stored std a third of theirs: 3x
    assert sz.spread_off(torch.tensor([4.0, 1 / 9]), torch.tensor([1.0, 1.0])) == pytest.approx(3.0)  # the larger way
    assert sz.spread_off(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 1.0])) == pytest.approx(1.0)  # a dead unit: no ratio


def test_recentre_entries_take_sparse_and_dense_names_and_refuse_others_naming_entries(capsys):
    sz = _sparsify_zoo()
    known = ["nv_lite.gunpoint_sparse", "nv_small_cnn.digits_sparse"]
    assert sz.recentre_names(["nv_lite.gunpoint", "nv_small_cnn.digits_sparse"], known) == known
    assert sz.recentre_names(["nv_lite.gunpoint_sparse", "nv_lite.gunpoint"], known) == ["nv_lite.gunpoint_sparse"]
    with pytest.raises(ValueError, match=r"^'nv_lite\.arrowhead'$"):
        sz.recentre_names(["nv_lite.arrowhead"], known)
    with pytest.raises(SystemExit) as e:
        sz.main(["--recentre", "--entries", "nv_nope.gunpoint"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--entries: expected" in err and "'nv_nope.gunpoint'" in err and "_sparse" in err
