"""The gradient panel: one bar per Dense layer, its weight-gradient norm on a fixed log scale.

A fixed scale (not one fitted to the current values) is the point: a vanishing layer must look
short next to a healthy one, and a bar must keep its length when the run is restarted with
another activation, so that the two can be compared by eye.
"""

from __future__ import annotations

import math
import time
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from bpmon.config import Thresholds
from bpmon.telemetry import STATUSES, LayerStats
from bpmon.trainer import Snapshot

# While a run trains the bars are redrawn four times a second: a profile change shows within a
# second, and the bytes a slow SSH link carries stay low. A restart or a pause shows at once.
GRADIENT_INTERVAL = 0.25

LOG_MIN = -8
LOG_MAX = 2
# Two cells per decade, and the whole row stays inside 76 columns (80 minus border and padding).
BAR_WIDTH = 20
_EIGHTHS = " ▏▎▍▌▋▊▉"
_FULL = "█"
_TRACK = "·"
_NONFINITE = "▒"
_HEALTH_WORDS = {"saturated": "sat", "dead": "dead"}

_COLUMNS = "{:<7} {:>7} {:<20} {:>7} {:<9} {:<9} {:>7}"


def short_number(x: float) -> str:
    """``0.01`` -> ``"1e-2"``, ``100.0`` -> ``"1e2"``, ``0.0025`` -> ``"2.5e-3"``."""
    mantissa, exponent = f"{x:.1e}".split("e")
    mantissa = mantissa.removesuffix(".0")
    return f"{mantissa}e{int(exponent)}"


def bar_cells(grad_norm: float, width: int = BAR_WIDTH) -> tuple[str, str]:
    """The filled and the empty part of one bar; their lengths add up to ``width``."""
    if not math.isfinite(grad_norm):
        return _NONFINITE * width, ""
    if grad_norm <= 0:
        eighths = 0
    else:
        fraction = (math.log10(grad_norm) - LOG_MIN) / (LOG_MAX - LOG_MIN)
        eighths = round(min(1.0, max(0.0, fraction)) * width * 8)
    full, rest = divmod(eighths, 8)
    filled = _FULL * full + (_EIGHTHS[rest] if rest else "")
    return filled, _TRACK * (width - len(filled))


def axis_labels(width: int = BAR_WIDTH) -> str:
    """``1e-8 … 1e-3 … 1e2`` placed under the bar column at their decades."""
    cells = [" "] * width
    middle = (LOG_MIN + LOG_MAX) // 2
    for label, start in (
        (f"1e{LOG_MIN}", 0),
        (f"1e{middle}", (middle - LOG_MIN) * width // (LOG_MAX - LOG_MIN) - 2),
        (f"1e{LOG_MAX}", width - len(f"1e{LOG_MAX}")),
    ):
        cells[start : start + len(label)] = label
    return "".join(cells)


def format_norm(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return "0" if value == 0 else f"{value:.1e}"


def format_health(layer: LayerStats) -> str:
    if not layer.health_label:
        return "—"
    word = _HEALTH_WORDS.get(layer.health_label, layer.health_label[:4])
    return f"{word} {layer.health * 100:3.0f}%"


def format_ratio(value: float) -> str:
    return "—" if math.isnan(value) else format_norm(value)


class GradientPanel(VerticalScroll):
    """Bars of ``grad_norm`` per layer, coloured and labelled by ``status``, with the
    activation health and update ratio that explain them, and the thresholds as a legend."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        *(f"gradients--{status}" for status in STATUSES),
        "gradients--track",
        "gradients--header",
        "gradients--legend",
    }

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        # Wide terminals have the rows to spare for the step-1 bars under the current ones.
        self.detail = False
        self._snapshot: Snapshot | None = None
        self._shown: dict[str, Text] = {}
        self._shown_at = 0.0
        self._shown_key: tuple[int, str, bool] | None = None

    def compose(self) -> ComposeResult:
        # Three widgets, not one: a terminal is sent every line of a widget that changed, and
        # only the bar rows change while a run trains.
        yield Static(id="gradients-header")
        yield Static(id="gradients-body")
        yield Static(id="gradients-legend")

    def on_mount(self) -> None:
        self.border_title = "gradients ‖dL/dW‖ · input layer first"

    def set_detail(self, detail: bool) -> None:
        if detail != self.detail:
            self.detail = detail
            if self._snapshot is not None:
                self.show(self._snapshot)

    def show(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        now = time.monotonic()
        key = (snapshot.run_id, snapshot.state, self.detail)
        throttled = snapshot.state == "running" and now - self._shown_at < GRADIENT_INTERVAL
        if key == self._shown_key and throttled:
            return
        self._shown_key, self._shown_at = key, now
        header = self._style("header")
        self._update(
            "gradients-header",
            Text(
                _COLUMNS.format(
                    "layer", "in→out", axis_labels(), "norm", "status", "health", "upd/w"
                ),
                header,
                no_wrap=True,
                overflow="ellipsis",
            ),
        )
        self._update("gradients-body", self.render_rows(snapshot))
        self._update("gradients-legend", self._legend(snapshot.config.thresholds))

    def _update(self, widget_id: str, text: Text) -> None:
        shown = self._shown.get(widget_id)
        if text == shown:
            return
        # The lines do not wrap, so the height changes only with their number; skipping the
        # relayout otherwise keeps a frame cheap.
        relayout = shown is None or text.plain.count("\n") != shown.plain.count("\n")
        self.query_one(f"#{widget_id}", Static).update(text, layout=relayout)
        self._shown[widget_id] = text

    def render_rows(self, snapshot: Snapshot) -> Text:
        header = self._style("header")
        text = Text(no_wrap=True, overflow="ellipsis")
        if not snapshot.layers:
            text.append("\nno gradients yet: waiting for the first step\n", self._style("legend"))
        for i, layer in enumerate(snapshot.layers):
            if i:
                text.append("\n")
            text.append_text(self._row(layer))
        if self.detail and snapshot.initial_layers:
            text.append("\n\nthe same layers at step 1, fresh from the initialiser:", header)
            for layer in snapshot.initial_layers:
                text.append("\n")
                text.append_text(self._row(layer))
            text.append("\n")
        return text

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"gradients--{name}", partial=True)

    def _row(self, layer: LayerStats) -> Text:
        status = self._style(layer.status)
        filled, track = bar_cells(layer.grad_norm)
        return Text.assemble(
            f"{layer.name:<7} {f'{layer.fan_in}→{layer.fan_out}':>7} ",
            (filled, status),
            (track, self._style("track")),
            f" {format_norm(layer.grad_norm):>7} ",
            (f"{layer.status:<9}", status),
            f" {format_health(layer):<9} {format_ratio(layer.update_ratio):>7}",
        )

    def _legend(self, th: Thresholds) -> Text:
        legend = self._style("legend")
        text = Text(no_wrap=True, overflow="ellipsis")
        for i, status in enumerate(STATUSES):
            if i:
                text.append(" ")
            text.append("■", self._style(status))
            text.append(f" {status}", legend)
        text.append(f" │ log scale 1e{LOG_MIN}…1e{LOG_MAX}\n", legend)
        text.append(
            f"vanishing ≤{short_number(th.vanish_rel)} x largest or <{short_number(th.vanish_abs)}"
            f" · exploding ≥{short_number(th.explode_rel)} x output"
            f" or ≥{short_number(th.explode_abs)}",
            legend,
        )
        return text
