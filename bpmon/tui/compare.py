"""Two runs side by side (``bpmon --preset A --compare B``, ``bpmon replay A.jsonl --compare
B.jsonl``): the widgets of a run column beside another (:class:`~bpmon.tui.column.RunColumn`),
and how a run's changes are announced. Both loss curves share one chart, and ``tab`` moves the
keys from one run to the other.

The monitor (:class:`~bpmon.tui.app.BpmonApp`) with two sources has two columns: its
``source`` is the *active* one, the run the keys act on, so every key, ``check_action``, the
help, the findings modal and the thread contract work as they do for one run; ``tab`` swaps
which source that is. The frame timer fetches both sources' snapshots each tick and hands each
to its column; the loss panel gets both.

A key changes the active run only, and says so: whatever a run's snapshots show changed (its
activation, depth, batch-norm, learning rate, a restart, a pause) is announced with the run's
name, ``run B (digits-relu-bn): activation sigmoid → relu (restarted)``, as are the notices
and messages that the single-run monitor announces.

Layout: under 160 columns a column is too narrow for the full gradient rows (~76 cells), so
both columns show them compactly (name, bar, norm, status; the bar shortened to fit, on the
same fixed log scale in both columns so the profiles compare by eye). From 160 columns each
column has the full gradient panel.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar, cast

from rich.cells import cell_len
from rich.text import Text
from textual.reactive import reactive

from bpmon.trainer import Snapshot

from .findings import FindingsScreen
from .gradients import (
    BAR_WIDTH,
    LOG_MAX,
    LOG_MIN,
    GradientPanel,
    axis_labels,
    bar_cells,
    format_norm,
    pad,
    short_name,
)
from .status import StatusLine
from .view import TextLine

if TYPE_CHECKING:
    from .app import BpmonApp

LETTERS = ("A", "B")
# From this width each column (half of it) holds the full gradient rows.
FULL_WIDTH = 160
# From this height the findings and the gradients get more rows.
ROOMY_HEIGHT = 36
# Lines for each run's findings: two at 80x24 (the loss chart keeps its rows), more when roomy.
ROWS_SHORT = 2
ROWS_ROOMY = 4
# The compact bar: shorter than the full panel's when the column is narrow, never shorter than
# one cell per decade.
_BAR_MIN = LOG_MAX - LOG_MIN
# The axis labels need this many cells to place three decades without overlapping.
_AXIS_THREE = 14
_NORM, _STATUS = 7, 9
# Where the column's gradient rows start: the name is at least as wide as the header's word.
_NAME_MIN, _NAME_MAX = len("layer"), 12


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

    COMPONENT_CLASSES: ClassVar[set[str]] = {"run-title--a", "run-title--b"}

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
    (``compact`` False), else one short row per layer: name, bar, norm and status, the bar on
    the panel's fixed log scale but only as long as the column allows."""

    # Both runs' rows scroll with the focus (tab), as they always did here.
    WINDOWED = False
    compact: reactive[bool] = reactive(True, repaint=False)
    """Short rows; bound to the app's (it depends on the width)."""

    def context(self) -> tuple[Hashable, ...]:
        return (*super().context(), self.compact)

    def watch_compact(self) -> None:
        self.redraw()

    def draw(self, snapshot: Snapshot) -> None:
        if not self.compact:
            self.border_title = "gradients ‖dL/dW‖ · input layer first"
            super().draw(snapshot)
            return
        self.border_title = "‖dL/dW‖ · input layer first"
        inside = self.content_size.width - self.styles.scrollbar_size_vertical
        name = min(_NAME_MAX, max([_NAME_MIN, *(cell_len(x.name) for x in snapshot.layers)]))
        bar = max(_BAR_MIN, min(BAR_WIDTH, inside - name - _NORM - _STATUS - 3))
        header = f"{pad('layer', name)} {compact_axis(bar)} {'norm':>{_NORM}} status"
        self.header.text = Text(header, self._style("header"))
        body = Text()
        if not snapshot.layers:
            body.append("no gradients yet", self._style("legend"))
        for i, layer in enumerate(snapshot.layers):
            if i:
                body.append("\n")
            status = self._style(layer.status)
            filled, track = bar_cells(layer.grad_norm, bar)
            body.append(pad(short_name(layer.name, name), name) + " ")
            body.append(filled, status)
            body.append(track, self._style("track"))
            body.append(f" {format_norm(layer.grad_norm):>{_NORM}} ")
            body.append(layer.status, status)
        self.body.text = body
        self.legend.text = Text()


def compact_axis(width: int) -> str:
    """The decades under a bar of ``width`` cells: three where they fit, else the two ends."""
    if width >= _AXIS_THREE:
        return axis_labels(width)
    low, high = f"1e{LOG_MIN}", f"1e{LOG_MAX}"
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
    "FULL_WIDTH",
    "LETTERS",
    "ROOMY_HEIGHT",
    "ROWS_ROOMY",
    "ROWS_SHORT",
    "RunFindingsScreen",
    "changes",
    "run_label",
]
