"""Bad inputs that earlier tests did not try, untrusted files, and determinism (issue 8).

Each test here is a row of docs/ERRORS.md; rows already covered elsewhere point at those tests.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import neuroview as nv
from neuroview.attribution.importance import class_means
from neuroview.zoo import pretrained as zoo
from neuroview.data import NpzDataModule
from neuroview.training.cli import cli_main
from neuroview.training.module import load_model, load_weights

ROOT = Path(__file__).resolve().parents[1]
DIGITS = str(ROOT / "recipes" / "digits_nv_small_cnn.yaml")
QUICK = ["--model.model_kwargs", "{widths: [8, 16]}", "--trainer.limit_train_batches", "5", "--trainer.limit_val_batches", "1",
         "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false", "--trainer.max_epochs", "1",
         "--test_after_fit", "false"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))


# ------------------------------------------------------------------ wrappers
def test_rnn_empty_batch_and_empty_sequences():
    net = nv.NeuroViewRNN(nn.GRU(3, 4, batch_first=True), 2, max_len=6)
    for x in (torch.randn(0, 6, 3), torch.randn(2, 0, 3)):
        with pytest.raises(ValueError, match=r"x: expected a non-empty batch of non-empty sequences, got shape"):
            net(x)
        with pytest.raises(ValueError, match=r"x: expected a non-empty batch"):
            net.explain(x)


def test_rnn_lengths_inconsistent_with_x():
    net = nv.NeuroViewRNN(nn.LSTM(3, 4, batch_first=True), 2, max_len=6)
    x = torch.randn(2, 6, 3)
    with pytest.raises(ValueError, match=r"lengths: expected an integer tensor of shape \[2\], got .* shape \(3,\)"):
        net.explain(x, lengths=torch.tensor([3, 2, 1]))  # one length per sample, and there are 2
    with pytest.raises(ValueError, match=r"lengths: expected an integer tensor of shape \[2\], got .* shape \(1, 2\)"):
        net(x, lengths=torch.tensor([[3, 2]]))
    with pytest.raises(ValueError, match=r"lengths: expected values in \[1, 6\] \(T of x\), got min 1 and max 7"):
        net(x, lengths=torch.tensor([7, 1]))  # longer than x itself


def test_cnn_input_dtype_other_than_the_model():
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), 5)
    x = torch.ones(2, 3, 8, 8, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"x: expected dtype torch.float32 \(the model's parameters\), got torch.float64"):
        net(x)
    assert net.double()(x).dtype == torch.float64  # the suggested fix works
    # integer inputs reach the backbone (token ids, uint8 images: issue 23); one that cannot take them says so
    fresh = nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), 5)
    with pytest.raises(ValueError, match=r"x: the backbone's forward pass on this batch failed .*long"):
        fresh(torch.ones(2, 3, 8, 8, dtype=torch.int64))
    # and once the sites are found (the first batch was floats): the same error, not PyTorch's bare one
    fresh(torch.ones(2, 3, 8, 8))
    for f in (fresh, fresh.explain):
        with pytest.raises(ValueError, match=r"x: the backbone's forward pass on this batch failed \(RuntimeError: .*\); "
                                             r"x is torch.int64, which reaches the backbone as it is: convert x \(x.float\(\)\)"):
            f(torch.ones(2, 3, 8, 8, dtype=torch.int64))


# ------------------------------------------------------------------ zoo names
def test_unknown_zoo_name_suggests_close_matches():
    with pytest.raises(ValueError, match=r"name: unknown model 'nv_smal_cnn'; did you mean \['nv_small_cnn'"):
        nv.create_model("nv_smal_cnn")


def test_a_data_shape_that_is_no_positive_int_is_refused_by_name():
    # a LITE of 0 channels was built (with a warning of PyTorch's init), -1 failed in torch.empty, 2.5 in Conv2d
    for name, key, bad in (("nv_lite", "in_channels", 0), ("small_cnn", "in_channels", -1),
                           ("nv_small_cnn", "in_channels", 2.5), ("nv_gru", "in_features", 0), ("nv_gru", "max_len", 0),
                           ("lite", "in_channels", True)):
        kw = {"max_len": 10} if name == "nv_gru" else {}
        with pytest.raises(ValueError, match=f"{key}: expected an int >= 1, got {bad!r}"):
            nv.create_model(name, num_classes=2, **{**kw, key: bad})


def test_unknown_builder_argument_names_it():
    with pytest.raises(TypeError, match=r"^nonexistent: unexpected keyword argument 'nonexistent' of small_cnn \(its arguments: "):
        nv.create_model("small_cnn", nonexistent=1)


# ------------------------------------------------------------------ recipes and data via the CLI
def test_unknown_recipe_key_is_refused_by_the_parser(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(tmp_path), "--model.nonexistent", "1"], run=False)
    assert e.value.code != 0
    err = capsys.readouterr().err
    assert "unrecognized arguments: --model.nonexistent 1" in err, err[-2000:]


def test_unknown_data_class_is_refused_by_the_parser(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(tmp_path), "--data", "NoSuchDataModule"], run=False)
    assert e.value.code != 0
    assert "NoSuchDataModule" in capsys.readouterr().err


# ------------------------------------------------------------------ data files
def test_npz_that_is_not_an_npz(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"this is not a zip archive")
    with pytest.raises(ValueError, match=r"path: expected an .npz file of plain arrays X and y, got '.*bad.npz', which is not one"):
        NpzDataModule(str(bad)).setup()


def test_npz_with_pickled_objects_is_refused(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, X=np.array([{"a": 1}] * 4, dtype=object), y=np.zeros(4))
    with pytest.raises(ValueError, match=r"path: X of obj.npz is an object array \(pickled Python objects, not read"):
        NpzDataModule(str(path)).setup()


def test_npz_truncated(tmp_path):
    path = tmp_path / "t.npz"
    np.savez(path, X=np.zeros((20, 1, 8), np.float32), y=np.arange(20) % 2)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"path: expected an .npz file"):
        NpzDataModule(str(path)).setup()


def test_npz_samples_disagree(tmp_path):
    path = tmp_path / "n.npz"
    np.savez(path, X=np.zeros((4, 1, 5)), y=np.zeros(3))
    with pytest.raises(ValueError, match=r"path: X has 4 samples but y has 3"):
        NpzDataModule(str(path)).setup()


@pytest.mark.parametrize("lengths, what", [(np.full(3, 4), "shape (3,)"), (np.array([4, 0, 4, 4]), "values 0 to 4"),
                                           (np.array([4, -1, 4, 4]), "values -1 to 4"), (np.array([4, 6, 4, 4]), "values 4 to 6"),
                                           (np.array([4, 2.5, 4, 4]), "values 2.5 to 4")])
def test_npz_lengths_that_do_not_fit_the_series(tmp_path, lengths, what):
    # a length of -1 cut the series' last step off, 2.5 became 2, 6 was read as 5, 0 gave an empty series
    # (padded with zeros; stretched, an error about X), and too few lengths an IndexError
    path = tmp_path / "n.npz"
    np.savez(path, X=np.zeros((4, 1, 5)), y=np.array([0, 1, 0, 1]), lengths=lengths)
    with pytest.raises(ValueError, match=rf"path: lengths must hold one whole number in \[1, 5\] \(the steps of X\) per "
                                         rf"series, shape \[4\]; got .*{re.escape(what)}"):
        NpzDataModule(str(path)).setup()


def test_npz_labels_of_more_than_one_dim(tmp_path):
    path = tmp_path / "n.npz"
    np.savez(path, X=np.zeros((4, 1, 5)), y=np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"path: y must hold one label per sample, shape \[4\], got shape \(4, 2\)"):
        NpzDataModule(str(path)).setup()


# ------------------------------------------------------------------ weight files
@pytest.fixture
def weights(tmp_path):
    net = nv.create_model("small_cnn", widths=[8, 16])
    path = tmp_path / "w.safetensors"
    save_file(net.state_dict(), str(path))
    return net, path


def test_truncated_safetensors_is_a_clear_error(weights, tmp_path):
    net, path = weights
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(ValueError, match=r"path: expected a safetensors weight file, got '.*cut.safetensors', which is truncated"):
        zoo.load_weights(net, cut)
    with pytest.raises(ValueError, match=r"init_weights: expected a safetensors file, got '.*cut.safetensors', which is truncated"):
        load_weights(net, cut)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items()), "a refused load changed the model"


def test_empty_weight_file(weights, tmp_path):
    net, _ = weights
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"path: expected a safetensors weight file"):
        zoo.load_weights(net, empty)


class _Boom:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickled_code_in_a_state_dict_is_refused(weights, tmp_path, capsys):
    net, _ = weights
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as f:
        pickle.dump({"fc.weight": _Boom()}, f)
    with pytest.raises(ValueError, match=r"init_weights: expected a checkpoint or state dict of tensors, got '.*evil.pt'.*weights_only=True refuses"):
        load_weights(net, evil)
    assert "this must never run" not in capsys.readouterr().out


def test_own_lightning_checkpoint_loads_with_weights_only_and_a_tampered_one_does_not(tmp_path, capsys):
    root = tmp_path / "run"
    cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(root), *QUICK])
    ckpt = root / "checkpoints" / "last.ckpt"
    torch.load(ckpt, map_location="cpu", weights_only=True)  # no allowlist needed
    model = load_model(ckpt)
    assert isinstance(model, nv.NeuroViewCNN) and not model.training
    obj = torch.load(ckpt, map_location="cpu", weights_only=True)
    obj["hyper_parameters"]["payload"] = _Boom()
    evil = tmp_path / "evil.ckpt"
    torch.save(obj, evil)
    with pytest.raises(ValueError, match=r"ckpt_path: .*evil.ckpt' is not a readable checkpoint: .*\(UnpicklingError\)") as e:
        load_model(evil)
    assert isinstance(e.value.__cause__, pickle.UnpicklingError)  # refused by weights_only=True, named by us
    assert "this must never run" not in capsys.readouterr().out


def test_explanation_target_out_of_range_or_wrong_shape():
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), 5).eval()
    exp = net.explain(torch.randn(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"target: expected a class index in \[0, 5\), got 7"):
        exp.for_class(7)
    with pytest.raises(ValueError, match=r"target: classes must lie in \[0, 5\), got \[0, 5\]"):
        exp.for_class(torch.tensor([0, 5]))
    with pytest.raises(ValueError, match=r"target: expected an int or a tensor of shape \[2\], got shape \(3,\)"):
        exp.for_class(torch.tensor([0, 1, 2]))


def _fraction_loader(y):
    from torch.utils.data import DataLoader, TensorDataset

    g = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(torch.randn(len(y), 1, 24, generator=g), y), batch_size=4)


def test_labels_that_are_not_whole_numbers_are_refused_where_they_were_truncated():
    """Every entry point that reads labels: a float label 0.7 was cast to class 0 and the run went on
    (``sparsify`` then said the split had one class); whole numbers stored as floats still pass."""
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), 2).eval()
    net.discover(torch.randn(2, 1, 24))
    frac = torch.tensor([0.2, 0.7, 1.0, 0.0] * 5)
    whole = frac.round()
    msg = "expected integer class labels, got dtype torch.float32 with values that are not whole numbers"
    with pytest.raises(ValueError, match=f"train: {msg} \\(e.g. 0.2"):
        nv.sparsify(net, _fraction_loader(frac))
    with pytest.raises(ValueError, match=f"train: {msg}"):
        nv.minirocket(_fraction_loader(frac))
    with pytest.raises(ValueError, match=f"loader: {msg}"):
        net.unit_gallery(_fraction_loader(frac), units=[0], k=2)
    exp = net.explain(torch.randn(4, 1, 24))
    with pytest.raises(ValueError, match=f"target: {msg}"):
        exp.for_class(torch.tensor([0.0, 0.5, 1.0, 1.0]))
    with pytest.raises(ValueError, match=f"y: {msg}"):
        class_means(torch.randn(4, 3), torch.tensor([0.0, float("nan"), 1.0, 1.0]), 2)
    # whole numbers stored as floats are the same labels as integers
    assert torch.equal(class_means(torch.arange(8.0).view(4, 2), whole[:4], 2),
                       class_means(torch.arange(8.0).view(4, 2), whole[:4].long(), 2))
    assert torch.equal(exp.for_class(torch.tensor([0.0, 1.0, 1.0, 0.0])), exp.for_class(torch.tensor([0, 1, 1, 0])))
    g = net.unit_gallery(_fraction_loader(whole), units=[0], k=2)
    assert g.y.dtype == torch.long
    # a label that is no class was left out of every class's mean, unsaid
    from neuroview.attribution.importance import layer_shares

    with pytest.raises(ValueError, match=r"y: expected class indices in \[0, 2\), got 7"):
        class_means(torch.randn(4, 3), torch.tensor([0, 1, 7, 1]), 2)
    with pytest.raises(ValueError, match=r"y: expected class indices in \[0, 2\), got -1"):
        layer_shares(exp, y=torch.tensor([0, 1, -1, 1]))


# ------------------------------------------------------------------ determinism
def test_same_seed_gives_bit_identical_weights_and_explanations(tmp_path):
    """Two CPU runs of a recipe with one seed: every tensor equal, explanations equal. The accelerator
    and determinism are pinned: on a GPU machine `auto` would pick CUDA, whose kernels are not
    bit-reproducible by default."""
    ckpts = []
    pin = ["--trainer.accelerator", "cpu", "--trainer.deterministic", "true"]
    for run in ("a", "b"):
        root = tmp_path / run
        cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(root), "--seed_everything", "7", *QUICK, *pin])
        ckpts.append(root / "checkpoints" / "last.ckpt")
    a, b = (torch.load(c, map_location="cpu", weights_only=True)["state_dict"] for c in ckpts)
    assert a.keys() == b.keys() and len(a) > 0
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
    x = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    ea, eb = (load_model(c).explain(x) for c in ckpts)
    assert torch.equal(ea.logits, eb.logits) and torch.equal(ea.contributions, eb.contributions)
    # and the seed matters: a third run with another seed moves the weights
    other = tmp_path / "c"
    cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(other), "--seed_everything", "8", *QUICK, *pin])
    c = torch.load(other / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    assert not all(torch.equal(a[k], c[k]) for k in a)


# ------------------------------------------------------------------ nothing lost
def test_a_crash_while_checkpointing_leaves_the_old_checkpoint_whole(tmp_path):
    from types import SimpleNamespace

    from neuroview.training.callbacks import Checkpoint

    last = tmp_path / "last.ckpt"
    last.write_bytes(b"the good checkpoint")

    def dies_halfway(path, weights_only=False):
        Path(path).write_bytes(b"half of a")
        raise KeyboardInterrupt  # as a kill would, between the first and last byte

    trainer = SimpleNamespace(save_checkpoint=dies_halfway, global_step=1, is_global_zero=True, loggers=[])
    with pytest.raises(KeyboardInterrupt):
        Checkpoint(dirpath=tmp_path)._save_checkpoint(trainer, str(last))
    assert last.read_bytes() == b"the good checkpoint"

    def writes(path, weights_only=False):
        Path(path).write_bytes(b"the new checkpoint")

    trainer = SimpleNamespace(save_checkpoint=writes, global_step=2, is_global_zero=True, loggers=[],
                              strategy=SimpleNamespace(barrier=lambda name: None))
    Checkpoint(dirpath=tmp_path)._save_checkpoint(trainer, str(last))
    assert last.read_bytes() == b"the new checkpoint" and not (tmp_path / "last.ckpt.tmp").exists()


def test_rnn_input_dtype_other_than_the_model():
    net = nv.NeuroViewRNN(nn.GRU(3, 4, batch_first=True), 2, max_len=6)
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"x: expected dtype torch.float32 \(the model's parameters\), got torch.float64"):
        net(x)
    with pytest.raises(TypeError, match=r"x: expected dtype torch.float32"):
        nv.RNNClassifier(nn.GRU(3, 4, batch_first=True), 2)(x)
    assert net.double().eval()(x).dtype == torch.float64  # the suggested fix works


def test_weights_of_another_architecture_via_init_weights(weights):
    _, path = weights  # a small_cnn with widths [8, 16]
    other = nv.create_model("small_cnn", widths=[8, 32])
    with pytest.raises(ValueError, match=r"init_weights: '.*w.safetensors' matches neither the model nor its backbone"):
        load_weights(other, path)


def test_unpack_puts_a_loaders_batch_where_the_network_is():
    """Loops outside Lightning (sparsify, retrofit, readability, the zoo's evaluate) feed a network on
    a GPU the CPU batches of a loader: unpack moves every tensor of the batch to the device asked."""
    from neuroview._batch import unpack
    from neuroview.core._utils import factory

    x, lengths, y = torch.randn(2, 3, 5), torch.tensor([5, 3]), torch.tensor([0, 1])
    meta = torch.device("meta")
    assert all(t.device == meta for t in unpack((x, lengths, y), meta))
    assert [t.device == meta if t is not None else None for t in unpack((x, y), meta)] == [True, None, True]
    assert unpack(x)[0] is x and unpack((x, y), None)[2] is y  # no device: as given
    assert factory(torch.nn.Linear(2, 2).to(meta))["device"] == meta and "device" not in factory(torch.nn.ReLU())


def test_attribution_takes_what_numpy_and_json_give_and_names_a_ragged_table(tmp_path):
    """Units as numpy ints or JSON pairs (ablate_units refused 1 as out of [0, 7)), one method as a string
    (it was split into letters, "got ['n', 'e', ...]"), CSV rows of other keys (a bare KeyError)."""
    from neuroview.attribution.ablation import ablate_units
    from neuroview.attribution.export import write_csv
    from neuroview.attribution.faithfulness import unit_ablation

    torch.manual_seed(0)
    net = nv.wrap(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.Conv1d(4, 3, 3), nn.ReLU()), 3, input_shape=(1, 12)).eval()
    x, y = torch.randn(6, 1, 12), torch.tensor([0, 1, 2, 0, 1, 2])
    with torch.no_grad():
        with ablate_units(net, [1, ("3", 2)]):
            want = net.codes(x)
        with ablate_units(net, np.array([1])), ablate_units(net, [["3", 2]]):
            torch.testing.assert_close(net.codes(x), want)
    assert bool((want[:, [1, 6]] == 0).all()) and bool((want[:, [0, 2, 3]] != 0).any())
    res = unit_ablation(net, x, y, methods="neuroview", seeds=[0], steps=2)
    assert "neuroview" in res.curves and len(res.curves) == 1
    with pytest.raises(ValueError, match=r"records: row 1 lacks the columns \['a'\]"):
        write_csv(tmp_path / "t.csv", [{"a": 1}, {"b": 2}])
    assert not (tmp_path / "t.csv").exists()


def test_a_class_given_as_numpy_a_0_dim_tensor_or_1_0_is_that_class_and_true_is_none():
    """for_class(True) read as class 1; np.int64(1), tensor(1) and 1.0 were refused as 'expected an int or a tensor
    of shape [5], got shape ()'."""
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), 3, input_shape=(1, 8)).eval()
    exp = net.explain(torch.randn(5, 1, 8))
    for t in (np.int64(2), torch.tensor(2), 2.0):
        assert torch.equal(exp.for_class(t), exp.for_class(2)) and torch.equal(exp.targets(t), torch.full((5,), 2))
    with pytest.raises(TypeError, match="target: expected a class index or a tensor of them, got True"):
        exp.for_class(True)
    with pytest.raises(ValueError, match=r"target: expected integer class labels.*not whole numbers \(e.g. 1.5\)"):
        exp.for_class(1.5)
    with pytest.raises(ValueError, match=r"target: expected a class index in \[0, 3\), got 7"):
        exp.for_class(torch.tensor(7))


def test_minirocket_ridge_and_members_name_what_they_cannot_take():
    """Bare errors before: an IndexError for [N, T] series, 'num_classes: ... got 1' for labels -1/0 (an argument
    never passed), numpy's seed error, 'unexpected keyword argument members' from deep in an RNN, an
    AttributeError from fit_ridge_head on an ensemble after its features were computed, one member's unit
    count quoted for an ensemble's bad baseline, the JSON parser's message for a --data spec."""
    from neuroview.core.ensemble import Ensemble
    from neuroview.training.retrofit import datamodule_for
    from neuroview.training.ridge import fit_ridge_head, minirocket

    x, y = torch.randn(20, 1, 40), torch.arange(20) % 2
    with pytest.raises(ValueError, match=r"train: expected series \[B, C, T\] .* got a batch of shape \(20, 40\) \(one channel"):
        minirocket([(x[:, 0], y)], num_features=84)
    with pytest.raises(ValueError, match=r"train: labels must be class indices >= 0, got \[-1, 0\]"):
        minirocket([(x, y - 1)], num_features=84)
    with pytest.raises(ValueError, match=r"seed: expected an int in \[0, 2\*\*32\)"):
        minirocket([(x, y)], num_features=84, seed=-1)
    for arch in ("nv_gru", "nv_minirocket"):
        with pytest.raises(ValueError, match=rf"members: {arch} builds one network .* got members=2"):
            nv.create_model(arch, num_classes=2, max_len=40, members=2)
    assert isinstance(nv.create_model("nv_gru", num_classes=2, max_len=40, members=1), nv.NeuroViewRNN)
    ens = nv.create_model("nv_small_cnn", num_classes=2, widths=(4,), members=2)
    ens(torch.randn(2, 1, 8, 8))
    with pytest.raises(ValueError, match="net: an Ensemble deciding with its members' mean has no global head to fit"):
        fit_ridge_head(ens, [(torch.randn(8, 1, 8, 8), torch.arange(8) % 2)])
    assert isinstance(ens, Ensemble)
    with pytest.raises(ValueError, match="baseline: expected None, 'zero', 'mean' or a tensor of every member's units, got 'avg'"):
        ens.explain(torch.randn(2, 1, 8, 8), baseline="avg")
    with pytest.raises(ValueError, match=r"--data: expected a JSON data-module spec, got '\{bad'"):
        datamodule_for("{bad")
