"""Limits instead of hangs (issue 15, items 7 and 8): what a run file reader does with files of
odd sizes and kinds, and the end line of a headless run stopped by a signal.

Each case was measured on the old reader: a snapshot line over 256 KiB showed as "epoch 0";
``/dev/zero`` grew by about 1 GB every 3 s; ``<(cat run.jsonl)`` ended in an "Illegal seek"
traceback; a FIFO blocked before the monitor opened; an empty or header-only replay waited
forever; a half-written header was read again from its start at every poll; 400,000
predictions reached the prediction table; a second header counted as a snapshot; a headless run
stopped by SIGTERM wrote no end line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bpmon import sources as sources_module
from bpmon.errors import BpmonError
from bpmon.lines import MAX_LINE
from bpmon.sources import RunFileSource
from bpmon.trainer import PREDICTION_ROWS

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "tests" / "data" / "run-v1.jsonl"
LINES = COMMITTED.read_text(encoding="utf-8").splitlines(keepends=True)
HEADER = LINES[0]
SNAPSHOTS = [line for line in LINES if line.startswith('{"step"')]
WAIT = 10.0
TIMEOUT = 60


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def opened() -> Iterator[Callable[[Path, str], RunFileSource]]:
    started: list[RunFileSource] = []

    def make(path: Path, mode: str = "replay") -> RunFileSource:
        source = RunFileSource(str(path), mode)  # type: ignore[arg-type]
        source.open_now()
        source.start()
        started.append(source)
        return source

    yield make
    for source in started:
        source.stop()


def snapshot(step: int, **changes: Any) -> str:
    record = json.loads(SNAPSHOTS[-1])
    record["step"] = step
    record.update(changes)
    return json.dumps(record, separators=(",", ":")) + "\n"


def bpmon(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run(
        [sys.executable, "-m", "bpmon", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        **kwargs,
    )


def one_line_exit_2(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    for word in words:
        assert word in done.stderr


# -- sizes -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("what", "changes"),
    [
        ("5,000 predictions", {"predictions": json.loads(SNAPSHOTS[-1])["predictions"] * 1250}),
        ("1,300 layers", {"layers": json.loads(SNAPSHOTS[-1])["layers"] * 325}),
    ],
)
def test_a_snapshot_line_longer_than_the_tail_is_read_whole(
    tmp_path: Path, opened: Any, what: str, changes: dict[str, Any]
) -> None:
    path = tmp_path / "big.jsonl"
    last = snapshot(7_000, epoch=70, loss=0.25, **changes)
    assert len(last) > sources_module.TAIL_BYTES, what
    path.write_text(HEADER + snapshot(6_999) + last)
    source = opened(path)
    wait_for(lambda: "reading" not in source.latest().detail, "the backfill")
    snap = source.latest()
    assert (snap.step, snap.epoch, snap.loss) == (7_000, 70, 0.25)
    assert len(snap.layers) == len(json.loads(last)["layers"])
    assert "snapshot 2/2" in snap.detail


def test_a_line_over_the_limit_is_a_corrupt_line_and_is_never_held(
    tmp_path: Path, opened: Any
) -> None:
    path = tmp_path / "huge.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        f.write(HEADER + SNAPSHOTS[0])
        f.write('{"step":2,"pad":"' + "x" * (3 * MAX_LINE) + '"}\n')
        f.write(snapshot(3))
    tracemalloc.start()
    try:
        source = opened(path)
        wait_for(lambda: "reading" not in source.latest().detail, "the backfill")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    snap = source.latest()
    assert snap.step == 3
    assert snap.message == "1 corrupt line skipped (line 3)"
    assert "snapshot 2/2" in snap.detail
    # What is held is at most the limit (a line is kept while it may still fit) plus a read.
    assert peak < MAX_LINE + (4 << 20), f"{peak:,} bytes held for a line of {3 * MAX_LINE:,}"


def test_predictions_are_cut_to_the_monitors_rows(tmp_path: Path, opened: Any) -> None:
    rows = json.loads(SNAPSHOTS[-1])["predictions"]
    path = tmp_path / "many.jsonl"
    path.write_text(HEADER + snapshot(1, predictions=rows * 2_000))
    source = opened(path)
    wait_for(lambda: source.latest().step == 1, "the snapshot")
    assert len(source.latest().predictions) == PREDICTION_ROWS


# -- kinds of file -----------------------------------------------------------------------------


def test_replay_of_dev_zero_is_refused_at_once() -> None:
    one_line_exit_2(bpmon("replay", "/dev/zero"), "/dev/zero", "character device")


def test_replay_of_a_process_substitution_is_refused_in_one_line() -> None:
    read, write = os.pipe()
    try:
        os.write(write, HEADER.encode())
        done = bpmon("replay", f"/dev/fd/{read}", pass_fds=(read,))
    finally:
        os.close(read)
        os.close(write)
    one_line_exit_2(done, "a pipe", "save the stream first")


@pytest.mark.parametrize("command", ["replay", "watch"])
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path, command: str) -> None:
    fifo = tmp_path / "run.jsonl"
    os.mkfifo(fifo)
    one_line_exit_2(bpmon(command, str(fifo)), str(fifo), "a pipe or FIFO")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("", "the file is empty: nothing to replay"),
        (HEADER, "a header but no snapshot lines: nothing to replay"),
        (HEADER + '{"event":"end","state":"stopped"}\n', "no snapshot lines"),
        (HEADER.rstrip("\n"), ":1: the header has no newline"),
    ],
    ids=["empty", "header only", "header and end", "header without newline"],
)
def test_a_replay_with_nothing_to_show_says_so(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "run.jsonl"
    path.write_text(content)
    one_line_exit_2(bpmon("replay", str(path)), str(path), words)


def test_waiting_for_a_headers_newline_reads_only_new_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[int] = []
    real_open = sources_module._open_regular

    class Counting:
        def __init__(self, f: Any) -> None:
            self._f = f

        def read(self, size: int = -1) -> bytes:
            data: bytes = self._f.read(size)
            reads.append(len(data))
            return data

        def __getattr__(self, name: str) -> Any:
            return getattr(self._f, name)

    monkeypatch.setattr(
        sources_module, "_open_regular", lambda path, mode: Counting(real_open(path, mode))
    )
    path = tmp_path / "run.jsonl"
    partial = HEADER[:-1] + " " * 2_000_000  # a long header, its newline not written yet
    path.write_text(partial)
    source = RunFileSource(str(path), "watch")
    source.open_now()
    assert sum(reads) == len(partial)
    for _ in range(20):
        source._poll()  # what the reader thread does every POLL_INTERVAL
    assert sum(reads) == len(partial), "the unfinished line was read again"
    with open(path, "a", encoding="utf-8") as f:
        f.write("\n" + SNAPSHOTS[0])
    source._poll()
    assert sum(reads) == len(partial) + 1 + len(SNAPSHOTS[0])
    source._publish()
    assert source.latest().step == json.loads(SNAPSHOTS[0])["step"]


# -- two runs in one file ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["replay", "watch"])
def test_a_second_header_is_reported_and_is_not_a_snapshot(
    tmp_path: Path, opened: Any, mode: str
) -> None:
    path = tmp_path / "joined.jsonl"
    first = [HEADER, *SNAPSHOTS[:3]]
    path.write_text("".join([*first, HEADER, *SNAPSHOTS[3:5]]))
    source = opened(path, mode)
    wait_for(lambda: "reading" not in source.latest().detail, "the whole file")
    snap = source.latest()
    assert f"line {len(first) + 1}: a second run's header" in snap.message
    assert len(snap.loss_steps) == 5
    if mode == "replay":
        assert "snapshot 5/5" in snap.detail


def test_names_from_a_file_reach_the_snapshot_as_printable_text(
    tmp_path: Path, opened: Any
) -> None:
    head = json.loads(HEADER)
    head["name"] = "run\x1b]2;PWNED\x07\x1b[2J"
    line = json.loads(SNAPSHOTS[-1])
    line["layers"][0]["name"] = "fc\x1b[2J\u009b31m"
    path = tmp_path / "escapes.jsonl"
    path.write_text(json.dumps(head) + "\n" + json.dumps(line) + "\n")
    source = opened(path)
    wait_for(lambda: bool(source.latest().layers), "the snapshot")
    snap = source.latest()
    assert snap.preset == "run\\x1b]2;PWNED\\x07\\x1b[2J"
    assert snap.layers[0].name == "fc\\x1b[2J\\x9b31m"


@pytest.mark.parametrize("newline", ["\n", ""], ids=["whole", "still being written"])
@pytest.mark.parametrize("mode", ["replay", "watch"])
def test_a_header_over_the_limit_is_one_error(tmp_path: Path, mode: str, newline: str) -> None:
    path = tmp_path / "long-header.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        f.write('{"format":"bpmon-run","version":1,"pad":"' + "x" * MAX_LINE + '"}' + newline)
    with pytest.raises(BpmonError, match="the first line is longer than"):
        RunFileSource(str(path), mode).open_now()  # type: ignore[arg-type]


# -- end lines ------------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_headless_record_stopped_by_a_signal_ends_with_its_end_line(
    tmp_path: Path, signum: int
) -> None:
    path = tmp_path / "run.jsonl"
    args = ["--preset", "xor", "--headless", "--epochs", "1000000", "--record", str(path)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "bpmon", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: path.exists() and path.read_text().count("\n") >= 3, "snapshots", TIMEOUT)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signum, err
    assert err == f"bpmon: stopped by {signal.Signals(signum).name}\n"
    lines = path.read_text().splitlines()
    assert json.loads(lines[-1]) == {"event": "end", "state": "stopped"}
    assert all(json.loads(line) for line in lines)
