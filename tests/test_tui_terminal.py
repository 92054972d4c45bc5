"""``bpmon`` in a real pseudo-terminal: however it ends, the terminal is left as it was.

The child gets an 80x24 pty as its controlling terminal and ``TERM=xterm-256color``; everything
it writes is read from the master side, which is what a terminal emulator would receive. After
q, SIGTERM or SIGHUP the process must exit with 0, 143 or 129, and the bytes it wrote after
entering the alternate screen must leave it again, show the cursor and turn mouse reporting off.
Every wait polls with a deadline; none sleeps a fixed time.
"""

from __future__ import annotations

import errno
import fcntl
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ROWS, COLS = 24, 80
WAIT = 30.0
ALT_SCREEN_ON, ALT_SCREEN_OFF = b"\x1b[?1049h", b"\x1b[?1049l"
CURSOR_ON = b"\x1b[?25h"
MOUSE_ON, MOUSE_OFF = b"\x1b[?1000h", b"\x1b[?1000l"
_ESCAPES = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a pty")


def visible(data: bytes) -> str:
    return _ESCAPES.sub(b"", data).decode("utf-8", errors="replace")


class Child:
    """``python -m bpmon ARGS`` on the slave side of a new 80x24 pty."""

    def __init__(self, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
        env.update(TERM="xterm-256color", PYTHONPATH=str(ROOT))
        argv = [sys.executable, "-m", "bpmon", *args]
        pid, fd = pty.fork()
        if pid == 0:  # the child: size its terminal, then become bpmon
            try:
                winsize = struct.pack("HHHH", ROWS, COLS, 0, 0)
                fcntl.ioctl(0, termios.TIOCSWINSZ, winsize)  # the pty (pytest swaps sys.stdin)
                os.chdir(ROOT)
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.output = b""
        self.code: int | None = None

    def read(self, timeout: float) -> None:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return
        try:
            self.output += os.read(self.fd, 65536)
        except OSError as exc:  # EIO: the child closed its side
            if exc.errno != errno.EIO:
                raise

    def poll(self) -> int | None:
        if self.code is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.code = os.waitstatus_to_exitcode(status)
        return self.code

    def wait_for(self, ok: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
        """Read (a child blocked on a full pty never exits) until ``ok()``."""
        deadline = time.monotonic() + timeout
        while not ok():
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out waiting for {what}:\n{visible(self.output)[-3000:]}"
                )
            self.read(0.05)

    def shows(self, *texts: str) -> Callable[[], bool]:
        return lambda: all(t in visible(self.output) for t in texts) or self.poll() is not None

    def exited(self) -> bool:
        self.read(0)
        return self.poll() is not None

    def close(self) -> None:
        if self.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


@pytest.fixture
def launch() -> Iterator[Callable[..., Child]]:
    children: list[Child] = []

    def start(*args: str) -> Child:
        child = Child(*args)
        children.append(child)
        return child

    yield start
    for child in children:
        child.close()


def assert_terminal_restored(output: bytes) -> None:
    assert ALT_SCREEN_ON in output, "the app never took the screen"
    after = output[output.rindex(ALT_SCREEN_ON) :]
    assert ALT_SCREEN_OFF in after, "the alternate screen was left on"
    assert CURSOR_ON in after[after.index(ALT_SCREEN_OFF) :], "the cursor was left hidden"
    if MOUSE_ON in after:
        assert MOUSE_OFF in after[after.rindex(MOUSE_ON) :], "mouse reporting was left on"
    assert b"Traceback" not in output


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)], ids=["TERM", "HUP"]
)
def test_a_signal_ends_the_app_and_restores_the_terminal(
    launch: Callable[..., Child], signum: int, code: int
) -> None:
    child = launch("--preset", "xor", "--epochs", str(10**9))
    child.wait_for(child.shows("RUNNING", "gradients", "predictions"), "the first frame")
    assert child.poll() is None
    os.kill(child.pid, signum)
    child.wait_for(child.exited, f"the exit after signal {signum}")
    assert child.code == code
    assert_terminal_restored(child.output)


def test_q_during_a_long_step_ends_the_app_and_restores_the_terminal(
    launch: Callable[..., Child],
) -> None:
    # Twelve hidden layers of 1024: a step takes a good fraction of a second, so q lands while
    # one is in flight. The app must not wait for it.
    child = launch("--preset", "xor", "--depth", "12", "--width", "1024", "--epochs", str(10**9))
    child.wait_for(child.shows("RUNNING", "epoch 1/", "predictions"), "a first step shown")
    assert child.poll() is None
    os.write(child.fd, b"q")
    child.wait_for(child.exited, "the exit after q")
    assert child.code == 0
    assert_terminal_restored(child.output)
