"""The gradient panel's bars: a row per layer (its bar, norm, status, activation, health and
update ratio), a group's row (its worst status and the range of its norms), the column header and
the legend with the thresholds; the columns planned for the panel's width."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.text import Text
from textual.reactive import reactive

from bpmon.config import Thresholds
from bpmon.runmodel import STATUSES, LayerStats
from bpmon.trainer import Snapshot

from .barcells import (
    _FULL,
    _HEALTH,
    _NORM,
    _RANGE,
    _RATIO,
    _STATUS,
    LOG_MAX,
    LOG_MIN,
    Columns,
    axis_labels,
    bar_cells,
    fans,
    format_health,
    format_norm,
    format_ratio,
    group_summary,
    pad,
    plan_columns,
    short_activation,
    short_name,
    short_number,
)
from .groups import Group, Shown
from .rowwindow import _FALLBACK_WIDTH, RowWindow

# Beside the plot (wide terminals) the panel is at least this wide, and as wide as its rows
# need up to this share of the screen.
_WIDE_MIN = 80
WIDE_SHARE = 0.6


class BarRows(RowWindow):
    """The bars of :class:`~bpmon.tui.gradients.GradientPanel`."""

    detail: reactive[bool] = reactive(False, repaint=False)
    """Also show the bars of step 1 (wide terminals have the rows to spare)."""

    def columns(self, snapshot: Snapshot) -> Columns:
        """The columns for this panel's width, less the scrollbar's whether it shows or not:
        the rows do not change when they start to scroll."""
        inside = self.content_size.width - self.styles.scrollbar_size_vertical
        width = inside if inside > 0 else _FALLBACK_WIDTH
        shown = (*snapshot.layers, *(snapshot.initial_layers if self.detail else ()))
        labels = [self._label(snapshot.layers, line) or "" for line in self.shown]
        labels += [x.name for x in shown[len(snapshot.layers) :]]
        return plan_columns(width, shown, labels)

    def _widen(self, snapshot: Snapshot) -> None:
        """Beside the plot (wide terminals), take the columns long names need, up to
        :data:`WIDE_SHARE` of the screen, rather than the half the stylesheet gives."""
        labels = [self._label(snapshot.layers, line) for line in self.shown]
        wanted = plan_columns(10**4, snapshot.layers, labels).width
        gutter = self.styles.gutter.width + self.styles.scrollbar_size_vertical
        width = max(_WIDE_MIN, min(wanted + gutter, int(self.app.size.width * WIDE_SHARE)))
        if self.styles.min_width is None or self.styles.min_width.value != width:
            self._widened = True
            self.styles.min_width = width

    def _row_lines(
        self, layers: Sequence[LayerStats], c: Columns, cursor: bool = True
    ) -> list[Text]:
        lines = []
        for i, line in enumerate(self.shown):
            if isinstance(line.node, Group):
                text = self._group_row(layers, line, c)
            else:
                text = self._row(layers[line.node], c, self._label(layers, line))
            if cursor and i == self.row_cursor:
                text.stylize(self._style("cursor"))
            lines.append(text)
        return lines

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
        """Every line of the bars (no window), as text."""
        if not self.shown or self._names != tuple(x.name for x in snapshot.layers):
            self.shown = self._lines(snapshot)
        c = columns or self.columns(snapshot)
        text = Text()
        for i, line in enumerate(self._row_lines(snapshot.layers, c)):
            if i:
                text.append("\n")
            text.append_text(line)
        return text

    def _row(self, layer: LayerStats, c: Columns, label: str | None = None) -> Text:
        status = self._style(layer.status)
        filled, track = bar_cells(layer.grad_norm)
        text = Text(pad(short_name(label or layer.name, c.name), c.name))
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

    def _group_row(self, layers: Sequence[LayerStats], line: Shown, c: Columns) -> Text:
        """A group's line: its worst status, and a bar solid up to its smallest norm and shaded
        on to its largest, which the range column gives in figures."""
        assert isinstance(line.node, Group)
        rows = [layers[i] for i in line.node.rows]
        low, high, worst = group_summary(rows)
        status = self._style(worst)
        text = Text(pad(short_name(self._label(layers, line), c.name), c.name))
        if c.fans:
            text.append(f" {f'{len(rows)} rows':>{c.fans}}")
        text.append(" ")
        solid = bar_cells(low)[0].count(_FULL)
        top, track = bar_cells(high)
        text.append(_FULL * min(solid, len(top)), status)
        text.append(_RANGE * max(0, len(top) - solid), status)
        text.append(track, self._style("track"))
        text.append(f" {format_norm(high):>{_NORM}} ")
        text.append(f"{worst:<{_STATUS}}", status)
        if c.activation:
            text.append(f" {'':<{c.activation}}")
        span = f"↕ {short_number(low)}…{short_number(high)}" if math.isfinite(low) else "—"
        text.append(f" {span:<{_HEALTH + 1 + _RATIO}}", self._style("range"))
        return text

    def _legend(self, th: Thresholds, total: int) -> Text:
        legend = self._style("legend")
        keys = Text()
        for i, status in enumerate(STATUSES):
            if i:
                keys.append(" ")
            keys.append("■", self._style(status))
            keys.append(f" {status}", legend)
        scale = Text(f" │ log scale 1e{LOG_MIN}…1e{LOG_MAX}", legend)
        thresholds = Text(
            f"vanishing ≤{short_number(th.vanish_rel)} x largest or <{short_number(th.vanish_abs)}"
            f" · exploding ≥{short_number(th.explode_rel)} x output"
            f" or ≥{short_number(th.explode_abs)}",
            legend,
        )
        return self._legend_lines(keys, scale, thresholds, total)
