"""Reading the complete lines a writer has added to a run file, and what one line means: an event,
a snapshot of the current run, or a corrupt line (skipped and counted)."""

from __future__ import annotations

from typing import Any

from bpmon.codec import DecodeError
from bpmon.curvepoints import points_of
from bpmon.filesource.curve import PENDING, RECORDED, _Curve
from bpmon.filesource.state import FileState
from bpmon.readback import decode_line
from bpmon.runfile import parse_line
from bpmon.runmodel import PREDICTION_ROWS, End, Restart, Snapshot


class LineDecoding(FileState):
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
            curve.metrics.add(line.step, line.metrics)
            self._last = line

    def _count_corrupt(self, number: int, why: str) -> None:
        self._corrupt += 1
        if number and self._first_corrupt is None:
            self._first_corrupt = number
            self._corrupt_why = why

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
