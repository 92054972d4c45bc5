"""Sources of snapshots that are not a live run: a run file replayed, or followed as it grows.

The monitor shows whatever a *source* hands it: ``latest()`` gives the snapshot to show now,
``send()`` takes the commands the source understands and ``supports()`` says which those are, so
that a key that does not apply can say so. bpmon's :class:`~bpmon.trainer.Trainer` is one
source; :class:`RunFileSource` is the other, in two modes:

- ``replay``: the whole file, a cursor over its snapshots (left/right, home/end, play at a
  speed); the loss curve marks the cursor;
- ``watch``: the file followed as its writer appends to it, as ``tail -F`` does: a file that
  does not exist yet is waited for, a truncated or replaced file is read again from the start,
  a half-written last line waits for its newline, a corrupt line is skipped and counted.

Reading is shaped for files of millions of lines: the header and the last lines are read first,
so the first frame does not wait for the whole file; a background scan then fills in the loss
curve (and, for a replay, the offset of every snapshot line) from the rest. Only numbers are
kept per line (step, loss, offset: 24 bytes), never the parsed lines.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, Protocol

from bpmon.errors import BpmonError
from bpmon.filesource.backfill import BACKFILL_AFTER, Backfill
from bpmon.filesource.decode import _parse
from bpmon.filesource.follow import Following, _replaced, newest_run_file
from bpmon.filesource.snapshots import SnapshotBuilding
from bpmon.filesource.state import QUIET_AFTER, Mode
from bpmon.lines import MAX_LINE, LineReader, last_line_start, skip_line
from bpmon.readback import RunInfo
from bpmon.runfile import check_header, read_header
from bpmon.runmodel import Snapshot
from bpmon.trainer.commands import CURSOR_COMMANDS, Command, CommandKind

# What other modules import from here; the pieces of the class are in bpmon.filesource.
__all__ = [
    "POLL_INTERVAL",
    "QUIET_AFTER",
    "REPLAY_COMMANDS",
    "TAIL_BYTES",
    "WATCH_COMMANDS",
    "Mode",
    "RunFileSource",
    "Source",
    "newest_run_file",
]


class Source(Protocol):
    """What the monitor needs of whatever it shows: bpmon's :class:`~bpmon.trainer.Trainer`, or
    a :class:`RunFileSource`."""

    def latest(self) -> Snapshot: ...

    def send(self, command: Command) -> None: ...

    def supports(self, kind: CommandKind) -> bool: ...

    def start(self) -> None: ...

    def stop(self, timeout: float = ...) -> None: ...

    @property
    def alive(self) -> bool: ...


# How often a followed file is looked at: a line the writer appends is on screen within this
# plus one frame of the monitor (1/12 s), inside the 0.25 s the issue asks for.
POLL_INTERVAL = 0.05
# The first frame reads this much of the file's end to find its last snapshot.
TAIL_BYTES = 256 * 1024

# A replay plays and pauses like a run, and moves its cursor.
REPLAY_COMMANDS: frozenset[CommandKind] = CURSOR_COMMANDS | {
    "toggle_pause",
    "pause",
    "resume",
    "stop",
}
WATCH_COMMANDS: frozenset[CommandKind] = frozenset({"stop"})


class RunFileSource(Following, Backfill, SnapshotBuilding):
    """A run file as a source of snapshots, replayed or followed; see the module docstring.

    ``start()`` begins reading on a background thread; ``latest()`` is safe from any thread.
    A file that is not a run file, or of a newer version, raises :class:`BpmonError` from
    :meth:`open_now` (which the CLI calls first, to report it as one line and exit 2) or, for a
    file that appears later under ``watch``, shows the reason as the snapshot's message.
    """

    def __init__(self, path: str, mode: Mode, clock: Any = time.monotonic) -> None:
        self._started = 0.0
        # A folder (watch only) stands for its newest run file, looked for until there is one.
        self.folder = path if mode == "watch" and os.path.isdir(path) else None
        self.path = path if self.folder is None else (newest_run_file(path) or path)
        self.mode = mode
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._commands: list[Command] = []
        self._reset()
        self._latest = self._waiting_snapshot()

    # -- the consumer's side -----------------------------------------------------------------

    def latest(self) -> Snapshot:
        return self._latest

    def supports(self, kind: CommandKind) -> bool:
        return kind in (REPLAY_COMMANDS if self.mode == "replay" else WATCH_COMMANDS)

    def send(self, command: Command) -> None:
        with self._lock:
            self._commands.append(command)

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("source already started")
        self._started = self._clock()
        self._thread = threading.Thread(target=self._serve, name="bpmon-reader", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def open_now(self) -> None:
        """Read the header and the last snapshot now, on the caller's thread: a file that is not
        a run is reported before the monitor opens. A missing file is an error for a replay
        and something to wait for when watching."""
        if self.folder is not None and self.path == self.folder:
            return  # no run file in the folder yet: wait for one
        if not os.path.exists(self.path):
            if self.mode == "replay":
                raise BpmonError(f"{self.path}: no such file")
            return
        if os.path.isdir(self.path):
            raise BpmonError(f"{self.path}: is a directory; expected a run file (.jsonl)")
        self._open()
        if self.mode == "replay":
            self._check_replayable()
        self._publish()

    def _check_replayable(self) -> None:
        """A replay of a file with nothing to show is one line, not a wait for snapshots that
        no writer will add (a file still being written is for ``bpmon watch``)."""
        if self._file is None:
            if self._opening is None or not self._opening[1].pending:
                raise BpmonError(f"{self.path}: the file is empty: nothing to replay")
            raise BpmonError(
                f"{self.path}:1: the header has no newline and nothing follows it: "
                "nothing to replay"
            )
        if not self._run_order and not self._backfill_due:
            raise BpmonError(f"{self.path}: a header but no snapshot lines: nothing to replay")

    # -- opening the file ----------------------------------------------------------------------

    def _open(self) -> None:
        if self._opening is not None and _replaced(self.path, *self._opening):
            self._opening[0].close()
            self._opening = None
        if self._opening is None:
            f = _open_regular(self.path, self.mode)
            self._opening = (f, LineReader(f))
        f, lines = self._opening
        first = lines.next()
        # Past the limit, finished or not, a line is no longer held (peek() is empty).
        too_long = lines.pending > 0 and not lines.peek() if first is None else first.data is None
        if too_long:
            raise BpmonError(
                f"{self.path}:1: the first line is longer than {MAX_LINE:,} bytes: "
                "not a bpmon run file"
            )
        if first is None or first.data is None:
            # The writer has not finished its header yet: what was read is kept, and the next
            # poll reads only what it adds.
            if lines.peek() and not lines.peek().lstrip().startswith(b"{"):
                raise BpmonError(f"{self.path}:1: not a bpmon run file")
            return
        head = check_header(_parse(first.data), self.path)
        self._opening = None
        st = os.fstat(f.fileno())
        self._file = f
        self._inode = (st.st_dev, st.st_ino)
        self._read_header(head)
        self._header_end = first.size
        size = st.st_size
        # The tail: the last TAIL_BYTES, from the first line that starts inside them.
        start = max(self._header_end, size - TAIL_BYTES)
        if start > self._header_end:
            f.seek(start - 1)
            start += skip_line(f) - 1  # finish the line the cut fell into
            # A last line longer than the tail starts before the cut: take it whole.
            start = min(start, last_line_start(f, size, self._header_end))
        self._tail_start = start
        self._offset = start
        if start == self._header_end:
            self._lines = lines  # it holds what it read past the header: no byte read twice
            self._backfilled = True
            self._line_number = 2
        else:
            f.seek(start)
            self._lines = LineReader(f, start)
            # Line numbers past the backfill are unknown until it has counted the lines.
            self._line_number = 0
            self._backfill_due = True
        self._read_new()

    def _read_header(self, head: Mapping[str, Any]) -> None:
        header = read_header(head, self.path)
        self._info = self._header_info = RunInfo.of_header(header, Path(self.path).stem)
        self._liveness.writer(header.host, header.pid, header.started)

    # -- the reader thread -------------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stop.is_set():
            if self._backfill_due and self._clock() >= self._started + BACKFILL_AFTER:
                self._backfill_due = False
                threading.Thread(target=self._backfill, name="bpmon-backfill", daemon=True).start()
            try:
                self._poll()
            except BpmonError as exc:
                self._error = str(exc)
            except OSError as exc:
                self._error = f"{self.path}: {exc.strerror or exc}"
            self._handle_commands()
            self._advance_playback()
            self._publish()
            self._stop.wait(POLL_INTERVAL)
        if self._file is not None:
            self._file.close()
        if self._opening is not None:
            self._opening[0].close()

    def _poll(self) -> None:
        if self._file is None:
            if self.folder is not None:
                self.path = newest_run_file(self.folder) or self.folder
            if os.path.isfile(self.path):
                self._error = ""
                self._open()
            return
        if self.mode == "watch" and (self._check_replaced() or self._newer_in_folder()):
            self._file.close()
            self._reset()
            return
        if self.mode == "watch" or not self._backfilled or self._ended is None:
            self._read_new()
        if self.mode == "watch" and self._ended is None and self._liveness.gone(self._clock()):
            self._ended = "writer gone"  # no end line will come: its process has exited


_KINDS = (
    (stat.S_ISFIFO, "a pipe or FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _open_regular(path: str, mode: Mode) -> IO[bytes]:
    """``path`` opened for reading, unbuffered (:class:`LineReader` does the buffering), or one
    clear :class:`BpmonError` for a file that is not a regular file. Streams (``<(cat
    run.jsonl)``, a FIFO, ``/dev/zero``) are refused rather than read: a replay's cursor reads
    snapshot lines again by their offset (only numbers are kept per line), which a stream
    cannot give back, and copying one to disk first would let ``/dev/zero`` fill it. The check
    is a ``stat``, which, unlike opening a FIFO, never blocks."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
        raise BpmonError(
            f"{path}: {kind}, not a run file on disk; bpmon {mode} reads a regular file "
            "(it goes back to earlier lines): save the stream first (... > run.jsonl)"
        )
    return open(path, "rb", buffering=0)
