"""Runs side by side (``bpmon --preset A --compare B [--compare C ...]``, ``bpmon replay
A.jsonl --compare B.jsonl``), up to four (A to D): the widgets of a run column beside others
(:class:`~bpmon.tui.column.RunColumn`), and how a run's changes are announced. The loss curves
share one chart, and ``tab`` moves the keys from one run to the next.

The monitor (:class:`~bpmon.tui.app.BpmonApp`) with several sources has a column for each: its
``source`` is the *active* one, the run the keys act on, so every key, ``check_action``, the
help, the findings modal and the thread contract work as they do for one run; ``tab`` moves
that to the next source. The frame timer fetches every source's snapshot each tick and hands
each to its column; the loss panel gets them all.

A key changes the active run only, and says so: whatever a run's snapshots show changed (its
activation, depth, batch-norm, learning rate, a restart, a pause) is announced with the run's
name, ``run B (digits-relu-bn): activation sigmoid → relu (restarted)``, as are the notices
and messages that the single-run monitor announces.

Layout: a column narrower than 80 cells is too narrow for the full gradient rows (~76 cells), so
under 80 columns per run every column shows them compactly (name, bar, norm, status; the bar
shortened to fit, on the same fixed log scale in every column so the profiles compare by eye;
a long name is cut to 8 cells before the status word is; where even that does not fit, as
three runs at 80 columns, the status is its first letter).
From 80 columns per run each column has the full gradient panel.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar, cast

from rich.cells import cell_len
from rich.text import Text
from textual.geometry import Region
from textual.reactive import reactive

from bpmon.runmodel import RUN_LETTERS
from bpmon.trainer import Snapshot

from .barcells import _FULL, _RANGE
from .findings import FindingsScreen
from .gradients import (
    BAR_WIDTH,
    LOG_MAX,
    LOG_MIN,
    GradientPanel,
    axis_labels,
    bar_cells,
    format_norm,
    group_summary,
    pad,
    short_name,
)
from .groups import Group
from .status import StatusLine
from .view import TextLine

if TYPE_CHECKING:
    from .app import BpmonApp

LETTERS = RUN_LETTERS
# From this width per run each column holds the full gradient rows.
FULL_COLUMN = 80
# From this height the findings and the gradients get more rows.
ROOMY_HEIGHT = 36
# Lines for each run's findings: two at 80x24 (the loss chart keeps its rows), more when roomy.
ROWS_SHORT = 2
ROWS_ROOMY = 4
# The compact bar: shorter than the full panel's when the column is narrow, never shorter than
# one cell per decade while the status word fits beside it; in a column too narrow for that
# (three runs at 80 columns) the status is its first letter and the bar may go down to
# two decades a cell.
_BAR_MIN = LOG_MAX - LOG_MIN
_BAR_NARROW = (LOG_MAX - LOG_MIN) // 2
# The axis labels need this many cells to place three decades without overlapping.
_AXIS_THREE = 14
_NORM, _STATUS = 7, 9
# Where the column's gradient rows start: the name is at least as wide as the header's word.
_NAME_MIN, _NAME_SHORT, _NAME_MAX = len("layer"), 8, 12


def run_label(index: int, snapshot: Snapshot | None) -> str:
    """``run B (digits-relu-bn)``: how an announcement names the run."""
    preset = "" if snapshot is None or not snapshot.preset else f" ({snapshot.preset})"
    return f"run {LETTERS[index]}{preset}"


def changes(old: Snapshot | None, new: Snapshot) -> list[str]:
    """What a key did to a run, as its snapshots show it: the switches and learning rate it
    changed, a restart, a pause, resume or single step. Nothing for the first snapshot, nor for
    what a run does by itself (finishing, diverging: its status line says that)."""
    if old is None:
        return []
    said: list[str] = []
    if old.config is not None and new.config is not None:
        before, after = old.config.model, new.config.model
        if before.activation_text != after.activation_text:
            said.append(f"activation {before.activation_text} → {after.activation_text}")
        if before.depth != after.depth:
            said.append(f"hidden layers {before.depth} → {after.depth}")
        if before.batchnorm != after.batchnorm:
            said.append(f"batch-norm {'on' if after.batchnorm else 'off'}")
    if old.lr != new.lr and math.isfinite(old.lr) and math.isfinite(new.lr):
        said.append(f"learning rate {old.lr:g} → {new.lr:g}")
    if new.run_id != old.run_id:
        said.append("restarted")
    elif (old.state, new.state) == ("running", "paused"):
        said.append("paused")
    elif (old.state, new.state) == ("paused", "running"):
        said.append("resumed")
    elif old.state == new.state == "paused" and new.step > old.step:
        said.append(f"one step, to step {new.step}")
    return [", ".join(said)] if said else []


class RunTitle(TextLine):
    """A column's first line: the run's letter and preset after a mark in its curve's colour,
    and whether the keys act on it (the stylesheet highlights the active column's title)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {f"run-title--{x.lower()}" for x in LETTERS}

    def show(self, index: int, snapshot: Snapshot | None, active: bool) -> None:
        preset = "" if snapshot is None else snapshot.preset
        text = Text("▶ " if active else "  ")
        text.append(f"{LETTERS[index]} ", "bold")
        style = self.get_component_rich_style(f"run-title--{LETTERS[index].lower()}", partial=True)
        text.append("━━ ", style)
        text.append(preset, "bold")
        text.append(" · keys here" if active else " · tab: keys here")
        self.text = text


class RunStatus(StatusLine):
    """The status line without the preset's name, which the column's title already shows: the
    switches (what ``a``, ``b``, ``+`` change) then fit in a half-width column."""

    def render_snapshot(self, snapshot: Snapshot) -> tuple[Text, Text]:
        return super().render_snapshot(replace(snapshot, preset=""))


class RunGradients(GradientPanel):
    """The gradient panel of one column: the full rows where the column is wide enough
    (``compact`` False), else one short line per layer or group (grouped and folded as in the
    single view): name, bar, norm and status, the bar on the panel's fixed log scale but only
    as long as the column allows. ↑ ↓ and enter act on the active column's."""

    # The rows scroll (each column's panel keeps its own place) rather than window.
    WINDOWED = False
    compact: reactive[bool] = reactive(True, repaint=False)
    """Short rows; bound to the app's (it depends on the width)."""

    def context(self) -> tuple[Hashable, ...]:
        return (*super().context(), self.compact)

    def watch_compact(self) -> None:
        self.redraw()

    def move(self, delta: int) -> None:
        super().move(delta)
        if self.row_cursor is not None:
            # These rows scroll rather than window: keep the cursor's line (under the column
            # header's one) in sight.
            self.scroll_to_region(Region(0, 1 + self.row_cursor, 1, 1), animate=False)

    def draw(self, snapshot: Snapshot) -> None:
        if not self.compact:
            self.border_title = "gradients ‖dL/dW‖ · input layer first"
            super().draw(snapshot)
            return
        self.border_title = "‖dL/dW‖ · input layer first"
        layers = snapshot.layers
        # Grouped as in the single view (a big model's blocks folded to fit, enter opens one).
        self.shown = self._lines(snapshot) if layers else []
        if self.row_cursor is not None:
            self.row_cursor = min(self.row_cursor, len(self.shown) - 1) if self.shown else None
        labels = [self._label(layers, line) for line in self.shown]
        inside = self.content_size.width - self.styles.scrollbar_size_vertical
        name = min(_NAME_MAX, max([_NAME_MIN, *(cell_len(x) for x in labels)]))
        # Short of room, the bar goes down to one cell a decade, then the name to
        # _NAME_SHORT cells, then the status word to its first letter.
        word = _STATUS
        beside_word = inside - _BAR_MIN - _NORM - word - 3
        if beside_word >= min(name, _NAME_SHORT):
            name = min(name, beside_word)
        else:
            word = 1
            name = max(_NAME_MIN, min(name, inside - _BAR_NARROW - _NORM - word - 3))
        least = _BAR_MIN if word > 1 else _BAR_NARROW
        bar = max(least, min(BAR_WIDTH, inside - name - _NORM - word - 3))
        heading = "status"[:word]
        header = f"{pad('layer', name)} {compact_axis(bar)} {'norm':>{_NORM}} {heading}"
        self.header.text = Text(header, self._style("header"))
        body = Text()
        if not layers:
            body.append("no gradients yet", self._style("legend"))
        for i, (line, label) in enumerate(zip(self.shown, labels, strict=True)):
            if i:
                body.append("\n")
            if isinstance(line.node, Group):
                low, high, status = group_summary([layers[j] for j in line.node.rows])
                solid = bar_cells(low, bar)[0].count(_FULL)
                top, track = bar_cells(high, bar)
                filled = _FULL * min(solid, len(top)) + _RANGE * max(0, len(top) - solid)
                norm = high
            else:
                layer = layers[line.node]
                filled, track = bar_cells(layer.grad_norm, bar)
                norm, status = layer.grad_norm, layer.status
            row = Text(pad(cut_label(label, name), name) + " ")
            row.append(filled, self._style(status))
            row.append(track, self._style("track"))
            row.append(f" {format_norm(norm):>{_NORM}} ")
            row.append(status[:word], self._style(status))
            if i == self.row_cursor:
                row.stylize(self._style("cursor"))
            body.append_text(row)
        self.body.text = body
        self.legend.text = Text()


def cut_label(label: str, width: int) -> str:
    """A row's label in ``width`` cells, its indent and group mark (``▸``, ``▾``) kept and
    the name's left end cut: ``cut_label("▸ transformer.h", 12)`` is ``"▸ …sformer.h"``."""
    name = label.lstrip(" ")
    if name[:2] in ("▸ ", "▾ "):
        name = name[2:]
    lead = label[: len(label) - len(name)]
    return lead + short_name(name, max(1, width - cell_len(lead)))


def compact_axis(width: int) -> str:
    """The decades under a bar of ``width`` cells: three where they fit, else the two ends,
    else only the low end."""
    if width >= _AXIS_THREE:
        return axis_labels(width)
    low, high = f"1e{LOG_MIN}", f"1e{LOG_MAX}"
    if width < len(low) + len(high) + 1:
        return pad(low, width)
    return low + " " * (width - len(low) - len(high)) + high


class RunFindingsScreen(FindingsScreen):
    """The findings modal, its title naming the run whose findings it lists (the active one)."""

    def on_mount(self) -> None:
        # FindingsScreen's own on_mount runs too (Textual calls each class's handler).
        self.watch(self.app, "active", self._title)

    def _title(self, active: int) -> None:
        app = cast("BpmonApp", self.app)
        if len(app.columns) > 1:
            label = run_label(active, app.snapshot)
            self.query_one("#findings-box").border_title = f"bpmon findings · {label}"


__all__ = [
    "FULL_COLUMN",
    "LETTERS",
    "ROOMY_HEIGHT",
    "ROWS_ROOMY",
    "ROWS_SHORT",
    "RunFindingsScreen",
    "changes",
    "run_label",
]
