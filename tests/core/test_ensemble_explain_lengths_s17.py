"""``Ensemble.explain(x, lengths=...)`` names why it cannot take them, as the forward does: RNN members have no
ensemble explanation (``NotNeuroView``), CNN members read no lengths. Both gave Python's bare "unexpected keyword
argument 'lengths'"."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.core.ensemble import Ensemble
from neuroview.core.ensemble_checks import NotNeuroView
from test_ensemble import _member  # one unit whose hard code is the fraction of positive samples; a hand-set head




def test_explain_of_an_ensemble_of_rnns_with_lengths_names_the_members():
    torch.manual_seed(0)
    ens = Ensemble([nv.NeuroViewRNN(nn.GRU(3, 4, batch_first=True), 2, max_len=6) for _ in range(2)]).eval()
    x, lengths = torch.randn(3, 6, 3), torch.tensor([6, 2, 4])
    with pytest.raises(NotNeuroView, match="explain: needs NeuroView-CNN members; these are NeuroViewRNNs"):
        ens.explain(x, lengths=lengths)


def test_explain_of_an_ensemble_of_cnns_refuses_lengths_as_the_forward_does():
    ens = Ensemble([_member([1.0, -1.0], [0.0, 0.5]), _member([2.0, 0.0], [1.0, -1.0])]).eval()
    x = torch.tensor([[[1.0, -1.0, 2.0, 3.0]], [[-1.0, -1.0, -2.0, 4.0]]])
    with pytest.raises(TypeError, match="lengths: the members are NeuroView-CNNs, which read no lengths"):
        ens.explain(x, lengths=torch.tensor([4, 2]))
    # codes by hand: 3/4 and 1/4 positive; logits the mean of the members' c * w + b
    c = torch.tensor([0.75, 0.25])[:, None]
    want = ((c * torch.tensor([1.0, -1.0]) + torch.tensor([0.0, 0.5])) + (c * torch.tensor([2.0, 0.0]) + torch.tensor([1.0, -1.0]))) / 2
    exp = ens.explain(x, lengths=None)
    torch.testing.assert_close(exp.logits, want, rtol=0, atol=1e-6)
    torch.testing.assert_close(exp.contributions.flatten(2).sum(-1) + exp.bias, want, rtol=0, atol=1e-6)
