"""The zoo's entry points, as the issue-14 API probe found them.

A sparsified (or ridge-refitted, fine-tuned) copy of a zoo entry kept the dense entry's record (file, sha256,
metrics); flags given as text ("False") counted as True; numpy integers were refused as counts; a missing
``root`` read as an empty zoo, and a name or pattern of the wrong type failed bare; builder arguments of the wrong
type failed deep in torch; ``neuroview zoo --architectures`` dropped --verify and --root; with ``pretrained=True``
a misspelt argument was reported as a clash with the checkpoint.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neuroview as nv
from neuroview.training.ridge import fit_ridge_head
from neuroview.zoo import pretrained as zoo
from neuroview.zoo.cli import main as zoo_main

_DENSE_CFG = {"name": "nv_small_cnn.toy", "file": "nv_small_cnn.toy.safetensors", "sha256": "0" * 64,
              "metrics": {"units_per_class": 12.0, "k90": 9.0, "test_acc": 1.0}}


def _toy():
    torch.manual_seed(0)
    x = torch.randn(60, 1, 8, 8)
    y = torch.arange(60) % 3
    x[:, 0, 0, 0] += 3 * y  # separable: a path with a point to choose
    net = nv.create_model("nv_small_cnn", num_classes=3, in_channels=1, widths=(4,))
    net(x[:2])
    net.eval().pretrained_cfg = dict(_DENSE_CFG)
    return net, [(x[:30], y[:30]), (x[30:], y[30:])]


def test_sparsified_and_refitted_copies_drop_the_dense_entrys_record():
    net, batches = _toy()
    sparse = nv.sparsify(net, batches, tolerance=50.0)
    assert sparse.pretrained_cfg == {"sparsified_from": "nv_small_cnn.toy"}
    assert net.pretrained_cfg == _DENSE_CFG  # the source unchanged
    assert fit_ridge_head(net, batches).pretrained_cfg == {"refitted_from": "nv_small_cnn.toy"}
    sparse.pretrained_cfg = dict(_DENSE_CFG)  # a sparse zoo entry, as loaded: its record is of its own weights
    tuned = nv.finetune_sparse(sparse, batches, epochs=1)
    assert tuned.pretrained_cfg == {"finetuned_from": "nv_small_cnn.toy"}


@pytest.mark.parametrize("call", [
    lambda: nv.create_model("nv_lite.gunpoint", pretrained="False"),
    lambda: nv.list_models(pretrained="False"),
    lambda: nv.create_model("gru", hidden_size=4, bidirectional="False"),
    lambda: nv.create_model("nv_gru", hidden_size=4, max_len=10, bidirectional="no"),
    lambda: nv.create_model("nv_gru", hidden_size=4, max_len=10, normalize="False"),
    lambda: nv.create_model("nv_lstm", hidden_size=4, max_len=10, shared_steps="no"),
])
def test_flags_given_as_text_are_refused_by_name(call):
    with pytest.raises(ValueError, match=r"(pretrained|bidirectional|normalize|shared_steps): expected true or false, "
                                         r"got '(False|no)'"):
        call()


def test_numpy_bools_are_flags():
    assert nv.list_models(pretrained=np.False_) == nv.list_models()
    assert nv.create_model("gru", hidden_size=4, bidirectional=np.False_).rnn.bidirectional is False
    assert nv.create_model("gru", hidden_size=4, bidirectional=np.True_).rnn.bidirectional is True


def test_numpy_integers_are_counts_passed_on_as_ints():
    y = np.array([0, 1, 2, 1])
    net = nv.create_model("lite", num_classes=y.max() + 1, in_channels=np.int64(2))
    assert net(torch.randn(2, 2, 40)).shape == (2, 3)
    rnn = nv.create_model("nv_gru", num_classes=np.int64(3), in_channels=np.int32(2), max_len=np.int64(10), hidden_size=4)
    assert type(rnn.num_classes) is int and rnn.max_len == 10
    assert nv.RNNClassifier(torch.nn.GRU(2, 4, batch_first=True), num_classes=np.int64(3)).classifier.out_features == 3
    for bad in (True, np.True_, 2.0):
        with pytest.raises(ValueError, match=r"num_classes: expected an int >= 2"):
            nv.create_model("lite", num_classes=bad)
        with pytest.raises(ValueError, match=r"num_classes: expected an int >= 2"):
            nv.RNNClassifier(torch.nn.GRU(2, 4, batch_first=True), num_classes=bad)


def test_a_root_that_is_no_folder_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"root: expected a checkpoint folder, got '.*nope' \(no such folder\)"):
        nv.create_model("nv_lite.gunpoint", pretrained=True, root=tmp_path / "nope")
    (tmp_path / "manifest.json").write_text('{"format": 1, "entries": {}}')
    with pytest.raises(ValueError, match=r"root: expected a checkpoint folder, got '.*manifest.json' \(a file"):
        nv.create_model("fcn1d.gunpoint", pretrained=True, root=tmp_path / "manifest.json")
    with pytest.raises(ValueError, match=r"root: expected a checkpoint folder"):  # a typo of the arch.tag too
        nv.create_model("fcn1dd.gunpoint", pretrained=True, root=tmp_path / "nope")


@pytest.mark.parametrize("call, arg", [
    (lambda: nv.create_model(None), "name"), (lambda: nv.create_model(3), "name"),
    (lambda: nv.list_models(["nv_*"]), "pattern"), (lambda: nv.list_models(3, pretrained=True), "pattern"),
])
def test_names_and_patterns_of_the_wrong_type_are_named(call, arg):
    with pytest.raises(ValueError, match=rf"^{arg}: expected"):
        call()


@pytest.mark.parametrize("kw, arg", [
    ({"widths": "32"}, "widths"), ({"widths": 32}, "widths"), ({"widths": [8.0]}, "widths"), ({"widths": [0]}, "widths"),
    ({"widths": []}, "widths"), ({"kernel_size": "3"}, "kernel_size"), ({"kernel_size": 0}, "kernel_size"),
])
def test_small_cnn_arguments_of_the_wrong_type_are_named(kw, arg):
    with pytest.raises(ValueError, match=rf"^{arg}: expected .*int"):
        nv.create_model("small_cnn", **kw)


def test_vgg_and_fcn_widths_are_checked_and_numpy_ints_taken():
    with pytest.raises(ValueError, match=r"^cfg: expected"):
        nv.create_model("vgg_cnn", cfg=(8, "M", 2.5))
    with pytest.raises(ValueError, match=r"^widths: expected"):
        nv.create_model("fcn1d", widths=(4, "8"), kernels=(3, 3))
    with pytest.raises(ValueError, match=r"^kernels: expected"):
        nv.create_model("fcn1d", widths=(4, 8), kernels=(3, 0))
    net = nv.create_model("small_cnn", widths=np.array([4, 8]), kernel_size=np.int64(3))
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize("arch, kw, arg", [
    ("resnet18_cifar", {"kernel_size": 4}, "kernel_size"), ("resnet18_cifar", {"kernel_size": 0}, "kernel_size"),
    ("resnet18_cifar", {"stem_kernel": 2.5}, "stem_kernel"), ("resnet1d", {"kernels": (8, 5, 0)}, "kernels"),
    ("resnet1d", {"kernels": (8, "5", 3)}, "kernels"), ("resnet1d", {"widths": (64, 0, 128)}, "widths"),
    ("lite", {"kernels": (39, 0, 9)}, "kernels"), ("lite", {"filters": 0}, "filters"),
    ("lite", {"sep_kernels": (19, 2.0)}, "sep_kernels"), ("lite", {"kernels": (), "fixed": False}, "kernels"),
    ("inception_time", {"kernels": (39, 0)}, "kernels"), ("inception_time", {"filters": 2.5}, "filters"),
    ("inception_time", {"depth": 0}, "depth"), ("inception_time", {"bottleneck": -1}, "bottleneck"),
    ("inception_time", {"bottleneck": 0.0}, "bottleneck"), ("lite", {"kernels": 9}, "kernels"),
    ("lite", {"kernels": None}, "kernels"),
])
def test_time_series_and_resnet_kernels_and_widths_are_named(arch, kw, arg):
    # each failed in torch before: a shape mismatch at the residual sum (an even kernel), oneDNN's "could not create
    # a primitive descriptor" (a kernel of 0) or "empty(): argument 'size'" (a float), none naming the argument
    for name in (arch, "nv_" + arch):
        with pytest.raises(ValueError, match=rf"^{arg}: expected "):
            nv.create_model(name, **kw)


def test_the_kernels_the_checks_let_through_still_build():
    x = torch.randn(2, 1, 64)
    assert nv.create_model("resnet1d", kernels=(8, 5), widths=np.array([4, 8])).eval()(x).shape == (2, 2)
    assert nv.create_model("lite", kernels=(), filters=4).eval()(x).shape == (2, 2)  # the fixed filters alone
    for none in (0, np.int64(0), False, None):  # no bottleneck, as bool(bottleneck) read them
        net = nv.create_model("inception_time", bottleneck=none, depth=1, filters=4, in_channels=2)
        assert isinstance(net.inception[0].bottleneck, torch.nn.Identity)
    assert nv.create_model("resnet18_cifar", stem_kernel=4, widths=(4, 4, 4, 4)).eval()(
        torch.randn(2, 3, 8, 8)).shape == (2, 10)
    with pytest.raises(ValueError, match=r"^depths: resnet18_cifar is ResNet-18"):  # "multiple values" before
        nv.create_model("nv_resnet18_cifar", depths=(1, 1))


def test_zoo_architectures_refuses_verify_and_root_and_says_when_nothing_matches(capsys, tmp_path):
    assert zoo_main(["--verify", "--architectures", "nv_l*"]) == 2
    err = capsys.readouterr().err
    assert "--verify" in err and "--architectures" in err
    assert zoo_main(["--architectures", "--root", str(tmp_path / "typo"), "nv_l*"]) == 2
    assert "root: expected a checkpoint folder, got" in capsys.readouterr().err
    assert zoo_main(["--architectures", "zzz"]) == 0
    assert capsys.readouterr().out.strip() == "no architectures matching 'zzz'"
    assert zoo_main(["--architectures", "nv_l*"]) == 0
    assert capsys.readouterr().out.split() == ["nv_lite", "nv_lstm"]


def test_an_unknown_argument_with_pretrained_is_unknown_not_a_clash(tmp_path):
    zoo.save_pretrained(nv.create_model("small_cnn", num_classes=3, in_channels=1, widths=(4,)), "small_cnn.a",
                        architecture="small_cnn", arch_kwargs={"num_classes": 3, "in_channels": 1, "widths": [4]},
                        dataset={}, recipe=None, seed=0, metrics={}, root=tmp_path)
    for kw, hint in (({"widht": 3}, "did you mean 'widths'"), ({"in_chans": 1}, "did you mean 'in_channels'"),
                     ({"drop_rate": 0.0}, "its arguments: ")):
        k = next(iter(kw))
        for call in (lambda: nv.create_model("small_cnn.a", pretrained=True, root=tmp_path, **kw),
                     lambda: nv.create_model("small_cnn", **kw)):  # the same words without pretrained
            with pytest.raises(TypeError, match=rf"^{k}: unexpected keyword argument '{k}' of small_cnn \({hint}"):
                call()
    with pytest.raises(ValueError, match=r"trained with fixed arguments; got widths=\(8,\)"):  # a real clash still is
        nv.create_model("small_cnn.a", pretrained=True, root=tmp_path, widths=(8,))
    assert nv.create_model("small_cnn.a", pretrained=True, root=tmp_path, widths=(4,)).fc.out_features == 3
    # the RNNs' own arguments passed on to nn.GRU are known: a clash, not unknown
    with pytest.raises(TypeError, match=r"^dropoutt: unexpected keyword argument 'dropoutt' of nv_gru \(did you mean 'dropout'"):
        zoo.check_arguments("nv_gru", {"dropoutt": 0.1})
    zoo.check_arguments("nv_gru", {"dropout": 0.1, "bias": False, "max_len": 5})


def test_the_same_network_saved_twice_is_the_same_file(tmp_path):
    """The determinism probe: safetensors wrote its header's metadata keys in an order of its own, so six saves of one
    network gave six files (six sha256s in the manifest). Sorted now; the file still loads to the same network."""
    import hashlib

    from neuroview.zoo.pretrained import save_pretrained

    net = nv.create_model("nv_small_cnn", num_classes=3, in_channels=1, widths=[4, 8])
    x = torch.randn(2, 1, 8, 8)
    net(x)
    kw = dict(architecture="nv_small_cnn", arch_kwargs={"widths": [4, 8], "num_classes": 3, "in_channels": 1},
              dataset={"name": "digits"}, recipe=None, seed=0, metrics={})
    shas = set()
    for i in range(4):
        entry = save_pretrained(net.eval(), "nv_small_cnn.same", root=tmp_path / str(i), **kw)
        data = (tmp_path / str(i) / "nv_small_cnn.same.safetensors").read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        shas.add(entry["sha256"])
    assert len(shas) == 1
    back = nv.create_model("nv_small_cnn.same", pretrained=True, root=tmp_path / "0")
    torch.testing.assert_close(back(x), net(x), rtol=0, atol=0)


def test_a_user_s_builder_takes_what_it_passes_on_and_the_wrappers_arguments_it_drops_are_named():
    """The review: a builder registered with nv.register_model that passes **kw on was refused an argument it takes
    ("unexpected keyword argument 'hidden'"); and unit_axis given to nv_small_cnn (never passed on) met the bare
    TypeError of SmallCNN.__init__ the check was made to replace."""
    from neuroview.zoo import registry

    def probe_mlp_builder(*, num_classes=10, in_channels=4, **kw):
        return torch.nn.Sequential(torch.nn.Linear(in_channels, kw.get("hidden", 4)), torch.nn.ReLU(),
                                   torch.nn.Linear(kw.get("hidden", 4), num_classes))

    nv.register_model(probe_mlp_builder)
    try:
        assert nv.create_model("probe_mlp_builder", num_classes=3, hidden=8)[0].out_features == 8
    finally:
        registry._MODELS.pop("probe_mlp_builder", None)
    with pytest.raises(TypeError, match=r"unit_axis: unexpected keyword argument 'unit_axis' of nv_small_cnn"):
        nv.create_model("nv_small_cnn", num_classes=3, unit_axis={"features.0.2": 1})
    with pytest.raises(ValueError, match=r"root: expected a checkpoint folder, got .* \(no such folder\)"):
        nv.zoo.pretrained.list_pretrained(None, "/no/such/zoo")


def test_training_names_an_unknown_model_argument_as_create_model_does():
    """The doc review: `neuroview fit --model.model_kwargs.widht 3` met SmallCNN.__init__()'s bare TypeError where
    create_model named the close argument."""
    from neuroview.training.module import NeuroViewModule

    with pytest.raises(TypeError, match=r"widht: unexpected keyword argument 'widht' of small_cnn \(did you mean "
                                        r"'widths'\?\)"):
        NeuroViewModule("small_cnn", num_classes=3, in_channels=1, model_kwargs={"widht": 3})
    NeuroViewModule("nv_gru", num_classes=3, in_channels=2, max_len=10, model_kwargs={"hidden_size": 8})  # passed on
