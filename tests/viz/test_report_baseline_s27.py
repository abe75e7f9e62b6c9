"""``write_report`` names the baseline its numbers are taken against when the head's statistics never saw a training
batch (a linear probe: the head trained with the network in eval mode): ``baseline="auto"`` without ``gallery_data``
has no training mean to read, so it takes zero codes and says so in ``index.html`` and ``report.json``, as
``explain(baseline="mean")`` warns it does (probe s27 P5, finding 1: the page and report.json said "the training mean
code (the normalization's running estimate of it)", while the bias and k90 were those of zero codes).
The checks read the saved files against numbers worked out here from the network's own classifier.
"""

import html
import json
import warnings

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.viz.report_writer import write_report

SAID = "zero codes (the head's normalization statistics never saw a training batch"


def _probe():
    """A NeuroView-CNN whose head was trained in eval mode: its running mean is still all zero."""
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), 3, input_shape=(1, 10)).eval()
    x, y = torch.randn(12, 1, 10), torch.arange(12) % 3
    opt = torch.optim.SGD(net.classifier.parameters(), 0.5)
    for _ in range(5):
        loss = nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert int(net.norm.num_batches_tracked) == 0 and bool((net.norm.running_mean == 0).all())
    return net, x, y


def _read(out):
    page, meta = html.unescape((out / "index.html").read_text()), json.loads((out / "report.json").read_text())
    return page, meta, nv.Explanation.load(out / "explanation.safetensors")


@pytest.mark.parametrize("baseline", ["auto", "mean"])
def test_a_report_of_a_head_that_never_saw_a_batch_names_zero_codes(tmp_path, baseline):
    net, x, y = _probe()
    with pytest.warns(UserWarning, match=r"^baseline: .*never saw a training batch.*nv\.mean_codes"):
        write_report(net, x, y, tmp_path / "r", examples=0, progress=False, dpi=30, baseline=baseline)
    page, meta, exp = _read(tmp_path / "r")
    assert "training mean code" not in page and "running estimate" not in page
    assert f"Contributions are taken against {SAID}" in page
    assert meta["about"]["baseline"].startswith(SAID) if isinstance(meta.get("about"), dict) else \
        meta["baseline"].startswith(SAID)
    # what it says is what was done: the first bar is the classifier's own bias (the logit of zero codes)
    w, b = (t.detach() for t in net.effective_classifier())
    assert torch.equal(exp.bias, b)
    assert exp.baseline is None or bool((exp.baseline == 0).all())
    assert exp.residual().abs().max() < 1e-5
    codes = net.codes(x).detach()
    a = (codes * w[exp.predicted]).abs().sort(1, descending=True).values  # |contributions| against zero codes, by hand
    k90 = [int((a[i].cumsum(0) < 0.9 * a[i].sum()).sum()) + 1 for i in range(len(a))]
    assert f"comes from {float(torch.tensor(k90, dtype=torch.float).quantile(0.5)):g} units (median k90" in page


def test_a_report_with_gallery_data_still_takes_the_exact_training_mean(tmp_path):
    net, x, y = _probe()
    with warnings.catch_warnings():
        warnings.filterwarnings("error", "baseline")  # an exact mean needs no statistics: nothing to warn of
        write_report(net, x, y, tmp_path / "r", examples=0, progress=False, dpi=30, gallery_data=[(x, y)])
    page, meta, exp = _read(tmp_path / "r")
    assert "Contributions are taken against the training split's mean code" in page
    torch.testing.assert_close(exp.baseline, nv.mean_codes(net, [(x, y)]))


def test_a_report_of_a_trained_head_still_reads_its_running_estimate(tmp_path):
    net, x, y = _probe()
    net.train()
    net(x)  # one training batch: the head's statistics are now an estimate of the training mean
    net.eval()
    with warnings.catch_warnings():
        warnings.filterwarnings("error", "baseline")
        write_report(net, x, y, tmp_path / "r", examples=0, progress=False, dpi=30)
    page, _, exp = _read(tmp_path / "r")
    assert "Contributions are taken against the training mean code (the normalization's running estimate of it)" in page
    assert torch.equal(exp.baseline, net.norm.running_mean)


def test_an_ensemble_whose_members_trained_apart_names_the_members_read_as_zero_codes():
    from neuroview.viz.report_writer import _baseline

    torch.manual_seed(0)
    a, b = (nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), 3, input_shape=(1, 10)) for _ in range(2))
    a.train()
    a(torch.randn(8, 1, 10))  # member 0 saw a training batch, member 1 never did
    ens = nv.Ensemble([a.eval(), b.eval()])
    assert _baseline(ens, "auto", None) == (None, "zero codes")  # no global head: no statistics to read, as before
    base, words = _baseline(ens, "mean", None)
    assert base == "mean" and "zero codes for members 1," in words and "training mean codes" in words
    b.train()
    b(torch.randn(8, 1, 10))
    assert _baseline(ens, "mean", None) == ("mean", "the training mean code (the normalization's running estimate of it)")
