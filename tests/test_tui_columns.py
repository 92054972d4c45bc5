"""Run columns: one app for one run or two side by side, the keys acting on the active column.

Two recorded runs side by side (``bpmon replay A.jsonl --compare B.jsonl``): the cursor keys
move the active run's cursor only, tab moves them to the other; the dimmed curve of a run from
before its restart shows under both current curves; a pause asked of a live run during a long
step says PAUSING in that run's column. Pictures at 80x24 and 120x40 (regenerate with
``pytest tests/test_tui_columns.py --snapshot-update`` and look at them).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from test_cli import bpmon, one_line_error
from test_tui import (
    drive,
    frames,
    press,
    screen_text,
    wait_latest,
    wait_screen,
    wait_shows,
)
from test_tui_runfiles import RUN_V1
from test_tui_snapshots import SIZES, SnapCompare, settle
from textual.pilot import Pilot

from bpmon.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from bpmon.launch import live_trainer
from bpmon.presets import load_preset
from bpmon.runfile import Recorder, RunWriter
from bpmon.sources import RunFileSource
from bpmon.trainer import Command
from bpmon.tui.app import BpmonApp
from bpmon.tui.compare import RunStatus


def restarted_run(path: Path) -> Path:
    """A run file of sigmoid-vanishing: 150 steps, then ``a`` (the next activation, a
    restart), then 180 steps of the new run; a snapshot each 30 steps."""
    preset = load_preset("sigmoid-vanishing")
    with path.open("w", encoding="utf-8") as out:
        recorder = Recorder(RunWriter(out, str(path)))
        trainer = live_trainer(preset.config, preset.name, on_snapshot=recorder, interval=1e9)
        for step in range(30, 151, 30):
            trainer.run(max_steps=step)
        trainer.send(Command("activation", 1))
        for step in range(30, 181, 30):
            trainer.run(max_steps=step)
        recorder.close()
    return path


def replay_pair(path: Path) -> BpmonApp:
    sources = [RunFileSource(str(p), "replay") for p in (RUN_V1, path)]
    for source in sources:
        source.open_now()
    return BpmonApp(*sources)


def title_line(screen: str) -> str:
    return screen.splitlines()[0]


@pytest.fixture(scope="module")
def restarted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return restarted_run(tmp_path_factory.mktemp("runs") / "sigmoid.jsonl")


@SIZES
def test_two_recorded_runs_side_by_side(
    snap_compare: SnapCompare, size: tuple[int, int], restarted: Path
) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "snapshot 11/11", "snapshot 14/14", "dim: before a restart")
        await settle(pilot)

    assert snap_compare(replay_pair(restarted), terminal_size=size, run_before=run_before)


def test_the_cursor_keys_move_the_active_run_only_and_tab_moves_them(restarted: Path) -> None:
    app = replay_pair(restarted)

    async def body(pilot: Pilot[Any]) -> None:
        screen = await wait_shows(pilot, "snapshot 11/11", "snapshot 14/14")
        assert "▶ A" in title_line(screen)
        await press(pilot, "home")
        screen = await wait_shows(pilot, "snapshot 1/11")
        assert "snapshot 14/14" in screen, "B's cursor moved with A's key"
        await press(pilot, "tab")
        await wait_screen(pilot, lambda s: "▶ B" in title_line(s), "B active")
        await press(pilot, "left", "left")
        screen = await wait_shows(pilot, "snapshot 12/14")
        assert "snapshot 1/11" in screen, "A's cursor moved with B's key"
        # Back over B's restart: the cursor moved, no key changed the run, nothing to announce.
        await press(pilot, "home")
        await wait_shows(pilot, "snapshot 1/14")
        await frames(pilot)
        assert "restarted" not in screen_text(app)
        # The help lists the replay's keys and tab, for run B; a live run's keys say, once,
        # that they do not apply to a recording.
        await press(pilot, "question_mark")
        await wait_shows(pilot, "The keys act on run B", "One snapshot back", "A → B")
        await press(pilot, "question_mark")
        await wait_screen(pilot, lambda s: "One snapshot back" not in s, "help closed")
        await press(pilot, "a")
        await wait_shows(pilot, "This is a recorded run")
        await press(pilot, "v")
        await wait_shows(pilot, "for one run at a time")
        # A live run's key that does not train says its own notice.
        await press(pilot, "s")
        await wait_shows(pilot, "s saves a live run")

    drive(app, body)


def test_a_big_model_beside_another_is_folded_by_block_and_enter_opens_one(
    tmp_path: Path,
) -> None:
    """Two 12-block GPT replays at 80x24: each column folds its blocks as the single view does
    (it listed all 51 rows flat before), and ↓ ↓ ↓ enter opens the stack of the active run
    only."""
    from bigmodels import write_gpt_run

    sources = [
        RunFileSource(str(write_gpt_run(tmp_path / f"{name}.jsonl", name)), "replay")
        for name in ("healthy", "vanishing")
    ]
    for source in sources:
        source.open_now()
    app = BpmonApp(*sources)

    async def body(pilot: Pilot[Any]) -> None:
        screen = await wait_shows(pilot, "snapshot 120/120")
        # The stack's line in each column: its mark kept, its name cut from the left.
        assert screen.count("▸ …sformer.h") == 2, screen
        assert "▸ 0" not in screen
        await press(pilot, "down", "down", "down", "enter")
        screen = await wait_shows(pilot, "▾ …sformer.h", "▸ 0")
        assert screen.count("▸ …sformer.h") == 1, "the other run's stack opened too"

    drive(app, body)


def test_a_pause_during_a_long_step_shows_in_that_run_s_column() -> None:
    # Half a second a step or so: the key lands while a step is in flight.
    slow = RunConfig(
        data=DataConfig(name="digits", standardize=True),
        model=ModelConfig(
            hidden=(1024,) * 2, activation="relu", output="softmax", loss="cross_entropy"
        ),
        train=TrainConfig(lr=0.01),
    )
    quick = load_preset("xor")
    a = live_trainer(quick.config, quick.name, start_paused=True)
    b = live_trainer(slow, "digits")
    app = BpmonApp(a, b)

    async def body(pilot: Pilot[Any]) -> None:
        await wait_latest(pilot, b, lambda s: s.step >= 1, "B's first step")
        await press(pilot, "tab")
        await wait_screen(pilot, lambda s: "▶ B" in title_line(s), "B active")
        await press(pilot, "space")
        # Before the trainer gets to the key, B's status line says that it was taken.
        assert "PAUSING…" in app.query_one("#status-b", RunStatus).plain
        assert "PAUSING" not in app.query_one("#status-a", RunStatus).plain
        await wait_latest(pilot, b, lambda s: s.state == "paused", "B paused")

    drive(app, body)


# Each of the three replays at its last snapshot, in words a column of 26 cells keeps whole.
AT_THE_ENDS = ("epoch 400/400", "epoch 7/1000 step 180", "step 1200 loss")


def replay_three(restarted: Path, folder: Path) -> BpmonApp:
    """The pair above and a 12-block GPT's run: three columns."""
    from bigmodels import write_gpt_run

    paths = (RUN_V1, restarted, write_gpt_run(folder / "gpt.jsonl", "vanishing"))
    sources = [RunFileSource(str(p), "replay") for p in paths]
    for source in sources:
        source.open_now()
    return BpmonApp(*sources)


@SIZES
def test_three_recorded_runs_side_by_side(
    snap_compare: SnapCompare, size: tuple[int, int], restarted: Path, tmp_path: Path
) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        # The GPT's findings come from a pass over its file that may end after its last line
        # shows: the picture waits for them.
        await wait_shows(pilot, *AT_THE_ENDS, "▲ vanishing: transformer")
        await settle(pilot)

    app = replay_three(restarted, tmp_path)
    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_three_runs_at_80x24_each_row_whole_and_tab_goes_round(
    restarted: Path, tmp_path: Path
) -> None:
    """Three columns of 26 cells: every gradient row keeps its norm and its status (the first
    letter, where the word does not fit), the loss legend names the three runs, and tab moves
    the keys A → B → C → A."""
    app = replay_three(restarted, tmp_path)

    async def body(pilot: Pilot[Any]) -> None:
        screen = await wait_shows(pilot, *AT_THE_ENDS)
        lines = screen.splitlines()
        assert "▶ A" in lines[0] and " B " in lines[0] and " C " in lines[0], lines[0]
        for letter in "ABC":
            assert f"━━ {letter} " in screen, letter
        top = next(i for i, line in enumerate(lines) if line.count("╭") == 3)
        row = re.compile(r"\d\.\de[+-]\d\d [vhen]")
        # The first row under each column's header: a norm and a status letter in all three.
        assert len(row.findall(lines[top + 2])) == 3, lines[top : top + 3]
        for letter in "BCA":
            await press(pilot, "tab")
            mark = f"▶ {letter}"
            await wait_screen(pilot, lambda s, mark=mark: mark in title_line(s), mark)

    drive(app, body)


def test_replay_compare_opens_both_files_first(tmp_path: Path) -> None:
    """A second run file that is missing or not a run is one line and exit 2, before any
    monitor; two good ones get as far as asking for a terminal."""
    (tmp_path / "notes.txt").write_text("hello\n")
    for other in ("missing.jsonl", "notes.txt"):
        proc = bpmon("replay", str(RUN_V1), "--compare", other, cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        line = one_line_error(proc.stderr)
        assert other in line, line
    proc = bpmon("replay", str(RUN_V1), "--compare", str(RUN_V1), cwd=tmp_path)
    assert proc.returncode == 2 and "needs a terminal" in proc.stderr, proc.stderr
    # Four runs beside the first: one more than there are letters for.
    proc = bpmon("replay", str(RUN_V1), *("--compare", str(RUN_V1)) * 4, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert one_line_error(proc.stderr).endswith("at most 3 runs beside the first (A to D)")
