"""Telemetry: the gradient-profile classifier, the per-layer numbers checked against a hand-written
backward pass, activation health, and where a non-finite loss came from."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

from bpmon.config import ACTIVATIONS, HIDDEN_ACTIVATIONS, Thresholds
from bpmon.engine import LayerView
from bpmon.engine.network import Network
from bpmon.engine.optimizers import make_optimizer
from bpmon.telemetry import (
    STATUSES,
    LayerStats,
    classify,
    collect,
    first_nonfinite,
    first_nonfinite_layer,
    layer_stats,
)

Array = NDArray[np.float64]
AnyArray = NDArray[np.floating]  # what a LayerView holds
TH = Thresholds()


def sigmoid(z: Array) -> Array:
    return 1.0 / (1.0 + np.exp(-z))


# --- classify ----------------------------------------------------------------------------------


def test_the_storys_profile_starves_the_first_layer() -> None:
    # backprop_lab.py's printout: the first layer gets 1e-4 while the last gets 1e-1.
    assert classify([1e-4, 1e-1], TH) == ("vanishing", "healthy")
    assert classify([1e-4, 3e-2, 1e-1], TH) == ("vanishing", "healthy", "healthy")


def test_uniformly_small_gradients_at_convergence_are_healthy() -> None:
    # The test is relative: a converged run has small gradients everywhere, and none starves.
    assert classify([1e-6, 1e-6, 1e-6], TH) == ("healthy",) * 3
    assert classify([2e-6, 1e-6, 3e-6], TH) == ("healthy",) * 3


def test_a_gradient_that_grew_on_the_way_back_is_exploding() -> None:
    # The first layer receives 1e3 times what the output layer does, the second 150 times.
    assert classify([1e-1, 1.5e-2, 1e-4], TH) == ("exploding", "exploding", "healthy")
    # 10 times is growth but not explosion; the calm layers then set the scale.
    assert classify([1e-1, 1e-3, 1e-4], TH) == ("exploding", "healthy", "healthy")
    assert classify([1.0, 1e-2, 1e-3], TH)[0] == "exploding"


def test_the_explode_abs_floor_flags_large_gradients_with_a_flat_profile() -> None:
    assert classify([150.0, 120.0], TH) == ("exploding", "exploding")
    assert classify([TH.explode_abs, 1.0], TH)[0] == "exploding"  # the bound is inclusive


def test_exploding_layers_do_not_set_the_scale_for_vanishing() -> None:
    # Against the exploding 200 the others would look vanishing; against 0.5 they are fine.
    assert classify([200.0, 0.5, 0.4], TH) == ("exploding", "healthy", "healthy")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_norms_are_nonfinite(bad: float) -> None:
    assert classify([bad, 0.1], TH) == ("nonfinite", "healthy")
    assert classify([0.1, 0.1, bad], TH) == ("healthy", "healthy", "nonfinite")
    assert classify([bad, bad], TH) == ("nonfinite", "nonfinite")


def test_the_vanish_abs_floor_flags_tiny_gradients_with_a_flat_profile() -> None:
    assert classify([1e-9, 1e-9], TH) == ("vanishing", "vanishing")
    assert classify([1e-9, 5e-9], TH) == ("vanishing", "vanishing")


def test_exactly_the_vanish_rel_ratio_counts_as_vanishing() -> None:
    th = Thresholds(vanish_rel=0.25)  # a power of two: the product is exact
    assert classify([0.25, 1.0], th) == ("vanishing", "healthy")
    assert classify([np.nextafter(0.25, 1.0), 1.0], th) == ("healthy", "healthy")
    assert classify([0.01, 1.0], TH)[0] == "vanishing"


def test_thresholds_can_be_overridden() -> None:
    assert classify([1e-4, 1e-1], Thresholds(vanish_rel=1e-4)) == ("healthy", "healthy")
    assert classify([1e-6, 1e-6], Thresholds(vanish_abs=1e-5)) == ("vanishing", "vanishing")
    assert classify([150.0, 120.0], Thresholds(explode_abs=1e3)) == ("healthy", "healthy")
    lenient = Thresholds(explode_abs=1e9, explode_rel=1e9)
    # Nothing explodes now, so the output layer is the one that starves next to the first.
    assert classify([1.0, 1e-3], lenient) == ("healthy", "vanishing")
    assert classify([0.5, 0.1], Thresholds(explode_rel=5.0)) == ("exploding", "healthy")


def test_classify_edge_cases() -> None:
    assert classify([], TH) == ()
    assert classify([0.1], TH) == ("healthy",)
    assert classify([0.0], TH) == ("vanishing",)
    assert set(classify([1e-4, 0.1, 1e3, math.nan], TH)) <= set(STATUSES)


# --- collect -----------------------------------------------------------------------------------


def _batch(seed: int = 1, n: int = 8) -> tuple[Array, Array]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 1.0, size=(n, 2))
    y = (rng.uniform(size=(n, 1)) > 0.5).astype(np.float64)
    return X, y


def test_collect_matches_a_hand_written_backward_pass() -> None:
    net = Network([2, 3, 1], activation="sigmoid", output="sigmoid", loss="mse", seed=0)
    lr = 0.5
    opt = make_optimizer("sgd", net.params, net.grads, lr)
    X, y = _batch()
    W1, b1 = net.params["layer0.W"].copy(), net.params["layer0.b"].copy()
    W2, b2 = net.params["layer1.W"].copy(), net.params["layer1.b"].copy()

    loss = net.forward_backward(X, y)
    opt.step()
    stats = collect(net, opt, TH)

    # The same network by hand: mse is 0.5 * mean over all elements, through a sigmoid output.
    a1 = sigmoid(X @ W1 + b1)
    out = sigmoid(a1 @ W2 + b2)
    assert loss == pytest.approx(0.5 * np.mean((out - y) ** 2), rel=1e-12)
    delta2 = (out - y) / y.size * out * (1.0 - out)
    dW2, db2 = a1.T @ delta2, delta2.sum(axis=0)
    delta1 = (delta2 @ W2.T) * a1 * (1.0 - a1)
    dW1, db1 = X.T @ delta1, delta1.sum(axis=0)

    assert [s.name for s in stats] == ["layer0", "layer1"]
    assert [(s.fan_in, s.fan_out) for s in stats] == [(2, 3), (3, 1)]
    for s, dW, db, delta, W in (
        (stats[0], dW1, db1, delta1, W1),
        (stats[1], dW2, db2, delta2, W2),
    ):
        W_after = W - lr * dW
        assert s.grad_norm == pytest.approx(np.linalg.norm(dW), rel=1e-10)
        assert s.bias_grad_norm == pytest.approx(np.linalg.norm(db), rel=1e-10)
        assert s.delta_norm == pytest.approx(np.linalg.norm(delta), rel=1e-10)
        assert s.weight_norm == pytest.approx(np.linalg.norm(W_after), rel=1e-10)
        ratio = np.linalg.norm(lr * dW) / np.linalg.norm(W_after)
        assert s.update_ratio == pytest.approx(ratio, rel=1e-10)
    assert stats[0].health_label == "saturated"
    assert stats[1].health_label == "" and stats[1].health == 0.0
    assert tuple(s.status for s in stats) == classify([s.grad_norm for s in stats], TH)


def test_collect_returns_plain_immutable_values() -> None:
    net = Network([2, 4, 1], activation="tanh", seed=0)
    opt = make_optimizer("adam", net.params, net.grads, 0.01)
    X, y = _batch()
    net.forward_backward(X, y)
    opt.step()
    for s in collect(net, opt, TH):
        assert isinstance(s, LayerStats)
        with pytest.raises(AttributeError):
            s.grad_norm = 0.0  # type: ignore[misc]
        for name in ("grad_norm", "bias_grad_norm", "weight_norm", "update_ratio", "delta_norm"):
            value = getattr(s, name)
            assert type(value) is float and math.isfinite(value), name
        assert type(s.health) is float and 0.0 <= s.health <= 1.0


def test_collect_without_an_optimizer_has_no_update_ratio() -> None:
    net = Network([2, 4, 1], seed=0)
    net.forward_backward(*_batch())
    stats = collect(net, None, TH)
    assert all(math.isnan(s.update_ratio) for s in stats)
    assert all(math.isfinite(s.grad_norm) for s in stats)


def test_relu_units_forced_dead_are_counted() -> None:
    net = Network([2, 4, 1], activation="relu", output="sigmoid", init="he", seed=0)
    net.params["layer0.b"][:2] = -1e3  # in place: the network keeps references to its arrays
    X, y = _batch(n=16)
    net.forward_backward(X, y)
    stats = collect(net, None, TH)
    assert stats[0].health_label == "dead"
    assert stats[0].health == pytest.approx(0.5, abs=0.25)
    assert stats[0].health >= 0.5
    # A dead unit passes no gradient to its weights.
    assert not net.grads["layer0.W"][:, :2].any()

    net.params["layer0.b"][:] = -1e3
    net.forward_backward(X, y)
    assert collect(net, None, TH)[0].health == 1.0


def test_sigmoid_with_huge_weights_is_saturated() -> None:
    net = Network([2, 4, 1], activation="sigmoid", seed=0)
    X = np.abs(_batch(n=16)[0]) + 0.5  # positive inputs, away from zero
    y = np.ones((16, 1))
    net.forward_backward(X, y)
    assert collect(net, None, TH)[0].health == 0.0  # std 0.1 weights: nowhere near saturation

    net.params["layer0.W"][:] = 50.0
    net.forward_backward(X, y)
    stats = collect(net, None, TH)
    assert stats[0].health_label == "saturated"
    assert stats[0].health == 1.0


# --- first_nonfinite_layer ---------------------------------------------------------------------


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_first_nonfinite_layer_names_the_poisoned_layer(layer: int) -> None:
    net = Network([2, 4, 4, 1], activation="relu", output="identity", seed=0)
    X, y = _batch()
    net.forward_backward(X, y)
    assert first_nonfinite_layer(net) == "layer2"  # all finite: blame the output layer

    net.params[f"layer{layer}.W"][0, 0] = np.inf
    with np.errstate(all="ignore"):
        loss = net.forward_backward(X, y)
    assert not math.isfinite(loss)
    assert first_nonfinite_layer(net) == f"layer{layer}"


def test_first_nonfinite_layer_looks_at_parameters_before_any_forward() -> None:
    net = Network([2, 3, 3, 1], seed=0)
    net.params["layer1.b"][0] = np.nan
    assert first_nonfinite_layer(net) == "layer1"


def test_first_nonfinite_layer_looks_at_batchnorm_parameters() -> None:
    net = Network([2, 4, 4, 1], activation="relu", batchnorm=True, seed=0)
    net.forward_backward(*_batch())
    assert first_nonfinite_layer(net) == "layer2"
    net.params["layer1.gamma"][0] = np.nan
    assert first_nonfinite_layer(net) == "layer1"
    net.params["layer0.beta"][-1] = -np.inf
    assert first_nonfinite_layer(net) == "layer0"


def test_first_nonfinite_on_hand_built_views() -> None:
    def view(i: int, z: Array | None = None, a: Array | None = None) -> LayerView:
        return LayerView(name=f"layer{i}", W=np.ones((2, 2)), z=z, a=a)

    finite = np.ones((3, 2))
    assert first_nonfinite([view(0, z=finite, a=finite), view(1)]) == "layer1"
    assert first_nonfinite([view(0, a=finite * np.nan), view(1)]) == "layer0"
    # A parameter listed in ``params`` only (batch-norm's gamma, say) counts too.
    bad_gamma = LayerView(name="layer0", W=np.ones((2, 2)), params={"g": np.array([np.inf])})
    assert first_nonfinite([view(0), bad_gamma, view(2)]) == "layer0"
    with pytest.raises(ValueError):
        first_nonfinite([])


# --- layer_stats on views built from plain arrays (what a bridge from another framework does) --


def _expected_health(activation: str | None, a: AnyArray, z: AnyArray) -> tuple[float, str]:
    """The health definitions, written out independently of the engine."""
    if activation == "sigmoid":
        return float(np.mean((a < 0.05) | (a > 0.95))), "saturated"
    if activation == "tanh":
        return float(np.mean(np.abs(a) > 0.95)), "saturated"
    if activation in ("relu", "leaky_relu"):
        return float(np.mean(np.all(z <= 0.0, axis=0))), "dead"
    return 0.0, ""


def test_layer_stats_from_plain_arrays_match_collect() -> None:
    """A 2-3-1 sigmoid net trained one step by hand, in NumPy, then described with views: the
    figures equal those the engine's own network reports after the same step."""
    net = Network([2, 3, 1], activation="sigmoid", output="sigmoid", loss="mse", seed=0)
    lr = 0.5
    opt = make_optimizer("sgd", net.params, net.grads, lr)
    X, y = _batch()
    W1, b1 = net.params["layer0.W"].copy(), net.params["layer0.b"].copy()
    W2, b2 = net.params["layer1.W"].copy(), net.params["layer1.b"].copy()
    net.forward_backward(X, y)
    opt.step()
    from_engine = collect(net, opt, TH)

    z1 = X @ W1 + b1
    a1 = sigmoid(z1)
    out = sigmoid(a1 @ W2 + b2)
    delta2 = (out - y) / y.size * out * (1.0 - out)
    delta1 = (delta2 @ W2.T) * a1 * (1.0 - a1)
    dW1, dW2 = X.T @ delta1, a1.T @ delta2
    views = (
        LayerView(
            name="layer0",
            W=W1 - lr * dW1,
            dW=dW1,
            db=delta1.sum(axis=0),
            update=lr * dW1,
            delta=delta1,
            activation="sigmoid",
            z=z1,
            a=a1,
        ),
        LayerView(
            name="layer1",
            W=W2 - lr * dW2,
            dW=dW2,
            db=delta2.sum(axis=0),
            update=lr * dW2,
            delta=delta2,
        ),
    )
    from_views = layer_stats(views, TH)

    assert len(from_views) == len(from_engine) == 2
    for mine, theirs in zip(from_views, from_engine, strict=True):
        for field in ("grad_norm", "bias_grad_norm", "weight_norm", "update_ratio", "delta_norm"):
            assert getattr(mine, field) == pytest.approx(getattr(theirs, field), rel=1e-10), field
        for field in ("name", "fan_in", "fan_out", "health", "health_label", "status"):
            assert getattr(mine, field) == getattr(theirs, field), field
        assert mine.activation == theirs.activation
    assert [s.activation for s in from_views] == ["sigmoid", None]


@st.composite
def plain_views(draw: st.DrawFn) -> tuple[LayerView, ...]:
    """1-4 layers of random arrays, each with any activation name or none."""
    n_layers = draw(st.integers(1, 4))
    widths = draw(st.lists(st.integers(1, 5), min_size=n_layers + 1, max_size=n_layers + 1))
    batch = draw(st.integers(1, 6))
    floats = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)

    def arr(*shape: int) -> Array:
        return draw(hnp.arrays(np.float64, shape, elements=floats))

    def maybe(*shape: int) -> Array | None:
        return arr(*shape) if draw(st.booleans()) else None

    views = []
    for i in range(n_layers):
        fan_in, fan_out = widths[i], widths[i + 1]
        activation = draw(st.sampled_from((*ACTIVATIONS, None)))
        z = arr(batch, fan_out)
        views.append(
            LayerView(
                name=f"layer{i}",
                W=arr(fan_in, fan_out),
                dW=maybe(fan_in, fan_out),
                db=maybe(fan_out),
                update=maybe(fan_in, fan_out),
                delta=maybe(batch, fan_out),
                activation=activation,
                z=z,
                a=1.0 / (1.0 + np.exp(-np.clip(z, -500, 500))) if activation else None,
            )
        )
    return tuple(views)


def _norm_or_nan(a: AnyArray | None) -> float:
    return float(np.linalg.norm(a)) if a is not None else math.nan


@settings(max_examples=60, deadline=None)
@given(plain_views())
def test_layer_stats_computes_every_figure_from_the_views(views: tuple[LayerView, ...]) -> None:
    stats = layer_stats(views, TH)
    assert len(stats) == len(views)
    grad_norms = [_norm_or_nan(v.dW) for v in views]
    assert tuple(s.status for s in stats) == classify(grad_norms, TH)
    for s, v, g in zip(stats, views, grad_norms, strict=True):
        assert isinstance(s, LayerStats)
        assert (s.name, s.fan_in, s.fan_out) == (v.name, *v.W.shape)
        assert s.activation == v.activation
        w_norm = float(np.linalg.norm(v.W))
        expected = {
            "grad_norm": g,
            "bias_grad_norm": _norm_or_nan(v.db),
            "weight_norm": w_norm,
            "delta_norm": _norm_or_nan(v.delta),
            "update_ratio": (
                _norm_or_nan(v.update) / w_norm if v.update is not None and w_norm > 0 else math.nan
            ),
        }
        for field, want in expected.items():
            got = getattr(s, field)
            assert type(got) is float, field
            if math.isnan(want):
                assert math.isnan(got), field
            else:
                assert got == pytest.approx(want, rel=1e-9, abs=1e-300), field
        assert v.z is not None
        if v.a is None:  # no activation output: no health, whatever the name
            assert (s.health, s.health_label) == (0.0, "")
        else:
            assert (s.health, s.health_label) == _expected_health(v.activation, v.a, v.z)
        assert type(s.health) is float and 0.0 <= s.health <= 1.0


def test_a_view_with_only_weights_has_nan_figures_and_no_health() -> None:
    (s,) = layer_stats([LayerView(name="out", W=np.ones((3, 2)))], TH)
    assert (s.name, s.fan_in, s.fan_out) == ("out", 3, 2)
    assert s.weight_norm == pytest.approx(math.sqrt(6.0))
    for value in (s.grad_norm, s.bias_grad_norm, s.update_ratio, s.delta_norm):
        assert math.isnan(value)
    assert s.status == "nonfinite"
    assert (s.health, s.health_label, s.activation) == (0.0, "", None)


def test_an_activation_the_engine_does_not_implement_is_named_without_health() -> None:
    z = -np.ones((4, 3))
    view = LayerView(name="layer0", W=np.ones((2, 3)), activation="gelu", z=z, a=z)
    (s,) = layer_stats([view], TH)
    assert s.activation == "gelu"
    assert (s.health, s.health_label) == (0.0, "")


def test_zero_weights_have_no_update_ratio() -> None:
    view = LayerView(name="layer0", W=np.zeros((2, 2)), update=np.ones((2, 2)))
    assert math.isnan(layer_stats([view], TH)[0].update_ratio)


@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize("batchnorm", [False, True])
def test_layer_stats_name_each_layers_activation(activation: str, batchnorm: bool) -> None:
    net = Network([2, 4, 3, 1], activation=activation, batchnorm=batchnorm, seed=0)
    net.forward_backward(*_batch())
    stats = collect(net, None, TH)
    assert [s.activation for s in stats] == [activation, activation, None]
    assert stats[-1].health_label == ""


def test_layer_stats_activation_defaults_to_none() -> None:
    s = LayerStats(
        name="layer0",
        fan_in=1,
        fan_out=1,
        grad_norm=0.1,
        bias_grad_norm=0.1,
        weight_norm=1.0,
        update_ratio=0.01,
        delta_norm=0.1,
        health=0.0,
        health_label="",
        status="healthy",
    )
    assert s.activation is None
