"""The gradient panel: one bar per layer, its weight-gradient norm on a fixed log scale.

A fixed scale (not one fitted to the current values) is the point: a vanishing layer must look
short next to a healthy one, and a bar must keep its length when the run is restarted with
another activation, so that the two can be compared by eye.

The layers need not be bpmon's own ``layer0``...: a run file from a PyTorch model names them
``model.layers.17.mlp.fc1``, and may have hundreds. They group by module path
(:mod:`bpmon.tui.groups`), a row inside a group is named within it (``mlp.fc1`` under
``▾ 17``), and a numbered row with its kind (``164 (Linear)``). Rows never wrap: the columns are
planned for the panel's width (:func:`plan_columns`), a name too long for its column loses its
left end (``…layers.17.mlp.fc1``: the end tells layers apart). The panel draws the lines that
fit under its column header and says how many more there are; the app's ↑ ↓ pgup pgdn move
through them.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.reactive import reactive

from bpmon.runmodel import STATUSES, LayerStats
from bpmon.trainer import Snapshot

from . import heatmap
from .barcells import (
    BAR_WIDTH,
    LOG_MAX,
    LOG_MIN,
    Columns,
    axis_labels,
    bar_cells,
    format_norm,
    group_summary,
    pad,
    plan_columns,
    short_name,
    short_number,
)
from .barrows import BarRows
from .flow import FlowHistory
from .flowmap import FlowMapRows
from .groups import Node, Shown
from .view import TextLine

# What other modules (and the tests) import from here; the rows' cells are in barcells, the
# window over them in rowwindow, the bars in barrows, the flow map in flowmap.
__all__ = [
    "BAR_WIDTH",
    "LOG_MAX",
    "LOG_MIN",
    "Columns",
    "GradientPanel",
    "axis_labels",
    "bar_cells",
    "format_norm",
    "group_summary",
    "pad",
    "plan_columns",
    "short_name",
    "short_number",
]

_TITLE = "gradients ‖dL/dW‖ · input layer first"
_FLOW_TITLE = "gradient flow over time · log10 ‖dL/dW‖ · h: bars"


class GradientPanel(BarRows, FlowMapRows):
    """Bars of ``grad_norm`` per layer, coloured and labelled by ``status``, with the
    activation (where there is room), its health and the update ratio that explain them, and
    the thresholds as a legend; or, with ``flow`` (key ``h``), each row's norm over time
    (:mod:`bpmon.tui.heatmap`).

    Rows group by module path (:mod:`bpmon.tui.groups`): a group's line shows its worst status
    and the range of its rows' norms, and enter opens or closes the group under the cursor.
    The panel draws only the lines that fit under its fixed column header (its own window,
    ``top``), says how many more there are, and ↑ ↓ pgup pgdn move a cursor through them
    (the app's keys, so no focus is needed first).
    """

    # While a run trains the bars are redrawn four times a second: a profile change shows
    # within a second, and the bytes a slow SSH link carries stay low.
    REDRAW_INTERVAL = 0.25
    WINDOWED: ClassVar[bool] = True
    """Draw only the lines that fit (False: every line, and the panel scrolls)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        *(f"gradients--{status}" for status in STATUSES),
        "gradients--track",
        "gradients--range",
        "gradients--header",
        "gradients--legend",
        "gradients--activation",
        "gradients--cursor",
        *heatmap.component_classes(),
    }

    flow: reactive[bool] = reactive(False, repaint=False)
    """The rows over time (``h``) instead of the bars."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        # Three widgets, not one: a terminal is sent every line of a widget that changed, and
        # only the bar rows change while a run trains.
        self.header = TextLine(id="gradients-header")
        self.body = TextLine(id="gradients-body")
        self.legend = TextLine(id="gradients-legend")
        self.history = FlowHistory()
        self.history_of: Callable[[int], list[tuple[int, tuple[LayerStats, ...]]]] | None = None
        """Where the columns come from when not from the snapshots received (a run file's
        reader: its snapshots up to the cursor)."""
        self._names: tuple[str, ...] = ()
        self._tree: tuple[Node, ...] = ()
        self.chosen: dict[str, bool] = {}
        """Groups the user opened (True) or closed (False) with enter."""
        self.shown: list[Shown] = []
        self.row_cursor: int | None = None
        self._widened = False
        self.top = 0

    def compose(self) -> ComposeResult:
        yield self.header
        yield self.body
        yield self.legend

    def on_mount(self) -> None:
        self.border_title = _TITLE

    def context(self) -> tuple[Hashable, ...]:
        return (
            self.detail,
            self.flow,
            self.row_cursor,
            self.top,
            tuple(sorted(self.chosen.items())),
            self.room(),
            self.app.no_color,
        )

    def watch_detail(self) -> None:
        self.redraw()

    def watch_flow(self) -> None:
        self.border_title = _FLOW_TITLE if self.flow else _TITLE
        self.redraw()

    def watch_snapshot(self) -> None:
        snapshot = self.snapshot
        if snapshot is not None and self.history_of is None:
            self.history.add(snapshot.run_id, snapshot.step, snapshot.layers)
        super().watch_snapshot()

    # -- drawing ------------------------------------------------------------------------------

    def draw(self, snapshot: Snapshot) -> None:
        before = self._heights()
        self._draw(snapshot)
        if self._heights() != before:
            # Drawn while the screen is being laid out (a resize), a new height would be
            # missed until the next layout: ask for one after this refresh.
            self.call_after_refresh(self._relayout)

    def _relayout(self) -> None:
        for line in (self.body, self.legend):
            line.refresh(layout=True)

    def _heights(self) -> tuple[int, int]:
        return self.body.text.plain.count("\n"), self.legend.text.plain.count("\n")

    def _draw(self, snapshot: Snapshot) -> None:
        self.shown = self._lines(snapshot)
        if self.row_cursor is not None:
            self.row_cursor = min(self.row_cursor, len(self.shown) - 1) if self.shown else None
        if self.detail and self.WINDOWED:
            self._widen(snapshot)
        elif self._widened:
            # Back under the plot: the stylesheet's width again.
            self._widened = False
            self.styles.min_width = None
        columns = self.columns(snapshot)
        if self.flow:
            self._draw_flow(snapshot, columns)
            return
        self.header.text = Text(self._header_row(columns), self._style("header"))
        lines = self._row_lines(snapshot.layers, columns)
        extra: list[Text] = []
        if self.detail and snapshot.initial_layers:
            header = self._style("header")
            extra = [Text(), Text("the same layers at step 1, fresh from the initialiser:", header)]
            if tuple(x.name for x in snapshot.initial_layers) == self._names:
                extra += self._row_lines(snapshot.initial_layers, columns, cursor=False)
            else:
                extra += [self._row(layer, columns) for layer in snapshot.initial_layers]
            extra.append(Text())
        self._show(lines, extra, snapshot)
        self.legend.text = self._legend(snapshot.thresholds, len(lines) + len(extra))
