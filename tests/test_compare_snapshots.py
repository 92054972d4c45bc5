"""SVG snapshots of two runs side by side (pytest-textual-snapshot), as in
:mod:`test_tui_snapshots`: every run is trained to a fixed step before the app mounts, so the
screen is of paused runs whose numbers depend only on the seeds.

At 80x24 each column is 40 cells wide: the gradient rows are compact (name, a 10-cell bar on the
same log scale, norm, status), each run's findings take a line or two, and the chart keeps its
rows. From 160 columns each column has the full gradient panel.
Regenerate with ``pytest tests/test_compare_snapshots.py --snapshot-update`` and look at them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from test_tui import press, wait_screen, wait_shows
from test_tui_runfiles import vanishing_trainer
from test_tui_snapshots import paused_app, settle
from textual.pilot import Pilot

from bpmon.launch import live_trainer
from bpmon.presets import load_preset
from bpmon.tui.app import BpmonApp

SnapCompare = Callable[..., bool]


def the_issues_pair() -> BpmonApp:
    """sigmoid-vanishing beside its fix, each a snapshot per step for 300 steps, so that the
    findings have held long enough to show."""
    fix = live_trainer(load_preset("digits-relu-bn").config, preset="digits-relu-bn", interval=0)
    fix.run(max_steps=300)
    return BpmonApp(vanishing_trainer(), fix)


def small_pair() -> BpmonApp:
    return BpmonApp(paused_app("xor", 300).source, paused_app("relu-bn", 200).source)


async def with_findings(pilot: Pilot[Any]) -> None:
    await wait_shows(pilot, "▲ vanishing", "q quit")
    await settle(pilot)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_the_issues_pair(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    assert snap_compare(the_issues_pair(), terminal_size=size, run_before=with_findings)


def test_tab_highlights_the_other_run(snap_compare: SnapCompare) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "B ━━ relu-bn", "? help")
        await press(pilot, "tab")
        await wait_screen(pilot, lambda s: "▶ B" in s.splitlines()[0], "B active")
        await settle(pilot)

    assert snap_compare(small_pair(), terminal_size=(80, 24), run_before=run_before)


def test_help_in_compare_mode(snap_compare: SnapCompare) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "B ━━ relu-bn", "? help")
        await press(pilot, "question_mark")
        await wait_shows(pilot, "bpmon keys", "The keys act on run A")
        await settle(pilot)

    assert snap_compare(small_pair(), terminal_size=(80, 24), run_before=run_before)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_a_diverged_run_beside_a_healthy_one(
    snap_compare: SnapCompare, size: tuple[int, int]
) -> None:
    # At 80x24 the banner gives way (the status word and the divergence finding remain) so that
    # the chart keeps its rows; at 40 rows it shows.
    app = BpmonApp(paused_app("exploding", 10).source, paused_app("relu-bn", 200).source)

    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "DIVERGED", "✖ divergence", "? help")
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)
