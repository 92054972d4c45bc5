"""Screens that lay themselves out at the terminal's current size only.

Textual (8.2) answers a screen's ``Resize`` by laying the screen out at the event's size, and that
layout posts the screen a ``Resize`` of the size it was laid out at (its echo). A screen can hold
several resizes at once (the terminal dragged while the screen was busy). Textual merges
back-to-back ones, but with other messages between them (a frame timer's tick, a callback) each
is answered in turn, and two faults follow:

- a stale size can be answered last: the monitor stayed laid out at 79 columns in an 80-column
  terminal, saying "Terminal too small: 80x24, need 80x24";
- the echoes of two sizes can re-post each other for ever: the screen's queue never empties, and
  the event loop, which does not leave a queue that is not empty, answers no key and draws no
  frame again. The fuzzed-key test froze that way under load (caught here at 100% CPU: 79 and 80
  columns, 1,771 resizes in its first 140 s), and held CI until its 90-minute limit.

A resize whose size is no longer the terminal's is stale: a screen here ignores it, and the
newest size's own event, always queued after it, lays the screen out. That ends both faults
(tests/test_tui_resize.py shows each, and fails without this module).
"""

from __future__ import annotations

from typing import Any, Protocol

from textual import events
from textual.app import App
from textual.command import CommandList, CommandPalette
from textual.screen import Screen


class _OfAnApp(Protocol):
    @property
    def app(self) -> App[Any]: ...


class TerminalSized:
    """Makes a screen ignore resizes to any size but the terminal's. A mixin, first among the
    screen's bases: its handler then runs before Textual's, and, not being a widget class, it
    leaves the screen's CSS inheritance (which follows the first widget base) as it was."""

    def on_resize(self: _OfAnApp, event: events.Resize) -> None:
        # An inline app's screen is shorter than the terminal: its sizes are Textual's to judge.
        if not self.app.is_inline and event.size != self.app.size:
            # Stops Textual's own handler (in Screen, a base class) from laying it out.
            event.prevent_default()


class MonitorScreen(TerminalSized, Screen[None]):
    """The screen that holds the panels (the app's default screen)."""

    # Nothing has the focus at first: ↑ ↓ pgup pgdn are then the app's (the gradient rows), and
    # tab gives them to the prediction table.
    AUTO_FOCUS = None


class Palette(TerminalSized, CommandPalette):
    """Textual's command palette (ctrl+p), as a terminal-sized screen."""

    def _action_command_list(self, action: str) -> None:
        # Textual (8.2) pages by the list's line map, which it fills only once the list has
        # room on screen: pageup/pagedown with options but no room yet (a search's new options
        # not laid out, or a terminal a few lines high) raised KeyError and ended the monitor
        # with status 1. With no room there is no page to move by: the key does nothing.
        if action.startswith("page_") and not self.query_one(CommandList).scrollable_content_region:
            return
        super()._action_command_list(action)
