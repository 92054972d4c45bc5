"""Pilot tests of the monitor, through what a user does and sees: keys in, the screen out.

A test presses keys, then waits (polling, with a deadline) until the screen shows what it
should; it checks the trainer only through its public ``latest()`` snapshot. The screen is read
from Textual's own screenshot (:func:`screen_text`), so what is checked is what a terminal
would show, toasts included. No test asserts how long something took: timing targets are the
benchmarks' business (``python -m benchmarks``).

pytest-asyncio is not a dependency, so each test is a plain function that runs its coroutine
with ``asyncio.run``. Runs are built with a huge epoch count so that none finishes while a test
is pressing keys.
"""

from __future__ import annotations

import asyncio
import html
import io
import re
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import textual.notifications
from rich.text import Text
from textual import events
from textual.app import App, ComposeResult
from textual.keys import key_to_character
from textual.pilot import Pilot
from textual.widgets import DataTable

from bpmon.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from bpmon.curvepoints import envelope
from bpmon.data import Dataset
from bpmon.launch import live_trainer
from bpmon.presets import load_preset
from bpmon.trainer import Command, Snapshot, Trainer
from bpmon.tui.app import BpmonApp
from bpmon.tui.gradients import GradientPanel, bar_cells, short_number
from bpmon.tui.loss import LossPanel, nice_ticks
from bpmon.tui.predictions import PredictionPanel, format_inputs
from bpmon.tui.status import StatusLine, short_architecture
from bpmon.tui.view import SnapshotView

SIZE = (80, 24)
WAIT = 10.0
# Rich's SVG export draws a cell 0.61 of its 20 px font wide.
_CELL = 12.2
_TEXT = re.compile(
    r'<text class="[^"]*" x="([\d.]+)" y="[\d.]+" textLength="[\d.]+" '
    r'clip-path="url\(#[\w-]+-line-(\d+)\)">([^<]*)</text>'
)


# -- how a test drives the app and reads the screen ----------------------------------------------


def preset_config(name: str) -> RunConfig:
    return load_preset(name).config


def make_app(
    name: str = "relu-bn",
    steps: int | None = 3,
    config: RunConfig | None = None,
    **trainer_args: Any,
) -> tuple[Trainer, BpmonApp]:
    """A trainer that will not finish during a test, paused at ``steps`` unless None."""
    config = (config or preset_config(name)).with_epochs(10**9)
    trainer = live_trainer(config, preset=name, **trainer_args)
    if steps is not None:
        trainer.run(max_steps=steps)
    return trainer, BpmonApp(trainer)


async def press(pilot: Pilot[Any], *keys: str) -> None:
    """Deliver keys the way the terminal driver does.

    ``Pilot.press`` waits for the process to go idle after every key, which a process with a
    training thread never does, so it would spend its one-second limit twice per key.
    """
    for key in keys:
        pilot.app.post_message(events.Key(key, key_to_character(key)))
        await pilot.pause(0.02)


def drive(
    app: App[Any], body: Callable[[Pilot[Any]], Awaitable[None]], size: tuple[int, int] = SIZE
) -> None:
    async def main() -> None:
        async with app.run_test(size=size, notifications=True) as pilot:
            await pilot.pause(0.05)
            try:
                await body(pilot)
            except BaseException:
                # Before Textual's shutdown, which waits on the same pumps: if one is stuck,
                # the report says which, and on what, even when the shutdown then hangs.
                sys.stderr.write(stuck_report(app))
                raise

    run(main())


def stuck_report(app: App[Any]) -> str:
    """Every message pump with messages waiting, and the stack of every asyncio task: what
    a test that timed out waiting on the app was waiting for."""
    lines = ["-- the app when the test failed --"]
    try:
        lines.append(f"screens: {[type(s).__name__ for s in app.screen_stack]}")
        for node in [app, *app.screen.walk_children(with_self=True)]:
            waiting = node._message_queue.qsize()
            if waiting:
                lines.append(f"{node!r}: {waiting} messages waiting")
    except Exception as exc:  # the report must not hide the failure it reports
        lines.append(f"(no DOM: {exc!r})")
    idle = 0
    for task in asyncio.all_tasks():
        # A pump or timer waiting for its next message shows one frame; one stuck in a
        # handler shows the handler's.
        if len(task.get_stack()) <= 1 and "await mount" not in task.get_name():
            idle += 1
            continue
        out = io.StringIO()
        task.print_stack(limit=12, file=out)
        lines.append(out.getvalue())
    lines.append(f"({idle} tasks waiting for their next message or tick)")
    return "\n".join(lines) + "\n"


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


async def wait_for(
    pilot: Pilot[Any], predicate: Callable[[], bool], what: str, timeout: float = WAIT
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await pilot.pause(0.02)


async def frames(pilot: Pilot[Any], count: int = 4) -> None:
    """Until the app has drawn ``count`` more frames: each frame reads its source's latest
    snapshot once (``BpmonApp._tick``), so counting those reads is a deterministic "several
    frames went by" where a fixed pause would be a guess at the machine's speed. For the
    checks that something (a second notice, a step) did not happen."""
    source: Any = getattr(pilot.app, "source")  # noqa: B009 - the single-run app's source
    reads = [0]
    latest = source.latest

    def counted() -> Any:
        reads[0] += 1
        return latest()

    source.latest = counted  # an instance attribute: the app's frames find it first
    try:
        await wait_for(pilot, lambda: reads[0] >= count, f"{count} frames")
    finally:
        del source.latest


async def went_round(pilot: Pilot[Any], trainer: Trainer, times: int = 3) -> None:
    """Until the training thread has taken ``times`` more commands off its queue (each a
    ``pause``, which a paused run ignores) and published after each: its loop went round that
    often, which is when a paused loop that stepped anyway would have stepped."""
    for _ in range(times):
        seen = trainer.latest()
        trainer.send(Command("pause"))
        await wait_for(pilot, lambda s=seen: trainer.latest() is not s, "the loop to go round")


def screen_text(app: App[Any]) -> str:
    """The screen as text, one line per row, read from Textual's SVG screenshot."""
    width, height = app.size
    found = _TEXT.findall(app.export_screenshot())
    # Just after a resize the screenshot may still hold the old, taller screen: its own rows.
    height = max([height, *(int(line) + 1 for _, line, _ in found)])
    rows = [[" "] * width for _ in range(height)]
    for x, line, text in found:
        row, col = rows[int(line)], round(float(x) / _CELL)
        for i, char in enumerate(html.unescape(text).replace("\xa0", " ")):
            if col + i < width:
                row[col + i] = char
    return "\n".join("".join(row).rstrip() for row in rows)


async def wait_screen(
    pilot: Pilot[Any], ok: Callable[[str], bool], what: str, timeout: float = WAIT
) -> str:
    """Until the screen satisfies ``ok``; returns that screen."""
    deadline = time.monotonic() + timeout
    while True:
        screen = screen_text(pilot.app)
        if ok(screen):
            return screen
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}:\n{screen}")
        await pilot.pause(0.03)


async def wait_shows(pilot: Pilot[Any], *texts: str, timeout: float = WAIT) -> str:
    return await wait_screen(
        pilot, lambda s: all(t in s for t in texts), f"{texts} on the screen", timeout
    )


async def wait_latest(
    pilot: Pilot[Any], trainer: Trainer, predicate: Callable[[Snapshot], bool], what: str
) -> Snapshot:
    await wait_for(pilot, lambda: predicate(trainer.latest()), what)
    return trainer.latest()


def status_lines(screen: str) -> list[str]:
    return screen.splitlines()[:2]


def bar_rows(screen: str) -> int:
    return sum(1 for line in screen.splitlines() if re.match(r"│ layer\d+ ", line))


def no_trainer_thread() -> bool:
    return not any(t.name == "bpmon-trainer" for t in threading.enumerate())


@pytest.fixture(autouse=True)
def _no_leftover_threads() -> Iterator[None]:
    yield
    deadline = time.monotonic() + WAIT
    while not no_trainer_thread() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert no_trainer_thread(), "a bpmon-trainer thread outlived its app"


def nan_at_step_1() -> Trainer:
    """A valid configuration whose loss is NaN at the very first step: the data is NaN."""
    X = np.full((4, 2), np.nan)
    X.flags.writeable = False
    y = np.array([[0.0], [1.0], [1.0], [0.0]])
    y.flags.writeable = False
    data = Dataset("huge", X, y, None, None, "binary", ("0", "1"), ("x1", "x2"))
    return live_trainer(preset_config("xor").with_epochs(10**9), preset="nan", data=data)


# -- keys ------------------------------------------------------------------------------------------


def test_a_and_shift_a_cycle_the_hidden_activation() -> None:
    trainer, app = make_app()

    async def body(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "2-8-8-4-1 relu +bn")
        await press(pilot, "a")
        await wait_shows(pilot, "2-8-8-4-1 leaky_relu +bn")
        await press(pilot, "a")
        await wait_shows(pilot, "2-8-8-4-1 sigmoid +bn")
        assert trainer.latest().run_id == 2
        await press(pilot, "A")
        await wait_shows(pilot, "2-8-8-4-1 leaky_relu +bn")
        # Some terminals report shift+a rather than "A".
        await press(pilot, "shift+a")
        await wait_shows(pilot, "2-8-8-4-1 relu +bn")

    drive(app, body)


def test_a_from_sigmoid_gives_tanh() -> None:
    trainer, app = make_app("xor")

    async def body(pilot: Pilot[Any]) -> None:
        await press(pilot, "a")
        await wait_shows(pilot, "2-4-1 tanh")
        assert trainer.latest().switches == "2-4-1 tanh"

    drive(app, body)


def test_plus_and_minus_change_depth_and_the_number_of_bars() -> None:
    _trainer, app = make_app()

    async def body(pilot: Pilot[Any]) -> None:
        await wait_screen(pilot, lambda s: bar_rows(s) == 4, "4 bars")
        await press(pilot, "plus")
        await wait_screen(pilot, lambda s: "2-8-8-4-4-1" in s and bar_rows(s) == 5, "5 bars")
        await press(pilot, "minus", "minus")
        await wait_screen(pilot, lambda s: "2-8-8-1 " in s and bar_rows(s) == 3, "3 bars")

    drive(app, body, size=(120, 40))


def test_depth_limits_are_the_trainers_and_it_says_so() -> None:
    trainer, app = make_app("xor")

    async def body(pilot: Pilot[Any]) -> None:
        await press(pilot, "minus")
        await wait_latest(pilot, trainer, lambda s: bool(s.notice), "a notice")
        assert trainer.latest().run_id == 0, "one hidden layer is the least"
        await wait_shows(pilot, "key -")  # the trainer's notice, as a toast
        # Quick presses build on each other, and the 13th and 14th are refused.
        await press(pilot, *["plus"] * 14)
        await wait_screen(
            pilot,
            lambda s: "2-4x12-1 sigmoid" in s and bar_rows(s) == 13 and "key +" in s,
            "13 bars and why there are no more",
        )
        assert trainer.latest().architecture == "-".join(["2", *["4"] * 12, "1"])

    drive(app, body, size=(120, 48))


def test_b_toggles_batchnorm() -> None:
    _trainer, app = make_app()

    async def body(pilot: Pilot[Any]) -> None:
        await press(pilot, "b")
        await wait_screen(pilot, lambda s: "2-8-8-4-1 relu " in s and "+bn" not in s, "bn off")
        await press(pilot, "b")
        await wait_shows(pilot, "2-8-8-4-1 relu +bn")

    drive(app, body)


def test_brackets_double_and_halve_lr_without_restarting() -> None:
    trainer, app = make_app()

    async def body(pilot: Pilot[Any]) -> None:
        before = trainer.latest()
        await press(pilot, "right_square_bracket")
        await wait_shows(pilot, "lr 0.02")
        after = trainer.latest()
        assert (after.run_id, after.step) == (before.run_id, before.step), "paused, no restart"
        await press(pilot, "left_square_bracket", "left_square_bracket")
        await wait_shows(pilot, "lr 0.005")
        assert trainer.latest().run_id == before.run_id

    drive(app, body)


def test_lr_stops_at_its_bound_and_says_so() -> None:
    trainer, app = make_app()

    async def body(pilot: Pilot[Any]) -> None:
        await press(pilot, *["right_square_bracket"] * 16)
        await wait_screen(
            pilot,
            lambda s: " lr 100\n" in s and "The learning rate stays at most 100" in s,
            "lr 100 and why it stays there",
        )
        assert trainer.latest().lr == 100

    drive(app, body)


def test_space_pauses_and_resumes() -> None:
    trainer, app = make_app(steps=None)

    async def body(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "RUNNING", "steps/s")
        await press(pilot, "space")
        screen = await wait_shows(pilot, "PAUSED")
        assert "steps/s" not in screen, "a paused run has no speed"
        paused = trainer.latest()
        await went_round(pilot, trainer)
        assert trainer.latest().step == paused.step
        await press(pilot, "space")
        await wait_shows(pilot, "RUNNING")
        await wait_latest(pilot, trainer, lambda s: s.step > paused.step, "training again")

    drive(app, body)


def test_a_pause_during_a_long_step_shows_at_once() -> None:
    # Half a second a step or so: the key lands while a step is in flight.
    config = RunConfig(
        data=DataConfig(name="digits", standardize=True),
        model=ModelConfig(
            hidden=(1024,) * 2, activation="relu", output="softmax", loss="cross_entropy"
        ),
        train=TrainConfig(lr=0.01),
    )
    trainer, app = make_app("digits", steps=None, config=config)

    async def body(pilot: Pilot[Any]) -> None:
        await wait_latest(pilot, trainer, lambda s: s.step >= 1, "the first step")
        await wait_shows(pilot, "RUNNING")
        await press(pilot, "space")
        # Before the trainer gets to the key, the status line says that it was taken.
        assert "PAUSING…" in app.query_one(StatusLine).plain
        await wait_shows(pilot, "PAUSED")

    drive(app, body)


def test_n_steps_once_while_paused() -> None:
    trainer, app = make_app(steps=7)

    async def body(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "epoch 7/")
        await press(pilot, "n")
        await wait_shows(pilot, "epoch 8/")
        await went_round(pilot, trainer)
        assert (trainer.latest().step, trainer.latest().state) == (8, "paused")

    drive(app, body)


def test_n_while_running_only_explains() -> None:
    trainer, app = make_app(steps=None)

    async def body(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "RUNNING")
        await press(pilot, "n")
        await wait_shows(pilot, "n steps a paused run")
        assert trainer.latest().state == "running"

    drive(app, body)


def test_r_restarts_from_the_same_seed() -> None:
    trainer, app = make_app(steps=5)

    async def body(pilot: Pilot[Any]) -> None:
        first = trainer.latest()
        await press(pilot, "r")
        await wait_latest(pilot, trainer, lambda s: s.run_id == 1, "run 1")
        await wait_shows(pilot, "dim: previous run")
        await press(pilot, "space")
        await wait_shows(pilot, "PAUSED")
        again = trainer.latest()
        # The same seed: the run retraces the first one step for step.
        replay = Trainer(preset_config("relu-bn").with_epochs(10**9)).run(max_steps=again.step)
        assert again.loss == pytest.approx(replay.loss, rel=1e-12)
        assert again.previous_loss_steps == first.loss_steps

    drive(app, body)


def test_a_restart_while_running_shows_the_new_bars() -> None:
    _trainer, app = make_app(steps=None)

    async def body(pilot: Pilot[Any]) -> None:
        await wait_screen(pilot, lambda s: bar_rows(s) == 4 and "RUNNING" in s, "first bars")
        await press(pilot, "plus")
        await wait_screen(pilot, lambda s: bar_rows(s) == 5, "new bars")

    drive(app, body, size=(120, 40))


def test_l_toggles_the_log_axis() -> None:
    _trainer, app = make_app()

    async def body(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "loss · linear (l)")
        await press(pilot, "l")
        await wait_shows(pilot, "loss · log (l)")
        await press(pilot, "l")
        await wait_shows(pilot, "loss · linear (l)")

    drive(app, body)


def test_l_on_a_run_that_is_nan_at_step_1() -> None:
    trainer = nan_at_step_1()
    app = BpmonApp(trainer)

    async def body(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "DIVERGED", "at step 1")
        for _ in range(3):
            await press(pilot, "l")
            await wait_shows(pilot, "loss · log (l)", "waiting for the first step")
            await press(pilot, "l")
            await wait_shows(pilot, "loss · linear (l)")
        assert app.is_running

    drive(app, body)


def test_question_mark_opens_help_listing_every_key() -> None:
    trainer, app = make_app()

    async def body(pilot: Pilot[Any]) -> None:
        await press(pilot, "question_mark")
        screen = await wait_shows(pilot, "bpmon keys", "escape or ? closes")
        for key in ("space", "n", "r", "a", "A", "+", "-", "b", "]", "[", "l", "?", "q"):
            assert re.search(rf"│\s+{re.escape(key)}\s", screen), key
        # Training keys still work under the help screen.
        await press(pilot, "right_square_bracket")
        await wait_latest(pilot, trainer, lambda s: s.lr == pytest.approx(0.02), "lr")
        await press(pilot, "escape")
        await wait_screen(pilot, lambda s: "bpmon keys" not in s, "help closed")
        await press(pilot, "question_mark")
        await wait_shows(pilot, "bpmon keys")
        await press(pilot, "question_mark")
        await wait_screen(pilot, lambda s: "bpmon keys" not in s, "help closed by ?")

    drive(app, body, size=(100, 30))


@pytest.mark.parametrize("key", ["q", "ctrl+c"])
def test_quit_ends_the_app_and_its_training_thread(key: str) -> None:
    trainer, app = make_app(steps=None)

    async def body(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "RUNNING")
        assert trainer.alive
        await press(pilot, key)

    drive(app, body)
    assert app.return_code == 0
    deadline = time.monotonic() + WAIT
    while trainer.alive and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not trainer.alive
    assert trainer.latest().state == "stopped"


def test_app_exit_without_q_still_stops_the_thread() -> None:
    trainer, app = make_app(steps=None)

    async def body(pilot: Pilot[Any]) -> None:
        await wait_latest(pilot, trainer, lambda s: s.step > 0, "training")

    drive(app, body)
    deadline = time.monotonic() + WAIT
    while trainer.alive and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not trainer.alive


def test_a_key_the_source_does_not_support_is_explained() -> None:
    trainer, _app = make_app("xor")

    class Recording:
        """A source that shows one snapshot and understands only stop (as a run file would
        not understand "one layer more")."""

        def __init__(self) -> None:
            self.sent: list[Command] = []

        def latest(self) -> Snapshot:
            return trainer.latest()

        def send(self, command: Command) -> None:
            self.sent.append(command)

        def supports(self, kind: str) -> bool:
            return kind == "stop"

        def start(self) -> None:
            pass

        def stop(self, timeout: float = 0.0) -> None:
            pass

        @property
        def alive(self) -> bool:
            return True

    source = Recording()
    app = BpmonApp(source)

    async def body(pilot: Pilot[Any]) -> None:
        screen = await wait_shows(pilot, "PAUSED", "2-4-1 sigmoid", "q quit")
        # Keys the source does not take are not offered in the footer,
        assert "restart" not in screen.splitlines()[-1]
        await press(pilot, "plus", "space")
        await wait_shows(pilot, "That key does nothing here")
        # and pressing them says so once, not once a key.
        await press(pilot, "b", "a")
        await frames(pilot)
        screen = screen_text(app)
        assert screen.count("That key does nothing here") == 1, screen
        assert source.sent == []
        assert "PAUSED" in screen

    drive(app, body)


# -- states ----------------------------------------------------------------------------------------


def test_diverged_run_shows_the_banner_and_keys_still_work() -> None:
    config = preset_config("relu-bn").with_batchnorm(False).with_lr(100.0)
    trainer, app = make_app(config=config, steps=None)

    async def body(pilot: Pilot[Any]) -> None:
        screen = await wait_shows(pilot, "DIVERGED at step")
        shown = trainer.latest()
        assert f"step {shown.diverged_step} in {shown.diverged_layer}" in screen
        assert "training paused" in screen
        assert "DIVERGED" in status_lines(screen)[0]
        await press(pilot, "space")
        await wait_shows(pilot, "The run has diverged; r restarts it.")
        await press(pilot, *["left_square_bracket"] * 10)
        await wait_screen(pilot, lambda s: " lr 0.0976562\n" in s, "lr 100 / 2**10")
        await press(pilot, "r")
        await wait_screen(
            pilot, lambda s: "RUNNING" in s and "DIVERGED" not in s, "restarted, no banner"
        )

    drive(app, body)


def test_banner_hidden_on_a_healthy_run() -> None:
    _trainer, app = make_app()

    async def body(pilot: Pilot[Any]) -> None:
        screen = await wait_shows(pilot, "PAUSED")
        assert "DIVERGED" not in screen

    drive(app, body)


def test_error_state_is_notified_once_and_shown_in_the_status_line() -> None:
    # A fault on the training thread, once, through a public hook: the callback the trainer
    # calls with every snapshot it publishes.
    armed = threading.Event()

    def on_snapshot(snapshot: Snapshot) -> None:
        if armed.is_set():
            armed.clear()
            raise RuntimeError("telemetry exploded")

    trainer, app = make_app(steps=None, on_snapshot=on_snapshot)
    # Toasts that outlive a slow machine: the count below must not see the first one expire.
    app.NOTIFICATION_TIMEOUT = 600

    async def body(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "RUNNING")
        armed.set()
        await wait_shows(pilot, "ERROR", "RuntimeError: telemetry exploded")
        assert trainer.latest().state == "error"
        await frames(pilot)  # several more frames: still one toast, and the status line
        assert screen_text(app).count("telemetry exploded") == 2
        # The app is still up, and r gets training going again.
        await press(pilot, "r")
        await wait_shows(pilot, "RUNNING")
        await wait_screen(pilot, lambda s: "ERROR" not in s, "no more error")

    drive(app, body)


class SteppedClock:
    """Textual's notification clock, made to move ``step`` seconds at each reading once
    started: what a loaded machine does between two readings, every time."""

    def __init__(self, step: float) -> None:
        self.step = step
        self.base: float | None = None
        self.readings = 0

    def start(self) -> None:
        self.base, self.readings = time.time(), 0

    def __call__(self) -> float:
        if self.base is None:
            return time.time()
        self.readings += 1
        return self.base + self.step * (self.readings - 1)


@pytest.mark.timeout(90)
def test_a_toast_built_as_its_notice_runs_out_leaves_the_monitor_answering(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Textual checks that a notification has time left, then builds its toast with the time
    left by then: on a loaded machine that can be below zero, and a timer given a negative
    time froze the app for good (see bpmon.tui.toasts). Here Textual's notification clock moves
    2 s at each reading, so a 5 s notice is found live with 1 s left and its toast is built
    at -1 s. The keys must still act. (Without the fix this test hangs until its limit.)"""
    clock = SteppedClock(2.0)
    monkeypatch.setattr(textual.notifications, "time", clock)
    _trainer, app = make_app()

    async def body(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "PAUSED")
        app.notify("a notice", timeout=5)
        clock.start()
        await wait_for(pilot, lambda: clock.readings >= 4, "the notice's toast")
        scale = "log" if "loss · linear" in screen_text(app) else "linear"
        await press(pilot, "l")
        await wait_shows(pilot, f"loss · {scale} (l)")

    drive(app, body)


def test_failed_restart_is_explained() -> None:
    trainer, app = make_app()

    async def body(pilot: Pilot[Any]) -> None:
        good = trainer.latest().config
        bad = RunConfig(DataConfig(name="no-such-set"), good.model, good.train, good.thresholds)
        trainer.send(Command("restart", config=bad))
        await wait_latest(pilot, trainer, lambda s: bool(s.message), "the message")
        await wait_shows(pilot, "cannot restart", "no-such-set")
        await went_round(pilot, trainer)
        assert trainer.latest().config == good

    drive(app, body)


def test_finished_run_shows_finished_and_no_speed() -> None:
    trainer = live_trainer(preset_config("xor").with_epochs(20), preset="xor")
    app = BpmonApp(trainer)

    async def body(pilot: Pilot[Any]) -> None:
        screen = await wait_shows(pilot, "FINISHED", "epoch 20/20")
        assert "steps/s" not in screen
        await press(pilot, "space")
        await wait_shows(pilot, "The run has finished; r restarts it.")

    drive(app, body)


# -- layout ----------------------------------------------------------------------------------------


def test_too_small_terminal_shows_a_message_and_recovers() -> None:
    _trainer, app = make_app()

    async def body(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "gradients", "predictions")
        await pilot.resize_terminal(60, 20)
        screen = await wait_shows(pilot, "Terminal too small: 60x20, need 80x24")
        assert "gradients" not in screen
        await pilot.resize_terminal(100, 23)
        await wait_shows(pilot, "Terminal too small: 100x23")
        await press(pilot, "l", "question_mark", "question_mark")  # keys do not break it
        await pilot.resize_terminal(80, 24)
        screen = await wait_shows(pilot, "gradients", "loss · log", "predictions")
        assert "too small" not in screen

    drive(app, body)


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (160, 48)])
def test_panels_fit_the_screen(size: tuple[int, int]) -> None:
    _trainer, app = make_app()

    async def body(pilot: Pilot[Any]) -> None:
        screen = await wait_shows(pilot, "gradients", "loss", "predictions", "layer3", "q quit")
        lines = screen.splitlines()
        assert len(lines) == size[1]
        assert lines[0].split()[:2] == ["PAUSED", "relu-bn"]
        assert lines[1].split()[0] == "epoch"
        # Every column of the table is there, none cut off at the right.
        assert re.search(r"input\s+target\s+output\s+ok", screen)
        grads = app.query_one(GradientPanel).region
        loss = app.query_one(LossPanel).region
        if size[0] >= 140:
            assert grads.x < loss.x, "side by side"
            assert "the same layers at step 1" in screen
        else:
            assert grads.y < loss.y, "stacked"

    drive(app, body, size=size)


def test_wide_layers_keep_the_status_line_to_two_lines_at_80x24() -> None:
    trainer, _app = make_app("xor")
    base = trainer.latest()
    sizes = ["2", *["100000"] * 3, "100001", "100002", *["2048"] * 12, "1"]
    cases = [
        replace(base, switches="2-" + "-".join(["2048"] * 12) + "-1 leaky_relu +bn"),
        replace(base, switches="-".join(sizes) + " leaky_relu +bn", preset="a-long-preset"),
    ]

    class Show(App[None]):
        CSS_PATH = BpmonApp.CSS_PATH

        def compose(self) -> ComposeResult:
            yield StatusLine()

    app = Show()

    async def body(pilot: Pilot[Any]) -> None:
        status = app.query_one(StatusLine)
        for snapshot in cases:
            status.snapshot = snapshot
            await pilot.pause(0.05)
            assert status.region.height == 2
            first = screen_text(app).splitlines()[0]
            assert len(first) <= 80
            assert "2048x12" in first
        assert first.endswith("…")

    drive(app, body)


def test_twelve_layers_scroll_at_80x24() -> None:
    _trainer, app = make_app(config=preset_config("relu-bn").with_depth(12))

    async def body(pilot: Pilot[Any]) -> None:
        screen = await wait_shows(pilot, "2-8-8-4x10-1 relu +bn", "more ↓")
        assert "layer12" not in screen
        # No focus first: pgdn reaches the output layer, under the same column header.
        header = next(line for line in screen.splitlines() if "│ layer " in line)
        await press(pilot, "pagedown", "pagedown")
        screen = await wait_shows(pilot, "layer12", "above ↑")
        assert header in screen.splitlines()

    drive(app, body)


def test_predictions_table_updates_cells_in_place() -> None:
    trainer, app = make_app()

    async def body(pilot: Pilot[Any]) -> None:
        table = app.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 16, "16 rows")
        rows_before = list(table.rows)
        await press(pilot, "n")
        await wait_shows(pilot, "epoch 4/")
        assert list(table.rows) == rows_before
        first = trainer.latest().predictions[0]
        assert str(table.get_cell("0", "output")) == f"{first.output[0]:.3f}"
        assert str(table.get_cell("0", "ok")) == ("✓" if first.correct else "✗")
        assert "train" in str(app.query_one(PredictionPanel).border_subtitle)

    drive(app, body)


def test_digits_show_compact_inputs_and_test_accuracy() -> None:
    config = RunConfig(
        data=DataConfig(name="digits", test_fraction=0.2, standardize=True),
        model=ModelConfig(hidden=(16,), activation="relu", output="softmax", loss="cross_entropy"),
        train=TrainConfig(lr=0.1, epochs=100),
    )
    _trainer, app = make_app(config=config)

    async def body(pilot: Pilot[Any]) -> None:
        screen = await wait_shows(pilot, "input (64)", " test ")
        assert re.search(r"-?\d\.\d\d\s+-?\d\.\d\d …", screen)
        table = app.query_one(DataTable)
        assert table.virtual_size.width <= table.scrollable_content_region.width

    drive(app, body)


# -- every history draws ---------------------------------------------------------------------------


def _histories() -> Iterator[tuple[tuple[int, ...], tuple[float, ...]]]:
    nan, inf = float("nan"), float("inf")
    fixed = [
        [],
        [nan],
        [nan] * 5,
        [inf, -inf],
        [0.0] * 7,
        [0.5],
        [1e300, 1e300],
        [1e300, 1e-300],
        [1.7976931348623157e308, 5e-324],
        [-1.0, -2.0, -3.0],
        [-1e308, 1e308],
        [0.25, nan, 0.2, inf, 0.1, 0.0, -0.1],
        [1.0] * 600,
    ]
    for values in fixed:
        yield tuple(range(1, len(values) + 1)), tuple(values)
    rng = np.random.default_rng(0)
    pool = np.array([nan, inf, -inf, 0.0, -0.0, 1e-320, 1e308, -1e308, 1.0, 1e-5])
    for _ in range(60):
        n = int(rng.integers(0, 40))
        kind = rng.integers(3)
        if kind == 0:
            values = rng.choice(pool, n)
        elif kind == 1:
            values = 10.0 ** rng.uniform(-320, 308, n)
        else:
            values = rng.normal(0, 10.0 ** rng.uniform(-300, 300), n)
        steps = np.cumsum(rng.integers(1, 10**6, n))
        yield tuple(int(s) for s in steps), tuple(float(v) for v in values)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_the_loss_panel_draws_any_history_in_either_scale(size: tuple[int, int]) -> None:
    trainer, _app = make_app("xor")
    base = trainer.latest()

    class Plot(App[None]):
        def compose(self) -> ComposeResult:
            yield LossPanel()

    app = Plot()

    async def body(pilot: Pilot[Any]) -> None:
        panel = app.query_one(LossPanel)
        for i, (steps, values) in enumerate(_histories()):
            half = len(steps) // 2
            snapshot = replace(
                base,
                run_id=i,
                loss_steps=steps[half:],
                loss_values=values[half:],
                previous_loss_steps=steps[:half],
                previous_loss_values=values[:half],
            )
            for log in (False, True):
                panel.log_y = log
                panel.snapshot = snapshot
                # What Textual calls to paint it; an exception here is the crash a user saw.
                lines = Text.from_ansi(str(panel.render())).plain.splitlines()
                assert len(lines) == panel.size.height, (steps, values, log)
        await pilot.pause(0.05)
        assert app.is_running

    drive(app, body, size=size)


# -- the redraw cadence ----------------------------------------------------------------------------


class Recorder(SnapshotView):
    """A panel that only records what it was asked to draw."""

    REDRAW_INTERVAL = 30.0

    def __init__(self) -> None:
        super().__init__()
        self.drawn: list[tuple[int, str, int]] = []

    def draw(self, snapshot: Snapshot) -> None:
        self.drawn.append((snapshot.run_id, snapshot.state, snapshot.step))


class ShowRecorder(App[None]):
    """An app of one :class:`Recorder`, to be given snapshots by hand."""

    def compose(self) -> ComposeResult:
        yield Recorder()


def running_xor() -> Snapshot:
    """The xor preset's first snapshot, as if training."""
    trainer, _app = make_app("xor")
    return replace(trainer.latest(), state="running")


def test_a_panel_redraws_a_running_run_at_its_cadence_and_anything_else_at_once() -> None:
    base = running_xor()
    app = ShowRecorder()

    async def body(pilot: Pilot[Any]) -> None:
        panel = app.query_one(Recorder)
        for step in range(1, 6):
            panel.snapshot = replace(base, step=step)
        assert panel.drawn == [(0, "running", 1)], "once per interval while running"
        panel.snapshot = replace(base, step=6, state="paused")
        panel.snapshot = replace(base, step=7, state="paused")
        panel.snapshot = replace(base, step=7, state="paused", lr=1.0)
        assert panel.drawn[1:] == [(0, "paused", 6), (0, "paused", 7), (0, "paused", 7)]
        panel.snapshot = replace(base, step=8, state="paused", run_id=1)
        panel.snapshot = replace(base, step=9, run_id=1)
        assert panel.drawn[-2:] == [(1, "paused", 8), (1, "running", 9)]
        same = panel.snapshot
        panel.snapshot = same
        await pilot.resize_terminal(100, 30)
        await wait_for(pilot, lambda: len(panel.drawn) == 7, "a redraw for the new size")
        # The newest snapshot of a throttled stretch is drawn when the interval is up.
        panel.REDRAW_INTERVAL = 0.2
        panel.snapshot = replace(base, step=10, run_id=1)
        panel.snapshot = replace(base, step=11, run_id=1)
        await wait_for(pilot, lambda: panel.drawn[-1] == (1, "running", 11), "the last one")

    drive(app, body)


# -- the pure helpers ------------------------------------------------------------------------------


def test_repeated_hidden_widths_are_written_once() -> None:
    assert short_architecture("2-8-8-4-1") == "2-8-8-4-1"
    assert short_architecture("2-4-4-1") == "2-4-4-1"
    assert short_architecture("2-2048-2048-2048-1") == "2-2048x3-1"
    assert short_architecture("64-64-64-64-10") == "64-64x3-10"
    assert short_architecture("2-8-8-4-4-4-4-1") == "2-8-8-4x4-1"
    assert short_architecture("2-1") == "2-1"


def test_bar_length_follows_log10_of_the_norm() -> None:
    assert bar_cells(1e-8) == ("", "·" * 20)
    assert bar_cells(1e2) == ("█" * 20, "")
    assert bar_cells(1e-3)[0] == "█" * 10
    assert bar_cells(1e-9)[0] == ""
    assert bar_cells(1e9)[0] == "█" * 20
    assert bar_cells(0.0)[0] == ""
    assert bar_cells(float("nan"))[0] == "▒" * 20
    filled, track = bar_cells(3.3e-5)
    assert len(filled) + len(track) == 20


def test_short_numbers_for_the_legend() -> None:
    assert [short_number(x) for x in (1e-2, 1e-8, 1e2, 2.5e-3)] == ["1e-2", "1e-8", "1e2", "2.5e-3"]


def test_the_plot_keeps_a_one_update_spike_among_thousands() -> None:
    # The plot draws at most its width of points: a spike between two evenly spread picks must
    # still be one of them (bpmon.curvepoints.envelope: each stretch's lowest and highest).
    xs = list(range(1, 5001))
    for at in (2, 1234, 2501, 4999):
        ys = [1.0] * len(xs)
        ys[at - 1] = 50.0
        dx, dy = envelope(xs, ys, 60)
        assert len(dx) <= 60 and dx[0] == 1 and dx[-1] == 5000
        assert max(dy) == 50.0 and dx[dy.index(50.0)] == at
    assert envelope(xs[:10], [1.0] * 10, 60) == (xs[:10], [1.0] * 10)


def test_nice_ticks() -> None:
    assert nice_ticks(300, 4) == [0, 100, 200, 300]
    assert nice_ticks(0, 4) == [0]
    assert nice_ticks(7, 5) == [0, 2, 4, 6]


def test_compact_inputs() -> None:
    assert format_inputs((0.0, 1.0)) == " 0.00  1.00"
    assert format_inputs(tuple(float(i) for i in range(64))) == " 0.00  1.00 …"


def test_a_regression_shows_r2_and_the_error_of_each_prediction() -> None:
    from bpmon.presets import csv_preset

    data_dir = Path(__file__).resolve().parent / "data"
    preset, data = csv_preset(DataConfig(name="csv", path=str(data_dir / "co2.csv")))
    trainer = live_trainer(preset.config.with_epochs(10**9), preset=preset.name, data=data)
    trainer.run(max_steps=20)
    app = BpmonApp(trainer)

    async def body(pilot: Pilot[Any]) -> None:
        screen = await wait_shows(pilot, "R² ", "predicted", "error")
        assert "acc " not in status_lines(screen)[1]
        # The note of what the loader did is said once, as a notification.
        await wait_shows(pilot, "dropped 59 rows")

    drive(app, body)
