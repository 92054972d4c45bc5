"""SVG snapshots of the monitor (pytest-textual-snapshot).

Every app here shows a run that ``trainer.run(max_steps=N)`` trained to a fixed step in the test
thread before the app mounted, so the screen is a paused run: the numbers depend only on the
seed, and nothing time-dependent (steps/s, elapsed time) is rendered in that state.
Regenerate with ``pytest tests/test_tui_snapshots.py --snapshot-update`` and look at the result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from textual.pilot import Pilot

from bpmon.config import RunConfig
from bpmon.presets import load_preset
from bpmon.trainer import Trainer
from bpmon.tui.app import BpmonApp

SnapCompare = Callable[..., bool]


def preset_config(name: str) -> RunConfig:
    return load_preset(name).config


def paused_app(name: str, steps: int, config: RunConfig | None = None) -> BpmonApp:
    trainer = Trainer(config or preset_config(name), preset=name)
    snapshot = trainer.run(max_steps=steps)
    assert snapshot.state in ("paused", "diverged"), snapshot.state
    return BpmonApp(trainer)


async def settle(pilot: Pilot[Any]) -> None:
    # Room for the first layout and the resize that re-picks the plot's points.
    await pilot.pause(0.3)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
@pytest.mark.parametrize(("name", "steps"), [("xor", 300), ("relu-bn", 200)])
def test_preset(snap_compare: SnapCompare, name: str, steps: int, size: tuple[int, int]) -> None:
    assert snap_compare(paused_app(name, steps), terminal_size=size, run_before=settle)


def test_wide_layout_160x48(snap_compare: SnapCompare) -> None:
    app = paused_app("relu-bn", 200)
    assert snap_compare(app, terminal_size=(160, 48), run_before=settle)


def test_log_axis(snap_compare: SnapCompare) -> None:
    app = paused_app("relu-bn", 200)
    assert snap_compare(app, press=["l"], terminal_size=(80, 24), run_before=settle)


def test_diverged_banner(snap_compare: SnapCompare) -> None:
    config = preset_config("relu-bn").with_batchnorm(False).with_lr(1e6)
    app = paused_app("relu-bn", 50, config=config)
    assert snap_compare(app, terminal_size=(80, 24), run_before=settle)


def test_help_screen(snap_compare: SnapCompare) -> None:
    app = paused_app("xor", 10)
    assert snap_compare(app, press=["question_mark"], terminal_size=(80, 24), run_before=settle)


def test_too_small(snap_compare: SnapCompare) -> None:
    app = paused_app("xor", 10)
    assert snap_compare(app, terminal_size=(70, 20), run_before=settle)
