"""Every shipped zoo entry, loaded as users load it, gives the test accuracy its manifest states.

The manifest's figure was measured once, when the entry was saved; code changed since can make the
loaded network another function. It did: the head's variance floor came after the two
``nv_small_cnn`` entries were trained, so they loaded as networks they were never trained as
(digits 99.7% against the manifest's 100.0%, mnist1d 96.0% against 95.9%) while ``neuroview zoo
--verify`` passed (the hash and a 128-sample slice). Their ``arch_kwargs`` now say ``norm_floor: 0``.
The accuracy is counted here by hand, not by the zoo's own scoring code.
"""

from __future__ import annotations

import pytest
import torch

import neuroview as nv
from neuroview._batch import call_model, unpack
from neuroview.zoo.evaluate import make_datamodule
from neuroview.zoo.pretrained import read_manifest

pytest.importorskip("aeon")
pytest.importorskip("mnist1d")
ENTRIES = read_manifest()


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_the_loaded_entry_scores_its_manifest_accuracy(name):
    entry = ENTRIES[name]
    model = nv.create_model(name, pretrained=True)
    dm = make_datamodule(entry["dataset"]["data_module"])
    dm.setup("test")
    right = total = 0
    with torch.no_grad():
        for batch in dm.test_dataloader():
            x, lengths, y = unpack(batch)
            right += int((call_model(model, x, lengths).argmax(1) == y).sum())
            total += len(y)
    assert total == entry["metrics"]["test_size"]
    assert right / total == pytest.approx(entry["metrics"]["test_acc"], abs=1e-9)


def test_entries_trained_before_the_floor_load_without_it():
    for name in ("nv_small_cnn.digits", "nv_small_cnn.mnist1d"):  # and their sparse variants, made from them as trained
        for entry in (name, f"{name}_sparse"):
            assert nv.create_model(entry, pretrained=True).norm.floor == 0.0
    assert nv.create_model("nv_lite.gunpoint", pretrained=True).norm.floor == 0.1  # trained with the floor
    # and its file given to `neuroview explain --weights` is built as its manifest entry says, not as its metadata
    from argparse import Namespace

    from neuroview.viz.report import resolve_model
    from neuroview.zoo.pretrained import checkpoints_dir

    path = str(checkpoints_dir() / ENTRIES["nv_small_cnn.digits"]["file"])
    model, _, _ = resolve_model(Namespace(model="nv_small_cnn", weights=path, model_args=None, ckpt=None, zoo=None))
    assert model.quantizer == "soft" and model.norm.floor == 0.0


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_a_shipped_file_copied_out_of_the_zoo_says_how_it_is_built(name, tmp_path):
    """`neuroview explain --weights FILE` outside a zoo folder builds what the file's own metadata says: the two
    nv_small_cnn files' metadata predated norm_floor, so a copy of either was built floored (digits 99.7%)."""
    import json
    import shutil

    from safetensors import safe_open

    from neuroview.zoo.pretrained import checkpoints_dir
    from neuroview.zoo.weights import build_facts

    entry = ENTRIES[name]
    copy = tmp_path / entry["file"]  # no manifest beside it
    shutil.copy(checkpoints_dir() / entry["file"], copy)
    with safe_open(str(copy), "pt") as f:
        meta = f.metadata()
    assert meta["neuroview.architecture"] == entry["architecture"]
    assert json.loads(meta["neuroview.arch_kwargs"]) == entry["arch_kwargs"]
    assert build_facts(copy) == (entry["architecture"], entry["arch_kwargs"])
