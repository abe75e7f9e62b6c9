"""Review s24 (R2 findings 4 and 6) of ``to_records``' look-alike names and ``predicted``'s NaN refusal.

4. ``table_names`` keyed names by ``str().strip()`` only: the NFC and NFD forms of ``"café"`` (which print alike, and
   which the plots and the data modules refuse as one name) and a blank name went into a table.
6. ``predicted``'s refusal advised ``net.explain(x[torch.isfinite(exp.logits).all(1)])``: an ``IndexError`` on a
   time-first RNN (``x [T, B, F]``), and the kept series' ``lengths`` dropped.
"""

import re
import unicodedata

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.core.explanation import Explanation

NFC, NFD = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")


def _exp() -> Explanation:
    return Explanation(logits=torch.tensor([[1.0, 2.0]]), bias=torch.zeros(2), codes=torch.ones(1, 2),
                       weight=torch.eye(2))


# ------------------------------------------------------------------ finding 4: one look-alike rule
def test_nfc_and_nfd_forms_of_one_name_are_refused_showing_their_code_points():
    assert NFC != NFD and len(NFC) == 4 and len(NFD) == 5  # the known answer: 'caf\xe9' and 'cafe\u0301'
    with pytest.raises(ValueError, match=r"^class_names: expected names that differ once written") as e:
        _exp().to_records(class_names=[NFC, NFD])
    msg = str(e.value)
    assert "at 0" in msg and "at 1" in msg and "Unicode" in msg
    assert ascii(NFC) in msg and ascii(NFD) in msg  # the two print alike: the message shows their code points


@pytest.mark.parametrize("blank", ["", "  ", "\t"])
def test_a_blank_name_is_refused_as_the_plots_refuse_it(blank):
    with pytest.raises(ValueError, match=r"^class_names: expected a name that prints for every class, got "
                                         + re.escape(repr(blank)) + r" for class 1 \(empty or only whitespace\)"):
        _exp().to_records(class_names=["a", blank])


@pytest.mark.parametrize("a, b, one", [(NFC, NFD, True), (NFD, " " + NFC, True), ("a", " a", True), ("x", "x", True),
                                        (1, "1", True), ("1", "1.0", False), ("cafe", NFC, False), ("A", "a", False),
                                        ("\ufb01", "fi", False)])  # the ligature: NFKC would join it, NFC does not
def test_the_tables_refuse_exactly_the_pairs_the_plots_and_the_data_modules_refuse(a, b, one):
    """One rule: ``table_names`` joins two names where ``data.splits.same_text`` (the plots' and the labels' rule) does,
    or where they are one ``str()``; ``"1"`` and ``"1.0"`` stay two names, as the plots keep them."""
    from neuroview.data.splits import same_text

    assert (str(a) == str(b) or same_text([str(a), str(b)]) is not None) == one  # the project's rule, by hand
    if one:
        with pytest.raises(ValueError, match=r"^class_names: expected names that differ once written"):
            _exp().to_records(class_names=[a, b])
    else:
        assert sorted({r["class"] for r in _exp().to_records(class_names=[a, b])}) == sorted([str(a), str(b)])


# ------------------------------------------------------------------ finding 6: advice that holds for every layout
def test_predicted_s_advice_names_the_samples_to_keep_and_holds_for_a_time_first_rnn_with_lengths():
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(2, 4), 2, max_len=6).eval()  # nn.GRU's default: time-first, x [T, B, F]
    x, lengths = torch.randn(6, 3, 2), torch.tensor([6, 4, 2])
    exp = net.explain(x, lengths=lengths)
    exp.logits = exp.logits.clone()
    exp.logits[1, 0] = float("nan")  # sample 1's decision NaN (as after an overflow)
    with pytest.raises(ValueError, match=r"^logits: sample 1 \(1 of 3\) has NaN logits") as e:
        exp.predicted
    msg = str(e.value)
    assert "x[torch.isfinite" not in msg  # x[mask] indexes a time-first x's steps: IndexError
    assert "[0, 2]" in msg and "lengths[keep]" in msg and "time-first" in msg, msg
    keep = torch.tensor([0, 2])  # what the message names, taken as it says: on x's sample axis (1), with lengths
    again = net.explain(x.index_select(1, keep), lengths=lengths[keep])
    torch.testing.assert_close(again.logits, exp.logits[keep])
    with pytest.raises(IndexError):
        x[torch.isfinite(exp.logits).all(1)]  # the old advice, as written


def test_predicted_of_a_batch_all_nan_advises_no_other_samples():
    exp = Explanation(logits=torch.full((2, 2), float("nan")), bias=torch.zeros(2), codes=torch.ones(2, 2),
                      weight=torch.eye(2))
    with pytest.raises(ValueError, match=r"^logits: samples \[0, 1\] \(2 of 2\) have NaN logits") as e:
        exp.predicted
    assert "explain the other samples" not in str(e.value)
