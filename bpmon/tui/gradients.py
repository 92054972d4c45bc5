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

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.reactive import reactive
from textual.widget import Widget

from bpmon.config import Thresholds
from bpmon.runmodel import STATUSES, LayerStats, Status
from bpmon.trainer import Snapshot

from . import heatmap
from .flow import SEVERITY, Column, FlowHistory, thin
from .groups import Group, Node, Shown, default_open, group_rows, is_number, visible
from .view import SnapshotView, TextLine

LOG_MIN = -8
LOG_MAX = 2
# Two cells per decade, and the whole row stays inside 76 columns (80 minus border and padding).
BAR_WIDTH = 20
_EIGHTHS = " ▏▎▍▌▋▊▉"
_FULL = "█"
# A group's bar between its smallest and its largest norm.
_RANGE = "░"
_TITLE = "gradients ‖dL/dW‖ · input layer first"
_FLOW_TITLE = "gradient flow over time · log10 ‖dL/dW‖ · h: bars"
_TRACK = "·"
_NONFINITE = "▒"
_HEALTH_WORDS = {"saturated": "sat", "dead": "dead"}

# The columns every row has: bar, norm, status, health and update ratio, and the four spaces
# between them.
_NORM, _STATUS, _HEALTH, _RATIO = 7, 9, 9, 7
_FIXED = BAR_WIDTH + _NORM + _STATUS + _HEALTH + _RATIO + 4
# The name column: at least this wide (bpmon's "layer0" and the header), at most this wide.
NAME_MIN = 7
NAME_MAX = 64
# A long name keeps at least this many cells before the in→out column is given room: at 80
# columns a PyTorch name reads "…layers.17.mlp.fc1" rather than "…mlp.fc1" plus its fans.
NAME_KEEP = 18
# The in→out column: at least this wide ("in→out" and a space, as it always was).
FANS_MIN = 7
# The activation column (only where the width allows), at most this wide.
ACT_MAX = 10
# Beside the plot (wide terminals) the panel is at least this wide, and as wide as its rows
# need up to this share of the screen.
_WIDE_MIN = 80
WIDE_SHARE = 0.6
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


def plan_columns(
    width: int, layers: Sequence[LayerStats], labels: Sequence[str] | None = None
) -> Columns:
    """The columns that fit ``width`` cells, in this order of need: the name up to
    :data:`NAME_KEEP` cells (or all of it), in→out, the rest of the name, the activation.

    When the hidden layers have different activations (a preset's per-layer list), the
    activation comes before in→out: the status line can name one activation for the whole
    network but not one per layer, and the widths are in its architecture string anyway.

    ``labels`` are what the name column shows when that is not the layers' names (grouped
    rows, indented)."""
    names = labels if labels is not None else [x.name for x in layers]
    want_name = min(NAME_MAX, max([NAME_MIN, *(cell_len(x) for x in names)]))
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

    detail: reactive[bool] = reactive(False, repaint=False)
    """Also show the bars of step 1 (wide terminals have the rows to spare)."""
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

    # -- rows, groups and the window --------------------------------------------------------------

    def room(self) -> int:
        """How many lines the rows may take: the panel's largest height less its border, the
        column header and one line of legend (a second where the rows leave room); 0 while
        that is not known (or the panel scrolls instead, ``WINDOWED`` False)."""
        parent = self.parent
        limit = self.styles.max_height
        if not self.WINDOWED or limit is None or not isinstance(parent, Widget):
            return 0
        if parent.size.height <= 0:
            return 0
        most = int(limit.resolve(parent.size, self.app.size))
        return max(1, most - self.styles.gutter.height - 2)

    def _lines(self, snapshot: Snapshot) -> list[Shown]:
        names = tuple(layer.name for layer in snapshot.layers)
        if names != self._names:
            self._names = names
            self._tree = group_rows(names)
            self.chosen = {}
            self.row_cursor = None
            self.top = 0
        room = self.room()
        opened = default_open(self._tree, room if room else len(names), self.chosen)
        return visible(self._tree, opened)

    def move(self, delta: int) -> None:
        """Move the cursor ``delta`` lines (it appears on the first line shown, the first time),
        the window following it."""
        if not self.shown:
            return
        if self.row_cursor is None:
            # The first ↑ or ↓ shows the cursor where the eye is; a page key also moves it.
            self.row_cursor = self.top if delta >= 0 else self.top + self._window() - 1
            if abs(delta) > 1:
                self.row_cursor += delta
        else:
            self.row_cursor += delta
        self.row_cursor = max(0, min(len(self.shown) - 1, self.row_cursor))
        window = self._window()
        if self.row_cursor < self.top:
            self.top = self.row_cursor
        elif self.row_cursor >= self.top + window:
            self.top = self.row_cursor - window + 1
        self.redraw()

    def page(self) -> int:
        return max(1, self._window() - 1)

    def _window(self) -> int:
        room = self.room()
        return room if room else max(1, len(self.shown))

    def toggle(self) -> bool:
        """Open or close the group under the cursor; False when the cursor is not on one."""
        if self.row_cursor is None or not 0 <= self.row_cursor < len(self.shown):
            return False
        line = self.shown[self.row_cursor]
        if not isinstance(line.node, Group):
            return False
        self.chosen[line.node.path] = not line.open
        if not line.open:
            # Opened: scroll on so that its rows show, as many as fit under its own line.
            window = self._window()
            below = len(line.node.children)
            self.top = max(self.top, min(self.row_cursor, self.row_cursor + below - window + 1))
        self.redraw()
        return True

    def on_cursor_group(self) -> bool:
        return (
            self.row_cursor is not None
            and 0 <= self.row_cursor < len(self.shown)
            and isinstance(self.shown[self.row_cursor].node, Group)
        )

    def on_mouse_scroll_down(self) -> None:
        if self.WINDOWED:
            self.top = max(0, min(self.top + 1, len(self.shown) - self._window()))
            self.redraw()

    def on_mouse_scroll_up(self) -> None:
        if self.WINDOWED:
            self.top = max(0, self.top - 1)
            self.redraw()

    # -- drawing ------------------------------------------------------------------------------

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

    def _grouped(self) -> bool:
        return any(isinstance(node, Group) for node in self._tree)

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

    def _show(self, lines: list[Text], extra: list[Text], snapshot: Snapshot) -> None:
        every = lines + extra
        window = self.room() or len(every)
        self.top = max(0, min(self.top, len(every) - window))
        body = Text()
        if not snapshot.layers:
            body.append("\nno gradients yet: waiting for the first step\n", self._style("legend"))
        for i, line in enumerate(every[self.top : self.top + window]):
            if i:
                body.append("\n")
            body.append_text(line)
        self.body.text = body

    def more_below(self, total: int) -> int:
        window = self.room() or total
        return max(0, total - self.top - window)

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

    def _label(self, layers: Sequence[LayerStats], line: Shown) -> str:
        """A line's name: where the rows group, indented under its group with the group's
        path left off, and marked ▸/▾ when a group; a numbered row with its kind (``164
        (Linear)``)."""
        node = line.node
        if isinstance(node, Group):
            name = node.path
            mark = "▾ " if line.open else "▸ "
        else:
            name = layers[node].name
            mark = "  " if self._grouped() else ""
            kind = layers[node].kind
            if kind and is_number(name.rsplit(".", 1)[-1]):
                name = f"{name} ({kind})"
        if line.depth:
            parent = self._parent_path(line)
            if parent and name.startswith(parent + "."):
                name = name[len(parent) + 1 :]
        return "  " * line.depth + mark + name

    def _parent_path(self, line: Shown) -> str:
        index = self.shown.index(line)
        for earlier in reversed(self.shown[:index]):
            if earlier.depth < line.depth and isinstance(earlier.node, Group):
                return earlier.node.path
        return ""

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

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"gradients--{name}", partial=True)

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

    def _legend_lines(self, keys: Text, scale: Text, second: Text, total: int) -> Text:
        """The legend under the rows: two lines where the rows leave room for them, else
        one; where the rows are cut, that line starts with how many are out of sight, and
        the border says which keys move through them."""
        room = self.room()
        cut = bool(room) and total > room
        hint = ""
        if cut or self._grouped():
            hint = "↑ ↓ pgup pgdn" + (" · enter: open/close" if self._grouped() else "")
        if hint != (self.border_subtitle or ""):
            self.border_subtitle = hint
        text = Text()
        if cut:
            where = []
            if self.more_below(total):
                where.append(f"{self.more_below(total)} more ↓")
            if self.top:
                where.append(f"{self.top} above ↑")
            text.append(" · ".join(where) + " │ ", self._style("header"))
            text.append_text(keys)
            return text
        text.append_text(keys)
        text.append_text(scale)
        if not room or total < room:
            text.append("\n")
            text.append_text(second)
        return text

    # -- gradient flow over time ----------------------------------------------------------------

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


def group_summary(rows: Sequence[LayerStats]) -> tuple[float, float, Status]:
    """A group's smallest and largest finite norm (NaN when none is finite) and its worst
    status."""
    finite = [x.grad_norm for x in rows if math.isfinite(x.grad_norm)]
    worst: Status = max(
        (x.status for x in rows), key=lambda s: SEVERITY.get(s, 0), default="healthy"
    )
    if not finite:
        return math.nan, math.nan, worst
    return min(finite), max(finite), worst
