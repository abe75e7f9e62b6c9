"""The probe's faults of s15 in MiniRocket's ridge and aeon loading: ``ridge_loo``'s leave-one-out errors where there
are fewer samples than features (the centred Gram matrix' null direction, kept at its rounding), and
``MiniRocket.load_aeon`` given what holds no fitted parameters, or arrays of other lengths."""

import numpy as np
import pytest
import torch

from neuroview.training.ridge import ALPHAS, ridge_loo
from neuroview.zoo.architectures.rocket import MiniRocket


def _loo_by_refits(z: torch.Tensor, y: torch.Tensor, k: int, alphas) -> torch.Tensor:
    """The exact leave-one-out MSE: the ridge refitted without each sample (dual form, float64), each fold centred on
    its own training rows (the intercept unpenalized)."""
    t = 2.0 * torch.nn.functional.one_hot(y, k).double() - 1.0
    n, out = len(z), []
    for a in alphas:
        err = 0.0
        for i in range(n):
            keep = torch.arange(n) != i
            zt, tt = z[keep], t[keep]
            zm, tm = zt.mean(0), tt.mean(0)
            zc = zt - zm
            dual = torch.linalg.solve(zc @ zc.T + a * torch.eye(n - 1, dtype=torch.float64), tt - tm)
            err += float(((t[i] - ((z[i] - zm) @ (zc.T @ dual) + tm)) ** 2).sum())
        out.append(err / (n * k))
    return torch.tensor(out, dtype=torch.float64)


def test_ridge_loo_matches_refits_with_fewer_samples_than_features():
    # several data sets: the null eigenvalue's rounding is positive in some (it was kept: LOO off by ~1/alpha^2 at
    # alpha 1e-3, and the penalty kept not the exact LOO's), not in others
    n, f, k = 12, 2000, 3
    y = torch.arange(n) % k
    for seed in range(8):
        g = torch.Generator().manual_seed(seed)
        signal = torch.nn.functional.one_hot(y, k).double().repeat(1, f // k + 1)[:, :f]
        z = torch.randn(n, f, generator=g, dtype=torch.float64) + signal
        z = z - z.mean(0)
        exact = _loo_by_refits(z, y, k, ALPHAS)
        _, _, best, mse = ridge_loo(z, y, k)
        torch.testing.assert_close(mse, exact, rtol=1e-7, atol=0, msg=f"seed {seed}")
        kept = int(exact.argmin())
        assert best == kept, f"seed {seed}: alpha {ALPHAS[best]}, the exact LOO's {ALPHAS[kept]}"


def test_ridge_loo_matches_refits_with_more_samples_than_features_and_a_constant_one():
    # the primal branch: a constant feature (0 once centred) leaves z^T z a null direction too
    n, f, k = 30, 8, 2
    y = torch.arange(n) % k
    g = torch.Generator().manual_seed(0)
    z = torch.randn(n, f, generator=g, dtype=torch.float64) + y[:, None].double()
    z[:, 3] = 0.0
    z = z - z.mean(0)
    exact = _loo_by_refits(z, y, k, ALPHAS)
    _, _, best, mse = ridge_loo(z, y, k)
    torch.testing.assert_close(mse, exact, rtol=1e-7, atol=0)
    assert best == int(exact.argmin())


def _net(in_channels=2, length=40):
    return MiniRocket(in_channels=in_channels, input_length=length, num_features=168)


@pytest.mark.parametrize("given, got", [
    (None, r"got None"),
    ((1, 2, 3, 4), r"got a 4-tuple"),
    ("abcde", r"got a str"),
    (([1], [0], [1], [2]), r"got a 4-tuple"),
])
def test_load_aeon_refuses_what_is_not_aeons_parameters(given, got):
    with pytest.raises(ValueError, match=r"parameters: expected a fitted aeon MiniRocket or MiniRocketClassifier, or "
                                         r"the transformer's \.parameters, the 5-tuple .*" + got):
        _net().load_aeon(given)


def test_load_aeon_checks_the_arrays_lengths():
    aeon = pytest.importorskip("aeon.transformations.collection.convolution_based")
    x = np.random.default_rng(0).normal(size=(10, 2, 40)).astype(np.float32)
    n_ch, ch_idx, dil, per, biases = aeon.MiniRocket(n_kernels=168, random_state=0).fit(x).parameters
    net = _net()
    before = (net.weight.clone(), net.biases.clone())
    cases = [
        ((n_ch[:-1], ch_idx, dil, per, biases), r"expected channel counts of len\(dilations\) \* 84 = 168 .* got 167"),
        ((n_ch, ch_idx[:-1], dil, per, biases),
         r"expected channel counts .* summing to the \d+ channel indices; got 168 counts summing to \d+"),
        ((n_ch, ch_idx, dil, per, biases[:-3]), r"expected 168 biases \(num_features\), got 165"),
        ((n_ch, ch_idx, dil, per, np.concatenate([biases, biases])), r"expected 168 biases \(num_features\), got 336"),
        ((n_ch, ch_idx, dil[:1], per, biases), r"aeon's dilations .* differ from this network's"),
        ((n_ch.astype(float), ch_idx, dil, per, biases), r"expected aeon's 5-tuple of 1-d arrays .*got channels: "
                                                         r"float64 \(168,\), indices: int32"),
        ((n_ch[:, None], ch_idx, dil, per, biases), r"expected aeon's 5-tuple of 1-d arrays .*channels: int32 \(168, 1\)"),
    ]
    for given, match in cases:
        with pytest.raises(ValueError, match=r"parameters: " + match):
            net.load_aeon(given)
    assert torch.equal(net.weight, before[0]) and torch.equal(net.biases, before[1])  # nothing half-loaded
    net.load_aeon((n_ch, ch_idx, dil, per, biases))
    assert bool(net.fitted)
    again = _net().load_aeon(np.array([n_ch, ch_idx, dil, per, biases], dtype=object))  # np.save/np.load gives this
    assert torch.equal(again.weight, net.weight) and torch.equal(again.biases, net.biases)


def test_load_aeon_names_an_unfitted_transformer_and_reads_a_fitted_classifier():
    aeon = pytest.importorskip("aeon.transformations.collection.convolution_based")
    clf_mod = pytest.importorskip("aeon.classification.convolution_based")
    with pytest.raises(ValueError, match=r"parameters: expected a fitted aeon MiniRocket .* got an unfitted "
                                         r"MiniRocket \(fit it first\)"):
        _net().load_aeon(aeon.MiniRocket(n_kernels=168))
    with pytest.raises(ValueError, match=r"got an unfitted MiniRocketClassifier \(fit it first\)"):
        _net().load_aeon(clf_mod.MiniRocketClassifier(n_kernels=168))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(10, 2, 40)).astype(np.float32), np.arange(10) % 2
    clf = clf_mod.MiniRocketClassifier(n_kernels=168, random_state=0).fit(x, y)
    a, b = _net().load_aeon(clf), _net().load_aeon(clf._transformer.parameters)
    assert torch.equal(a.weight, b.weight) and torch.equal(a.biases, b.biases)
    a.fc = torch.nn.Identity()  # the features themselves: aeon's transform of the same series
    codes = a(torch.as_tensor(x))[:, torch.argsort(a.feature_order())].numpy()
    assert np.array_equal(codes, clf._transformer.transform(x))
    with pytest.raises(ValueError, match=r"parameters: aeon's MiniRocket was fitted on series of 2 channels, this "
                                         r"network reads 3 \(in_channels\)"):
        _net(in_channels=3).load_aeon(clf)
