"""timm's conventions of the zoo, as a user reads them (probe P2 findings 1-3, P3 finding 2's zoo part).

- ``list_models(<architecture>, pretrained=True)`` and ``neuroview zoo <architecture>`` list that architecture's
  trained entries (timm: a filter without a dot also matches ``<filter>.*``); a filter that matches nothing says what
  the zoo holds.
- ``create_model(entry, pretrained=True, window=<the window the entry's network reads>)`` loads; another window is
  refused naming the checkpoint's real window.
- ``load_weights`` of another entry's file into a loaded entry leaves no record of the first entry behind.
- ``create_model(entry, pretrained=True)`` inside ``torch.inference_mode()`` gives a NeuroView-CNN with its sites and
  ordinary parameters: it explains exactly, inside inference mode and outside.
"""

from __future__ import annotations

import json
import shutil
import warnings

import pytest
import torch

import neuroview as nv
from neuroview.zoo.cli import main as zoo_main
from neuroview.zoo.pretrained import checkpoints_dir
from neuroview.zoo.weights import load_weights

ZOO = checkpoints_dir()
ENTRIES = json.loads((ZOO / "manifest.json").read_text())["entries"]


def _of(arch: str) -> list[str]:  # read off the manifest's own keys, by the text before the first dot
    return sorted(n for n in ENTRIES if n[:n.index(".")] == arch)


# ----------------------------------------------------------------- finding 1: an architecture's entries
def test_an_architecture_pattern_lists_its_trained_entries():
    gru = nv.list_models("nv_gru", pretrained=True)
    assert len(gru) == 10 and gru == _of("nv_gru") == nv.list_models("nv_gru.*", pretrained=True)
    assert nv.list_models("lstm", pretrained=True) == ["lstm.japanesevowels"]  # not nv_lstm's: another architecture
    assert nv.list_models("gru", pretrained=True) == _of("gru")
    # the globs that matched whole names before still do
    assert "nv_gru.gunpoint" in nv.list_models("*gunpoint", pretrained=True)
    assert nv.list_models("*.gunpoint", pretrained=True) == sorted(n for n in ENTRIES if n.endswith(".gunpoint"))
    assert nv.list_models("nv_gru.gunpoint", pretrained=True) == ["nv_gru.gunpoint"]
    assert nv.list_models("nv_gr", pretrained=True) == []  # no prefix match: a whole architecture name or a glob


def test_the_zoo_command_lists_an_architectures_entries(capsys):
    assert zoo_main(["nv_gru"]) == 0
    out = capsys.readouterr().out
    rows = [line.split()[0] for line in out.splitlines()[2:]]
    assert rows == _of("nv_gru")


def test_a_pattern_that_matches_nothing_says_what_the_zoo_holds(capsys):
    assert zoo_main(["nv_grux"]) == 0  # a listing of nothing, as before: only --verify of nothing fails
    out = capsys.readouterr().out
    assert "no trained entries matching 'nv_grux'" in out
    assert f"{len(ENTRIES)} entries" in out and "nv_gru" in out and "nv_lite" in out
    assert zoo_main(["--verify", "nv_grux"]) == 1
    assert "nv_gru" in capsys.readouterr().err


# ------------------------------------------------------------------ finding 2: the window an entry reads
def test_pretrained_accepts_the_window_the_entry_derives():
    ak = ENTRIES["nv_gru.gunpoint"]["arch_kwargs"]
    assert (ak["max_len"], ak["max_steps"], ak.get("window")) == (150, 50, None)  # 150 samples in 50 steps: 3 a step
    net = nv.create_model("nv_gru.gunpoint", pretrained=True, window=3)
    assert net.window == 3 and net.pretrained_cfg["name"] == "nv_gru.gunpoint"
    assert nv.create_model("gru.gunpoint", pretrained=True, window=3).window == 3
    assert nv.create_model("nv_gru.gunpoint", pretrained=True, window=None).window == 3  # None: derived, as before
    # an entry without max_steps reads one sample a step
    assert ENTRIES["lstm.japanesevowels"]["arch_kwargs"].get("max_steps") is None
    assert nv.create_model("lstm.japanesevowels", pretrained=True, window=1).window == 1


@pytest.mark.parametrize("name, window, shown", [
    ("nv_gru.gunpoint", 2, r"window=2 \(checkpoint: 3, from max_steps=50\)"),
    ("nv_gru.gunpoint", 1, r"window=1 \(checkpoint: 3, from max_steps=50\)"),
    ("lstm.japanesevowels", 2, r"window=2 \(checkpoint: 1, the default"),
])
def test_another_window_is_still_refused_naming_the_entrys_own(name, window, shown):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the check builds nothing: no window-over-max_steps warning either
        with pytest.raises(ValueError, match=r"kwargs: .* was trained with fixed arguments; got " + shown):
            nv.create_model(name, pretrained=True, window=window)


# -------------------------------------------------------------- finding 3: another entry's file, loaded
@pytest.mark.parametrize("other", ["nv_lite.gunpoint_sparse", "nv_lite.italypowerdemand"])
def test_another_entrys_file_does_not_keep_the_first_entrys_record(other):
    net = nv.create_model("nv_lite.gunpoint", pretrained=True)
    first = dict(net.pretrained_cfg)
    load_weights(net, ZOO / f"{other}.safetensors")
    cfg = net.pretrained_cfg
    assert cfg == {"loaded_from": other, "was": "nv_lite.gunpoint"}
    assert first["sha256"] not in json.dumps(cfg)
    batch = [(torch.randn(8, 1, 150, generator=torch.Generator().manual_seed(0)), torch.arange(8) % 2)]
    sparse = nv.sparsify(net, batch, val=batch, tolerance=100.0)
    assert sparse.pretrained_cfg.get("sparsified_from") != "nv_lite.gunpoint"  # the source it records is not the first


def test_a_file_without_a_name_is_told_by_its_sha256(tmp_path):
    net = nv.create_model("nv_lite.gunpoint", pretrained=True)
    record = dict(net.pretrained_cfg)
    own = tmp_path / "copy.safetensors"
    shutil.copyfile(ZOO / "nv_lite.gunpoint.safetensors", own)
    load_weights(net, own)  # the entry's own bytes: the record stays
    assert net.pretrained_cfg == record
    other = tmp_path / "w.safetensors"
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in nv.create_model("nv_lite.italypowerdemand", pretrained=True).state_dict().items()},
              str(other))  # no metadata: no name, another sha256
    load_weights(net, other)
    assert net.pretrained_cfg == {"loaded_from": str(other), "was": "nv_lite.gunpoint"}


def test_a_backbone_loaded_from_another_entry_drops_the_record_too():
    assert "lite.gunpoint" in ENTRIES
    net = nv.create_model("nv_lite.gunpoint", pretrained=True)
    assert load_weights(net, ZOO / "lite.gunpoint.safetensors", backbone=True) is net.backbone
    assert net.pretrained_cfg == {"loaded_from": "lite.gunpoint", "was": "nv_lite.gunpoint"}


def test_a_refused_load_keeps_the_record():
    net = nv.create_model("nv_lite.gunpoint", pretrained=True)
    record = dict(net.pretrained_cfg)
    with pytest.raises(ValueError):
        load_weights(net, ZOO / "nv_gru.gunpoint.safetensors")
    assert net.pretrained_cfg == record


# ---------------------------------------------------------- finding 4 (zoo part): inside inference_mode
def test_a_pretrained_cnn_made_inside_inference_mode_has_its_sites_and_explains():
    x = torch.randn(4, 1, 150, generator=torch.Generator().manual_seed(0))
    ref = nv.create_model("nv_lite.gunpoint", pretrained=True)
    with torch.inference_mode():
        net = nv.create_model("nv_lite.gunpoint", pretrained=True)
        assert net.sites is not None and [s.name for s in net.sites] == [s.name for s in ref.sites]
        assert not any(t.is_inference() for t in (*net.parameters(), *net.buffers()))
        exp = net.explain(x)
        assert torch.allclose(exp.contributions.flatten(2).sum(-1) + exp.bias, exp.logits, atol=1e-5)
    with torch.no_grad():
        assert torch.equal(net(x), ref(x))
    exp = net.explain(x)
    assert torch.allclose(exp.contributions.flatten(2).sum(-1) + exp.bias, exp.logits, atol=1e-5)
    net.train()
    net(x).sum().backward()  # ordinary parameters: it trains afterwards
