"""The help screen: every key that acts on the run in view, from the action table
(:data:`bpmon.actions.ACTIONS`) so it cannot fall out of date."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from .compare import run_label
from .keys import shown_rows
from .screens import TerminalSized

if TYPE_CHECKING:
    from .app import BpmonApp

_QUIT_READER = "Quit (the file is only read: its writer goes on)"
_QUIT_BOTH = "Quit (stops every training thread)"


def help_rows(app: BpmonApp) -> list[tuple[str, str]]:
    """The keys that act on ``app``'s active source, one row each, in the table's order."""
    rows = []
    several = len(app.columns) > 1
    if several:
        label = run_label(app.active, app.snapshot)
        rows.append(("", f"The keys act on {label}, the highlighted column; tab swaps."))
    trains = app.source.supports("step")
    for row in shown_rows():
        if not app.applies(row, in_help=True):
            continue
        keys = row.display or app.get_key_display(Binding(row.keys[0], ""))
        text = row.help
        if row.id == "quit":
            text = _QUIT_READER if not trains else _QUIT_BOTH if several else text
        rows.append((keys, text))
    return rows


class HelpScreen(TerminalSized, ModalScreen[None]):
    """A modal listing ``(keys, what they do)``; escape, ? or enter closes it. The list scrolls
    (arrows, page keys, the wheel) where the terminal is shorter than it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,enter", "close", "Close", show=False),
    ]

    def __init__(self, rows: list[tuple[str, str]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        # A grid, so that a line too long for the terminal wraps under its own column (at 80
        # columns some do) instead of being cut at the box's edge.
        text = Table.grid(padding=(0, 2))
        text.add_column(justify="right", style="bold", no_wrap=True)
        text.add_column()
        for keys, what in self.rows:
            text.add_row(keys, what)
        with VerticalScroll(id="help-box") as box:
            box.border_title = "bpmon keys"
            box.border_subtitle = "↑↓ scroll · escape or ? closes"
            yield Static(text, id="help-keys")

    def on_mount(self) -> None:
        self.query_one("#help-box").focus()

    def action_close(self) -> None:
        self.dismiss()
