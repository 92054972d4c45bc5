"""The playground: the pace (< > and --speed), the keys for the story's knobs (i o d m), the
command palette (ctrl+p) and saving a run as a preset (s), all driven as a user drives them.

Like tests/test_tui.py, each test presses keys in a Textual pilot and waits (with a deadline)
for the screen or the trainer's published snapshots to show the result; nothing asserts how
long something took.
"""

from __future__ import annotations

import json
import math
import os
import queue
import time
import types
from pathlib import Path
from typing import Any

import pytest
from test_tui import (
    drive,
    frames,
    make_app,
    press,
    screen_text,
    status_lines,
    wait_for,
    wait_latest,
    wait_screen,
    wait_shows,
)
from textual.pilot import Pilot

from bpmon import cli
from bpmon.config import RunConfig
from bpmon.errors import BpmonError
from bpmon.presets import load_file, load_preset
from bpmon.trainer import Command, Snapshot, Trainer
from bpmon.trainer.commands import (
    BATCH_SIZES,
    CYCLES,
    PACES,
    PLAYGROUND_DATASETS,
    apply_intent,
    next_pace,
)
from bpmon.tui.saving import file_stem, save_preset


def run_line(app: Any) -> str:
    return status_lines(screen_text(app))[0]


# -- pace ------------------------------------------------------------------------------------------


def test_at_10_steps_a_second_every_step_is_published_in_order() -> None:
    published: list[int] = []

    def seen(snapshot: Snapshot) -> None:
        published.append(snapshot.step)

    _trainer, app = make_app("xor", steps=None, pace=10, on_snapshot=seen)

    async def body(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "pace 10/s  xor")
        await wait_for(pilot, lambda: published[-1:] >= [2], "step 2")
        first = published[-1]
        await wait_for(pilot, lambda: published[-1] >= first + 5, "5 more steps")

    drive(app, body)
    running = published[: published.index(max(published)) + 1]
    # Every step was published, in order, once (a final publish on stop may repeat the last).
    assert running == list(range(1, len(running) + 1))


class _Clock:
    """The trainer's clock, moved on only by the trainer's own waits (see _WaitingQueue)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def perf_counter(self) -> float:
        return self.now


class _WaitingQueue(queue.Queue[Command]):
    """A command queue whose timed wait with nothing queued passes the clock's time instead of
    the machine's: the trainer's schedule plays out exactly, however busy the machine is."""

    def __init__(self, clock: _Clock) -> None:
        super().__init__()
        self.clock = clock

    def get(self, block: bool = True, timeout: float | None = None) -> Command:
        if timeout is not None and self.empty():
            self.clock.now += timeout
            raise queue.Empty
        return super().get(block, timeout)


@pytest.mark.parametrize("pace", [10.0, 1000.0])
def test_a_paced_loop_trains_that_many_steps_a_second_of_its_clock(
    pace: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bpmon.trainer import loop

    clock = _Clock()
    monkeypatch.setattr(loop, "time", types.SimpleNamespace(perf_counter=clock.perf_counter))
    trained: list[tuple[float, int]] = []

    def seen(snap: Snapshot) -> None:
        trained.append((clock.now, snap.step))

    trainer = Trainer(
        load_preset("xor").config.with_epochs(10**9), "xor", pace=pace, on_snapshot=seen
    )
    trainer._commands = _WaitingQueue(clock)
    trainer.start()
    try:
        wait_for_steps = 40
        deadline = time.monotonic() + 60
        while not (trained and trained[-1][1] >= wait_for_steps):
            assert time.monotonic() < deadline, "the paced trainer did not reach 40 steps"
            time.sleep(0.01)
    finally:
        trainer.stop()
    (t0, s0), (t1, s1) = trained[0], trained[-1]
    assert (s1 - s0) / (t1 - t0) == pytest.approx(pace, rel=0.05)


def test_less_and_greater_step_the_pace_and_the_status_line_shows_it() -> None:
    trainer, app = make_app("xor", steps=None)

    async def body(pilot: Pilot[Any]) -> None:
        screen = await wait_shows(pilot, "RUNNING", "steps/s")
        assert "pace" not in status_lines(screen)[0], "full speed is not announced"
        expected = ["1000/s", "100/s", "10/s", "1/s"]
        for pace in expected:
            await press(pilot, "less_than_sign")
            await wait_shows(pilot, f"pace {pace}")
        await press(pilot, "less_than_sign")
        await wait_shows(pilot, "1 step/s is the slowest pace")
        assert trainer.pace == 1
        for pace in reversed(expected[:-1]):
            await press(pilot, "greater_than_sign")
            await wait_shows(pilot, f"pace {pace}")
        await press(pilot, "greater_than_sign")
        await wait_screen(pilot, lambda s: "pace" not in status_lines(s)[0], "full speed")
        assert trainer.pace == math.inf

    drive(app, body)


def test_a_slow_pace_still_answers_keys_at_once() -> None:
    # One step every 100 s: a loop that slept between steps would not see the pause in time.
    trainer, app = make_app("xor", steps=None, pace=0.01)

    async def body(pilot: Pilot[Any]) -> None:
        await wait_latest(pilot, trainer, lambda s: s.step == 1, "the first step")
        await press(pilot, "space")
        await wait_shows(pilot, "PAUSED", "pace 0.01/s")
        await press(pilot, "right_square_bracket")
        await wait_shows(pilot, "lr 0.1")
        assert trainer.latest().step == 1

    drive(app, body)


def test_pace_keys_on_a_replay_stay_its_playback_speed() -> None:
    from test_tui_runfiles import RUN_V1

    from bpmon.sources import RunFileSource

    source = RunFileSource(str(RUN_V1), "replay")
    source.open_now()
    from bpmon.tui.app import BpmonApp

    app = BpmonApp(source)

    async def body(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "REPLAY")
        await press(pilot, "greater_than_sign")
        await wait_shows(pilot, "at 5/s")
        assert "pace" not in run_line(app)

    drive(app, body)


@pytest.mark.parametrize(
    ("pace", "direction", "expected"),
    [
        (math.inf, -1, 1000.0),
        (1000.0, 1, math.inf),
        (5.0, 1, 10.0),
        (5.0, -1, 1.0),
        (0.5, 1, 1.0),
        (1.0, -1, 1.0),
        (math.inf, 1, math.inf),
    ],
)
def test_next_pace(pace: float, direction: int, expected: float) -> None:
    assert next_pace(pace, direction)[0] == expected
    assert bool(next_pace(pace, direction)[1]) == (expected == pace)


def test_paces_run_from_one_step_a_second_to_full_speed() -> None:
    assert (1.0, 10.0, 100.0, 1000.0, math.inf) == PACES


@pytest.mark.parametrize(
    ("speed", "message"),
    [
        ("0", "expected 'full' or a number of steps per second > 0"),
        ("-3", "expected 'full' or a number of steps per second > 0"),
        ("nan", "expected 'full' or a number of steps per second > 0"),
        ("fast", "expected 'full' or a number of steps per second > 0"),
    ],
)
def test_a_bad_speed_is_one_line_and_exit_2(
    speed: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--preset", "xor", "--speed", speed]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--speed" in err and message in err, err


def test_speed_is_for_the_monitor_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--preset", "xor", "--headless", "--speed", "10"]) == 2
    err = capsys.readouterr().err
    assert err == "bpmon: --speed: the monitor only; headless runs train at full speed\n"


# -- the knobs: i o d m ----------------------------------------------------------------------------


def test_i_cycles_the_initialisation_from_the_same_seed() -> None:
    trainer, app = make_app("xor-story", steps=1)
    first = trainer.latest().initial_layers

    async def body(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "2-4-1 sigmoid  xor randn*0.1 sgd")
        for shown in ("xavier", "he", "randn*0.1"):
            await press(pilot, "i")
            await wait_shows(pilot, f"2-4-1 sigmoid  xor {shown} sgd")
        # Three restarts later, back at the story's init: the same seed, the same network.
        again = await wait_latest(
            pilot, trainer, lambda s: s.run_id == 3 and s.step > 0, "the third restart"
        )
        assert again.config == load_preset("xor-story").config.with_epochs(10**9)
        assert again.initial_layers == first

    drive(app, body)


def test_o_cycles_the_optimiser() -> None:
    trainer, app = make_app("xor")

    async def body(pilot: Pilot[Any]) -> None:
        for shown in ("momentum", "adam", "sgd"):
            await press(pilot, "o")
            await wait_shows(pilot, f"2-4-1 sigmoid  xavier {shown}  lr 0.05")
        assert trainer.latest().run_id == 3

    drive(app, body)


def test_d_cycles_the_2d_data_sets_and_the_output_follows_the_task() -> None:
    trainer, app = make_app("dying-relu")

    async def body(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "2-16x4-1 relu  moons he sgd")
        await press(pilot, "d")
        await wait_shows(pilot, "2-16x4-3 relu  spiral he sgd")
        # Three classes: the binary sigmoid + bce became softmax + cross-entropy.
        model = trainer.latest().config.model  # type: ignore[union-attr]
        assert (model.output, model.loss) == ("softmax", "cross_entropy")
        for shown in ("blobs", "xor", "circle", "moons"):
            await press(pilot, "d")
            await wait_shows(pilot, f" {shown} he sgd")
        assert trainer.latest().config == load_preset("dying-relu").config.with_epochs(10**9)

    drive(app, body)


def test_d_on_digits_says_once_why_not() -> None:
    trainer, app = make_app("digits-relu-bn")

    async def body(pilot: Pilot[Any]) -> None:
        await press(pilot, "d", "d", "d")
        await wait_shows(pilot, "changes only among the 2-D sets")
        await frames(pilot)
        assert screen_text(app).count("changes only among the 2-D sets") == 1
        assert trainer.latest().run_id == 0

    drive(app, body, size=(120, 40))


def test_m_cycles_the_batch_size_and_skips_1_with_batchnorm() -> None:
    trainer, app = make_app("relu-bn")

    async def body(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "2-8-8-4-1 relu +bn  circle he sgd  lr")
        await press(pilot, "m")
        await wait_shows(pilot, "circle he sgd batch 64")
        await press(pilot, "m")
        await wait_shows(pilot, "circle he sgd batch 16")
        await press(pilot, "m")
        # Batch 1 is refused by the one validation; the cycle goes on to the full batch.
        await wait_shows(pilot, "circle he sgd  lr", "batch-norm")
        assert "batch-norm needs at least 2 samples" in trainer.latest().notice
        assert trainer.latest().config.train.batch_size == 0  # type: ignore[union-attr]
        await press(pilot, "b", "m", "m", "m")
        await wait_shows(pilot, "circle he sgd batch 1  lr")

    drive(app, body, size=(120, 40))


def test_every_cycle_comes_back_to_where_it_began() -> None:
    for name in ("xor", "relu-bn", "spiral", "dying-relu"):
        config = load_preset(name).config
        for key, values in CYCLES.items():
            new = config
            for _ in values:
                new = apply_intent(new, Command("cycle", 1, key=key))[0]
            if key == "train.batch_size" and config.model.batchnorm:
                continue  # one value is skipped: the cycle is one shorter
            assert new == config, (name, key)


def test_the_2d_sets_are_binary_or_multiclass_as_the_cycle_assumes() -> None:
    from bpmon.data import load_dataset
    from bpmon.trainer.commands import MULTICLASS_DATASETS

    for name in PLAYGROUND_DATASETS:
        data = load_dataset(load_preset("xor").config.data.__class__(name=name))
        assert data.n_inputs == 2
        assert (data.task == "multiclass") == (name in MULTICLASS_DATASETS), name
    assert BATCH_SIZES[0] == 0


# -- s: save the run as a preset -------------------------------------------------------------------

# Each key and what the status line then shows (on relu-bn, paused at step 3).
KEYS = {
    "a": "2-8-8-4-1 leaky_relu +bn",
    "plus": "2-8-8-4-4-1 relu +bn",
    "minus": "2-8-8-1 relu +bn",
    "b": "2-8-8-4-1 relu  circle",
    "right_square_bracket": "lr 0.02",
    "left_square_bracket": "lr 0.005",
    "i": "relu +bn  circle randn*0.1 sgd",
    "o": "circle he momentum",
    "d": "2-8-8-4-1 relu +bn  moons",
    "m": "circle he sgd batch 64",
}


@pytest.mark.parametrize("key", list(KEYS))
def test_s_saves_what_each_key_changed_and_the_file_runs_the_same(
    key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    trainer, app = make_app("relu-bn")
    live: list[RunConfig] = []

    async def body(pilot: Pilot[Any]) -> None:
        await press(pilot, key)
        await wait_shows(pilot, KEYS[key])
        await press(pilot, "s")
        await wait_shows(pilot, "Saved bpmon-relu-bn-1.toml")
        config = trainer.latest().config
        assert config is not None
        live.append(config)

    drive(app, body)
    saved = load_file(tmp_path / "bpmon-relu-bn-1.toml")
    assert saved.config == live[0]
    # The command line runs the same numbers: one epoch from the file and from the live config.
    status = cli.main(["--preset", "bpmon-relu-bn-1.toml", "--headless", "--json", "--epochs", "1"])
    assert status == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    expected = Trainer(live[0].with_epochs(1)).run()
    assert summary["final_loss"] == pytest.approx(expected.loss, rel=1e-12)
    assert summary["architecture"] == expected.architecture


def test_s_never_overwrites_and_names_the_next_free_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "bpmon-xor-1.toml"
    mine.write_text("# someone's work\n")
    _trainer, app = make_app("xor")

    async def body(pilot: Pilot[Any]) -> None:
        await press(pilot, "s")
        await wait_shows(pilot, "Saved bpmon-xor-2.toml")
        await press(pilot, "s")
        await wait_shows(pilot, "Saved bpmon-xor-3.toml")

    drive(app, body)
    assert mine.read_text() == "# someone's work\n"
    assert (
        load_file(tmp_path / "bpmon-xor-3.toml").config
        == load_file(tmp_path / "bpmon-xor-2.toml").config
    )


def test_s_in_a_directory_that_cannot_be_written_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    os.rmdir(gone)  # even root cannot create a file in a removed directory
    _trainer, app = make_app("xor")

    async def body(pilot: Pilot[Any]) -> None:
        await press(pilot, "s")
        await wait_shows(pilot, "Cannot save the run")
        assert app.is_running

    drive(app, body)


def test_saved_names() -> None:
    assert file_stem("xor") == "bpmon-xor"
    assert file_stem("bpmon-xor-3") == "bpmon-xor"
    assert file_stem("my data/../x") == "bpmon-my-data-..-x"
    assert file_stem("") == "bpmon-run"
    with pytest.raises(OSError):
        save_preset(load_preset("xor").config, "", "xor", Path("/nonexistent-bpmon-dir"))


# -- the command palette ---------------------------------------------------------------------------


async def palette(pilot: Pilot[Any], query: str) -> None:
    """Open the palette, type ``query``, wait for its first hit, choose it."""
    await press(pilot, "ctrl+p")
    await wait_shows(pilot, "Search for commands")
    await press(pilot, *[{" ": "space"}.get(c, c) for c in query])
    await wait_screen(pilot, lambda s: query.split()[-1] in s.lower(), f"hits for {query!r}")
    await pilot.pause(0.2)
    await press(pilot, "enter")
    await wait_screen(pilot, lambda s: "Search for commands" not in s, "the palette closed")


def test_the_palette_applies_a_setting_a_preset_and_an_action() -> None:
    trainer, app = make_app("relu-bn")

    async def body(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "circle he sgd")
        await palette(pilot, "initialisation xavier")
        await wait_shows(pilot, "2-8-8-4-1 relu +bn  circle xavier sgd")
        # Typing in the palette did not reach the keys (a, i, s, ...): one restart, no more.
        assert trainer.latest().run_id == 1
        await palette(pilot, "data set moons")
        await wait_shows(pilot, "2-8-8-4-1 relu +bn  moons xavier sgd")
        await press(pilot, "less_than_sign")
        await wait_shows(pilot, "pace 1000/s")
        await palette(pilot, "pace full speed")
        await wait_screen(pilot, lambda s: "pace" not in status_lines(s)[0], "full speed")
        await palette(pilot, "pause or resume")
        await wait_shows(pilot, "PAUSED")
        await palette(pilot, "preset spiral")
        await wait_shows(pilot, "spiral  2-32-32-3 tanh  xavier sgd  lr 0.3")
        assert trainer.latest().config == load_preset("spiral").config

    drive(app, body, size=(100, 30))


def test_the_palette_sets_dropout_and_weight_decay() -> None:
    trainer, app = make_app("spiral")

    async def body(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "2-32-32-3 tanh")
        await palette(pilot, "dropout 0.25")
        await wait_shows(pilot, "drop 0.25")
        await palette(pilot, "weight decay (l2) 0.001")
        await wait_shows(pilot, "drop 0.25 wd 0.001")
        config = trainer.latest().config
        assert config is not None
        assert (config.model.dropout, config.train.weight_decay) == (0.25, 0.001)

    drive(app, body, size=(120, 30))


def test_the_palette_lists_every_preset_setting_and_action() -> None:
    from bpmon.presets import available
    from bpmon.tui.palette import SETTINGS, entries

    _trainer, app = make_app("xor")

    async def body(pilot: Pilot[Any]) -> None:
        texts = [entry.text for entry in entries(app)]
        for name in available():
            assert f"Preset: {name}" in texts
        for setting in SETTINGS:
            for value in setting.values:
                assert f"{setting.label}: {setting.show(value)}" in texts
        for action in ("Pause or resume training", "Learning rate x2, live", "This help"):
            assert action in texts
        await press(pilot, "ctrl+p")
        await wait_shows(pilot, "Preset: dying-relu")

    drive(app, body, size=(100, 30))


def test_a_refused_setting_from_the_palette_is_the_validations_message() -> None:
    trainer, app = make_app("digits-relu-bn")

    async def body(pilot: Pilot[Any]) -> None:
        await palette(pilot, "data set circle")
        snapshot = await wait_latest(pilot, trainer, lambda s: bool(s.notice), "the refusal")
        assert snapshot.notice == (
            "palette: the data set changes only among the 2-D sets "
            "(xor, circle, moons, spiral, blobs); this run's is 'digits'"
        )
        await wait_shows(pilot, "palette: the data set")
        assert trainer.latest().run_id == 0

    drive(app, body, size=(120, 40))


def test_set_refuses_what_validate_refuses() -> None:
    config = load_preset("relu-bn").config
    with pytest.raises(BpmonError, match=r"palette: train\.batch_size = 1: batch-norm"):
        apply_intent(config, Command("set", key="train.batch_size", value=1))
    with pytest.raises(BpmonError, match="unknown key"):
        apply_intent(config, Command("set", key="train.nothing", value=1))
    with pytest.raises(BpmonError, match="expected one of"):
        apply_intent(config, Command("set", key="model.init", value="zeros"))


# -- in a real terminal ---------------------------------------------------------------------------


def test_speed_flag_and_the_new_keys_in_tmux_at_80x24() -> None:
    from test_tmux import TMUX, session

    if TMUX is None:
        pytest.skip("tmux is not installed")
    with session("xterm-256color", "--preset", "xor", "--speed", "10") as pane:
        screen = pane.wait_for(lambda s: "pace 10/s  xor" in s, "the pace from --speed")
        assert all(len(line) <= 80 for line in screen.splitlines())
        pane.keys(">", literal=True)
        pane.wait_for(lambda s: "pace 100/s  xor" in s, "pace 100 after >")
        for key, shown in (("i", "he sgd"), ("o", "he momentum"), ("d", "circle he momentum")):
            pane.keys(key)
            pane.wait_for(lambda s, shown=shown: f"2-4-1 sigmoid  {shown}" in s, f"{key}: {shown}")
        pane.keys("m")
        pane.wait_for(lambda s: "circle he momentum batch 64" in s, "m: batch 64")
        pane.keys("q")
        pane.wait_for(lambda s: "BPMON-EXITED-0" in s, "exit status 0 after q", timeout=5.0)


def test_a_replays_palette_offers_its_own_keys_and_no_settings() -> None:
    from test_tui_runfiles import RUN_V1

    from bpmon.sources import RunFileSource
    from bpmon.tui.app import BpmonApp
    from bpmon.tui.palette import entries

    source = RunFileSource(str(RUN_V1), "replay")
    source.open_now()
    app = BpmonApp(source)

    async def body(pilot: Pilot[Any]) -> None:
        texts = [entry.text for entry in entries(app)]
        assert "Play / pause the replay (from the start when at the end)" in texts
        assert not [t for t in texts if t.startswith(("Preset:", "Pace:", "Data set:"))]
        assert "Pause or resume training" not in texts
        await press(pilot, "ctrl+p")
        await press(pilot, *"first")
        await wait_shows(pilot, "The first snapshot")
        await pilot.pause(0.2)
        await press(pilot, "enter")
        await wait_shows(pilot, "snapshot 1/")

    drive(app, body, size=(100, 30))


def test_a_pace_that_is_not_positive_is_refused_with_a_notice() -> None:
    trainer, app = make_app("xor", pace=10)

    async def body(pilot: Pilot[Any]) -> None:
        app.set_pace(0.0)
        await wait_latest(pilot, trainer, lambda s: bool(s.notice), "the refusal")
        assert trainer.latest().notice == "The pace must be more than 0 steps/s, not 0.0."
        assert trainer.pace == 10
        with pytest.raises(ValueError, match="pace must be > 0"):
            Trainer(load_preset("xor").config, pace=-1)

    drive(app, body)


def test_a_panel_draws_every_step_of_a_run_paced_for_watching() -> None:
    from dataclasses import replace

    from test_tui import Recorder, ShowRecorder, running_xor

    base = running_xor()
    app = ShowRecorder()

    async def body(pilot: Pilot[Any]) -> None:
        panel = app.query_one(Recorder)
        for step in range(1, 6):
            panel.snapshot = replace(base, step=step, pace=10.0)
        assert [step for _, _, step in panel.drawn] == [1, 2, 3, 4, 5]
        # At 100 steps/s the panel keeps its own cadence (30 s here): one draw.
        for step in range(6, 11):
            panel.snapshot = replace(base, step=step, pace=100.0)
        assert [step for _, _, step in panel.drawn] == [1, 2, 3, 4, 5]

    drive(app, body)
