"""The monitor over a run file (``bpmon replay`` / ``bpmon watch``) and over findings, through
keys and the screen: the replay's cursor keys, a training key on a recorded run, a followed file
that grows, a model of 45 layers with long names, and the findings strip and its modal.

As in ``test_tui``, every test presses keys and waits (polling, with a deadline) until the
screen shows what it should; a run file is written by the test, line by line, with the
``bpmon.runfile`` helpers.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from test_tui import (
    WAIT,
    drive,
    frames,
    make_app,
    no_trainer_thread,
    preset_config,
    press,
    screen_text,
    wait_for,
    wait_screen,
    wait_shows,
)
from textual.app import App, ComposeResult
from textual.pilot import Pilot

from bpmon.config import Thresholds
from bpmon.finding import Finding
from bpmon.launch import live_trainer
from bpmon.runfile import header, layer_record
from bpmon.sources import RunFileSource
from bpmon.telemetry import LayerStats
from bpmon.trainer import Trainer
from bpmon.tui.app import BpmonApp
from bpmon.tui.findings import FindingsStrip, cut, key_advice
from bpmon.tui.gradients import plan_columns, short_name

ROOT = Path(__file__).resolve().parent.parent
RUN_V1 = ROOT / "tests" / "data" / "run-v1.jsonl"
RUN_V1_SNAPSHOTS = 11


# -- run files -------------------------------------------------------------------------------------


def encoder_names(blocks: int = 15) -> list[str]:
    """45 layer names as a PyTorch transformer's: ``encoder.layers.12.attn.out_proj``."""
    names = []
    for i in range(blocks):
        prefix = f"encoder.layers.{i}"
        names += [f"{prefix}.attn.out_proj", f"{prefix}.mlp.fc1", f"{prefix}.mlp.fc2"]
    return names


def layer_stats(names: Sequence[str], step: int) -> list[LayerStats]:
    """Telemetry that does not come from bpmon's trainer: GELU after each fc1 (12% of its units
    dead), no activation known elsewhere, gradients from 1e-7 at the input to 1e-1 at the end."""
    layers = []
    for i, name in enumerate(names):
        fc1 = name.endswith("fc1")
        grad = 10 ** (-7 + 6 * i / max(1, len(names) - 1)) * (1 + step / 1000)
        layers.append(
            LayerStats(
                name=name,
                fan_in=512,
                fan_out=2048 if fc1 else 512,
                grad_norm=grad,
                bias_grad_norm=grad / 10,
                weight_norm=20.0,
                update_ratio=1e-3,
                delta_norm=grad,
                health=0.12 if fc1 else 0.0,
                health_label="dead" if fc1 else "",
                status="vanishing" if grad < 1e-3 else "healthy",
                activation="gelu" if fc1 else None,
            )
        )
    return layers


def header_line(names: Sequence[str], name: str = "encoder-45") -> str:
    record = header(
        source="torch",
        name=name,
        layers=[
            {
                "name": x,
                "kind": "Linear",
                "shape": [512, 2048 if x.endswith("fc1") else 512],
                "fan_in": 512,
                "fan_out": 2048 if x.endswith("fc1") else 512,
                "activation": "gelu" if x.endswith("fc1") else None,
            }
            for x in names
        ],
        thresholds=Thresholds(),
        architecture=f"{len(names)} layers",
        switches=f"{len(names)} layers torch",
        epochs=None,
        started=0.0,
    )
    return json.dumps(record) + "\n"


def snapshot_line(names: Sequence[str], step: int, loss: float | None = None) -> str:
    record = {
        "step": step,
        "epoch": None,
        "time": step / 100,
        "loss": 3.0 / math.sqrt(step) if loss is None else loss,
        "accuracy": None,
        "test_accuracy": None,
        "lr": 3e-4,
        "state": "running",
        "run_id": 0,
        "layers": [layer_record(x) for x in layer_stats(names, step)],
        "diverged_step": None,
        "diverged_layer": None,
    }
    return json.dumps(record) + "\n"


def write_encoder_run(path: Path, steps: Sequence[int] = (100, 200, 300)) -> Path:
    names = encoder_names()
    path.write_text(header_line(names) + "".join(snapshot_line(names, s) for s in steps))
    return path


def run_file_app(path: Path | str, mode: str = "replay") -> BpmonApp:
    source = RunFileSource(str(path), "replay" if mode == "replay" else "watch")
    source.open_now()
    return BpmonApp(source)


def no_reader_thread() -> bool:
    return not any(t.name in ("bpmon-reader", "bpmon-trainer") for t in threading.enumerate())


@pytest.fixture(autouse=True)
def _no_leftover_threads() -> Iterator[None]:
    yield
    deadline = time.monotonic() + WAIT
    while not no_reader_thread() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert no_reader_thread(), "a reader or trainer thread outlived its app"
    assert no_trainer_thread()


def status_of(screen: str) -> str:
    return "\n".join(screen.splitlines()[:2])


def loss_panel(screen: str) -> list[str]:
    """The loss panel's part of each line (the left box of the lower row at 80 columns)."""
    lines = screen.splitlines()
    top = next(i for i, line in enumerate(lines) if "loss · " in line)
    bottom = next(i for i in range(top + 1, len(lines)) if lines[i].startswith("╰"))
    return [line[: line.index("╮╭") + 1 if "╮╭" in line else 38] for line in lines[top:bottom]]


def marker_column(screen: str) -> int | None:
    """The column of the replay cursor's vertical line in the plot: a column of "│" at least
    three rows tall inside the loss panel (the frame's own sides excluded)."""
    rows = loss_panel(screen)[2:-2]
    width = min(len(row) for row in rows)
    for col in range(8, width - 2):
        run = best = 0
        for row in rows:
            run = run + 1 if row[col] in "│◆" else 0
            best = max(best, run)
        if best >= 3:
            return col
    return None


# -- replay ----------------------------------------------------------------------------------------


def test_replay_keys_move_the_cursor_and_the_marker() -> None:
    app = run_file_app(RUN_V1)
    n = RUN_V1_SNAPSHOTS

    async def body(pilot: Pilot[Any]) -> None:
        screen = await wait_shows(pilot, f"snapshot {n}/{n}", "epoch 400/400", "q quit")
        assert re.match(r"\s*(REPLAY|ENDED \(finished\))\s+relu-bn", screen.splitlines()[0])
        # The replay's keys in the footer, the training keys not.
        footer = screen.splitlines()[-1]
        assert "←→ snapshot" in footer and "space play" in footer and "<> speed" in footer
        assert "restart" not in footer and "depth" not in footer
        await press(pilot, "home")
        screen = await wait_shows(pilot, f"snapshot 1/{n}", "◆ step 1", "epoch 1/400")
        await press(pilot, "right", "right")
        screen = await wait_shows(pilot, f"snapshot 3/{n}", "◆ step 80", "epoch 80/400")
        at_80 = marker_column(screen)
        assert at_80 is not None, screen
        await press(pilot, "left")
        await wait_shows(pilot, f"snapshot 2/{n}", "◆ step 40", "epoch 40/400")
        await press(pilot, "end")
        screen = await wait_shows(pilot, f"snapshot {n}/{n}", "◆ step 400")
        at_400 = marker_column(screen)
        assert at_400 is not None and at_400 > at_80, "the line moves right with the cursor"
        # Speed: 2/s, then x2 steps up the ladder (5/s), /2 twice down (1/s).
        assert "at 2/s" in status_of(screen)
        await press(pilot, "greater_than_sign")
        await wait_shows(pilot, "at 5/s")
        await press(pilot, "less_than_sign", "less_than_sign")
        await wait_shows(pilot, "at 1/s")
        # Space plays (from the start, at the end) and pauses.
        await press(pilot, "greater_than_sign")
        await wait_shows(pilot, "at 2/s")
        await press(pilot, "space")
        screen = await wait_screen(
            pilot,
            lambda s: "playing at 2/s" in s and f"snapshot {n}/{n}" not in s,
            "playing from the start",
        )
        await press(pilot, "space")
        screen = await wait_shows(pilot, "at 2/s")
        shown = re.search(rf"snapshot (\d+)/{n}", screen)
        assert shown is not None
        await frames(pilot, 6)
        assert f"snapshot {shown.group(1)}/{n}" in screen_text(app), "paused stays put"

    drive(app, body)


def test_a_training_key_on_a_replay_says_so_once() -> None:
    app = run_file_app(RUN_V1)

    async def body(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, f"snapshot {RUN_V1_SNAPSHOTS}/")
        await press(pilot, "a", "a")
        await wait_shows(pilot, "This is a recorded run")
        await press(pilot, "plus", "right_square_bracket", "r", "n", "b")
        await frames(pilot)
        screen = screen_text(app)
        assert screen.count("This is a recorded run") == 1, screen
        # The replay's own keys still act.
        await press(pilot, "home")
        await wait_shows(pilot, f"snapshot 1/{RUN_V1_SNAPSHOTS}")

    drive(app, body)


def test_help_on_a_replay_lists_its_keys_and_not_the_training_keys() -> None:
    app = run_file_app(RUN_V1)

    async def body(pilot: Pilot[Any]) -> None:
        await press(pilot, "question_mark")
        screen = await wait_shows(pilot, "bpmon keys", "One snapshot on")
        for key in ("←", "→", "home", "end", "space", "<", ">", "f", "l", "?", "q"):
            assert re.search(rf"│\s+{re.escape(key)}\s", screen), key
        assert "Learning rate" not in screen and "Restart" not in screen
        assert "Play / pause the replay" in screen
        assert "its writer goes on" in screen, "q leaves the writer alone"

    drive(app, body, size=(100, 30))


def test_q_leaves_a_watched_file_as_it_was(tmp_path: Path) -> None:
    path = write_encoder_run(tmp_path / "run.jsonl")
    before = path.read_bytes()
    app = run_file_app(path, "watch")

    async def body(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "WATCHING", "step 300")
        await press(pilot, "q")

    drive(app, body)
    assert app.return_code == 0
    assert path.read_bytes() == before


# -- watch -----------------------------------------------------------------------------------------


def test_watch_shows_the_lines_a_writer_appends(tmp_path: Path) -> None:
    names = encoder_names(2)
    path = tmp_path / "growing.jsonl"
    path.write_text(header_line(names, name="growing") + snapshot_line(names, 10))
    app = run_file_app(path, "watch")

    def append(text: str) -> None:
        with path.open("a") as f:
            f.write(text)

    async def body(pilot: Pilot[Any]) -> None:
        screen = await wait_shows(pilot, "WATCHING", "growing", "step 10 ")
        assert "epoch" not in status_of(screen), "the file does not know its epochs"
        append(snapshot_line(names, 20))
        await wait_shows(pilot, "step 20 ")
        # Plain digits (a benchmark looks for them), however large the step.
        append(snapshot_line(names, 12345))
        await wait_shows(pilot, "step 12345 ")
        append("{not json\n")
        append(snapshot_line(names, 12400))
        screen = await wait_shows(pilot, "step 12400 ", "1 corrupt line skipped (line 5)")
        assert "1 corrupt line skipped" in screen.splitlines()[2], "the status line's third"
        append(json.dumps({"event": "end", "state": "finished"}) + "\n")
        screen = await wait_shows(pilot, "ENDED (finished)", "q quit")
        # Watching has no cursor: neither its keys nor the training keys are in the footer.
        footer = screen.splitlines()[-1]
        assert "snapshot" not in footer and "pause" not in footer and "q quit" in footer
        await press(pilot, "space")
        await wait_shows(pilot, "This is a recorded run")

    drive(app, body)


def test_watch_waits_for_a_file_that_does_not_exist_yet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = encoder_names(1)
    monkeypatch.chdir(tmp_path)
    path = Path("later.jsonl")
    app = run_file_app(path, "watch")

    async def body(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "WATCHING", "waiting for later.jsonl to appear")
        path.write_text(header_line(names, name="later") + snapshot_line(names, 7))
        screen = await wait_shows(pilot, "later", "step 7 ")
        assert "to appear" not in screen

    drive(app, body)


# -- many layers, long names -----------------------------------------------------------------------


GRADIENT_ROW = re.compile(r"│ (…\S+|\S+) +(█|▏|▎|▍|▌|▋|▊|▉|·)")


def gradient_rows(screen: str) -> list[str]:
    """The layer names of the gradient rows on the screen."""
    return [m.group(1) for line in screen.splitlines() if (m := GRADIENT_ROW.match(line))]


async def keep_pressing(
    pilot: Pilot[Any], key: str, ok: Callable[[str], bool], times: int = 30
) -> str:
    """Press ``key`` (a scroll key, which animates) until the screen satisfies ``ok``."""
    for _ in range(times):
        screen = screen_text(pilot.app)
        if ok(screen):
            return screen
        await press(pilot, key)
        await pilot.pause(0.1)
    raise AssertionError(f"{times} x {key} and still not there:\n{screen_text(pilot.app)}")


def test_45_layers_with_long_names_fit_80x24_and_scroll(tmp_path: Path) -> None:
    path = write_encoder_run(tmp_path / "encoder.jsonl")
    app = run_file_app(path)

    def panel_lines(screen: str) -> list[str]:
        lines = screen.splitlines()
        top = next(i for i, line in enumerate(lines) if "╭─ gradients" in line)
        return lines[top + 1 : top + 10]

    async def body(pilot: Pilot[Any]) -> None:
        screen = await wait_shows(pilot, "encoder-45", "snapshot 3/3", "step 300", "q quit")
        lines = screen.splitlines()
        assert len(lines) == 24 and all(len(line) <= 80 for line in lines)
        # The 15 blocks under their stack, opened since one line would leave the panel empty;
        # the rest are below, and the panel says how many.
        assert "▾ encoder.layers" in screen and "▸ 0 " in screen and "9 more ↓" in screen
        header = panel_lines(screen)[0]
        assert "layer" in header and "norm" in header
        # Every group line is as wide as the header: the columns stay aligned.
        rows = [line for line in panel_lines(screen) if "↕" in line]
        assert len({line.index("↕") for line in rows}) == 1, rows
        # pgdn (no focus first) goes on to the last block, under the same header.
        screen = await keep_pressing(pilot, "pagedown", lambda s: "▸ 14 " in s)
        assert panel_lines(screen)[0] == header
        assert "▸ 0 " not in screen
        # enter opens the block under the cursor: its rows, named within the block.
        await keep_pressing(pilot, "down", lambda s: "above ↑" in s and "more ↓" not in s)
        await press(pilot, "enter")
        screen = await wait_shows(pilot, "▾ 14", "attn.out_proj", "mlp.fc1")
        assert "encoder.layers.14" not in screen.split("╭─ loss")[0]
        # pgup and up go back to the stack's line.
        await keep_pressing(pilot, "pageup", lambda s: "▾ encoder.layers" in s)

    drive(app, body)


def test_45_layers_at_120x40_show_the_activation(tmp_path: Path) -> None:
    path = write_encoder_run(tmp_path / "encoder.jsonl")
    app = run_file_app(path)

    async def body(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "▾ encoder.layers", "snapshot 3/3")
        await press(pilot, "down", "down", "enter")
        screen = await wait_shows(pilot, "▾ 0 ", "mlp.fc1")
        header = next(line for line in screen.splitlines() if "in→out" in line)
        assert re.search(r"status\s+act\s+health", header)
        fc1 = next(line for line in screen.splitlines() if "mlp.fc1" in line)
        assert re.search(r"512→2048 .* gelu\s+dead  12%", fc1)

    drive(app, body, size=(120, 40))


def test_the_activation_shows_only_where_there_is_room() -> None:
    for size, shown in (((80, 24), False), ((120, 40), True)):
        _trainer, app = make_app("relu-bn")

        async def body(pilot: Pilot[Any], shown: bool = shown) -> None:
            screen = await wait_shows(pilot, "layer0", "layer3")
            row = next(line for line in screen.splitlines() if "│ layer0 " in line)
            assert ("relu" in row) is shown, row

        drive(app, body, size=size)


def test_column_plan_and_short_names() -> None:
    layers = layer_stats(encoder_names(), step=1)
    at_80 = plan_columns(75, layers)
    assert (at_80.name, at_80.fans, at_80.activation) == (18, 0, 0)
    assert at_80.width == 75
    wide = plan_columns(115, layers)
    assert wide.name == len("encoder.layers.14.attn.out_proj") and wide.fans and wide.activation
    assert wide.width <= 115
    bpmon = plan_columns(75, layer_stats(["layer0", "layer1"], step=1))
    assert (bpmon.name, bpmon.fans) == (7, 7)
    assert short_name("model.layers.17.mlp.fc1", 18) == "…layers.17.mlp.fc1"
    assert short_name("layer0", 7) == "layer0"
    assert short_name("abc", 1) == "…"


# -- findings --------------------------------------------------------------------------------------


def vanishing_trainer(steps: int = 300) -> Trainer:
    """The sigmoid-vanishing preset after ``steps`` steps, a snapshot published at every step
    (interval 0), so that the diagnosis has raised its finding and the numbers are the seed's."""
    trainer = live_trainer(
        preset_config("sigmoid-vanishing"), preset="sigmoid-vanishing", interval=0
    )
    assert trainer.run(max_steps=steps).findings, "the preset raises a finding"
    return trainer


def test_findings_strip_and_modal() -> None:
    trainer = vanishing_trainer()
    app = BpmonApp(trainer)

    async def body(pilot: Pilot[Any]) -> None:
        screen = await wait_shows(pilot, "▲ vanishing: layer0 gets", "try ReLU (a)")
        lines = screen.splitlines()
        assert lines[2].startswith(" ▲ vanishing: "), "one line under the status line"
        assert all(len(line) <= 80 for line in lines)
        await press(pilot, "enter")
        screen = await wait_shows(pilot, "bpmon findings", "layers: layer0, layer1", "press a")
        assert "try ReLU (a) or batch-norm (b)" in screen
        # The finding's key applies it from the modal: the next activation, tanh.
        await press(pilot, "a")
        await wait_for_switches(pilot, trainer, "64-32-32-32-32-32-32-10 tanh")
        await press(pilot, "escape")
        await wait_screen(pilot, lambda s: "bpmon findings" not in s, "the modal closed")
        # f opens and closes it too.
        await press(pilot, "f")
        await wait_shows(pilot, "bpmon findings")
        await press(pilot, "f")
        await wait_screen(pilot, lambda s: "bpmon findings" not in s, "closed by f")

    drive(app, body)


async def wait_for_switches(pilot: Pilot[Any], trainer: Trainer, switches: str) -> None:
    deadline = time.monotonic() + WAIT
    while trainer.latest().switches != switches:
        assert time.monotonic() < deadline, f"timed out waiting for {switches}"
        await pilot.pause(0.02)


def test_no_findings_take_no_room() -> None:
    _trainer, app = make_app("relu-bn")

    async def body(pilot: Pilot[Any]) -> None:
        screen = await wait_shows(pilot, "PAUSED", "layer3")
        assert screen.splitlines()[2].startswith("╭─ gradients")
        await press(pilot, "enter")
        await wait_shows(pilot, "bpmon findings", "No findings")
        await press(pilot, "escape")
        await wait_screen(pilot, lambda s: "bpmon findings" not in s, "the modal closed")

    drive(app, body)


def test_enter_under_the_help_closes_the_help() -> None:
    _trainer, app = make_app("relu-bn")

    async def body(pilot: Pilot[Any]) -> None:
        await press(pilot, "question_mark")
        await wait_shows(pilot, "bpmon keys")
        await press(pilot, "enter")
        screen = await wait_screen(pilot, lambda s: "bpmon keys" not in s, "the help closed")
        assert "bpmon findings" not in screen

    drive(app, body)


FINDINGS = (
    Finding(
        "divergence",
        "error",
        ("layer2",),
        "the loss diverged at step 3 in layer2 (loss nan)",
        "lower the learning rate ([) and restart (r)",
        "[",
    ),
    Finding(
        "vanishing",
        "warning",
        ("layer0", "layer1"),
        "layer0 gets 1/84,000 of the output layer's gradient; 97% of its sigmoid units are "
        "saturated",
        "try ReLU (a) or batch-norm (b)",
        "a",
    ),
    Finding(
        "dead ReLUs",
        "warning",
        ("layer1",),
        "61% of layer1's units never fire",
        "lower the learning rate ([), or try leaky_relu (a) or batch-norm (b)",
        "[",
    ),
    Finding("plateau", "info", (), "the loss improved 0.0% over the last 900 steps", "wait", None),
    Finding("overfitting", "info", (), "train 99% vs test 80%", "fewer layers (-)", "-"),
)


def test_the_strip_has_a_line_per_finding_and_counts_what_does_not_fit() -> None:
    base = make_app("xor")[0].latest()

    class Show(App[None]):
        CSS_PATH = BpmonApp.CSS_PATH

        def compose(self) -> ComposeResult:
            yield FindingsStrip()

    app = Show()

    async def body(pilot: Pilot[Any]) -> None:
        strip = app.query_one(FindingsStrip)
        strip.snapshot = replace(base, findings=FINDINGS[:2])
        screen = await wait_shows(pilot, "✖ divergence:", "▲ vanishing:")
        lines = screen.splitlines()
        assert lines[0].startswith(" ✖ divergence: the loss diverged at step 3")
        assert lines[0].endswith("— lower the learning rate ([)")
        assert "— try ReLU (a)" in lines[1] and len(lines[1]) <= 80
        assert strip.region.height == 2
        strip.snapshot = replace(base, findings=FINDINGS)
        screen = await wait_shows(pilot, "+3 more: enter lists them all")
        assert strip.region.height == 3
        strip.max_rows = 6
        screen = await wait_shows(pilot, "● overfitting")
        assert "more" not in screen.splitlines()[-1] and strip.region.height == 5
        strip.snapshot = replace(base, findings=())
        await wait_screen(pilot, lambda s: not s.strip(), "no strip")
        await wait_for(pilot, lambda: strip.region.height == 0, "no room taken")

    drive(app, body)


def test_finding_text_helpers() -> None:
    assert key_advice(FINDINGS[1]) == "try ReLU (a)"
    assert key_advice(FINDINGS[2]) == "lower the learning rate ([)"
    assert key_advice(FINDINGS[0]) == "lower the learning rate ([)"
    assert key_advice(FINDINGS[3]) == "wait"
    # Never half a word, nor half a number ("1/84,00…" would read as 8,400).
    assert cut("layer0 gets 1/84,000 of the output", 20) == "layer0 gets…"
    assert cut("layer0 gets 1/84,000 of the output", 21) == "layer0 gets 1/84,000…"
    assert cut("short", 20) == "short"
