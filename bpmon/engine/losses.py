"""Output activations fused with their losses, each taking the output layer's logits ``z``.

Conventions, all means so that the gradient scale does not depend on the batch size:

- ``mse``: ``0.5 * mean((y - out)**2)`` over *all* elements (batch x outputs), the story's
  convention; works with any output activation (identity, sigmoid, softmax).
- ``bce``: binary cross-entropy ``mean(-y log s - (1 - y) log(1 - s))`` over all elements with
  ``s = sigmoid(z)``, computed from the logits as ``max(z, 0) - z*y + log1p(exp(-|z|))`` so that
  it stays finite when the sigmoid saturates; requires the sigmoid output.
- ``cross_entropy``: softmax + negative log-likelihood, ``-mean over the batch of sum(y * log p)``
  with one-hot (or probability) rows ``y``, computed with a log-sum-exp; requires softmax.

``value_and_grad`` returns the loss, the output activations and ``dL/dz``. The returned arrays
are the loss's own buffers, valid until its next call.

The gradients with respect to the logits, ``N`` the batch size and ``E = N * outputs`` the number
of elements:

- ``mse``: ``dL/dout = (out - y) / E``, then through the output activation: times
  ``out (1 - out)`` for sigmoid, the softmax Jacobian ``p * (g - sum(g * p))`` per row for softmax;
- ``bce`` with sigmoid: ``dL/dz = (s - y) / E`` (the sigmoid's slope cancels the log's);
- ``cross_entropy`` with softmax: ``dL/dz = (p - y) / N`` (for rows of ``y`` that sum to 1).

Registries, keyed by the names of :mod:`bpmon.config`: ``OUTPUTS_BY_NAME`` (the output activation
functions) and ``LOSSES_BY_NAME`` (each loss's implementation and the outputs it works with).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bpmon.config import LOSSES, OUTPUTS
from bpmon.engine.activations import Array, Sigmoid
from bpmon.engine.layers import BufferPool
from bpmon.engine.registry import check_names, lookup

_sigmoid = Sigmoid()


def row_reduce(ufunc: np.ufunc, x: Array, scratch: Array, out: Array) -> Array:
    """``ufunc.reduce`` over each row of ``x`` (shape ``(n, C)``) into ``out`` (shape ``(n,)``),
    using ``scratch`` of shape ``(C, n)``.

    Why not ``np.max(x, axis=1)``: NumPy reduces a short contiguous last axis one row at a time,
    which for a batch of 1,024 rows of 10 logits costs ~55 us. Copying the block transposed into
    ``scratch`` and reducing along its first axis runs one vectorised loop over the whole batch
    per class instead: ~4 us for the copy and the reduction together.
    """
    np.copyto(scratch, x.T)
    ufunc.reduce(scratch, axis=0, out=out)
    return out


def softmax(z: Array, out: Array, scratch: Array | None = None, rows: Array | None = None) -> Array:
    """Row-wise ``p = exp(z) / sum(exp(z))`` of ``z`` into ``out``; ``scratch`` (shape
    ``(C, n)``) and ``rows`` (shape ``(n,)``) are work buffers, allocated here when not given."""
    if scratch is None:
        scratch = np.empty(z.shape[::-1], dtype=out.dtype)
    if rows is None:
        rows = np.empty(z.shape[0], dtype=out.dtype)
    # Subtracting the row maximum leaves softmax unchanged and keeps exp from overflowing.
    row_reduce(np.maximum, z, scratch, rows)
    np.subtract(z, rows[:, None], out=out)
    np.exp(out, out=out)
    row_reduce(np.add, out, scratch, rows)
    out /= rows[:, None]
    return out


def identity(z: Array, out: Array) -> Array:
    """``out = z``."""
    np.copyto(out, z)
    return out


OutputFn = Callable[[Array, Array], Array]
"""``(logits z, out) -> out``: an output activation written into ``out``."""

OUTPUTS_BY_NAME: dict[str, OutputFn] = {
    "identity": identity,
    "sigmoid": _sigmoid.forward,
    "softmax": softmax,
}
check_names("output", OUTPUTS_BY_NAME, OUTPUTS)


def output_activation(output: str, z: Array, out: Array) -> Array:
    """The output activation called ``output`` of the logits ``z``, into ``out``."""
    return lookup("output", OUTPUTS_BY_NAME, output)(z, out)


class Loss:
    """A loss fused with the network's output activation."""

    def __init__(self, name: str, output: str, dtype: np.dtype[np.floating]) -> None:
        kind = lookup("loss", LOSSES_BY_NAME, name)
        output_fn = lookup("output", OUTPUTS_BY_NAME, output)
        if output not in kind.outputs:
            needs = " or ".join(repr(o) for o in kind.outputs)
            raise ValueError(f"loss {name!r} needs output {needs}, not {output!r}")
        self.name = name
        self.output = output
        self._output_fn = output_fn
        self._value_and_grad = kind.value_and_grad
        self._pool = BufferPool(dtype)

    def predict(self, z: Array) -> Array:
        """The output activations for logits ``z``, in a fresh array."""
        return self._output_fn(z, np.empty_like(z))

    def value(self, z: Array, y: Array) -> float:
        return self.value_and_grad(z, y, need_grad=False)[0]

    def value_and_grad(
        self, z: Array, y: Array, need_grad: bool = True
    ) -> tuple[float, Array, Array]:
        """``(loss, output activations, dL/dz)`` for logits ``z`` and targets ``y``; ``dL/dz``
        holds scratch values when ``need_grad`` is False."""
        return self._value_and_grad(self, z, y, need_grad)

    def _mse(self, z: Array, y: Array, need_grad: bool) -> tuple[float, Array, Array]:
        """``L = 0.5 * sum((out - y)^2) / E``; ``dL/dout = (out - y) / E``, then chained through
        the output activation (see :meth:`_through_output`)."""
        pool = self._pool
        out = pool.get("out", z.shape)
        dz = pool.get("dz", z.shape)
        if self.output == "softmax":
            softmax(z, out, pool.get("scratch", z.shape[::-1]), pool.get("rows", z.shape[:1]))
        else:
            self._output_fn(z, out)
        np.subtract(out, y, out=dz)
        loss = 0.5 * float(np.vdot(dz, dz)) / dz.size
        if need_grad:
            dz *= 1.0 / dz.size
            self._through_output(out, dz)
        return loss, out, dz

    def _bce(self, z: Array, y: Array, need_grad: bool) -> tuple[float, Array, Array]:
        """``L = mean(max(z, 0) - z y + log1p(exp(-|z|)))``, which equals
        ``mean(-y log s - (1 - y) log(1 - s))`` with ``s = sigmoid(z)`` without ever taking the
        log of a saturated 0 or 1; ``dL/dz = (s - y) / E``."""
        out = self._pool.get("out", z.shape)
        dz = self._pool.get("dz", z.shape)
        self._output_fn(z, out)
        # dz is scratch for the element-wise loss until the gradient overwrites it.
        np.abs(z, out=dz)
        np.negative(dz, out=dz)
        np.exp(dz, out=dz)
        np.log1p(dz, out=dz)
        dz += np.maximum(z, 0.0)
        dz -= z * y
        loss = float(np.sum(dz)) / dz.size
        if need_grad:
            np.subtract(out, y, out=dz)
            dz *= 1.0 / dz.size
        return loss, out, dz

    def _cross_entropy(self, z: Array, y: Array, need_grad: bool) -> tuple[float, Array, Array]:
        """``L = -sum(y * log p) / N`` with ``p = softmax(z)``; ``dL/dz = (p - y) / N``.

        log p = z - max - log(sum(exp(z - max))) is the log-sum-exp form of log-softmax: exp never
        overflows and log never sees 0. One exp serves both the loss and the probabilities, which
        come out exactly as :func:`softmax` computes them.
        """
        pool = self._pool
        out = pool.get("out", z.shape)
        dz = pool.get("dz", z.shape)
        scratch = pool.get("scratch", z.shape[::-1])
        row_max = pool.get("rows", z.shape[:1])
        row_sum = pool.get("row_sum", z.shape[:1])
        n = z.shape[0]
        row_reduce(np.maximum, z, scratch, row_max)
        np.subtract(z, row_max[:, None], out=out)  # shifted logits
        np.exp(out, out=dz)
        row_reduce(np.add, dz, scratch, row_sum)
        np.log(row_sum, out=row_max)  # the row maxima are no longer needed
        out -= row_max[:, None]  # log p
        loss: float = -float(np.vdot(y, out)) / n
        np.divide(dz, row_sum[:, None], out=out)  # p
        if need_grad:
            np.subtract(out, y, out=dz)
            dz *= 1.0 / n
        return loss, out, dz

    def _through_output(self, out: Array, dout: Array) -> None:
        """Turn ``dL/dout`` (in ``dout``) into ``dL/dz`` in place, for the mse loss."""
        if self.output == "sigmoid":
            # dz = dout * s (1 - s)
            slope = self._pool.get("slope", out.shape)
            np.subtract(1.0, out, out=slope)
            slope *= out
            dout *= slope
        elif self.output == "softmax":
            # Softmax's Jacobian-vector product: dz = p * (g - sum(g * p)) per row.
            dot = np.sum(dout * out, axis=1, keepdims=True)
            dout -= dot
            dout *= out


LossImpl = Callable[[Loss, Array, Array, bool], tuple[float, Array, Array]]
"""``(loss, logits z, targets y, need_grad) -> (value, output activations, dL/dz)``."""


@dataclass(frozen=True)
class LossKind:
    """One loss: its implementation and the output activations it is defined with."""

    value_and_grad: LossImpl
    outputs: tuple[str, ...]


LOSSES_BY_NAME: dict[str, LossKind] = {
    "mse": LossKind(Loss._mse, OUTPUTS),
    # Both compute from the logits, so they are tied to the activation they fuse with.
    "bce": LossKind(Loss._bce, ("sigmoid",)),
    "cross_entropy": LossKind(Loss._cross_entropy, ("softmax",)),
}
check_names("loss", LOSSES_BY_NAME, LOSSES)
