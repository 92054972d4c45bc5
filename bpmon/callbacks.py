"""What the trainer callbacks (:mod:`bpmon.hf`, :mod:`bpmon.lightning`) share: the options
they hand on to :func:`bpmon.torch.watch` (:class:`WatchOptions`), and turning a trainer's
logged numbers into :meth:`bpmon.torch.monitor.Monitor.log` calls.

A trainer logs a dictionary of names to numbers (``{"loss": 2.1, "eval_loss": 2.3,
"learning_rate": 1e-3}``; Lightning's ``callback_metrics`` are 0-d tensors). The run file's
loss panel figures (``loss``, ``accuracy``, ``test_accuracy``, ``lr``) are passed under those
names when the trainer uses them, ``epoch`` as the whole epochs done, and every other number by
its own name when the monitor keeps named metrics (a ``log(**metrics)`` signature); a monitor
that does not is given the panel figures only. Tensors are passed as they are: the monitor reads
them on its next due update, so logging costs no host-device transfer. Non-numbers (strings,
booleans, tensors of more than one element) are left out.
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from bpmon.errors import BpmonError

if TYPE_CHECKING:
    from bpmon.config import Thresholds
    from bpmon.torch.monitor import Monitor

PANEL = ("loss", "accuracy", "test_accuracy", "lr")


@dataclass(frozen=True)
class WatchOptions:
    """A callback's arguments for :func:`bpmon.torch.watch`, checked when the callback is made
    (a bad ``every`` is one line before the trainer starts, not after its first batch)."""

    path: str | os.PathLike[str] | IO[str]
    every: int = 50
    include: str | Sequence[str] | None = None
    exclude: str | Sequence[str] | None = None
    name: str | None = None
    thresholds: Thresholds | None = None

    def __post_init__(self) -> None:
        every = self.every
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise BpmonError(f"BpmonCallback: every = {every!r}: expected an integer >= 1")

    def watch(self, model: Any, **hooks: Any) -> Monitor:
        """The monitor of ``model``; ``hooks`` are the trainer's ``optimizer`` and ``scaler``."""
        from bpmon.torch import watch

        return watch(
            model,
            self.path,
            every=self.every,
            include=self.include,
            exclude=self.exclude,
            name=self.name,
            thresholds=self.thresholds,
            **hooks,
        )


def accepts_metrics(monitor: Any) -> bool:
    """Whether ``monitor.log`` takes any name (``**metrics``)."""
    params = inspect.signature(monitor.log).parameters.values()
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def numbers(logged: Mapping[str, object]) -> dict[str, Any]:
    """The numeric entries of ``logged``: ints and floats as floats, 1-element tensors as they
    are (detached by the monitor)."""
    out: dict[str, Any] = {}
    for key, value in logged.items():
        if isinstance(value, bool) or not isinstance(key, str):
            continue
        if isinstance(value, int | float):
            out[key] = float(value)
        elif _is_scalar_tensor(value):
            out[key] = value
    return out


def _is_scalar_tensor(value: object) -> bool:
    numel = getattr(value, "numel", None)
    dtype = getattr(value, "dtype", None)
    if numel is None or dtype is None or not callable(numel):
        return False
    return bool(numel() == 1 and not dtype.is_complex and str(dtype) != "torch.bool")


def feed(
    monitor: Any,
    logged: Mapping[str, object],
    *,
    metrics: bool,
    epoch: float | None = None,
) -> None:
    """One ``monitor.log`` call with the numbers of ``logged`` (none when there is nothing to
    log). ``metrics``: whether the monitor keeps other names (:func:`accepts_metrics`);
    ``epoch``: the trainer's epoch count (fractional allowed; the whole epochs done are
    logged)."""
    values = numbers(logged)
    kwargs: dict[str, Any] = {}
    for key in PANEL:
        if key in values:
            kwargs[key] = values.pop(key)
    values.pop("epoch", None)  # the trainer's own count, passed as ``epoch`` below
    if metrics:
        kwargs.update(values)
    if epoch is not None and math.isfinite(epoch) and epoch >= 0:
        kwargs["epoch"] = math.floor(epoch)
    if kwargs:
        monitor.log(**kwargs)
