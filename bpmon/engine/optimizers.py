"""Optimisers that update parameter arrays in place.

Each keeps, per parameter, the step it last applied (``p_new = p_old - step``), so the telemetry
can report the update ratio ``||step|| / ||p||`` without copying parameters on every step.

Conventions are PyTorch's, so a run can be compared with ``torch.optim`` step for step:

- ``sgd``: ``step = lr * g``;
- ``momentum``: ``v = mu * v + g``, ``step = lr * v`` (``torch.optim.SGD(momentum=mu)``);
- ``adam``: ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``,
  ``step = lr * m_hat / (sqrt(v_hat) + eps)`` with the bias corrections
  ``m_hat = m / (1 - b1^t)``, ``v_hat = v / (1 - b2^t)``.

Weight decay (L2), as ``weight_decay`` in ``torch.optim.SGD`` and ``torch.optim.Adam``: every
rule above runs on ``g + wd * p`` instead of ``g`` (Adam's L2 form, where the decay passes
through the moments; not AdamW's decoupled decay). With plain SGD that is a step down the
gradient of ``loss + wd/2 * ||p||^2``. The decay is added to a copy of the gradient inside the
step: the gradient arrays keep the data loss's gradient, as ``.grad`` does in PyTorch, so the
telemetry shows that gradient, and the step (``steps``) is the update actually applied. Only
the parameters named in ``decay`` are decayed (default: all of them, as PyTorch decays every
parameter it is given; the network passes its weight matrices only). With ``wd = 0`` the step
reads the gradient arrays directly and does no extra work.

``lr`` is a plain attribute: the trainer changes it between steps without a restart.

``OPTIMIZERS_BY_NAME`` maps each name of :data:`bpmon.config.OPTIMIZERS` to its class, and
:func:`make_optimizer` looks the class up by name (as cs231n's ``Solver`` looks up its update
rule); each class's :meth:`Optimizer.build` takes what it needs from the shared settings.
"""

from __future__ import annotations

import math
from collections.abc import Collection
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

    def __init__(
        self,
        params: dict[str, Array],
        grads: dict[str, Array],
        lr: float,
        weight_decay: float = 0.0,
        decay: Collection[str] | None = None,
    ) -> None:
        if not weight_decay >= 0.0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
        self.lr = lr
        self.t = 0
        self.weight_decay = weight_decay
        names = list(params)
        step_views = pack([np.zeros_like(params[k]) for k in names])
        self.steps: dict[str, Array] = dict(zip(names, step_views, strict=True))
        # (parameter, data gradient, decayed gradient, step) per decayed array: before each
        # step the decayed gradient gets g + wd * p; the update rules read it instead of g.
        self._decay: list[tuple[Array, Array, Array, Array]] = []
        self._copied: list[tuple[Array, Array]] = []
        if weight_decay > 0.0:
            decayed = set(names if decay is None else decay)
            effective = dict(
                zip(names, pack([np.zeros_like(grads[k]) for k in names]), strict=True)
            )
            self._decay = [
                (params[k], grads[k], effective[k], self.steps[k]) for k in names if k in decayed
            ]
            # The undecayed arrays' gradients are read from the effective buffer too, so
            # the flat update below still sees one gradient buffer; they are copied each step.
            self._copied = [(grads[k], effective[k]) for k in names if k not in decayed]
            grads = effective
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
        weight_decay: float = 0.0,
        decay: Collection[str] | None = None,
    ) -> Self:
        """An instance from the settings every optimiser is offered; each uses only its own."""
        return cls(params, grads, lr, weight_decay, decay)

    def step(self) -> None:
        """``p <- p - step`` for every parameter, ``step`` from :meth:`_compute_step` (on
        ``g + wd * p`` for the decayed parameters when ``weight_decay`` is set)."""
        self.t += 1
        if self._decay:
            wd = self.weight_decay
            for p, g, e, s in self._decay:
                np.multiply(p, wd, out=s)  # s is scratch until _compute_step writes the step
                np.add(g, s, out=e)
            for g, e in self._copied:
                np.copyto(e, g)
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
        self,
        params: dict[str, Array],
        grads: dict[str, Array],
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        decay: Collection[str] | None = None,
    ) -> None:
        super().__init__(params, grads, lr, weight_decay, decay)
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
        weight_decay: float = 0.0,
        decay: Collection[str] | None = None,
    ) -> Self:
        return cls(params, grads, lr, momentum, weight_decay, decay)

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
        weight_decay: float = 0.0,
        decay: Collection[str] | None = None,
    ) -> None:
        super().__init__(params, grads, lr, weight_decay, decay)
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
        weight_decay: float = 0.0,
        decay: Collection[str] | None = None,
    ) -> Self:
        return cls(params, grads, lr, beta1, beta2, eps, weight_decay, decay)

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
    weight_decay: float = 0.0,
    decay: Collection[str] | None = None,
) -> Optimizer:
    """The optimiser called ``name`` (one of :data:`bpmon.config.OPTIMIZERS`) over ``params``;
    ValueError listing the known names otherwise. ``weight_decay`` applies to the parameters
    named in ``decay`` (None: all)."""
    cls = lookup("optimizer", OPTIMIZERS_BY_NAME, name)
    return cls.build(
        params,
        grads,
        lr,
        momentum=momentum,
        beta1=beta1,
        beta2=beta2,
        eps=eps,
        weight_decay=weight_decay,
        decay=decay,
    )
