"""The lower-right panel: for bpmon's own runs the prediction table (a few training points, what
the network says about them, right or wrong); for a run that has no predictions (a PyTorch run
read from its run file), the figures that run does have, laid out by :mod:`bpmon.tui.thisrun`:
the global gradient norm before clipping against the clipping threshold, how often clipping
acted, the lr of each parameter group, every other number the script logged, and one of those
plotted over the run (``g`` picks the next). The panel shows the figures as the snapshot and the
reader give them: it computes none."""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable

from bpmon.metrichistory import Series
from bpmon.trainer import Prediction, Snapshot

from .status import format_percent, format_r2
from .thisrun import Styles, picture
from .thisrun import figure as figure
from .thisrun import run_figures as run_figures
from .view import SnapshotView, TextLine

# Wider inputs (digits has 64) show their first values and an ellipsis.
_MAX_INPUTS = 3
_SHOWN_WHEN_CUT = 2
_VALUE_WIDTH = 5
_CLASS_WIDTH = 6
_COLUMNS = ("input", "target", "output", "ok")
_NUMBER_WIDTH = 8
# Before the first layout the figures have no size; the panel's at 80x24 then.
_FIGURES_WIDTH = 38
_FIGURES_HEIGHT = 12
MetricSeries = Callable[[str], tuple[tuple[str, ...], Series]]


def format_number(value: float) -> str:
    """A regression's value in eight cells: 4 significant digits."""
    return f"{value:.4g}" if math.isfinite(value) else str(value)


def format_value(v: float) -> str:
    return f"{v:{_VALUE_WIDTH}.2f}" if abs(v) < 100 else f"{v:{_VALUE_WIDTH}.0e}"


def format_inputs(inputs: tuple[float, ...]) -> str:
    if len(inputs) <= _MAX_INPUTS:
        return " ".join(format_value(v) for v in inputs)
    return " ".join(format_value(v) for v in inputs[:_SHOWN_WHEN_CUT]) + " …"


def input_width(n_inputs: int) -> int:
    shown = n_inputs if n_inputs <= _MAX_INPUTS else _SHOWN_WHEN_CUT
    return shown * (_VALUE_WIDTH + 1) - 1 + (2 if n_inputs > _MAX_INPUTS else 0)


def class_name(classes: tuple[str, ...], index: int) -> str:
    name = classes[index] if 0 <= index < len(classes) else str(index)
    return name[:_CLASS_WIDTH]


def format_output(row: Prediction, classes: tuple[str, ...]) -> str:
    if len(row.output) == 1:
        # An unbounded (identity) output can be huge in a diverging run; "1e+05" fits the
        # column where "122790.123" would be cut to a misleading "122790".
        value = row.output[0]
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.0e}"
    # One probability per class does not fit; the winning class and its probability do.
    return f"{class_name(classes, row.predicted)} {row.output[row.predicted]:.2f}"


class PredictionPanel(Vertical, SnapshotView):
    """Input, target, output and a ✓/✗ mark per row; train/test accuracy in the subtitle."""

    # While a run trains, the table is refreshed at most once a second: its outputs change in
    # the third decimal on every frame, which nobody can read at 12 Hz but which costs a redraw
    # and bytes.
    REDRAW_INTERVAL = 1.0

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "predictions--right",
        "predictions--wrong",
        "predictions--label",
        "predictions--clipped",
        "predictions--chosen",
        "predictions--bars",
        "predictions--cursor",
    }

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._layout: tuple[int, int, bool, int, bool] | None = None
        self.table: DataTable[str | Text] = DataTable(
            id="predictions-table", cursor_type="none", zebra_stripes=True
        )

        self.figures = TextLine(id="run-figures")
        self._series_of: MetricSeries | None = None
        self.metric: str | None = None
        """The logged name plotted (None: the first)."""
        self.metric_names: tuple[str, ...] = ()

    def compose(self) -> ComposeResult:
        yield self.table
        yield self.figures

    def on_mount(self) -> None:
        self.border_title = "predictions"

    def draw(self, snapshot: Snapshot) -> None:
        # A recorded run without predictions: what it has instead of an empty table.
        figures = not snapshot.predictions and snapshot.config is None and bool(snapshot.mode)
        self.set_class(figures, "-figures")
        if figures:
            title = "this run"
            if title != self.border_title:
                self.border_title = title
            self.figures.text = self._figures(snapshot)
            self.border_subtitle = scores(snapshot)
            return
        if self.border_title != "predictions":
            self.border_title = "predictions"
        rows = snapshot.predictions
        n_inputs = len(rows[0].inputs) if rows else 0
        multiclass = bool(rows) and len(rows[0].output) > 1
        names = max((len(name) for name in snapshot.classes), default=1)
        regression = bool(rows) and rows[0].target_value is not None
        # A regression's table has a wider "error" column where the ✓/✗ marks go.
        layout = (len(rows), n_inputs, multiclass, min(_CLASS_WIDTH, names), regression)
        if layout != self._layout:
            self._rebuild(layout)
        # Rows stay; only cells whose text changed are touched, so a frame costs a few updates.
        for i, row in enumerate(rows):
            self._set(i, "input", format_inputs(row.inputs))
            if row.target_value is not None:
                # A regression: the target, the prediction and the error, in the target's units.
                self._set(i, "target", format_number(row.target_value))
                self._set(i, "output", format_number(row.output[0]))
                self._set(i, "ok", format_number(row.output[0] - row.target_value))
                continue
            self._set(i, "target", class_name(snapshot.classes, row.target))
            self._set(i, "output", format_output(row, snapshot.classes))
            self._set(i, "ok", "✓" if row.correct else "✗")
        self.border_subtitle = scores(snapshot)

    def _rebuild(self, layout: tuple[int, int, bool, int, bool]) -> None:
        n_rows, n_inputs, multiclass, name_width, regression = layout
        self._layout = layout
        table = self.table
        table.clear(columns=True)
        label = "input" if n_inputs <= _MAX_INPUTS else f"input ({n_inputs})"
        widths = {
            "input": max(len(label), input_width(n_inputs)),
            "target": max(len("target"), _NUMBER_WIDTH if regression else name_width),
            "output": (
                len("predicted")
                if regression
                else max(len("output"), name_width + 5 if multiclass else 5)
            ),
            "ok": _NUMBER_WIDTH if regression else 2,
        }
        labels = {
            "input": label,
            "target": "target",
            "output": "predicted" if regression else "output",
            "ok": "error" if regression else "ok",
        }
        for column in _COLUMNS:
            table.add_column(labels[column], width=widths[column], key=column)
        for i in range(n_rows):
            table.add_row("", "", "", "", key=str(i))

    def _set(self, row: int, column: str, value: str) -> None:
        if str(self.table.get_cell(str(row), column)) == value:
            return
        cell: str | Text = value
        if column == "ok" and value in ("✓", "✗"):
            style = "predictions--right" if value == "✓" else "predictions--wrong"
            cell = Text(value, self.get_component_rich_style(style, partial=True))
        elif column == "output" or (self._layout is not None and self._layout[4]):
            # Right-aligned so that the decimal points of 0.952 and -0.027 line up.
            cell = Text(value, justify="right")
        self.table.update_cell(str(row), column, cell)

    def _figures(self, snapshot: Snapshot) -> Text:
        size = self.figures.content_size
        width = size.width or _FIGURES_WIDTH
        height = size.height or _FIGURES_HEIGHT
        if self.series_of is None:
            # No reader to ask (a snapshot shown on its own): this line's numbers, one point each.
            names = tuple(name for name, _ in snapshot.metrics)
            chosen = self.metric if self.metric in names else next(iter(names), None)
            point = dict(snapshot.metrics).get(chosen or "")
            series: Series = ((snapshot.step,), (point,)) if point is not None else ((), ())
        else:
            names, series = self.series_of(self.metric or "")
            chosen = self.metric if self.metric in names else next(iter(names), None)
            if chosen != self.metric and chosen is not None:
                series = self.series_of(chosen)[1]
        self.metric = chosen
        self.metric_names = names
        return picture(snapshot, names, chosen, series, width, height, self._styles())

    def _styles(self) -> Styles:
        def style(name: str) -> Style:
            return self.get_component_rich_style(f"predictions--{name}", partial=True)

        return Styles(
            label=style("label"),
            alarm=style("clipped"),
            chosen=style("chosen"),
            bars=style("bars"),
            cursor=style("cursor"),
        )

    @property
    def series_of(self) -> MetricSeries | None:
        """Where a run's logged numbers come from over its steps (a run file's reader)."""
        return self._series_of

    @series_of.setter
    def series_of(self, series_of: MetricSeries | None) -> None:
        self._series_of = series_of
        self.redraw()

    def next_metric(self) -> bool:
        """Plot the next name the run logged (after the last, the first); False when there is
        none to plot."""
        names = self.metric_names
        if not names:
            return False
        at = names.index(self.metric) + 1 if self.metric in names else 0
        self.metric = names[at % len(names)]
        self.redraw()
        return True

    def context(self) -> tuple[Hashable, ...]:
        return (self.metric, self._series_of is not None)


def scores(snapshot: Snapshot) -> str:
    """The run's figures for a panel's border: ``"train 98.0% · test 96.7%"`` (R² for a
    regression)."""
    parts = []
    if snapshot.accuracy is not None:
        parts.append(f"train {format_percent(snapshot.accuracy)}")
    if snapshot.test_accuracy is not None:
        parts.append(f"test {format_percent(snapshot.test_accuracy)}")
    if snapshot.r2 is not None:
        parts.append(f"R² {format_r2(snapshot.r2)}")
    if snapshot.test_r2 is not None:
        parts.append(f"test R² {format_r2(snapshot.test_r2)}")
    return " · ".join(parts)
