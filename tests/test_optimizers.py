"""Optimiser steps against the PyTorch update rules, written out by hand for a few steps."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
from numpy.typing import NDArray

from bpmon.engine import make_optimizer

Array = NDArray[np.floating]

P0 = np.array([[0.5, -1.0], [2.0, 0.0]])
Q0 = np.array([0.25, -0.75, 1.5])
# (gradient of p, gradient of q) fed in at each of three steps.
GRADS = (
    (np.array([[0.1, -0.2], [0.3, 0.0]]), np.array([1.0, -2.0, 0.5])),
    (np.array([[-0.4, 0.5], [0.05, 1.0]]), np.array([0.0, 3.0, -1.0])),
    (np.array([[0.2, 0.2], [-0.6, -0.1]]), np.array([-0.5, 0.25, 2.0])),
)


def run(name: str, lrs: list[float], **kwargs: float) -> list[tuple[Array, Array, Array, Array]]:
    """Apply one step per lr; return (p, q, step_p, step_q) after each step."""
    params = {"p": P0.copy(), "q": Q0.copy()}
    grads = {"p": np.zeros_like(P0), "q": np.zeros_like(Q0)}
    opt = make_optimizer(name, params, grads, lrs[0], **kwargs)
    live_p, live_q = params["p"], params["q"]
    history = []
    for (gp, gq), lr in zip(GRADS, lrs, strict=False):
        grads["p"][...] = gp  # the grad arrays are updated in place, as the network does
        grads["q"][...] = gq
        opt.lr = lr
        opt.step()
        assert params["p"] is live_p and params["q"] is live_q  # in place
        history.append((live_p.copy(), live_q.copy(), opt.steps["p"].copy(), opt.steps["q"].copy()))
    return history


def check(
    history: list[tuple[Array, Array, Array, Array]], expected: Sequence[Sequence[Array]]
) -> None:
    """``expected[k]`` is the list of the steps applied at step k, one per parameter."""
    prev = [P0, Q0]
    for k, (p, q, sp, sq) in enumerate(history):
        for now, step, before, want in zip((p, q), (sp, sq), prev, expected[k], strict=True):
            np.testing.assert_allclose(step, want, rtol=1e-12, atol=1e-15, err_msg=f"step {k}")
            np.testing.assert_allclose(now, before - want, rtol=1e-12, atol=1e-15)
        prev = [p, q]


def test_sgd() -> None:
    lr = 0.1
    expected = [[lr * gp, lr * gq] for gp, gq in GRADS]
    check(run("sgd", [lr, lr, lr]), expected)
    # Literal values for the first step of p: lr * g.
    np.testing.assert_allclose(run("sgd", [lr])[0][0], [[0.49, -0.98], [1.97, 0.0]])


def test_momentum() -> None:
    lr, mu = 0.05, 0.9
    expected = []
    vel = [np.zeros_like(P0), np.zeros_like(Q0)]
    for grads in GRADS:
        vel = [mu * v + g for v, g in zip(vel, grads, strict=True)]  # v = mu v + g
        expected.append([lr * v for v in vel])  # step = lr v
    check(run("momentum", [lr] * 3, momentum=mu), expected)
    # Literal second step for p[0, 0]: v1 = 0.1, v2 = 0.9 * 0.1 - 0.4 = -0.31, step = -0.0155.
    assert run("momentum", [lr] * 2, momentum=mu)[1][2][0, 0] == pytest.approx(-0.0155, rel=1e-12)


def test_momentum_coefficient_is_used() -> None:
    hist = run("momentum", [1.0, 1.0], momentum=0.5)
    # p[0, 1]: g1 = -0.2, g2 = 0.5 -> v2 = 0.5 * -0.2 + 0.5 = 0.4.
    assert hist[1][2][0, 1] == pytest.approx(0.4, rel=1e-12)


@pytest.mark.parametrize(("beta1", "beta2", "eps"), [(0.9, 0.999, 1e-8), (0.8, 0.99, 0.1)])
def test_adam(beta1: float, beta2: float, eps: float) -> None:
    lr = 0.01
    expected = []
    m = [np.zeros_like(P0), np.zeros_like(Q0)]
    v = [np.zeros_like(P0), np.zeros_like(Q0)]
    for t, grads in enumerate(GRADS, start=1):
        m = [beta1 * mi + (1 - beta1) * g for mi, g in zip(m, grads, strict=True)]
        v = [beta2 * vi + (1 - beta2) * g * g for vi, g in zip(v, grads, strict=True)]
        m_hat = [mi / (1 - beta1**t) for mi in m]
        v_hat = [vi / (1 - beta2**t) for vi in v]
        expected.append(
            [lr * mh / (np.sqrt(vh) + eps) for mh, vh in zip(m_hat, v_hat, strict=True)]
        )
    check(run("adam", [lr] * 3, beta1=beta1, beta2=beta2, eps=eps), expected)


def test_adam_first_step_is_lr_times_sign() -> None:
    # At t = 1, m_hat = g and v_hat = g^2, so step = lr * g / (|g| + eps) ~ lr * sign(g).
    step_p = run("adam", [0.01])[0][2]
    np.testing.assert_allclose(step_p, 0.01 * np.sign(GRADS[0][0]), rtol=1e-6, atol=1e-12)
    # A zero gradient gives a zero step (not a 0/0).
    assert step_p[1, 1] == 0.0
    # Literal value with a large eps: 0.01 * 0.1 / (0.1 + 0.1) = 0.005.
    assert run("adam", [0.01], eps=0.1)[0][2][0, 0] == pytest.approx(0.005, rel=1e-12)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_changing_lr_between_steps_takes_effect(name: str) -> None:
    constant = run(name, [0.1, 0.1, 0.1])
    changed = run(name, [0.1, 0.02, 0.3])
    # The first step is identical; every later *step* scales with the lr in force at that step
    # (for all three rules the state is lr-independent and the step is lr times a function of it).
    np.testing.assert_array_equal(changed[0][2], constant[0][2])
    for k, factor in ((1, 0.2), (2, 3.0)):
        for i in (2, 3):
            np.testing.assert_allclose(changed[k][i], factor * constant[k][i], rtol=1e-12)


def test_lr_change_on_sgd_literal() -> None:
    hist = run("sgd", [0.1, 1.0])
    # q[1]: -0.75 - 0.1 * -2.0 = -0.55, then -0.55 - 1.0 * 3.0 = -3.55.
    assert hist[0][1][1] == pytest.approx(-0.55, rel=1e-12)
    assert hist[1][1][1] == pytest.approx(-3.55, rel=1e-12)
    assert math.isclose(hist[1][3][1], 3.0)


def test_steps_start_at_zero_and_unknown_optimizer_raises() -> None:
    params = {"p": P0.copy()}
    opt = make_optimizer("adam", params, {"p": np.zeros_like(P0)}, 0.1)
    np.testing.assert_array_equal(opt.steps["p"], np.zeros_like(P0))
    assert opt.lr == 0.1
    with pytest.raises(ValueError):
        make_optimizer("rmsprop", params, {"p": np.zeros_like(P0)}, 0.1)
