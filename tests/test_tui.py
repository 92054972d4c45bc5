"""Pilot tests of the monitor: every key's effect on the trainer and on the screen.

pytest-asyncio is not a dependency, so each test is a plain function that runs its coroutine
with ``asyncio.run``. Runs are built with a huge epoch count so that none finishes while a test
is pressing keys, and every wait polls with a deadline.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest
from textual import events
from textual.keys import key_to_character
from textual.pilot import Pilot
from textual.widgets import DataTable

from bpmon.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from bpmon.presets import load_preset
from bpmon.telemetry import collect as real_collect
from bpmon.trainer import Command, Snapshot, Trainer
from bpmon.tui.app import BpmonApp
from bpmon.tui.banner import DivergenceBanner
from bpmon.tui.gradients import GradientPanel, bar_cells, short_number
from bpmon.tui.help import HelpScreen
from bpmon.tui.loss import LossPanel, decimate, nice_ticks
from bpmon.tui.predictions import PredictionPanel, format_inputs
from bpmon.tui.status import StatusLine
from bpmon.tui.toosmall import TooSmall

SIZE = (80, 24)
WAIT = 5.0


def preset_config(name: str) -> RunConfig:
    return load_preset(name).config


def make_app(
    name: str = "relu-bn", steps: int | None = 3, config: RunConfig | None = None
) -> tuple[Trainer, BpmonApp]:
    """A trainer that will not finish during a test; paused at ``steps`` unless None."""
    config = (config or preset_config(name)).with_epochs(10**9)
    trainer = Trainer(config, preset=name)
    if steps is not None:
        trainer.run(max_steps=steps)
    return trainer, BpmonApp(trainer)


async def press(pilot: Pilot[None], *keys: str) -> None:
    """Deliver keys the way the terminal driver does.

    ``Pilot.press`` waits for the process to go idle after every key, which a process with a
    training thread never does, so it would spend its one-second limit twice per key.
    """
    for key in keys:
        pilot.app.post_message(events.Key(key, key_to_character(key)))
        await pilot.pause(0.02)


def drive(
    app: BpmonApp, body: Callable[[Pilot[None]], Awaitable[None]], size: tuple[int, int] = SIZE
) -> None:
    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await pilot.pause(0.05)
            await body(pilot)

    run(main())


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


async def wait_for(
    pilot: Pilot[None], predicate: Callable[[], bool], what: str, timeout: float = WAIT
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await pilot.pause(0.02)


async def wait_latest(
    pilot: Pilot[None], trainer: Trainer, predicate: Callable[[Snapshot], bool], what: str
) -> Snapshot:
    await wait_for(pilot, lambda: predicate(trainer.latest()), what)
    return trainer.latest()


async def wait_shown(
    pilot: Pilot[None], app: BpmonApp, predicate: Callable[[Snapshot], bool], what: str
) -> Snapshot:
    """Until the app has handed a snapshot matching ``predicate`` to its panels."""

    def ok() -> bool:
        return app._shown is not None and predicate(app._shown)

    await wait_for(pilot, ok, what)
    assert app._shown is not None
    return app._shown


def status_text(app: BpmonApp) -> str:
    return app.query_one(StatusLine).plain


def gradient_text(app: BpmonApp) -> str:
    return str(app.query_one("#gradients-body").content)  # type: ignore[attr-defined]


def bar_rows(app: BpmonApp) -> list[str]:
    return [line for line in gradient_text(app).splitlines() if re.match(r"layer\d+ ", line)]


def no_trainer_thread() -> bool:
    return not any(t.name == "bpmon-trainer" for t in threading.enumerate())


@pytest.fixture(autouse=True)
def _no_leftover_threads() -> Any:
    yield
    deadline = time.monotonic() + WAIT
    while not no_trainer_thread() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert no_trainer_thread(), "a bpmon-trainer thread outlived its app"


# -- keys ------------------------------------------------------------------------------------------


def test_a_and_shift_a_cycle_the_hidden_activation() -> None:
    trainer, app = make_app()

    async def body(pilot: Pilot[None]) -> None:
        assert trainer.latest().config.model.activation == "relu"
        await press(pilot, "a")
        await wait_latest(
            pilot, trainer, lambda s: s.config.model.activation == "leaky_relu", "leaky_relu"
        )
        await wait_shown(pilot, app, lambda s: s.config.model.activation == "leaky_relu", "shown")
        assert "leaky_relu" in status_text(app)
        await press(pilot, "a")
        shown = await wait_shown(
            pilot, app, lambda s: s.config.model.activation == "sigmoid", "wrap to sigmoid"
        )
        assert shown.run_id == 2
        assert "2-8-8-4-1 sigmoid +bn" in status_text(app)
        await press(pilot, "A")
        await wait_shown(pilot, app, lambda s: s.config.model.activation == "leaky_relu", "back")
        # Some terminals report shift+a rather than "A".
        await press(pilot, "shift+a")
        await wait_shown(pilot, app, lambda s: s.config.model.activation == "relu", "relu")
        assert "relu +bn" in status_text(app)

    drive(app, body)


def test_a_from_sigmoid_gives_tanh() -> None:
    trainer, app = make_app("xor")

    async def body(pilot: Pilot[None]) -> None:
        await press(pilot, "a")
        await wait_shown(pilot, app, lambda s: s.config.model.activation == "tanh", "tanh")
        assert "2-4-1 tanh" in status_text(app)
        assert trainer.latest().config.model.activation == "tanh"

    drive(app, body)


def test_plus_and_minus_change_depth_and_the_number_of_bars() -> None:
    _trainer, app = make_app()

    async def body(pilot: Pilot[None]) -> None:
        assert len(bar_rows(app)) == 4
        await press(pilot, "plus")
        shown = await wait_shown(
            pilot, app, lambda s: s.config.model.depth == 4 and len(s.layers) == 5, "5 bars"
        )
        assert shown.config.model.hidden == (8, 8, 4, 4)
        assert len(bar_rows(app)) == 5
        assert "2-8-8-4-4-1" in status_text(app)
        await press(pilot, "minus", "minus")
        shown = await wait_shown(
            pilot, app, lambda s: s.config.model.depth == 2 and len(s.layers) == 3, "3 bars"
        )
        assert shown.config.model.hidden == (8, 8)
        assert len(bar_rows(app)) == 3

    drive(app, body)


def test_depth_stays_within_1_and_12() -> None:
    trainer, app = make_app("xor")

    async def body(pilot: Pilot[None]) -> None:
        await press(pilot, "minus")
        await pilot.pause(0.3)
        assert trainer.latest().config.model.depth == 1
        assert trainer.latest().run_id == 0
        # Quick presses build on each other even before the trainer has published.
        await press(pilot, *["plus"] * 14)
        shown = await wait_shown(
            pilot, app, lambda s: s.config.model.depth == 12 and len(s.layers) == 13, "13 bars"
        )
        assert shown.config.model.hidden == (4,) * 12
        assert len(bar_rows(app)) == 13

    drive(app, body)


def test_b_toggles_batchnorm() -> None:
    _trainer, app = make_app()

    async def body(pilot: Pilot[None]) -> None:
        await press(pilot, "b")
        await wait_shown(pilot, app, lambda s: not s.config.model.batchnorm, "bn off")
        assert "+bn" not in status_text(app)
        await press(pilot, "b")
        await wait_shown(pilot, app, lambda s: s.config.model.batchnorm and s.run_id == 2, "bn on")
        assert "relu +bn" in status_text(app)

    drive(app, body)


def test_brackets_double_and_halve_lr_without_restarting() -> None:
    trainer, app = make_app()

    async def body(pilot: Pilot[None]) -> None:
        before = trainer.latest()
        await press(pilot, "right_square_bracket")
        shown = await wait_shown(pilot, app, lambda s: s.lr == pytest.approx(0.02), "lr 0.02")
        assert shown.run_id == before.run_id
        assert shown.config.train.lr == pytest.approx(0.02)
        assert shown.step == before.step, "a paused run must stay where it was"
        assert "lr 0.02" in status_text(app)
        await press(pilot, "left_square_bracket", "left_square_bracket")
        shown = await wait_shown(pilot, app, lambda s: s.lr == pytest.approx(0.005), "0.005")
        assert shown.run_id == before.run_id
        assert "lr 0.005" in status_text(app)

    drive(app, body)


def test_space_pauses_and_resumes() -> None:
    trainer, app = make_app(steps=None)

    async def body(pilot: Pilot[None]) -> None:
        await wait_shown(
            pilot, app, lambda s: s.state == "running" and s.steps_per_second > 0, "a speed"
        )
        assert "RUNNING" in status_text(app)
        assert "steps/s" in status_text(app)
        await press(pilot, "space")
        paused = await wait_shown(pilot, app, lambda s: s.state == "paused", "paused")
        assert "PAUSED" in status_text(app)
        assert "steps/s" not in status_text(app), "a paused run has no speed"
        await pilot.pause(0.3)
        assert trainer.latest().step == paused.step
        await press(pilot, "space")
        await wait_shown(
            pilot, app, lambda s: s.state == "running" and s.step > paused.step, "resumed"
        )

    drive(app, body)


def test_n_steps_once_while_paused() -> None:
    trainer, app = make_app(steps=7)

    async def body(pilot: Pilot[None]) -> None:
        assert trainer.latest().step == 7
        await press(pilot, "n")
        await wait_shown(pilot, app, lambda s: s.step == 8, "step 8")
        await pilot.pause(0.3)
        assert trainer.latest().step == 8
        assert trainer.latest().state == "paused"
        assert "epoch 8/" in status_text(app)

    drive(app, body)


def test_n_while_running_only_explains() -> None:
    trainer, app = make_app(steps=None)
    notes: list[str] = []

    async def body(pilot: Pilot[None]) -> None:
        app.notify = lambda message, **kw: notes.append(message)  # type: ignore[method-assign]
        await wait_shown(pilot, app, lambda s: s.state == "running", "running")
        await press(pilot, "n")
        assert notes and "paused" in notes[0]
        assert trainer.latest().state == "running"

    drive(app, body)


def test_r_restarts_from_the_same_seed() -> None:
    trainer, app = make_app(steps=5)

    async def body(pilot: Pilot[None]) -> None:
        first = trainer.latest()
        await press(pilot, "r")
        restarted = await wait_latest(pilot, trainer, lambda s: s.run_id == 1, "run 1")
        assert restarted.config == first.config
        # The same seed: the run retraces the first one step for step.
        await press(pilot, "space")
        await wait_latest(pilot, trainer, lambda s: s.state == "paused", "paused")
        again = trainer.latest()
        twin = Trainer(first.config, preset="relu-bn")
        replay = twin.run(max_steps=again.step)
        assert again.loss == pytest.approx(replay.loss, rel=1e-12)
        assert again.previous_loss_steps == first.loss_steps

    drive(app, body)


def test_restart_shows_new_bars_within_a_second() -> None:
    _trainer, app = make_app(steps=None)

    async def body(pilot: Pilot[None]) -> None:
        await wait_shown(pilot, app, lambda s: len(s.layers) == 4, "first bars")
        t0 = time.monotonic()
        await press(pilot, "plus")
        await wait_shown(pilot, app, lambda s: s.run_id == 1 and len(s.layers) == 5, "new bars")
        assert len(bar_rows(app)) == 5
        assert time.monotonic() - t0 < 1.0

    drive(app, body)


def test_l_toggles_the_log_axis() -> None:
    _trainer, app = make_app()

    async def body(pilot: Pilot[None]) -> None:
        plot = app.query_one(LossPanel)

        def flags() -> tuple[bool, bool]:
            return app.log_scale, plot.log_y

        assert flags() == (False, False)
        await press(pilot, "l")
        assert flags() == (True, True)
        assert "log" in str(plot.border_title)
        await press(pilot, "l")
        assert flags() == (False, False)
        assert "linear" in str(plot.border_title)

    drive(app, body)


def test_question_mark_opens_help_listing_every_key() -> None:
    trainer, app = make_app()

    async def body(pilot: Pilot[None]) -> None:
        await press(pilot, "question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "help screen")
        keys = {k for k, _ in app.help_rows()}
        assert {"space", "n", "r", "a", "A", "+", "-", "b", "]", "[", "l", "?", "q"} <= keys
        # Training keys still work under the help screen.
        await press(pilot, "right_square_bracket")
        await wait_latest(pilot, trainer, lambda s: s.lr == pytest.approx(0.02), "lr")
        await press(pilot, "escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen), "help closed")
        await press(pilot, "question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "help again")
        await press(pilot, "question_mark")
        await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen), "closed by ?")

    drive(app, body)


@pytest.mark.parametrize("key", ["q", "ctrl+c"])
def test_quit_stops_the_trainer_thread_quickly(key: str) -> None:
    trainer, app = make_app(steps=None)
    timing: dict[str, float] = {}

    async def body(pilot: Pilot[None]) -> None:
        await wait_shown(pilot, app, lambda s: s.state == "running" and s.step > 0, "running")
        assert trainer.alive
        timing["t0"] = time.monotonic()
        await press(pilot, key)

    drive(app, body)
    assert time.monotonic() - timing["t0"] < 0.5
    assert not trainer.alive
    assert no_trainer_thread()
    assert app.return_code == 0


def test_app_exit_without_q_still_joins_the_thread() -> None:
    trainer, app = make_app(steps=None)

    async def body(pilot: Pilot[None]) -> None:
        await wait_shown(pilot, app, lambda s: s.step > 0, "running")

    drive(app, body)
    assert not trainer.alive


# -- states ----------------------------------------------------------------------------------------


def test_diverged_run_shows_the_banner_and_keys_still_work() -> None:
    config = preset_config("relu-bn").with_batchnorm(False).with_lr(1e6)
    trainer, app = make_app(config=config, steps=None)

    async def body(pilot: Pilot[None]) -> None:
        shown = await wait_shown(pilot, app, lambda s: s.state == "diverged", "diverged")
        banner = app.query_one(DivergenceBanner)
        assert banner.display
        text = str(banner.content)
        assert f"step {shown.diverged_step}" in text
        assert str(shown.diverged_layer) in text
        assert "paused" in text
        assert "DIVERGED" in status_text(app)
        assert "nonfinite" in gradient_text(app)
        await press(pilot, "left_square_bracket")
        await wait_latest(pilot, trainer, lambda s: s.lr == pytest.approx(5e5), "lr halved")
        await press(pilot, "b")
        await wait_shown(
            pilot, app, lambda s: s.config.model.batchnorm and s.run_id == 1, "restarted"
        )
        await press(pilot, "space")
        await wait_shown(pilot, app, lambda s: s.state in ("paused", "diverged"), "settled")
        if app._shown is not None and app._shown.state != "diverged":
            assert not banner.display

    drive(app, body)


def test_banner_hidden_on_a_healthy_run() -> None:
    _trainer, app = make_app()

    async def body(pilot: Pilot[None]) -> None:
        assert not app.query_one(DivergenceBanner).display

    drive(app, body)


def test_error_state_is_notified_once_and_shown_in_the_status_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _trainer, app = make_app(steps=None)
    notes: list[tuple[str, str]] = []
    failures = ["armed"]

    def collect_once_broken(*args: Any, **kwargs: Any) -> Any:
        # A fault inside the training thread, once: the trainer must turn it into state error.
        if failures:
            failures.pop()
            raise RuntimeError("telemetry exploded")
        return real_collect(*args, **kwargs)

    async def body(pilot: Pilot[None]) -> None:
        def record(message: str, **kw: Any) -> None:
            notes.append((message, kw.get("severity", "")))

        app.notify = record  # type: ignore[method-assign]
        await wait_shown(pilot, app, lambda s: s.step > 0, "running")
        monkeypatch.setattr("bpmon.trainer.collect", collect_once_broken)
        shown = await wait_shown(pilot, app, lambda s: s.state == "error", "error state")
        assert "telemetry exploded" in shown.message
        assert shown.message in status_text(app)
        assert "ERROR" in status_text(app)
        await pilot.pause(0.4)  # several more frames
        assert notes == [(shown.message, "error")]
        # The app is still up, and r gets training going again.
        await press(pilot, "r")
        await wait_shown(pilot, app, lambda s: s.state == "running" and s.run_id == 1, "again")
        assert "ERROR" not in status_text(app)

    drive(app, body)


def test_failed_restart_is_explained() -> None:
    trainer, app = make_app()
    notes: list[tuple[str, str]] = []

    async def body(pilot: Pilot[None]) -> None:
        def record(message: str, **kw: Any) -> None:
            notes.append((message, kw.get("severity", "")))

        app.notify = record  # type: ignore[method-assign]
        good = trainer.latest().config
        bad = RunConfig(DataConfig(name="no-such-set"), good.model, good.train, good.thresholds)
        trainer.send(Command("restart", config=bad))
        shown = await wait_shown(pilot, app, lambda s: bool(s.message), "message")
        assert "no-such-set" in shown.message
        assert shown.message in status_text(app)
        await pilot.pause(0.3)
        assert notes == [(shown.message, "warning")]
        assert trainer.latest().config == good

    drive(app, body)


def test_finished_run_shows_finished_and_no_speed() -> None:
    config = preset_config("xor").with_epochs(20)
    trainer = Trainer(config, preset="xor")
    app = BpmonApp(trainer)

    async def body(pilot: Pilot[None]) -> None:
        await wait_shown(pilot, app, lambda s: s.state == "finished", "finished")
        assert "FINISHED" in status_text(app)
        assert "steps/s" not in status_text(app)
        assert "epoch 20/20" in status_text(app)

    drive(app, body)


# -- layout ----------------------------------------------------------------------------------------


def test_too_small_terminal_shows_a_message_and_recovers() -> None:
    _trainer, app = make_app()

    async def body(pilot: Pilot[None]) -> None:
        main = app.query_one("#main")
        small = app.query_one(TooSmall)

        def message_shown() -> bool:
            return small.display and not main.display

        def panels_shown() -> bool:
            return main.display and not small.display

        assert panels_shown()
        await pilot.resize_terminal(60, 20)
        await wait_for(pilot, message_shown, "message")
        assert "Terminal too small: 60x20, need 80x24" in str(small.content)
        await pilot.resize_terminal(100, 23)
        await wait_for(pilot, lambda: "100x23" in str(small.content), "new size")
        assert message_shown()
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, panels_shown, "panels back")
        for panel in (StatusLine, GradientPanel, LossPanel, PredictionPanel):
            region = app.query_one(panel).region
            assert region.width > 0 and region.height > 0, panel

    drive(app, body)


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (160, 48)])
def test_panels_fit_the_screen(size: tuple[int, int]) -> None:
    _trainer, app = make_app()

    async def body(pilot: Pilot[None]) -> None:
        await pilot.pause(0.2)
        screen = app.screen.region
        assert app.query_one(StatusLine).region.height >= 2
        for panel in (StatusLine, GradientPanel, LossPanel, PredictionPanel):
            region = app.query_one(panel).region
            assert screen.contains_region(region), panel
            assert region.width > 0 and region.height >= 2, panel
        grads = app.query_one(GradientPanel)
        widest = max(len(line) for line in gradient_text(app).splitlines())
        assert widest <= grads.scrollable_content_region.width
        status = app.query_one(StatusLine)
        for line in status_text(app).splitlines():
            assert len(line) <= status.content_region.width
        # The prediction table's columns are all visible, none cut off at the right.
        table = app.query_one(DataTable)
        assert table.virtual_size.width <= table.scrollable_content_region.width
        if size[0] >= 140:
            assert grads.region.x < app.query_one(LossPanel).region.x, "side by side"
        else:
            assert grads.region.y < app.query_one(LossPanel).region.y, "stacked"

    drive(app, body, size=size)


def test_twelve_layers_scroll_at_80x24() -> None:
    config = preset_config("relu-bn").with_depth(12)
    _trainer, app = make_app(config=config)

    async def body(pilot: Pilot[None]) -> None:
        await pilot.pause(0.2)
        grads = app.query_one(GradientPanel)
        assert len(bar_rows(app)) == 13
        assert grads.max_scroll_y > 0
        grads.focus()
        await press(pilot, "end")
        await wait_for(pilot, lambda: grads.scroll_y == grads.max_scroll_y, "scrolled")

    drive(app, body)


def test_predictions_table_updates_cells_in_place() -> None:
    trainer, app = make_app()

    async def body(pilot: Pilot[None]) -> None:
        panel = app.query_one(PredictionPanel)
        table = app.query_one(DataTable)
        assert table.row_count == len(trainer.latest().predictions) == 16
        rows_before = list(table.rows)
        await press(pilot, "n")
        await wait_shown(pilot, app, lambda s: s.step == 4, "step 4")
        assert list(table.rows) == rows_before
        first = trainer.latest().predictions[0]
        assert str(table.get_cell("0", "output")) == f"{first.output[0]:.3f}"
        assert str(table.get_cell("0", "ok")) == ("✓" if first.correct else "✗")
        assert "train" in str(panel.border_subtitle)

    drive(app, body)


def test_digits_show_compact_inputs_and_test_accuracy() -> None:
    config = RunConfig(
        data=DataConfig(name="digits", test_fraction=0.2, standardize=True),
        model=ModelConfig(hidden=(16,), activation="relu", output="softmax", loss="cross_entropy"),
        train=TrainConfig(lr=0.1, epochs=100),
    )
    _trainer, app = make_app(config=config)

    async def body(pilot: Pilot[None]) -> None:
        table = app.query_one(DataTable)
        cell = str(table.get_cell("0", "input"))
        assert cell.endswith("…")
        assert "test" in str(app.query_one(PredictionPanel).border_subtitle)
        assert "test" in status_text(app)
        assert table.virtual_size.width <= table.scrollable_content_region.width

    drive(app, body)


def test_plot_redraws_only_for_a_new_snapshot() -> None:
    _trainer, app = make_app()

    async def body(pilot: Pilot[None]) -> None:
        plot = app.query_one(LossPanel)
        draws: list[int] = []
        original = plot._draw

        def counting(snapshot: Snapshot, width: int) -> None:
            draws.append(snapshot.step)
            original(snapshot, width)

        plot._draw = counting  # type: ignore[method-assign]
        await pilot.pause(0.5)  # five timer ticks on a paused run
        assert draws == []
        await press(pilot, "n")
        await wait_shown(pilot, app, lambda s: s.step == 4, "step 4")
        await pilot.pause(0.3)
        assert draws == [4]

    drive(app, body)


# -- the pure helpers ------------------------------------------------------------------------------


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


def test_decimate_keeps_ends_and_bounds_the_count() -> None:
    xs = list(range(1, 513))
    ys = [float(x) for x in xs]
    dx, dy = decimate(xs, ys, 60)
    assert len(dx) == 60 and dx[0] == 1 and dx[-1] == 512
    assert dy == [float(x) for x in dx]
    assert decimate(xs[:10], ys[:10], 60) == (xs[:10], ys[:10])


def test_nice_ticks() -> None:
    assert nice_ticks(300, 4) == [0, 100, 200, 300]
    assert nice_ticks(0, 4) == [0]
    assert nice_ticks(7, 5) == [0, 2, 4, 6]


def test_compact_inputs() -> None:
    assert format_inputs((0.0, 1.0)) == " 0.00  1.00"
    assert format_inputs(tuple(float(i) for i in range(64))) == " 0.00  1.00 …"
