"""Following a growing run file as ``tail -F`` does: a file truncated or replaced is read again,
and a watched folder's newer run file (a new run) is followed instead."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

from bpmon.filesource.state import FileState
from bpmon.lines import LineReader

# How often a watched folder is looked at for a newer run file.
FOLDER_CHECK = 1.0


class Following(FileState):
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


def _replaced(path: str, f: IO[bytes], lines: LineReader) -> bool:
    """A file whose header was still being written has been replaced or truncated since."""
    try:
        st = os.stat(path)
        held = os.fstat(f.fileno())
    except OSError:
        return True
    return (st.st_dev, st.st_ino) != (held.st_dev, held.st_ino) or st.st_size < lines.offset


def newest_run_file(folder: str) -> str | None:
    """The most recently modified ``*.jsonl`` in ``folder`` (``bpmon watch DIR``)."""
    candidates = [p for p in Path(folder).glob("*.jsonl") if p.is_file()]
    if not candidates:
        return None
    return str(max(candidates, key=lambda p: p.stat().st_mtime))
