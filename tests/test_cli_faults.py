"""Output faults, the way a good Unix tool meets them: the real command in subprocesses, with real
pipes, ``/dev/full``, a closed descriptor, a FIFO whose reader leaves and a pseudo-terminal.

- stdout's reader leaves (``| head -1``): exit 141, nothing on stderr;
- stdout or the ``--record`` file cannot be written: exit 74 and one line naming which and why;
  every record line written before the fault is whole JSON;
- the progress bar on a terminal fits the terminal and leaves nothing behind.

Nothing here sleeps for a fixed time: each test waits on a condition, with a deadline.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pytest

from bpmon.cli import EXIT_BROKEN_PIPE, EXIT_IOERR

TIMEOUT = 60
HAS_DEV_FULL = Path("/dev/full").exists()
needs_dev_full = pytest.mark.skipif(not HAS_DEV_FULL, reason="needs /dev/full")
# A run long enough to still be writing when the fault comes: xor trains ~50,000 epochs a second.
LONG = ["--preset", "xor", "--headless", "--epochs", "2000000"]


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "bpmon", *args]


def run(*args: str, cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    kwargs.setdefault("stderr", subprocess.PIPE)
    return subprocess.run(
        command(*args), cwd=cwd, text=True, timeout=TIMEOUT, check=False, **kwargs
    )


def one_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    assert "Exception ignored" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("bpmon: "), stderr
    return lines[0]


def strict_json(line: str) -> Any:
    def refuse(token: str) -> None:
        raise ValueError(f"not JSON: {token}")

    return json.loads(line, parse_constant=refuse)


# --- stdout's reader goes away -------------------------------------------------------------------


def test_a_reader_that_leaves_ends_the_run_quietly(tmp_path: Path) -> None:
    # "bpmon ... | head -1": read one line, close the pipe, and the next write meets EPIPE.
    proc = subprocess.Popen(
        command(*LONG, "--every", "1"),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    try:
        stderr = proc.stderr.read().decode()
        code = proc.wait(TIMEOUT)
    finally:
        proc.kill()
    assert first.startswith(b"Epoch 1, Loss: ")
    assert code == EXIT_BROKEN_PIPE == 141
    assert stderr == ""  # no traceback, no "Exception ignored", no message: it was on purpose


def test_head_in_a_shell_pipeline(tmp_path: Path) -> None:
    # The same through a real shell and a real head, with pipefail to see bpmon's status.
    script = 'set -o pipefail; "$@" | head -n 1'
    proc = subprocess.run(
        ["bash", "-c", script, "bash", *command(*LONG, "--every", "1")],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert proc.stdout.startswith("Epoch 1, Loss: ")
    assert proc.stdout.count("\n") == 1
    assert proc.returncode == 141
    assert proc.stderr == ""


# --- stdout cannot be written ------------------------------------------------------------------


@needs_dev_full
def test_stdout_on_a_full_disk(tmp_path: Path) -> None:
    with open("/dev/full", "w") as full:
        proc = run("--preset", "xor", "--headless", "--epochs", "20", cwd=tmp_path, stdout=full)
    assert proc.returncode == EXIT_IOERR == 74
    line = one_line(proc.stderr)
    assert line == f"bpmon: stdout: cannot write: {os.strerror(errno.ENOSPC)}"


@needs_dev_full
@pytest.mark.parametrize("args", [["--help"], ["--list-presets"]])
def test_help_and_list_on_a_full_disk(tmp_path: Path, args: list[str]) -> None:
    # Output small enough to sit in the buffer until exit: flushed where it can be reported.
    with open("/dev/full", "w") as full:
        proc = run(*args, cwd=tmp_path, stdout=full)
    assert proc.returncode == 74
    assert "stdout" in one_line(proc.stderr)


@pytest.mark.parametrize(
    "args",
    [
        ["--preset", "xor", "--headless", "--epochs", "20"],
        ["--preset", "xor", "--headless", "--epochs", "20", "--json"],
        ["--list-presets"],
        ["--help"],
    ],
)
def test_stdout_closed(tmp_path: Path, args: list[str]) -> None:
    # "bpmon ... >&-": Python starts with sys.stdout = None.
    proc = subprocess.run(
        ["sh", "-c", 'exec "$@" >&-', "sh", *command(*args)],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert proc.returncode == 74
    assert one_line(proc.stderr) == f"bpmon: stdout: cannot write: {os.strerror(errno.EBADF)}"


def test_a_closed_stdout_is_refused_before_training(tmp_path: Path) -> None:
    # A run of minutes must not train first and fail at the first progress line.
    record = tmp_path / "run.jsonl"
    proc = subprocess.run(
        ["sh", "-c", 'exec "$@" >&-', "sh", *command(*LONG, "--record", str(record))],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert proc.returncode == 74
    assert "stdout" in one_line(proc.stderr)
    assert not record.exists()


@needs_dev_full
def test_record_lines_before_a_stdout_fault_stay_whole(tmp_path: Path) -> None:
    # One progress line, at the end: by then the record file holds a line per snapshot.
    record = tmp_path / "run.jsonl"
    args = ["--preset", "xor", "--headless", "--epochs", "20000", "--every", "20000"]
    with open("/dev/full", "w") as full:
        proc = run(*args, "--record", str(record), cwd=tmp_path, stdout=full)
    assert proc.returncode == 74
    assert "stdout" in one_line(proc.stderr)
    text = record.read_text(encoding="utf-8")
    assert text.endswith("\n")
    lines = [strict_json(line) for line in text.splitlines()]
    assert len(lines) >= 3
    assert lines[0]["format"] == "bpmon-run"
    assert lines[-2]["step"] == 20000 and lines[-2]["state"] == "finished"
    assert lines[-1] == {"event": "end", "state": "finished"}


# --- the --record file cannot be written --------------------------------------------------------


@needs_dev_full
def test_record_on_a_full_disk(tmp_path: Path) -> None:
    proc = run(*LONG, "--record", "/dev/full", cwd=tmp_path, stdout=subprocess.PIPE)
    assert proc.returncode == 74
    line = one_line(proc.stderr)
    assert line == f"bpmon: --record /dev/full: cannot write: {os.strerror(errno.ENOSPC)}"
    assert proc.stdout == ""  # the first snapshot is recorded before the first progress line


def read_line(fd: int, proc: subprocess.Popen[bytes], deadline: float) -> bytes:
    """Bytes from the non-blocking ``fd`` up to the first newline, waiting for them with
    select until ``deadline``; fails if ``proc`` ends first."""
    got = b""
    while b"\n" not in got:
        left = deadline - time.monotonic()
        assert left > 0, f"no line within the deadline: {got!r}"
        ready, _, _ = select.select([fd], [], [], min(left, 0.5))
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                continue
            got += chunk
        if not got and proc.poll() is not None:
            pytest.fail(f"bpmon ended before writing a record line: {proc.returncode}")
    return got


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_record_reader_that_leaves(tmp_path: Path) -> None:
    # --record into a FIFO: the reader takes one line and goes; the next line meets EPIPE.
    fifo = tmp_path / "records"
    os.mkfifo(fifo)
    # The reader is opened first and non-blocking, so that neither side waits for the other to
    # open; a writer of our own keeps the FIFO from reading as at its end until bpmon opens it.
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    keepalive = os.open(fifo, os.O_WRONLY)
    proc = subprocess.Popen(
        command(*LONG, "--record", str(fifo)),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        first = read_line(reader, proc, time.monotonic() + TIMEOUT)
        os.close(keepalive)
        os.close(reader)
        keepalive = reader = -1
        stderr = proc.communicate(timeout=TIMEOUT)[1].decode()
    finally:
        for fd in (reader, keepalive):
            if fd >= 0:
                os.close(fd)
        proc.kill()
    assert strict_json(first.split(b"\n")[0].decode())["format"] == "bpmon-run"
    assert proc.returncode == 74
    line = one_line(stderr)
    assert line == f"bpmon: --record {fifo}: cannot write: {os.strerror(errno.EPIPE)}"


# --- the --record file cannot be opened: bad input, exit 2 ---------------------------------------


def record_refused(tmp_path: Path, target: str) -> str:
    proc = run(
        "--preset", "xor", "--headless", "--epochs", "5", "--record", target,
        cwd=tmp_path, stdout=subprocess.PIPE,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stdout == ""
    line = one_line(proc.stderr)
    assert line.startswith(f"bpmon: --record {target}: "), line
    return line


def test_record_into_a_directory(tmp_path: Path) -> None:
    line = record_refused(tmp_path, str(tmp_path))
    assert line.endswith(os.strerror(errno.EISDIR))


def test_record_into_a_missing_folder(tmp_path: Path) -> None:
    line = record_refused(tmp_path, str(tmp_path / "no" / "such" / "run.jsonl"))
    assert line.endswith(os.strerror(errno.ENOENT))


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anything")
def test_record_into_a_read_only_file(tmp_path: Path) -> None:
    target = tmp_path / "run.jsonl"
    target.write_text("", encoding="utf-8")
    target.chmod(0o444)
    line = record_refused(tmp_path, str(target))
    assert line.endswith(os.strerror(errno.EACCES))


@pytest.mark.skipif(not Path("/proc/version").is_file(), reason="needs /proc")
def test_record_into_a_file_nobody_may_write(tmp_path: Path) -> None:
    # Refused even to root, so this runs where the read-only file above is skipped.
    record_refused(tmp_path, "/proc/version")


def test_a_preset_that_is_a_directory(tmp_path: Path) -> None:
    proc = run("--preset", str(tmp_path), "--headless", cwd=tmp_path, stdout=subprocess.PIPE)
    assert proc.returncode == 2
    line = one_line(proc.stderr)
    assert str(tmp_path) in line and "is a directory" in line


# --- the progress bar on a terminal ------------------------------------------------------------

CSI = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])")


def screen(output: str, columns: int) -> list[str]:
    """The rows a terminal ``columns`` wide shows after ``output``: ``\\r`` goes back to the
    first column, ``\\n`` one row down, ``ESC [ K`` erases to the end of the row, and a
    character after the last column wraps to the next row (that is how an overlong bar leaves a
    trail: its ``\\r`` returns to the start of the wrapped part only)."""
    rows: list[list[str]] = [[]]
    row = col = 0
    i = 0
    while i < len(output):
        match = CSI.match(output, i)
        if match:
            if match.group(2) == "K":
                del rows[row][col:]
            i = match.end()
            continue
        ch = output[i]
        i += 1
        if ch == "\r":
            col = 0
        elif ch == "\n":
            row += 1
        elif ch.isprintable():
            if col >= columns:  # the pending wrap of a full row
                row, col = row + 1, 0
            while len(rows) <= row:
                rows.append([])
            line = rows[row]
            line.extend(" " * (col + 1 - len(line)))
            line[col] = ch
            col += 1
        while len(rows) <= row:
            rows.append([])
    return ["".join(r).rstrip() for r in rows]


def test_the_screen_model_shows_a_trail() -> None:
    # An 8-column bar on a 6-column terminal, redrawn and cleared: the wrapped part stays.
    assert screen("\r[####]xx\r\x1b[KEpoch\r\n", 6) == ["[####]", "Epoch", ""]
    assert screen("\r[##]\x1b[K\r\x1b[KEpoch 1\r\n", 10) == ["Epoch 1", ""]


def run_in_a_terminal(args: list[str], columns: int, cwd: Path) -> tuple[int, str, str]:
    """``bpmon args`` with stdout on a pseudo-terminal of 24 rows and ``columns`` columns:
    (exit status, everything written to the terminal, stderr)."""
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    try:
        proc = subprocess.Popen(
            command(*args),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=follower,
            stderr=subprocess.PIPE,
        )
        os.close(follower)
        follower = -1
        chunks = []
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's last writer closed it
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.stderr is not None
        stderr = proc.stderr.read().decode()
        code = proc.wait(TIMEOUT)
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    return code, b"".join(chunks).decode(), stderr


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
@pytest.mark.parametrize("columns", [80, 40])
def test_the_progress_bar_fits_the_terminal(tmp_path: Path, columns: int) -> None:
    args = ["--preset", "xor", "--headless", "--epochs", "2000"]
    code, output, stderr = run_in_a_terminal(args, columns, tmp_path)
    assert code == 0, stderr
    # A bar reads "40% epoch 800/2000 loss ... steps/s"; at 40 columns its end ("steps/s") is
    # cut when the rate has more digits, so a draw is found by its start.
    draws = [part for part in output.split("\r") if "% epoch " in part]
    assert draws, output  # the bar was drawn: this test is not vacuous
    for draw in draws:
        text = CSI.sub("", draw)
        assert len(text) <= columns - 1, (len(text), draw)
    rows = screen(output, columns)
    assert all(len(row) <= columns for row in rows)
    # Cleared before every progress line: nothing of a bar is left on the screen.
    assert not [
        row for row in rows if "% epoch " in row or "steps/s" in row or "[#" in row or "[." in row
    ], rows
    assert "Final loss:" in output
    if columns >= 80:
        assert all(len(row) <= columns - 1 for row in rows), rows


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_no_bar_with_json_on_a_terminal(tmp_path: Path) -> None:
    code, output, stderr = run_in_a_terminal(
        ["--preset", "xor", "--headless", "--epochs", "200", "--json"], 80, tmp_path
    )
    assert code == 0, stderr
    assert "steps/s" not in output
    assert strict_json(output.strip().splitlines()[-1])["epochs"] == 200
