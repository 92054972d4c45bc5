"""The gradient panel's rows as lines in a window: grouped by module path
(:mod:`bpmon.tui.groups`), a group opened or closed with enter, the lines that fit under the
column header drawn from ``top``, a cursor that ↑ ↓ pgup pgdn move and the window follows, and
the legend's line that says how many lines are out of sight."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widget import Widget

from bpmon.runmodel import LayerStats
from bpmon.trainer import Snapshot

from .flow import FlowHistory
from .groups import Group, Node, Shown, default_open, group_rows, is_number, visible
from .view import SnapshotView, TextLine

# Before the first layout the panel has no width: plan for 80 columns.
_FALLBACK_WIDTH = 75


class RowWindow(VerticalScroll, SnapshotView):
    """The rows and the window of :class:`~bpmon.tui.gradients.GradientPanel`, which sets these
    fields in its ``__init__``."""

    WINDOWED: ClassVar[bool]
    header: TextLine
    body: TextLine
    legend: TextLine
    history: FlowHistory
    history_of: Callable[[int], list[tuple[int, tuple[LayerStats, ...]]]] | None
    _names: tuple[str, ...]
    _tree: tuple[Node, ...]
    chosen: dict[str, bool]
    shown: list[Shown]
    row_cursor: int | None
    _widened: bool
    top: int

    def room(self) -> int:
        """How many lines the rows may take: the panel's largest height less its border, the
        column header and one line of legend (a second where the rows leave room); 0 while
        that is not known (or the panel scrolls instead, ``WINDOWED`` False)."""
        return self.fold_room() if self.WINDOWED else 0

    def fold_room(self) -> int:
        """The lines the groups are folded to fit (:meth:`room`'s, whether the panel windows
        its rows or scrolls them); 0 while not known, every group then open."""
        parent = self.parent
        limit = self.styles.max_height
        if limit is None or not isinstance(parent, Widget):
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
        room = self.fold_room()
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

    def _grouped(self) -> bool:
        return any(isinstance(node, Group) for node in self._tree)

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

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"gradients--{name}", partial=True)

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
