"""The zoo: every registered architecture, every trained checkpoint, tampering, retrofit.

- Every registry entry builds with its defaults, runs forward and backward, round-trips its
  state dict through safetensors, and explains exactly (a standard network through its
  NeuroView wrap).
- Every manifest entry: the file's sha256, size and parameter count match the manifest, the
  weights load into the architecture, and the accuracy on the first ``slice_size`` test
  samples equals the recorded ``slice_acc`` within one sample (tolerance: another BLAS may
  flip one borderline prediction; the weights and data are otherwise fixed).
- A wrong hash, the wrong architecture or a missing file gives a clear error and leaves every
  file's bytes as they were. These tests work on copies under ``tmp_path``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

import neuroview as nv
from neuroview.zoo import pretrained as zoo
from neuroview.training.retrofit import RetrofitResult, retrofit

REPO = Path(__file__).resolve().parents[2]
ENTRIES = zoo.read_manifest(REPO / "checkpoints")
RNN_KINDS = ("rnn", "lstm", "gru")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # On a busy shared CPU, torch's intra-op threads wait on each other: the small fit of the
    # retrofit test takes 2 s with one thread and 100 s with two.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ------------------------------------------------------------------ every architecture
def _is_rnn(name: str) -> bool:
    return name.removeprefix("nv_") in RNN_KINDS


def _build(name: str) -> tuple[nn.Module, tuple]:
    """The architecture with its defaults and a small input of the shape it reads."""
    if _is_rnn(name):
        kw = {"in_features": 3, "num_classes": 4} | ({"max_len": 12} if name.startswith("nv_") else {})
        return nv.create_model(name, **kw), (torch.randn(4, 12, 3), torch.tensor([12, 9, 5, 1]))
    if name.removeprefix("nv_") == "minirocket":  # its dilations come from the length; its biases from data
        net = nv.create_model(name, num_classes=4, max_len=32, num_features=168)
        (net.backbone if isinstance(net, nv.NeuroViewCNN) else net).fit(torch.randn(8, 1, 32))
        return net, (torch.randn(4, 1, 32),)
    net = nv.create_model(name, num_classes=4)
    base = net.backbone if isinstance(net, nv.NeuroViewCNN) else net
    first = next(m for m in base.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d)))
    spatial = (32,) if isinstance(first, nn.Conv1d) else (16, 16)
    return net, (torch.randn(4, first.in_channels, *spatial),)


def _call(net: nn.Module, inputs: tuple) -> torch.Tensor:
    return net(inputs[0], lengths=inputs[1]) if len(inputs) == 2 else net(inputs[0])


def _explainable(name: str, net: nn.Module) -> nn.Module:
    """The NeuroView network itself, or the standard one wrapped as a user would."""
    if name.startswith("nv_"):
        return net
    if _is_rnn(name):
        return nv.wrap(net.rnn, 4, max_len=12)
    if name == "minirocket":  # a functional convolution makes its sites' inputs: no layer tells the axis
        return nv.wrap(net, 4, unit_axis={"act": 1})
    return nv.wrap(net, 4)


def test_registry_has_the_issue_architectures():
    names = nv.list_models()
    for arch in ("small_cnn", "vgg_cnn", "resnet18_cifar", "fcn1d", "resnet1d", *RNN_KINDS):
        assert arch in names and f"nv_{arch}" in names
    assert nv.list_models("nv_*") == [n for n in names if n.startswith("nv_")]


def test_registry_refuses_duplicates_and_unknown_names():
    def small_cnn(**kwargs):  # the name of an existing entry
        raise AssertionError("never built")

    with pytest.raises(ValueError, match="register_model: a model named 'small_cnn' is already registered"):
        nv.register_model(small_cnn)
    assert nv.create_model("small_cnn", widths=[8]).fc.in_features == 8
    with pytest.raises(ValueError, match=r"name: unknown model 'smal_cnn'.*small_cnn"):
        nv.create_model("smal_cnn")


@pytest.mark.parametrize("name", nv.list_models())
def test_every_architecture(name):
    torch.manual_seed(0)
    net, inputs = _build(name)
    net.train()
    out = _call(net, inputs)
    assert out.shape == (4, 4) and torch.isfinite(out).all()
    out.logsumexp(-1).sum().backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad and p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)

    # state dict through safetensors bytes into a freshly initialized twin: same function
    torch.manual_seed(1)
    twin, _ = _build(name)
    twin.load_state_dict(st_load(st_save({k: v.contiguous() for k, v in net.state_dict().items()})))
    net.eval(), twin.eval()
    with torch.no_grad():
        torch.testing.assert_close(_call(twin, inputs), _call(net, inputs))

    # explain is exact: bias + the sum of contributions is the logit, and the logit is forward's
    ex_net = _explainable(name, net).eval()
    exp = ex_net.explain(*inputs) if len(inputs) == 1 else ex_net.explain(inputs[0], lengths=inputs[1])
    with torch.no_grad():
        torch.testing.assert_close(exp.logits, _call(ex_net, inputs), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(exp.contributions.flatten(2).sum(-1) + exp.bias, exp.logits, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", RNN_KINDS)
@pytest.mark.parametrize("num_layers,bidirectional", [(2, False), (3, True)])
def test_rnn_depths_and_directions(kind, num_layers, bidirectional):
    kw = dict(in_features=3, num_classes=4, hidden_size=8, num_layers=num_layers, bidirectional=bidirectional)
    x, lengths = torch.randn(4, 12, 3), torch.tensor([12, 9, 5, 1])
    std = nv.create_model(kind, **kw).eval()
    net = nv.create_model(f"nv_{kind}", max_len=12, **kw).eval()
    assert std(x, lengths=lengths).shape == (4, 4)
    assert net.feature_shape == (num_layers, 1 + bidirectional, 12, 8)
    exp = net.explain(x, lengths=lengths)
    torch.testing.assert_close(exp.contributions.flatten(2).sum(-1) + exp.bias, net(x, lengths=lengths), rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------ every checkpoint
needs_entries = pytest.mark.skipif(not ENTRIES, reason="no trained entries in checkpoints/manifest.json")


@needs_entries
def test_manifest_sizes_and_fields():
    total = 0
    for name, e in ENTRIES.items():
        for key in ("architecture", "arch_kwargs", "file", "sha256", "num_params", "dataset", "recipe", "seed", "metrics", "versions"):
            assert key in e, f"{name}: manifest entry lacks {key!r}"
        assert name.split(".", 1)[0] == e["architecture"]
        assert (REPO / e["recipe"]).is_file(), f"{name}: recipe {e['recipe']} is missing"
        size = (REPO / "checkpoints" / e["file"]).stat().st_size
        assert size == e["size_bytes"] and size < 5e6, f"{name}: {size} bytes"
        total += size
        assert 0.0 <= e["metrics"]["test_acc"] <= 1.0 and {"torch", "neuroview"} <= set(e["versions"])
    assert total < 30e6
    assert nv.list_models(pretrained=True) == sorted(ENTRIES)


def _dataset_available(entry: dict) -> None:
    cls = entry["dataset"]["data_module"]["class_path"]
    if cls.endswith("UCRDataModule"):
        pytest.importorskip("aeon")
    if cls.endswith("MNIST1DDataModule"):
        pytest.importorskip("mnist1d")


@needs_entries
@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_every_checkpoint(name):
    e = ENTRIES[name]
    path = REPO / "checkpoints" / e["file"]
    assert zoo.sha256_file(path) == e["sha256"]
    built = zoo._build(e["architecture"], e["arch_kwargs"])
    net = nv.create_model(name, pretrained=True)  # a NeuroView-CNN's head takes its size from the checkpoint
    assert zoo.count_params(net) == e["num_params"]
    assert type(net) is type(built) and not net.training
    assert net.pretrained_cfg["sha256"] == e["sha256"]

    _dataset_available(e)
    dm = zoo.make_datamodule(e["dataset"]["data_module"])
    dm.setup("test")
    n = e["metrics"]["slice_size"]
    correct, total = zoo.evaluate(net, dm.test_dataloader(), limit=n)
    assert total == n
    assert abs(correct / n - e["metrics"]["slice_acc"]) <= 1 / n + 1e-9, (correct / n, e["metrics"]["slice_acc"])


# ------------------------------------------------------------------ tampering (on copies)
def _tiny_zoo(root: Path) -> dict[str, Path]:
    """Two entries of different architectures in ``root``; returns their weight files."""
    ds = {"name": "none", "data_module": {"class_path": "neuroview.data.DigitsDataModule", "init_args": {}}}
    out = {}
    for arch, kw in (("small_cnn", {"widths": [8, 16]}), ("nv_small_cnn", {"widths": [8, 16]})):
        torch.manual_seed(0)
        net = nv.create_model(arch, **kw)
        zoo.save_pretrained(net, f"{arch}.tiny", architecture=arch, arch_kwargs=kw, dataset=ds, recipe=None, seed=0,
                            metrics={"test_acc": 0.5}, root=root)
        out[arch] = root / f"{arch}.tiny.safetensors"
    return out


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.iterdir())}


def test_save_and_load_round_trip(tmp_path):
    files = _tiny_zoo(tmp_path)
    assert zoo.list_pretrained(root=tmp_path) == ["nv_small_cnn.tiny", "small_cnn.tiny"]
    net = zoo.load_pretrained("small_cnn.tiny", root=tmp_path)
    torch.manual_seed(0)
    ref = nv.create_model("small_cnn", widths=[8, 16])
    for (k, a), b in zip(net.state_dict().items(), ref.state_dict().values()):
        assert torch.equal(a, b), k
    manifest = json.loads((tmp_path / "manifest.json").read_text())["entries"]
    assert manifest["small_cnn.tiny"]["sha256"] == hashlib.sha256(files["small_cnn"].read_bytes()).hexdigest()
    # a bare architecture name resolves to its only entry; kwargs must agree with the checkpoint's
    assert zoo.get_entry("small_cnn", tmp_path)[0] == "small_cnn.tiny"
    with pytest.raises(ValueError, match=r"kwargs: 'small_cnn.tiny' was trained with fixed arguments; got num_classes=5"):
        zoo.load_pretrained("small_cnn.tiny", root=tmp_path, num_classes=5)
    assert zoo.load_pretrained("small_cnn.tiny", root=tmp_path, widths=(8, 16)).fc.in_features == 16


def test_wrong_hash_is_refused_and_nothing_changes(tmp_path):
    files = _tiny_zoo(tmp_path)
    data = bytearray(files["small_cnn"].read_bytes())
    data[-1] ^= 0xFF  # one flipped bit pattern in the last tensor value
    files["small_cnn"].write_bytes(bytes(data))
    before = _snapshot(tmp_path)
    with pytest.raises(zoo.ChecksumError, match=r"small_cnn.tiny: sha256 of small_cnn.tiny.safetensors is .* the manifest expects"):
        zoo.load_pretrained("small_cnn.tiny", root=tmp_path)
    assert _snapshot(tmp_path) == before


def test_wrong_architecture_is_refused_and_nothing_changes(tmp_path):
    files = _tiny_zoo(tmp_path)
    # the NeuroView file put in place of the standard one, with the manifest's hash updated to match
    shutil.copyfile(files["nv_small_cnn"], files["small_cnn"])
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["entries"]["small_cnn.tiny"]["sha256"] = zoo.sha256_file(files["small_cnn"])
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    before = _snapshot(tmp_path)
    with pytest.raises(zoo.ArchitectureError, match="the file holds a 'nv_small_cnn', the manifest says 'small_cnn'"):
        zoo.load_pretrained("small_cnn.tiny", root=tmp_path)
    # the same file without its self-description: the tensor check catches it
    bare = tmp_path / "bare.safetensors"
    bare.write_bytes(st_save(st_load(files["nv_small_cnn"].read_bytes())))
    target = nv.create_model("small_cnn", widths=[8, 16])
    state = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(zoo.ArchitectureError, match=r"path: the weights do not fit a SmallCNN: \d+ tensors missing"):
        zoo.load_weights(target, bare)
    assert all(torch.equal(v, target.state_dict()[k]) for k, v in state.items()), "a refused load changed the model"
    bare.unlink()
    assert _snapshot(tmp_path) == before
    # asking for one architecture under another's entry name
    with pytest.raises(zoo.ArchitectureError, match="asks for architecture 'small_cnn', but the manifest's entry is a 'nv_small_cnn'"):
        manifest["entries"]["small_cnn.tiny"]["architecture"] = "nv_small_cnn"
        (tmp_path / "manifest.json").write_text(json.dumps(manifest))
        zoo.load_pretrained("small_cnn.tiny", root=tmp_path)


def test_missing_file_is_a_clear_error(tmp_path):
    files = _tiny_zoo(tmp_path)
    files["small_cnn"].unlink()
    before = _snapshot(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"small_cnn.tiny: weight file .*small_cnn.tiny.safetensors' is missing"):
        nv.create_model("small_cnn.tiny", pretrained=True, root=tmp_path)
    with pytest.raises(ValueError, match=r"name: no trained entry 'vgg_cnn.tiny'"):
        zoo.load_pretrained("vgg_cnn.tiny", root=tmp_path)
    assert _snapshot(tmp_path) == before


@needs_entries
def test_tampered_copy_of_a_real_checkpoint(tmp_path):
    name = sorted(ENTRIES)[0]
    src = REPO / "checkpoints"
    originals = {p.name: p.read_bytes() for p in src.iterdir() if p.is_file()}
    dst = tmp_path / "checkpoints"
    shutil.copytree(src, dst)
    f = dst / ENTRIES[name]["file"]
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0x01
    f.write_bytes(bytes(data))
    with pytest.raises(zoo.ChecksumError):
        nv.create_model(name, pretrained=True, root=dst)
    assert bytes(data) == f.read_bytes()
    assert {p.name: p.read_bytes() for p in src.iterdir() if p.is_file()} == originals


def test_save_refuses_entries_that_cannot_rebuild_themselves(tmp_path):
    net = nv.create_model("small_cnn", widths=[8, 16])
    ds = {"name": "none"}
    with pytest.raises(ValueError, match=r"name: expected 'small_cnn.<tag>'"):
        zoo.save_pretrained(net, "small_cnn", architecture="small_cnn", arch_kwargs={"widths": [8, 16]}, dataset=ds,
                            recipe=None, seed=0, metrics={}, root=tmp_path)
    with pytest.raises(zoo.ArchitectureError, match="model: the weights do not fit a SmallCNN"):
        zoo.save_pretrained(net, "small_cnn.x", architecture="small_cnn", arch_kwargs={"widths": [8, 32]}, dataset=ds,
                            recipe=None, seed=0, metrics={}, root=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_make_datamodule_builds_only_neuroview_data_modules():
    with pytest.raises(ValueError, match=r"dataset: expected a data module of neuroview.data .* got 'os.system'"):
        zoo.make_datamodule({"class_path": "os.system", "init_args": {}})


def test_zoo_cli_lists_entries(tmp_path, capsys):
    _tiny_zoo(tmp_path)
    from neuroview.cli import main

    assert main(["zoo", "--root", str(tmp_path), "--verify"]) == 0
    out = capsys.readouterr().out
    assert "small_cnn.tiny" in out and "nv_small_cnn.tiny" in out and "verified 2/2" in out
    assert main(["zoo", "--root", str(tmp_path), "--architectures", "nv_*"]) == 0
    assert "nv_gru" in capsys.readouterr().out


def test_zoo_verify_that_verifies_nothing_fails(tmp_path, capsys):
    """A --verify over no entry (a typo in --root, a pattern that matches nothing) exited 0 like one that
    verified everything; a listing of an empty folder still succeeds."""
    from neuroview.cli import main

    assert main(["zoo", "--root", str(tmp_path / "typo"), "--verify"]) == 2  # a refused input
    assert "root: expected a checkpoint folder, got" in capsys.readouterr().err
    assert main(["zoo", "--root", str(tmp_path / "typo")]) == 2
    assert main(["zoo", "--root", str(tmp_path)]) == 0  # an existing folder with no manifest yet: no entries
    assert main(["zoo", "--root", str(tmp_path), "--verify"]) == 1
    assert "no trained entries in" in capsys.readouterr().err
    _tiny_zoo(tmp_path)
    assert main(["zoo", "--root", str(tmp_path), "--verify", "nothing*"]) == 1


# ---------------------------------------------------------------------------- retrofit
def _digits(n_train: int = 600):
    from neuroview.training.demo import load_digits_tensors

    x_tr, y_tr, x_te, y_te = load_digits_tensors(0)
    return (x_tr[:n_train], y_tr[:n_train]), (x_te, y_te)


def test_retrofit_cnn_freezes_the_backbone_and_reports_the_cost():
    from neuroview.training.demo import train

    (x, y), (xt, yt) = _digits()
    torch.manual_seed(0)
    std = train(nv.create_model("small_cnn", widths=[8, 16]), x, y, epochs=20)
    before = {k: v.clone() for k, v in std.state_dict().items()}
    res = retrofit(std, [(x[i:i + 100], y[i:i + 100]) for i in range(0, len(y), 100)], [(xt, yt)], epochs=60)
    assert isinstance(res, RetrofitResult) and isinstance(res.model, nv.NeuroViewCNN)
    assert res.standard_acc > 0.7 and res.neuroview_acc > 0.7, str(res)
    assert res.cost == pytest.approx(100 * (res.standard_acc - res.neuroview_acc))
    assert "cost of the explanation" in str(res)
    # the caller's network is untouched, the wrapped copy frozen with the same weights
    assert all(torch.equal(v, std.state_dict()[k]) for k, v in before.items())
    assert all(p.requires_grad for p in std.parameters())
    assert not any(p.requires_grad for p in res.model.backbone.parameters())
    for k, v in before.items():
        assert torch.equal(res.model.backbone.state_dict()[k], v)
    exp = res.model.explain(xt[:8])
    torch.testing.assert_close(exp.contributions.sum(-1) + exp.bias, res.model(xt[:8]), rtol=1e-4, atol=1e-4)


def test_retrofit_rnn_needs_max_len_and_reads_sequences():
    torch.manual_seed(0)
    std = nv.create_model("gru", in_features=2, num_classes=3, hidden_size=8)
    x, lengths, y = torch.randn(30, 2, 10), torch.randint(3, 11, (30,)), torch.randint(0, 3, (30,))
    with pytest.raises(ValueError, match="max_len: an RNN's NeuroView classifier reads a fixed number of steps"):
        retrofit(std, [(x, lengths, y)])
    res = retrofit(std, [(x, lengths, y)], [(x, lengths, y)], max_len=10, epochs=50)
    assert isinstance(res.model, nv.NeuroViewRNN) and res.model.max_len == 10
    assert res.train_acc > 0.6  # 30 samples, 240 features: the classifier can fit them
    windowed = nv.create_model("gru", in_features=2, num_classes=3, hidden_size=8, max_len=10, window=2)
    res = retrofit(windowed, [(x, lengths, y)], [(x, lengths, y)], max_len=10, epochs=5)
    assert (res.model.window, res.model.steps, res.model.input_size) == (2, 5, 2)


def test_retrofit_refuses_a_neuroview_network():
    with pytest.raises(TypeError, match="model: already a NeuroViewCNN; retrofit takes the standard network"):
        retrofit(nv.create_model("nv_small_cnn", widths=[8]), [])


@needs_entries
def test_retrofit_cli_on_a_zoo_entry(capsys):
    names = [n for n in ENTRIES if n == "small_cnn.digits"]
    if not names:
        pytest.skip("no small_cnn.digits entry")
    from neuroview.cli import main

    assert main(["retrofit", "small_cnn.digits", "--epochs", "30"]) == 0
    out = capsys.readouterr().out
    assert "retrofit of small_cnn.digits: standard" in out and "cost of the explanation" in out


def test_retrofit_cli_never_writes_over_a_file_unasked(tmp_path, capsys):
    """--out that exists (the user's own weights, even the source itself) was overwritten by save_file."""
    from safetensors.torch import load_file, save_file

    from neuroview.cli import main

    src = tmp_path / "mine.safetensors"
    save_file({k: v.contiguous() for k, v in nv.create_model("small_cnn", widths=[8, 16]).state_dict().items()}, str(src))
    before = src.read_bytes()
    args = ["retrofit", str(src), "--arch", "small_cnn", "--arch-kwargs", '{"widths": [8, 16]}', "--data", "digits",
            "--epochs", "1", "--out", str(src)]
    assert main(args) == 2
    assert f"out: {src} exists; pick another path or pass --overwrite" in capsys.readouterr().err
    assert src.read_bytes() == before
    new = tmp_path / "nv.safetensors"
    assert main(args[:-1] + [str(new), "--quantizer", "soft"]) == 0
    assert "classifier.weight" in load_file(str(new))  # the NeuroView network's weights, written whole
    # it says how to rebuild it, so that `explain --model nv_small_cnn --weights` explains this network (it
    # built the default quantizer, and explained another function than the one retrofitted)
    from argparse import Namespace

    from neuroview.viz.report import resolve_model

    model, _, _ = resolve_model(Namespace(model="nv_small_cnn", weights=str(new), model_args=None, ckpt=None, zoo=None))
    assert model.quantizer == "soft"  # widths [8, 16] too: the weights loaded strictly into it
    with pytest.raises(ValueError, match=r"--model-args: nv.safetensors was built with other arguments: quantizer='hard' \(the weights: 'soft'\)"):
        resolve_model(Namespace(model="nv_small_cnn", weights=str(new), model_args='{"quantizer": "hard"}', ckpt=None, zoo=None))
    with pytest.raises(ValueError, match=r"--model: nv.safetensors holds a 'nv_small_cnn', not a 'nv_lite'"):
        resolve_model(Namespace(model="nv_lite", weights=str(new), model_args=None, ckpt=None, zoo=None))
    # --out that is not a .safetensors file, or a folder: refused before the fit (a .pt name held safetensors bytes,
    # which torch.load then refused, suggesting weights_only=False; a folder failed after the fit)
    for bad in (tmp_path / "nv.pt", tmp_path):
        assert main(args[:-1] + [str(bad)]) == 2
        assert "expected a .safetensors path" in capsys.readouterr().err


def test_retrofit_on_a_data_module_reads_its_whole_training_split():
    """The shuffled training loader drops the last partial batch: the head's statistics (and its fit) missed
    15 of digits' 1,295 training samples, and a run's figures moved with the global RNG."""
    from neuroview.data import DigitsDataModule
    from neuroview.training.retrofit import retrofit

    dm = DigitsDataModule(batch_size=64)
    torch.manual_seed(0)
    res = retrofit(nv.create_model("small_cnn", widths=[4, 8]), dm, dm, epochs=1)
    x_train = torch.cat([x for x, _ in dm._loader("train")])  # every training sample, as the model reads it
    assert len(x_train) == dm.split_sizes()["train"] and len(x_train) % 64 != 0  # a partial last batch to lose
    with torch.no_grad():
        codes = res.model.codes(x_train)
    torch.testing.assert_close(res.model.norm.running_mean, codes.mean(0), rtol=0, atol=1e-6)
