"""NeuroViewRNN's ``shared_steps``: a weight part every step shares, one linear map at eval."""

import copy

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.training.module import NeuroViewModule


class _Id(nn.Module):
    """A user 'RNN' whose hidden state of step t is x_t itself: the head's answer is known by hand."""

    input_size = 2

    def forward(self, x):
        return x


def _shared(normalize=False, dropout=0.0, max_len=3):
    return nv.NeuroViewRNN(_Id(), 2, max_len=max_len, normalize=normalize, dropout=dropout, shared_steps=True)


def test_closed_form_mean_of_steps():
    net = _shared().eval()
    with torch.no_grad():
        net.classifier.weight.zero_()
        net.classifier.bias.copy_(torch.tensor([0.5, -0.5]))
        net.step_shared.weight.copy_(torch.tensor([[3.0, 0.0], [0.0, 6.0]]))
    x = torch.tensor([[[1.0, 2.0], [3.0, -1.0], [9.0, 9.0]]])
    lengths = torch.tensor([2])  # step 2 is padding: 0 in the mean over the 3 steps
    # logits = S (x_0 + x_1) / 3 + b = (3 * 4 / 3 + 0.5, 6 * 1 / 3 - 0.5)
    want = torch.tensor([[4.5, 1.5]])
    assert torch.allclose(net(x, lengths), want)
    assert torch.allclose(net.train()(x, lengths), want)  # no normalization, no dropout: the same in training
    exp = net.eval().explain(x, lengths)
    assert torch.allclose(exp.logits, want)
    # each step's share of the shared part: S_c x_t / 3
    assert torch.allclose(exp.time_importance[0], torch.tensor([[1.0, 3.0, 0.0], [4.0, -2.0, 0.0]]))
    assert torch.allclose(exp.contributions.flatten(2).sum(-1) + exp.bias, want)
    w, _ = net.effective_classifier()
    assert torch.allclose(w, torch.tensor([[1.0, 0.0] * 3, [0.0, 2.0] * 3]))


def test_training_mode_is_the_two_part_head_and_eval_its_fold():
    torch.manual_seed(0)
    gru = nn.GRU(3, 4, num_layers=2, batch_first=True)
    net = nv.NeuroViewRNN(gru, 3, max_len=7, shared_steps=True)
    with torch.no_grad():
        net.step_shared.weight.normal_()
    x, lengths = torch.randn(9, 7, 3), torch.tensor([7, 1, 3, 7, 5, 6, 2, 7, 4])
    net.train()
    f = net.features(x, lengths).flatten(1)
    var = f.var(0, unbiased=False)
    z = (f - f.mean(0)) / (var.clamp_min(net.norm.floor * var.mean()) + net.norm.eps).sqrt()  # the batch's statistics, floored
    mean_steps = z.view(9, 2, 1, 7, 4).mean(3).flatten(1)  # [B, L*D*H]
    want = z @ net.classifier.weight.T + net.classifier.bias + mean_steps @ net.step_shared.weight.T
    assert torch.allclose(net(x, lengths), want, atol=1e-5)
    net.eval()
    exp = net.explain(x, lengths)
    assert torch.equal(exp.logits, net(x, lengths))
    assert exp.residual().abs().max() < 1e-5


def test_merge_shared_keeps_the_function_and_sparsify_its_input():
    torch.manual_seed(1)
    net = nv.NeuroViewRNN(nn.GRU(2, 4, batch_first=True), 2, max_len=6, shared_steps=True)
    with torch.no_grad():
        net.step_shared.weight.normal_()
    x = torch.randn(40, 6, 2)
    y = (x[:, :, 0].mean(1) > 0).long()
    net.train()(x)  # running statistics
    net.eval()
    before = net(x)
    merged = copy.deepcopy(net).merge_shared()
    assert merged.step_shared is None and "step_shared" not in repr(merged) + str(merged.state_dict().keys())
    assert torch.allclose(merged(x), before, atol=1e-6)
    assert torch.allclose(merged.train()(x), net.train()(x), atol=1e-6)
    net.eval()
    shared_w = net.step_shared.weight.clone()
    sparse = nv.sparsify(net, [(x.transpose(1, 2), y)], folds=2)  # batches as the data modules give them: [B, F, T]
    assert sparse.step_shared is None and torch.equal(net.step_shared.weight, shared_w)  # the input unchanged
    exp = sparse.explain(x)
    assert exp.residual().abs().max() < 1e-5


def test_recipe_option_trains_the_shared_part_with_the_classifier():
    m = NeuroViewModule("nv_gru", num_classes=3, in_channels=2, max_len=12, classifier_lr=1e-4,
                        model_kwargs={"hidden_size": 4, "shared_steps": True, "max_steps": 4})
    shared = m.model.step_shared
    assert shared.weight.shape == (3, 4) and not shared.weight.any()  # starts as the plain NeuroView head
    groups = m.parameter_groups()
    head = next(g for g in groups if any(p is m.model.classifier.weight for p in g["params"]))
    own = next(g for g in groups if any(p is shared.weight for p in g["params"]))
    # reading L*D*H features, as a standard RNN's head does: the backbone's rate, the classifier's decay
    assert head["lr"] == 1e-4 and own["params"] == [shared.weight] and "lr" not in own
    assert own["weight_decay"] == head["weight_decay"]
    frozen = NeuroViewModule("nv_gru", num_classes=3, in_channels=2, max_len=12, freeze_backbone=True,
                             model_kwargs={"hidden_size": 4, "shared_steps": True})
    trainable = {id(p) for g in frozen.parameter_groups() for p in g["params"]}
    assert id(frozen.model.step_shared.weight) in trainable
    assert id(frozen.model.rnn.weight_ih_l0) not in trainable
    with pytest.raises(TypeError):
        nv.create_model("gru", num_classes=3, in_features=2, max_len=12, shared_steps=True)  # NeuroView only


def test_builder_state_dict_round_trip():
    kw = dict(num_classes=3, in_features=2, max_len=12, hidden_size=4, max_steps=4, shared_steps=True)
    a, b = nv.create_model("nv_gru", **kw), nv.create_model("nv_gru", **kw)
    with torch.no_grad():
        a.step_shared.weight.normal_()
    b.load_state_dict(a.state_dict())  # strict: the shared part is saved and read back
    x = torch.randn(5, 12, 2)
    assert torch.equal(a.eval()(x), b.eval()(x))
    with pytest.raises(RuntimeError, match="step_shared"):
        nv.create_model("nv_gru", **{**kw, "shared_steps": False}).load_state_dict(a.state_dict())
