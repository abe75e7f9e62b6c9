"""``load_weights(arch_kwargs=)`` and a user's own file under a zoo entry's name (review B of c1c1578, findings 5, 6, 8).

- 5: ``arch_kwargs`` filled any key the file's record left at its default, so it overruled what the file says (a record
  that leaves ``norm_floor`` out was trained with the default 0.1; ``arch_kwargs={'norm_floor': 0.0}`` loaded it as 0.0:
  logits 11.2 off). It now supplies only what the record does not say; a key the record gives (itself, or by leaving it
  at the default) with another value is refused by name; with the same value it is fine.
- 6: a user's own ``save_pretrained`` file saved under a name the installed zoo also has was refused, the advice naming
  the installed entry (another network). A file whose record or tensors' shapes are not the entry's is not that entry.
- 8: ``arch_kwargs`` was not checked: a misspelt key ignored, a list a bare "dictionary update sequence" error.

Every expected logit is computed by torch itself: the tensors loaded with ``load_state_dict`` into a network built as
they were trained, no neuroview check in between.
"""

from __future__ import annotations

import argparse
import json

import pytest
import torch
from safetensors.torch import save_file

import neuroview as nv
from neuroview.zoo.pretrained import save_pretrained
from neuroview.zoo.weights import ArchitectureError, build_facts, load_weights

ARCH = "nv_small_cnn"
KW = {"in_channels": 1, "num_classes": 3, "widths": [4]}
X = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def _net(**kw):
    torch.manual_seed(1)
    net = nv.create_model(ARCH, **{**KW, **kw})
    net.eval()(X)  # its sites and head, found on a first batch
    return net


def _state(shift: float = 0.0, **kw) -> dict:
    """A network's tensors whose running variances are small enough that a floor of 0.1 moves its logits."""
    net = _net(**kw)
    with torch.no_grad():
        net.norm.running_var.copy_(torch.linspace(1e-4, 2.0, len(net.norm.running_var)))
        net.classifier.weight.add_(shift)
    return {k: v.clone().contiguous() for k, v in net.state_dict().items()}


def _reference(state: dict, **kw) -> torch.Tensor:
    net = _net(**kw)
    net.load_state_dict(state)
    with torch.no_grad():
        return net.eval()(X)


def _logits(net) -> torch.Tensor:
    with torch.no_grad():
        return net.eval()(X)


def _write(path, state: dict, kwargs: dict, name: str | None = None) -> str:
    meta = {"neuroview.architecture": ARCH, "neuroview.arch_kwargs": json.dumps(kwargs)}
    save_file(state, str(path), metadata={**meta, **({"neuroview.name": name} if name else {})})
    return str(path)


def _unchanged(net, before: dict) -> bool:
    return all(torch.equal(before[k], v) for k, v in net.state_dict().items())


# ------------------------------------------------------------------ 5: arch_kwargs does not overrule a record
def test_the_floor_matters_here():
    state = _state()
    assert (_reference(state, norm_floor=0.0) - _reference(state, norm_floor=0.1)).abs().max() > 1.0  # the case can fail


@pytest.mark.parametrize("name", [None, "mine.digits"])  # a record of the build call (reviewer's r17), and save_pretrained's
def test_a_floor_the_record_leaves_at_its_default_is_not_overruled(tmp_path, name):
    state = _state()  # trained with the default floor 0.1: the record leaves it out
    path = _write(tmp_path / "mine.safetensors", state, KW, name)
    net = _net(norm_floor=0.0)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(ArchitectureError, match=r"arch_kwargs: .*mine\.safetensors' records norm_floor=0\.1 \(by leaving it "
                                                r"out: the default\), arch_kwargs gives 0\.0.*leave norm_floor out of arch_kwargs"):
        load_weights(net, path, arch_kwargs={"norm_floor": 0.0})  # loaded as 0.0: logits 11.2 off
    assert _unchanged(net, before)
    # what the record says, said again, is fine: it loads as it was trained
    net = load_weights(_net(), path, arch_kwargs={"norm_floor": 0.1, "widths": [4], "quantizer": "hard"})
    torch.testing.assert_close(_logits(net), _reference(state, norm_floor=0.1), rtol=0, atol=0)


def test_a_setting_the_record_gives_itself_is_refused_by_name_and_the_same_value_is_fine(tmp_path):
    state = _state(norm_floor=0.0)
    path = _write(tmp_path / "now.safetensors", state, {**KW, "norm_floor": 0.0})
    with pytest.raises(ArchitectureError, match=r"records norm_floor=0\.0, arch_kwargs gives 0\.1"):
        load_weights(_net(), path, arch_kwargs={"norm_floor": 0.1})
    net = load_weights(_net(norm_floor=0.0), path, arch_kwargs={"norm_floor": 0})
    torch.testing.assert_close(_logits(net), _reference(state, norm_floor=0.0), rtol=0, atol=0)


def test_a_file_that_records_nothing_takes_what_arch_kwargs_say(tmp_path):
    state = _state(norm_floor=0.0)
    path = str(tmp_path / "plain.safetensors")
    save_file(state, path)  # no metadata: nothing it says is overruled
    with pytest.raises(ArchitectureError, match=r"norm_floor: file 0\.0.*model 0\.1"):
        load_weights(_net(), path, arch_kwargs={"norm_floor": 0.0})
    net = load_weights(_net(norm_floor=0.0), path, arch_kwargs={"norm_floor": 0.0})
    torch.testing.assert_close(_logits(net), _reference(state, norm_floor=0.0), rtol=0, atol=0)


def test_model_args_do_not_overrule_a_record_on_the_command_line(tmp_path):
    from neuroview.viz.report import resolve_model

    state = _state()
    path = _write(tmp_path / "mine.safetensors", state, KW)
    args = argparse.Namespace(weights=path, model=ARCH, model_args='{"norm_floor": 0.0}', ckpt=None, zoo=None)
    with pytest.raises(ArchitectureError, match=r"--model-args: .*records norm_floor=0\.1 \(by leaving it out: the default\), "
                                                r"--model-args gives 0\.0.*leave norm_floor out of --model-args"):
        resolve_model(args)  # was: loaded with floor 0.0, logits 11.2 off
    args.model_args = json.dumps({**KW, "norm_floor": 0.1})
    model, _, _ = resolve_model(args)
    torch.testing.assert_close(_logits(model), _reference(state, norm_floor=0.1), rtol=0, atol=0)


# ------------------------------------------------------------------ 6: a user's file under an installed entry's name
ENTRY = {**KW, "quantizer": "soft", "norm_floor": 0.0}


@pytest.fixture
def zoo(tmp_path, monkeypatch):
    """An installed zoo whose entry nv_small_cnn.toy was trained with quantizer 'soft' and norm_floor 0.0."""
    root = tmp_path / "zoo"
    root.mkdir()
    _write(root / "nv_small_cnn.toy.safetensors", _state(quantizer="soft", norm_floor=0.0), ENTRY, "nv_small_cnn.toy")
    entry = {"architecture": ARCH, "arch_kwargs": ENTRY, "file": "nv_small_cnn.toy.safetensors"}
    (root / "manifest.json").write_text(json.dumps({"format": 1, "entries": {"nv_small_cnn.toy": entry}}))
    monkeypatch.setenv("NEUROVIEW_CHECKPOINTS", str(root))
    return root


@pytest.mark.parametrize("mine", [{**KW, "widths": [8]}, {**KW, "quantizer": "hard"}])  # other widths; another quantizer
def test_a_users_own_file_under_an_entry_name_loads_as_its_record_says(zoo, tmp_path, mine):
    net = _net(**mine)
    with torch.no_grad():
        net.norm.running_var.copy_(torch.linspace(1e-4, 2.0, len(net.norm.running_var)))
    own = tmp_path / "own"
    save_pretrained(net, "nv_small_cnn.toy", architecture=ARCH, arch_kwargs=mine, dataset={}, recipe=None, seed=0,
                    metrics={}, root=own)
    path = str(own / "nv_small_cnn.toy.safetensors")
    assert build_facts(path) == (ARCH, mine)  # its own record, not the installed entry's settings
    loaded = load_weights(_net(**mine), path)  # was refused, the advice naming the installed entry
    torch.testing.assert_close(_logits(loaded), _logits(net), rtol=0, atol=0)
    with pytest.raises(ArchitectureError, match=r"norm_floor: file 0\.1 \(not given: the default\), model 0\.0"):
        load_weights(_net(**mine, norm_floor=0.0), path)  # its record is the whole story: absent = the default


def test_the_reviewers_case_against_the_installed_digits_entry(tmp_path, monkeypatch):
    monkeypatch.delenv("NEUROVIEW_CHECKPOINTS", raising=False)
    kw = {"in_channels": 1, "num_classes": 10, "widths": [8]}  # the user's own build: default quantizer and floor
    torch.manual_seed(0)
    net = nv.create_model(ARCH, **kw)
    net(torch.randn(4, 1, 8, 8))
    save_pretrained(net.eval(), "nv_small_cnn.digits", architecture=ARCH, arch_kwargs=kw, dataset={}, recipe=None, seed=0,
                    metrics={}, root=tmp_path)
    x = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    loaded = load_weights(nv.create_model(ARCH, **kw), tmp_path / "nv_small_cnn.digits.safetensors")
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(x), net(x), rtol=0, atol=0)


def test_an_earlier_release_of_the_entry_is_still_refused_and_arch_kwargs_say_it(zoo, tmp_path):
    other = _state(shift=1.0, quantizer="soft")  # the entry's record and shapes, other values: which floor, nothing tells
    rec = {**KW, "quantizer": "soft"}
    path = _write(tmp_path / "earlier.safetensors", other, rec, "nv_small_cnn.toy")
    with pytest.raises(ArchitectureError, match=r"does not record norm_floor.*arch_kwargs=\{'norm_floor': \.\.\.\}"):
        load_weights(_net(quantizer="soft"), path)
    net = load_weights(_net(quantizer="soft", norm_floor=0.0), path, arch_kwargs={"norm_floor": 0.0})
    torch.testing.assert_close(_logits(net), _reference(other, quantizer="soft", norm_floor=0.0), rtol=0, atol=0)
    with pytest.raises(TypeError, match=r"arch_kwargs: norm_floor: expected a number, as its zoo entry's 0\.0 and "
                                        r"the default 0\.1, got str '0\.0'"):
        load_weights(_net(quantizer="soft"), path, arch_kwargs={"norm_floor": "0.0"})


def test_a_copy_of_the_entry_is_not_told_another_floor(zoo, tmp_path):
    state = _state(quantizer="soft", norm_floor=0.0)  # the entry's own tensors, its record without the floor
    path = _write(tmp_path / "copy.safetensors", state, {**KW, "quantizer": "soft"}, "nv_small_cnn.toy")
    with pytest.raises(ArchitectureError, match=r"records norm_floor=0\.0 \(its zoo entry 'nv_small_cnn\.toy''s: the file "
                                                r"holds that entry's tensors\), arch_kwargs gives 0\.1"):
        load_weights(_net(quantizer="soft"), path, arch_kwargs={"norm_floor": 0.1})
    net = load_weights(_net(quantizer="soft", norm_floor=0.0), path, arch_kwargs={"norm_floor": 0.0})
    torch.testing.assert_close(_logits(net), _reference(state, quantizer="soft", norm_floor=0.0), rtol=0, atol=0)


# ------------------------------------------------------------------ 8: arch_kwargs checked
@pytest.mark.parametrize("meta", [True, False])  # a file naming its architecture; one naming none
def test_arch_kwargs_is_checked_by_name(tmp_path, meta):
    path = _write(tmp_path / "mine.safetensors", _state(), KW) if meta else str(tmp_path / "plain.safetensors")
    if not meta:
        save_file(_state(), path)
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(TypeError, match=r"arch_kwargs: norm_flor: unexpected keyword argument 'norm_flor'.*did you mean "
                                        r"'norm_floor'\?.*got norm_flor=0\.0"):
        load_weights(net, path, arch_kwargs={"norm_flor": 0.0})  # was ignored without a word
    with pytest.raises(TypeError, match=r"arch_kwargs: expected a dict of builder arguments.*got list \['norm_floor'\]"):
        load_weights(net, path, arch_kwargs=["norm_floor"])  # was: dictionary update sequence element #0 ...
    with pytest.raises(TypeError, match=r"arch_kwargs: expected builder argument names \(str\) as keys, got 1"):
        load_weights(net, path, arch_kwargs={1: 0.0})
    assert _unchanged(net, before) and net.classifier is not None


# ------------------------------------------------------------------ 3 (review of 077c828): save_pretrained names normalize
CASES = {  # (architecture, its build arguments, an input of its shape)
    "cnn": ("nv_small_cnn", {"num_classes": 3, "in_channels": 1, "widths": [8]}, (4, 1, 12, 12)),
    "ensemble": ("nv_small_cnn", {"num_classes": 3, "in_channels": 1, "widths": [4], "members": 2}, (4, 1, 12, 12)),
    "rnn": ("nv_gru", {"num_classes": 3, "in_features": 2, "max_len": 5, "hidden_size": 4}, (4, 5, 2)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_save_pretrained_of_a_network_whose_normalization_a_load_dropped_names_normalize(tmp_path, case):
    arch, kw, shape = CASES[case]
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(4))
    torch.manual_seed(0)
    plain = nv.create_model(arch, **kw, normalize=False)
    plain.eval()(x)
    net = nv.create_model(arch, **kw)  # built with the default normalize=True
    net.eval()(x)
    net.load_state_dict(plain.state_dict())  # its normalization dropped: it computes plain's function
    assert not any(".norm." in f".{k}" for k in net.state_dict())
    with pytest.raises(ValueError, match=r"arch_kwargs: normalize is True \(the default\), but the network has no "
                                         r"normalization \((members\.0\.norm, members\.1\.norm are|norm is) None: it loaded the weights "
                                         r"of a network built with normalize=False\); save it with normalize=False"):
        save_pretrained(net, f"{arch}.t", architecture=arch, arch_kwargs=kw, dataset={}, recipe=None, seed=0, metrics={},
                        root=tmp_path)  # was: 3 tensors missing from the file (norm.*), normalize not named
    assert not (tmp_path / "manifest.json").exists()
    with pytest.raises(ValueError, match=r"arch_kwargs: normalize is True, but"):
        save_pretrained(net, f"{arch}.t", architecture=arch, arch_kwargs={**kw, "normalize": True}, dataset={}, recipe=None,
                        seed=0, metrics={}, root=tmp_path)
    save_pretrained(net, f"{arch}.t", architecture=arch, arch_kwargs={**kw, "normalize": False}, dataset={}, recipe=None,
                    seed=0, metrics={}, root=tmp_path)
    back = nv.create_model(f"{arch}.t", pretrained=True, root=tmp_path)
    with torch.no_grad():
        torch.testing.assert_close(back(x), plain(x), rtol=0, atol=0)
