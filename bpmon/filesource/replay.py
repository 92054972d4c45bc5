"""Where a replay stands: the cursor (:mod:`bpmon.cursor`) moved by the commands sent and by
playback, over every snapshot of the file, all its runs one after the other."""

from __future__ import annotations

from bpmon.filesource.curve import _Curve
from bpmon.filesource.state import FileState


class ReplayPosition(FileState):
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
