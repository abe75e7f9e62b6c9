"""finetune_sparse's readability budget (sparse_finetune.training_k90) counts a padded RNN series' padding as one item,
as ``exp.k90`` and sparsify's path do: it counted each padded step apart, so 8-step series of a 30-step network
"needed" more steps in the budget than their explanation shows."""

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.training.sparse_finetune import training_k90


@pytest.fixture(scope="module")
def padded():
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(1, 8, batch_first=True), 2, max_len=30)
    x = torch.randn(64, 30, 1) + 1.0
    lengths = torch.tensor([8, 8, 8, 30] * 16)  # the median decision one of an 8-step series
    x[lengths == 8, 8:] = 0
    net.train()
    with torch.no_grad():
        net(x, lengths=lengths)
    net.eval()
    return net, x, lengths


def _hand(exp: nv.RNNExplanation, level: str) -> torch.Tensor:
    """Each sample's k90 counted by hand: its predicted logit's contributions weight x (code - baseline), the real
    steps (hidden states) apart, all padding one item (its sum), the fewest largest |items| that reach 90%."""
    out = []
    for i in range(len(exp.logits)):
        c, n = int(exp.logits[i].argmax()), int(exp.lengths[i])
        v = (exp.weight[c] * (exp.codes[i] - exp.baseline)).double()  # [L, D, T, H]
        if level == "steps":
            v = v.sum(dim=(0, 1, 3))[None, None, :, None]
        items = torch.cat([v[:, :, :n].flatten(), v[:, :, n:].sum().reshape(1)]) if n < v.shape[2] else v.flatten()
        a = items.abs().sort(descending=True).values
        out.append(int((a.cumsum(0) < 0.9 * a.sum()).sum()) + 1)
    return torch.tensor(out, dtype=torch.float64)


def test_training_k90_counts_the_padding_as_one_item(padded):
    net, x, lengths = padded
    with torch.no_grad():  # the training split's mean code: 30-step series in it, so padding adds -W mean, not 0
        mean = net.features(x, lengths).mean(0)
    exp = net.explain(x, lengths=lengths, baseline=mean)
    y = torch.zeros(32, dtype=torch.long)  # (no label is read)
    k, k_steps = training_k90(net, [(x[:32].transpose(1, 2), lengths[:32], y), (x[32:].transpose(1, 2), lengths[32:], y)])
    hand_steps, hand = _hand(exp, "steps"), _hand(exp, "features")
    assert k_steps == pytest.approx(float(hand_steps.quantile(0.5)))
    assert k == pytest.approx(float(hand.quantile(0.5)), abs=0.5)  # 1,000s of features: a 90% tie may fall either way
    assert k_steps <= 9  # 8 real steps and the padding: each padded step counted apart, it read more
    assert float(exp.k90(level="steps")) == pytest.approx(k_steps)
