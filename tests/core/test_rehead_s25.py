"""A head put in place for another class count (``net.classifier = nn.Linear(net.num_units, 5)``): every consumer of
``net.num_classes`` follows it, as a fresh wrap built for that count and loaded with the same state dict does."""

import copy
import io
import pickle

import pytest
import torch
from torch import nn

import neuroview as nv


def _cnn(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU())


def _data(n=96, classes=5):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 1, 6, 6, generator=g)
    y = torch.arange(n) % classes
    x[:, 0, 0, :] += y[:, None].float()  # separable: a fit finds a head
    return x, y


def _loader(x, y):
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)


def _train(net, x, y, steps=15):
    net.train()
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.05)
    for i in range(steps):
        xb, yb = x[(i * 32) % len(x):][:32], y[(i * 32) % len(x):][:32]
        opt.zero_grad()
        nn.functional.cross_entropy(net(xb), yb).backward()
        opt.step()
    return net.eval()


def _reheaded_cnn(classes=5):
    x, y = _data(classes=classes)
    net = nv.NeuroViewCNN(_cnn(), num_classes=10, example_input=x[:8])
    net.classifier = nn.Linear(net.num_units, classes)  # a new task on the same backbone
    _train(net, x, y)
    fresh = nv.NeuroViewCNN(_cnn(), num_classes=classes, example_input=x[:8])
    fresh.load_state_dict(net.state_dict())
    return net, fresh.eval(), x, y


@pytest.mark.parametrize("classes", [5, 12])
def test_a_reheaded_cnn_sparsifies_as_a_fresh_wrap_of_its_class_count(classes):
    net, fresh, x, y = _reheaded_cnn(classes)
    assert net.num_classes == classes == net(x[:2]).shape[1]
    train, val = _loader(x[:64], y[:64]), _loader(x[64:], y[64:])
    got = nv.sparsify(net, train, val, points=3)
    want = nv.sparsify(fresh, train, val, points=3)
    assert got.num_classes == classes
    for k, v in want.state_dict().items():
        torch.testing.assert_close(got.state_dict()[k], v, msg=k)


def test_a_reheaded_cnns_gallery_and_readability_are_a_fresh_wraps():
    net, fresh, x, y = _reheaded_cnn(5)
    x, y = x[:40], y[:40]
    got, want = nv.unit_gallery(net, _loader(x, y), units=[0, 3], k=2), nv.unit_gallery(fresh, _loader(x, y), units=[0, 3], k=2)
    assert got.num_classes == want.num_classes == 5
    assert torch.equal(got.index, want.index) and torch.equal(got.value, want.value)
    assert nv.readability(net, _loader(x, y)) == nv.readability(fresh, _loader(x, y))


def _rnn(classes, **kw):
    torch.manual_seed(0)
    return nv.NeuroViewRNN(nn.GRU(1, 4, batch_first=True), num_classes=classes, max_len=12, **kw)


def test_a_reheaded_rnn_explains_as_a_fresh_wrap_of_its_class_count():
    xs, ys = torch.randn(32, 12, 1), torch.arange(32) % 3
    net = _rnn(2)
    net.classifier = nn.Linear(net.num_features, 3)
    net.train()
    net(xs, lengths=torch.full((32,), 12))  # statistics set, as training does
    net.eval()
    fresh = _rnn(3)
    fresh.load_state_dict(net.state_dict())
    fresh.eval()
    assert net.num_classes == 3
    got, want = net.explain(xs[:4]), fresh.explain(xs[:4])
    torch.testing.assert_close(got.logits, want.logits)
    torch.testing.assert_close(got.contributions, want.contributions)
    torch.testing.assert_close(got.time_importance, want.time_importance)
    torch.testing.assert_close(net.time_importance(), fresh.time_importance())
    assert net.time_importance().shape == (3, 12)
    g = nv.unit_gallery(net, _loader(xs.transpose(1, 2), ys), units=[0, 5], k=2)
    assert g.num_classes == 3


def test_an_rnns_shared_part_of_another_class_count_is_refused_by_name():
    net = _rnn(2, shared_steps=True)
    net.classifier = nn.Linear(net.num_features, 3)
    with pytest.raises(ValueError, match=r"net\.step_shared: .*2 classes.*net\.classifier.*3"):
        net.num_classes
    with pytest.raises(ValueError, match=r"net\.step_shared"):
        net.eval().explain(torch.randn(2, 12, 1))
    net.step_shared = nn.Linear(net.num_features // net.steps, 3, bias=False)  # both parts replaced: followed
    assert net.num_classes == 3 and net.eval().explain(torch.randn(2, 12, 1)).logits.shape == (2, 3)


def test_a_lazy_network_says_the_count_it_was_given_until_its_head_is_built():
    net = nv.NeuroViewCNN(_cnn(), num_classes=7)
    assert net.num_classes == 7 and net.classifier is None
    net(torch.randn(2, 1, 6, 6))
    assert net.num_classes == 7 == net.classifier.out_features


def test_setting_num_classes_against_the_built_head_is_refused_naming_the_classifier():
    net, _, x, _ = _reheaded_cnn(5)
    with pytest.raises(ValueError, match=r"num_classes: .*net\.classifier.*5 classes.*got 7"):
        net.num_classes = 7
    net.num_classes = 5  # the head's own count: nothing to say
    assert net.num_classes == 5


def test_copies_pickles_and_old_pickles_read_the_head():
    net, _, x, _ = _reheaded_cnn(5)
    for c in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        assert c.num_classes == 5
        torch.testing.assert_close(c(x[:3]), net(x[:3]))
    # a network pickled before num_classes was a property kept it in its __dict__: the property still reads the head
    state = net.__getstate__()
    state["num_classes"] = 10  # stale, as an old pickle's re-headed network kept it
    state.pop("_num_classes", None)
    old = nv.NeuroViewCNN.__new__(nv.NeuroViewCNN)
    old.__setstate__(state)
    assert old.num_classes == 5
    lazy = nv.NeuroViewCNN(_cnn(), num_classes=7)
    state = lazy.__getstate__()
    state["num_classes"] = state.pop("_num_classes")
    old = nv.NeuroViewCNN.__new__(nv.NeuroViewCNN)
    old.__setstate__(state)
    assert old.num_classes == 7
    old(x[:2])
    assert old.classifier.out_features == 7
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    buf.seek(0)
    fresh = nv.NeuroViewCNN(_cnn(), num_classes=5, example_input=x[:8])
    fresh.load_state_dict(torch.load(buf))
    assert fresh.num_classes == 5


def test_a_reheaded_network_exports():
    net, _, x, _ = _reheaded_cnn(5)
    ep = torch.export.export(net, (x[:4],))
    torch.testing.assert_close(ep.module()(x[:4]), net(x[:4]))


def test_an_ensemble_follows_its_members_heads_and_its_own():
    x, _ = _data()
    members = [nv.NeuroViewCNN(_cnn(i), num_classes=10, example_input=x[:8]) for i in range(2)]
    ens = nv.Ensemble(members)
    for m in members:
        m.classifier = nn.Linear(m.num_units, 5)
    assert ens.num_classes == 5 == ens.eval()(x[:2]).shape[1]
    members[0].classifier = nn.Linear(members[0].num_units, 4)
    with pytest.raises(ValueError, match=r"members: .*\[4, 5\].*classifier"):
        ens.num_classes


def test_setting_an_ensemble_s_num_classes_against_its_members_is_refused():
    """``ens.num_classes = 7`` over members deciding over 4 was taken and read back as 4 (review R4), where a single
    network refuses it."""
    x, _ = _data()
    ens = nv.Ensemble([nv.NeuroViewCNN(_cnn(i), num_classes=4, example_input=x[:8]) for i in range(2)])
    with pytest.raises(ValueError, match=r"^num_classes: the ensemble's members .* decide over 4 classes, got 7"):
        ens.num_classes = 7
    ens.num_classes = 4  # the count it has: taken
    assert ens.num_classes == 4
