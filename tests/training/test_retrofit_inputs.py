"""`nv.retrofit` and `neuroview retrofit` on the inputs users hand them: batches read once (a generator,
`zip`, `iter(loader)`), one batch alone, an empty test loader, labels of every kind, a bare recurrent
layer, bad arguments and options; and the caller's RNG left as it was.

Every accuracy asserted is recomputed here from the returned network and the test tensors."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import neuroview as nv
from neuroview.training import retrofit as rf


def _standard(classes: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 5, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(5, classes)).eval()


def _data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, 1, 6, 6, generator=g), torch.randint(0, 3, (n,), generator=g)
    return x + 0.5 * y[:, None, None, None], y


def _split(x, y, size: int) -> list:
    return [(x[i:i + size], y[i:i + size]) for i in range(0, len(y), size)]


def _accuracy(model: nn.Module, x, y) -> float:
    with torch.no_grad():
        return (model(x).argmax(1) == y).double().mean().item()


X, Y = _data(90, 0)
XT, YT = _data(45, 1)
TRAIN = _split(X, Y, 16)


@pytest.mark.parametrize("once", [
    lambda b: (t for t in b),
    lambda b: zip([x for x, _ in b], [y for _, y in b]),
    lambda b: iter(DataLoader(TensorDataset(XT, YT), batch_size=16)),
], ids=["generator", "zip", "iter(loader)"])
def test_a_test_iterable_read_once_scores_both_networks_on_every_sample(once):
    """The standard network's pass used up a one-shot iterable: NeuroView was reported at 0.00%."""
    std = _standard()
    res = nv.retrofit(std, TRAIN, once(_split(XT, YT, 16)), num_classes=3)
    assert res.test_size == len(YT)
    assert res.standard_acc == pytest.approx(_accuracy(std, XT, YT))
    assert res.neuroview_acc == pytest.approx(_accuracy(res.model, XT, YT)) and res.neuroview_acc > 0.4


def test_one_batch_given_alone_is_one_batch_and_an_empty_test_loader_is_refused():
    std = _standard()
    alone = nv.retrofit(std, (X, Y), (XT, YT), num_classes=3)  # was iterated as two batches: x, then y
    listed = nv.retrofit(std, [(X, Y)], [(XT, YT)], num_classes=3)
    assert torch.equal(alone.model.classifier.weight, listed.model.classifier.weight)
    assert (alone.standard_acc, alone.neuroview_acc, alone.test_size) == (listed.standard_acc, listed.neuroview_acc, 45)
    for empty in ([], iter([])):  # was "standard 0.00%  NeuroView 0.00% ... (on 0 test samples)"
        with pytest.raises(ValueError, match="test: expected at least one batch, got an empty loader"):
            nv.retrofit(std, TRAIN, empty, num_classes=3)


@pytest.mark.parametrize("labels, message", [
    (lambda y: y + 1, r"train: labels must lie in \[0, 3\) \(the network's classes\), got \[1, 2, 3\]"),
    (lambda y: nn.functional.one_hot(y, 3), r"train: expected one class index per sample.*one-hot rows: pass y.argmax\(1\)"),
    (lambda y: y.float() + 0.5, "train: expected integer class labels"),
    (lambda y: torch.zeros_like(y), r"train: expected samples of at least 2 classes, got only class \[0\]"),
])
def test_training_labels_are_checked_by_name(labels, message):
    with pytest.raises(ValueError, match=message):
        nv.retrofit(_standard(), [(X, labels(Y))], num_classes=3)


def test_labels_stored_as_whole_floats_pass_and_test_labels_are_checked_too():
    std = _standard()
    as_float = nv.retrofit(std, [(X, Y.float())], [(XT, YT.double())], num_classes=3)
    as_long = nv.retrofit(std, [(X, Y)], [(XT, YT)], num_classes=3)
    assert torch.equal(as_float.model.classifier.weight, as_long.model.classifier.weight)
    assert as_float.neuroview_acc == as_long.neuroview_acc
    with pytest.raises(ValueError, match=r"test: labels must lie in \[0, 3\)"):
        nv.retrofit(std, TRAIN, [(XT, YT + 3)], num_classes=3)
    with pytest.raises(ValueError, match="train: expected batches .* with labels, got bare inputs"):
        nv.retrofit(std, [X], num_classes=3)


def test_the_callers_rng_is_left_as_it_was_and_a_shuffling_loader_is_seeded():
    """retrofit called torch.manual_seed(seed) on the global generator: every later draw of the caller changed."""
    std = _standard()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    nv.retrofit(std, TRAIN, num_classes=3, seed=7)
    assert torch.equal(torch.rand(3), expected)
    shuffled = DataLoader(TensorDataset(X, Y), batch_size=16, shuffle=True)
    a, b = (nv.retrofit(_standard(), shuffled, num_classes=3, seed=1) for _ in range(2))
    assert torch.equal(a.model.classifier.weight, b.model.classifier.weight)


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": 2.5}, "epochs: expected a positive int, got 2.5"),
    ({"epochs": 0}, "epochs: expected a positive int, got 0"),
    ({"weight_decay": -1}, r"weight_decay: expected a finite number >= 0 .* got -1"),
    ({"weight_decay": float("nan")}, "weight_decay: expected a finite number >= 0"),
    ({"seed": -1}, r"seed: expected an int in \[0, 2\*\*64\) \(the global generator's seed while the batches are read\), got -1"),
    ({"max_len": 5}, "max_len: applies to RNNs only"),  # was ignored for a CNN
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        nv.retrofit(_standard(), TRAIN, num_classes=3, **kwargs)


def test_the_adamw_settings_warn_that_they_are_no_longer_used():
    with pytest.warns(FutureWarning, match=r"lr, batch_size: no longer used"):
        nv.retrofit(_standard(), TRAIN, num_classes=3, lr=1e-2, batch_size=0)


def test_a_bare_recurrent_layer_is_scored_without_a_standard_accuracy():
    """A bare nn.GRU with test data: a bare 'input.size(-1) must be equal to input_size' error."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 2, 7, generator=g), torch.randint(0, 3, (40,), generator=g)
    torch.manual_seed(0)
    res = nv.retrofit(nn.GRU(2, 5, batch_first=True), [(x, y)], [(x, y)], num_classes=3, max_len=7)
    with torch.no_grad():
        expected = (res.model(x.transpose(1, 2)).argmax(1) == y).double().mean().item()
    assert res.standard_acc is None and res.cost is None and res.test_size == 40
    assert res.neuroview_acc == pytest.approx(expected)
    assert "no classifier of its own" in str(res)


# ---------------------------------------------------------------------------- the command
@pytest.fixture
def three_classes(tmp_path):
    rng = np.random.RandomState(0)
    x, y = rng.randn(120, 1, 8, 8).astype(np.float32), rng.randint(0, 3, 120)
    np.savez(tmp_path / "three.npz", X=x + y[:, None, None, None], y=y)
    spec = json.dumps({"class_path": "neuroview.data.NpzDataModule", "init_args": {"path": str(tmp_path / "three.npz")}})
    weights = {}
    for n in (2, 3):
        weights[n] = tmp_path / f"w{n}.safetensors"
        save_file(nv.create_model("small_cnn", num_classes=n, widths=(4, 8)).state_dict(), weights[n])
    return spec, weights


def _cli(capsys, *args) -> tuple[int, str]:
    rc = rf.main([str(a) for a in args])
    return rc, capsys.readouterr().err.strip()


def test_the_command_refuses_bad_options_in_one_line_before_any_fit(three_classes, capsys, monkeypatch):
    spec, weights = three_classes
    monkeypatch.setattr(rf, "retrofit", lambda *a, **k: pytest.fail("retrofit ran"))
    arch = lambda n: ["--arch", "small_cnn", "--arch-kwargs", json.dumps({"num_classes": n, "widths": [4, 8]})]
    cases = [  # 2-class weights on 3-class data: was "IndexError: Target 2 is out of bounds" after a traceback, exit 1
        ([weights[2], *arch(2), "--data", spec], "--data: its labels name 3 classes, the network's classifier 2"),
        ([weights[3], "--arch", "small_cnn", "--arch-kwargs", '{"widths": [4, 8]', "--data", spec],
         "--arch-kwargs: expected a JSON object"),  # was the JSON parser's message alone
        ([weights[3], *arch(3), "--data", spec, "--max-len", "5"], "--max-len: applies to RNNs only"),  # was ignored
    ]
    for args, message in cases:
        rc, err = _cli(capsys, *args)
        assert rc == 2 and message in err and len(err.splitlines()) == 1, err


def test_the_command_fits_and_reports(three_classes, capsys):
    spec, weights = three_classes
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # converged within the default budget: no warning
        assert rf.main([str(weights[3]), "--arch", "small_cnn", "--arch-kwargs", '{"num_classes": 3, "widths": [4, 8]}',
                        "--data", spec]) == 0
    assert "cost of the explanation" in capsys.readouterr().out
