"""Element-wise activations as forward/backward pairs.

Each activation writes into a caller-owned buffer (``out=``) so a training step allocates nothing,
and each backward takes the *forward output* ``a`` (and the input ``z`` where the output does not
determine the derivative), because that is what the layer keeps in its cache anyway.

``health`` measures how much of the layer is in a region where the derivative nearly vanishes:
for sigmoid and tanh the fraction of (sample, unit) entries that are saturated, for the ReLU family
the fraction of units that are inactive for every sample in the batch ("dead").
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating]

# A sigmoid output beyond [0.05, 0.95] has a derivative below 0.0475, under a fifth of its 0.25
# maximum; tanh beyond |a| = 0.95 is below 0.0975 of its maximum 1. Those entries pass almost no
# error signal back, which is what "saturated" means to someone reading the gradient panel.
SIGMOID_SATURATION = 0.05
TANH_SATURATION = 0.95
LEAKY_SLOPE = 0.01


class Activation:
    """Base class: identity. Subclasses override ``forward`` and ``backward``."""

    name: ClassVar[str] = "identity"
    health_label: ClassVar[str] = ""

    def forward(self, z: Array, out: Array) -> Array:
        np.copyto(out, z)
        return out

    def backward(self, a: Array, z: Array, da: Array, out: Array) -> Array:
        """dL/dz given the forward output ``a``, its input ``z`` and the upstream ``da = dL/da``."""
        np.copyto(out, da)
        return out

    def health(self, a: Array, z: Array) -> float:
        return 0.0


class Sigmoid(Activation):
    name = "sigmoid"
    health_label = "saturated"

    def forward(self, z: Array, out: Array) -> Array:
        # 1 / (1 + exp(-z)) overflows exp for z < -709 in float64 (-88 in float32). The tanh form
        # sigmoid(z) = 0.5 * (1 + tanh(z / 2)) is the same function and never overflows.
        np.multiply(z, 0.5, out=out)
        np.tanh(out, out=out)
        out += 1.0
        out *= 0.5
        return out

    def backward(self, a: Array, z: Array, da: Array, out: Array) -> Array:
        np.subtract(1.0, a, out=out)
        out *= a
        out *= da
        return out

    def health(self, a: Array, z: Array) -> float:
        lo, hi = SIGMOID_SATURATION, 1.0 - SIGMOID_SATURATION
        return float(np.mean((a < lo) | (a > hi)))


class Tanh(Activation):
    name = "tanh"
    health_label = "saturated"

    def forward(self, z: Array, out: Array) -> Array:
        return np.tanh(z, out=out)

    def backward(self, a: Array, z: Array, da: Array, out: Array) -> Array:
        np.multiply(a, a, out=out)
        np.subtract(1.0, out, out=out)
        out *= da
        return out

    def health(self, a: Array, z: Array) -> float:
        return float(np.mean(np.abs(a) > TANH_SATURATION))


class ReLU(Activation):
    """max(0, z); the derivative at exactly 0 is taken as 0, as PyTorch does."""

    name = "relu"
    health_label = "dead"

    def forward(self, z: Array, out: Array) -> Array:
        return np.maximum(z, 0.0, out=out)

    def backward(self, a: Array, z: Array, da: Array, out: Array) -> Array:
        np.greater(z, 0.0, out=out)
        out *= da
        return out

    def health(self, a: Array, z: Array) -> float:
        return float(np.mean(np.all(z <= 0.0, axis=0)))


class LeakyReLU(Activation):
    """z for z > 0, 0.01 z otherwise; "dead" here means on the leaky side for the whole batch."""

    name = "leaky_relu"
    health_label = "dead"

    def forward(self, z: Array, out: Array) -> Array:
        np.multiply(z, LEAKY_SLOPE, out=out)
        return np.maximum(z, out, out=out)

    def backward(self, a: Array, z: Array, da: Array, out: Array) -> Array:
        # 1 where z > 0 and LEAKY_SLOPE elsewhere, built without a temporary mask array.
        np.greater(z, 0.0, out=out)
        out *= 1.0 - LEAKY_SLOPE
        out += LEAKY_SLOPE
        out *= da
        return out

    def health(self, a: Array, z: Array) -> float:
        return float(np.mean(np.all(z <= 0.0, axis=0)))


_ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls for cls in (Activation, Sigmoid, Tanh, ReLU, LeakyReLU)
}


def get_activation(name: str) -> Activation:
    try:
        return _ACTIVATIONS[name]()
    except KeyError:
        known = ", ".join(_ACTIVATIONS)
        raise ValueError(f"unknown activation {name!r}; expected one of {known}") from None
