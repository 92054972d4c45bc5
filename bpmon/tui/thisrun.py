"""The "this run" panel's picture, laid out to the cells it has: what a run without predictions
(a PyTorch run read from its run file) shows in their place.

From the top: the figures of the update under view (:func:`figure_lines`: the global gradient
norm before clipping against the clipping threshold, how often clipping acted, the lr of each
param group), then every number the script logged (``mon.log(val_loss=...)``), then a small plot
of one of them over the run's steps, chosen with a key (:data:`KEY`). Every line fits the width:
a label is cut with an ellipsis, its value is right-aligned after it. Logged names come from
files from elsewhere, sanitised by the codec; here they are only ever cut, never trusted to be
short or few: when they do not all fit above the plot, the last line says how many are left out.

The plot is drawn in eighth blocks, one column per slice of the steps: a column shows the last
value logged in its slice, and a slice with none holds the value before it (a logged value stands
until the next one). A value that is not a number is a cross at its step; the replay cursor's
step is a ``◆`` under the plot (NO_COLOR keeps it) and its column is in the cursor style.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text

from bpmon.actions import ACTIONS
from bpmon.trainer import Snapshot

from .loss import MARKER

# The key the panel's lines name: the action table's, so the two cannot differ.
KEY = ACTIONS["metric"].keys[0]
"""The key that plots the next logged name."""
# A plot shorter than this says nothing; the logged numbers' lines give way to it first.
MIN_ROWS = 2
# Taller, eighth blocks add nothing to read: 80 levels.
MAX_ROWS = 10
# Where a value would leave its label fewer cells than this, the value is cut instead.
MIN_LABEL = 6
_BLOCKS = " ▁▂▃▄▅▆▇█"
_NAN = "×"  # noqa: RUF001
HINT = ("no other numbers in this run file:", "mon.log(val_loss=...) records them")


@dataclass(frozen=True)
class Styles:
    """The panel's component styles, for the parts of the picture."""

    label: Style = field(default_factory=Style)
    alarm: Style = field(default_factory=Style)
    chosen: Style = field(default_factory=Style)
    bars: Style = field(default_factory=Style)
    cursor: Style = field(default_factory=Style)


def figure(value: float | None) -> str:
    """A logged number in at most 9 cells: ``0.0006``, ``1.234``, ``12,345``, ``1.2e+09``."""
    if value is None:
        return "—"
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-4):
        text = f"{value:.2e}"
        # A three-digit exponent with a sign leaves room for one digit.
        return text if len(text) <= 9 else f"{value:.0e}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def figure_lines(snapshot: Snapshot, width: int = 0) -> list[tuple[str, str, bool]]:
    """The update's own figures as (label, value, alarm) lines; what the snapshot does not
    have (an older file, no clipping) is not shown. ``width`` (0: any) is the line's: the lrs
    of many param groups that do not fit are said as their count and range."""
    out: list[tuple[str, str, bool]] = []
    total = snapshot.grad_norm_total
    clip = snapshot.clip_max
    factor = snapshot.clip_factor
    share = snapshot.clipped_share
    if total is not None:
        line = figure(total)
        if clip is not None:
            line += f" / clip {figure(clip)}"
        clipped = factor is not None and factor < 1.0
        if clipped and factor is not None:
            line += f" x{factor:.2f}"
        out.append(("‖g‖ pre-clip", line, clipped or not math.isfinite(total)))
    elif clip is not None:
        out.append(("clip at", figure(clip), False))
    if share is not None:
        out.append(("clipped", f"{share * 100:.0f}% of recent updates", share >= 0.5))
    lrs = snapshot.lrs
    if len(lrs) > 1:
        value = " · ".join(figure(x) for x in lrs)
        if width and cell_len(value) + 1 + len("lrs") > width:
            finite = [x for x in lrs if math.isfinite(x)]
            span = f"{figure(min(finite))}…{figure(max(finite))}" if finite else "nan"
            value = f"{len(lrs)} groups {span}"
        out.append(("lrs", value, not all(math.isfinite(x) for x in lrs)))
    else:
        lr = lrs[0] if lrs else snapshot.lr
        # A hand-written update (no torch.optim) has no lr the bridge can read: say how to give
        # it, not "nan".
        shown = figure(lr) if math.isfinite(lr) else "unknown · mon.log(lr=…)"
        out.append(("lr", shown, False))
    return out


def metric_lines(snapshot: Snapshot) -> list[tuple[str, str, bool]]:
    """The numbers logged by name in this update's line."""
    return [(name, figure(value), not math.isfinite(value)) for name, value in snapshot.metrics]


def run_figures(snapshot: Snapshot) -> list[tuple[str, str, bool]]:
    """Every figure line of the panel, the logged numbers last."""
    return figure_lines(snapshot) + metric_lines(snapshot)


def fit(
    label: str, value: str, width: int, label_style: Style, value_style: Style | None = None
) -> Text:
    """``label`` and ``value`` in exactly ``width`` cells: the value right-aligned, the label cut
    with an ellipsis where both do not fit (the value too, where it alone would not leave the
    label :data:`MIN_LABEL` cells)."""
    shown = Text(value, style=value_style or "")
    room = max(1, width - min(cell_len(label), MIN_LABEL) - 1)
    if shown.cell_len > room:
        shown.truncate(room, overflow="ellipsis")
    name = Text(label, style=label_style)
    name_room = max(0, width - shown.cell_len - 1)
    if name.cell_len > name_room:
        name.truncate(name_room, overflow="ellipsis")
    gap = max(0, width - name.cell_len - shown.cell_len)
    line = Text.assemble(name, " " * gap, shown)
    line.truncate(width)
    return line


def columns(
    steps: Sequence[int], values: Sequence[float], width: int
) -> tuple[list[float | None], list[bool], int, int]:
    """The series on ``width`` columns over its steps: per column the value it shows (None
    before the first point), whether a non-number arrived there, and the first and last step."""
    # A file from elsewhere may not keep its steps in order: the range is the steps' own.
    first, last = min(steps), max(steps)
    span = last - first
    shown: list[float | None] = [None] * width
    nan = [False] * width
    for step, value in zip(steps, values, strict=True):
        at = 0 if span <= 0 else round((step - first) / span * (width - 1))
        at = min(max(at, 0), width - 1)
        shown[at] = value
        nan[at] = nan[at] or not math.isfinite(value)
    held: float | None = None
    for i, cell in enumerate(shown):
        if cell is None:
            shown[i] = held
        else:
            held = cell
    return shown, nan, first, last


def plot(
    steps: Sequence[int],
    values: Sequence[float],
    marker: int | None,
    width: int,
    rows: int,
    styles: Styles,
) -> list[Text]:
    """``rows`` lines of bars with the range's labels on the left, and the axis line under them
    (first step, cursor, last step): ``rows + 1`` lines of ``width`` cells."""
    finite = [v for v in values if math.isfinite(v)]
    if not steps or not finite:
        what = "nothing logged yet" if not steps else "no finite value to draw"
        return [Text(what, style=styles.label)] + [Text() for _ in range(rows)]
    low, high = min(finite), max(finite)
    labels = (figure(high), figure(low))
    label_width = max(cell_len(x) for x in labels)
    width_bars = max(1, width - label_width - 1)
    shown, nan, first, last = columns(steps, values, width_bars)
    cursor = None
    if marker is not None and first <= marker <= last:
        cursor = 0 if last == first else round((marker - first) / (last - first) * (width_bars - 1))
    levels = rows * 8
    heights = [0] * width_bars
    for i, value in enumerate(shown):
        if value is None or not math.isfinite(value):
            continue
        # Halved first: the span of two finite floats may not be one (-1e308 to 1e308).
        where = 0.5 if high == low else (value / 2 - low / 2) / (high / 2 - low / 2)
        heights[i] = 1 + round(where * (levels - 1))
    out: list[Text] = []
    for row in range(rows):
        from_bottom = rows - 1 - row
        label = labels[0] if row == 0 else labels[1] if row == rows - 1 else ""
        line = Text(f"{label:>{label_width}} ", style=styles.label)
        for i, height in enumerate(heights):
            if nan[i] and from_bottom == 0:
                char = _NAN
            else:
                char = _BLOCKS[min(8, max(0, height - from_bottom * 8))]
            style = styles.cursor if i == cursor else styles.alarm if nan[i] else styles.bars
            line.append(char, style)
        out.append(line)
    out.append(axis(first, last, cursor, label_width + 1, width_bars, styles))
    return out


def axis(
    first: int, last: int, cursor: int | None, indent: int, width: int, styles: Styles
) -> Text:
    """The first and last step under the bars' ends, and the cursor's mark under its column."""
    cells = [" "] * width
    left, right = str(first), str(last)
    for i, char in enumerate(left[:width]):
        cells[i] = char
    if last != first and len(left) + len(right) < width:
        for i, char in enumerate(right):
            cells[width - len(right) + i] = char
    if cursor is not None:
        cells[cursor] = MARKER
    line = Text(" " * indent, style=styles.label)
    for i, char in enumerate(cells):
        line.append(char, styles.cursor if i == cursor else styles.label)
    return line


def listed(
    logged: list[tuple[str, str, bool]], chosen: str | None, room: int
) -> tuple[list[tuple[str, str, bool]], int, bool]:
    """Which logged lines fit in ``room`` lines: those kept, how many are left out (a line says
    so), and whether the plotted name needs a title line of its own (it is not among them)."""
    names = [label for label, _, _ in logged]
    if len(logged) <= room and (chosen is None or chosen in names or len(logged) < room):
        return logged, 0, chosen is not None and chosen not in names
    kept = logged[: max(0, room - 1)]
    title = chosen is not None and chosen not in names[: len(kept)]
    if title:
        kept = kept[:-1]
    return kept, len(logged) - len(kept), title


def picture(
    snapshot: Snapshot,
    names: Sequence[str],
    chosen: str | None,
    series: tuple[Sequence[int], Sequence[float]],
    width: int,
    height: int,
    styles: Styles,
) -> Text:
    """The whole panel in ``width`` x ``height`` cells (fewer lines where it has less to say).
    ``names`` are every name the run logged so far, ``chosen`` the one plotted and ``series``
    its steps and values over the run."""
    width = max(1, width)
    logged = metric_lines(snapshot)
    if snapshot.step == 0 and not names and not logged and math.isnan(snapshot.lr):
        # A followed file with no snapshot line yet: nothing is known, not an lr of nan.
        return _join([Text("waiting for the first snapshot", style=styles.label)], width, height)
    lines: list[Text] = [
        fit(label, value, width, styles.label, styles.alarm if alarm else None)
        for label, value, alarm in figure_lines(snapshot, width)
    ]
    if not names and not logged:
        lines.append(Text())
        lines.extend(_cut(Text(hint, style=styles.label), width) for hint in HINT)
        return _join(lines, width, height)
    # Below the figures: the logged numbers, then at least MIN_ROWS of bars and the axis. The
    # plotted name's line says its place in the cycle; a plotted name with no line here (not
    # logged at this update, or cut) gets one of its own above the plot.
    where = ""
    if chosen is not None and len(names) > 1 and chosen in names:
        where = f" · {KEY} {names.index(chosen) + 1}/{len(names)}"
    kept, rest, title = listed(logged, chosen, height - len(lines) - (MIN_ROWS + 1))
    for label, value, alarm in kept:
        style = styles.chosen if label == chosen else styles.label
        value += where if label == chosen else ""
        lines.append(fit(label, value, width, style, styles.alarm if alarm else None))
    if rest:
        lines.append(Text(f"… {rest:,} more logged: {KEY} plots each", style=styles.label))
    if chosen is not None:
        if title:
            now = dict(snapshot.metrics).get(chosen)
            alarm = now is not None and not math.isfinite(now)
            loud = styles.alarm if alarm else None
            lines.append(fit(chosen, figure(now) + where, width, styles.chosen, loud))
        rows = min(MAX_ROWS, max(MIN_ROWS, height - len(lines) - 1))
        lines.extend(plot(series[0], series[1], snapshot.marker_step, width, rows, styles))
    return _join(lines, width, height)


def _cut(text: Text, width: int) -> Text:
    text.truncate(width, overflow="ellipsis")
    return text


def _join(lines: list[Text], width: int, height: int) -> Text:
    """The lines that fit the height, each cut to the width: the one rule that keeps any
    panel size, however small, from wrapping or spilling."""
    return Text("\n").join(_cut(line, width) for line in lines[: max(1, height)])
