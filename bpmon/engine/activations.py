"""Element-wise activations as forward/backward pairs.

Each activation writes into a caller-owned buffer (``out=``) so a training step allocates nothing,
and each backward takes the *forward output* ``a`` (and the input ``z`` where the output does not
determine the derivative), because that is what the layer keeps in its cache anyway.

``health`` measures how much of the layer is in a region where the derivative nearly vanishes:
for sigmoid and tanh the fraction of (sample, unit) entries that are saturated, for the ReLU family
the fraction of units that are inactive for every sample in the batch ("dead").

Every activation is element-wise, ``a = f(z)`` forward and ``dz = f'(z) * da`` backward (the
chain rule, one entry at a time); each class states its ``f`` and ``f'``.
``ACTIVATIONS_BY_NAME`` maps each name of :data:`bpmon.config.ACTIVATIONS` to its class.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from bpmon.config import ACTIVATIONS
from bpmon.engine.registry import check_names, lookup

Array = NDArray[np.floating]

# A sigmoid output beyond [0.05, 0.95] has a derivative below 0.0475, under a fifth of its 0.25
# maximum; tanh beyond |a| = 0.95 is below 0.0975 of its maximum 1. Those entries pass almost no
# error signal back, which is what "saturated" means to someone reading the gradient panel.
SIGMOID_SATURATION = 0.05
TANH_SATURATION = 0.95
LEAKY_SLOPE = 0.01


class Activation:
    """Base class: the identity ``a = z``, ``dz = da``. Subclasses override ``forward``,
    ``backward`` and ``health``."""

    name: ClassVar[str] = "identity"
    health_label: ClassVar[str] = ""

    def forward(self, z: Array, out: Array) -> Array:
        """``a = f(z)`` into ``out``."""
        np.copyto(out, z)
        return out

    def backward(self, a: Array, z: Array, da: Array, out: Array) -> Array:
        """``dz = f'(z) * da`` into ``out``, from the forward output ``a``, its input ``z`` and
        the upstream ``da = dL/da`` (chain rule, element-wise)."""
        np.copyto(out, da)
        return out

    def health(self, a: Array, z: Array) -> float:
        """The fraction of the layer where ``f'`` nearly vanishes; see ``health_label``."""
        return 0.0


class Sigmoid(Activation):
    """``a = 1 / (1 + exp(-z))``, ``f'(z) = a (1 - a)`` (at most 0.25, at ``z = 0``)."""

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
        # dz = a (1 - a) da: the derivative from the output alone, no second exp.
        np.subtract(1.0, a, out=out)
        out *= a
        out *= da
        return out

    def health(self, a: Array, z: Array) -> float:
        lo, hi = SIGMOID_SATURATION, 1.0 - SIGMOID_SATURATION
        return float(np.mean((a < lo) | (a > hi)))


class Tanh(Activation):
    """``a = tanh(z)``, ``f'(z) = 1 - a^2`` (at most 1, at ``z = 0``)."""

    name = "tanh"
    health_label = "saturated"

    def forward(self, z: Array, out: Array) -> Array:
        return np.tanh(z, out=out)

    def backward(self, a: Array, z: Array, da: Array, out: Array) -> Array:
        # dz = (1 - a^2) da
        np.multiply(a, a, out=out)
        np.subtract(1.0, out, out=out)
        out *= da
        return out

    def health(self, a: Array, z: Array) -> float:
        return float(np.mean(np.abs(a) > TANH_SATURATION))


class ReLU(Activation):
    """``a = max(0, z)``, ``f'(z) = 1 if z > 0 else 0``; the derivative at exactly 0 is taken as
    0, as PyTorch does."""

    name = "relu"
    health_label = "dead"

    def forward(self, z: Array, out: Array) -> Array:
        return np.maximum(z, 0.0, out=out)

    def backward(self, a: Array, z: Array, da: Array, out: Array) -> Array:
        # dz = [z > 0] da: the mask is written as 0.0/1.0 straight into the output buffer.
        np.greater(z, 0.0, out=out)
        out *= da
        return out

    def health(self, a: Array, z: Array) -> float:
        return float(np.mean(np.all(z <= 0.0, axis=0)))


class LeakyReLU(Activation):
    """``a = z`` for ``z > 0``, ``0.01 z`` otherwise, i.e. ``max(z, 0.01 z)``;
    ``f'(z) = 1 if z > 0 else 0.01``. "Dead" here means on the leaky side for the whole batch."""

    name = "leaky_relu"
    health_label = "dead"

    def forward(self, z: Array, out: Array) -> Array:
        # max(z, slope z) equals the two-branch definition for any slope in (0, 1).
        np.multiply(z, LEAKY_SLOPE, out=out)
        return np.maximum(z, out, out=out)

    def backward(self, a: Array, z: Array, da: Array, out: Array) -> Array:
        # f'(z) = slope + (1 - slope) [z > 0], built in the output buffer without a temporary
        # mask array; then dz = f'(z) da.
        np.greater(z, 0.0, out=out)
        out *= 1.0 - LEAKY_SLOPE
        out += LEAKY_SLOPE
        out *= da
        return out

    def health(self, a: Array, z: Array) -> float:
        return float(np.mean(np.all(z <= 0.0, axis=0)))


ACTIVATIONS_BY_NAME: dict[str, type[Activation]] = {
    cls.name: cls for cls in (Sigmoid, Tanh, ReLU, LeakyReLU, Activation)
}
check_names("activation", ACTIVATIONS_BY_NAME, ACTIVATIONS)


def get_activation(name: str) -> Activation:
    """A new instance of the activation called ``name`` (one of :data:`bpmon.config.ACTIVATIONS`);
    ValueError listing the known names otherwise."""
    return lookup("activation", ACTIVATIONS_BY_NAME, name)()
