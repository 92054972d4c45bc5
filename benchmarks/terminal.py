"""``bpmon --preset xor`` in a real pseudo-terminal, as a user starts it.

The child gets an 80x24 pty as its controlling terminal (``pty.fork``; it sets the window size
on its own side before ``exec``, so Textual's first size query already sees 80x24) and
``TERM=xterm-256color``. Everything it writes is read from the master side, which is what a
terminal emulator would receive:

- time to the first full frame: from just before the fork until the text of every panel's
  border title has arrived (escape sequences stripped);
- bytes per second written while training, counted over a few seconds once the first frame is
  up;
- time from sending ``q`` until the process has exited.

The run is made endless (``--epochs``) so that it trains the whole time.
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
import tempfile
import termios
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.harness import Figure, Settings, child_env, median
from benchmarks.xor import xor_config

ROWS, COLS = 24, 80
# The panels' border titles: when all are on the screen, the first full frame is.
MARKERS = ("gradients", "loss", "predictions")
# CSI (ESC [ ... final byte), OSC (ESC ] ... BEL or ST), and two-byte ESC sequences.
_ESCAPES = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


_MOVE = re.compile(rb"\x1b\[(\d+);\d+H")


def visible_text(data: bytes) -> str:
    return _ESCAPES.sub(b"", data).decode("utf-8", errors="replace")


def bytes_by_row(data: bytes) -> dict[int, int]:
    """Which screen rows the bytes went to. Textual starts every run of changed cells with an
    absolute cursor move (``ESC [ row ; col H``); the bytes up to the next move belong to that
    row. Bytes before the first move are counted as row 0."""
    rows: dict[int, int] = {}
    row, start = 0, 0
    for match in _MOVE.finditer(data):
        rows[row] = rows.get(row, 0) + match.start() - start
        row, start = int(match.group(1)), match.start()
    rows[row] = rows.get(row, 0) + len(data) - start
    return dict(sorted(rows.items()))


@dataclass
class Session:
    """One launch: first frame, bytes over the counting window, quit time, exit status."""

    first_frame_s: float = float("nan")
    bytes_per_s: float = float("nan")
    quit_s: float = float("nan")
    exit_code: int | None = None
    bytes_total: int = 0
    rows: dict[int, int] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)


class Child:
    """A process on the slave side of a new pty; reads never block for longer than asked."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.t_start = time.perf_counter()
        pid, fd = pty.fork()
        if pid == 0:  # the child: size its terminal, then become bpmon
            try:
                winsize = struct.pack("HHHH", ROWS, COLS, 0, 0)
                fcntl.ioctl(sys.stdin.fileno(), termios.TIOCSWINSZ, winsize)
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.eof = False

    def read(self, timeout: float) -> bytes:
        """What arrives within ``timeout`` seconds (b"" on end of output)."""
        if self.eof:
            return b""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return b""
        try:
            data = os.read(self.fd, 65536)
        except OSError as exc:  # EIO: the child closed its side
            if exc.errno != errno.EIO:
                raise
            data = b""
        if not data:
            self.eof = True
        return data

    def write(self, data: bytes) -> None:
        os.write(self.fd, data)

    def poll(self) -> int | None:
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        return os.waitstatus_to_exitcode(status) if pid else None

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        finally:
            os.close(self.fd)


# A network whose every step takes seconds on two cores (12 hidden layers of 2048 on the digits,
# full batch, float32): `q` must still end the process at once, not after the step. --quick
# uses 4 layers of 1024 (steps of a few tenths of a second), enough to check that it works.
SLOW_PRESET = """\
description = "one training step takes seconds"
[data]
name = "digits"
[model]
hidden = [{hidden}]
activation = "relu"
output = "softmax"
loss = "cross_entropy"
init = "he"
dtype = "float32"
"""


def launch(
    count_for: float,
    first_frame_timeout: float = 20.0,
    preset: str | None = None,
    args: list[str] | None = None,
) -> Session:
    """``bpmon --preset PRESET`` (the xor preset by default), or ``bpmon ARGS`` when given, made
    endless with ``--epochs``."""
    source = args if args is not None else ["--preset", preset or xor_config()[0]]
    argv = [sys.executable, "-m", "bpmon", *source, "--epochs", str(10**9)]
    env = child_env(TERM="xterm-256color")
    for name in ("COLUMNS", "LINES", "NO_COLOR"):  # the pty's size and colours, nothing else
        env.pop(name, None)
    session = Session()
    child = Child(argv, env)
    try:
        # 1. The first full frame.
        seen = b""
        deadline = child.t_start + first_frame_timeout
        while time.perf_counter() < deadline and not child.eof:
            seen += child.read(0.05)
            text = visible_text(seen)
            if all(marker in text for marker in MARKERS):
                session.first_frame_s = time.perf_counter() - child.t_start
                break
        if session.first_frame_s != session.first_frame_s:  # NaN: it never came
            session.log.append(visible_text(seen)[-2000:])
            return session

        # 2. Bytes written while it trains.
        t0 = time.perf_counter()
        chunks = []
        while (now := time.perf_counter()) < t0 + count_for and not child.eof:
            chunks.append(child.read(t0 + count_for - now))
        window = b"".join(chunks)
        session.bytes_per_s = len(window) / (time.perf_counter() - t0)
        session.bytes_total = len(window)
        session.rows = bytes_by_row(window)

        # 3. Quit: keep draining the pty (a child blocked on a full pty never exits).
        t_quit = time.perf_counter()
        child.write(b"q")
        while time.perf_counter() < t_quit + 10.0:
            child.read(0.01)
            code = child.poll()
            if code is not None:
                session.quit_s = time.perf_counter() - t_quit
                session.exit_code = code
                break
        return session
    finally:
        if session.exit_code is None:
            child.kill()
        else:
            os.close(child.fd)


def run(settings: Settings) -> list[Figure]:
    count_for = settings.seconds(5.0, 0.5)
    sessions = [launch(count_for) for _ in range(settings.scale(3, 1))]
    with tempfile.TemporaryDirectory() as folder:
        slow_preset = Path(folder) / "slow.toml"
        hidden = ", ".join(["2048"] * 12) if not settings.quick else ", ".join(["1024"] * 4)
        slow_preset.write_text(SLOW_PRESET.format(hidden=hidden), encoding="utf-8")
        # The quit is pressed 0.5 s after the first frame: inside the first step.
        slow = [launch(0.5, preset=str(slow_preset)) for _ in range(settings.scale(3, 1))]
    failed = [s for s in sessions + slow if s.exit_code != 0]
    if failed:
        raise RuntimeError(f"bpmon in a pty did not start and quit cleanly: {failed[0]}")
    slow_quits = [s.quit_s for s in slow]
    first = [s.first_frame_s for s in sessions]
    rates = [s.bytes_per_s for s in sessions]
    quits = [s.quit_s for s in sessions]
    details = {"launches": len(sessions), "count_seconds": count_for, "markers": list(MARKERS)}
    return [
        Figure(
            key="first_frame_s",
            title="`bpmon --preset xor` to first full frame (pty, 80x24)",
            unit="s",
            target=1.0,
            op="<=",
            bpmon=median(first),
            value=median(first),
            samples={"bpmon": first},
            details=details,
        ),
        Figure(
            key="terminal_bytes_per_s",
            title="bytes written to the terminal per second while training (80x24)",
            unit="B/s",
            target=20 * 1024,
            op="<=",
            aim=True,
            bpmon=median(rates),
            value=median(rates),
            samples={"bpmon": rates},
            details={**details, "bytes_by_screen_row": sessions[0].rows},
        ),
        Figure(
            key="quit_s",
            title="`q` to process exit (pty)",
            unit="s",
            target=0.5,
            op="<=",
            bpmon=median(quits),
            value=median(quits),
            samples={"bpmon": quits},
            details={**details, "exit_codes": [s.exit_code for s in sessions]},
        ),
        Figure(
            key="quit_during_long_step_s",
            title="`q` to process exit during a multi-second step (pty, 12x2048 on digits)",
            unit="s",
            target=0.5,
            op="<=",
            bpmon=median(slow_quits),
            value=median(slow_quits),
            samples={"bpmon": slow_quits},
            details={"launches": len(slow), "exit_codes": [s.exit_code for s in slow]},
        ),
    ]
