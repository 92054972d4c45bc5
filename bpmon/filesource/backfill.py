"""The scan of a long run file's earlier lines, behind the first frame: the loss curve before the
tail and every snapshot line's offset, then (for a file that does not record them) one pass of the
diagnosis over every snapshot in file order."""

from __future__ import annotations

import math
import re
import threading
import time

from bpmon.codec import DecodeError
from bpmon.curvepoints import points_of_raw, points_of_record
from bpmon.filesource.curve import PENDING, RECORDED, _Curve
from bpmon.filesource.decode import LineDecoding, _parse
from bpmon.lines import LineReader
from bpmon.readback import FindingsPass, Peek, RunInfo, decode_line, peek_line
from bpmon.runmodel import Restart, Snapshot

# The first frame comes first: the scan of a long file's earlier lines starts this long after
# the monitor has started its reader, and lets the UI thread in every YIELD_EVERY lines.
BACKFILL_AFTER = 0.5
YIELD_EVERY = 5000
YIELD_FOR = 0.002
_SNAPSHOT_PREFIX = re.compile(
    rb'\{"step":(\d+),.*?"loss":(null|-?[0-9.]+(?:[eE][-+]?\d+)?),.*?"run_id":(\d+),"layers":\['
)


class Backfill(LineDecoding):
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
                            curves[run_id].metrics.add_line(x, raw)
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
                        curves[run_id].metrics.add_record(line.step, record)
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
