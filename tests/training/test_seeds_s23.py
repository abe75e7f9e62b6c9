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
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 8, 3), nn.ReLU(), nn.Dropout(0.3)), 2, input_shape=(1, 20)).eval()
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


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_finetune_sparse_on_a_gpu_leaves_every_gpu_generator_as_it_was(_sparse):
    sparse, x, y = _sparse
    before = torch.cuda.get_rng_state_all()
    a = nv.finetune_sparse(sparse, [(x, y)], epochs=1, seed=3)  # a CPU network on a GPU box
    assert all(torch.equal(s, t) for s, t in zip(before, torch.cuda.get_rng_state_all()))
    gpu = sparse.to("cuda")
    b, c = (nv.finetune_sparse(gpu, [(x.cuda(), y.cuda())], epochs=1, seed=3) for _ in range(2))
    assert all(torch.equal(s, t) for s, t in zip(before, torch.cuda.get_rng_state_all()))
    assert torch.equal(b.classifier.weight, c.classifier.weight) and a.finetuned["seed"] == 3


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


@pytest.mark.parametrize("seed", ["-1", str(2 ** 64)])
def test_sparsify_command_refuses_a_seed_out_of_range_before_reading_the_source(seed, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sparsify_cli, "_source", lambda *a: pytest.fail("the source was read before --seed was checked"))
    assert sparsify_cli.main(["nv_lite.gunpoint", "--seed", seed, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == (f"neuroview sparsify: seed: expected an int in [0, 2**64) (the folds' shuffle), got {seed} "
                   "(option --seed)\n")


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
