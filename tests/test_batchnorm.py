"""Batch-norm against hand-written PyTorch ``BatchNorm1d`` conventions.

Training mode normalises with the batch mean and the biased batch variance; the running
statistics move by ``running = (1 - m) * running + m * batch`` with the *unbiased* variance;
eval mode normalises with the running statistics; ``eps`` sits inside the square root.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

import bpmon
from bpmon.engine.layers import BatchNorm

Array = NDArray[np.floating]


def make_bn(
    rng: np.random.Generator, features: int, eps: float = 1e-5, momentum: float = 0.1
) -> BatchNorm:
    gamma = rng.uniform(0.5, 2.0, features)
    beta = rng.uniform(-1.0, 1.0, features)
    return BatchNorm(gamma, beta, eps=eps, momentum=momentum)


def bn_train_by_hand(z: Array, gamma: Array, beta: Array, eps: float) -> Array:
    mu = z.mean(axis=0)
    var = ((z - mu) ** 2).mean(axis=0)
    out: Array = (z - mu) / np.sqrt(var + eps) * gamma + beta
    return out


def test_training_output_has_mean_beta_and_shrunk_variance() -> None:
    rng = np.random.default_rng(0)
    # A small spread (var ~ 1e-4 .. 4e-4) so that eps = 1e-5 visibly shrinks the output variance.
    z = rng.standard_normal((64, 3)) * np.array([0.01, 0.02, 0.015]) + np.array([3.0, -2.0, 0.5])
    gamma = np.array([1.5, 0.7, 2.0])
    bn = BatchNorm(gamma.copy(), np.zeros(3), eps=1e-5)
    out = bn.forward(z, training=True).copy()
    var = z.var(axis=0)  # biased
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-12)
    expected_var = gamma**2 * var / (var + 1e-5)
    np.testing.assert_allclose(out.var(axis=0), expected_var, rtol=1e-10)
    # The shrink factor is real here: it is not just gamma**2.
    assert np.all(expected_var < 0.97 * gamma**2)

    beta = np.array([0.3, -1.0, 2.5])
    bn = BatchNorm(gamma.copy(), beta.copy(), eps=1e-5)
    out = bn.forward(z, training=True).copy()
    np.testing.assert_allclose(out.mean(axis=0), beta, atol=1e-12)
    np.testing.assert_allclose(out, bn_train_by_hand(z, gamma, beta, 1e-5), rtol=1e-12, atol=1e-12)


def test_running_stats_follow_momentum_with_unbiased_variance() -> None:
    rng = np.random.default_rng(1)
    bn = make_bn(rng, 4, momentum=0.1)
    np.testing.assert_array_equal(bn.running_mean, np.zeros(4))
    np.testing.assert_array_equal(bn.running_var, np.ones(4))

    z1 = rng.standard_normal((5, 4)) * 2.0 + 1.0
    bn.forward(z1, training=True)
    mean1 = z1.sum(axis=0) / 5
    uvar1 = ((z1 - mean1) ** 2).sum(axis=0) / 4  # unbiased: N - 1
    np.testing.assert_allclose(bn.running_mean, 0.9 * 0.0 + 0.1 * mean1, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, 0.9 * 1.0 + 0.1 * uvar1, rtol=1e-12)

    z2 = rng.standard_normal((3, 4)) - 2.0
    bn.forward(z2, training=True)
    mean2 = z2.sum(axis=0) / 3
    uvar2 = ((z2 - mean2) ** 2).sum(axis=0) / 2
    np.testing.assert_allclose(bn.running_mean, 0.9 * (0.1 * mean1) + 0.1 * mean2, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, 0.9 * (0.9 + 0.1 * uvar1) + 0.1 * uvar2, rtol=1e-12)


def test_eval_mode_uses_running_stats_and_leaves_them_alone() -> None:
    rng = np.random.default_rng(2)
    bn = make_bn(rng, 3, eps=1e-3)
    for _ in range(3):
        bn.forward(rng.standard_normal((6, 3)) * 3.0 + 2.0, training=True)
    rm, rv = bn.running_mean.copy(), bn.running_var.copy()
    z = rng.standard_normal((4, 3))
    out = bn.forward(z, training=False)
    expected = (z - rm) / np.sqrt(rv + 1e-3) * bn.gamma + bn.beta
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    # Not the batch statistics of z ...
    assert not np.allclose(out, bn_train_by_hand(z, bn.gamma, bn.beta, 1e-3), atol=1e-3)
    # ... and evaluation neither moves the running statistics nor needs 2 samples.
    np.testing.assert_array_equal(bn.running_mean, rm)
    np.testing.assert_array_equal(bn.running_var, rv)
    one = bn.forward(z[:1], training=False)
    np.testing.assert_allclose(one, expected[:1], rtol=1e-12)


@pytest.mark.parametrize("n", [2, 3, 7])
def test_backward_matches_finite_differences(n: int) -> None:
    rng = np.random.default_rng(n)
    bn = make_bn(rng, 3)
    z = rng.standard_normal((n, 3)) * 1.5 + 0.5
    w = rng.standard_normal((n, 3))
    h = 1e-6

    def f() -> float:
        return float(np.sum(w * bn.forward(z, training=True)))

    bn.forward(z, training=True)
    dz = bn.backward(w).copy()  # dy = w for f = sum(w * y)
    dgamma, dbeta = bn.dgamma.copy(), bn.dbeta.copy()

    def numeric(arr: Array) -> Array:
        g = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            arr[idx] = old + h
            plus = f()
            arr[idx] = old - h
            minus = f()
            arr[idx] = old
            g[idx] = (plus - minus) / (2 * h)
        return g

    for analytic, wrt in ((dz, z), (dgamma, bn.gamma), (dbeta, bn.beta)):
        num = numeric(wrt)
        err = np.linalg.norm(analytic - num) / (np.linalg.norm(analytic) + np.linalg.norm(num))
        assert err < 1e-7
    # Closed forms for the parameter gradients.
    xhat = (z - z.mean(axis=0)) / np.sqrt(z.var(axis=0) + bn.eps)
    np.testing.assert_allclose(dbeta, w.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(dgamma, (w * xhat).sum(axis=0), rtol=1e-10)
    # The mean subtraction makes dz sum to zero over the batch, per feature.
    np.testing.assert_allclose(dz.sum(axis=0), 0.0, atol=1e-10)


def test_batch_of_one_in_training_raises() -> None:
    rng = np.random.default_rng(3)
    bn = make_bn(rng, 2)
    with pytest.raises(ValueError):
        bn.forward(rng.standard_normal((1, 2)), training=True)
    net = bpmon.Network([2, 3, 1], activation="relu", output="identity", batchnorm=True)
    X, y = np.array([[0.5, -1.0]]), np.array([[1.0]])
    with pytest.raises(ValueError):
        net.loss_and_grads(X, y)
    with pytest.raises(ValueError):
        net.loss(X, y, training=True)
    # Eval mode is fine with a single sample.
    assert net.predict(X).shape == (1, 1)


def test_network_bn_eps_and_momentum_take_effect() -> None:
    """A 3-4-2 tanh network with batch-norm, reproduced by hand with unusual eps and momentum."""
    eps, m = 0.5, 0.3
    kwargs: dict[str, Any] = {
        "activation": "tanh",
        "output": "identity",
        "loss": "mse",
        "init": "xavier",
        "seed": 4,
    }
    net = bpmon.Network([3, 4, 2], batchnorm=True, bn_eps=eps, bn_momentum=m, **kwargs)
    default = bpmon.Network([3, 4, 2], batchnorm=True, **kwargs)
    p = net.params
    rng = np.random.default_rng(4)
    p["layer0.gamma"][...] = default.params["layer0.gamma"][...] = rng.uniform(0.5, 1.5, 4)
    p["layer0.beta"][...] = default.params["layer0.beta"][...] = rng.uniform(-0.5, 0.5, 4)
    X = rng.standard_normal((5, 3)) * 0.4
    y = rng.standard_normal((5, 2))

    z = X @ p["layer0.W"] + p["layer0.b"]
    out = np.tanh(bn_train_by_hand(z, p["layer0.gamma"], p["layer0.beta"], eps))
    out = out @ p["layer1.W"] + p["layer1.b"]
    expected_loss = 0.5 * np.mean((y - out) ** 2)
    loss, _ = net.loss_and_grads(X, y)
    assert loss == pytest.approx(expected_loss, rel=1e-12)
    assert default.loss_and_grads(X, y)[0] != pytest.approx(expected_loss, rel=1e-3)

    # After that one training step: running stats by hand, then an eval-mode forward.
    running_mean = m * z.mean(axis=0)
    running_var = (1 - m) * 1.0 + m * z.var(axis=0, ddof=1)
    X2 = rng.standard_normal((3, 3))
    z2 = X2 @ p["layer0.W"] + p["layer0.b"]
    hid = (z2 - running_mean) / np.sqrt(running_var + eps) * p["layer0.gamma"] + p["layer0.beta"]
    expected_pred = np.tanh(hid) @ p["layer1.W"] + p["layer1.b"]
    np.testing.assert_allclose(net.predict(X2), expected_pred, rtol=1e-12)
    assert not np.allclose(default.predict(X2), expected_pred, atol=1e-3)
