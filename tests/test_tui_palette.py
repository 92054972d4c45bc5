"""The command palette's keys in a terminal too small for its list (issue 15, item 10): paging
a list with no room raised ``KeyError`` in Textual's option list and ended the monitor with
status 1. (tests/test_tmux.py types, pages and escapes in the palette in a real terminal.)"""

from __future__ import annotations

from typing import Any

import pytest
from test_tui import drive, make_app, press, wait_for
from textual.command import CommandList
from textual.pilot import Pilot

from bpmon.tui.screens import Palette


@pytest.mark.parametrize("size", [(80, 4), (20, 4)])
def test_paging_a_palette_with_no_room_leaves_the_monitor_running(size: tuple[int, int]) -> None:
    _, app = make_app()

    async def body(pilot: Pilot[Any]) -> None:
        await press(pilot, "ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, Palette), "the palette")
        await press(pilot, "a")
        commands = app.screen.query_one(CommandList)
        await wait_for(pilot, lambda: commands.option_count > 0, "the entries for a")
        await press(pilot, "down", "pageup", "pagedown", "pageup", "pagedown")
        assert app.is_running and isinstance(app.screen, Palette)
        await press(pilot, "escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, Palette), "the palette closed")
        await press(pilot, "q")

    drive(app, body, size=size)
    assert app.return_code == 0
