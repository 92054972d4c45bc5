"""Generated hostile run files (issue 15, items 6 and 7): random bytes, truncated lines, huge
lines, bad UTF-8, NUL bytes and nested JSON, through the line reader and the reader's decoding.
None may raise anything but the one clear :class:`BpmonError` of a file that is not a run, hang,
show a control character, or take the process past 300 MB.

The sweep of 2,000 files runs in a child process (``python tests/test_hostile_files.py N``), so
that its peak memory is its own, and each file has an alarm: a hang is a failure naming the
file's seed, not a stuck test. The files are made from a seeded generator, so a failure names
the seed that reproduces it. A few files also go through ``bpmon replay`` itself.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import resource
import signal
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "tests" / "data" / "run-v1.jsonl"
FILES = 2_000
MEMORY_LIMIT = 300 * 1024 * 1024
HANG_AFTER = 20  # seconds for one file: the alarm that turns a hang into a failure
BIG = 3 * 1024 * 1024  # a huge line, within the limit
TIMEOUT = 300


def _hostile_line(rng: random.Random, lines: list[bytes]) -> bytes:
    kind = rng.randrange(11)
    if kind == 0:
        return rng.randbytes(rng.randrange(1, 300))
    if kind == 1:  # a line cut short, with or without its newline
        line = rng.choice(lines)
        return line[: rng.randrange(len(line))] + (b"\n" if rng.random() < 0.5 else b"")
    if kind == 2:  # bad UTF-8 inside a string
        line = rng.choice(lines)
        at = line.find(b'"name":"')
        bad = rng.choice([b"\xff\xfe", b"\xc3", b"\xed\xa0\x80", b"\x80\x80"])
        return line[: at + 8] + bad + line[at + 8 :] if at >= 0 else bad + line
    if kind == 3:  # NUL bytes
        line = bytearray(rng.choice(lines))
        for _ in range(rng.randrange(1, 5)):
            line[rng.randrange(len(line))] = 0
        return bytes(line)
    if kind == 4:  # nested JSON, shallow enough to parse or too deep to
        depth = rng.choice([10, 100, 900, 5_000, 100_000])
        where = rng.choice(["step", "loss", "layers", "predictions", "name", "event"])
        return b'{"%s":' % where.encode() + b"[" * depth + b"1" + b"]" * depth + b"}\n"
    if kind == 5:  # a nested object in a layer's place, as deep as the parser allows
        record = json.loads(rng.choice(lines[1:-1]))
        nest: Any = "x"
        for _ in range(rng.choice([5, 50, 400])):
            nest = {"name": nest} if rng.random() < 0.5 else {"name": "x", "layers": [nest]}
        record[rng.choice(["layers", "predictions"])] = [nest]
        return json.dumps(record).encode() + b"\n"
    if kind == 6:  # control characters and odd text in strings
        record = json.loads(rng.choice(lines[1:-1]))
        text = "".join(
            chr(rng.choice([0x1B, 0x07, 0x9B, 0x2028, 0x7F, 0x41, 0xE000])) for _ in range(8)
        )
        record["layers"][0]["name"] = text
        record["state"] = text
        return json.dumps(record).encode() + b"\n"
    if kind == 7:  # a huge line (rarely): many predictions
        if rng.random() < 0.02:
            record = json.loads(lines[-2])
            rows = record.get("predictions") or [{"input": [1.0], "target": 0}]
            record["predictions"] = rows * (BIG // len(json.dumps(rows)) + 1)
            return json.dumps(record).encode() + b"\n"
        return rng.choice(lines)
    if kind == 8:  # NaN and Infinity, which Python's json reads
        return rng.choice(lines).replace(b"0.", b"NaN", 1).replace(b"1", b"-Infinity", 1)
    if kind == 9:  # not an object
        return rng.choice([b"[]\n", b"null\n", b"1e400\n", b'"text"\n', b"\n", b"   \n"])
    return rng.choice(lines)  # a good line


def hostile_file(seed: int) -> bytes:
    rng = random.Random(seed)
    lines = COMMITTED.read_bytes().splitlines(keepends=True)
    shape = rng.randrange(6)
    if shape == 0:
        return rng.randbytes(rng.randrange(0, 4096))
    if shape == 1:  # the file truncated anywhere
        data = b"".join(lines)
        return data[: rng.randrange(len(data) + 1)]
    head = lines[0]
    if shape == 2:  # the header itself damaged
        head = _hostile_line(rng, lines)
    body = [_hostile_line(rng, lines) for _ in range(rng.randrange(0, 12))]
    if shape == 3:
        body.insert(rng.randrange(len(body) + 1), lines[0])  # a second header
    if shape == 4:
        body.append(rng.choice(lines)[:-1])  # a last line without its newline
    return head + b"".join(body)


SHOWN = ("preset", "architecture", "switches", "message", "detail", "mode")


def shown_text(snap: Any) -> list[str]:
    texts = [getattr(snap, name) for name in SHOWN]
    texts += [layer.name for layer in snap.layers] + list(snap.classes)
    texts += [layer.health_label for layer in snap.layers]
    return [t for t in texts if isinstance(t, str)]


def read_one(path: Path) -> str:
    """Read ``path`` as both readers do, on this thread; what went wrong, or ''."""
    from bpmon.errors import BpmonError
    from bpmon.sources import RunFileSource
    from bpmon.trainer import Command

    for mode in ("replay", "watch"):
        source = RunFileSource(str(path), mode)  # type: ignore[arg-type]
        try:
            source.open_now()
        except BpmonError as exc:
            if "\n" in str(exc):
                return f"{mode}: an error of more than one line: {exc!r}"
            continue
        try:
            if source._backfill_due:
                source._backfill()
            for command in (Command("home"), Command("seek", 1), Command("end"), None):
                if command is not None:
                    source.send(command)
                source._poll()
                source._handle_commands()
                source._publish()
                bad = [t for t in shown_text(source.latest()) if not t.isprintable()]
                if bad:
                    return f"{mode}: a control character reaches the screen: {bad!r}"
        finally:
            source.stop()
            if source._file is not None:
                source._file.close()
            if source._opening is not None:
                source._opening[0].close()
    return ""


def line_reader_agrees(data: bytes) -> str:
    """The line reader on the bytes in memory, read in small and odd chunks: the lines it
    gives are the file's complete lines, with their offsets."""
    from bpmon.lines import LineReader

    want = [line + b"\n" for line in data.split(b"\n")[:-1]]
    chunk = random.Random(len(data)).choice([1, 7, 4096]) if len(data) < 65536 else 65536
    got = list(LineReader(io.BytesIO(data), chunk=chunk))
    if [line.data for line in got] != want:
        return "the line reader's lines are not the file's complete lines"
    if [line.offset for line in got] != [sum(map(len, want[:i])) for i in range(len(want))]:
        return "the line reader's offsets are wrong"
    return ""


def _reset_peak_rss() -> None:
    """Start the peak over: the child is forked from a pytest worker that may hold hundreds of
    MB (torch), and Linux carries the parent's high-water mark over fork and exec."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _peak_rss() -> int:
    """The process's peak resident memory since :func:`_reset_peak_rss` (VmHWM), in bytes."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def sweep(count: int) -> dict[str, Any]:
    """The child's work: ``count`` files, each under an alarm; a summary as JSON."""

    def hang(signum: int, frame: object) -> None:
        raise TimeoutError("hung")

    signal.signal(signal.SIGALRM, hang)
    _reset_peak_rss()
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "hostile.jsonl"
        for seed in range(count):
            data = hostile_file(seed)
            path.write_bytes(data)
            signal.alarm(HANG_AFTER)
            try:
                problem = line_reader_agrees(data) or read_one(path)
            except BaseException:  # every exception is what this counts, a hang's alarm too
                problem = traceback.format_exc(limit=-3)
            finally:
                signal.alarm(0)
            if problem:
                failures.append(f"seed {seed}: {problem}")
    peak = _peak_rss()
    return {"files": count, "failures": failures[:10], "failed": len(failures), "peak": peak}


def test_2000_hostile_files_no_traceback_no_hang_no_control_characters() -> None:
    done = subprocess.run(
        [sys.executable, __file__, str(FILES)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["files"] == FILES
    assert summary["failed"] == 0, "\n".join(summary["failures"])
    assert summary["peak"] < MEMORY_LIMIT, f"peak {summary['peak']:,} bytes"


def test_some_hostile_files_through_bpmon_replay(tmp_path: Path) -> None:
    """End to end: ``bpmon replay`` of hostile files is the monitor (here refused for want of a
    terminal, after the file was read) or one line and exit 2; never a traceback."""
    for seed in range(0, 4_000, 400):
        path = tmp_path / f"h{seed}.jsonl"
        path.write_bytes(hostile_file(seed))
        done = subprocess.run(
            [sys.executable, "-m", "bpmon", "replay", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 2, (seed, done.stderr)
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, (seed, done.stderr)
        assert done.stderr.startswith("bpmon: ") and done.stderr[:-1].isprintable()


if __name__ == "__main__":
    print(json.dumps(sweep(int(sys.argv[1]))))
