"""Smoke test in a real terminal: the app in a detached 80x24 tmux session, driven by keys.

Two sessions: a live run (``bpmon --preset xor``) and a replay of the committed run file
(``bpmon replay tests/data/run-v1.jsonl``). Skipped when tmux is not installed. Each wait polls
``capture-pane`` with a deadline, the session name is unique, and the session is killed whatever
happens.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TMUX = shutil.which("tmux")
WAIT = 15.0

pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed")


def tmux(*args: str) -> str:
    assert TMUX is not None
    done = subprocess.run([TMUX, *args], capture_output=True, text=True, timeout=10, check=False)
    return done.stdout


class Pane:
    def __init__(self, name: str) -> None:
        self.name = name

    def screen(self) -> str:
        return tmux("capture-pane", "-p", "-t", self.name)

    def keys(self, *keys: str, literal: bool = False) -> None:
        tmux("send-keys", "-t", self.name, *(["-l"] if literal else []), *keys)

    def wait_for(self, ok: Callable[[str], bool], what: str, timeout: float = WAIT) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if ok(screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; the screen was:\n{screen}")


TERMS = ["xterm-256color", "tmux-default"]


@contextmanager
def session(term: str, *args: str) -> Iterator[Pane]:
    """``bpmon ARGS`` in a new detached 80x24 session; the shell stays after the app so that its
    exit status can be read from the pane."""
    name = f"bpmon-test-{uuid.uuid4().hex[:10]}"
    env = "" if term == "tmux-default" else f"TERM={term} "
    command = (
        f"cd {shlex.quote(str(ROOT))} && {env}PYTHONPATH={shlex.quote(str(ROOT))} "
        f"{shlex.quote(sys.executable)} -m bpmon {' '.join(shlex.quote(a) for a in args)}; "
        "echo BPMON-EXITED-$?; sleep 60"
    )
    tmux("new-session", "-d", "-s", name, "-x", "80", "-y", "24", command)
    try:
        yield Pane(name)
    finally:
        tmux("kill-session", "-t", name)


@pytest.fixture(params=TERMS)
def pane(request: pytest.FixtureRequest) -> Iterator[Pane]:
    # A run long enough to still be training while the keys arrive.
    with session(request.param, "--preset", "xor", "--epochs", "100000000") as pane:
        yield pane


@pytest.fixture(params=TERMS)
def replay_pane(request: pytest.FixtureRequest) -> Iterator[Pane]:
    with session(request.param, "replay", "tests/data/run-v1.jsonl") as pane:
        yield pane


def bar_rows(screen: str) -> int:
    return sum(1 for line in screen.splitlines() if re.match(r"│ layer\d+ ", line))


def test_keys_in_tmux_at_80x24(pane: Pane) -> None:
    screen = pane.wait_for(
        lambda s: "RUNNING" in s and "2-4-1 sigmoid" in s and bar_rows(s) == 2 and "q quit" in s,
        "the app with its footer",
    )
    lines = screen.splitlines()
    assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)
    assert "gradients" in screen and "loss" in screen and "predictions" in screen

    pane.keys("a")
    pane.wait_for(lambda s: "2-4-1 tanh" in s, "tanh after a")

    pane.keys("+", literal=True)
    screen = pane.wait_for(lambda s: "2-4-4-1 tanh" in s and bar_rows(s) == 3, "3 bars after +")
    assert "layer2" in screen

    pane.keys("b")
    screen = pane.wait_for(lambda s: "2-4-4-1 tanh +bn" in s, "+bn after b")
    assert "dim: previous run" in screen

    pane.keys("l")
    pane.wait_for(lambda s: "loss · log (l)" in s, "the log axis after l")

    pane.keys("q")
    pane.wait_for(lambda s: "BPMON-EXITED-0" in s, "exit status 0 after q", timeout=5.0)


def test_replay_in_tmux_at_80x24(replay_pane: Pane) -> None:
    pane = replay_pane
    screen = pane.wait_for(
        lambda s: "snapshot 11/11" in s and "relu-bn" in s and "q quit" in s,
        "the replay at its last snapshot, with its footer",
    )
    lines = screen.splitlines()
    assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)
    assert "space play" in screen and "restart" not in screen

    pane.keys("Home")
    pane.wait_for(lambda s: "snapshot 1/11" in s and "◆ step 1 " in s, "the first snapshot")
    pane.keys("Right")
    pane.keys("Right")
    pane.wait_for(lambda s: "snapshot 3/11" in s and "◆ step 80" in s, "the third snapshot")
    pane.keys("Left")
    pane.wait_for(lambda s: "snapshot 2/11" in s and "epoch 40/400" in s, "back one")
    pane.keys(">", literal=True)
    pane.wait_for(lambda s: "at 5/s" in s, "faster after >")
    pane.keys("End")
    pane.wait_for(lambda s: "snapshot 11/11" in s, "the last snapshot")

    pane.keys("a")
    pane.wait_for(lambda s: "This is a recorded run" in s, "why a does nothing here")

    pane.keys("q")
    pane.wait_for(lambda s: "BPMON-EXITED-0" in s, "exit status 0 after q", timeout=5.0)


def test_palette_keys_never_end_the_monitor(pane: Pane) -> None:
    """ctrl+p, a letter and PageUp in quick succession ended the monitor with Textual's
    ``KeyError: 0`` (status 1). And ctrl+q, which Textual's App binds to quit, does not quit."""
    pane.wait_for(lambda s: "RUNNING" in s and "q quit" in s, "the app")
    pane.keys("C-p", "a", "PPage", "PPage", "NPage", "PPage")
    pane.wait_for(lambda s: "Activation: " in s, "the palette's entries for a")
    pane.keys("c", "NPage", "PPage", "BSpace", "PPage", "Down")
    pane.wait_for(lambda s: "Activation: " in s, "the entries after paging")
    pane.keys("Escape")
    pane.wait_for(lambda s: "Activation: " not in s and "q quit" in s, "the monitor after Escape")
    pane.keys("C-q")
    pane.wait_for(lambda s: "q quits (ctrl+c too)" in s, "why ctrl+q does not quit")
    assert "BPMON-EXITED" not in pane.screen()
    pane.keys("q")
    pane.wait_for(lambda s: "BPMON-EXITED-0" in s, "exit status 0 after q", timeout=5.0)


TITLE = "\x1b]2;PWNED-TITLE\x07"
CLEAR = "\x1b[2J"


def hostile_run_file(folder: Path) -> Path:
    """The committed run with a run name and layer names that carry an OSC title sequence and
    a CSI clear-screen."""
    lines = (ROOT / "tests" / "data" / "run-v1.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    records[0]["name"] = f"evil{TITLE}{CLEAR}"
    for record in records:
        for i, layer in enumerate(record.get("layers") or []):
            # Short enough to show whole in the gradient panel's name column.
            layer["name"] = f"L{i}{CLEAR}" if i % 2 else f"\x1b]2;L{i}\x07"
    path = folder / "hostile.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.mark.parametrize("term", TERMS)
def test_names_from_a_run_file_never_reach_the_terminal_as_controls(
    tmp_path: Path, term: str
) -> None:
    with session(term, "replay", str(hostile_run_file(tmp_path))) as pane:
        before = tmux("display", "-p", "-t", pane.name, "#{pane_title}")
        screen = pane.wait_for(
            lambda s: "snapshot 11/11" in s and "q quit" in s, "the replay with its footer"
        )
        # The names show as text (escaped), and the panels around them are all there.
        assert "evil\\x1b]2;PWNED-TITLE\\x07" in screen
        assert "L1\\x1b[2J" in screen and "\\x1b]2;L2\\x07" in screen
        assert "gradients" in screen and "loss" in screen and "predictions" in screen
        lines = screen.splitlines()
        assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)
        pane.keys("Home")
        pane.wait_for(lambda s: "snapshot 1/11" in s and "L3\\x1b[2J" in s, "the first snapshot")
        assert tmux("display", "-p", "-t", pane.name, "#{pane_title}") == before


def test_a_12_block_gpt_replay_at_80x24(tmp_path: Path) -> None:
    # The "done when": every group and the column header in view at 80x24, the rows
    # of a block by keys alone, and the gradient flow over time.
    sys.path.insert(0, str(ROOT / "tests"))
    from bigmodels import write_gpt_run

    run = write_gpt_run(tmp_path / "gpt-12.jsonl", "spike")
    with session("xterm-256color", "replay", str(run)) as pane:
        screen = pane.wait_for(lambda s: "snapshot 120/120" in s, "the replay")
        lines = screen.splitlines()
        assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)
        header = next(line for line in lines if "│ layer" in line)
        assert "norm" in header and "status" in header
        for row in ("transformer.wte", "transformer.wpe", "▸ transformer.h", "lm_head"):
            assert row in screen, (row, screen)
        assert "more ↓" not in screen
        pane.keys("Down", "Down", "Down", "Enter")
        screen = pane.wait_for(lambda s: "▾ transformer.h" in s and "▸ 0 " in s, "the blocks")
        assert header in screen.splitlines(), "the header stays put"
        pane.keys("h")
        pane.wait_for(lambda s: "gradient flow over time" in s and "▌" in s, "the heatmap")
        pane.keys("q")
        pane.wait_for(lambda s: "BPMON-EXITED-0" in s, "exit status 0 after q", timeout=5.0)
