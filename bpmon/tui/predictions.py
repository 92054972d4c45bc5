"""The lower-right panel: for bpmon's own runs the prediction table (a few training points, what
the network says about them, right or wrong); for a run that has no predictions (a PyTorch run
read from its run file), the figures that run does have (:func:`run_figures`): the global
gradient norm before clipping against the clipping threshold, how often clipping acted, the lr
of each parameter group, and every other number the script logged. The panel shows the figures
as the snapshot gives them: it computes none."""

from __future__ import annotations

import math
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable

from bpmon.trainer import Prediction, Snapshot

from .status import format_percent, format_r2
from .view import SnapshotView, TextLine

# Wider inputs (digits has 64) show their first values and an ellipsis.
_MAX_INPUTS = 3
_SHOWN_WHEN_CUT = 2
_VALUE_WIDTH = 5
_CLASS_WIDTH = 6
_COLUMNS = ("input", "target", "output", "ok")
_NUMBER_WIDTH = 8


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
    }

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._layout: tuple[int, int, bool, int, bool] | None = None
        self.table: DataTable[str | Text] = DataTable(
            id="predictions-table", cursor_type="none", zebra_stripes=True
        )

        self.figures = TextLine(id="run-figures")

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
        label = self.get_component_rich_style("predictions--label", partial=True)
        loud = self.get_component_rich_style("predictions--clipped", partial=True)
        figures = run_figures(snapshot)
        width = max((len(name) for name, _, _ in figures), default=0)
        text = Text()
        for i, (name, value, alarm) in enumerate(figures):
            if i:
                text.append("\n")
            text.append(f"{name:<{width}} ", label)
            text.append(value, loud if alarm else None)
        if not any(name not in ("lr", "lrs") for name, _, _ in figures):
            text.append("\n\nno other numbers in this run file:", label)
            text.append("\nmon.log(val_loss=...) records them", label)
        return text


def figure(value: float | None) -> str:
    """A logged number in at most 9 cells: ``0.0006``, ``1.234``, ``12,345``, ``1.2e+09``."""
    if value is None:
        return "—"
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-4):
        return f"{value:.2e}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def run_figures(snapshot: Snapshot) -> list[tuple[str, str, bool]]:
    """What a run without predictions shows in their place, as (label, value, alarm) lines.
    The fields may be absent from the snapshot (older run files and writers): what is not
    there is not shown."""
    out: list[tuple[str, str, bool]] = []
    total: float | None = getattr(snapshot, "grad_norm_total", None)
    clip: float | None = getattr(snapshot, "clip_max", None)
    factor: float | None = getattr(snapshot, "clip_factor", None)
    share: float | None = getattr(snapshot, "clipped_share", None)
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
    lrs: tuple[float, ...] = tuple(getattr(snapshot, "lrs", ()) or ())
    if len(lrs) > 1:
        out.append(("lrs", " · ".join(figure(x) for x in lrs), False))
    else:
        lr = lrs[0] if lrs else snapshot.lr
        # A hand-written update (no torch.optim) has no lr the bridge can read: say how to give
        # it, not "nan".
        shown = figure(lr) if math.isfinite(lr) else "unknown · mon.log(lr=…)"
        out.append(("lr", shown, False))
    metrics: tuple[tuple[str, float], ...] = tuple(getattr(snapshot, "metrics", ()) or ())
    for name, value in metrics:
        out.append((name, figure(value), not math.isfinite(value)))
    return out


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
