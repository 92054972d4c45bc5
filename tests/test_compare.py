"""Two runs side by side (``--compare``): the command line, headless and JSON output, exit codes,
and the monitor's keys (``tab`` moves them; a key that changes a run says which one).

The monitor tests drive :class:`BpmonApp` with two columns the way :mod:`test_tui` drives one:
keys in, the screen (toasts included) and the trainers' public ``latest()`` snapshots out.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_cli import DIVERGING_TOML, bpmon, one_line_error, strict_json, write
from test_tmux import TMUX, session
from test_tui import (
    drive,
    no_trainer_thread,
    preset_config,
    press,
    wait_for,
    wait_latest,
    wait_screen,
    wait_shows,
)
from textual.pilot import Pilot

from bpmon.config import HIDDEN_ACTIVATIONS, MIN_DEPTH, ActivationName
from bpmon.launch import live_trainer
from bpmon.trainer import Trainer
from bpmon.tui.app import BpmonApp
from bpmon.tui.compare import changes

EPOCHS = "20"
# Wide enough for a toast to hold an announcement on one line.
WIDE = (160, 48)


def headless(*args: str, cwd: Path) -> tuple[int, list[str], str]:
    proc = bpmon(*args, "--headless", cwd=cwd)
    return proc.returncode, proc.stdout.splitlines(), proc.stderr


def without_speed(summary: dict[str, Any]) -> dict[str, Any]:
    """A summary less its steps per second: the one number that depends on the machine."""
    assert summary["steps_per_second"] > 0
    return {k: v for k, v in summary.items() if k != "steps_per_second"}


# -- the command line ----------------------------------------------------------------------------


def test_help_says_what_compare_does_and_that_the_overrides_apply_to_every_run(
    tmp_path: Path,
) -> None:
    proc = bpmon("--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    assert "--compare PRESET" in text
    assert "repeat for up to 3 (runs B, C, D)" in text
    assert "the overrides and --speed apply to every run" in text
    assert "not with --record or a CSV file" in text


def test_headless_compare_prints_both_summaries_each_with_its_findings(tmp_path: Path) -> None:
    status, lines, stderr = headless(
        "--preset", "xor", "--compare", "relu-bn", "--epochs", EPOCHS, cwd=tmp_path
    )
    assert status == 0, stderr
    assert stderr == ""
    a, b = lines.index("== run A: xor =="), lines.index("== run B: relu-bn ==")
    assert a == 0 < b
    for part in (lines[a:b], lines[b:]):
        assert part[1].startswith("Epoch 2, Loss: ")
        assert sum(line.startswith("Final loss: ") for line in part) == 1
        assert sum(line.startswith("Findings") for line in part) == 1
    # Each part is what the single run prints, line for line.
    for preset, part in (("xor", lines[a + 1 : b - 1]), ("relu-bn", lines[b + 1 :])):
        single_status, single, _ = headless("--preset", preset, "--epochs", EPOCHS, cwd=tmp_path)
        assert single_status == 0
        assert part == single


def test_json_is_the_two_single_run_objects(tmp_path: Path) -> None:
    args = ("--epochs", EPOCHS, "--json")
    status, lines, stderr = headless(
        "--preset", "sigmoid-vanishing", "--compare", "relu-bn", *args, cwd=tmp_path
    )
    assert status == 0, stderr
    document = strict_json(lines[-1])
    assert list(document) == ["runs"]
    runs = document["runs"]
    assert [run["preset"] for run in runs] == ["sigmoid-vanishing", "relu-bn"]
    for preset, run in zip(("sigmoid-vanishing", "relu-bn"), runs, strict=True):
        _, single, _ = headless("--preset", preset, *args, cwd=tmp_path)
        assert without_speed(run) == without_speed(strict_json(single[-1]))
    # The findings are there, as the single run's: sigmoid-vanishing raises vanishing.
    assert "vanishing" in [f["rule"] for f in runs[0]["findings"]]
    assert set(runs[0]["findings"][0]) == {
        *("rule", "severity", "layers", "evidence", "advice", "key", "actions", "facts")
    }


def test_json_is_every_run_s_object_and_the_text_names_each_run(tmp_path: Path) -> None:
    """Three runs: a heading per run, in order, and ``{"runs": [a, b, c]}``."""
    presets = ("xor", "relu-bn", "sigmoid-vanishing")
    compare = [x for name in presets[1:] for x in ("--compare", name)]
    status, lines, stderr = headless(
        "--preset", presets[0], *compare, "--epochs", EPOCHS, "--json", cwd=tmp_path
    )
    assert status == 0, stderr
    headings = [line for line in lines if line.startswith("== run ")]
    assert headings == [f"== run {x}: {p} ==" for x, p in zip("ABC", presets, strict=True)]
    assert [run["preset"] for run in strict_json(lines[-1])["runs"]] == list(presets)


def test_overrides_apply_to_both_runs(tmp_path: Path) -> None:
    status, lines, stderr = headless(
        "--preset", "xor", "--compare", "relu-bn", "--epochs", "3", "--seed", "7",
        "--activation", "tanh", "--no-batchnorm", "--json", cwd=tmp_path,
    )  # fmt: skip
    assert status == 0, stderr
    for run in json.loads(lines[-1])["runs"]:
        assert (run["epochs"], run["seed"], run["activation"], run["batchnorm"]) == (
            3,
            7,
            "tanh",
            False,
        )


@pytest.mark.parametrize("diverging_first", [True, False], ids=["A-diverges", "B-diverges"])
def test_the_exit_status_is_the_worse_of_the_two(tmp_path: Path, diverging_first: bool) -> None:
    preset = str(write(tmp_path / "diverging.toml", DIVERGING_TOML))
    pair = (preset, "relu-bn") if diverging_first else ("relu-bn", preset)
    status, lines, stderr = headless(
        "--preset", pair[0], "--compare", pair[1], "--json", cwd=tmp_path
    )
    assert status == 1
    letter = "A" if diverging_first else "B"
    line = one_line_error(stderr)
    assert re.fullmatch(
        rf"bpmon: run {letter} \(diverging\) diverged at step \d+ in layer\d .*", line
    )
    runs = json.loads(lines[-1])["runs"]
    assert [run["diverged"] for run in runs] == [diverging_first, not diverging_first]


def test_both_diverging_say_so_for_each(tmp_path: Path) -> None:
    preset = str(write(tmp_path / "diverging.toml", DIVERGING_TOML))
    status, _, stderr = headless("--preset", preset, "--compare", preset, cwd=tmp_path)
    assert status == 1
    assert "Traceback" not in stderr
    assert [line.split(" diverged")[0] for line in stderr.splitlines()] == [
        "bpmon: run A (diverging)",
        "bpmon: run B (diverging)",
    ]


def bad_compare_cases(tmp_path: Path) -> list[tuple[list[str], str]]:
    broken = write(tmp_path / "broken.toml", 'description = "x"\n[model\n')
    bad_value = write(tmp_path / "badlr.toml", 'description = "x"\n[train]\nlr = -1\n')
    (tmp_path / "folder").mkdir()
    csv = write(tmp_path / "data.csv", "a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n")
    return [
        (["--compare", "nope"], "bpmon: --compare: unknown preset 'nope'; available: "),
        (["--compare", "missing.toml"], "bpmon: missing.toml: preset file not found"),
        (["--compare", str(broken)], f"bpmon: {broken}:"),
        (["--compare", str(bad_value)], f"bpmon: {bad_value}: train.lr = -1"),
        (["--compare", "folder"], "bpmon: folder: is a directory"),
        (["--compare", "relu-bn", "--record", "run.jsonl"], "bpmon: --record run.jsonl: one run"),
        (["--compare", "relu-bn", "--save-preset", "p.toml"], "bpmon: --save-preset p.toml: "),
        (["--compare", "relu-bn", "--depth", "13"], "bpmon: error: argument --depth"),
        ([str(csv), "--compare", "relu-bn"], "bpmon: --compare relu-bn: compares presets"),
        (
            [*("--compare", "xor") * 3, "--compare", "relu-bn"],
            "bpmon: --compare relu-bn: at most 3 runs beside the first (A to D)",
        ),
    ]


def test_a_bad_compare_value_is_one_line_and_exit_2(tmp_path: Path) -> None:
    for args, start in bad_compare_cases(tmp_path):
        proc = bpmon(*args, "--headless", cwd=tmp_path)
        assert proc.returncode == 2, (args, proc.stderr)
        assert one_line_error(proc.stderr).startswith(start), (args, proc.stderr)
        assert proc.stdout == "", args
        # Nothing was written: the refusals come before either run starts.
        assert not (tmp_path / "run.jsonl").exists()
        assert not (tmp_path / "p.toml").exists()


def test_an_override_the_compared_preset_cannot_take_names_the_flag(tmp_path: Path) -> None:
    # relu-bn's output is identity + mse: --activation applies to its hidden layers, fine; a
    # preset whose network the override breaks is refused naming the flag, as for --preset.
    deep = write(tmp_path / "deep.toml", 'description = "d"\n[model]\nhidden = [4, 4, 4]\n')
    proc = bpmon("--preset", "xor", "--compare", str(deep), "--depth", "0", cwd=tmp_path)
    assert proc.returncode == 2
    assert "--depth" in one_line_error(proc.stderr)


# -- what a key did, from a run's snapshots -------------------------------------------------------


def paused(name: str, steps: int = 3) -> Trainer:
    trainer = live_trainer(preset_config(name).with_epochs(10**9), preset=name)
    trainer.run(max_steps=steps)
    return trainer


RELU_BN = paused("relu-bn").latest()
"""A snapshot of relu-bn (activation relu, 3 hidden layers, batch-norm, lr 0.01)."""


def test_changes_names_what_differs_and_nothing_else() -> None:
    trainer = paused("relu-bn")
    before = trainer.latest()
    assert changes(None, before) == []
    assert changes(before, before) == []
    stepped = trainer.run(max_steps=4)
    assert changes(before, stepped) == ["one step, to step 4"]


@settings(max_examples=60, deadline=None)
@given(
    activation=st.sampled_from(HIDDEN_ACTIVATIONS),
    depth=st.integers(MIN_DEPTH, 4),
    batchnorm=st.booleans(),
    lr=st.sampled_from([0.01, 0.02, 0.5]),
    restarted=st.booleans(),
)
def test_changes_names_exactly_the_switches_that_changed(
    activation: ActivationName, depth: int, batchnorm: bool, lr: float, restarted: bool
) -> None:
    old = RELU_BN
    assert old.config is not None
    config = (
        old.config.with_activation(activation)
        .with_depth(depth)
        .with_batchnorm(batchnorm)
        .with_lr(lr)
    )
    new = replace(old, config=config, lr=lr, run_id=old.run_id + restarted)
    said = changes(old, new)
    expected = {
        "activation": activation != old.config.model.activation,
        "hidden layers": depth != old.config.model.depth,
        "batch-norm": batchnorm != old.config.model.batchnorm,
        "learning rate": lr != old.lr,
        "restarted": restarted,
    }
    if not any(expected.values()):
        assert said == []
        return
    assert len(said) == 1
    for words, changed in expected.items():
        assert (words in said[0]) == changed, (words, said)


# -- the monitor ----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _both_threads_end() -> Any:
    yield
    assert no_trainer_thread() or wait_threads(), "a bpmon-trainer thread outlived its app"


def wait_threads() -> bool:
    import time

    deadline = time.monotonic() + 10
    while not no_trainer_thread():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def compare_app() -> tuple[Trainer, Trainer, BpmonApp]:
    a, b = paused("xor"), paused("relu-bn")
    return a, b, BpmonApp(a, b)


def focused_id(app: BpmonApp) -> str | None:
    return None if app.focused is None else app.focused.id


def title_line(screen: str) -> str:
    return screen.splitlines()[0]


def test_tab_moves_the_keys_and_each_key_says_which_run_it_changed() -> None:
    a, b, app = compare_app()

    async def body(pilot: Pilot[Any]) -> None:
        screen = await wait_shows(pilot, "A ━━ xor", "B ━━ relu-bn")
        assert "▶ A" in title_line(screen) and "▶ B" not in title_line(screen)
        # Both threads run (each trainer its own), both paused at step 3.
        await wait_for(pilot, lambda: a.alive and b.alive, "both trainers started")
        await press(pilot, "a")
        await wait_shows(pilot, "run A (xor): activation sigmoid → tanh, restarted")
        await press(pilot, "space")
        await wait_latest(pilot, a, lambda s: s.state == "paused", "A paused")
        await wait_shows(pilot, "run A (xor): paused")
        assert b.latest().run_id == 0 and b.latest().step == 3, "B untouched by A's keys"

        await press(pilot, "tab")
        screen = await wait_screen(pilot, lambda s: "▶ B" in title_line(s), "B active")
        assert "▶ A" not in title_line(screen)
        await press(pilot, "b")
        await wait_shows(pilot, "run B (relu-bn): batch-norm off, restarted")
        await press(pilot, "right_square_bracket")
        await wait_shows(pilot, "run B (relu-bn): learning rate 0.01 → 0.02")
        snap_a = a.latest()
        assert snap_a.config is not None
        assert (snap_a.config.model.activation, snap_a.lr, snap_a.state) == (
            "tanh",
            pytest.approx(preset_config("xor").train.lr),
            "paused",
        ), "A untouched by B's keys"

        await press(pilot, "tab")
        await wait_screen(pilot, lambda s: "▶ A" in title_line(s), "A active again")
        step = snap_a.step
        await press(pilot, "n")
        await wait_latest(pilot, a, lambda s: s.step == step + 1, "A stepped")
        await wait_shows(pilot, f"run A (xor): one step, to step {step + 1}")
        assert b.latest().config is not None and not b.latest().config.model.batchnorm

    drive(app, body, size=WIDE)


def test_a_refused_key_says_which_run_refused_it() -> None:
    a, _, app = compare_app()
    assert preset_config("xor").model.depth == MIN_DEPTH

    async def body(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "A ━━ xor")
        await press(pilot, "minus")
        screen = await wait_shows(pilot, "run A (xor): key -")
        assert "run B" not in screen
        assert a.latest().run_id == 0

    drive(app, body, size=WIDE)


def test_v_says_the_boundary_is_for_one_run_and_neither_trainer_draws_one() -> None:
    a, b, app = compare_app()

    async def body(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "A ━━ xor")
        await press(pilot, "v")
        await wait_shows(pilot, "not with --compare")
        await press(pilot, "n")
        await wait_latest(pilot, a, lambda s: s.step == 4, "A stepped")
        assert a.latest().boundary is None and b.latest().boundary is None

    drive(app, body, size=WIDE)


def test_tab_moves_the_focus_with_the_keys_and_help_says_what_it_does() -> None:
    _, _, app = compare_app()

    async def body(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "A ━━ xor")
        # Focus is not cycled through the widgets: it goes to the active run's gradient rows,
        # so that the scroll keys follow the other keys.
        await wait_for(pilot, lambda: focused_id(app) == "gradients-a", "A's rows focused")
        await press(pilot, "tab")
        await wait_screen(pilot, lambda s: "▶ B" in title_line(s), "B active")
        await wait_for(pilot, lambda: focused_id(app) == "gradients-b", "B's rows focused")
        await press(pilot, "tab")
        await wait_for(pilot, lambda: focused_id(app) == "gradients-a", "A's rows again")
        await press(pilot, "tab", "question_mark")
        await wait_shows(pilot, "bpmon keys", "The keys act on run B (relu-bn)")
        # At 80x24 the list is longer than the screen: the end of it is a scroll away.
        await press(pilot, "end")
        screen = await wait_shows(pilot, "Move the keys to the next run", "Focus a panel")
        assert re.search(r"│\s+tab\s+Move the keys to the next run", screen), screen
        assert "Focus the next panel" not in screen
        assert re.search(r"│\s+shift\+tab\s+Focus a panel", screen), screen
        assert "Quit (stops every training thread)" in screen
        # Whole at 80 columns: a line longer than the box wraps under its column, never cut.
        words = re.sub(r"[│\s]+", " ", screen)
        said = "Move the keys to the next run (A → B, the last → A), its gradient rows' too"
        assert said in words

    drive(app, body)


def test_the_findings_modal_names_the_active_run() -> None:
    _, _, app = compare_app()

    async def body(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "A ━━ xor")
        await press(pilot, "enter")
        await wait_shows(pilot, "bpmon findings · run A (xor)")
        await press(pilot, "tab")
        await wait_shows(pilot, "bpmon findings · run B (relu-bn)")

    drive(app, body)


def test_one_chart_with_both_curves_and_a_legend_naming_them() -> None:
    _, _, app = compare_app()

    async def body(pilot: Pilot[Any]) -> None:
        screen = await wait_shows(pilot, "loss · linear (l)", "━━ A xor", "━━ B relu-bn")
        assert screen.count("loss · ") == 1
        # Each column has its own gradient rows and status.
        assert len(re.findall(r"layer0 ", screen)) == 2
        assert screen.count("PAUSED") == 2

    drive(app, body)


def test_the_loss_chart_follows_the_run_that_trains_while_the_other_is_paused() -> None:
    a, b, app = compare_app()

    def b_steps_on_the_x_axis(screen: str) -> bool:
        return bool(re.search(r"^│\s+0\s+.*\d{3}", screen, re.MULTILINE))

    async def body(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "B ━━ relu-bn")
        await press(pilot, "tab", "space")
        await wait_latest(pilot, b, lambda s: s.step > 400, "B trains past step 400")
        assert a.latest().step == 3
        # The x axis reaches B's steps: the chart redraws for B's news with A paused.
        await wait_screen(pilot, b_steps_on_the_x_axis, "the axis past step 100")

    drive(app, body)


def test_quitting_stops_both_threads() -> None:
    a, b, app = compare_app()

    async def body(pilot: Pilot[Any]) -> None:
        await wait_for(pilot, lambda: a.alive and b.alive, "both started")
        await press(pilot, "q")

    drive(app, body)
    assert wait_threads()
    assert not a.alive and not b.alive


# -- in a real terminal ------------------------------------------------------------------------


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
def test_the_issues_command_in_tmux_at_80x24() -> None:
    with session(
        "xterm-256color", "--preset", "sigmoid-vanishing", "--compare", "digits-relu-bn"
    ) as pane:
        screen = pane.wait_for(
            lambda s: s.count("RUNNING") == 2 and "▶ A" in s and "q quit" in s,
            "both runs training, A active",
        )
        assert "relu +bn" in screen and "sigmoid" in screen
        pane.keys("Tab")
        pane.wait_for(lambda s: "▶ B" in s and "▶ A" not in s, "B active after tab")
        pane.keys("b")
        screen = pane.wait_for(
            lambda s: "run B (digits-relu-bn)" in s and "+bn" not in s, "B's batch-norm off"
        )
        assert "64-32x6-10 sigmoid" in screen, "A untouched"
        pane.keys("q")
        pane.wait_for(lambda s: "BPMON-EXITED-0" in s, "exit status 0 after q", timeout=5.0)
