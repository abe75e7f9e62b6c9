"""Seeds of sparsify, its fine-tuning and the demo: what they seed, what they record, what they refuse (probe s23)."""

from __future__ import annotations

import copy
import functools

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import neuroview as nv
from neuroview.training import sparsify_cli
from neuroview.training.demo import main as demo
from neuroview.training.sparse_callback import Sparsify
from neuroview.zoo.pretrained import read_manifest


def _small(n=60):
    """A network whose dropout comes before its site (the ReLU): what the dropout draws reaches the decision."""
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 8, 3), nn.Dropout(0.3), nn.ReLU()), 2, input_shape=(1, 20)).eval()
    x = torch.randn(n, 1, 20)
    y = (x[:, 0, 5:10].mean(1) > 0).long()
    return net, x, y


@pytest.fixture(scope="module")
def _sparse():
    net, x, y = _small()
    return nv.sparsify(net, [(x, y)], tolerance=5.0, points=5, max_iter=50), x, y


class _Unread:
    """Batches that must not be read: a refusal comes before any code is computed."""

    def __iter__(self):
        raise AssertionError("the batches were read before the seed was checked")


def test_finetune_sparse_reseeds_no_gpu_generator(_sparse, monkeypatch):
    """torch.manual_seed(seed) inside reseeded every CUDA generator of the caller, where own_rng saves the CPU's and
    the network's device's only: a seeded script's later GPU draws followed the fine-tuning's seed."""
    sparse, x, y = _sparse
    calls = []
    for name in ("manual_seed", "manual_seed_all", "seed", "seed_all"):
        monkeypatch.setattr(torch.cuda, name, functools.partial(lambda n, *a: calls.append(n), name))
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
    torch.default_generator.manual_seed(1)  # torch.manual_seed would call the spied cuda.manual_seed_all
    before = torch.get_rng_state()
    a = nv.finetune_sparse(sparse, loader, epochs=2, seed=3)
    assert calls == [] and torch.equal(torch.get_rng_state(), before)
    torch.default_generator.manual_seed(2)  # another state of the caller: the shuffle and dropout still follow the seed alone
    b = nv.finetune_sparse(sparse, loader, epochs=2, seed=3)
    c = nv.finetune_sparse(sparse, loader, epochs=2, seed=4)
    assert calls == []
    assert all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())
    assert not torch.equal(a.classifier.weight, c.classifier.weight)
    assert a.finetuned["seed"] == 3 and c.finetuned["seed"] == 4  # the record says which seed it used


def _tuned(sparse, batches, seed, device):
    """``(the dropout masks a fine-tuning drew, its network)``: a hook on the Dropout of a copy on ``device`` records
    which entries it zeroed in each training pass (the fine-tuning's copy keeps the hook)."""
    masks, net = [], copy.deepcopy(sparse).to(device)  # a copy: the module-scoped fixture stays on the CPU
    drop = next(m for m in net.modules() if isinstance(m, nn.Dropout))
    drop.register_forward_hook(lambda m, i, o: masks.append(((o == 0) & (i[0] != 0)).cpu()) if m.training else None)
    return masks, nv.finetune_sparse(net, batches, epochs=2, seed=seed)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a GPU"))])
def test_finetune_sparse_seeds_the_dropout_on_its_network_s_device(device, _sparse):
    """The seed sets the dropout, whatever state the caller left that device's generator in, and gives it back. The
    batch is one, unshuffled: only the dropout draws. On a GPU the dropout draws from the CUDA generator: without
    _seed's torch.cuda.manual_seed, seed 3 from the caller's states 1 and 2 drops other entries, and seeds 3 and 4
    the same ones (the fork gives the state back after each call; the test this replaces passed so)."""
    sparse, x, y = _sparse
    batches = [(x.to(device), y.to(device))]
    reseed, state = ((torch.cuda.manual_seed, torch.cuda.get_rng_state_all) if device == "cuda" else
                     (torch.default_generator.manual_seed, lambda: [torch.get_rng_state()]))
    reseed(1)
    before = state()
    masks_b, b = _tuned(sparse, batches, 3, device)
    assert all(torch.equal(s, t) for s, t in zip(before, state()))  # the caller's generator as it was
    reseed(2)  # another state of the caller's
    masks_c, c = _tuned(sparse, batches, 3, device)
    masks_d, d = _tuned(sparse, batches, 4, device)
    assert len(masks_b) == 2 and all(m.any() for m in masks_b)  # it drops, in each of the 2 epochs
    assert all(torch.equal(m, n) for m, n in zip(masks_b, masks_c))
    assert not any(torch.equal(m, n) for m, n in zip(masks_b, masks_d))
    for (name, p), q, r in zip(b.state_dict().items(), c.state_dict().values(), d.state_dict().values()):
        torch.testing.assert_close(p, q, rtol=0, atol=0 if device == "cpu" else 1e-6, msg=name)
    assert not torch.equal(b.backbone[0].weight, d.backbone[0].weight)  # the dropout changes what is learnt
    if device == "cuda":  # a CPU network on a GPU box: no GPU generator moved
        before = state()
        nv.finetune_sparse(sparse, [(x, y)], epochs=1, seed=3)
        assert all(torch.equal(s, t) for s, t in zip(before, state()))


def test_without_dropout_the_seeds_of_an_unshuffled_fine_tuning_agree(_sparse):
    """The control of the test above: in eval mode (no dropout) one unshuffled batch draws nothing, so seeds 3 and 4
    give one network; the difference there is the dropout's."""
    sparse, x, y = _sparse
    a, b = (nv.finetune_sparse(sparse, [(x, y)], epochs=2, seed=s, mode="eval") for s in (3, 4))
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


@pytest.mark.parametrize("seed", [-1, 2 ** 64, -(2 ** 63)])
def test_sparsify_and_finetune_refuse_a_seed_out_of_range_before_any_work(seed, _sparse):
    """-1 was the folds of 2**64 - 1, recorded as -1; 2**64 failed after the codes, in torch's bare 'Overflow when
    unpacking long long'."""
    sparse, x, y = _sparse
    net = _small()[0]
    with pytest.raises(ValueError, match=rf"^seed: expected an int in \[0, 2\*\*64\) \(the folds' shuffle\), got {seed}$"):
        nv.sparsify(net, _Unread(), seed=seed)
    with pytest.raises(ValueError, match=r"^seed: expected an int in \[0, 2\*\*64\) \(the fine-tuning's shuffle and "
                                         rf"dropout\), got {seed}$"):
        nv.finetune_sparse(sparse, _Unread(), epochs=1, seed=seed)
    with pytest.raises(ValueError, match=rf"^seed: expected an int in \[0, 2\*\*64\) \(the folds' shuffle\), got {seed}$"):
        Sparsify(seed=seed)


def test_the_largest_seed_torch_takes_is_taken(_sparse):
    sparse, x, y = _sparse
    top = 2 ** 64 - 1  # torch.Generator().manual_seed's largest without wrapping round
    assert nv.sparsify(_small()[0], [(x, y)], tolerance=5.0, points=3, max_iter=20, seed=top).sparsity_path.seed == top
    assert nv.finetune_sparse(sparse, [(x, y)], epochs=1, seed=top).finetuned["seed"] == top


@pytest.mark.parametrize("finetune", [[], ["--finetune", "5"]])
@pytest.mark.parametrize("seed", ["-1", str(2 ** 64)])
def test_sparsify_command_refuses_a_seed_out_of_range_before_reading_the_source(seed, finetune, tmp_path, monkeypatch,
                                                                                capsys):
    """The refusal says what --seed sets, as its --help does: the folds, and --finetune's shuffle and dropout (it said
    "the folds' shuffle" only, where data with a validation split has no folds and the seed is the fine-tuning's)."""
    monkeypatch.setattr(sparsify_cli, "_source", lambda *a: pytest.fail("the source was read before --seed was checked"))
    assert sparsify_cli.main(["nv_lite.gunpoint", "--seed", seed, *finetune, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == (f"neuroview sparsify: seed: expected an int in [0, 2**64) (the cross-validation folds' shuffle, and "
                   f"--finetune's shuffle and dropout), got {seed} (option --seed)\n")


def _quick(monkeypatch):
    """``neuroview sparsify`` of nv_lite.gunpoint made quick: a short path, no test-split scoring (not under test)."""
    import neuroview.attribution.readability as readability
    import neuroview.zoo.evaluate as evaluate

    monkeypatch.setattr(sparsify_cli, "sparsify", functools.partial(sparsify_cli.sparsify, points=3, max_iter=20))
    monkeypatch.setattr(readability, "readability", lambda *a, **k: {"accuracy": 0.0, "units_per_class": 0.0, "k90": 0.0})
    monkeypatch.setattr(evaluate, "score_test_split", lambda *a, **k: {})


def test_sparsify_command_fine_tunes_with_its_seed_and_records_it(tmp_path, monkeypatch):
    """--seed S --finetune N fine-tuned with seed 0 while the entry recorded seed S (the Sparsify callback and the
    API passed it); the entry now records the fine-tuning's seed as the fine-tuning reports it."""
    _quick(monkeypatch)
    seen = {}

    def tuned(sparse, dm, **kw):  # the fine-tuning itself is test_finetune_sparse_reseeds_no_gpu_generator's
        seen.update(kw)
        out = copy.deepcopy(sparse)
        out.finetuned = {"epochs_kept": kw["epochs"], "seed": kw.get("seed", 0)}
        return out

    monkeypatch.setattr(sparsify_cli, "finetune_sparse", tuned)
    out = tmp_path / "zoo"
    assert sparsify_cli.main(["nv_lite.gunpoint", "--seed", "3", "--finetune", "1", "--out", str(out)]) == 0
    assert seen["seed"] == 3 and seen["epochs"] == 1
    record = read_manifest(out)["nv_lite.gunpoint_sparse"]["sparsify"]
    assert record["seed"] == 3 and record["finetune"] == 1 and record["finetune_seed"] == 3


@pytest.mark.slow
def test_a_sparse_entry_fine_tuned_by_the_command_is_the_api_s_of_its_seed(tmp_path, monkeypatch):
    """The whole command (about 10 s): its entry is nv.finetune_sparse(<the same head>, dm, seed=3)'s."""
    seen = {}
    real = sparsify_cli.finetune_sparse

    def spy(sparse, dm, **kw):
        seen.update(sparse=sparse, dm=dm)
        return real(sparse, dm, **kw)

    monkeypatch.setattr(sparsify_cli, "finetune_sparse", spy)
    out = tmp_path / "zoo"
    assert sparsify_cli.main(["nv_lite.gunpoint", "--seed", "3", "--finetune", "1", "--out", str(out)]) == 0
    assert read_manifest(out)["nv_lite.gunpoint_sparse"]["sparsify"]["finetune_seed"] == 3
    entry = nv.create_model("nv_lite.gunpoint_sparse", pretrained=True, root=out)
    again = nv.finetune_sparse(seen["sparse"], seen["dm"], epochs=1, seed=3)
    assert torch.equal(entry.classifier.weight, again.classifier.weight.to(entry.classifier.weight.dtype))


def test_a_sparse_entry_without_fine_tuning_records_no_fine_tuning_seed():
    from neuroview.training.sparsify_cli import sparsify_record

    net, x, y = _small()
    path = nv.sparsify(net, [(x, y)], tolerance=5.0, points=3, max_iter=20, seed=5).sparsity_path
    record = sparsify_record(path)
    assert record["seed"] == 5 and record["finetune"] == 0 and record["finetune_seed"] is None


@pytest.mark.parametrize("seed", ["-1", str(2 ** 32)])
def test_neuroview_demo_refuses_a_seed_out_of_range_in_one_line(seed, monkeypatch, capsys):
    """scikit-learn's train_test_split refused it in a traceback naming its own random_state, exit 1."""
    import neuroview.training.demo as demo_module

    monkeypatch.setattr(demo_module, "load_digits_tensors", lambda *a: pytest.fail("the data was read first"))
    with pytest.raises(SystemExit) as e:
        demo(["--seed", seed, "--epochs", "1"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == f"neuroview demo: error: --seed: expected an int in [0, 2**32), got {seed}"


# ---------------------------------------------------------------------------- retrofit's seed
_RETROFIT_SEED = "seed: expected an int in [0, 2**64) (the global generator's seed while the batches are read), got "


@pytest.mark.parametrize("seed", ["-1", str(2 ** 64)])
def test_retrofit_command_refuses_a_seed_out_of_range_before_reading_the_model_and_data(seed, monkeypatch, capsys):
    """It was checked in nv.retrofit, after the model and data were read, naming no option, in [0, 2**63)."""
    from neuroview.training import retrofit as rf

    monkeypatch.setattr(rf, "_prepare", lambda *a: pytest.fail("the model and data were read before --seed was checked"))
    assert rf.main(["small_cnn.digits", "--seed", seed]) == 2
    assert capsys.readouterr().err == f"neuroview retrofit: {_RETROFIT_SEED}{seed} (option --seed)\n"


@pytest.mark.parametrize("seed", [-1, 2 ** 64, 1.5, True])
def test_nv_retrofit_refuses_a_seed_out_of_range_before_any_batch_is_read(seed):
    std = nv.create_model("small_cnn", widths=(4,)).eval()
    words = _RETROFIT_SEED.replace("in [0, 2**64) ", "") if isinstance(seed, (float, bool)) else _RETROFIT_SEED
    with pytest.raises(ValueError, match=f"^{__import__('re').escape(words + repr(seed))}$"):
        nv.retrofit(std, _Unread(), seed=seed)


@pytest.mark.filterwarnings("ignore:retrofit. the classifier's fit stopped")  # 20 iterations: not under test
def test_retrofit_takes_every_seed_torch_takes(monkeypatch, capsys):
    """[2**63, 2**64) was refused, where the one use of the seed, manual_seed, takes it (as sparsify and explain do)."""
    import numpy as np

    from neuroview.training import retrofit as rf

    torch.manual_seed(0)
    std = nv.create_model("small_cnn", widths=(4,)).eval()
    x, y = torch.randn(40, 1, 8, 8), torch.arange(40) % 10
    for seed in (2 ** 63, 2 ** 64 - 1, np.uint64(2 ** 64 - 1)):
        assert nv.retrofit(std, [(x, y)], epochs=20, seed=seed).model.num_units == 4
    monkeypatch.setattr(rf, "_prepare", lambda *a: (_ for _ in ()).throw(ValueError("name: reached")))
    assert rf.main(["small_cnn.digits", "--seed", str(2 ** 64 - 1)]) == 2
    assert capsys.readouterr().err == "neuroview retrofit: name: reached (argument source)\n"


# ---------------------------------------------------------------------------- a run's folder as the source
def _run_folder(tmp_path, name="run"):
    run = tmp_path / name
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")  # never read: the folder is refused first
    return run


@pytest.mark.parametrize("sub", ["", "checkpoints"])
def test_sparsify_of_a_run_folder_names_the_checkpoint_in_it(sub, tmp_path, monkeypatch, capsys):
    """A run's folder was looked up as a model name: "unknown model 'run'; did you mean ['rnn', 'gru']?"."""
    monkeypatch.setattr(sparsify_cli, "_source", lambda *a: pytest.fail("the folder was read as a source"))
    ckpt = _run_folder(tmp_path) / "checkpoints" / "last.ckpt"
    source = str(tmp_path / "run" / sub) if sub else str(tmp_path / "run")
    assert sparsify_cli.main([source, "--out", str(tmp_path / "sp")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("neuroview sparsify: source: ") and err.count("\n") == 1, err
    assert f"got {source!r} (a folder, not a file; name the .ckpt file in it, e.g. {str(ckpt)!r})" in err, err
    assert "unknown model" not in err and "list_models" not in err


def test_sparsify_of_a_zoo_folder_says_to_name_an_entry_of_it_with_zoo(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sparsify_cli, "_source", lambda *a: pytest.fail("the folder was read as a source"))
    (tmp_path / "sp").mkdir()
    (tmp_path / "sp" / "manifest.json").write_text("{}")
    assert sparsify_cli.main([str(tmp_path / "sp"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "(a folder, not a file" in err and f"--zoo {tmp_path / 'sp'}" in err, err


def test_sparsify_reads_a_zoo_entry_named_like_a_folder_of_the_working_directory(tmp_path, monkeypatch):
    """Sparsify reads no folder: one named as an installed entry (an explain --out of that name) leaves the entry's."""
    from neuroview.training.sparsify_source import check_source

    monkeypatch.chdir(tmp_path)
    (tmp_path / "nv_lite.gunpoint").mkdir()
    check_source("nv_lite.gunpoint", None)  # no refusal
    with pytest.raises(ValueError, match="a folder, not a file"):
        check_source(str(_run_folder(tmp_path)), None)


@pytest.mark.parametrize("extra", [[], ["--data", "digits"], ["--arch", "small_cnn", "--data", "digits"]])
def test_retrofit_of_a_run_folder_names_the_checkpoint_in_it(extra, tmp_path, monkeypatch, capsys):
    """It asked for --data, then for --arch (a weight file 'run'), then said the folder was one and listed no file."""
    from neuroview.training import retrofit as rf

    monkeypatch.setattr(rf, "_prepare", lambda *a: pytest.fail("the folder was read as a weight file"))
    ckpt = _run_folder(tmp_path) / "checkpoints" / "last.ckpt"
    assert rf.main([str(tmp_path / "run"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("neuroview retrofit: source: ") and err.count("\n") == 1, err
    assert f"got {str(tmp_path / 'run')!r} (a folder, not a file; name the .ckpt file in it, e.g. {str(ckpt)!r})" in err


def test_retrofit_of_a_folder_of_weights_names_the_weight_file_in_it(tmp_path, monkeypatch, capsys):
    from neuroview.training import retrofit as rf

    monkeypatch.setattr(rf, "_prepare", lambda *a: pytest.fail("the folder was read as a weight file"))
    (tmp_path / "sp").mkdir()
    (tmp_path / "sp" / "small_cnn.mine.safetensors").write_bytes(b"")
    assert rf.main([str(tmp_path / "sp"), "--arch", "small_cnn", "--data", "digits"]) == 2
    err = capsys.readouterr().err
    assert f"name the .safetensors file in it, e.g. {str(tmp_path / 'sp' / 'small_cnn.mine.safetensors')!r}" in err, err
