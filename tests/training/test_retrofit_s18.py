"""`nv.retrofit` on training splits and models a probe found mishandled (s18): a split that holds no sample of one of
the network's classes, a bool mask given as the labels, and a binary model with one logit (a sigmoid / BCE head).

The single-logit model is built by hand: its logit is the mean of its series, so its accuracy is known from the data."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import neuroview as nv


def _standard(classes: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(),
                         nn.Linear(4, classes)).eval()


def _data(n: int, seed: int, classes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    return torch.randn(n, 1, 12, generator=g) + 0.7 * y[:, None, None], y


class MeanLogit(nn.Module):
    """One logit, the mean of the series: ``relu(x) - relu(-x)`` averaged, weights set by hand. Class 1 where the
    series' mean is > 0, as a sigmoid / BCE binary classifier decides."""

    def __init__(self):
        super().__init__()
        conv = nn.Conv1d(1, 2, 1, bias=False)
        self.body = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten())
        self.fc = nn.Linear(2, 1)
        with torch.no_grad():
            conv.weight.copy_(torch.tensor([[[1.0]], [[-1.0]]]))
            self.fc.weight.copy_(torch.tensor([[1.0, -1.0]]))
            self.fc.bias.zero_()

    def forward(self, x):
        return self.fc(self.body(x))


# ------------------------------------------------------------------ 1. a class missing from the training split
def test_a_training_split_without_a_class_is_refused_as_fit_ridge_head_refuses_it():
    x, y = _data(60, 0)
    keep = y != 2  # classes 0 and 1 only, for a 3-class model
    with pytest.raises(ValueError, match=r"train: expected samples of each of the network's 3 classes, got none of "
                                         r"class \[2\]; a head fitted without them never predicts them"):
        nv.retrofit(_standard(), [(x[keep], y[keep])], [(x, y)])
    x4, y4 = _data(60, 0, classes=4)
    ends = (y4 == 0) | (y4 == 3)
    with pytest.raises(ValueError, match=r"4 classes, got none of classes \[1, 2\]"):
        nv.retrofit(_standard(4), [(x4[ends], y4[ends])], num_classes=4)
    # every class there: fitted (a test split without a class is fine: it is only scored)
    res = nv.retrofit(_standard(), [(x, y)], [(x[keep], y[keep])])
    with torch.no_grad():
        want = (res.model(x[keep]).argmax(1) == y[keep]).double().mean().item()
    assert res.neuroview_acc == pytest.approx(want) and res.test_size == int(keep.sum())


# ------------------------------------------------------------------ 2. bool labels: a 2-class task's, or a mask
def test_a_bool_mask_as_labels_of_a_network_of_3_classes_is_refused_by_name():
    x, y = _data(40, 1, 3)
    mask = y == 1  # "the class-1 samples": was read as classes 1 and 0
    match = (r"train: expected a class index or a tensor of them, got .*\(booleans: a mask picks samples, not classes "
             r"\(a task of 3 classes\): pass each sample's class index, or y.long\(\) where True and False are "
             r"classes 1 and 0\)")
    with pytest.raises(TypeError, match=match):
        nv.retrofit(_standard(3), [(x, mask)])
    with pytest.raises(TypeError, match=match):
        nv.retrofit(_standard(3), [(x, mask.numpy())])
    with pytest.raises(TypeError, match=match.replace("train", "test")):
        nv.retrofit(_standard(3), [(x, y)], [(x, mask)])


def test_bool_labels_of_a_2_class_task_are_classes_0_and_1():
    x, y = _data(40, 1, 2)
    xt, yt = _data(30, 2, 2)
    model = _standard(2)
    with torch.no_grad():  # the standard network's own accuracy, against the labels as 0 / 1
        want = (model(xt).argmax(1) == yt).double().mean().item()
    ref = nv.retrofit(model, [(x, y)], [(xt, yt)])
    for b, bt in ((y == 1, yt == 1), ((y == 1).numpy(), (yt == 1).numpy()), ((y == 1).tolist(), (yt == 1).tolist())):
        res = nv.retrofit(model, [(x, b)], [(xt, bt)])
        assert res.standard_acc == pytest.approx(want)
        assert (res.train_acc, res.neuroview_acc) == (ref.train_acc, ref.neuroview_acc)
        assert all(torch.equal(a, c) for a, c in zip(res.model.state_dict().values(), ref.model.state_dict().values()))


# ------------------------------------------------------------------ 3. a single-logit (sigmoid / BCE) binary model
def _binary(n: int, seed: int, flipped: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 10, generator=g)
    y = (x.mean((1, 2)) > 0).long()
    y[:flipped] = 1 - y[:flipped]  # the model is wrong on exactly these
    return x, y


@pytest.mark.parametrize("given", [{}, {"num_classes": 2}])
def test_a_single_logit_model_is_retrofitted_as_its_two_class_task(given):
    x, y = _binary(80, 2)
    xt, yt = _binary(40, 3, flipped=6)
    res = nv.retrofit(MeanLogit(), [(x, y)], [(xt, yt)], **given)
    assert res.model.num_classes == 2
    assert res.standard_acc == pytest.approx(34 / 40)  # class 1 where the logit (the mean) is > 0: wrong on 6
    with torch.no_grad():
        want = (res.model(xt).argmax(1) == yt).double().mean().item()
    assert res.neuroview_acc == pytest.approx(want)
    assert res.cost == pytest.approx(100 * (34 / 40 - want))


def test_a_single_logit_model_with_another_num_classes_is_told_to_pass_2_never_1():
    x, y = _binary(40, 4)
    with pytest.raises(ValueError, match=r"num_classes: expected an int >= 2 \(.*a single-logit sigmoid / BCE model "
                                         r"decides 2 classes.*\), got num_classes=1; pass num_classes=2") as e1:
        nv.retrofit(MeanLogit(), [(x, y)], num_classes=1)
    with pytest.raises(ValueError, match=r"num_classes: the model's output is one logit \(a sigmoid / BCE head: a "
                                         r"2-class task\), the NeuroView network's classes 3 .*; pass num_classes=2") as e3:
        nv.retrofit(MeanLogit(), [(x, y)], num_classes=3)
    for e in (e1, e3):
        assert "pass num_classes=1" not in str(e.value)


# ------------------------------------------------------------------ 4. a single output through a sigmoid (BCELoss)
class MeanProbability(MeanLogit):
    """:class:`MeanLogit` ending in an ``nn.Sigmoid`` module (``nn.BCELoss``'s model): a probability, class 1 where it is
    > 0.5, the same decisions as the logit's. ``flat``: returned as ``[B]`` through a view after the sigmoid."""

    def __init__(self, flat: bool = False):
        super().__init__()
        self.sigmoid, self.flat = nn.Sigmoid(), flat

    def forward(self, x):
        p = self.sigmoid(super().forward(x))
        return p.view(-1) if self.flat else p


@pytest.mark.parametrize("model", ["module", "module flat", "sequential"])
def test_a_model_ending_in_nn_sigmoid_is_scored_at_0_5_not_as_a_logit(model):
    x, y = _binary(80, 2)
    xt, yt = _binary(40, 3, flipped=6)  # the model is right on 34 of 40, and class 1 is not 34 of them
    assert int(yt.sum()) != 34 and int((1 - yt).sum()) != 34
    if model == "sequential":
        m = MeanLogit()
        std = nn.Sequential(m.body, m.fc, nn.Sigmoid())
    else:
        std = MeanProbability(flat=model.endswith("flat"))
    res = nv.retrofit(std, [(x, y)], [(xt, yt)])
    assert res.model.num_classes == 2
    assert res.standard_acc == pytest.approx(34 / 40)  # was the share of class 1: every p > 0 read as class 1
    with torch.no_grad():
        want = (res.model(xt).argmax(1) == yt).double().mean().item()
    assert res.cost == pytest.approx(100 * (34 / 40 - want))


class SigmoidInForward(MeanLogit):
    def forward(self, x):
        return torch.sigmoid(super().forward(x))  # no module to see: a probability or a logit in [0, 1]?


def test_a_single_output_in_0_1_of_no_sigmoid_module_is_refused_naming_what_to_return():
    x, y = _binary(80, 2)
    for size in (80, 1):  # decided over the whole training split: in batches of one too
        with pytest.raises(ValueError, match=r"model: its single output lies in \[0, 1\] for every training sample "
                                             r"\(80\), and comes from no nn.Sigmoid module: .*cannot be told apart; "
                                             r"return the logit \(drop the sigmoid.*or end the forward in an nn.Sigmoid "
                                             r"module"):
            nv.retrofit(SigmoidInForward(), [(x[i:i + size], y[i:i + size]) for i in range(0, 80, size)])


class Squeezed(MeanLogit):
    def forward(self, x):
        return super().forward(x).squeeze(-1)  # BCEWithLogitsLoss's usual [B]


def test_a_single_logit_squeezed_to_b_is_read_as_b_1():
    x, y = _binary(80, 2)
    xt, yt = _binary(40, 3, flipped=6)
    res = nv.retrofit(Squeezed(), [(x, y)], [(xt, yt)])
    assert res.standard_acc == pytest.approx(34 / 40)
    with pytest.raises(ValueError, match=r"num_classes: the model's output is one logit .*; pass num_classes=2"):
        nv.retrofit(Squeezed(), [(x, y)], num_classes=3)


# ------------------------------------------------------------------ 5. a bare RNN told a class count of another task
def test_a_bare_rnn_with_more_classes_than_the_split_holds_is_offered_their_count():
    xc = torch.randn(30, 2, 6, generator=torch.Generator().manual_seed(2))
    y = torch.arange(30) % 3  # classes 0, 1, 2: a 3-class task
    with pytest.raises(ValueError, match=r"train: expected samples of each of the network's 4 classes, got none of "
                                         r"class \[3\]; .*: pass the whole training split, or the classes it holds as "
                                         r"num_classes=3$"):
        nv.retrofit(nn.GRU(2, 3, batch_first=True), [(xc, y)], num_classes=4, max_len=6)
    gap = y != 1  # classes 0 and 2: no count of classes 0 .. k-1 to offer
    with pytest.raises(ValueError, match=r"got none of class \[1\]; .*: pass the whole training split$"):
        nv.retrofit(nn.GRU(2, 3, batch_first=True), [(xc[gap], y[gap])], num_classes=3, max_len=6)
    with pytest.raises(ValueError, match=r"pass the whole training split$"):  # a CNN's count is read off its output
        nv.retrofit(_standard(4), [_data(40, 0, 3)], num_classes=4)


# ------------------------------------------------------------------ review R10 of bf69c57 and 3024b4e
def _in_0_1_first(x: torch.Tensor, y: torch.Tensor, size: int) -> list:
    """``(x, y)`` in batches of ``size``, those samples whose logit (their mean) lies in [0, 1] first."""
    m = x.mean((1, 2))
    order = torch.argsort(((m >= 0) & (m <= 1)).float(), descending=True, stable=True)
    x, y = x[order], y[order]
    return [(x[i:i + size], y[i:i + size]) for i in range(0, len(x), size)]


@pytest.mark.parametrize("size", [1, 4, 50])  # 50 of these 80 samples have a logit in [0, 1]
def test_a_logit_model_is_not_refused_for_a_first_batch_whose_logits_lie_in_0_1(size):
    """R10 §1: a true logit model whose first training batch holds only logits in [0, 1] (50 of these 80 samples have
    one). Before: refused at batch sizes 1 and 4 ("lies in [0, 1] for every sample of the first training batch")."""
    x, y = _binary(80, 2)
    xt, yt = _binary(40, 3, flipped=6)
    batches = _in_0_1_first(x, y, size)
    first = batches[0][0].mean((1, 2))
    assert bool(((first >= 0) & (first <= 1)).all())  # the old rule's case
    res = nv.retrofit(MeanLogit(), batches, [(xt, yt)])
    assert res.standard_acc == pytest.approx(34 / 40)  # class 1 where the mean is > 0: wrong on the 6 flipped


class LogSigmoidAtEnd(MeanLogit):
    def __init__(self):
        super().__init__()
        self.log_sigmoid = nn.LogSigmoid()

    def forward(self, x):
        return self.log_sigmoid(super().forward(x))


@pytest.mark.parametrize("model", ["module", "sequential"])
def test_a_model_ending_in_nn_logsigmoid_is_scored_at_log_0_5_not_as_a_logit(model):
    """R10 §2: log p is <= 0 everywhere; read as a logit every sample was class 0, and the standard accuracy was the share
    of class 0 (0.525 here), not the 34 of 40 the probability decides right."""
    x, y = _binary(80, 2)
    xt, yt = _binary(40, 3, flipped=6)
    assert float((yt == 0).float().mean()) != pytest.approx(34 / 40)
    if model == "sequential":
        m = MeanLogit()
        std = nn.Sequential(m.body, m.fc, nn.LogSigmoid())
    else:
        std = LogSigmoidAtEnd()
    res = nv.retrofit(std, [(x, y)], [(xt, yt)])
    assert res.standard_acc == pytest.approx(34 / 40)
    with torch.no_grad():
        want = (res.model(xt).argmax(1) == yt).double().mean().item()
    assert res.cost == pytest.approx(100 * (34 / 40 - want))


class BiasedLogit(MeanLogit):
    """A logit pushed below 0 on every sample (a class prior's bias, a model of imbalanced data): still a logit."""

    def forward(self, x):
        return super().forward(x) - 100.0


def test_a_single_logit_at_most_0_everywhere_is_read_as_a_logit_not_refused():
    """R12: refusing outputs <= 0 everywhere (an F.logsigmoid's?) refused ordinary models (a prior's bias, imbalanced
    data, 35 of 100 untrained networks). As a logit, class 0 for every sample: the standard accuracy is the share of
    class 0, counted here from the labels."""
    x, y = _binary(80, 2)
    xt, yt = _binary(40, 3)
    res = nv.retrofit(BiasedLogit(), [(x[i:i + 8], y[i:i + 8]) for i in range(0, 80, 8)], [(xt, yt)])
    assert res.standard_acc == pytest.approx((yt == 0).double().mean().item())


class BareSqueeze(MeanLogit):
    def forward(self, x):
        return super().forward(x).squeeze()  # [B], and a 0-dim tensor for a batch of one


class BareSqueezeClasses(nn.Module):
    """3 classes: logit k is the mean of channel k, returned through a bare ``.squeeze()`` ([3] for a batch of one)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv1d(3, 6, 1, bias=False), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten())
        self.fc = nn.Linear(6, 3, bias=False)
        with torch.no_grad():
            eye = torch.eye(3)
            self.body[0].weight.copy_(torch.cat([eye, -eye])[:, :, None])  # relu(x_k), relu(-x_k)
            self.fc.weight.copy_(torch.cat([eye, -eye], 1))  # relu(x_k) - relu(-x_k) averaged: mean of channel k

    def forward(self, x):
        return self.fc(self.body(x)).squeeze()


def test_a_bare_squeeze_of_a_batch_of_one_is_read_as_its_single_output():
    """R10 §5: a last test batch of one sample gave a 0-dim output, refused mid-test as "a tensor of shape ()"."""
    x, y = _binary(80, 2)
    xt, yt = _binary(41, 3, flipped=6)  # right on 35 of 41
    for size in (41, 40, 1):  # a last batch of one at 40, every batch at 1
        res = nv.retrofit(BareSqueeze(), [(x[i:i + size], y[i:i + size]) for i in range(0, 80, size)],
                          [(xt[i:i + size], yt[i:i + size]) for i in range(0, 41, size)])
        assert res.standard_acc == pytest.approx(35 / 41) and res.test_size == 41


def test_a_bare_squeeze_of_a_batch_of_one_of_3_classes_is_read_as_1_3():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(31, 3, 6, generator=g)
    y = x.mean(2).argmax(1)  # what the model decides
    y[:4] = (y[:4] + 1) % 3  # wrong on exactly these 4
    res = nv.retrofit(BareSqueezeClasses(), [(x, y)], [(x[i:i + 10], y[i:i + 10]) for i in range(0, 31, 10)])
    assert res.standard_acc == pytest.approx(27 / 31) and res.test_size == 31  # the last batch: one sample


class Flattened(MeanLogit):
    def forward(self, x):
        return torch.cat([super().forward(x), super().forward(x)]).flatten()  # [2B]: no output of B samples


def test_a_one_dim_output_of_another_length_than_the_batch_is_refused_with_both():
    x, y = _binary(40, 4)
    with pytest.raises(ValueError, match=r"model: expected a forward that returns logits \[B, num_classes\] .*got a "
                                         r"tensor of shape \(80,\) for a batch of 40; wrap it"):
        nv.retrofit(Flattened(), [(x, y)], num_classes=2)
