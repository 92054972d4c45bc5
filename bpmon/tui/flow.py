"""Gradient flow over time: a bounded history of each row's gradient norm and status, for the
heatmap (key ``h``). Pure: no Textual, and no arithmetic on gradients, only choosing.

The history is fed the snapshots a consumer receives (the app's, or a run file's reader's up to
its cursor) and keeps at most ``2 * columns`` columns; when full, neighbouring columns are
merged in pairs, so a column always covers a whole number of consecutive snapshots and the
first one is never dropped. A merged cell keeps the *worst* of what it covers
(:func:`representative`): the most severe status, and among those the largest norm (the
smallest, for vanishing). So a spike, one bad update among hundreds, survives any amount of
thinning, which an average or a sample would lose.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bpmon.runmodel import LayerStats, Status

__all__ = ["SEVERITY", "Column", "FlowHistory", "representative", "thin"]

# Worse is later.
SEVERITY: dict[str, int] = {"healthy": 0, "vanishing": 1, "exploding": 2, "nonfinite": 3}
# How many columns a history aims at: a heatmap at 160 columns shows two per cell.
COLUMNS = 128


@dataclass(frozen=True)
class Column:
    """Rows' norms and statuses over the snapshots from step ``first`` to step ``last``."""

    first: int
    last: int
    norms: tuple[float, ...]
    statuses: tuple[Status, ...]


def _key(norm: float, status: str) -> tuple[int, float]:
    # NaN sorts as the largest: a non-finite figure is never hidden behind a finite one.
    size = math.inf if math.isnan(norm) else -norm if status == "vanishing" else norm
    return SEVERITY.get(status, 0), size


def representative(cells: Iterable[tuple[float, Status]]) -> tuple[float, Status]:
    """The cell that stands for ``cells``: the most severe status, and among those the largest
    norm (the smallest for vanishing, whose point is how small it got). ``(nan, "healthy")``
    for none."""
    best: tuple[float, Status] | None = None
    for cell in cells:
        if best is None or _key(*cell) > _key(*best):
            best = cell
    return best if best is not None else (math.nan, "healthy")


def merge(a: Column, b: Column) -> Column:
    """One column for ``a`` then ``b`` (the same rows)."""
    cells = [
        representative(((na, sa), (nb, sb)))
        for na, sa, nb, sb in zip(a.norms, a.statuses, b.norms, b.statuses, strict=True)
    ]
    return Column(a.first, b.last, tuple(n for n, _ in cells), tuple(s for _, s in cells))


def thin(columns: Sequence[Column], width: int) -> list[Column]:
    """At most ``width`` columns: neighbours merged, as evenly as whole columns allow, the first
    and last columns' steps kept."""
    if width <= 0:
        return []
    if len(columns) <= width:
        return list(columns)
    out = []
    n = len(columns)
    for i in range(width):
        start, end = i * n // width, (i + 1) * n // width
        column = columns[start]
        for other in columns[start + 1 : end]:
            column = merge(column, other)
        out.append(column)
    return out


class FlowHistory:
    """Per row, its gradient norm and status at each snapshot added, for the rows of one run.

    A snapshot of another run, or with other rows, starts the history again; one that goes back
    in steps (a replay's cursor moved back) drops the columns after it. A snapshot whose step
    is already the last column's replaces that column (a paused run publishes its step again).
    """

    def __init__(self, columns: int = COLUMNS) -> None:
        self.capacity = 2 * columns
        self.columns: list[Column] = []
        self.names: tuple[str, ...] = ()
        self.run: object = None

    def add(self, run: object, step: int, layers: Sequence[LayerStats]) -> None:
        names = tuple(layer.name for layer in layers)
        if not layers:
            return
        if run != self.run or names != self.names:
            self.columns, self.names, self.run = [], names, run
        while self.columns and self.columns[-1].last >= step and self.columns[-1].first >= step:
            self.columns.pop()
        if self.columns and self.columns[-1].last >= step:
            # A merged column that spans the step: it is kept whole (its worst stays worst).
            return
        norms = tuple(layer.grad_norm for layer in layers)
        statuses = tuple(layer.status for layer in layers)
        self.columns.append(Column(step, step, norms, statuses))
        if len(self.columns) > self.capacity:
            self.columns = thin(self.columns, self.capacity // 2)

    def clear(self) -> None:
        self.columns, self.names, self.run = [], (), None
