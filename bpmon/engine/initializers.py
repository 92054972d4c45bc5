"""Weight initialisers; biases always start at zero.

- ``normal``: ``std * N(0, 1)``, the story's ``np.random.randn(...) * 0.1`` with ``std = 0.1``;
- ``xavier``: Glorot normal, ``std = sqrt(2 / (fan_in + fan_out))``, keeps the variance of
  activations and of gradients roughly constant for tanh/sigmoid-like units;
- ``he``: ``std = sqrt(2 / fan_in)``, the same for ReLU units, which zero half their inputs.
"""

from __future__ import annotations

import math

import numpy as np

from bpmon.engine.activations import Array


def init_std(init: str, fan_in: int, fan_out: int, std: float = 0.1) -> float:
    if init == "normal":
        return std
    if init == "xavier":
        return math.sqrt(2.0 / (fan_in + fan_out))
    if init == "he":
        return math.sqrt(2.0 / fan_in)
    raise ValueError(f"unknown init {init!r}; expected normal, xavier or he")


def init_weights(
    rng: np.random.Generator,
    init: str,
    fan_in: int,
    fan_out: int,
    std: float,
    dtype: np.dtype[np.floating],
) -> Array:
    scale = init_std(init, fan_in, fan_out, std)
    return (rng.standard_normal((fan_in, fan_out)) * scale).astype(dtype)
