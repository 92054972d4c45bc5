"""What the pieces of a :class:`~bpmon.sources.RunFileSource` share: the state of one reading of
its file, set afresh by ``_reset`` whenever the file is opened again (``tail -F``)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import IO, Any, Literal

from bpmon.cursor import ReplayCursor
from bpmon.filesource.curve import _Curve
from bpmon.lines import LineReader
from bpmon.liveness import Liveness
from bpmon.readback import FindingsPass, RunInfo
from bpmon.runmodel import LayerStats, Snapshot
from bpmon.trainer.commands import Command

Mode = Literal["replay", "watch"]

# A writer that has written nothing for this long (at least; see bpmon.liveness) is quiet.
QUIET_AFTER = 5.0


class FileState:
    """The fields every piece reads and writes; the reader thread holds ``_lock`` to change what
    another thread reads."""

    # Set once, by RunFileSource.__init__.
    path: str
    mode: Mode
    folder: str | None
    _clock: Any
    _lock: threading.Lock
    _stop: threading.Event
    _commands: list[Command]
    _latest: Snapshot

    _lines_since_tail = 0

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
