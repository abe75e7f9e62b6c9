"""Follow-ups of s18's fixers to the report and its galleries.

1. (M1) A received report folder whose set-aside folder's moves list names files outside it is refused by ``_io``
   (``_io.Received``); ``write_report(out_dir=D)`` and ``neuroview explain --out D`` printed that refusal without
   naming the argument. It now reads ``out_dir (--out): folder 'D': ...``; nothing is touched.
2. (M4) ``plots.waterfall`` draws a padded RNN series' padding as one bar ("padding, steps a-b"), but the public
   ``waterfall_units`` picked among single steps: padded steps (the ``-W baseline`` constant, no face) took the k
   slots and real steps that the waterfall draws were left without a gallery row. It now folds the padding as the
   waterfall does (``core.readable_items.fold_padding``) and leaves the folded item out.
"""

from __future__ import annotations

import json
import os

import matplotlib

matplotlib.use("Agg")  # before anything imports pyplot

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import neuroview as nv  # noqa: E402
from neuroview import _io  # noqa: E402
from neuroview.attribution.gallery import waterfall_units  # noqa: E402
from neuroview.core.explanation import RNNExplanation  # noqa: E402
from neuroview.viz import report as report_cli  # noqa: E402
from neuroview.viz.decision import bar_units  # noqa: E402
from neuroview.viz.report import write_report  # noqa: E402


def _tree(root) -> dict:
    """Every file under ``root`` with its content: what a refusal must leave as it was."""
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            out[os.path.relpath(p, root)] = None if os.path.isdir(p) else open(p, "rb").read()
    return out


def _received_report(tmp_path):
    """A received report ``tmp_path/rep`` whose set-aside folder's moves list names ``../paper.docx`` (beside it)."""
    rep = tmp_path / "rep"
    rep.mkdir()
    (rep / "index.html").write_text("<html>old report</html>")
    (tmp_path / "paper.docx").write_text("my paper\n")
    old = rep / ".neuroview-old.x.tmp"
    old.mkdir()
    (old / _io.MOVES).write_text(json.dumps({"stage": ".neuroview-stage.x.tmp", "names": ["../paper.docx"]}))
    return rep


def _net():
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()), 3, input_shape=(1, 8, 8)).eval()
    return net, torch.rand(6, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])


@pytest.mark.parametrize("overwrite", [True, False])
def test_write_report_into_a_received_folder_names_out_dir(tmp_path, overwrite):
    rep = _received_report(tmp_path)
    before = _tree(tmp_path)
    net, x, y = _net()
    with pytest.raises(ValueError) as caught:
        write_report(net, x, y, rep, examples=1, progress=False, dpi=30, overwrite=overwrite)
    msg = str(caught.value)
    assert isinstance(caught.value, _io.Received)
    assert msg.startswith(f"out_dir (--out): folder {str(rep.resolve())!r}: "), msg
    assert "'../paper.docx'" in msg and "nothing was moved" in msg, msg
    assert _tree(tmp_path) == before


def test_explain_into_a_received_folder_says_out_in_one_line_exit_2(tmp_path, capsys):
    rep = _received_report(tmp_path)
    before = _tree(tmp_path)
    args = ["--model", "nv_small_cnn.digits", "--out", str(rep), "--overwrite", "--samples", "8", "--examples", "0",
            "--no-gallery", "--no-progress", "--dpi", "30"]
    assert report_cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"neuroview explain: out_dir (--out): folder {str(rep.resolve())!r}: "), err
    assert "'../paper.docx'" in err and err.count("\n") == 1, err
    assert _tree(tmp_path) == before


def test_a_killed_run_s_own_leftovers_are_still_put_back(tmp_path):
    """Control: a moves list of the folder's own files is undone, and the report written."""
    rep = tmp_path / "rep"
    rep.mkdir()
    (rep / "index.html").write_text("new, moved in")
    old = rep / ".neuroview-old.x.tmp"
    old.mkdir()
    (old / "index.html").write_text("the earlier one")
    (old / _io.MOVES).write_text(json.dumps({"stage": ".neuroview-stage.x.tmp", "names": ["index.html"]}))
    net, x, y = _net()
    files = write_report(net, x, y, rep, examples=1, progress=False, dpi=30, overwrite=True)
    assert sorted(os.listdir(rep)) == sorted(files)


# ------------------------------------------------------------------ 2. waterfall_units folds the padding
def _hand(n: int, t: int, real: list[float], pad: float) -> RNNExplanation:
    """One series of ``n`` steps adding ``real[i]`` each, ``t - n`` padded steps adding ``pad`` each (zero codes
    against a baseline of ``-pad``, weight 1)."""
    codes = torch.zeros(1, 1, 1, t, 1)
    codes[0, 0, 0, :n, 0] = torch.tensor(real)
    base = torch.zeros(1, 1, 1, t, 1)
    base[..., n:, :] = -pad
    logits = torch.tensor([[0.5 + sum(real) + (t - n) * pad]])
    return RNNExplanation(logits=logits, bias=torch.tensor([0.5]), codes=codes, weight=torch.ones(1, 1, 1, t, 1),
                          baseline=base, lengths=torch.tensor([n]))


def test_waterfall_units_folds_the_padding_as_the_waterfall_draws_it():
    # steps 0-3 add 4, 3, 2, 1; 6 padded steps add -2.5 each: one bar of -15 in the waterfall, no face.
    # Picked among single steps (|4|, |3|, |2.5| x 6, |2|, |1|), the padded steps took every slot after step 1.
    exp = _hand(4, 10, [4.0, 3.0, 2.0, 1.0], -2.5)
    assert waterfall_units(exp, [0], k=3) == [0, 1]  # the padding bar (-15), step 0, step 1; the padding has no face
    assert waterfall_units(exp, [0], k=4) == [0, 1, 2]  # was [0, 1]: padded steps 4-9 (2.5 each) came before step 2
    assert waterfall_units(exp, [0], k=5) == [0, 1, 2, 3]  # was [0, 1]
    assert sorted(bar_units(exp, 0, 5)) == [0, 1, 2, 3]  # what the waterfall draws a face for


def test_without_padding_waterfall_units_is_unchanged():
    exp = _hand(10, 10, [float(v) for v in [1, -9, 2, 8, 0, 3, 7, 0, -4, 6]], 0.0)
    assert waterfall_units(exp, [0], k=4) == [1, 3, 6, 9]  # |9|, |8|, |7|, |6|
    assert waterfall_units(exp, [0], k=20) == [1, 3, 6, 9, 8, 5, 2, 0]  # exact zeros are no bar
