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

import math
import os
import re
import stat
import threading
import time
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Literal, Protocol

from bpmon.codec import DecodeError
from bpmon.cursor import ReplayCursor
from bpmon.curvepoints import Points, envelope, points_of, points_of_raw, points_of_record
from bpmon.errors import BpmonError
from bpmon.lines import MAX_LINE, LineReader, last_line_start, skip_line
from bpmon.liveness import Liveness
from bpmon.readback import FindingsPass, Peek, RunInfo, change, decode_line, peek_line
from bpmon.runfile import check_header, parse_line, read_header
from bpmon.runmodel import PREDICTION_ROWS, End, Finding, LayerStats, Restart, Snapshot
from bpmon.trainer.commands import CURSOR_COMMANDS, Command, CommandKind

Mode = Literal["replay", "watch"]


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
# The first frame comes first: the scan of a long file's earlier lines starts this long after
# the monitor has started its reader, and lets the UI thread in every YIELD_EVERY lines.
BACKFILL_AFTER = 0.5
YIELD_EVERY = 5000
YIELD_FOR = 0.002
_SNAPSHOT_PREFIX = re.compile(
    rb'\{"step":(\d+),.*?"loss":(null|-?[0-9.]+(?:[eE][-+]?\d+)?),.*?"run_id":(\d+),"layers":\['
)
# How often a watched folder is looked at for a newer run file.
FOLDER_CHECK = 1.0
# A writer that has written nothing for this long (at least; see bpmon.liveness) is quiet.
QUIET_AFTER = 5.0
# The first frame reads this much of the file's end to find its last snapshot.
TAIL_BYTES = 256 * 1024
# The loss curve handed to the panels has at most this many points (the plot thins it again).
CURVE_POINTS = 512

# A replay plays and pauses like a run, and moves its cursor.
REPLAY_COMMANDS: frozenset[CommandKind] = CURSOR_COMMANDS | {
    "toggle_pause",
    "pause",
    "resume",
    "stop",
}
WATCH_COMMANDS: frozenset[CommandKind] = frozenset({"stop"})


@dataclass
class _Curve:
    """One run's loss curve and where its snapshot lines start in the file."""

    steps: array[int] = field(default_factory=lambda: array("q"))
    losses: array[float] = field(default_factory=lambda: array("d"))
    offsets: array[int] = field(default_factory=lambda: array("q"))
    # Per snapshot: the index of its findings in the FindingsPass's sets; RECORDED when the
    # line carries its own, PENDING while the pass has not reached it.
    findings: array[int] = field(default_factory=lambda: array("i"))
    first_layers: tuple[LayerStats, ...] = ()
    info: RunInfo = field(default_factory=RunInfo)
    # The loss curve: a line's own point, or every update's since the previous line where the
    # line carries them (bpmon.curvepoints).
    point_steps: array[int] = field(default_factory=lambda: array("q"))
    point_losses: array[float] = field(default_factory=lambda: array("d"))
    _thin: tuple[int, tuple[tuple[int, ...], tuple[float, ...]]] | None = None

    def add(
        self, step: int, loss: float, offset: int, findings: int = -2, points: Points | None = None
    ) -> None:
        self.steps.append(step)
        self.losses.append(loss)
        self.offsets.append(offset)
        self.findings.append(findings)
        for x, y in points or ((step, loss),):
            self.point_steps.append(x)
            self.point_losses.append(y)

    def extend(self, other: _Curve) -> None:
        self.steps.extend(other.steps)
        self.losses.extend(other.losses)
        self.offsets.extend(other.offsets)
        self.findings.extend(other.findings)
        self.point_steps.extend(other.point_steps)
        self.point_losses.extend(other.point_losses)

    def thinned(self) -> tuple[tuple[int, ...], tuple[float, ...]]:
        """At most :data:`CURVE_POINTS` points, each stretch's lowest and highest (a spike
        stays; :func:`bpmon.curvepoints.envelope`), the first and last kept; NaN (a null
        loss) is left in, as the trainer's history leaves a diverged step. Kept until the
        curve grows."""
        n = len(self.point_steps)
        if self._thin is None or self._thin[0] != n:
            xs, ys = envelope(self.point_steps, self.point_losses, CURVE_POINTS)
            self._thin = n, (tuple(xs), tuple(ys))
        return self._thin[1]


RECORDED = -1
PENDING = -2


class RunFileSource:
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

    # -- reading -----------------------------------------------------------------------------

    def _reset(self) -> None:
        self._file: IO[bytes] | None = None
        # The file and its lines while its header is still being written (watch).
        self._opening: tuple[IO[bytes], LineReader] | None = None
        self._lines: LineReader | None = None
        self._second_header: int | None = None  # its line (0: not known yet)
        self._inode: tuple[int, int] | None = None
        # The run the next snapshot lines belong to: the header's, then each restart's.
        self._info = RunInfo(name=Path(self.path).stem)
        self._header_info = self._info
        self._restarts_in_tail = 0
        self._curves: dict[int, _Curve] = {}
        self._run_order: list[int] = []
        self._header_end = 0
        self._tail_start = 0
        self._offset = 0  # where the next complete line starts (the followed end)
        self._line_number = 1  # the number of the line at _offset
        self._backfilled = False
        self._last: Snapshot | None = None
        self._last_arrival = self._clock()
        self._ended: str | None = None
        self._liveness = Liveness(QUIET_AFTER)
        self._corrupt = 0
        self._first_corrupt: int | None = None
        self._corrupt_why = ""
        self._bad_offsets: set[int] = set()
        # The gradient-flow map's snapshots, by offset (layer_history).
        self._decoded: dict[int, tuple[int, tuple[LayerStats, ...]]] = {}
        self._cursor = ReplayCursor()
        self._error = ""
        self._published_key: tuple[object, ...] | None = None
        self._folder_checked = 0.0
        self._backfill_due = False
        # Findings for a file that does not record them (see bpmon.readback); the pass runs in
        # file order, so it starts on the follower's lines only once the earlier lines are in.
        self._pass = FindingsPass()
        self._needs_pass = True
        self._pass_running = False

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

    def _backfill(self) -> None:
        """Scan the lines between the header and the tail, on its own thread, with its own
        handle: the loss curve before the tail, and every snapshot line's offset."""
        curves: dict[int, _Curve] = {}
        order: list[int] = []
        corrupt = 0
        first_corrupt: int | None = None
        second_header: int | None = None
        why = ""
        number = 2
        run_id = 0
        info = self._header_info
        infos: dict[int, RunInfo] = {}
        # The lines the fast path reads are diagnosed later (_diagnose_file) when the file
        # does not record its findings.
        fast_index = PENDING if self._needs_pass else RECORDED
        try:
            with open(self.path, "rb", buffering=0) as f:
                f.seek(self._header_end)
                for piece in LineReader(f, self._header_end):
                    offset, raw = piece.offset, piece.data
                    if offset >= self._tail_start or self._stop.is_set():
                        break
                    if number % YIELD_EVERY == 0:
                        # Let the UI thread have the interpreter: a thread that never waits
                        # would make every one of its short turns wait out a switch interval.
                        time.sleep(YIELD_FOR)
                    if raw is None:  # longer than MAX_LINE
                        corrupt += 1
                        first_corrupt = first_corrupt or number
                        number += 1
                        continue
                    fast = _SNAPSHOT_PREFIX.match(raw) if raw.endswith(b"}\n") else None
                    if fast is not None and run_id in curves:
                        # bpmon's writers put step, loss and run_id first, in that order: the
                        # curve needs only those, and a regex is ten times cheaper than parsing
                        # the whole line (its layers) as JSON.
                        step, loss, rid = fast.groups()
                        x, y = int(step), math.nan if loss == b"null" else float(loss)
                        points = points_of_raw(raw, x, y)
                        if int(rid) == run_id and points is not None:
                            curves[run_id].add(x, y, offset, fast_index, points)
                            number += 1
                            continue
                    record = _parse(raw)
                    if record is not None and "format" in record:
                        second_header = second_header or number
                        number += 1
                        continue
                    try:
                        line = None if record is None else peek_line(record)
                        if (
                            record is not None
                            and isinstance(line, Peek)
                            and line.run_id not in curves
                        ):
                            line = decode_line(record)  # the run's first layers
                    except DecodeError as exc:
                        line, why = None, why or str(exc)
                        record = None
                    if record is None:
                        corrupt += 1
                        first_corrupt = first_corrupt or number
                    elif isinstance(line, Restart):
                        run_id = line.run_id
                        info = infos[run_id] = info.after(line)
                    elif isinstance(line, Snapshot | Peek):
                        run_id = line.run_id
                        if run_id not in curves:
                            layers = line.layers if isinstance(line, Snapshot) else ()
                            curves[run_id] = _Curve(first_layers=layers, info=info)
                            order.append(run_id)
                        index = RECORDED if "findings" in record else PENDING
                        points = points_of_record(record, line.step, line.loss)
                        curves[run_id].add(line.step, line.loss, offset, index, points)
                    number += 1
        except OSError:
            return
        with self._lock:
            for rid in self._run_order:
                # What the follower read since: after what the backfill found, in file order.
                curve = self._curves[rid]
                before = curves.get(rid)
                if before is None:
                    before = curves[rid] = _Curve(
                        first_layers=curve.first_layers, info=infos.get(rid, curve.info)
                    )
                    order.append(rid)
                before.extend(curve)
            self._curves = curves
            self._run_order = order
            if order and not self._restarts_in_tail:
                self._info = curves[order[-1]].info
            if any(PENDING in curve.findings for curve in curves.values()):
                self._pass_running = True
                threading.Thread(
                    target=self._diagnose_file, name="bpmon-findings", daemon=True
                ).start()
            self._corrupt += corrupt
            self._corrupt_why = self._corrupt_why or why
            if first_corrupt is not None:
                self._first_corrupt = min(first_corrupt, self._first_corrupt or first_corrupt)
            if second_header is not None:
                self._second_header = second_header
            self._line_number = number + self._lines_since_tail
            self._backfilled = True

    _lines_since_tail = 0

    def _read_new(self) -> bool:
        """Read the complete lines the writer has added; True when there were any."""
        lines = self._lines
        if lines is None:
            return False
        got = False
        # None: nothing more, or a line still being written, whose bytes so far the reader
        # keeps while it waits for the newline.
        while (line := lines.next()) is not None:
            got = True
            with self._lock:
                self._take(line.data, line.offset)
            self._offset = lines.offset
        if got:
            self._last_arrival = self._clock()
            self._liveness.arrived(self._last_arrival)
        return got

    def _take(self, raw: bytes | None, offset: int) -> None:
        """One complete line at ``offset``; ``raw`` is None for a line longer than
        :data:`~bpmon.lines.MAX_LINE` (a corrupt line, whose bytes were never held)."""
        number = self._line_number
        self._lines_since_tail += 1
        if self._line_number:
            self._line_number += 1
        record = None if raw is None else _parse(raw)
        if record is None:
            self._count_corrupt(number, "")
            return
        if "format" in record:
            # Two run files joined (`cat a.jsonl b.jsonl`): a header is not a snapshot.
            if self._second_header is None:
                self._second_header = number
            return
        self._take_record(record, offset, number)

    def _take_record(self, record: dict[str, Any], offset: int, number: int) -> None:
        """What a complete, parsed line means: an event, or a snapshot of the current run."""
        try:
            line = decode_line(record)
        except DecodeError as exc:
            self._count_corrupt(number, str(exc))
            return
        if isinstance(line, End):
            self._ended = line.state
        elif isinstance(line, Restart):
            self._info = self._info.after(line)
            self._restarts_in_tail += 1
        elif isinstance(line, Snapshot):
            curve = self._curves.get(line.run_id)
            if curve is None:
                curve = self._curves[line.run_id] = _Curve(
                    first_layers=line.layers, info=self._info
                )
                self._run_order.append(line.run_id)
            recorded = "findings" in record
            self._needs_pass = not recorded
            if recorded:
                index = RECORDED
            elif self._backfilled and not self._pass_running:
                index = self._pass.add(line)
            else:
                index = PENDING  # _diagnose_file reaches it in file order
            points = points_of(line.step, line.loss, line.update_start, line.update_losses)
            curve.add(line.step, line.loss, offset, index, points)
            self._last = line

    def _count_corrupt(self, number: int, why: str) -> None:
        self._corrupt += 1
        if number and self._first_corrupt is None:
            self._first_corrupt = number
            self._corrupt_why = why

    def _diagnose_file(self) -> None:
        """The findings of a file that does not record them, on their own thread once the
        earlier lines are in: one :class:`FindingsPass` over every snapshot line in file order
        (the curves hold them in that order), then over what the follower read meanwhile."""
        findings = FindingsPass()
        with self._lock:
            self._pass = findings
            curves = [self._curves[run_id] for run_id in self._run_order]
        done = 0
        try:
            with open(self.path, "rb") as f:
                for curve in curves:
                    for i in range(len(curve.offsets)):
                        if self._stop.is_set():
                            return
                        if curve.findings[i] != PENDING:
                            continue
                        f.seek(curve.offsets[i])
                        record = _parse(f.readline())
                        curve.findings[i] = 0 if record is None else findings.add_record(record)
                        done += 1
                        if done % YIELD_EVERY == 0:
                            time.sleep(YIELD_FOR)  # the UI thread's turn (see _backfill)
        except OSError:
            pass
        with self._lock:
            for curve in self._curves.values():
                for i, offset in enumerate(curve.offsets):
                    if curve.findings[i] == PENDING:
                        snap = self._snapshot_at(offset)
                        curve.findings[i] = 0 if snap is None else findings.add(snap)
            self._pass_running = False
            self._published_key = None  # show the findings now known

    def _newer_in_folder(self) -> bool:
        """Watching a folder: a newer run file has appeared there (a new run started), which
        is the one to follow now. Looked for once a second, not at every poll."""
        if self.folder is None:
            return False
        now = self._clock()
        if now - self._folder_checked < FOLDER_CHECK:
            return False
        self._folder_checked = now
        newest = newest_run_file(self.folder)
        return newest is not None and newest != self.path

    def _check_replaced(self) -> bool:
        """True when the file was truncated or replaced (``tail -F``): read it again."""
        try:
            st = os.stat(self.path)
        except OSError:
            return self._file is not None
        if self._inode is not None and (st.st_dev, st.st_ino) != self._inode:
            return True
        return st.st_size < self._offset

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

    def _handle_commands(self) -> None:
        with self._lock:
            commands, self._commands = self._commands, []
        if self.mode == "replay":
            for command in commands:
                self._cursor.handle(command, self._snapshot_count(), self._clock())

    def _advance_playback(self) -> None:
        self._cursor.advance(self._clock(), self._snapshot_count())

    def _snapshot_count(self) -> int:
        """Snapshots in the file, every run of it: what a replay's cursor moves over."""
        return sum(len(curve.offsets) for curve in self._curves.values())

    def _locate(self) -> tuple[int, _Curve, int | None] | None:
        """The run to show, its curve, and the cursor's index in it (None: its last line)."""
        if not self._run_order:
            return None
        if self.mode == "replay" and self._cursor.index is not None and self._backfilled:
            at = self._cursor.index
            for run_id in self._run_order:
                curve = self._curves[run_id]
                if at < len(curve.offsets):
                    return run_id, curve, at
                at -= len(curve.offsets)
        run_id = self._run_order[-1]
        return run_id, self._curves[run_id], None

    # -- snapshots -----------------------------------------------------------------------------

    def _publish(self) -> None:
        """Build a new snapshot only when what it shows has changed, so that an idle replay
        hands the monitor the same object and nothing redraws."""
        with self._lock:
            quiet = int(self._clock() - self._last_arrival) if self.mode == "watch" else 0
            key = (
                self._offset,
                self._cursor.index,
                self._cursor.playing,
                self._cursor.speed,
                self._ended,
                self._corrupt,
                self._error,
                self._backfilled,
                quiet if quiet >= self._liveness.quiet_after() else 0,
                len(self._run_order),
            )
            if key == self._published_key:
                return
            self._published_key = key
            self._latest = self._build()

    def _build(self) -> Snapshot:
        located = self._locate()
        if located is None or self._last is None:
            return self._waiting_snapshot()
        run_id, curve, index = located
        snap = self._last
        if index is not None:
            snap = self._snapshot_at(curve.offsets[index]) or snap
        at = len(curve.findings) - 1 if index is None else index
        recorded = curve.findings[at] if at >= 0 else PENDING
        findings: tuple[Finding, ...] = ()
        if recorded == RECORDED:
            findings = snap.findings
        elif recorded >= 0:
            findings = self._pass.sets[recorded]
        steps, losses = curve.thinned()
        previous: tuple[tuple[int, ...], tuple[float, ...]] = ((), ())
        order = self._run_order.index(run_id)
        if order > 0:
            previous = self._curves[self._run_order[order - 1]].thinned()
        return replace(
            snap,
            **curve.info.context(),
            run_id=run_id,
            loss_steps=steps,
            loss_values=losses,
            previous_loss_steps=previous[0],
            previous_loss_values=previous[1],
            layers=curve.info.kinded(snap.layers),
            initial_layers=curve.info.kinded(curve.first_layers),
            findings=findings,
            message=self._message() or snap.message,
            mode=self._mode_word(),
            detail=self._detail(order, index),
            marker_step=None if index is None else curve.steps[index],
        )

    def layer_history(self, limit: int) -> list[tuple[int, tuple[LayerStats, ...]]]:
        """The shown run's layers at up to ``limit`` of its snapshots, evenly spread, up to
        the replay's cursor (to the last one read, when following), the cursor's own last:
        what the monitor's gradient-flow map shows. Lines once decoded are kept (as layers)."""
        with self._lock:
            located = self._locate()
            if located is None or limit <= 0:
                return []
            _, curve, index = located
            end = len(curve.offsets) if index is None else index + 1
            # A stride that changes only when the run doubles: most picks stay decoded.
            stride = 1
            while end > stride * limit:
                stride *= 2
            picks = [*range(0, end - 1, stride), end - 1] if end else []
            offsets = [curve.offsets[i] for i in picks]
        out = []
        for offset in offsets:
            item = self._decoded.get(offset)
            if item is None:
                snap = self._snapshot_at(offset)
                if snap is None:
                    continue
                item = (snap.step, curve.info.kinded(snap.layers))
                if len(self._decoded) > 4096:
                    self._decoded.clear()
                self._decoded[offset] = item
            out.append(item)
        return out

    def _snapshot_at(self, offset: int) -> Snapshot | None:
        """The snapshot line at ``offset``; None (and counted once as corrupt) when it cannot
        be read or does not fit the model."""
        if offset in self._bad_offsets:
            return None
        try:
            with open(self.path, "rb") as f:
                f.seek(offset)
                record = _parse(f.readline())
            line = None if record is None else decode_line(record)
            why = "" if isinstance(line, Snapshot) else "not a snapshot line"
        except OSError:
            return None
        except DecodeError as exc:
            line, why = None, str(exc)
        if isinstance(line, Snapshot):
            return line
        self._bad_offsets.add(offset)
        self._corrupt += 1
        self._corrupt_why = self._corrupt_why or why
        return None

    def _mode_word(self) -> str:
        if self.mode == "replay":
            return "REPLAY"
        return "WATCHING" if self._ended is None else f"ENDED ({self._ended})"

    def _detail(self, order: int, index: int | None) -> str:
        parts = []
        if self.mode == "replay":
            total = self._snapshot_count()
            cursor = self._cursor.index
            at = total if cursor is None or index is None else cursor + 1
            parts.append(f"snapshot {at:,}/{total:,}")
        runs = len(self._run_order)
        if runs > 1:
            run = f"run {order + 1} of {runs}"
            if order > 0:
                before = self._curves[self._run_order[order - 1]].info
                run += f": {change(before, self._curves[self._run_order[order]].info)}"
            parts.append(run)
        if self.mode == "replay":
            playing = "playing" if self._cursor.playing else "paused"
            parts.append(f"{playing} at {self._cursor.speed}/s")
            if self._ended is not None:
                parts.append(f"the run ended {self._ended}")
        elif self._ended is None:
            quiet = self._clock() - self._last_arrival
            if quiet >= self._liveness.quiet_after():
                parts.append(f"writer quiet for {quiet:.0f} s")
        if not self._backfilled:
            parts.append("reading the earlier lines…")
        elif self._pass_running:
            parts.append("diagnosing the earlier lines…")
        return " · ".join(parts)

    def _message(self) -> str:
        if self._error:
            return self._error
        parts = []
        if self._corrupt:
            where = f" (line {self._first_corrupt})" if self._first_corrupt else ""
            noun = "line" if self._corrupt == 1 else "lines"
            why = f": {self._corrupt_why}" if self._corrupt_why else ""
            parts.append(f"{self._corrupt} corrupt {noun} skipped{where}{why}")
        if self._second_header is not None:
            where = f"line {self._second_header}: " if self._second_header else ""
            parts.append(f"{where}a second run's header (two files joined?)")
        return " · ".join(parts)

    def _waiting_snapshot(self) -> Snapshot:
        if self.folder is not None and self.path == self.folder:
            detail = f"waiting for a run file (*.jsonl) in {self.folder}"
        elif os.path.exists(self.path):
            detail = "waiting for the first snapshot"
        else:
            detail = f"waiting for {self.path} to appear"
        return Snapshot(
            **self._info.context(),
            state="paused",
            message=self._error,
            mode=self._mode_word(),
            detail=detail,
        )


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


def _replaced(path: str, f: IO[bytes], lines: LineReader) -> bool:
    """A file whose header was still being written has been replaced or truncated since."""
    try:
        st = os.stat(path)
        held = os.fstat(f.fileno())
    except OSError:
        return True
    return (st.st_dev, st.st_ino) != (held.st_dev, held.st_ino) or st.st_size < lines.offset


def _parse(raw: bytes) -> dict[str, Any] | None:
    """A line's object, its predictions cut to the rows the live monitor shows
    (:data:`~bpmon.runmodel.PREDICTION_ROWS`) before the codec decodes them: a file may hold
    400,000, and decoding them, then building the table's rows on the UI thread, would hang it.
    (Strings are made printable by the codec as it decodes them.)"""
    record = parse_line(raw)
    if record is not None:
        rows = record.get("predictions")
        if isinstance(rows, list) and len(rows) > PREDICTION_ROWS:
            record["predictions"] = rows[:PREDICTION_ROWS]
    return record


def newest_run_file(folder: str) -> str | None:
    """The most recently modified ``*.jsonl`` in ``folder`` (``bpmon watch DIR``)."""
    candidates = [p for p in Path(folder).glob("*.jsonl") if p.is_file()]
    if not candidates:
        return None
    return str(max(candidates, key=lambda p: p.stat().st_mtime))
