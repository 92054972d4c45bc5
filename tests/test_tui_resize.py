"""Resizes that reach a busy screen late: the monitor ends laid out at the terminal's size.

When the terminal is dragged while a screen is busy, the screen holds several resizes at once,
with other messages (a frame timer's tick, a callback) between them. Before bpmon.tui.screens, a
stale size could be answered last, leaving "Terminal too small: 80x24, need 80x24" at 80x24 (the
generated test fails so), or the sizes' echoes re-posted each other for ever and the monitor
froze (a modal test then times out waiting for the screen to finish; the fuzzed-key test hung CI
so). Each test posts the screens what a busy screen holds after a drag, the terminal's present
size last, as the terminal sends it, and then reads the screen and presses a key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_tui import drive, make_app, press, screen_text, wait_screen, wait_shows
from textual import events
from textual.geometry import Size
from textual.pilot import Pilot

from bpmon.tui.toosmall import too_small

SIZES = [(80, 24), (79, 24), (80, 23), (60, 20), (100, 30), (120, 40), (160, 48)]


def post_drag(pilot: Pilot[Any], stale: list[tuple[int, int]]) -> None:
    """What every screen on the stack holds after a drag through ``stale`` to the terminal's
    present size, with a callback queued between each two resizes."""
    final = pilot.app.size
    for screen in pilot.app.screen_stack:
        for width, height in [*stale, tuple(final)]:
            size = Size(width, height)
            screen.post_message(events.Resize(size, size))
            screen.call_later(lambda: None)


async def settled(pilot: Pilot[Any]) -> None:
    """Until the screen has answered what was posted to it, then the echoes of those answers
    (a frozen screen never gets there: Textual's wait for it gives up after 30 s)."""
    await pilot.pause()
    await pilot.pause()


def laid_out_for(size: Size) -> Callable[[str], bool]:
    """Whether a screen shows what the monitor shows at ``size`` (the panels, or the size)."""
    width, height = size

    def ok(screen: str) -> bool:
        lines = screen.splitlines()
        if too_small(width, height):
            return f"Terminal too small: {width}x{height}, need 80x24" in screen
        return "too small" not in screen and "gradients" in screen and len(lines) == height

    return ok


@pytest.mark.timeout(120)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    final=st.sampled_from(SIZES),
    stale=st.lists(st.sampled_from(SIZES), min_size=1, max_size=5),
)
def test_a_drag_that_reaches_a_busy_screen_late_ends_at_the_terminals_size(
    final: tuple[int, int], stale: list[tuple[int, int]]
) -> None:
    _trainer, app = make_app()

    async def body(pilot: Pilot[Any]) -> None:
        await pilot.resize_terminal(*final)
        await wait_screen(pilot, laid_out_for(app.size), "the first layout")
        post_drag(pilot, stale)
        await settled(pilot)
        await wait_screen(pilot, laid_out_for(app.size), f"the layout at {final}")
        # Still answering keys.
        await press(pilot, "question_mark")
        await wait_shows(pilot, "bpmon keys")

    drive(app, body)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("keys", "shows"),
    [
        (["question_mark"], "bpmon keys"),
        (["f"], "bpmon findings"),
        (["ctrl+p"], "Search for commands"),
    ],
    ids=["help", "findings", "palette"],
)
def test_a_late_drag_under_a_modal_screen_leaves_both_at_the_terminals_size(
    keys: list[str], shows: str
) -> None:
    _trainer, app = make_app()

    async def body(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "gradients")
        await press(pilot, *keys)
        await wait_shows(pilot, shows)
        post_drag(pilot, [(79, 24), (60, 20), (79, 24)])
        await settled(pilot)
        await wait_shows(pilot, shows)
        await press(pilot, "escape")
        await wait_screen(pilot, lambda s: shows not in s, "the modal closed")
        await settled(pilot)
        await wait_screen(pilot, laid_out_for(app.size), "the panels at 80x24")
        assert "too small" not in screen_text(app)

    drive(app, body)
