"""Weight initialisers; biases always start at zero.

- ``normal``: ``std * N(0, 1)``, the story's ``np.random.randn(...) * 0.1`` with ``std = 0.1``;
- ``xavier``: Glorot normal, ``std = sqrt(2 / (fan_in + fan_out))``, keeps the variance of
  activations and of gradients roughly constant for tanh/sigmoid-like units;
- ``he``: ``std = sqrt(2 / fan_in)``, the same for ReLU units, which zero half their inputs.

``INITS_BY_NAME`` maps each name of :data:`bpmon.config.INITS` to its ``(fan_in, fan_out, std)
-> standard deviation`` function; every initialiser draws ``W = std * N(0, 1)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from bpmon.config import INITS
from bpmon.engine.activations import Array
from bpmon.engine.registry import check_names, lookup

StdRule = Callable[[int, int, float], float]
"""``(fan_in, fan_out, configured std) -> the standard deviation of the weights``."""


def normal_std(fan_in: int, fan_out: int, std: float) -> float:
    return std


def xavier_std(fan_in: int, fan_out: int, std: float) -> float:
    return math.sqrt(2.0 / (fan_in + fan_out))


def he_std(fan_in: int, fan_out: int, std: float) -> float:
    return math.sqrt(2.0 / fan_in)


INITS_BY_NAME: dict[str, StdRule] = {"normal": normal_std, "xavier": xavier_std, "he": he_std}
check_names("init", INITS_BY_NAME, INITS)


def init_std(init: str, fan_in: int, fan_out: int, std: float = 0.1) -> float:
    """The standard deviation initialiser ``init`` draws a ``(fan_in, fan_out)`` matrix with;
    ``std`` is used by ``normal`` only."""
    return lookup("init", INITS_BY_NAME, init)(fan_in, fan_out, std)


def init_weights(
    rng: np.random.Generator,
    init: str,
    fan_in: int,
    fan_out: int,
    std: float,
    dtype: np.dtype[np.floating],
) -> Array:
    """``W = init_std(...) * N(0, 1)`` of shape ``(fan_in, fan_out)``, drawn in float64 and cast,
    so a float32 network starts from the same weights, rounded, as a float64 one."""
    scale = init_std(init, fan_in, fan_out, std)
    return (rng.standard_normal((fan_in, fan_out)) * scale).astype(dtype)
