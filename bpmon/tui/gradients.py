"""The gradient panel: one bar per layer, its weight-gradient norm on a fixed log scale.

A fixed scale (not one fitted to the current values) is the point: a vanishing layer must look
short next to a healthy one, and a bar must keep its length when the run is restarted with
another activation, so that the two can be compared by eye.

The layers need not be bpmon's own ``layer0``...: a run file from a PyTorch model names them
``model.layers.17.mlp.fc1``, and may have dozens. Rows never wrap: the columns are planned for
the panel's width (:func:`plan_columns`), a name too long for its column loses its left end
(``…layers.17.mlp.fc1``: the end tells layers apart), and the panel scrolls.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.reactive import reactive

from bpmon.config import Thresholds
from bpmon.runmodel import STATUSES, LayerStats
from bpmon.trainer import Snapshot

from .view import SnapshotView, TextLine

LOG_MIN = -8
LOG_MAX = 2
# Two cells per decade, and the whole row stays inside 76 columns (80 minus border and padding).
BAR_WIDTH = 20
_EIGHTHS = " ▏▎▍▌▋▊▉"
_FULL = "█"
_TRACK = "·"
_NONFINITE = "▒"
_HEALTH_WORDS = {"saturated": "sat", "dead": "dead"}

# The columns every row has: bar, norm, status, health and update ratio, and the four spaces
# between them.
_NORM, _STATUS, _HEALTH, _RATIO = 7, 9, 9, 7
_FIXED = BAR_WIDTH + _NORM + _STATUS + _HEALTH + _RATIO + 4
# The name column: at least this wide (bpmon's "layer0" and the header), at most this wide.
NAME_MIN = 7
NAME_MAX = 40
# A long name keeps at least this many cells before the in→out column is given room: at 80
# columns a PyTorch name reads "…layers.17.mlp.fc1" rather than "…mlp.fc1" plus its fans.
NAME_KEEP = 18
# The in→out column: at least this wide ("in→out" and a space, as it always was).
FANS_MIN = 7
# The activation column (only where the width allows), at most this wide.
ACT_MAX = 10
# Before the first layout the panel has no width: plan for 80 columns.
_FALLBACK_WIDTH = 75


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


def fans(layer: LayerStats) -> str:
    return f"{layer.fan_in}→{layer.fan_out}"


def short_name(name: str, width: int) -> str:
    """``name`` in ``width`` cells: as it is when it fits, else its right end after an
    ellipsis (``"model.layers.17.mlp.fc1"`` -> ``"…layers.17.mlp.fc1"``)."""
    if cell_len(name) <= width:
        return name
    kept = ""
    for char in reversed(name):
        if cell_len(kept) + cell_len(char) + 1 > width:
            break
        kept = char + kept
    return "…" + kept if width >= 1 else ""


def pad(text: str, width: int) -> str:
    """``text`` left-aligned in ``width`` cells (cells, not characters)."""
    return text + " " * max(0, width - cell_len(text))


@dataclass(frozen=True)
class Columns:
    """Cells given to the columns whose width depends on the layers and the panel: the name,
    in→out (0: left out) and the activation (0: left out)."""

    name: int
    fans: int
    activation: int

    @property
    def width(self) -> int:
        optional = sum(w + 1 for w in (self.fans, self.activation) if w)
        return self.name + 1 + optional + _FIXED


def plan_columns(width: int, layers: Sequence[LayerStats]) -> Columns:
    """The columns that fit ``width`` cells, in this order of need: the name up to
    :data:`NAME_KEEP` cells (or all of it), in→out, the rest of the name, the activation.

    When the hidden layers have different activations (a preset's per-layer list), the
    activation comes before in→out: the status line can name one activation for the whole
    network but not one per layer, and the widths are in its architecture string anyway."""
    want_name = min(NAME_MAX, max([NAME_MIN, *(cell_len(x.name) for x in layers)]))
    want_fans = max([FANS_MIN, *(len(fans(x)) for x in layers)])
    activations = [cell_len(x.activation) for x in layers if x.activation]
    want_act = min(ACT_MAX, max([len("act"), *activations])) if activations else 0
    room = max(1, width - _FIXED - 1)  # for the name, and the optional columns with a space
    if len({x.activation for x in layers if x.activation}) > 1:
        name = max(1, min(want_name, room - want_act - 1))
        act = want_act if room - name >= want_act + 1 else 0
        left = room - name - (act + 1 if act else 0)
        fan_cells = want_fans if left >= want_fans + 1 else 0
        name = max(
            1, min(want_name, room - (act + 1 if act else 0) - (fan_cells + 1 if fan_cells else 0))
        )
        return Columns(name, fan_cells, act)
    fan_cells = want_fans if room - want_fans - 1 >= min(want_name, NAME_KEEP) else 0
    name = max(1, min(want_name, room - (fan_cells + 1 if fan_cells else 0)))
    left = room - name - (fan_cells + 1 if fan_cells else 0)
    act = want_act if want_act and left >= want_act + 1 else 0
    return Columns(name, fan_cells, act)


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


def short_activation(name: str | None, width: int) -> str:
    """The activation after a layer in ``width`` cells (cut at the right: ``leaky_relu`` is
    still ``leaky_rel…``); "—" where there is none (the output layer) or it is not known."""
    if not name:
        return "—"
    if cell_len(name) <= width:
        return name
    return name[: max(0, width - 1)] + "…"


def format_ratio(value: float) -> str:
    return "—" if math.isnan(value) else format_norm(value)


class GradientPanel(VerticalScroll, SnapshotView):
    """Bars of ``grad_norm`` per layer, coloured and labelled by ``status``, with the
    activation (where there is room), its health and the update ratio that explain them, and
    the thresholds as a legend. Focus it (tab) to scroll it with ↑ ↓ pgup pgdn."""

    # While a run trains the bars are redrawn four times a second: a profile change shows
    # within a second, and the bytes a slow SSH link carries stay low.
    REDRAW_INTERVAL = 0.25

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        *(f"gradients--{status}" for status in STATUSES),
        "gradients--track",
        "gradients--header",
        "gradients--legend",
        "gradients--activation",
    }

    detail: reactive[bool] = reactive(False, repaint=False)
    """Also show the bars of step 1 (wide terminals have the rows to spare)."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        # Three widgets, not one: a terminal is sent every line of a widget that changed, and
        # only the bar rows change while a run trains.
        self.header = TextLine(id="gradients-header")
        self.body = TextLine(id="gradients-body")
        self.legend = TextLine(id="gradients-legend")

    def compose(self) -> ComposeResult:
        yield self.header
        yield self.body
        yield self.legend

    def on_mount(self) -> None:
        self.border_title = "gradients ‖dL/dW‖ · input layer first"

    def context(self) -> tuple[Hashable, ...]:
        return (self.detail,)

    def watch_detail(self) -> None:
        self.redraw()

    def columns(self, snapshot: Snapshot) -> Columns:
        """The columns for this panel's width, less the scrollbar's whether it shows or not:
        the rows do not change when they start to scroll."""
        inside = self.content_size.width - self.styles.scrollbar_size_vertical
        width = inside if inside > 0 else _FALLBACK_WIDTH
        shown = (*snapshot.layers, *(snapshot.initial_layers if self.detail else ()))
        return plan_columns(width, shown)

    def draw(self, snapshot: Snapshot) -> None:
        columns = self.columns(snapshot)
        self.header.text = Text(self._header_row(columns), self._style("header"))
        self.body.text = self.render_rows(snapshot, columns)
        self.legend.text = self._legend(snapshot.thresholds)

    @staticmethod
    def _header_row(c: Columns) -> str:
        parts = [pad("layer", c.name)]
        if c.fans:
            parts.append(f"{'in→out':>{c.fans}}")
        parts += [axis_labels(), f"{'norm':>{_NORM}}", f"{'status':<{_STATUS}}"]
        if c.activation:
            parts.append(f"{'act':<{c.activation}}")
        parts += [f"{'health':<{_HEALTH}}", f"{'upd/w':>{_RATIO}}"]
        return " ".join(parts)

    def render_rows(self, snapshot: Snapshot, columns: Columns | None = None) -> Text:
        c = columns or self.columns(snapshot)
        header = self._style("header")
        text = Text()
        if not snapshot.layers:
            text.append("\nno gradients yet: waiting for the first step\n", self._style("legend"))
        for i, layer in enumerate(snapshot.layers):
            if i:
                text.append("\n")
            text.append_text(self._row(layer, c))
        if self.detail and snapshot.initial_layers:
            text.append("\n\nthe same layers at step 1, fresh from the initialiser:", header)
            for layer in snapshot.initial_layers:
                text.append("\n")
                text.append_text(self._row(layer, c))
            text.append("\n")
        return text

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"gradients--{name}", partial=True)

    def _row(self, layer: LayerStats, c: Columns) -> Text:
        status = self._style(layer.status)
        filled, track = bar_cells(layer.grad_norm)
        text = Text(pad(short_name(layer.name, c.name), c.name))
        if c.fans:
            text.append(f" {fans(layer):>{c.fans}}")
        text.append(" ")
        text.append(filled, status)
        text.append(track, self._style("track"))
        text.append(f" {format_norm(layer.grad_norm):>{_NORM}} ")
        text.append(f"{layer.status:<{_STATUS}}", status)
        if c.activation:
            act = short_activation(layer.activation, c.activation)
            text.append(f" {act:<{c.activation}}", self._style("activation"))
        text.append(
            f" {format_health(layer):<{_HEALTH}} {format_ratio(layer.update_ratio):>{_RATIO}}"
        )
        return text

    def _legend(self, th: Thresholds) -> Text:
        legend = self._style("legend")
        text = Text()
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
