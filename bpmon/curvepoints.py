"""The loss curve's points of one snapshot line, and a thinning that keeps a spike.

A line of the PyTorch bridge carries the loss of every update since the previous line
(``update_start``, ``update_losses``: :class:`bpmon.runmodel.Snapshot`); its points are those,
so that a spike between two measured updates is on the curve. A line without them is one
point, its own step and loss. :func:`points_of_raw` reads the series from a line's bytes
for a reader's fast scan, where parsing the whole line as JSON would cost ten times more; it
refuses (None) anything it cannot read exactly, and the caller then decodes the line.

:func:`envelope` thins a curve to a number of points by keeping, in each stretch of it, its
lowest and highest point (a not-finite loss counts as the highest: a divergence stays
visible), in order: an even pick would drop a one-update spike almost always.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from bpmon.codec import DecodeError, field_reader
from bpmon.runmodel import Snapshot

Points = list[tuple[int, float]]
_START = field_reader(Snapshot, "update_start")
_LOSSES = field_reader(Snapshot, "update_losses")

# The series as the bridge writes them, at the end of its lines (bpmon.codec keeps the order).
_SERIES = re.compile(rb'"update_start":(\d+),.*?"update_losses":\[([^\]]*)\]')
_NUMBER = re.compile(rb"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")
# A line's series is at most this long (a run measured every 100,000 updates).
MAX_SERIES = 100_000


def points_of(step: int, loss: float, start: int | None, losses: Sequence[float]) -> Points:
    """The curve's points of one decoded snapshot line: its own point where the series is
    missing, does not end at the line's step, or is longer than :data:`MAX_SERIES` (a file from
    elsewhere cannot make a reader keep millions of points per line)."""
    if start is None or not losses or start + len(losses) - 1 != step or len(losses) > MAX_SERIES:
        return [(step, loss)]
    return [(start + i, x) for i, x in enumerate(losses)]


def points_of_record(record: Mapping[str, Any], step: int, loss: float) -> Points:
    """:func:`points_of` from a parsed line whose other fields are not decoded yet (a series
    that does not decode leaves the line's own point: the line is found corrupt when shown)."""
    try:
        start = _START(record.get("update_start"))
        losses = _LOSSES(record.get("update_losses", []))
    except DecodeError:
        return [(step, loss)]
    return points_of(step, loss, start, losses)


def points_of_raw(raw: bytes, step: int, loss: float) -> Points | None:
    """:func:`points_of` from a line's bytes; None when the series is there but not readable
    exactly (the caller decodes the line then)."""
    at = raw.rfind(b'"update_start":')
    if at < 0 or raw.find(b'"update_losses":', at) < 0:
        return [(step, loss)]
    found = _SERIES.match(raw, at)
    if found is None:
        return None
    start, body = int(found.group(1)), found.group(2)
    if not body:
        return [(step, loss)]
    items = body.split(b",")
    if len(items) > MAX_SERIES:
        return None
    losses = []
    for item in items:
        if item == b"null":
            losses.append(math.nan)
        elif _NUMBER.fullmatch(item):
            x = float(item)
            if not math.isfinite(x):
                return None  # 1e400: a corrupt line, as the codec says
            losses.append(x)
        else:
            return None
    return points_of(step, loss, start, losses)


def envelope(xs: Sequence[int], ys: Sequence[float], points: int) -> tuple[list[int], list[float]]:
    """At most ``points`` of the curve, the first and last kept, and in each of
    ``(points - 2) // 2`` equal stretches between them the lowest and the highest point."""
    n = len(xs)
    if n <= points or points < 4:
        return list(xs), list(ys)
    buckets = (points - 2) // 2
    picks = [0]
    for b in range(buckets):
        lo = 1 + b * (n - 2) // buckets
        hi = 1 + (b + 1) * (n - 2) // buckets
        if lo >= hi:
            continue
        low = high = lo
        for i in range(lo, hi):
            y = ys[i]
            if y != y:  # NaN counts as the highest: a divergence stays visible
                high = i
                break
            if y < ys[low]:
                low = i
            if y > ys[high]:
                high = i
        picks.extend(sorted({low, high}))
    picks.append(n - 1)
    return [xs[i] for i in picks], [ys[i] for i in picks]
