"""Review s24 of the gallery: a CNN (and an Ensemble of CNNs) made under ``torch.inference_mode()`` gets the windows of
the same model built normally (the window pass ran autograd through its inference tensors: "Inference tensors cannot
be saved for backward"); a gallery pickled by the version before 5e5413d, whose ``x`` sat in the instance's
``__dict__`` under its own name, loads and reads as before (a bare ``KeyError: '_x'`` on ``g.x`` and ``g.sample``).
"""

import dataclasses
import io
import pickle
import warnings

import matplotlib
import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.attribution.gallery import UnitGallery

matplotlib.use("Agg")


def _cnn():
    return nn.Sequential(nn.Conv1d(1, 8, 3, padding=1), nn.BatchNorm1d(8), nn.ReLU(), nn.Conv1d(8, 8, 3, padding=1),
                         nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(8, 2)).eval()


def _pair(seed):
    """The same CNN built normally and under inference_mode (its parameters and buffers inference tensors)."""
    torch.manual_seed(seed)
    plain = _cnn()
    torch.manual_seed(seed)
    with torch.inference_mode():
        made = _cnn()
    assert all(t.is_inference() for t in [*made.parameters(), *made.buffers()])
    return plain, made


def _wrap(cnn, x):
    torch.manual_seed(5)  # the head's initial weights: the same for both
    return nv.NeuroViewCNN(cnn, 2, example_input=x).eval()


def _same(a, b):
    for f in ("index", "value", "window", "position", "heat", "x"):
        assert torch.equal(getattr(a, f), getattr(b, f)), f


@pytest.mark.parametrize("mode", ["grad", "inference_mode"])
def test_unit_gallery_of_a_cnn_made_under_inference_mode_equals_the_normal_ones(mode):
    x, y = torch.randn(12, 1, 32), torch.randint(0, 2, (12,))
    plain, made = _pair(0)
    reference, net = _wrap(plain, x), _wrap(made, x)
    want = nv.unit_gallery(reference, [(x, y)], units=[0, 3, 9], k=3)
    with torch.inference_mode() if mode == "inference_mode" else torch.enable_grad():
        got = nv.unit_gallery(net, [(x, y)], units=[0, 3, 9], k=3)  # was RuntimeError: Inference tensors cannot be saved
    _same(got, want)
    # a 3-tap convolution then another: a unit of the second site reads at most 5 samples (not the whole input)
    assert int((got.window[..., 1] - got.window[..., 0]).max()) == 5
    assert all(p.is_inference() for p in made.parameters())  # the user's tensors are back in place
    assert all(p is q for p, q in zip(net.backbone.parameters(), made.parameters()))


def test_unit_gallery_of_an_ensemble_of_such_cnns_equals_the_normal_ones():
    x, y = torch.randn(12, 1, 32), torch.randint(0, 2, (12,))
    (p1, m1), (p2, m2) = _pair(1), _pair(2)
    reference = nv.Ensemble([_wrap(p1, x), _wrap(p2, x)]).eval()
    ens = nv.Ensemble([_wrap(m1, x), _wrap(m2, x)]).eval()
    want = nv.unit_gallery(reference, [(x, y)], units=[0, 20], k=2)
    got = nv.unit_gallery(ens, [(x, y)], units=[0, 20], k=2)  # was RuntimeError: Inference tensors ...
    _same(got, want)


# ------------------------------------------------------------------ a gallery pickled by the version before 5e5413d
def _old_pickle(g: UnitGallery) -> bytes:
    """The bytes the previous UnitGallery (a plain dataclass, every field in ``__dict__`` under its own name, ``x`` the
    formed tensor ``[n, k, C, *spatial]``) pickled to: an object of the class with that state."""
    state = {f.name: getattr(g, f.name) for f in dataclasses.fields(g)}
    state["x"] = state["x"].clone()
    old = object.__new__(UnitGallery)
    old.__dict__.update(state)  # written past the class, as pickle's BUILD of the old layout does
    assert sorted(vars(old)) == sorted(state) and isinstance(vars(old)["x"], torch.Tensor)
    return pickle.dumps(old)


def _galleries():
    torch.manual_seed(0)
    rnn = nv.NeuroViewRNN(nn.GRU(1, 8), 3, max_len=20).eval()
    x, y = torch.randn(12, 1, 20), torch.randint(0, 3, (12,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g_rnn = nv.unit_gallery(rnn, [(x, y)], units=[0, 5, 19], k=3)
    xc = torch.randn(12, 1, 32)
    g_cnn = nv.unit_gallery(_wrap(_pair(0)[0], xc), [(xc, y % 2)], units=[0, 3], k=2)
    return {"rnn": g_rnn, "cnn": g_cnn}


@pytest.mark.parametrize("kind", ["rnn", "cnn"])
@pytest.mark.parametrize("load", ["pickle", "torch"])
def test_a_gallery_pickled_by_the_previous_version_loads_and_reads_as_before(kind, load):
    from neuroview.viz.gallery import unit_gallery_plot

    g = _galleries()[kind]
    want = g.x.clone()
    raw = _old_pickle(g)
    if load == "pickle":
        back = pickle.loads(raw)
    else:
        buf = io.BytesIO()
        torch.save(pickle.loads(raw), buf)  # torch.save of the object as unpickled, then loaded back
        back = torch.load(io.BytesIO(buf.getvalue()), weights_only=False)
    assert torch.equal(back.x, want)  # was KeyError: '_x'
    assert torch.equal(back.sample(1, 1), want[1, 1])
    assert torch.equal(back.window, g.window)
    fig = unit_gallery_plot(back)
    assert len(fig.axes) > 0
    # and it pickles again, the same
    assert torch.equal(pickle.loads(pickle.dumps(back)).x, want)
