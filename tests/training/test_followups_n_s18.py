"""Follow-ups other fixers of session 18 named (/tmp/s18/{H,G,A2,B,A1}/report.md):

H: ``finetune_sparse``'s frozen-backbone warning advised ``sparse.backbone.requires_grad_(True)``, which unfreezes the
   backbone's own head too: the next training pass then warns that it requires grad but is never reached (plain DDP
   fails on it). The advice is now ``unfreeze_backbone(sparse)``: what the decision reaches, not the head.
G: ``settings.check_input`` kept its own copy of the torch.fx refusal (``refusals.refuse_fx``): one now.
A2: ``save_pretrained`` repeated ``create_model``'s ``in_channels -> in_features`` rule: one now (``build.route_features``).
B: ``neuroview sparsify`` repeated the Sparsify callback's arch_kwargs corrections (``sparse_arch_kwargs``): one now.
A1: JSON nested past Python's reader gave a bare RecursionError in ``--data`` specs and weight-file metadata.
R11 (review of those fixes): the one-rule test patched a name ``pretrained`` no longer imports (now: the same inputs
   routed and refused alike by every entry point); ``neuroview sparsify``'s arch_kwargs test only read the source (now:
   ``_write`` run on a normalize=False, shared_steps=True GRU); ``explain --model-args`` nested past the reader: named.
"""

from __future__ import annotations

import inspect
import json
import warnings

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.training.sparse_finetune import unfreeze_backbone

UNREACHED = "require grad, but the decision never reaches them"
DEEP = "[" * 200_000 + "]" * 200_000  # far past the recursion limit, whatever it is set to


def _net(freeze_first: bool) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A CNN whose backbone ends in its own head (``backbone.4``, never reached by the decision), wrapped; its backbone
    frozen before the sites are found (as ``nv.retrofit`` leaves it) or after."""
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(4, 2))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(40, 1, 16, generator=g)
    y = (x[:, 0, 4:8].mean(1) > 0).long()
    if freeze_first:
        bb.requires_grad_(False)
    net = nv.NeuroViewCNN(bb, 2, example_input=x[:2])
    assert net.unreached == ([] if freeze_first else ["backbone.4"])  # frozen by the user already: kept so, unlisted
    bb.requires_grad_(False)
    return net, x, y


def _pass(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[str]:
    """One training pass; the unreached-trainable warnings it draws."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nn.functional.cross_entropy(net.train()(x), y).backward()
    return [str(w.message) for w in caught if UNREACHED in str(w.message)]


@pytest.mark.parametrize("freeze_first", [False, True], ids=["frozen-after-wrap", "frozen-before-wrap"])
def test_following_the_frozen_backbone_advice_draws_no_unreached_warning(freeze_first):
    net, x, y = _net(freeze_first)
    sparse = nv.sparsify(net.eval(), [(x, y)], tolerance=50.0)
    with pytest.warns(UserWarning, match="its backbone is frozen") as caught:
        nv.finetune_sparse(sparse, [(x, y)], epochs=1)
    advice = next(str(w.message) for w in caught if "its backbone is frozen" in str(w.message))
    assert "unfreeze_backbone(sparse)" in advice and "requires_grad_(True)" not in advice, advice
    before = {n: p.requires_grad for n, p in sparse.backbone.named_parameters()}
    assert unfreeze_backbone(sparse) is sparse
    trains = {n for n, p in sparse.backbone.named_parameters() if p.requires_grad}
    assert trains == {"0.weight", "0.bias"}, trains  # the conv trains, the unreached head (4) does not
    assert not any(before.values())
    assert _pass(sparse, x, y) == []
    assert sparse.backbone[0].weight.grad is not None and sparse.backbone[4].weight.grad is None
    with warnings.catch_warnings():  # fine-tuning now trains the backbone: no frozen-backbone warning either
        warnings.simplefilter("error")
        tuned = nv.finetune_sparse(sparse, [(x, y)], epochs=1)
    assert not torch.equal(tuned.backbone[0].weight, sparse.backbone[0].weight)


def test_the_old_advice_unfroze_the_head_too_and_was_warned_of():
    """Why the advice changed: the whole backbone unfrozen draws the unreached-trainable warning at the next pass."""
    net, x, y = _net(False)
    sparse = nv.sparsify(net.eval(), [(x, y)], tolerance=50.0)
    sparse.backbone.requires_grad_(True)
    said = _pass(sparse, x, y)
    assert len(said) == 1 and "backbone.4.weight" in said[0], said


def test_unfreeze_backbone_of_an_rnn_unfreezes_its_rnn():
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(3, 5, batch_first=True), 2, max_len=6).requires_grad_(False)
    unfreeze_backbone(net)
    assert all(p.requires_grad for p in net.rnn.parameters())
    assert not any(p.requires_grad for p in net.classifier.parameters())  # only the backbone


def test_the_cnn_s_torch_fx_refusal_is_the_one_in_refusals():
    from neuroview.core import refusals, settings

    assert settings.refuse_fx is refusals.refuse_fx
    assert "torch.fx.Proxy" not in inspect.getsource(settings)  # no copy of the message left
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), 2, input_shape=(1, 12))
    with pytest.raises(TypeError, match=r"^torch\.fx\.symbolic_trace: a NeuroViewCNN cannot be traced symbolically"):
        torch.fx.symbolic_trace(net)


def _save_rnn(net, name, root, arch_kwargs, **kw):
    from neuroview.zoo import pretrained

    return pretrained.save_pretrained(net, name, architecture="nv_gru", root=root, dataset={"name": "toy"}, recipe=None,
                                      seed=0, metrics={}, arch_kwargs=arch_kwargs, **kw)


def _refusal(call) -> str:
    with pytest.raises(ValueError) as e:
        call()
    return str(e.value)


def test_save_pretrained_and_create_model_route_in_channels_by_one_rule(tmp_path):
    """The same inputs, routed and refused alike by both entry points (and by load_pretrained), whatever name the rule's
    code goes by: each message names its own argument once, then says the same words."""
    from neuroview.zoo import api, pretrained

    assert not hasattr(api, "_features")
    net = nv.create_model("nv_gru", num_classes=2, in_channels=3, max_len=6)
    assert net.rnn.input_size == 3  # in_channels routed to the GRU's input features
    entry = _save_rnn(net, "nv_gru.mine", tmp_path, {"num_classes": 2, "in_channels": 3, "max_len": 6})
    assert entry["arch_kwargs"] == {"num_classes": 2, "in_features": 3, "max_len": 6}  # routed the same way
    recorded = json.loads((tmp_path / "manifest.json").read_text())["entries"]["nv_gru.mine"]["arch_kwargs"]
    assert recorded["in_features"] == 3 and "in_channels" not in recorded
    assert pretrained.load_pretrained("nv_gru.mine", root=tmp_path, in_channels=3).rnn.input_size == 3
    both = {"num_classes": 2, "in_channels": 3, "in_features": 2, "max_len": 6}
    said = {"in_channels": _refusal(lambda: nv.create_model("nv_gru", **both)),
            "arch_kwargs": _refusal(lambda: _save_rnn(net, "nv_gru.other", tmp_path, both)),
            "kwargs": _refusal(lambda: pretrained.load_pretrained("nv_gru.mine", root=tmp_path, in_channels=3, in_features=2))}
    rule = ("an RNN's in_features (input features per step) under the CNNs' name; expected it alone or equal to "
            "in_features=2, got 3")
    assert said == {"in_channels": f"in_channels: {rule}", "arch_kwargs": f"arch_kwargs: in_channels is {rule}",
                    "kwargs": f"kwargs: in_channels is {rule}"}, said
    assert "nv_gru.other" not in json.loads((tmp_path / "manifest.json").read_text())["entries"]


def test_neuroview_sparsify_records_the_callback_s_arch_kwargs(tmp_path, capsys):
    """What the command writes: a normalize=False, shared_steps=True GRU, sparsified, is recorded as the network
    nv.sparsify returns (normalize True: its head standardizes; shared_steps False: merged into the classifier), and
    its entry loads into the same function."""
    from argparse import Namespace

    from neuroview.training.sparsify_cli import _write

    torch.manual_seed(0)
    kw = {"num_classes": 2, "in_features": 2, "max_len": 6, "hidden_size": 4, "normalize": False, "shared_steps": True}
    net = nv.create_model("nv_gru", **kw).eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(40, 2, 6, generator=g)  # channels-first series [B, C, T], as the data modules give them
    y = (x[:, 0, :3].mean(1) > 0).long()
    lengths = torch.full((40,), 6)
    batches = [(x[:20], lengths[:20], y[:20]), (x[20:], lengths[20:], y[20:])]
    sparse = nv.sparsify(net, batches, tolerance=50.0)

    class Data:  # the test split the command scores on
        def setup(self, stage):
            pass

        def test_dataloader(self):
            return batches

    entry = {"architecture": "nv_gru", "arch_kwargs": kw, "dataset": {"name": "toy"}, "recipe": None, "seed": 0}
    args = Namespace(finetune=0, out=str(tmp_path), overwrite=False, source="nv_gru.dense")
    _write(args, net, sparse, Data(), entry, "nv_gru.dense_sparse")
    written = json.loads((tmp_path / "manifest.json").read_text())["entries"]["nv_gru.dense_sparse"]
    assert written["arch_kwargs"] == kw | {"normalize": True, "shared_steps": False}, written["arch_kwargs"]
    assert kw["normalize"] is False and kw["shared_steps"] is True  # the source's record is left as it was
    back = nv.create_model("nv_gru.dense_sparse", pretrained=True, root=tmp_path)
    steps = x.transpose(1, 2)  # the RNN's own [B, T, F]
    assert torch.allclose(back(steps, lengths=lengths), sparse.eval()(steps, lengths=lengths), atol=1e-5)


def test_a_deeply_nested_model_args_is_refused_by_name(tmp_path, capsys):
    from neuroview.cli import main as cli

    argv = ["explain", "--model", "small_cnn", "--model-args", DEEP, "--data", "digits", "--out", str(tmp_path / "o")]
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert "--model-args: expected a JSON object of builder arguments, got '[[[[" in err, err[-300:]
    assert "maximum recursion depth" in err and "Traceback" not in err and len(err) < 2000, err[-300:]
    assert not (tmp_path / "o").exists()


def test_a_deeply_nested_data_spec_is_refused_by_name(tmp_path, capsys):
    from neuroview.cli import main as cli
    from neuroview.training.data_arg import datamodule_for
    from neuroview.training.minirocket_cli import data_spec

    spec = '{"class_path": "neuroview.data.NpzDataModule", "init_args": ' + DEEP + "}"
    with pytest.raises(ValueError, match=r"^--data: expected a JSON data-module spec, got .*maximum recursion depth"):
        datamodule_for(spec)
    with pytest.raises(ValueError, match=r"^--data: expected a JSON data-module spec, got .*maximum recursion depth"):
        data_spec(spec)
    assert cli(["minirocket", "--data", spec, "--out", str(tmp_path / "zoo")]) == 2
    err = capsys.readouterr().err
    assert "--data: expected a JSON data-module spec" in err and "Traceback" not in err, err[-300:]
    assert not (tmp_path / "zoo").exists()


def test_deeply_nested_arch_kwargs_in_a_weight_file_are_refused_by_name():
    from neuroview.zoo.weights import saved_arch_kwargs

    with pytest.raises(ValueError, match=r"^--weights: expected a JSON object of builder arguments in the metadata "
                                         r"neuroview\.arch_kwargs of 'w\.safetensors'"):
        saved_arch_kwargs({"neuroview.arch_kwargs": DEEP}, "w.safetensors", "--weights")
