"""Gradient flow over time (key ``h``): each line a row or a group of the gradient panel, each
cell its gradient norm at one stretch of the run, on the bars' fixed log scale.

It paints the :class:`~bpmon.tui.flow.Column` s it is given and nothing else. Two columns per
character: a half block ``▌`` whose foreground is the earlier column and whose background the
later one. A cell's colour says the row's status there (the stylesheet's
``heatmap--STATUS-LEVEL``) and, by its brightness, one of :data:`LEVELS` bands of the log10
norm; a group's cell is its worst row's (:func:`bpmon.tui.flow.representative`). So a vanishing
stack is dim rows under bright ones, an explosion rows that turn bright red from some column
on, and a spike one bright column.

Without colour (``NO_COLOR``) one column per character, its level as a block's height
(``▁▂▄▆█``), ``!`` where not finite. (Reversing the exploding cells was tried: a reversed full
block reads as an empty cell.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from rich.color import Color
from rich.style import Style
from rich.text import Text

from bpmon.runmodel import STATUSES, Status

from .flow import Column, representative

__all__ = ["LEVELS", "MONO", "axis", "component_classes", "level", "paint"]

LOG_MIN = -8
LOG_MAX = 2
LEVELS = 5
MONO = "▁▂▄▆█"
NONFINITE = "!"
HALF = "▌"

StyleOf = Callable[[str], Style]


def component_classes() -> set[str]:
    return {f"heatmap--{s}-{k}" for s in STATUSES for k in range(LEVELS)} | {"heatmap--empty"}


def level(norm: float) -> int:
    """The band of ``norm`` on the fixed scale: 0 (1e-8 and below, or 0) to ``LEVELS - 1``."""
    if not norm > 0 or math.isinf(norm):
        return LEVELS - 1 if math.isinf(norm) else 0
    fraction = (math.log10(norm) - LOG_MIN) / (LOG_MAX - LOG_MIN)
    return min(LEVELS - 1, max(0, int(fraction * LEVELS)))


def _cell(columns: Sequence[Column], rows: Sequence[int], i: int) -> tuple[float, Status]:
    column = columns[i]
    return representative((column.norms[r], column.statuses[r]) for r in rows)


def paint(columns: Sequence[Column], rows: Sequence[int], mono: bool, style_of: StyleOf) -> Text:
    """One line of the map: the cells of the rows ``rows`` (one row, or a group's) over
    ``columns``, two columns a character (one without colour)."""
    text = Text()
    cells = [_cell(columns, rows, i) for i in range(len(columns))]
    if mono:
        plain = style_of("heatmap--empty")
        for norm, status in cells:
            char = NONFINITE if status == "nonfinite" or math.isnan(norm) else MONO[level(norm)]
            text.append(char, plain)
        return text
    colours: dict[tuple[str, int], Color | None] = {}

    def colour(cell: tuple[float, Status]) -> Color | None:
        norm, status = cell
        key = (status, LEVELS - 1 if math.isnan(norm) else level(norm))
        if key not in colours:
            colours[key] = style_of(f"heatmap--{key[0]}-{key[1]}").color
        return colours[key]

    styles: dict[tuple[Color | None, Color | None], Style] = {}
    for i in range(0, len(cells), 2):
        left = colour(cells[i])
        right = colour(cells[i + 1]) if i + 1 < len(cells) else None
        style = styles.get((left, right))
        if style is None:
            style = styles[left, right] = Style(color=left, bgcolor=right)
        text.append(HALF, style)
    return text


def axis(columns: Sequence[Column], width: int, marker: int | None, mono: bool) -> str:
    """The header over the map, ``width`` characters: the first column's step at the left, the
    last's at the right, and ``▼`` over the column that holds step ``marker`` (a replay's
    cursor)."""
    if not columns or width <= 0:
        return " " * max(0, width)
    cells = [" "] * width
    first, last = f"step {columns[0].first:,}", f"{columns[-1].last:,}"
    at = None
    if marker is not None:
        for i, column in enumerate(columns):
            if column.first <= marker <= column.last:
                at = i if mono else i // 2
                break
    if len(first) + len(last) + 1 <= width:
        # A label the marker would cut is left out: the marker says where the cursor is.
        if at is None or at > len(first):
            cells[: len(first)] = first
        if at is None or at < width - len(last) - 1:
            cells[width - len(last) :] = last
    if at is not None and at < width:
        cells[at] = "▼"
    return "".join(cells)
