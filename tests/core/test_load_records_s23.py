"""What a state dict records that no tensor's shape tells, refused by name at load (probe S23 P3 findings 1 and 2, P5
finding 3's folder case).

1. A NeuroView-CNN's head read each site's codes at that site's breakpoints (a user's activation registered with
   ``breakpoints=(0.0, 1.0)``); its state dict did not record them, so it loaded without a word into a wrap of the
   same backbone whose activation was registered with others (the default ``(0.0,)``): every hard code cut elsewhere,
   6 of 32 predictions changed. A file without the record (the zoo's safetensors, files saved before) loads as before.
2. A ``shared_steps=True`` NeuroView-RNN's state dict into one built without it gave torch's bare "Unexpected key(s)"
   (``load_weights``: "1 unexpected tensors in the file"), naming neither ``shared_steps`` nor what to build; with
   ``strict=False`` the shared part of the decision weight was dropped and the logits moved.
3. ``read_weights`` of a folder said the weight file "is missing".

Review R5 of 312c8f9 (its advice, where following it did not load):
4. ``load_weights`` named ``shared_steps`` wherever ``step_shared.weight`` was on one side only: a standard GRU's file
   into a ``shared_steps=True`` model ("build the model with shared_steps=False", which still failed on the shape), an
   ensemble of 3 shared members into one of 2 ("members.2 ... the model with shared_steps=False": no member 2 there).
5. The breakpoints refusal advised ``nv.register_activation(Hardtanh, ...)``, which the library refuses: on a built
   ``nn.Hardtanh`` site whose file's breakpoints are not a pair, and (a placeholder class name) on a lazy wrap.
"""

from __future__ import annotations

import re

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import neuroview as nv
from neuroview.zoo.weights import ArchitectureError, load_weights, read_weights


def _act_class():
    """A user's activation, a fresh class per test (the registry is global): affine pieces meeting at 0 and at 1."""
    class ClipAct(nn.Module):
        def forward(self, x):
            return x.clamp(0, 1)
    return ClipAct


def _backbone(act):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), act(), nn.Conv2d(6, 8, 3, padding=1), act())


def _x():
    return 3 * torch.randn(32, 1, 6, 6, generator=torch.Generator().manual_seed(1))


def _trained(act, **kw):
    net = nv.NeuroViewCNN(_backbone(act), 3, input_shape=(1, 6, 6), **kw)
    net.train()
    net(_x())  # running statistics of codes in {0, 1, 2}
    return net.eval()


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------ 1. each site's breakpoints
def test_the_state_dict_records_each_site_s_breakpoints():
    act = _act_class()
    nv.register_activation(act, breakpoints=(0.0, 1.0))
    sd = _trained(act).state_dict()
    assert sd._metadata[""]["points"] == [[0.0, 1.0], [0.0, 1.0]]


def test_a_head_read_at_other_breakpoints_is_refused():
    act = _act_class()
    nv.register_activation(act, breakpoints=(0.0, 1.0))
    a = _trained(act)
    sd, ref = a.state_dict(), a(_x()).detach()
    nv.register_activation(act)  # the documented default (0.0,): another session's registration
    b = nv.NeuroViewCNN(_backbone(act), 3, input_shape=(1, 6, 6))
    before = {k: v.clone() for k, v in b.state_dict().items()}
    with pytest.raises(RuntimeError) as e:
        b.load_state_dict(sd)
    msg = str(e.value)
    assert "breakpoints" in msg and "'1'" in msg and "(0.0, 1.0)" in msg and "(0.0,)" in msg, msg
    assert f"register_activation({act.__name__}, breakpoints=(0.0, 1.0))" in msg, msg
    assert _same(before, b.state_dict())  # nothing copied
    nv.register_activation(act, breakpoints=(0.0, 1.0))  # the advice, followed: the same function
    c = nv.NeuroViewCNN(_backbone(act), 3, input_shape=(1, 6, 6))
    c.load_state_dict(sd)
    with torch.no_grad():
        torch.testing.assert_close(c.eval()(_x()), ref, rtol=0, atol=0)


def test_a_lazy_wrap_refuses_other_breakpoints_at_its_first_batch():
    act = _act_class()
    nv.register_activation(act, breakpoints=(0.0, 1.0))
    sd = _trained(act).state_dict()
    nv.register_activation(act)
    lazy = nv.NeuroViewCNN(_backbone(act), 3)  # sites found on the first batch
    lazy.load_state_dict(sd)
    resaved = lazy.state_dict()  # saved before its first batch: the file's record is kept
    assert resaved._metadata[""]["points"] == [[0.0, 1.0], [0.0, 1.0]]
    with pytest.raises(ValueError, match=r"breakpoints.*\(0\.0, 1\.0\).*\(0\.0,\)"):
        lazy.eval()(_x())
    other = nv.NeuroViewCNN(_backbone(act), 3, input_shape=(1, 6, 6))
    with pytest.raises(RuntimeError, match="breakpoints"):
        other.load_state_dict(resaved)


def test_a_state_dict_without_the_record_loads_as_before():
    """The zoo's files and every file saved before the breakpoints were kept: absent, not compared."""
    act = _act_class()
    nv.register_activation(act, breakpoints=(0.0, 1.0))
    a = _trained(act)
    sd = a.state_dict()
    del sd._metadata[""]["points"]
    nv.register_activation(act)
    b = nv.NeuroViewCNN(_backbone(act), 3, input_shape=(1, 6, 6))
    b.load_state_dict(sd)
    assert _same(sd, b.state_dict())
    plain = dict(a.state_dict())  # a dict of tensors alone (a safetensors file's): no record at all
    nv.NeuroViewCNN(_backbone(act), 3, input_shape=(1, 6, 6)).load_state_dict(plain)


def test_codes_that_read_no_breakpoint_are_not_compared():
    """quantizer='none' reads the activation's output: its breakpoints take no part in the function."""
    act = _act_class()
    nv.register_activation(act, breakpoints=(0.0, 1.0))
    sd = _trained(act, quantizer="none").state_dict()
    nv.register_activation(act)
    b = nv.NeuroViewCNN(_backbone(act), 3, input_shape=(1, 6, 6), quantizer="none")
    b.load_state_dict(sd)
    assert _same(sd, b.state_dict())


def test_an_instance_s_own_breakpoints_are_advised_as_its_arguments():
    """nn.Hardtanh reads its breakpoints off the instance (min_val, max_val): registering it is refused, so the advice
    is to build it with the file's."""
    def backbone(lo, hi):
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Hardtanh(lo, hi))
    a = nv.NeuroViewCNN(backbone(-2.0, 2.0), 3, input_shape=(1, 6, 6))
    a.train()(_x())
    b = nv.NeuroViewCNN(backbone(-1.0, 1.0), 3, input_shape=(1, 6, 6))
    with pytest.raises(RuntimeError) as e:
        b.load_state_dict(a.state_dict())
    assert "(-2.0, 2.0)" in str(e.value) and "(-1.0, 1.0)" in str(e.value), str(e.value)
    assert "Hardtanh(min_val=-2.0, max_val=2.0)" in str(e.value), str(e.value)


# ------------------------------------------------------------------ 2. shared_steps
def _rnn(**kw):
    torch.manual_seed(1)
    return nv.NeuroViewRNN(nn.GRU(2, 4, batch_first=True), num_classes=3, max_len=8, **kw)


def _shared_sd():
    a = _rnn(shared_steps=True)
    with torch.no_grad():
        a.train()(torch.randn(16, 8, 2, generator=torch.Generator().manual_seed(0)))
        a.step_shared.weight.normal_(0, 0.5)  # what training leaves there (it starts at 0)
    return a.state_dict()


@pytest.mark.parametrize("strict", [True, False])
def test_a_shared_steps_state_dict_into_a_plain_rnn_names_shared_steps(strict):
    sd, b = _shared_sd(), _rnn()
    before = {k: v.clone() for k, v in b.state_dict().items()}
    with pytest.raises(RuntimeError) as e:
        b.load_state_dict(sd, strict=strict)  # strict=False too: the shared part is part of the decision weight
    msg = str(e.value)
    assert "shared_steps=True" in msg and "shared_steps=False" in msg and "step_shared.weight" in msg, msg
    assert _same(before, b.state_dict())


def test_a_nested_shared_steps_state_dict_names_its_prefix():
    outer = nn.ModuleDict({"net": _rnn()})
    sd = nn.ModuleDict({"net": _rnn(shared_steps=True)}).state_dict()
    with pytest.raises(RuntimeError, match=re.escape("net.shared_steps: ")):
        outer.load_state_dict(sd)


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_load_weights_names_shared_steps_both_ways(tmp_path, suffix):
    shared, plain = _shared_sd(), _rnn().state_dict()
    for sd, model, file_, model_ in ((shared, _rnn(), "True", "False"), (plain, _rnn(shared_steps=True), "False", "True")):
        path = tmp_path / f"w{file_}{suffix}"
        torch.save(sd, path) if suffix == ".pt" else save_file(dict(sd), path)
        with pytest.raises(ArchitectureError) as e:
            load_weights(model, path, pickles=True)
        msg = str(e.value)
        assert f"shared_steps={file_}" in msg and f"shared_steps={model_}" in msg, msg


# ------------------------------------------------------------------ 4. shared_steps named where it is what differs
def _save(sd, path):
    save_file({k: v.contiguous() for k, v in sd.items()}, path)
    return path


def _members(k, shared):
    torch.manual_seed(0)
    return nv.Ensemble([nv.NeuroViewRNN(nn.GRU(2, 4, batch_first=True), num_classes=3, max_len=8, shared_steps=shared)
                        for _ in range(k)])


def test_load_weights_of_a_standard_gru_into_a_shared_model_lists_the_keys():
    """The zoo's standard ``gru.gunpoint`` is no NeuroView-RNN: its classifier reads the last step alone."""
    import json
    from pathlib import Path
    root = Path(__file__).resolve().parents[2] / "checkpoints"
    ak = json.loads((root / "manifest.json").read_text())["entries"]["nv_gru.gunpoint"]["arch_kwargs"]
    with pytest.raises(ArchitectureError) as e:
        load_weights(nv.create_model("nv_gru", **ak, shared_steps=True), root / "gru.gunpoint.safetensors")
    msg = str(e.value)
    assert "shared_steps" not in msg, msg
    assert "1 tensors missing from the file (first: ['step_shared.weight'])" in msg and "shape mismatches" in msg, msg


def test_load_weights_of_another_hidden_size_into_a_shared_model_lists_the_keys(tmp_path):
    torch.manual_seed(0)
    path = _save(nv.NeuroViewRNN(nn.GRU(2, 6, batch_first=True), num_classes=3, max_len=8).state_dict(), tmp_path / "h6.safetensors")
    with pytest.raises(ArchitectureError) as e:
        load_weights(_rnn(shared_steps=True), path)
    msg = str(e.value)
    assert "shared_steps" not in msg and "'step_shared.weight'" in msg and "shape mismatches" in msg, msg


def test_load_weights_of_an_ensemble_with_more_members_lists_the_extra_member(tmp_path):
    path = _save(_members(3, True).state_dict(), tmp_path / "e3.safetensors")
    with pytest.raises(ArchitectureError) as e:
        load_weights(_members(2, True), path)
    msg = str(e.value)
    extra = sorted(k for k in _members(3, True).state_dict() if k.startswith("members.2."))
    assert "shared_steps" not in msg and "members.2.step_shared.weight" in extra, msg
    assert f"{len(extra)} unexpected tensors in the file" in msg, msg


def test_load_weights_names_each_member_whose_shared_part_alone_differs(tmp_path):
    path = _save(_members(3, True).state_dict(), tmp_path / "e3.safetensors")
    with pytest.raises(ArchitectureError) as e:
        load_weights(_members(2, False), path)  # members 0 and 1: shared_steps alone; member 2: none in the model
    msg = str(e.value)
    for i in (0, 1):
        assert f"members.{i}.shared_steps: the file's network was built with shared_steps=True" in msg, msg
    assert "members.2.shared_steps" not in msg and "'members.2.classifier.bias'" in msg, msg
    extra = [k for k in _members(3, True).state_dict() if k.startswith("members.2.")]
    assert f"{len(extra)} unexpected tensors in the file" in msg, msg


# ------------------------------------------------------------------ 5. the breakpoints advice can be followed
def _hardtanh_net(act, **kw):
    torch.manual_seed(0)
    return nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), act), 3, **kw)


def _trained_on(act):
    net = _hardtanh_net(act, input_shape=(1, 6, 6))
    net.train()(_x())
    return net.eval()


def _no_refused_registration(msg: str) -> None:
    """Every ``register_activation(K, ...)`` the message advises is taken by the library."""
    for name in re.findall(r"register_activation\(([\w.<>' ]+),", msg):
        assert getattr(nn, name, None) is not nn.Hardtanh and "<" not in name, msg


def test_a_lazy_wrap_advises_building_the_hardtanh_with_the_file_s_bounds():
    sd = _trained_on(nn.Hardtanh(-2.0, 2.0)).state_dict()
    lazy = _hardtanh_net(nn.Hardtanh(-1.0, 1.0))
    lazy.load_state_dict(sd)
    with pytest.raises(ValueError) as e:
        lazy.eval()(_x())
    msg = str(e.value)
    assert "Hardtanh(min_val=-2.0, max_val=2.0)" in msg and "<the class of" not in msg, msg
    _no_refused_registration(msg)
    followed = _hardtanh_net(nn.Hardtanh(-2.0, 2.0))  # the advice, followed: it loads and reads
    followed.load_state_dict(sd)
    followed.eval()(_x())


@pytest.mark.parametrize("lazy", [False, True])
def test_a_relu_file_into_a_hardtanh_site_is_not_advised_to_register_hardtanh(lazy):
    sd = _trained_on(nn.ReLU()).state_dict()
    net = _hardtanh_net(nn.Hardtanh(-1.0, 1.0), **({} if lazy else {"input_shape": (1, 6, 6)}))
    with pytest.raises((RuntimeError, ValueError)) as e:
        net.load_state_dict(sd)
        net.eval()(_x())
    msg = str(e.value)
    assert "(0.0,)" in msg and "nn.Hardtanh" in msg and "nn.ReLU" in msg, msg
    _no_refused_registration(msg)
    followed = _hardtanh_net(nn.ReLU(), **({} if lazy else {"input_shape": (1, 6, 6)}))  # the module it names
    followed.load_state_dict(sd)
    followed.eval()(_x())


def test_a_three_breakpoint_file_into_a_hardtanh_site_is_not_advised_to_register_hardtanh():
    act = _act_class()
    nv.register_activation(act, breakpoints=(-1.0, 0.0, 1.0))
    sd = _trained_on(act()).state_dict()
    with pytest.raises(RuntimeError) as e:
        _hardtanh_net(nn.Hardtanh(-1.0, 1.0), input_shape=(1, 6, 6)).load_state_dict(sd)
    msg = str(e.value)
    assert "(-1.0, 0.0, 1.0)" in msg and "nn.Hardtanh" in msg, msg
    _no_refused_registration(msg)


# ------------------------------------------------------------------ 3. a folder is no weight file
@pytest.mark.parametrize("pickles", [False, True])
def test_read_weights_of_a_folder_says_it_is_a_folder(tmp_path, pickles):
    (tmp_path / "model.safetensors").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(FileNotFoundError) as e:  # the type the commands catch
        read_weights(tmp_path, "source", pickles=pickles)
    msg = str(e.value)
    assert msg.startswith(f"source: weight file {str(tmp_path)!r} is a folder"), msg
    assert "missing" not in msg and ".safetensors" in msg and "model.safetensors" in msg and "notes.txt" not in msg
    assert (".pt" in msg) is pickles, msg
