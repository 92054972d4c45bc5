"""Optimisers that update parameter arrays in place.

Each keeps, per parameter, the step it last applied (``p_new = p_old - step``), so the telemetry
can report the update ratio ``||step|| / ||p||`` without copying parameters on every step.

Conventions are PyTorch's, so a run can be compared with ``torch.optim`` step for step:

- ``sgd``: ``step = lr * g``;
- ``momentum``: ``v = mu * v + g``, ``step = lr * v`` (``torch.optim.SGD(momentum=mu)``);
- ``adam``: ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``,
  ``step = lr * m_hat / (sqrt(v_hat) + eps)`` with the bias corrections
  ``m_hat = m / (1 - b1^t)``, ``v_hat = v / (1 - b2^t)``.

``lr`` is a plain attribute: the trainer changes it between steps without a restart.

``OPTIMIZERS_BY_NAME`` maps each name of :data:`bpmon.config.OPTIMIZERS` to its class, and
:func:`make_optimizer` looks the class up by name (as cs231n's ``Solver`` looks up its update
rule); each class's :meth:`Optimizer.build` takes what it needs from the shared settings.
"""

from __future__ import annotations

import math
from typing import Self

import numpy as np

from bpmon.config import OPTIMIZERS
from bpmon.engine.activations import Array
from bpmon.engine.flat import joined, pack
from bpmon.engine.registry import check_names, lookup


class Optimizer:
    """Updates ``params`` in place from ``grads`` (dicts with the same keys) on each ``step``.

    When the parameters, and the gradients, are each packed end to end in one buffer (as the
    network lays them out, see :mod:`bpmon.engine.flat`), the update runs once over the whole
    buffer: same arithmetic, a handful of NumPy calls per step instead of a handful per array.
    Otherwise it runs array by array.
    """

    def __init__(self, params: dict[str, Array], grads: dict[str, Array], lr: float) -> None:
        self.lr = lr
        self.t = 0
        names = list(params)
        step_views = pack([np.zeros_like(params[k]) for k in names])
        self.steps: dict[str, Array] = dict(zip(names, step_views, strict=True))
        p_flat = joined([params[k] for k in names])
        g_flat = joined([grads[k] for k in names])
        s_flat = joined(step_views)
        # (parameter, gradient, step) triples the update loops over: one, or one per array.
        self._triples: list[tuple[Array, Array, Array]]
        if p_flat is not None and g_flat is not None and s_flat is not None:
            self._triples = [(p_flat, g_flat, s_flat)]
        else:
            self._triples = [(params[k], grads[k], self.steps[k]) for k in names]

    @classmethod
    def build(
        cls,
        params: dict[str, Array],
        grads: dict[str, Array],
        lr: float,
        *,
        momentum: float,
        beta1: float,
        beta2: float,
        eps: float,
    ) -> Self:
        """An instance from the settings every optimiser is offered; each uses only its own."""
        return cls(params, grads, lr)

    def step(self) -> None:
        """``p <- p - step`` for every parameter, ``step`` from :meth:`_compute_step`."""
        self.t += 1
        for p, g, s in self._triples:
            self._compute_step(p, g, s)
            p -= s

    def _compute_step(self, p: Array, g: Array, s: Array) -> None:
        """Write this step's ``step`` for parameter ``p`` with gradient ``g`` into ``s``."""
        np.multiply(g, self.lr, out=s)


class SGD(Optimizer):
    """``step = lr * g``."""


class Momentum(Optimizer):
    """``v <- mu v + g``, ``step = lr * v`` (PyTorch's form: ``lr`` outside the velocity, so a
    change of ``lr`` takes effect at once instead of decaying in)."""

    def __init__(
        self, params: dict[str, Array], grads: dict[str, Array], lr: float, momentum: float = 0.9
    ) -> None:
        super().__init__(params, grads, lr)
        self.momentum = momentum
        self._velocity = {id(p): np.zeros_like(p) for p, _, _ in self._triples}

    @classmethod
    def build(
        cls,
        params: dict[str, Array],
        grads: dict[str, Array],
        lr: float,
        *,
        momentum: float,
        beta1: float,
        beta2: float,
        eps: float,
    ) -> Self:
        return cls(params, grads, lr, momentum)

    def _compute_step(self, p: Array, g: Array, s: Array) -> None:
        v = self._velocity[id(p)]
        v *= self.momentum
        v += g
        np.multiply(v, self.lr, out=s)


class Adam(Optimizer):
    """``m <- b1 m + (1 - b1) g``, ``v <- b2 v + (1 - b2) g^2``,
    ``step = lr * m_hat / (sqrt(v_hat) + eps)`` with ``m_hat = m / (1 - b1^t)`` and
    ``v_hat = v / (1 - b2^t)``."""

    def __init__(
        self,
        params: dict[str, Array],
        grads: dict[str, Array],
        lr: float,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
    ) -> None:
        super().__init__(params, grads, lr)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self._m = {id(p): np.zeros_like(p) for p, _, _ in self._triples}
        self._v = {id(p): np.zeros_like(p) for p, _, _ in self._triples}

    @classmethod
    def build(
        cls,
        params: dict[str, Array],
        grads: dict[str, Array],
        lr: float,
        *,
        momentum: float,
        beta1: float,
        beta2: float,
        eps: float,
    ) -> Self:
        return cls(params, grads, lr, beta1, beta2, eps)

    def _compute_step(self, p: Array, g: Array, s: Array) -> None:
        b1, b2, t = self.beta1, self.beta2, self.t
        m, v = self._m[id(p)], self._v[id(p)]
        m *= b1
        m += (1.0 - b1) * g
        v *= b2
        np.multiply(g, g, out=s)  # s is scratch for (1 - b2) g^2 until it holds the step
        s *= 1.0 - b2
        v += s
        # With c1 = 1 - b1^t and c2 = 1 - b2^t, the bias-corrected step
        #   lr * (m / c1) / (sqrt(v / c2) + eps) = (lr sqrt(c2) / c1) * m / (sqrt(v) + eps sqrt(c2))
        # folds the corrections into two scalars (the Adam paper's "efficient version"), so
        # m_hat and v_hat are never materialised.
        c1, c2 = 1.0 - b1**t, 1.0 - b2**t
        np.sqrt(v, out=s)
        s += self.eps * math.sqrt(c2)
        np.divide(m, s, out=s)
        s *= self.lr * math.sqrt(c2) / c1


OPTIMIZERS_BY_NAME: dict[str, type[Optimizer]] = {"sgd": SGD, "momentum": Momentum, "adam": Adam}
check_names("optimizer", OPTIMIZERS_BY_NAME, OPTIMIZERS)


def make_optimizer(
    name: str,
    params: dict[str, Array],
    grads: dict[str, Array],
    lr: float,
    momentum: float = 0.9,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
) -> Optimizer:
    """The optimiser called ``name`` (one of :data:`bpmon.config.OPTIMIZERS`) over ``params``;
    ValueError listing the known names otherwise."""
    cls = lookup("optimizer", OPTIMIZERS_BY_NAME, name)
    return cls.build(params, grads, lr, momentum=momentum, beta1=beta1, beta2=beta2, eps=eps)
