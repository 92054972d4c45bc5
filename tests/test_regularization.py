"""L2 weight decay and inverted dropout: finite differences, and PyTorch's semantics.

Weight decay: a step of plain SGD goes down the gradient of ``loss + wd/2 * sum ||W||^2``
(finite differences), the gradients the telemetry reads stay the data loss's, and over several
steps every optimiser moves the parameters exactly as ``torch.optim.SGD`` / ``torch.optim.Adam``
with ``weight_decay`` do, from the same weights on the same data (weights decayed, biases and
batch-norm parameters not: a torch parameter group each).

Dropout: the layer's input gradient is the finite-difference one for a fixed mask; on the mask a
``torch.nn.Dropout`` drew, outputs and input gradients are PyTorch's; evaluation is the identity;
the share of dropped entries is about ``p``; and a run with dropout is reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpmon.config import DataConfig, ModelConfig, RunConfig, TrainConfig, validate
from bpmon.engine import make_optimizer
from bpmon.engine.activations import Array
from bpmon.engine.layers import Dropout
from bpmon.engine.network import Network
from bpmon.trainer.run import Run

try:
    import torch
except ImportError:  # pragma: no cover - the torch tests skip, as the bridge's do
    torch = None  # type: ignore[assignment]

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")

EPS = 1e-6


def data(seed: int = 0, n: int = 16, d: int = 3) -> tuple[Array, Array]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (X[:, :1] * X[:, 1:2] > 0).astype(np.float64)
    return X, y


def penalised(net: Network, X: Array, y: Array, wd: float) -> float:
    """``loss + wd/2 * sum ||W||^2`` over the decayed parameters, in training mode."""
    penalty = sum(float(np.vdot(net.params[k], net.params[k])) for k in net.decayed)
    return net.loss(X, y, training=True) + 0.5 * wd * penalty


def numeric_gradient(f: Callable[[], float], p: Array) -> Array:
    g = np.zeros_like(p)
    for i in np.ndindex(p.shape):
        old = p[i]
        p[i] = old + EPS
        up = f()
        p[i] = old - EPS
        down = f()
        p[i] = old
        g[i] = (up - down) / (2 * EPS)
    return g


# --- weight decay -------------------------------------------------------------------------------


@pytest.mark.parametrize("batchnorm", [False, True])
@pytest.mark.parametrize("wd", [1e-3, 0.1, 2.0])
def test_a_decayed_sgd_step_goes_down_the_penalised_gradient(batchnorm: bool, wd: float) -> None:
    X, y = data()
    net = Network(
        [3, 5, 4, 1],
        activation=["tanh", "sigmoid"],
        output="sigmoid",
        loss="bce",
        batchnorm=batchnorm,
        init="xavier",
        seed=3,
    )
    before = {k: p.copy() for k, p in net.params.items()}
    expected = {
        k: numeric_gradient(lambda: penalised(net, X, y, wd), p) for k, p in net.params.items()
    }
    lr = 0.1
    opt = make_optimizer("sgd", net.params, net.grads, lr, weight_decay=wd, decay=net.decayed)
    net.forward_backward(X, y)
    data_grads = {k: g.copy() for k, g in net.grads.items()}
    opt.step()
    for k, p in net.params.items():
        direction = (before[k] - p) / lr
        np.testing.assert_allclose(direction, expected[k], rtol=1e-5, atol=1e-7, err_msg=k)
        # The gradient arrays (what the telemetry shows) are still the data loss's gradient.
        np.testing.assert_array_equal(net.grads[k], data_grads[k], err_msg=k)
    # Biases and batch-norm parameters are not decayed, weights are.
    assert set(net.decayed) == {k for k in net.params if k.endswith(".W")}
    for k, p in net.params.items():
        direction = (before[k] - p) / lr
        if k in net.decayed:
            np.testing.assert_allclose(
                direction, data_grads[k] + wd * before[k], rtol=1e-9, atol=1e-14
            )
            assert not np.allclose(direction, data_grads[k], rtol=1e-3, atol=0)
        else:
            np.testing.assert_allclose(direction, data_grads[k], rtol=1e-9, atol=1e-14)


def test_weight_decay_zero_is_the_undecayed_step() -> None:
    X, y = data(1)
    nets = [Network([3, 6, 1], seed=5) for _ in range(2)]
    opts = [
        make_optimizer("adam", nets[0].params, nets[0].grads, 0.01),
        make_optimizer("adam", nets[1].params, nets[1].grads, 0.01, weight_decay=0.0),
    ]
    for _ in range(5):
        for net, opt in zip(nets, opts, strict=True):
            net.forward_backward(X, y)
            opt.step()
    for k in nets[0].params:
        np.testing.assert_array_equal(nets[0].params[k], nets[1].params[k])


def test_negative_weight_decay_is_refused() -> None:
    net = Network([2, 3, 1])
    with pytest.raises(ValueError, match="weight_decay"):
        make_optimizer("sgd", net.params, net.grads, 0.1, weight_decay=-1.0)


def torch_twin(net: Network) -> tuple[list[Any], list[Any]]:
    """PyTorch tensors holding ``net``'s weights (W transposed, as nn.Linear stores it) and
    biases, in layer order."""
    assert torch is not None
    n = len(net.blocks)
    weights = [
        torch.tensor(net.params[f"layer{i}.W"].T.copy(), requires_grad=True) for i in range(n)
    ]
    biases = [torch.tensor(net.params[f"layer{i}.b"].copy(), requires_grad=True) for i in range(n)]
    return weights, biases


def torch_loss(weights: list[Any], biases: list[Any], acts: list[str], X: Any, y: Any) -> Any:
    assert torch is not None
    fns = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}
    a = X
    for i, (W, b) in enumerate(zip(weights, biases, strict=True)):
        a = a @ W.T + b
        if i < len(acts):
            a = fns[acts[i]](a)
    return torch.nn.functional.binary_cross_entropy_with_logits(a, y)


@needs_torch
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("all_params", [False, True])
def test_weight_decay_matches_torch_optim_over_several_steps(
    optimizer: str, all_params: bool
) -> None:
    """The whole network (tanh then relu hidden layers, a BCE-with-logits output) and the
    optimiser, against PyTorch from the same weights on the same data, for 8 steps. bpmon
    decays its weight matrices only: torch gets them in a group with ``weight_decay`` and the
    biases in a group without. ``all_params`` decays every parameter in both, PyTorch's
    default, to show that the optimiser itself has PyTorch's semantics."""
    assert torch is not None
    acts = ["tanh", "relu"]
    X, y = data(2, n=24)
    net = Network(
        [3, 6, 5, 1], activation=acts, output="sigmoid", loss="bce", init="xavier", seed=7
    )
    wd, lr = 0.05, {"sgd": 0.3, "momentum": 0.1, "adam": 0.02}[optimizer]
    decay = None if all_params else net.decayed
    opt = make_optimizer(
        optimizer, net.params, net.grads, lr, momentum=0.9, weight_decay=wd, decay=decay
    )
    weights, biases = torch_twin(net)
    groups = (
        [{"params": weights + biases, "weight_decay": wd}]
        if all_params
        else [{"params": weights, "weight_decay": wd}, {"params": biases, "weight_decay": 0.0}]
    )
    t_opt: Any
    if optimizer == "adam":
        t_opt = torch.optim.Adam(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8)
    else:
        t_opt = torch.optim.SGD(groups, lr=lr, momentum=0.9 if optimizer == "momentum" else 0.0)
    Xt, yt = torch.tensor(X), torch.tensor(y)
    for _ in range(8):
        loss = net.forward_backward(X, y)
        opt.step()
        t_opt.zero_grad()
        t_loss = torch_loss(weights, biases, acts, Xt, yt)
        t_loss.backward()
        t_opt.step()
        assert loss == pytest.approx(float(t_loss.detach()), rel=1e-10)
    for i, (W, b) in enumerate(zip(weights, biases, strict=True)):
        np.testing.assert_allclose(
            net.params[f"layer{i}.W"], W.detach().numpy().T, rtol=1e-9, atol=1e-12
        )
        np.testing.assert_allclose(
            net.params[f"layer{i}.b"], b.detach().numpy(), rtol=1e-9, atol=1e-12
        )
        # .grad holds the data gradient in torch; so do bpmon's gradient arrays.
        np.testing.assert_allclose(
            net.grads[f"layer{i}.W"], W.grad.numpy().T, rtol=1e-9, atol=1e-12
        )


def test_a_run_with_weight_decay_keeps_smaller_weights() -> None:
    base = RunConfig(
        data=DataConfig(name="circle", n=64),
        model=ModelConfig(hidden=(8,), activation="tanh", output="sigmoid", loss="bce"),
        train=TrainConfig(optimizer="sgd", lr=0.5, epochs=200),
    )
    norms = []
    for wd in (0.0, 0.05):
        run = Run.build(
            validate(
                RunConfig(
                    base.data,
                    base.model,
                    TrainConfig(optimizer="sgd", lr=0.5, epochs=200, weight_decay=wd),
                ),
                "test",
            )
        )
        while run.train_step() is None:
            pass
        norms.append(sum(float(np.linalg.norm(run.net.params[k])) for k in run.net.decayed))
    assert norms[1] < norms[0]


# --- dropout ------------------------------------------------------------------------------------


def test_dropout_backward_matches_finite_differences_on_a_fixed_mask() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 7))
    keep = (rng.random((5, 7)) > 0.3).astype(np.float64)
    w = rng.normal(size=(5, 7))
    layer = Dropout(0.3, np.random.default_rng(1), np.dtype(np.float64))

    def f() -> float:
        return float(np.sum(w * layer.forward(x, keep=keep)))

    numeric = numeric_gradient(f, x)
    layer.forward(x, keep=keep)
    np.testing.assert_allclose(layer.backward(w), numeric, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(layer.forward(x, keep=keep), x * keep / 0.7, rtol=1e-15)


@pytest.mark.parametrize("batchnorm", [False, True])
def test_a_network_with_dropout_matches_finite_differences_on_fixed_masks(batchnorm: bool) -> None:
    X, y = data(3)
    net = Network(
        [3, 6, 5, 1],
        activation=["relu", "tanh"],
        output="sigmoid",
        loss="bce",
        batchnorm=batchnorm,
        init="he",
        seed=2,
        dropout=0.4,
    )
    state = net.dropout_rng.bit_generator.state

    def loss() -> float:
        net.dropout_rng.bit_generator.state = state  # the same masks for every evaluation
        return net.loss(X, y, training=True)

    expected = {k: numeric_gradient(loss, p) for k, p in net.params.items()}
    net.dropout_rng.bit_generator.state = state
    _, grads = net.loss_and_grads(X, y)
    for k, g in grads.items():
        np.testing.assert_allclose(g, expected[k], rtol=1e-5, atol=1e-8, err_msg=k)
    # And the masks did drop something: without them the gradients differ.
    plain = Network(
        [3, 6, 5, 1],
        activation=["relu", "tanh"],
        output="sigmoid",
        loss="bce",
        batchnorm=batchnorm,
        init="he",
        seed=2,
    )
    _, plain_grads = plain.loss_and_grads(X, y)
    assert not np.allclose(plain_grads["layer0.W"], grads["layer0.W"])


@needs_torch
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_is_torch_dropout_on_the_same_mask(p: float) -> None:
    assert torch is not None
    torch.manual_seed(0)
    x = torch.randn(8, 11, dtype=torch.float64, requires_grad=True)
    drop = torch.nn.Dropout(p)
    drop.train()
    out = drop(x)
    upstream = torch.randn(8, 11, dtype=torch.float64)
    out.backward(upstream)
    keep = (out != 0).double().numpy()  # x has no exact zeros, so a zero is a dropped entry
    layer = Dropout(p, np.random.default_rng(0), np.dtype(np.float64))
    mine = layer.forward(x.detach().numpy(), keep=keep)
    np.testing.assert_allclose(mine, out.detach().numpy(), rtol=1e-15, atol=0)
    np.testing.assert_allclose(
        layer.backward(upstream.numpy()), np.asarray(x.grad), rtol=1e-15, atol=0
    )
    drop.eval()
    np.testing.assert_array_equal(
        drop(x).detach().numpy(), layer.forward(x.detach().numpy(), training=False)
    )


def test_evaluation_runs_without_dropout() -> None:
    X, y = data(4)
    with_drop = Network([3, 8, 1], activation="relu", seed=9, dropout=0.5)
    without = Network([3, 8, 1], activation="relu", seed=9)
    # The masks' stream is not the weights': turning dropout on leaves the initial weights.
    for k in without.params:
        np.testing.assert_array_equal(with_drop.params[k], without.params[k])
    np.testing.assert_array_equal(with_drop.predict(X), without.predict(X))
    assert with_drop.loss(X, y) == without.loss(X, y)
    # Training mode drops: two training losses differ (new masks), as they differ from eval.
    first, second = with_drop.loss(X, y, training=True), with_drop.loss(X, y, training=True)
    assert first != second


@settings(max_examples=40, deadline=None)
@given(p=st.floats(0.0, 0.95), seed=st.integers(0, 2**32 - 1))
def test_the_share_of_dropped_entries_is_about_p(p: float, seed: int) -> None:
    n = 20_000
    layer = Dropout(p, np.random.default_rng(seed), np.dtype(np.float64))
    out = layer.forward(np.ones((100, n // 100)))
    dropped = float(np.mean(out == 0))
    # Six standard deviations of a binomial share: a false alarm about once in 10**9 cases.
    assert abs(dropped - p) <= 6 * math.sqrt(p * (1 - p) / n) + 1e-12
    # Kept entries are scaled by 1 / (1 - p), so the mean stays about 1.
    kept = out[out != 0]
    np.testing.assert_allclose(kept, 1 / (1 - p))


def test_dropout_is_refused_outside_zero_to_one() -> None:
    for p in (-0.1, 1.0, math.nan):
        with pytest.raises(ValueError, match="dropout"):
            Network([2, 3, 1], dropout=p)


def run_losses(config: RunConfig, steps: int) -> list[float]:
    run = Run.build(config)
    for _ in range(steps):
        assert run.train_step() is None
    return run.history.values


def test_a_run_with_dropout_is_reproducible_and_the_seed_decides() -> None:
    config = validate(
        RunConfig(
            data=DataConfig(name="moons", n=64),
            model=ModelConfig(hidden=(8, 8), activation="relu", init="he", dropout=0.3),
            train=TrainConfig(optimizer="adam", lr=0.01, batch_size=16, epochs=50, seed=4),
        ),
        "test",
    )
    a, b = run_losses(config, 30), run_losses(config, 30)
    assert a == b
    other = RunConfig(
        config.data,
        config.model,
        TrainConfig(optimizer="adam", lr=0.01, batch_size=16, epochs=50, seed=5),
    )
    assert run_losses(other, 30) != a
