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

import contextlib
import math
import os
import re
import threading
import time
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Literal, Protocol

from bpmon.config import Thresholds
from bpmon.diagnosis import WINDOW, Diagnosis, evaluate
from bpmon.errors import BpmonError
from bpmon.finding import Finding
from bpmon.runfile import check_header, denum, layer_from_record, parse_line
from bpmon.telemetry import LayerStats
from bpmon.trainer import Command, CommandKind, Prediction, Snapshot, State
from bpmon.trainer.commands import CURSOR_COMMANDS
from bpmon.trainer.states import STATES

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
# A writer that has written nothing for this long is said to be quiet.
QUIET_AFTER = 5.0
# The first frame reads this much of the file's end to find its last snapshot.
TAIL_BYTES = 256 * 1024
# The loss curve handed to the panels has at most this many points (the plot thins it again).
CURVE_POINTS = 512
# Replay speeds, in snapshots per second of playback.
SPEEDS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)

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
    first_layers: tuple[LayerStats, ...] = ()

    def add(self, step: int, loss: float, offset: int) -> None:
        self.steps.append(step)
        self.losses.append(loss)
        self.offsets.append(offset)

    def thinned(self, upto: int | None = None) -> tuple[tuple[int, ...], tuple[float, ...]]:
        """At most :data:`CURVE_POINTS` evenly spread points, the first and last kept; NaN
        (a null loss) is left in, as the trainer's history leaves a diverged step."""
        n = len(self.steps) if upto is None else min(upto, len(self.steps))
        if n <= CURVE_POINTS:
            picks: range | list[int] = range(n)
        else:
            picks = [round(i * (n - 1) / (CURVE_POINTS - 1)) for i in range(CURVE_POINTS)]
        return tuple(self.steps[i] for i in picks), tuple(self.losses[i] for i in picks)


@dataclass
class _Info:
    """What the header (and restart events) say about the run."""

    name: str = ""
    architecture: str = ""
    switches: str = ""
    epochs: int | None = None
    classes: tuple[str, ...] = ()
    thresholds: Thresholds = field(default_factory=Thresholds)
    # Each layer's kind by name ("Linear"), from the header's layer descriptions.
    kinds: dict[str, str] = field(default_factory=dict)


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
        self._publish()

    # -- reading -----------------------------------------------------------------------------

    def _reset(self) -> None:
        self._file: IO[bytes] | None = None
        self._inode: tuple[int, int] | None = None
        self._info = _Info()
        self._curves: dict[int, _Curve] = {}
        self._run_order: list[int] = []
        self._header_end = 0
        self._tail_start = 0
        self._offset = 0  # where the next complete line starts (the followed end)
        self._line_number = 1  # the number of the line at _offset
        self._backfilled = False
        self._last_record: dict[str, Any] | None = None
        self._last_arrival = self._clock()
        self._ended: str | None = None
        self._corrupt = 0
        self._first_corrupt: int | None = None
        self._cursor: int | None = None  # replay: index into the current run's offsets
        self._cursor_run: int | None = None
        self._playing = False
        self._speed = 2
        self._play_mark = 0.0
        self._error = ""
        self._published_key: tuple[object, ...] | None = None
        self._folder_checked = 0.0
        self._backfill_due = False
        self._diagnosis = Diagnosis()
        self._parsed: dict[int, tuple[int, tuple[LayerStats, ...]]] = {}

    def _open(self) -> None:
        f = open(self.path, "rb")  # noqa: SIM115 - held open while the file is followed
        first = f.readline()
        if not first.endswith(b"\n"):
            # The writer has not finished its header yet; look again at the next poll.
            f.close()
            if first and not first.lstrip().startswith(b"{"):
                raise BpmonError(f"{self.path}:1: not a bpmon run file")
            return
        head = check_header(parse_line(first), self.path)
        st = os.fstat(f.fileno())
        self._file = f
        self._inode = (st.st_dev, st.st_ino)
        self._read_header(head)
        self._header_end = f.tell()
        size = st.st_size
        # The tail: the last TAIL_BYTES, from the first line that starts inside them.
        start = max(self._header_end, size - TAIL_BYTES)
        if start > self._header_end:
            f.seek(start - 1)
            f.readline()  # finish the line the cut fell into
            start = f.tell()
        self._tail_start = start
        self._offset = start
        f.seek(start)
        if start == self._header_end:
            self._backfilled = True
            self._line_number = 2
        else:
            # Line numbers past the backfill are unknown until it has counted the lines.
            self._line_number = 0
            self._backfill_due = True
        self._read_new()

    def _read_header(self, head: Mapping[str, Any]) -> None:
        info = self._info
        info.name = str(head.get("name") or Path(self.path).stem)
        info.architecture = str(head.get("architecture") or "")
        info.switches = str(head.get("switches") or info.architecture)
        epochs = head.get("epochs")
        info.epochs = epochs if isinstance(epochs, int) and not isinstance(epochs, bool) else None
        classes = head.get("classes")
        info.classes = tuple(str(c) for c in classes) if isinstance(classes, list) else ()
        th = head.get("thresholds")
        if isinstance(th, dict):
            with contextlib.suppress(TypeError, ValueError):
                info.thresholds = Thresholds(
                    **{k: float(v) for k, v in th.items() if k in Thresholds.__dataclass_fields__}
                )
        described = head.get("layers")
        if isinstance(described, list):
            info.kinds = {
                str(x["name"]): str(x["kind"])
                for x in described
                if isinstance(x, dict) and isinstance(x.get("kind"), str) and "name" in x
            }
        if not info.architecture:
            layers = head.get("layers")
            if isinstance(layers, list) and layers:
                sizes = [layers[0].get("fan_in", "?")] + [x.get("fan_out", "?") for x in layers]
                info.architecture = "-".join(str(s) for s in sizes)
                info.switches = info.switches or info.architecture

    def _backfill(self) -> None:
        """Scan the lines between the header and the tail, on its own thread, with its own
        handle: the loss curve before the tail, and every snapshot line's offset."""
        curves: dict[int, _Curve] = {}
        order: list[int] = []
        corrupt = 0
        first_corrupt: int | None = None
        number = 2
        run_id = 0
        try:
            with open(self.path, "rb") as f:
                f.seek(self._header_end)
                offset = self._header_end
                while offset < self._tail_start and not self._stop.is_set():
                    raw = f.readline()
                    if not raw:
                        break
                    if number % YIELD_EVERY == 0:
                        # Let the UI thread have the interpreter: a thread that never waits
                        # would make every one of its short turns wait out a switch interval.
                        time.sleep(YIELD_FOR)
                    fast = _SNAPSHOT_PREFIX.match(raw) if raw.endswith(b"}\n") else None
                    if fast is not None and run_id in curves:
                        # bpmon's writers put step, loss and run_id first, in that order: the
                        # curve needs only those, and a regex is ten times cheaper than parsing
                        # the whole line (its layers) as JSON.
                        step, loss, rid = fast.groups()
                        if int(rid) == run_id:
                            curves[run_id].add(
                                int(step), math.nan if loss == b"null" else float(loss), offset
                            )
                            offset += len(raw)
                            number += 1
                            continue
                    record = parse_line(raw)
                    if record is None:
                        corrupt += 1
                        first_corrupt = first_corrupt or number
                    elif "event" in record:
                        if record.get("event") == "restart":
                            run_id = _int(record.get("run_id"), run_id + 1)
                    else:
                        run_id = _int(record.get("run_id"), run_id)
                        if run_id not in curves:
                            curves[run_id] = _Curve(first_layers=_layers(record))
                            order.append(run_id)
                        curves[run_id].add(
                            _int(record.get("step"), 0), denum(record.get("loss")), offset
                        )
                    offset += len(raw)
                    number += 1
        except OSError:
            return
        with self._lock:
            for rid, curve in self._curves.items():
                # What the follower read since: after what the backfill found.
                before = curves.setdefault(rid, _Curve(first_layers=curve.first_layers))
                if rid not in order:
                    order.append(rid)
                before.steps.extend(curve.steps)
                before.losses.extend(curve.losses)
                before.offsets.extend(curve.offsets)
            self._curves = curves
            self._run_order = order
            self._corrupt += corrupt
            if first_corrupt is not None:
                self._first_corrupt = min(first_corrupt, self._first_corrupt or first_corrupt)
            self._line_number = number + self._lines_since_tail
            self._backfilled = True

    _lines_since_tail = 0

    def _read_new(self) -> bool:
        """Read the complete lines the writer has added; True when there were any."""
        f = self._file
        if f is None:
            return False
        f.seek(self._offset)
        got = False
        while True:
            raw = f.readline()
            if not raw.endswith(b"\n"):
                break  # nothing more, or a line still being written: wait for its newline
            got = True
            with self._lock:
                self._take(raw, self._offset)
            self._offset += len(raw)
        if got:
            self._last_arrival = self._clock()
        return got

    def _take(self, raw: bytes, offset: int) -> None:
        number = self._line_number
        self._lines_since_tail += 1
        if self._line_number:
            self._line_number += 1
        record = parse_line(raw)
        if record is None:
            self._corrupt += 1
            if number and self._first_corrupt is None:
                self._first_corrupt = number
            return
        event = record.get("event")
        if event == "end":
            state = record.get("state")
            self._ended = state if isinstance(state, str) else "stopped"
            return
        if event == "restart":
            self._info.architecture = str(record.get("architecture") or self._info.architecture)
            self._info.switches = str(record.get("switches") or self._info.architecture)
            return
        if event is not None:
            return  # an event a later version added: not for this reader
        run_id = _int(record.get("run_id"), 0)
        curve = self._curves.get(run_id)
        if curve is None:
            curve = self._curves[run_id] = _Curve(first_layers=_layers(record))
            self._run_order.append(run_id)
        curve.add(_int(record.get("step"), 0), denum(record.get("loss")), offset)
        self._last_record = record

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

    def _handle_commands(self) -> None:
        with self._lock:
            commands, self._commands = self._commands, []
        for command in commands:
            if self.mode != "replay":
                continue
            total = self._snapshot_count()
            if not total:
                continue
            current = total - 1 if self._cursor is None else self._cursor
            kind = command.kind
            if kind == "seek":
                self._cursor = min(total - 1, max(0, current + int(command.amount)))
                self._playing = False
            elif kind == "home":
                self._cursor, self._playing = 0, False
            elif kind == "end":
                self._cursor, self._playing = total - 1, False
            elif kind in ("toggle_pause", "resume", "pause"):
                self._playing = {"pause": False, "resume": True}.get(kind, not self._playing)
                if self._playing and current >= total - 1:
                    self._cursor = 0  # play from the start when at the end
                self._play_mark = self._clock()
            elif kind == "speed":
                i = SPEEDS.index(self._speed) + (1 if command.amount > 1 else -1)
                self._speed = SPEEDS[min(len(SPEEDS) - 1, max(0, i))]

    def _advance_playback(self) -> None:
        if not self._playing or self._cursor is None:
            return
        now = self._clock()
        steps = int((now - self._play_mark) * self._speed)
        if steps:
            self._play_mark += steps / self._speed
            total = self._snapshot_count()
            self._cursor = min(total - 1, self._cursor + steps)
            if self._cursor >= total - 1:
                self._playing = False

    def _current_curve(self) -> tuple[int, _Curve] | None:
        if not self._run_order:
            return None
        run_id = self._run_order[-1]
        return run_id, self._curves[run_id]

    def _snapshot_count(self) -> int:
        current = self._current_curve()
        return 0 if current is None else len(current[1].offsets)

    # -- snapshots -----------------------------------------------------------------------------

    def _publish(self) -> None:
        """Build a new snapshot only when what it shows has changed, so that an idle replay
        hands the monitor the same object and nothing redraws."""
        with self._lock:
            quiet = int(self._clock() - self._last_arrival) if self.mode == "watch" else 0
            key = (
                self._offset,
                self._cursor,
                self._playing,
                self._speed,
                self._ended,
                self._corrupt,
                self._error,
                self._backfilled,
                quiet if quiet >= QUIET_AFTER else 0,
                len(self._run_order),
            )
            if key == self._published_key:
                return
            self._published_key = key
            snapshot = self._build()
            if self.mode == "watch":
                snapshot = replace(snapshot, findings=self._diagnosis.add(snapshot))
            else:
                snapshot = replace(snapshot, findings=self._findings_at_cursor(snapshot))
            self._latest = snapshot

    def _findings_at_cursor(self, snapshot: Snapshot) -> tuple[Finding, ...]:
        """A replay's findings where its cursor stands: the rules over the snapshots up to it
        (a window of :data:`bpmon.diagnosis.WINDOW`), without hysteresis, so that moving the
        cursor shows at once what a live run showed there."""
        current = self._current_curve()
        if current is None or not self._backfilled:
            return evaluate([snapshot])
        _, curve = current
        end = len(curve.offsets) if self._cursor is None else self._cursor + 1
        window = []
        for offset in curve.offsets[max(0, end - WINDOW) : end - 1]:
            record = self._record_at(offset)
            if record is not None:
                window.append(
                    replace(snapshot, layers=_layers(record), loss=denum(record.get("loss")))
                )
        window.append(snapshot)
        return evaluate(window)

    def _build(self) -> Snapshot:
        current = self._current_curve()
        if current is None:
            return self._waiting_snapshot()
        run_id, curve = current
        record = self._last_record or {}
        upto: int | None = None
        if self.mode == "replay" and self._cursor is not None and self._backfilled:
            upto = self._cursor + 1
            record = self._record_at(curve.offsets[self._cursor]) or record
        steps, losses = curve.thinned(None)
        previous: tuple[tuple[int, ...], tuple[float, ...]] = ((), ())
        index = self._run_order.index(run_id)
        if index > 0:
            previous = self._curves[self._run_order[index - 1]].thinned()
        state = record.get("state")
        run_state: State = state if state in STATES else "running"
        info = self._info
        return Snapshot(
            run_id=run_id,
            preset=info.name,
            config=None,
            architecture=info.architecture,
            switches=info.switches,
            state=run_state,
            step=_int(record.get("step"), 0),
            epoch=_int(record.get("epoch"), 0),
            epochs=info.epochs,
            loss=denum(record.get("loss")),
            loss_steps=steps,
            loss_values=losses,
            previous_loss_steps=previous[0],
            previous_loss_values=previous[1],
            layers=self._kinded(_layers(record)),
            initial_layers=self._kinded(curve.first_layers),
            accuracy=_optional(record.get("accuracy")),
            test_accuracy=_optional(record.get("test_accuracy")),
            predictions=_predictions(record.get("predictions")),
            classes=info.classes,
            steps_per_second=self._rate(curve),
            lr=denum(record.get("lr")),
            elapsed=denum(record.get("time")),
            thresholds=info.thresholds,
            diverged_step=_optional_int(record.get("diverged_step")),
            diverged_layer=_optional_str(record.get("diverged_layer")),
            message=self._message(),
            mode=self._mode_word(),
            detail=self._detail(curve, upto),
            marker_step=curve.steps[upto - 1] if upto else None,
        )

    def _kinded(self, layers: tuple[LayerStats, ...]) -> tuple[LayerStats, ...]:
        kinds = self._info.kinds
        if not kinds:
            return layers
        return tuple(replace(x, kind=kinds.get(x.name, x.kind)) for x in layers)

    def layer_history(self, limit: int) -> list[tuple[int, tuple[LayerStats, ...]]]:
        """The current run's layers at up to ``limit`` of its snapshots, evenly spread, up to
        the replay's cursor (to the last one read, when following), the cursor's own last:
        what the monitor's gradient-flow map shows. Lines once parsed are kept (as layers)."""
        with self._lock:
            current = self._current_curve()
            if current is None or limit <= 0:
                return []
            _, curve = current
            end = len(curve.offsets)
            if self.mode == "replay" and self._cursor is not None and self._backfilled:
                end = self._cursor + 1
            # A stride that changes only when the run doubles: most picks stay parsed.
            stride = 1
            while end > stride * limit:
                stride *= 2
            picks = [*range(0, end - 1, stride), end - 1] if end else []
            offsets = [curve.offsets[i] for i in picks]
        out = []
        for offset in offsets:
            item = self._parsed.get(offset)
            if item is None:
                record = self._record_at(offset)
                if record is None:
                    continue
                item = (_int(record.get("step"), 0), self._kinded(_layers(record)))
                if len(self._parsed) > 4096:
                    self._parsed.clear()
                self._parsed[offset] = item
            out.append(item)
        return out

    def _record_at(self, offset: int) -> dict[str, Any] | None:
        try:
            with open(self.path, "rb") as f:
                f.seek(offset)
                return parse_line(f.readline())
        except OSError:
            return None

    def _rate(self, curve: _Curve) -> float:
        return 0.0

    def _mode_word(self) -> str:
        if self.mode == "replay":
            return "REPLAY"
        return "WATCHING" if self._ended is None else f"ENDED ({self._ended})"

    def _detail(self, curve: _Curve, upto: int | None) -> str:
        parts = []
        if self.mode == "replay":
            total = len(curve.offsets)
            at = total if upto is None else upto
            parts.append(f"snapshot {at:,}/{total:,}")
            parts.append(f"{'playing' if self._playing else 'paused'} at {self._speed}/s")
            if self._ended is not None:
                parts.append(f"the run ended {self._ended}")
        elif self._ended is None:
            quiet = self._clock() - self._last_arrival
            if quiet >= QUIET_AFTER:
                parts.append(f"writer quiet for {quiet:.0f} s")
        if not self._backfilled:
            parts.append("reading the earlier lines…")
        return " · ".join(parts)

    def _message(self) -> str:
        if self._error:
            return self._error
        if self._corrupt:
            where = f" (line {self._first_corrupt})" if self._first_corrupt else ""
            noun = "line" if self._corrupt == 1 else "lines"
            return f"{self._corrupt} corrupt {noun} skipped{where}"
        return ""

    def _waiting_snapshot(self) -> Snapshot:
        if self.folder is not None and self.path == self.folder:
            detail = f"waiting for a run file (*.jsonl) in {self.folder}"
        elif os.path.exists(self.path):
            detail = "waiting for the first snapshot"
        else:
            detail = f"waiting for {self.path} to appear"
        return Snapshot(
            run_id=0,
            preset=self._info.name or Path(self.path).stem,
            config=None,
            architecture=self._info.architecture,
            switches=self._info.switches,
            state="paused",
            step=0,
            epoch=0,
            epochs=self._info.epochs,
            loss=math.nan,
            loss_steps=(),
            loss_values=(),
            previous_loss_steps=(),
            previous_loss_values=(),
            layers=(),
            initial_layers=(),
            accuracy=None,
            test_accuracy=None,
            predictions=(),
            classes=self._info.classes,
            steps_per_second=0.0,
            lr=math.nan,
            elapsed=0.0,
            thresholds=self._info.thresholds,
            message=self._error,
            mode=self._mode_word(),
            detail=detail,
        )


def newest_run_file(folder: str) -> str | None:
    """The most recently modified ``*.jsonl`` in ``folder`` (``bpmon watch DIR``)."""
    candidates = [p for p in Path(folder).glob("*.jsonl") if p.is_file()]
    if not candidates:
        return None
    return str(max(candidates, key=lambda p: p.stat().st_mtime))


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _optional(value: Any) -> float | None:
    return None if value is None else denum(value)


def _optional_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _layers(record: Mapping[str, Any]) -> tuple[LayerStats, ...]:
    layers = record.get("layers")
    if not isinstance(layers, list):
        return ()
    return tuple(layer_from_record(x) for x in layers if isinstance(x, dict))


def _predictions(rows: Any) -> tuple[Prediction, ...]:
    if not isinstance(rows, list):
        return ()
    out = []
    for row in rows:
        if not isinstance(row, dict):
            continue
        inputs = row.get("input") or []
        output = row.get("output") or []
        out.append(
            Prediction(
                inputs=tuple(denum(v) for v in inputs) if isinstance(inputs, list) else (),
                target=_int(row.get("target"), 0),
                output=tuple(denum(v) for v in output) if isinstance(output, list) else (),
                predicted=_int(row.get("predicted"), 0),
                correct=bool(row.get("correct")),
            )
        )
    return tuple(out)
