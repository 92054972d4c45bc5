"""Central finite-difference checks of every gradient the network reports.

Everything is float64. The perturbed losses come from ``net.loss(X, y, training=True)``, so
batch-norm normalises with the batch statistics exactly as in the backward pass (the running
statistics it also updates play no part in a training-mode loss).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

import bpmon
from bpmon.config import HIDDEN_ACTIVATIONS, LOSSES
from bpmon.engine.losses import LOSSES_BY_NAME

Array = NDArray[np.floating]
Case = tuple[bpmon.Network, Array, Array]

# Every loss with every output it is defined with, from the registry: a new one is checked too.
LOSS_OUTPUT_PAIRS = tuple(
    (loss, output) for loss in LOSSES for output in LOSSES_BY_NAME[loss].outputs
)
H = 1e-5
REL_TOL = 1e-6
# A perturbation of H moves a pre-activation by at most a few H, so a point at least this far from
# the ReLU/leaky-ReLU kink at 0 stays on one side of it for every finite-difference evaluation.
# (Stricter than the 1e-4 that would be enough for unit-scale inputs.)
KINK_MARGIN = 1e-3
# The true gradient of a Dense bias followed by batch-norm is exactly zero; what remains is
# rounding (analytic ~1e-17, numeric ~1e-11).
ZERO_GRAD_TOL = 1e-9
# Absolute slack for the random architectures: rounding in a loss of size ~1 leaves ~1e-11 of noise
# per finite-difference entry, which dominates the relative error once a (deep, saturated or
# narrow) layer's true gradient is ~1e-6. It is far below any real gradient mistake.
FD_NOISE_TOL = 1e-9
BN_EPS = 1e-5

_ACT: dict[str, Callable[[Array], Array]] = {
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "identity": lambda z: z,
}


def make_targets(rng: np.random.Generator, loss: str, output: str, n: int, k: int) -> Array:
    if loss == "cross_entropy":
        return np.eye(k)[rng.integers(0, k, size=n)]
    if loss == "bce":
        return rng.integers(0, 2, size=(n, k)).astype(np.float64)
    if output == "identity":
        return rng.standard_normal((n, k))
    return rng.uniform(0.0, 1.0, size=(n, k))


def hidden_preactivations(net: bpmon.Network, X: Array) -> list[Array]:
    """The input of every hidden activation in a training-mode forward, computed from the
    parameters with plain NumPy (not from the engine's caches)."""
    p = net.params
    a = X
    out: list[Array] = []
    for i in range(len(net.sizes) - 2):
        z = a @ p[f"layer{i}.W"] + p[f"layer{i}.b"]
        if net.batchnorm:
            z = (z - z.mean(axis=0)) / np.sqrt(z.var(axis=0) + BN_EPS)
            z = z * p[f"layer{i}.gamma"] + p[f"layer{i}.beta"]
        out.append(z)
        a = _ACT[net.activation](z)
    return out


def fd_safe(net: bpmon.Network, X: Array) -> bool:
    """No pre-activation near a kink, and no batch-norm input feature whose batch variance is
    below 1e-3 (100 eps): near-constant features make batch-norm so curved in the weights that
    the O(H^2) truncation error of central differences approaches the tolerance."""
    p = net.params
    a = X
    for i, z in enumerate(hidden_preactivations(net, X)):
        if net.batchnorm:
            raw = a @ p[f"layer{i}.W"] + p[f"layer{i}.b"]
            if np.min(raw.var(axis=0)) < 1e-3:
                return False
        if net.activation in ("relu", "leaky_relu") and np.min(np.abs(z)) < KINK_MARGIN:
            return False
        a = _ACT[net.activation](z)
    return True


def numeric_grad(net: bpmon.Network, name: str, X: Array, y: Array) -> Array:
    p = net.params[name]
    g = np.zeros_like(p)
    for idx in np.ndindex(p.shape):
        old = p[idx]
        p[idx] = old + H
        plus = net.loss(X, y, training=True)
        p[idx] = old - H
        minus = net.loss(X, y, training=True)
        p[idx] = old
        g[idx] = (plus - minus) / (2.0 * H)
    return g


def rel_error(analytic: Array, numeric: Array) -> float:
    denom = float(np.linalg.norm(analytic) + np.linalg.norm(numeric))
    return float(np.linalg.norm(analytic - numeric)) / denom


def is_bias_before_bn(net: bpmon.Network, name: str) -> bool:
    layer, kind = name.split(".")
    return net.batchnorm and kind == "b" and int(layer.removeprefix("layer")) < len(net.sizes) - 2


def assert_zero_if_bias_before_bn(
    net: bpmon.Network, name: str, analytic: Array, numeric: Array
) -> bool:
    """A Dense bias followed by batch-norm has an exactly-zero true gradient (the mean
    subtraction removes it): check that both sides are ~0 and say the parameter was handled."""
    if not is_bias_before_bn(net, name):
        return False
    assert np.max(np.abs(analytic)) < ZERO_GRAD_TOL, name
    assert np.max(np.abs(numeric)) < ZERO_GRAD_TOL, name
    return True


def build_case(
    sizes: list[int], activation: str, batchnorm: bool, loss: str, output: str, n: int, seed: int
) -> Case | None:
    """A network and a batch on which finite differences are valid (retrying the data draw);
    None if the network's weights leave no such batch (e.g. a tiny weight before batch-norm)."""
    init = "he" if activation in ("relu", "leaky_relu") else "xavier"
    net = bpmon.Network(
        sizes=sizes,
        activation=activation,
        output=output,
        batchnorm=batchnorm,
        init=init,
        loss=loss,
        seed=seed,
        bn_eps=BN_EPS,
    )
    rng = np.random.default_rng(seed)
    if batchnorm:
        # Move gamma/beta off their 1/0 start so their gradients are exercised at a generic point.
        for i in range(len(sizes) - 2):
            net.params[f"layer{i}.gamma"][...] = rng.uniform(0.5, 1.5, sizes[i + 1])
            net.params[f"layer{i}.beta"][...] = rng.uniform(-0.5, 0.5, sizes[i + 1])
    for _ in range(20):
        X = rng.standard_normal((n, sizes[0]))
        if fd_safe(net, X):
            return net, X, make_targets(rng, loss, output, n, sizes[-1])
    return None


@pytest.mark.parametrize(("loss", "output"), LOSS_OUTPUT_PAIRS)
@pytest.mark.parametrize("batchnorm", [False, True], ids=["plain", "bn"])
@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
def test_every_gradient_matches_finite_differences(
    activation: str, batchnorm: bool, loss: str, output: str
) -> None:
    case = build_case([3, 5, 4, 3], activation, batchnorm, loss, output, n=6, seed=1)
    assert case is not None
    net, X, y = case
    value, grads = net.loss_and_grads(X, y)
    assert value == pytest.approx(net.loss(X, y, training=True), rel=1e-12)
    for name in net.params:
        numeric = numeric_grad(net, name, X, y)
        analytic = grads[name]
        if assert_zero_if_bias_before_bn(net, name, analytic, numeric):
            continue
        # Guard against a vacuous pass: these gradients are far from zero at this point.
        assert np.linalg.norm(numeric) > 1e-4, name
        assert rel_error(analytic, numeric) < REL_TOL, name


@pytest.mark.parametrize("batchnorm", [False, True])
def test_grads_have_the_keys_shapes_and_dtypes_of_params(batchnorm: bool) -> None:
    net = bpmon.Network([2, 8, 8, 4, 1], activation="relu", output="identity", batchnorm=batchnorm)
    rng = np.random.default_rng(0)
    _, grads = net.loss_and_grads(rng.standard_normal((5, 2)), rng.standard_normal((5, 1)))
    expected = {f"layer{i}.{k}" for i in range(4) for k in ("W", "b")}
    if batchnorm:
        expected |= {f"layer{i}.{k}" for i in range(3) for k in ("gamma", "beta")}
    assert set(net.params) == expected
    assert list(grads) == list(net.params)
    assert list(net.grads) == list(net.params)
    for name, p in net.params.items():
        assert grads[name].shape == p.shape, name
        assert grads[name].dtype == p.dtype, name
        # loss_and_grads returns copies, not the live buffers.
        assert grads[name] is not net.grads[name], name


@st.composite
def random_cases(draw: st.DrawFn) -> Case:
    loss, output = draw(st.sampled_from(LOSS_OUTPUT_PAIRS))
    depth = draw(st.integers(1, 3))
    hidden = draw(st.lists(st.integers(1, 6), min_size=depth, max_size=depth))
    n_in = draw(st.integers(1, 6))
    n_out = draw(st.integers(2 if output == "softmax" else 1, 6))
    activation = draw(st.sampled_from(HIDDEN_ACTIVATIONS))
    batchnorm = draw(st.booleans())
    n = draw(st.integers(2, 8))
    seed = draw(st.integers(0, 2**16))
    case = build_case([n_in, *hidden, n_out], activation, batchnorm, loss, output, n, seed)
    assume(case is not None)
    assert case is not None
    return case


@settings(max_examples=25, deadline=None)
@given(random_cases())
def test_random_architectures_match_finite_differences(
    case: Case,
) -> None:
    net, X, y = case
    _, grads = net.loss_and_grads(X, y)
    for name in net.params:
        numeric = numeric_grad(net, name, X, y)
        analytic = grads[name]
        if not assert_zero_if_bias_before_bn(net, name, analytic, numeric):
            # ||a - n|| < REL_TOL * (||a|| + ||n||), with FD_NOISE_TOL for gradients that are ~0
            # (legitimately, e.g. behind a width-1 ReLU layer that is dead on the whole batch).
            err = float(np.linalg.norm(analytic - numeric))
            denom = float(np.linalg.norm(analytic) + np.linalg.norm(numeric))
            assert err < REL_TOL * denom + FD_NOISE_TOL, name
