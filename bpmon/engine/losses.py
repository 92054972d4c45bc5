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
"""

from __future__ import annotations

import numpy as np

from bpmon.engine.activations import Array, Sigmoid
from bpmon.engine.layers import BufferPool

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
    """Row-wise softmax of ``z`` into ``out``; ``scratch`` (shape ``(C, n)``) and ``rows``
    (shape ``(n,)``) are work buffers, allocated here when not given."""
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


def output_activation(output: str, z: Array, out: Array) -> Array:
    if output == "identity":
        np.copyto(out, z)
        return out
    if output == "sigmoid":
        return _sigmoid.forward(z, out)
    if output == "softmax":
        return softmax(z, out)
    raise ValueError(f"unknown output {output!r}; expected identity, sigmoid or softmax")


class Loss:
    """A loss fused with the network's output activation."""

    def __init__(self, name: str, output: str, dtype: np.dtype[np.floating]) -> None:
        if name not in ("mse", "bce", "cross_entropy"):
            raise ValueError(f"unknown loss {name!r}; expected mse, bce or cross_entropy")
        if output not in ("identity", "sigmoid", "softmax"):
            raise ValueError(f"unknown output {output!r}; expected identity, sigmoid or softmax")
        if name == "bce" and output != "sigmoid":
            raise ValueError("loss 'bce' needs output 'sigmoid' (it is computed from the logits)")
        if name == "cross_entropy" and output != "softmax":
            raise ValueError("loss 'cross_entropy' needs output 'softmax'")
        self.name = name
        self.output = output
        self._pool = BufferPool(dtype)

    def predict(self, z: Array) -> Array:
        """The output activations for logits ``z``, in a fresh array."""
        return output_activation(self.output, z, np.empty_like(z))

    def value(self, z: Array, y: Array) -> float:
        return self.value_and_grad(z, y, need_grad=False)[0]

    def value_and_grad(
        self, z: Array, y: Array, need_grad: bool = True
    ) -> tuple[float, Array, Array]:
        pool = self._pool
        out = pool.get("out", z.shape)
        dz = pool.get("dz", z.shape)
        if self.name == "cross_entropy":
            n = z.shape[0]
            loss = self._cross_entropy(z, y, out, dz)
            if need_grad:
                np.subtract(out, y, out=dz)
                dz *= 1.0 / n
            return loss, out, dz
        if self.output == "softmax":
            softmax(z, out, pool.get("scratch", z.shape[::-1]), pool.get("rows", z.shape[:1]))
        else:
            output_activation(self.output, z, out)
        if self.name == "mse":
            np.subtract(out, y, out=dz)
            loss = 0.5 * float(np.vdot(dz, dz)) / dz.size
            if need_grad:
                dz *= 1.0 / dz.size
                self._through_output(out, dz)
        elif self.name == "bce":
            # max(z, 0) - z*y + log1p(exp(-|z|)), written into dz as scratch before the gradient.
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

    def _cross_entropy(self, z: Array, y: Array, out: Array, dz: Array) -> float:
        """The cross-entropy of softmax(z) against ``y``; leaves softmax(z) in ``out`` (computed
        exactly as :func:`softmax` does) and uses ``dz`` as scratch.

        log p = z - max - log(sum(exp(z - max))) is the log-sum-exp form of log-softmax: exp never
        overflows and log never sees 0. One exp serves both the loss and the probabilities.
        """
        pool = self._pool
        scratch = pool.get("scratch", z.shape[::-1])
        row_max = pool.get("rows", z.shape[:1])
        row_sum = pool.get("row_sum", z.shape[:1])
        row_reduce(np.maximum, z, scratch, row_max)
        np.subtract(z, row_max[:, None], out=out)  # shifted logits
        np.exp(out, out=dz)
        row_reduce(np.add, dz, scratch, row_sum)
        np.log(row_sum, out=row_max)  # the row maxima are no longer needed
        out -= row_max[:, None]  # log p
        loss: float = -float(np.vdot(y, out)) / z.shape[0]
        np.divide(dz, row_sum[:, None], out=out)  # p
        return loss

    def _through_output(self, out: Array, dout: Array) -> None:
        """Turn ``dL/dout`` (in ``dout``) into ``dL/dz`` in place, for the mse loss."""
        if self.output == "sigmoid":
            slope = self._pool.get("slope", out.shape)
            np.subtract(1.0, out, out=slope)
            slope *= out
            dout *= slope
        elif self.output == "softmax":
            # Softmax's Jacobian-vector product: p * (g - sum(g * p)) per row.
            dot = np.sum(dout * out, axis=1, keepdims=True)
            dout -= dot
            dout *= out
