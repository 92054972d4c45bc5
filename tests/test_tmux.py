"""Smoke test in a real terminal: the app in a detached 80x24 tmux session, driven by keys.

Skipped when tmux is not installed. Each wait polls ``capture-pane`` with a deadline, the
session name is unique, and the session is killed whatever happens.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
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


@pytest.fixture(params=["xterm-256color", "tmux-default"])
def pane(request: pytest.FixtureRequest) -> Iterator[Pane]:
    name = f"bpmon-test-{uuid.uuid4().hex[:10]}"
    term = "" if request.param == "tmux-default" else f"TERM={request.param} "
    # A run long enough to still be training while the keys arrive; the shell stays after the
    # app so that its exit status can be read from the pane.
    command = (
        f"cd {shlex.quote(str(ROOT))} && {term}PYTHONPATH={shlex.quote(str(ROOT))} "
        f"{shlex.quote(sys.executable)} -m bpmon --preset xor --epochs 100000000; "
        "echo BPMON-EXITED-$?; sleep 60"
    )
    tmux("new-session", "-d", "-s", name, "-x", "80", "-y", "24", command)
    try:
        yield Pane(name)
    finally:
        tmux("kill-session", "-t", name)


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

    pane.keys("q")
    pane.wait_for(lambda s: "BPMON-EXITED-0" in s, "exit status 0 after q", timeout=5.0)
