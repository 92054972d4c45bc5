"""The history of every number a run logged by name (``mon.log(val_loss=..., tokens_per_s=...)``,
a snapshot line's ``metrics``), as one (step, value) series per name, built by a run file's
reader line by line beside the loss curve.

Memory is bounded whatever the file holds: each series keeps at most ``capacity`` points spread
evenly over its arrivals (the loss history's rule: when full, every other point goes and only
every ``stride``-th arrival is kept from then on), plus its latest point. A file from elsewhere
may hold any names: at most :data:`MAX_NAMES` are kept (the first seen), each cut to
:data:`MAX_NAME` characters. A value that was not a number is NaN (the codec reads ``null`` so),
kept in place so that the plot can show where it was. A name missing from some lines simply has
no point at their steps.
"""

from __future__ import annotations

import json
import re
from array import array
from collections.abc import Iterable, Mapping
from typing import Any

from bpmon.codec import DecodeError, field_reader
from bpmon.runmodel import HISTORY_POINTS, Snapshot

# Past these, a file's names are not kept: a line may hold 16 MiB, and each of millions of lines
# a name of its own.
MAX_NAMES = 1024
MAX_NAME = 200
_KEY = b'"metrics"'
_VALUE = re.compile(rb"\s*:\s*\[")
_read_metrics = field_reader(Snapshot, "metrics")
_json = json.JSONDecoder()

Series = tuple[tuple[int, ...], tuple[float, ...]]


class _Series:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.stride = 1
        self.arrivals = 0
        self.steps: array[int] = array("q")
        self.values: array[float] = array("d")
        self.last: tuple[int, float] | None = None

    def add(self, step: int, value: float) -> None:
        kept = self.arrivals % self.stride == 0
        self.arrivals += 1
        self.last = (step, value)
        if not kept:
            return
        self.steps.append(step)
        self.values.append(value)
        if len(self.steps) >= self.capacity:
            # The arrivals kept are multiples of the stride; halving keeps multiples of twice it.
            del self.steps[1::2], self.values[1::2]
            self.stride *= 2

    def points(self) -> Series:
        steps, values = tuple(self.steps), tuple(self.values)
        if self.last is not None and (self.arrivals - 1) % self.stride:
            steps, values = (*steps, self.last[0]), (*values, self.last[1])
        return steps, values


class MetricHistory:
    """One run's logged numbers by name, in the order the names first came."""

    def __init__(self, capacity: int = HISTORY_POINTS) -> None:
        self.capacity = max(2, capacity)
        self._series: dict[str, _Series] = {}
        self._names: tuple[str, ...] = ()
        self.names_dropped = 0
        """Names seen past :data:`MAX_NAMES` (not kept)."""

    def add(self, step: int, metrics: Iterable[tuple[str, float]]) -> None:
        """A snapshot's ``metrics`` at ``step``."""
        for name, value in metrics:
            series = self._series.get(name)
            if series is None and len(name) > MAX_NAME:
                name = name[: MAX_NAME - 1] + "…"
                series = self._series.get(name)
            if series is None:
                if len(self._series) >= MAX_NAMES:
                    self.names_dropped += 1
                    continue
                series = self._series[name] = _Series(self.capacity)
                self._names = (*self._names, name)
            series.add(step, value)

    def add_record(self, step: int, record: Mapping[str, Any]) -> None:
        """The ``metrics`` of a parsed line; a value that does not fit the model adds nothing
        (the reader that decodes the whole line counts it as corrupt)."""
        value = record.get("metrics")
        if value is None:
            return
        try:
            metrics = _read_metrics(value)
        except DecodeError:
            return
        self.add(step, metrics)

    def add_line(self, step: int, raw: bytes) -> None:
        """The ``metrics`` of a line that was not parsed (a reader's fast path): bpmon's writers
        put them after the layers, so the key is looked for from the line's end, and only its
        array is parsed. In JSON text every quote inside a string is escaped, so ``"metrics"``
        found there is a string of its own: a key when a colon follows it."""
        end = len(raw)
        while (at := raw.rfind(_KEY, 0, end)) >= 0:
            end = at
            match = _VALUE.match(raw, at + len(_KEY))
            if match is None:
                continue  # "metrics" as a value ("message": "metrics")
            try:
                value, _ = _json.raw_decode(raw[match.end() - 1 :].decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                return
            self.add_record(step, {"metrics": value})
            return

    def extend(self, later: MetricHistory) -> None:
        """Add what ``later`` holds (the lines after this one's), in its order, as it kept it."""
        for name in later.names():
            for step, value in zip(*later.series(name), strict=True):
                self.add(step, ((name, value),))
        self.names_dropped += later.names_dropped

    def names(self) -> tuple[str, ...]:
        return self._names

    def series(self, name: str) -> Series:
        """The steps and values kept of ``name`` (empty when it was never logged)."""
        series = self._series.get(name)
        return ((), ()) if series is None else series.points()
