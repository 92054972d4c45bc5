"""Numerics, conventions and plumbing of the engine: activations, losses, the story's SimpleNet,
dtypes, validation, caching, initialisation, the name registries and the per-layer views."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable, Collection, Mapping
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

import bpmon
from bpmon import config
from bpmon.engine import LayerView, make_optimizer
from bpmon.engine.activations import ACTIVATIONS_BY_NAME, get_activation
from bpmon.engine.initializers import INITS_BY_NAME, init_std
from bpmon.engine.losses import LOSSES_BY_NAME, OUTPUTS_BY_NAME, Loss
from bpmon.engine.optimizers import OPTIMIZERS_BY_NAME
from bpmon.engine.registry import RegistryMismatchError, check_names

Array = NDArray[np.floating]

XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_Y = np.array([[0.0], [1.0], [1.0], [0.0]])


def naive_sigmoid(z: Array) -> Array:
    return 1.0 / (1.0 + np.exp(-z))


def loss_value(name: str, output: str, z: Array, y: Array) -> float:
    return Loss(name, output, np.dtype(np.float64)).value(z, y)


# --- activations -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sigmoid_is_overflow_safe(dtype: type[np.floating]) -> None:
    sig = get_activation("sigmoid")
    z = np.array([-1000.0, -100.0, 0.0, 100.0, 1000.0], dtype=dtype)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        a = sig.forward(z, np.empty_like(z))
        d = sig.backward(a, z, np.ones_like(z), np.empty_like(z))
    assert a[0] == 0.0 and a[-1] == 1.0 and a[2] == 0.5
    assert a.dtype == dtype
    assert d[0] == 0.0 and d[-1] == 0.0 and d[2] == 0.25


def test_sigmoid_matches_the_textbook_formula() -> None:
    z = np.linspace(-30.0, 30.0, 241)
    a = get_activation("sigmoid").forward(z, np.empty_like(z))
    np.testing.assert_allclose(a, naive_sigmoid(z), rtol=1e-12, atol=1e-15)


def test_hidden_activations_and_derivatives() -> None:
    z = np.array([-2.0, -0.5, 0.0, 0.5, 3.0])
    expected = {
        "sigmoid": (naive_sigmoid(z), naive_sigmoid(z) * (1 - naive_sigmoid(z))),
        "tanh": (np.tanh(z), 1 - np.tanh(z) ** 2),
        # The derivative at exactly 0 is taken as 0 (PyTorch's convention) / the leaky slope.
        "relu": (np.array([0, 0, 0, 0.5, 3.0]), np.array([0, 0, 0, 1.0, 1.0])),
        "leaky_relu": (
            np.array([-0.02, -0.005, 0, 0.5, 3.0]),
            np.array([0.01, 0.01, 0.01, 1.0, 1.0]),
        ),
        "identity": (z, np.ones(5)),
    }
    upstream = np.array([1.0, -2.0, 3.0, 0.5, -1.0])
    for name, (value, slope) in expected.items():
        act = get_activation(name)
        a = act.forward(z, np.empty_like(z)).copy()
        np.testing.assert_allclose(a, value, rtol=1e-12, atol=1e-15, err_msg=name)
        dz = act.backward(a, z, upstream, np.empty_like(z))
        np.testing.assert_allclose(dz, slope * upstream, rtol=1e-12, atol=1e-15, err_msg=name)


# --- losses ------------------------------------------------------------------------------------


def test_bce_is_finite_for_huge_logits() -> None:
    z = np.array([[1000.0], [-1000.0], [1000.0], [-1000.0]])
    wrong = np.array([[0.0], [1.0], [0.0], [1.0]])
    # exp(-|z|) underflowing to 0 is the intended behaviour; overflow or nan/inf is not.
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = Loss("bce", "sigmoid", np.dtype(np.float64))
        value, out, dz = loss.value_and_grad(z, wrong)
        assert value == 1000.0  # each term is max(z, 0) - z y = 1000 exactly
        np.testing.assert_array_equal(out, [[1.0], [0.0], [1.0], [0.0]])
        np.testing.assert_array_equal(dz, [[0.25], [-0.25], [0.25], [-0.25]])
        assert loss.value(z, 1.0 - wrong) == 0.0

        # Through a network: a 1-1 sigmoid/bce net with W = 1000.
        net = bpmon.Network([1, 1], output="sigmoid", loss="bce")
        net.params["layer0.W"][...] = 1000.0
        value, grads = net.loss_and_grads(np.array([[1.0], [-1.0]]), np.array([[0.0], [1.0]]))
    assert value == 1000.0
    # dW = mean(x * (s - y)) = (1 * 1 + (-1) * (-1)) / 2 = 1; db = (1 - 1) / 2 = 0.
    assert grads["layer0.W"][0, 0] == pytest.approx(1.0, rel=1e-12)
    assert grads["layer0.b"][0] == pytest.approx(0.0, abs=1e-12)


def test_bce_equals_the_naive_formula_for_moderate_logits() -> None:
    rng = np.random.default_rng(0)
    z = rng.uniform(-6.0, 6.0, size=(7, 3))
    for y in (rng.integers(0, 2, size=(7, 3)).astype(float), rng.uniform(0, 1, size=(7, 3))):
        s = naive_sigmoid(z)
        naive = np.mean(-y * np.log(s) - (1 - y) * np.log(1 - s))
        assert loss_value("bce", "sigmoid", z, y) == pytest.approx(naive, rel=1e-12)


def test_cross_entropy_of_uniform_logits_is_ln_10() -> None:
    y = np.eye(10)[[0, 3, 9, 5]]
    for shift in (0.0, 7.5, 1000.0, -1000.0):  # a per-row constant leaves softmax uniform
        z = np.full((4, 10), shift) + np.array([[0.0], [1.0], [2.0], [-3.0]])
        assert loss_value("cross_entropy", "softmax", z, y) == pytest.approx(math.log(10), 1e-12)
    # And through a network whose output layer is all zeros.
    net = bpmon.Network([3, 10], output="softmax", loss="cross_entropy")
    net.params["layer0.W"][...] = 0.0
    X = np.random.default_rng(1).standard_normal((4, 3))
    assert net.loss(X, y) == pytest.approx(math.log(10), rel=1e-12)
    np.testing.assert_allclose(net.predict(X), 0.1, rtol=1e-12)


def test_cross_entropy_matches_log_softmax_for_huge_logits() -> None:
    z = np.array([[1000.0, 0.0, -1000.0], [2.0, 1.0, 0.5]])
    y = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = loss_value("cross_entropy", "softmax", z, y)
    row2 = -(0.5 - math.log(math.exp(2.0) + math.exp(1.0) + math.exp(0.5)))
    assert value == pytest.approx((1000.0 + row2) / 2, rel=1e-12)


def test_mse_is_half_the_mean_over_all_elements() -> None:
    z = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert loss_value("mse", "identity", z, np.zeros((2, 2))) == pytest.approx(3.75, rel=1e-15)
    rng = np.random.default_rng(2)
    z, y = rng.standard_normal((5, 2)), rng.standard_normal((5, 2))
    assert loss_value("mse", "identity", z, y) == pytest.approx(0.5 * np.mean((y - z) ** 2), 1e-12)
    s = naive_sigmoid(z)
    assert loss_value("mse", "sigmoid", z, y) == pytest.approx(0.5 * np.mean((y - s) ** 2), 1e-12)
    # Through a 3-2 identity network.
    net = bpmon.Network([3, 2], output="identity", loss="mse", seed=3)
    X = rng.standard_normal((5, 3))
    out = X @ net.params["layer0.W"] + net.params["layer0.b"]
    assert net.loss(X, y) == pytest.approx(0.5 * np.mean((y - out) ** 2), rel=1e-12)


# --- the story's SimpleNet ---------------------------------------------------------------------


def test_story_simplenet_step_on_xor() -> None:
    """The story's 2-4-1 sigmoid/mse SimpleNet, forward, backward and one lr = 0.5 update."""
    net = bpmon.Network(
        [2, 4, 1], activation="sigmoid", output="sigmoid", loss="mse", init="normal", seed=0
    )
    W1, b1 = net.params["layer0.W"].copy(), net.params["layer0.b"].copy()
    W2, b2 = net.params["layer1.W"].copy(), net.params["layer1.b"].copy()
    X, y = XOR_X, XOR_Y
    m = X.shape[0]

    # forward
    z1 = X @ W1 + b1
    a1 = naive_sigmoid(z1)
    z2 = a1 @ W2 + b2
    out = naive_sigmoid(z2)
    story_loss = 0.5 * np.mean((y - out) ** 2)
    # backward: with m = 4 and one output, the story's /m is the mean over all elements
    delta2 = (out - y) * out * (1 - out)
    dW2 = a1.T @ delta2 / m
    db2 = np.sum(delta2, axis=0) / m
    delta1 = (delta2 @ W2.T) * a1 * (1 - a1)
    dW1 = X.T @ delta1 / m
    db1 = np.sum(delta1, axis=0) / m

    loss, grads = net.loss_and_grads(X, y)
    assert loss == pytest.approx(story_loss, rel=1e-12)
    assert 0.12 < loss < 0.13  # ~0.125: outputs near 0.5 at this small init
    for name, want in (("layer0.W", dW1), ("layer0.b", db1), ("layer1.W", dW2), ("layer1.b", db2)):
        np.testing.assert_allclose(grads[name], want, rtol=1e-10, atol=1e-16, err_msg=name)
    np.testing.assert_allclose(net.predict(X), out, rtol=1e-12)

    # The update, W -= lr * dW, through the sgd optimiser.
    net.forward_backward(X, y)
    make_optimizer("sgd", net.params, net.grads, lr=0.5).step()
    for name, before, g in (("layer0.W", W1, dW1), ("layer0.b", b1, db1)):
        np.testing.assert_allclose(net.params[name], before - 0.5 * g, rtol=1e-12, atol=1e-16)
    for name, before, g in (("layer1.W", W2, dW2), ("layer1.b", b2, db2)):
        np.testing.assert_allclose(net.params[name], before - 0.5 * g, rtol=1e-12, atol=1e-16)


def test_story_init_is_normal_times_init_std() -> None:
    net = bpmon.Network([2, 4, 1], init="normal", init_std=0.1, seed=7)
    rng = np.random.default_rng(7)
    np.testing.assert_allclose(net.params["layer0.W"], rng.standard_normal((2, 4)) * 0.1)
    np.testing.assert_allclose(net.params["layer1.W"], rng.standard_normal((4, 1)) * 0.1)
    np.testing.assert_array_equal(net.params["layer0.b"], 0.0)


# --- dtypes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loss", "output", "batchnorm"),
    [("mse", "identity", True), ("bce", "sigmoid", False), ("cross_entropy", "softmax", True)],
)
def test_float32_network_stays_float32(loss: str, output: str, batchnorm: bool) -> None:
    net = bpmon.Network(
        [3, 5, 4, 2], activation="tanh", output=output, loss=loss, batchnorm=batchnorm,
        dtype="float32",
    )  # fmt: skip
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 3))  # float64 input
    y = np.eye(2)[rng.integers(0, 2, 6)]
    value, grads = net.loss_and_grads(X, y)
    assert isinstance(value, float) and math.isfinite(value)
    for name, p in net.params.items():
        assert p.dtype == np.float32, name
        assert grads[name].dtype == np.float32, name
        assert net.grads[name].dtype == np.float32, name
    assert net.predict(X).dtype == np.float32
    opt = make_optimizer("adam", net.params, net.grads, lr=0.01)
    opt.step()
    for name, p in net.params.items():
        assert p.dtype == np.float32, name
        assert opt.steps[name].dtype == np.float32, name
    # Same numbers as float64, to float32 precision.
    ref = bpmon.Network(
        [3, 5, 4, 2], activation="tanh", output=output, loss=loss, batchnorm=batchnorm
    )
    ref_value, ref_grads = ref.loss_and_grads(X, y)
    assert value == pytest.approx(ref_value, rel=1e-5)
    for name, g in ref_grads.items():
        np.testing.assert_allclose(grads[name], g, rtol=1e-3, atol=1e-5, err_msg=name)


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"loss": "bce", "output": "identity"},
        {"loss": "bce", "output": "softmax"},
        {"loss": "cross_entropy", "output": "sigmoid"},
        {"loss": "cross_entropy", "output": "identity"},
        {"activation": "swish"},
        {"output": "tanh"},
        {"loss": "hinge"},
        {"init": "orthogonal"},
        {"dtype": "float16"},
        {"sizes": [3]},
        {"sizes": []},
        {"sizes": [3, 0, 1]},
        {"sizes": [3, 4, 1], "output": "softmax", "loss": "cross_entropy"},
    ],
    ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()),
)
def test_invalid_configurations_raise_value_error(kwargs: dict[str, Any]) -> None:
    args: dict[str, Any] = {"sizes": [3, 4, 2], "activation": "relu", "output": "sigmoid"}
    args.update(kwargs)
    with pytest.raises(ValueError):
        bpmon.Network(**args)


# --- caching: predict between training passes --------------------------------------------------


@pytest.mark.parametrize("batchnorm", [False, True])
def test_predict_does_not_disturb_training_passes(batchnorm: bool) -> None:
    rng = np.random.default_rng(5)
    X, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    X_other = rng.standard_normal((6, 3)) * 5.0  # same shape: same buffer keys, other values

    def fresh() -> bpmon.Network:
        return bpmon.Network(
            [3, 5, 4, 2], activation="tanh", output="identity", batchnorm=batchnorm, seed=2
        )

    reference = fresh()
    ref_loss, ref_grads = reference.loss_and_grads(X, y)

    # 1. predict (and an eval-mode loss) between two loss_and_grads calls.
    net = fresh()
    loss1, grads1 = net.loss_and_grads(X, y)
    pred_a = net.predict(X_other)
    net.loss(X_other, y)
    live = {k: g.copy() for k, g in net.grads.items()}
    pred_b = net.predict(X_other)
    np.testing.assert_array_equal(pred_a, pred_b)  # eval mode does not move running stats
    for name, g in net.grads.items():
        np.testing.assert_array_equal(g, live[name], err_msg=name)
    loss2, grads2 = net.loss_and_grads(X, y)
    assert loss1 == loss2 == ref_loss
    for name in ref_grads:
        np.testing.assert_array_equal(grads1[name], ref_grads[name], err_msg=name)
        np.testing.assert_array_equal(grads2[name], ref_grads[name], err_msg=name)

    # 2. predict *between* the forward and the backward of one pass: hook it into the loss,
    # which runs after the forward has filled the caches and before the backward reads them.
    net = fresh()
    value_and_grad = net.loss_fn.value_and_grad

    def with_predict(z: Array, target: Array, need_grad: bool = True) -> Any:
        result = value_and_grad(z, target, need_grad)
        net.predict(X_other)
        return result

    net.loss_fn.value_and_grad = with_predict  # type: ignore[method-assign,assignment]
    loss3, grads3 = net.loss_and_grads(X, y)
    assert loss3 == ref_loss
    for name in ref_grads:
        np.testing.assert_array_equal(grads3[name], ref_grads[name], err_msg=name)


# --- initialisation and seeds ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("init", "std"),
    [("he", math.sqrt(2 / 600)), ("xavier", math.sqrt(2 / (600 + 400))), ("normal", 0.05)],
)
def test_init_std_on_a_large_layer(init: str, std: float) -> None:
    net = bpmon.Network([600, 400, 1], init=init, init_std=0.05, seed=1)
    W = net.params["layer0.W"]
    assert W.shape == (600, 400)
    # 240k samples: the sample std is within ~0.15% of the true one, the mean within ~std/500.
    assert W.std() == pytest.approx(std, rel=0.01)
    assert abs(W.mean()) < std / 100
    np.testing.assert_array_equal(net.params["layer0.b"], 0.0)


def test_same_seed_same_params_different_seed_different() -> None:
    kwargs: dict[str, Any] = {"sizes": [2, 8, 8, 4, 1], "batchnorm": True, "init": "he"}
    a = bpmon.Network(seed=0, **kwargs)
    b = bpmon.Network(seed=0, **kwargs)
    c = bpmon.Network(seed=1, **kwargs)
    assert list(a.params) == list(c.params)
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name], err_msg=name)
        assert a.params[name] is not b.params[name]
    for name in ("layer0.W", "layer1.W", "layer2.W", "layer3.W"):
        assert not np.array_equal(a.params[name], c.params[name]), name


# --- name registries ---------------------------------------------------------------------------

# (kind, the engine's registry, the names bpmon.config lists for it, the module that checks them)
REGISTRIES: list[tuple[str, Mapping[str, object], tuple[str, ...], str]] = [
    ("activation", ACTIVATIONS_BY_NAME, config.ACTIVATIONS, "bpmon.engine.activations"),
    ("output", OUTPUTS_BY_NAME, config.OUTPUTS, "bpmon.engine.losses"),
    ("loss", LOSSES_BY_NAME, config.LOSSES, "bpmon.engine.losses"),
    ("init", INITS_BY_NAME, config.INITS, "bpmon.engine.initializers"),
    ("optimizer", OPTIMIZERS_BY_NAME, config.OPTIMIZERS, "bpmon.engine.optimizers"),
]
CONFIG_TUPLES = {
    "activation": "ACTIVATIONS",
    "output": "OUTPUTS",
    "loss": "LOSSES",
    "init": "INITS",
    "optimizer": "OPTIMIZERS",
}


@pytest.mark.parametrize(
    ("kind", "registry", "names", "module"), REGISTRIES, ids=[r[0] for r in REGISTRIES]
)
def test_every_registry_has_exactly_the_configs_names(
    kind: str, registry: Mapping[str, object], names: tuple[str, ...], module: str
) -> None:
    assert len(set(names)) == len(names), f"{kind}: duplicate names in bpmon.config"
    assert set(registry) == set(names), kind


def test_hidden_activations_are_activations() -> None:
    assert set(config.HIDDEN_ACTIVATIONS) <= set(config.ACTIVATIONS)
    assert "identity" not in config.HIDDEN_ACTIVATIONS


def test_every_name_builds_through_the_public_entry_points() -> None:
    for activation in config.ACTIVATIONS:
        assert get_activation(activation).name == activation
    params: dict[str, Array] = {"p": np.ones(3)}
    for optimizer in config.OPTIMIZERS:
        opt = make_optimizer(optimizer, params, {"p": np.zeros(3)}, 0.1)
        assert type(opt) is OPTIMIZERS_BY_NAME[optimizer]
    for init in config.INITS:
        assert init_std(init, 30, 20, 0.1) > 0
    f64 = np.dtype(np.float64)
    for loss in config.LOSSES:
        for output in config.OUTPUTS:
            if output in LOSSES_BY_NAME[loss].outputs:
                assert Loss(loss, output, f64).output == output
            else:
                with pytest.raises(ValueError, match=loss):
                    Loss(loss, output, f64)
    for output in config.OUTPUTS:
        net = bpmon.Network([2, 3, 2], output=output, loss="mse")
        assert net.output == output and net.predict(np.ones((1, 2))).shape == (1, 2)


# Each public way of naming a component, called with a given name.
LOOKUPS: dict[str, Callable[[str], object]] = {
    "activation": get_activation,
    "optimizer": lambda name: make_optimizer(name, {"p": np.ones(2)}, {"p": np.ones(2)}, 0.1),
    "init": lambda name: init_std(name, 2, 2),
    "loss": lambda name: Loss(name, "softmax", np.dtype(np.float64)),
    "output": lambda name: Loss("mse", name, np.dtype(np.float64)),
}


@settings(max_examples=50, deadline=None)
@given(kind=st.sampled_from(sorted(LOOKUPS)), name=st.text(max_size=12))
def test_an_unknown_name_raises_value_error_listing_the_known_ones(kind: str, name: str) -> None:
    known: Collection[str] = getattr(config, CONFIG_TUPLES[kind])
    if name in known:
        return
    with pytest.raises(ValueError, match=f"unknown {kind}") as info:
        LOOKUPS[kind](name)
    for k in known:
        assert k in str(info.value)


def test_check_names_reports_drift_both_ways() -> None:
    check_names("thing", {"a": 1, "b": 2}, ("b", "a"))  # order does not matter
    with pytest.raises(RegistryMismatchError, match=r"not implemented: \['c'\]"):
        check_names("thing", {"a": 1}, ("a", "c"))
    with pytest.raises(RegistryMismatchError, match=r"not listed in bpmon.config: \['z'\]"):
        check_names("thing", {"a": 1, "z": 2}, ("a",))


def test_a_name_added_to_the_config_only_fails_the_import() -> None:
    """For each kind, a fresh interpreter adds a name to bpmon.config's tuple and imports the
    engine module: the import must fail, naming the kind and the missing name."""
    script = textwrap.dedent(
        """
        import importlib, sys
        import bpmon.config as config
        from bpmon.engine.registry import RegistryMismatchError
        for kind, attr, module in %r:
            original = getattr(config, attr)
            setattr(config, attr, (*original, "bogus_name"))
            for loaded in [m for m in sys.modules if m.startswith("bpmon.engine.")]:
                if loaded != "bpmon.engine.registry":
                    del sys.modules[loaded]
            try:
                importlib.import_module(module)
            except RegistryMismatchError as exc:
                assert kind in str(exc) and "bogus_name" in str(exc), exc
                print("failed as expected:", kind)
            else:
                raise SystemExit(f"{module} imported despite a drifted {attr}")
            finally:
                setattr(config, attr, original)
        """
    ) % ([(kind, CONFIG_TUPLES[kind], module) for kind, _, _, module in REGISTRIES],)
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert proc.stdout.count("failed as expected") == len(REGISTRIES)


# --- per-layer views ---------------------------------------------------------------------------


@pytest.mark.parametrize("batchnorm", [False, True])
def test_layer_views_describe_every_dense_layer(batchnorm: bool) -> None:
    net = bpmon.Network([3, 5, 4, 2], activation="tanh", output="identity", batchnorm=batchnorm)
    views = net.layer_views()
    assert [v.name for v in views] == ["layer0", "layer1", "layer2"]
    assert [(v.fan_in, v.fan_out) for v in views] == [(3, 5), (5, 4), (4, 2)]
    assert [v.activation for v in views] == ["tanh", "tanh", None]
    # Before any training pass: no signals, no updates.
    assert all(v.z is None and v.a is None and v.delta is None for v in views)
    assert all(v.update is None for v in views)

    for i, v in enumerate(views):
        expected = {f"layer{i}.W", f"layer{i}.b"}
        if batchnorm and i < 2:
            expected |= {f"layer{i}.gamma", f"layer{i}.beta"}
        assert set(v.params) == expected
        for name, p in v.params.items():
            assert p is net.params[name]
        # Live views of the network's own buffers, not copies.
        assert v.W is net.params[f"layer{i}.W"]
        assert v.dW is net.grads[f"layer{i}.W"] and v.db is net.grads[f"layer{i}.b"]
        with pytest.raises(TypeError):
            v.params[f"layer{i}.W"] = np.zeros(1)  # type: ignore[index]
        with pytest.raises(dataclasses.FrozenInstanceError):
            v.W = np.zeros(1)  # type: ignore[misc]


def test_layer_views_after_a_step_carry_signals_and_updates() -> None:
    net = bpmon.Network([3, 5, 2], activation="relu", output="identity", seed=1)
    opt = make_optimizer("momentum", net.params, net.grads, 0.1)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((7, 3)), rng.standard_normal((7, 2))
    net.forward_backward(X, y)
    opt.step()
    hidden, out = net.layer_views(opt.steps)
    assert hidden.update is opt.steps["layer0.W"] and out.update is opt.steps["layer1.W"]
    assert hidden.z is not None and hidden.a is not None and hidden.delta is not None
    assert hidden.z.shape == hidden.a.shape == hidden.delta.shape == (7, 5)
    np.testing.assert_array_equal(hidden.a, np.maximum(hidden.z, 0.0))
    assert out.z is None and out.a is None
    # The output layer's delta is dL/dz of mse through identity, (z - y) / E, with z from the
    # weights before the step: W_old = W_new + update.
    assert out.update is not None and out.delta is not None
    W_old = out.W + out.update
    b_old = net.params["layer1.b"] + opt.steps["layer1.b"]
    np.testing.assert_allclose(out.delta, (hidden.a @ W_old + b_old - y) / y.size, rtol=1e-12)


def test_layer_view_from_plain_arrays() -> None:
    view = LayerView(name="dense", W=np.zeros((4, 3)))
    assert (view.fan_in, view.fan_out) == (4, 3)
    assert view.dW is None and view.activation is None and dict(view.params) == {}


# --- one activation per hidden layer -----------------------------------------------------------


def test_each_hidden_layer_uses_its_own_activation() -> None:
    names = ["tanh", "relu", "sigmoid", "leaky_relu"]
    net = bpmon.Network(
        [3, 5, 5, 5, 5, 2],
        activation=names,
        output="softmax",
        loss="cross_entropy",
        init="xavier",
        seed=4,
    )
    X = np.random.default_rng(0).normal(size=(7, 3))
    a = X
    for i, name in enumerate(names):
        z = a @ net.params[f"layer{i}.W"] + net.params[f"layer{i}.b"]
        a = get_activation(name).forward(z, np.empty_like(z))
    logits = a @ net.params["layer4.W"] + net.params["layer4.b"]
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(net.predict(X), expected, rtol=1e-12)
    assert [v.activation for v in net.layer_views()] == [*names, None]


def test_mixed_activations_match_finite_differences() -> None:
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(9, 3)), (rng.random((9, 1)) > 0.5).astype(np.float64)
    net = bpmon.Network(
        [3, 4, 4, 4, 1],
        activation=["sigmoid", "tanh", "leaky_relu"],
        output="sigmoid",
        loss="bce",
        init="xavier",
        seed=6,
    )
    _, grads = net.loss_and_grads(X, y)
    eps = 1e-6
    for name, p in net.params.items():
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + eps
            up = net.loss(X, y, training=True)
            p[i] = old - eps
            down = net.loss(X, y, training=True)
            p[i] = old
            assert grads[name][i] == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-9)


def test_a_wrong_number_of_activations_is_refused() -> None:
    with pytest.raises(ValueError, match="2 activations for 3 hidden layers"):
        bpmon.Network([2, 4, 4, 4, 1], activation=["tanh", "relu"])


def test_no_dropout_and_no_decay_add_nothing_to_the_network() -> None:
    net = bpmon.Network([2, 4, 4, 1], dropout=0.0)
    assert all(block.drop is None for block in net.blocks)
    assert set(net.decayed) == {"layer0.W", "layer1.W", "layer2.W"}
