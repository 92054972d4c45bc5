"""The figures a script hands to :meth:`Monitor.log`, kept until a due update reads them.

Monitoring never stops training: a value that is not usable as a number (a string, an integer
past float's range such as ``10**400``, a tensor of several elements) is recorded as null with
one warning per name, never an exception. NumPy scalars, 0-d arrays and anything else with
``__float__`` are numbers. A tensor is kept detached and read only at the next due update.
"""

from __future__ import annotations

import math
import operator
import warnings
from typing import Any

import torch

# The loss panel's own figures; any other name a script logs goes into the line's "metrics".
PANEL = ("loss", "accuracy", "test_accuracy", "lr")

Held = float | torch.Tensor


class Logged:
    """The latest value of every logged name (a float, NaN when unusable, or a detached
    1-element tensor), the epoch, and the names already warned about."""

    def __init__(self) -> None:
        self.values: dict[str, Held] = {}
        self.epoch: int | None = None
        self._warned: set[str] = set()

    def put(self, key: str, value: object) -> None:
        if value is None:
            return
        self.values[key] = self._convert(key, value)

    def put_epoch(self, epoch: object) -> None:
        if epoch is None:
            return
        try:
            e = operator.index(epoch)  # type: ignore[arg-type]
        except TypeError:
            e = -1
        if isinstance(epoch, bool) or e < 0:
            self._warn("epoch", epoch, "an integer >= 0; the epoch is left as it was")
            return
        self.epoch = int(e)

    def tensors(self) -> tuple[list[str], list[torch.Tensor]]:
        keys = [k for k, v in self.values.items() if isinstance(v, torch.Tensor)]
        return keys, [self.values[k] for k in keys]  # type: ignore[misc]

    def settle(self, read: dict[str, float]) -> None:
        """Replace the tensors just read by their floats: never read twice, memory let go."""
        for key, value in read.items():
            self.values[key] = value

    def _convert(self, key: str, value: object) -> Held:
        if isinstance(value, torch.Tensor):
            if value.numel() == 1:
                return value.detach()
            return self._warn(key, value, "one number or a 1-element tensor")
        if isinstance(value, bool | str | bytes):
            return self._warn(key, value, "a number")
        try:
            x = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError):
            return self._warn(key, value, "a number that fits a float")
        return x

    def _warn(self, key: str, value: object, expected: str) -> float:
        if key not in self._warned:
            self._warned.add(key)
            shown = repr(value)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            warnings.warn(
                f"bpmon: log({key}={shown}): expected {expected}; recorded as null",
                RuntimeWarning,
                stacklevel=4,
            )
        return math.nan


def as_float(value: Any) -> float | None:
    """A logged or optimiser value as a plain float, None when it is not one."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            return math.nan
    return None
