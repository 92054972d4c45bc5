"""The gradient panel's rows over time (key ``h``): each row's norm at the snapshots the map's
width holds, painted by :mod:`bpmon.tui.heatmap`, under a ruler of steps."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

from bpmon.runmodel import STATUSES
from bpmon.trainer import Snapshot

from . import heatmap
from .barcells import LOG_MAX, LOG_MIN, Columns, pad, short_name
from .flow import Column, FlowHistory, thin
from .groups import Group
from .rowwindow import _FALLBACK_WIDTH, RowWindow


class FlowMapRows(RowWindow):
    """The gradient-flow map of :class:`~bpmon.tui.gradients.GradientPanel`."""

    def flow_columns(self, cells: int) -> list[Column]:
        """The history thinned to the map's width: two columns a character, one without colour."""
        wanted = cells if self.app.no_color else 2 * cells
        if self.history_of is None:
            return thin(self.history.columns, wanted)
        history = FlowHistory(wanted)
        for step, layers in self.history_of(2 * wanted):
            history.add(0, step, layers)
        return thin(history.columns, wanted)

    def _draw_flow(self, snapshot: Snapshot, c: Columns) -> None:
        inside = self.content_size.width - self.styles.scrollbar_size_vertical
        width = inside if inside > 0 else _FALLBACK_WIDTH
        cells = max(1, width - c.name - 1)
        mono = self.app.no_color
        columns = self.flow_columns(cells)
        names = tuple(x.name for x in snapshot.layers)
        if columns and len(columns[0].norms) != len(names):
            columns = []
        ruler = heatmap.axis(columns, cells, snapshot.marker_step, mono)
        self.header.text = Text(f"{pad('layer', c.name)} {ruler}", self._style("header"))
        lines = []
        style_of = self.get_component_rich_style
        for i, line in enumerate(self.shown):
            rows = line.node.rows if isinstance(line.node, Group) else (line.node,)
            label = self._label(snapshot.layers, line)
            text = Text(pad(short_name(label, c.name), c.name) + " ")
            text.append_text(heatmap.paint(columns, rows, mono, style_of))
            if i == self.row_cursor:
                text.stylize(self._style("cursor"), 0, c.name)
            lines.append(text)
        self._show(lines, [], snapshot)
        self.legend.text = self._flow_legend(columns, len(lines))

    def _flow_legend(self, columns: Sequence[Column], total: int) -> Text:
        legend = self._style("legend")
        keys = Text()
        top = heatmap.LEVELS - 1
        for i, status in enumerate(STATUSES):
            if i:
                keys.append(" ")
            key = "!" if self.app.no_color and status == "nonfinite" else "■"
            keys.append(key, self.get_component_rich_style(f"heatmap--{status}-{top}"))
            keys.append(f" {status}", legend)
        scale = Text(f" │ {heatmap.MONO} 1e{LOG_MIN}…1e{LOG_MAX}", legend)
        if columns:
            span = columns[0].last - columns[0].first + 1
            each = "one snapshot" if span <= 1 else "the worst of its snapshots"
            second = Text(f"a cell: {each} · a group: its worst row · h: the bars", legend)
        else:
            second = Text("no history yet · h: the bars", legend)
        return self._legend_lines(keys, scale, second, total)
