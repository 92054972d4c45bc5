"""The help screen: every key, generated from the app's bindings so it cannot fall out of date."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from .screens import TerminalSized


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
