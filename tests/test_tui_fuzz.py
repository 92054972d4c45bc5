"""Generated key sequences: no key, in any state, at any moment, ends the monitor but q.

Each case runs the real app on a run in some state (training fast, training slowly with steps of
a few tenths of a second, NaN at step 1, finishing, failing on the training thread, paused from
the start), or on a run file (replayed, or followed while the test appends to it), and sends it
a seeded random sequence drawn from the app's own bindings (except the quit keys) and keys it
has no binding for, in bursts with and without pauses between them, while the terminal is
resized now and then, below the smallest size too. Afterwards the app must still be running and
still answering: the help opens, the loss axis flips, and a key reaches the source and comes
back on the status line (a learning rate key for a trainer, the replay's cursor, a line the
writer appends). Then q ends it cleanly.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
from test_tui import (
    WAIT,
    drive,
    make_app,
    no_trainer_thread,
    preset_config,
    press,
    screen_text,
    wait_for,
    wait_screen,
    wait_shows,
)
from test_tui_runfiles import (
    RUN_V1,
    RUN_V1_SNAPSHOTS,
    encoder_names,
    header_line,
    snapshot_line,
)
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.keys import key_to_character
from textual.pilot import Pilot

from bpmon.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from bpmon.data import Dataset
from bpmon.launch import live_trainer
from bpmon.sources import RunFileSource, Source
from bpmon.trainer import Snapshot, Trainer
from bpmon.tui.app import BpmonApp

# ctrl+q is not among them: Textual quits on it, bpmon says that q quits.
QUIT_KEYS = {"q", "ctrl+c"}
BOUND = sorted(
    {key for binding in Binding.make_bindings(BpmonApp.BINDINGS) for key in binding.key.split(",")}
    - QUIT_KEYS
)
# Keys the app has no binding for, and Textual's own (focus, scrolling, the help's close keys).
UNBOUND = [
    "escape",
    "enter",
    "tab",
    "shift+tab",
    "up",
    "down",
    "left",
    "right",
    "pageup",
    "pagedown",
    "home",
    "end",
    "backspace",
    "delete",
    "f1",
    "ctrl+a",
    "ctrl+l",
    "x",
    "Z",
    "1",
    "0",
    "comma",
    "full_stop",
    "slash",
    "asterisk",
    "equals_sign",
]
SIZES = [(80, 24), (80, 24), (120, 40), (160, 48), (60, 20), (79, 24), (100, 23)]
# Keys that the trainer has to act on (each costs the slow run a snapshot, a restart a network).
TRAINER_KEYS = {
    "space",
    "n",
    "r",
    "a",
    "A",
    "shift+a",
    "plus",
    "minus",
    "b",
    "right_square_bracket",
    "left_square_bracket",
    "i",
    "o",
    "d",
    "m",
    "less_than_sign",
    "greater_than_sign",
}


@dataclass
class Case:
    name: str
    build: Callable[[Path], Source]
    keys: int
    # How much likelier a key the trainer acts on is than one only the UI handles.
    trainer_weight: float = 1.0
    fail: threading.Event | None = None
    kind: Literal["trainer", "replay", "watch"] = "trainer"


def digits_config(hidden: tuple[int, ...]) -> RunConfig:
    return RunConfig(
        data=DataConfig(name="digits", standardize=True),
        model=ModelConfig(hidden=hidden, activation="relu", output="softmax", loss="cross_entropy"),
        train=TrainConfig(lr=0.01, epochs=10**9),
    )


def nan_data() -> Dataset:
    X = np.full((4, 2), np.nan)
    y = np.array([[0.0], [1.0], [1.0], [0.0]])
    for array in (X, y):
        array.flags.writeable = False
    return Dataset("nan", X, y, None, None, "binary", ("0", "1"), ("x1", "x2"))


def failing_trainer(armed: threading.Event) -> Callable[[], Trainer]:
    def on_snapshot(snapshot: Snapshot) -> None:
        if armed.is_set():
            armed.clear()
            raise RuntimeError("a fault on the training thread")

    def build(_: Path) -> Trainer:
        return make_app("relu-bn", steps=None, on_snapshot=on_snapshot)[0]

    return build


# The run file a watch case follows; the test appends a line to it now and then.
WATCHED = encoder_names(2)


def replay_source(_: Path) -> RunFileSource:
    source = RunFileSource(str(RUN_V1), "replay")
    source.open_now()
    return source


def watch_source(folder: Path) -> RunFileSource:
    path = folder / "watched.jsonl"
    path.write_text(header_line(WATCHED, name="watched") + snapshot_line(WATCHED, 1))
    source = RunFileSource(str(path), "watch")
    source.open_now()
    return source


ARMED = threading.Event()
CASES = [
    Case("fast", lambda _: make_app("relu-bn", steps=None)[0], keys=350),
    Case(
        "nan-at-step-1",
        lambda _: live_trainer(preset_config("xor").with_epochs(10**9), "nan", data=nan_data()),
        keys=350,
    ),
    Case("finishes", lambda _: live_trainer(preset_config("xor").with_epochs(40), "xor"), keys=300),
    Case("fails", failing_trainer(ARMED), keys=300, fail=ARMED),
    Case(
        "paused",
        lambda _: live_trainer(preset_config("xor").with_epochs(10**9), "xor", start_paused=True),
        keys=350,
    ),
    # A few tenths of a second a step: keys land while a step is in flight, and before the
    # first one. Fewer of its keys reach the trainer, whose queue would otherwise keep it busy
    # long after the test (a stop waits behind the commands sent before it).
    Case(
        "slow",
        lambda _: live_trainer(digits_config((512, 512)), "slow"),
        keys=360,
        trainer_weight=0.2,
    ),
    Case("replay", replay_source, keys=300, kind="replay"),
    Case("watch", watch_source, keys=300, kind="watch"),
]


def key_sequence(case: Case, seed: int) -> Iterator[str]:
    rng = random.Random(seed)
    keys = BOUND + UNBOUND
    weights = [case.trainer_weight if k in TRAINER_KEYS else 1.0 for k in keys]
    for _ in range(case.keys):
        yield rng.choices(keys, weights)[0]


@pytest.fixture(autouse=True)
def _no_leftover_threads() -> Iterator[None]:
    yield
    deadline = time.monotonic() + 3 * WAIT
    while not no_source_thread() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert no_trainer_thread(), "a bpmon-trainer thread outlived its app"
    assert no_source_thread(), "a bpmon-reader thread outlived its app"


def no_source_thread() -> bool:
    return no_trainer_thread() and not any(t.name == "bpmon-reader" for t in threading.enumerate())


def lr_shown(screen: str, lr: float) -> bool:
    return f" lr {lr:g}\n" in screen


async def close_modals(pilot: Pilot[Any]) -> None:
    """Escape until neither the help nor the findings is open."""
    for _ in range(6):
        screen = screen_text(pilot.app)
        if "bpmon keys" not in screen and "bpmon findings" not in screen:
            return
        await press(pilot, "escape")
        await pilot.pause(0.1)
    raise AssertionError(f"a modal would not close:\n{screen_text(pilot.app)}")


async def trainer_answers(pilot: Pilot[Any], trainer: Trainer) -> None:
    """A learning rate key reaches the trainer, whose answer comes back on the status line."""
    before = trainer.latest()
    await press(pilot, "left_square_bracket")
    await wait_for(
        pilot,
        lambda: trainer.latest().lr != before.lr or trainer.latest().notice_id != before.notice_id,
        "the trainer to take the key",
        timeout=6 * WAIT,
    )
    await wait_screen(
        pilot, lambda s: lr_shown(s, trainer.latest().lr), "the new lr", timeout=3 * WAIT
    )


async def replay_answers(pilot: Pilot[Any]) -> None:
    """The cursor keys move the replay's cursor (home also stops a playing replay)."""
    n = RUN_V1_SNAPSHOTS
    await press(pilot, "home")
    await wait_shows(pilot, f"snapshot 1/{n}", "◆ step 1 ", timeout=3 * WAIT)
    await press(pilot, "right")
    await wait_shows(pilot, f"snapshot 2/{n}", timeout=3 * WAIT)


async def watch_answers(pilot: Pilot[Any], path: Path) -> None:
    """A line the writer appends shows."""
    with path.open("a") as f:
        f.write(snapshot_line(WATCHED, 99999))
    await wait_shows(pilot, "step 99999 ", timeout=3 * WAIT)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_generated_keys_never_end_the_app(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert sum(c.keys for c in CASES) >= 2000
    # s saves the run as a preset file in the working directory.
    monkeypatch.chdir(tmp_path)
    source = case.build(tmp_path)
    app = BpmonApp(source)
    rng = random.Random(case.name)
    watched = tmp_path / "watched.jsonl"

    async def body(pilot: Pilot[Any]) -> None:
        for i, key in enumerate(key_sequence(case, seed=len(case.name))):
            app.post_message(events.Key(key, key_to_character(key)))
            roll = rng.random()
            if roll < 0.02:
                size = Size(*rng.choice(SIZES))
                app.post_message(events.Resize(size, size))
            elif roll < 0.05 and case.fail is not None:
                case.fail.set()
            elif roll < 0.08 and case.kind == "watch":
                with watched.open("a") as f:  # the writer goes on while keys arrive
                    f.write(snapshot_line(WATCHED, 2 + i))
            if roll < 0.75:
                continue  # a burst: the next key comes before this one is handled
            await asyncio.sleep(rng.choice([0, 0.001, 0.005, 0.02, 0.05]))
            assert app.is_running, f"the app ended at key {i} ({key!r})"
        # Still answering: on a screen big enough for the panels, with no modal open,
        await pilot.resize_terminal(100, 30)
        await wait_for(pilot, lambda: app.size == (100, 30), "the new size")
        await close_modals(pilot)
        # (the decision boundary, v, takes the prediction table's place while shown, a run
        # file without predictions shows its figures there, and h turns the bars into the
        # gradient flow over time)
        await wait_screen(
            pilot,
            lambda s: (
                "gradient" in s
                and any(p in s for p in ("predictions", "decision boundary", "this run"))
            ),
            "the panels",
            timeout=3 * WAIT,
        )
        # the help opens and closes,
        await press(pilot, "question_mark")
        await wait_shows(pilot, "bpmon keys")
        await press(pilot, "escape")
        await wait_screen(pilot, lambda s: "bpmon keys" not in s, "the help closed")
        # the findings open and close,
        await press(pilot, "f")
        await wait_shows(pilot, "bpmon findings")
        await press(pilot, "escape")
        await wait_screen(pilot, lambda s: "bpmon findings" not in s, "the findings closed")
        # the loss axis flips,
        scale = "log" if "loss · linear" in screen_text(app) else "linear"
        await press(pilot, "l")
        await wait_shows(pilot, f"loss · {scale} (l)")
        # and a key reaches the source, whose answer comes back on the screen.
        if isinstance(source, Trainer):
            await trainer_answers(pilot, source)
        elif case.kind == "replay":
            await replay_answers(pilot)
        else:
            await watch_answers(pilot, watched)
        await press(pilot, "q")

    drive(app, body)
    assert app.return_code == 0


def test_generated_keys_never_end_three_runs_side_by_side(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same on three columns (a fast run, a paused one, a replay), with the terminal
    resized now and then: afterwards tab still goes round the three, the help opens, and a key
    reaches the active run's trainer."""
    monkeypatch.chdir(tmp_path)
    fast = make_app("relu-bn", steps=None)[0]
    paused = live_trainer(preset_config("xor").with_epochs(10**9), "xor", start_paused=True)
    app = BpmonApp(fast, paused, replay_source(tmp_path))
    rng = random.Random("three")
    case = Case("three", lambda _: fast, keys=400)

    async def body(pilot: Pilot[Any]) -> None:
        for i, key in enumerate(key_sequence(case, seed=3)):
            app.post_message(events.Key(key, key_to_character(key)))
            roll = rng.random()
            if roll < 0.02:
                size = Size(*rng.choice(SIZES))
                app.post_message(events.Resize(size, size))
            if roll < 0.75:
                continue
            await asyncio.sleep(rng.choice([0, 0.001, 0.005, 0.02, 0.05]))
            assert app.is_running, f"the app ended at key {i} ({key!r})"
        await pilot.resize_terminal(120, 40)
        await wait_for(pilot, lambda: app.size == (120, 40), "the new size")
        await close_modals(pilot)
        # The keys sent may still be queued (tab among them): once they are handled, the
        # active run is the one the app says.
        await pilot.pause()
        for _ in range(3):
            nxt = "ABC"[(app.active + 1) % 3]
            await press(pilot, "tab")
            await wait_screen(pilot, lambda s, nxt=nxt: f"▶ {nxt}" in s.splitlines()[0], nxt)
        await press(pilot, "question_mark")
        await wait_shows(pilot, "bpmon keys")
        await press(pilot, "escape")
        await wait_screen(pilot, lambda s: "bpmon keys" not in s, "the help closed")
        while "▶ B" not in screen_text(app).splitlines()[0]:
            await press(pilot, "tab")
            await pilot.pause(0.05)
        # The key reaches B's trainer (a column's status line is too narrow for the lr).
        before = paused.latest()
        await press(pilot, "left_square_bracket")
        await wait_for(
            pilot,
            lambda: (
                (paused.latest().lr, paused.latest().notice_id) != (before.lr, before.notice_id)
            ),
            "B's trainer to take the key",
            timeout=6 * WAIT,
        )
        await press(pilot, "q")

    drive(app, body)
    assert app.return_code == 0
