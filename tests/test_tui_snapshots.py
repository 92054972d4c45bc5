"""SVG snapshots of the monitor (pytest-textual-snapshot).

Every app here shows a run that ``trainer.run(max_steps=N)`` trained to a fixed step in the test
thread before the app mounted, so the screen is a paused run: the numbers depend only on the
seed, and nothing time-dependent (steps/s, elapsed time) is rendered in that state; or a run
file replayed, its cursor put on a fixed snapshot by keys before the picture is taken.
Regenerate with ``pytest tests/test_tui_snapshots.py --snapshot-update`` and look at the result.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bigmodels import write_gpt_run
from test_tui import press, wait_shows
from test_tui_runfiles import RUN_V1, run_file_app, vanishing_trainer, write_encoder_run
from textual.pilot import Pilot

from bpmon.config import RunConfig
from bpmon.data import Dataset
from bpmon.launch import live_trainer
from bpmon.presets import load_preset
from bpmon.sources import TAIL_BYTES
from bpmon.tui.app import BpmonApp

SnapCompare = Callable[..., bool]


def preset_config(name: str) -> RunConfig:
    return load_preset(name).config


def paused_app(name: str, steps: int, config: RunConfig | None = None) -> BpmonApp:
    trainer = live_trainer(config or preset_config(name), preset=name)
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
    config = preset_config("relu-bn").with_batchnorm(False).with_lr(100.0)
    app = paused_app("relu-bn", 50, config=config)
    assert snap_compare(app, terminal_size=(80, 24), run_before=settle)


def test_deep_wide_network_at_80x24(snap_compare: SnapCompare) -> None:
    # Twelve hidden layers of the same width: the status line says 2-64x12-1 and keeps to its
    # two lines; the bars scroll.
    app = paused_app("xor", 20, config=preset_config("xor").with_depth(12).with_width(64))
    assert snap_compare(app, terminal_size=(80, 24), run_before=settle)


def test_log_axis_of_a_run_that_is_nan_at_step_1(snap_compare: SnapCompare) -> None:
    X = np.full((4, 2), np.nan)
    y = np.array([[0.0], [1.0], [1.0], [0.0]])
    for array in (X, y):
        array.flags.writeable = False
    data = Dataset("nan", X, y, None, None, "binary", ("0", "1"), ("x1", "x2"))
    trainer = live_trainer(preset_config("xor"), preset="nan", data=data)
    assert trainer.run(max_steps=10).state == "diverged"
    app = BpmonApp(trainer)
    assert snap_compare(app, press=["l"], terminal_size=(80, 24), run_before=settle)


def test_help_screen(snap_compare: SnapCompare) -> None:
    app = paused_app("xor", 10)
    assert snap_compare(app, press=["question_mark"], terminal_size=(80, 24), run_before=settle)


def test_too_small(snap_compare: SnapCompare) -> None:
    app = paused_app("xor", 10)
    assert snap_compare(app, terminal_size=(70, 20), run_before=settle)


SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])


def shows(*texts: str) -> Callable[[Pilot[Any]], Any]:
    """A ``run_before`` that waits for ``texts`` on the screen, then settles."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, *texts)
        await settle(pilot)

    return run_before


@SIZES
def test_replay_of_the_committed_run(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    # The cursor on the third of eleven snapshots: the status line says so, the plot marks it.
    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "snapshot 11/11")
        await press(pilot, "home", "right", "right")
        await wait_shows(pilot, "snapshot 3/11", "◆ step 80")
        await settle(pilot)

    app = run_file_app(RUN_V1)
    assert snap_compare(app, terminal_size=size, run_before=run_before)


@SIZES
def test_45_layers_with_long_names(
    snap_compare: SnapCompare, size: tuple[int, int], tmp_path: Path
) -> None:
    app = run_file_app(write_encoder_run(tmp_path / "encoder.jsonl"))
    ready = shows("snapshot 3/3", "encoder-45", "q quit")
    assert snap_compare(app, terminal_size=size, run_before=ready)


@SIZES
def test_sigmoid_vanishing_with_its_finding(
    snap_compare: SnapCompare, size: tuple[int, int]
) -> None:
    app = BpmonApp(vanishing_trainer())
    assert snap_compare(app, terminal_size=size, run_before=shows("▲ vanishing", "q quit"))


def test_findings_modal(snap_compare: SnapCompare) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "▲ vanishing", "q quit")
        await press(pilot, "enter")
        await wait_shows(pilot, "bpmon findings", "press a")
        await settle(pilot)

    app = BpmonApp(vanishing_trainer())
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


async def _boundary_shown(pilot: Pilot[Any]) -> None:
    await wait_shows(pilot, "PAUSED", "q quit")
    await press(pilot, "v")
    await wait_shows(pilot, "decision boundary", "train (240)")
    await settle(pilot)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_decision_boundary(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    # The spiral's three arms after 3,000 steps, with v: the panel in the table's place.
    app = paused_app("spiral", 3000)
    assert snap_compare(app, terminal_size=size, run_before=_boundary_shown)


def test_decision_boundary_without_colour(
    snap_compare: SnapCompare, monkeypatch: pytest.MonkeyPatch
) -> None:
    # NO_COLOR: Textual removes every colour, so the classes are characters instead.
    monkeypatch.setenv("NO_COLOR", "1")
    app = paused_app("spiral", 3000)
    assert snap_compare(app, terminal_size=(80, 24), run_before=_boundary_shown)


# -- big models -------------------------------------------------------------------------------

# Few enough for the reader's first read of the file's tail to hold them all: the picture never
# catches the reader's scan of the rest halfway (16 did once; the rows grew past the tail).
GPT_SNAPSHOTS = 12


def gpt_run(tmp_path: Path, pattern: str) -> BpmonApp:
    path = write_gpt_run(tmp_path / "gpt.jsonl", pattern, GPT_SNAPSHOTS)
    assert path.stat().st_size <= TAIL_BYTES, "the picture would depend on the reader's timing"
    return run_file_app(path)


@SIZES
def test_a_12_block_gpt(snap_compare: SnapCompare, size: tuple[int, int], tmp_path: Path) -> None:
    # Grouped: at 80x24 the stack closed (four lines), at 120x40 its twelve blocks; in the
    # prediction table's place, what a PyTorch run file has.
    app = gpt_run(tmp_path, "spike")
    ready = shows(f"snapshot {GPT_SNAPSHOTS}/{GPT_SNAPSHOTS}", "lm_head", "q quit")
    assert snap_compare(app, terminal_size=size, run_before=ready)


def flow_shown(pilot_keys: tuple[str, ...] = ()) -> Callable[[Pilot[Any]], Any]:
    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, f"snapshot {GPT_SNAPSHOTS}/", "lm_head", "q quit")
        await press(pilot, *pilot_keys, "h")
        await wait_shows(pilot, "gradient flow over time")
        await settle(pilot)

    return run_before


@SIZES
def test_gradient_flow_of_a_spike(
    snap_compare: SnapCompare, size: tuple[int, int], tmp_path: Path
) -> None:
    app = gpt_run(tmp_path, "spike")
    assert snap_compare(app, terminal_size=size, run_before=flow_shown())


def test_gradient_flow_without_colour(
    snap_compare: SnapCompare, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = gpt_run(tmp_path, "explosion")
    run_before = flow_shown(("down", "down", "down", "enter"))
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
