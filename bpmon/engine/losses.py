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


def softmax(z: Array, out: Array) -> Array:
    # Subtracting the row maximum leaves softmax unchanged and keeps exp from overflowing.
    np.subtract(z, np.max(z, axis=1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= np.sum(out, axis=1, keepdims=True)
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
        out = output_activation(self.output, z, pool.get("out", z.shape))
        dz = pool.get("dz", z.shape)
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
        else:
            n = z.shape[0]
            # log p = z - max - log(sum(exp(z - max))): the log-sum-exp form of log-softmax.
            shifted = z - np.max(z, axis=1, keepdims=True)
            log_p = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
            loss = -float(np.vdot(y, log_p)) / n
            if need_grad:
                np.subtract(out, y, out=dz)
                dz *= 1.0 / n
        return loss, out, dz

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
