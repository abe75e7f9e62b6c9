"""An entry the zoo holds whose architecture no builder of this process is registered for (one of the user's own, its
module not imported): said so, with how to import it. It was "no trained entry 'nv_mycnn.last_sparse' ...; did you mean
['nv_mycnn.last_sparse']?", the entry's own name offered as a typo of itself (P11 #1)."""

from __future__ import annotations

import pytest

import neuroview as nv
from neuroview.zoo import registry
from test_reads_during_export_s20 import NAME, _save


def test_an_entry_of_an_unregistered_architecture_names_the_missing_registration(tmp_path, monkeypatch):
    _save(1.0, tmp_path)  # NAME = "nv_small_cnn.race", saved while its builder is registered
    arch = NAME.split(".")[0]
    monkeypatch.delitem(registry._MODELS, arch)  # a process that never imported the module registering it
    with pytest.raises(ValueError) as e:
        nv.create_model(NAME, True, root=str(tmp_path))
    said = str(e.value)
    assert said.startswith(f"name: the entry {NAME!r} is in the zoo, but its architecture: unknown model {arch!r}: no "
                           "architecture of that name is registered in this process")
    assert "nv.register_model" in said and "python my_cli.py" in said and "no trained entry" not in said
    with pytest.raises(ValueError, match=r"^name: no trained entry 'nv_small_cnn\.rac'"):  # a real typo: as before
        nv.create_model("nv_small_cnn.rac", True, root=str(tmp_path))
