"""A user's CSV file, read into the numbers a network trains on.

These are the conventions (the tests check each one):

* **Text.** UTF-8; a byte-order mark (as Excel writes it) is skipped; lines end with ``\\n``
  or ``\\r\\n``. A file that is not UTF-8, or that holds a NUL byte (a binary file), is refused
  naming the line.
* **Separator.** Comma, semicolon or tab, detected from the first lines (up to 64 KiB, at
  most 50 rows): a separator qualifies when it splits every one of those rows into the same
  number of cells, at least two. Among those that qualify tab wins, then semicolon (a file
  that writes decimal commas separates by semicolons), then comma; when none does, comma. A
  note names a separator that is not a comma.
* **Cells.** A cell may be quoted with ``"`` (RFC 4180: ``""`` is a quote inside one; a quoted
  cell may hold the separator and line ends). Spaces around a cell are ignored. Blank lines
  are skipped; every other line must have as many cells as the first row, or it is an error
  naming its line.
* **Header.** ``header = true``: the first row names the columns; ``false``: it is data, and
  the columns are named ``col1`` .. ``colK``; None (the default): a first row whose every cell
  is a number or missing, with at least one number, is data (a note says so), any other first
  row is the header. A name written in single quotes (``'vote'``, as some statistics packages
  write them) is read without them; an empty name becomes ``colJ``; a repeated name is an error.
* **Columns.** ``label`` names the label column (default: the last one). ``features`` names
  the feature columns, in that order (default: every other column, in file order). A column
  that is neither is not read beyond counting its cells.
* **Missing values.** A cell that is empty or is one of ``NA``, ``N/A``, ``NaN``, ``?``,
  ``null`` (any case) is missing. With ``missing = "drop"`` each row that has one in the label
  or a feature is dropped; :attr:`CsvInfo.dropped` counts them and a note names the first
  one's line and column. With ``"error"`` the first one (by line, then column) is an error
  naming the file, line and column. A feature column whose every cell is missing is left out
  with a note (an error when ``features`` names it); a label column with no values is an error.
* **Numbers.** A cell is a number when Python's ``float`` reads it (``1``, ``-2.5e-3``,
  ``.5``). A number that is not finite (``inf``, ``1e999``) in a numeric column is an error
  naming the cell. Two local ways of writing numbers are read too, each named in a note with
  its columns: a **decimal comma** in a semicolon- or tab-separated file (``1,5`` is 1.5; and
  ``1.234,5`` with dots between thousands), and **thousands separators** (``"9,417.15"``,
  quoted in a comma-separated file; ``1,234,567``; in a comma-separated file ``"1,234"`` is
  1234, in the others 1.234). A column of such numbers is numeric, never one-hot encoded.
* **Text.** Column names and text cells (class labels, categories) are shown through
  :func:`bpmon.text.printable`: a control character in a cell is data, never a command to the
  terminal.
* **Text columns.** A column with a cell that is neither a number nor missing holds text. As a
  feature it is one-hot encoded into one 0/1 column per distinct value, in place, named
  ``column=value`` (a note counts them); a number in such a column is named by its value, so
  ``1``, ``01`` and ``1.0`` are one category. A text column with more than
  :data:`MAX_CATEGORIES` distinct values, or (from :data:`MIN_ROWS_FOR_SHARE` rows on) more
  than half as many distinct values as rows, is an identifier or free text, not a category: it
  is refused, naming it and suggesting ``features``.
* **Task.** ``task = "auto"`` decides from the label column: text, at most two distinct
  values, or at most :data:`AUTO_MAX_CLASSES` distinct integers -> classification; other
  numbers -> regression; a note says which and how to override. ``"classify"`` takes each
  distinct value as a class, at most :data:`bpmon.config.MAX_CLASSES`; ``"regress"`` needs a
  numeric label. Classification is ``binary`` for two classes and ``multiclass`` for more;
  classes are sorted, numerically when every one is a number (named by value: ``2``, ``2.5``).
* **Errors.** Every problem with the file is one :class:`~bpmon.errors.BpmonError` whose
  message starts ``FILE:LINE:`` (1-based physical lines, as an editor numbers them) and names
  the column where they apply, or ``FILE:`` for a problem of the whole file or column.

Speed and memory. The file is read in blocks of about a megabyte. A block whose cells are all
plain numbers or empty, without quotes, goes to :mod:`bpmon.data.fastcsv` (whole-array NumPy,
on up to :data:`MAX_WORKERS` threads, since NumPy releases the GIL); any other block is read
row by row with the :mod:`csv` module (the first block with a quote hands it the rest of the
file, since a quoted cell may span blocks). Both give exactly Python's ``float`` of each cell.
The cells land in one float64 array of ``rows x columns`` (8 bytes a cell, allocated once:
a first pass counts the lines), text cells as an int32 category code a row per text column.
:func:`parse_bytes` bounds that, and :func:`bpmon.memory.ensure_fits` checks it against the
free memory before the array is allocated.
"""

from __future__ import annotations

import io
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

import numpy as np

from bpmon.config import DataConfig
from bpmon.data.csvfeatures import MIN_ROWS_FOR_SHARE
from bpmon.data.csvhead import (
    _SAMPLE_BYTES,
    _SEPARATOR_NAMES,
    SEPARATORS,
    CsvHead,
    _detect_separator,
)
from bpmon.data.csvlabel import AUTO_MAX_CLASSES
from bpmon.data.csvnumbers import DECIMAL_COMMA, MISSING_TOKENS, THOUSANDS
from bpmon.data.csvrows import CsvRows
from bpmon.data.csvtable import CsvTableBuilding
from bpmon.data.csvtext import MAX_CATEGORIES, _TextColumn
from bpmon.data.csvtypes import CsvInfo, CsvTable, FloatArray, IntArray, Task
from bpmon.data.fastcsv import parse_block
from bpmon.errors import BpmonError
from bpmon.memory import ensure_fits, format_bytes

# What other modules (and the tests) import from here; the pieces of the reader are in the
# csv* modules beside this one.
__all__ = [
    "AUTO_MAX_CLASSES",
    "DECIMAL_COMMA",
    "MAX_CATEGORIES",
    "MAX_WORKERS",
    "MIN_ROWS_FOR_SHARE",
    "MISSING_TOKENS",
    "SEPARATORS",
    "THOUSANDS",
    "CsvInfo",
    "CsvTable",
    "FloatArray",
    "IntArray",
    "Task",
    "inspect_csv",
    "parse_bytes",
    "read_csv",
]

_BLOCK_BYTES = 1 << 20
# Threads for the fast path; NumPy releases the GIL in the loops that take the time. More than
# two measured no faster on the two-core development machine, and slower while it was busy.
MAX_WORKERS = 2
_BOM = b"\xef\xbb\xbf"
# The fast path's temporaries, per byte of a block in flight: the index and value arrays (8
# bytes each), the byte masks and the block itself, with room to spare.
_FAST_BYTES_PER_BYTE = 48


def inspect_csv(cfg: DataConfig) -> CsvInfo:
    """Read ``cfg.path`` as ``cfg`` says and return what it holds, without splitting or
    standardising: the task, the classes (their number), the features and the notes.

    It costs one read of the file (about as long as :func:`bpmon.data.load_dataset` without
    its split); a caller that will train anyway can load the data set and read
    ``Dataset.task`` instead. Raises :class:`BpmonError` exactly as loading would.
    """
    return read_csv(cfg).info


def parse_bytes(rows: int, columns: int, file_bytes: int) -> int:
    """An upper bound on the bytes reading a file of ``file_bytes`` bytes and at most ``rows``
    rows of ``columns`` cells holds at once: the cells (8 bytes each), each row's line number
    (8), a text code per cell (4, for the worst case of every column holding text) and the
    fast path's blocks in flight (at most twice the workers, plus one, of up to two blocks'
    size each, or the whole file when it is smaller)."""
    blocks = min(file_bytes, (2 * MAX_WORKERS + 1) * 2 * _BLOCK_BYTES)
    return rows * (12 * columns + 8) + blocks * _FAST_BYTES_PER_BYTE


def read_csv(cfg: DataConfig) -> CsvTable:
    """Read the file ``cfg.path`` names (see the module doc); raise :class:`BpmonError`."""
    path = cfg.path
    if path is None:
        raise BpmonError("data.path = None: expected the CSV file that data set 'csv' reads")
    try:
        with open(path, "rb") as f:
            return _Reader(cfg, path, f).read()
    except FileNotFoundError:
        raise BpmonError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BpmonError(f"{path}: is a directory, not a CSV file") from None
    except OSError as e:
        raise BpmonError(f"{path}: cannot read the file: {e.strerror or e}") from None


class _Reader(CsvTableBuilding, CsvRows, CsvHead):
    """One read of one file; see the module doc. ``M`` holds every cell as a float (NaN for a
    missing or text cell), ``lines`` each row's line, ``texts`` the text cells."""

    def __init__(self, cfg: DataConfig, path: str, f: BinaryIO) -> None:
        self.cfg = cfg
        self.path = path
        self.f = f
        self.notes: list[str] = []
        # Per kind of local number (see _local_number): the columns that hold one, and the
        # first cell seen, for the note.
        self.local: dict[str, dict[int, str]] = {}

    # -- the file: its first rows, then its cells in blocks ---------------------------------------

    def read(self) -> CsvTable:
        f = self.f
        size = self.size = os.fstat(f.fileno()).st_size
        sample = self._read(_SAMPLE_BYTES)
        sample += f.readline()
        if not sample.strip(b" \t\r\n"):
            raise BpmonError(f"{self.path}: the file is empty; it needs rows of data")
        bom = len(_BOM) if sample.startswith(_BOM) else 0
        text = self._decode(sample[bom:], 1)
        self.sep = _detect_separator(text)
        if self.sep != ",":
            self.notes.append(f"separator: {_SEPARATOR_NAMES[self.sep]} (detected)")
        first_line, first_row, first_end = self._first_row(sample, bom)
        self.header = self._has_header(first_row)
        k = len(first_row)
        if self.header:
            self.names = self._header_names(first_line, first_row)
            data_offset, data_line = first_end, None
        else:
            self.names = tuple(f"col{j + 1}" for j in range(k))
            data_offset, data_line = bom, 1
            if self.cfg.header is None:
                self.notes.append(
                    f"no header row: the first row holds only numbers; columns named col1..col{k}"
                )
        self.k = k
        if k < 2:
            raise BpmonError(
                f"{self.path}:{first_line}: the first row has {k} column; "
                "at least one feature column and a label column are needed"
            )
        self.header_line = first_line
        self.label_col = self._label_column()
        self.feature_cols = self._feature_columns()
        self.used = sorted({self.label_col, *self.feature_cols})

        if data_line is None:
            # The data starts on the line after the header row's last line.
            data_line = sample.count(b"\n", bom, first_end) + 1
        f.seek(data_offset)
        newlines = self._count_newlines()
        capacity = min(newlines + 1, max(0, size - data_offset) // k + 1)
        ensure_fits(
            parse_bytes(capacity, k, size),
            f"data.path = {self.path!r} (a file of {format_bytes(size)}, "
            f"{newlines:,} lines of {k} columns)",
        )
        f.seek(data_offset)
        self.M = np.empty((capacity, k), dtype=np.float64)
        self.lines = np.empty(capacity, dtype=np.int64)
        self.texts: dict[int, _TextColumn] = {}
        self.rows = 0
        # Whether any cell read so far is NaN (missing, or text): most files have none, and
        # then no column needs a pass to look for them.
        self.has_nan = False
        self._read_blocks(data_line, data_offset)
        return self._table()

    def _read(self, n: int) -> bytes:
        # Never ask for more than the file has left: read(n) allocates n bytes up front.
        return self.f.read(max(0, min(n, self.size - self.f.tell())))

    def _count_newlines(self) -> int:
        count = 0
        while buf := self._read(16 * _BLOCK_BYTES):
            count += buf.count(b"\n")
        return count

    def _read_blocks(self, line: int, offset: int) -> None:
        workers = max(1, min(MAX_WORKERS, os.cpu_count() or 1))
        sep = ord(self.sep)
        pool = ThreadPoolExecutor(workers) if workers > 1 else None
        pending: deque[tuple[Future[FloatArray | None], bytes, int]] = deque()
        try:
            for buf, first in self._blocks(line, offset):
                if b'"' in buf:
                    # A quoted cell may span blocks: the csv module reads the rest of the file.
                    self._drain(pending, 0)
                    self._careful(self._rest_as_text(buf, first), first)
                    return
                fast = buf.replace(b"\r\n", b"\n") if b"\r" in buf else buf
                if pool is None:
                    self._place(parse_block(fast, sep, self.k), buf, first)
                else:
                    pending.append((pool.submit(parse_block, fast, sep, self.k), buf, first))
                    self._drain(pending, 2 * workers)
            self._drain(pending, 0)
        finally:
            if pool is not None:
                for job, _, _ in pending:
                    job.cancel()
                pool.shutdown(wait=True)

    def _drain(
        self, pending: deque[tuple[Future[FloatArray | None], bytes, int]], keep: int
    ) -> None:
        # In file order, so that rows land in order; at most `keep` blocks stay in flight.
        while len(pending) > keep:
            job, buf, first = pending.popleft()
            self._place(job.result(), buf, first)

    def _place(self, result: FloatArray | None, buf: bytes, first: int) -> None:
        if result is None:
            text = self._decode(buf, first)
            self._careful(io.StringIO(text, newline=""), first)
            return
        r = result.shape[0]
        start = self.rows
        self._room(r, first)
        self.M[start : start + r] = result
        if not self.has_nan:
            self.has_nan = bool(np.isnan(result).any())
        self.lines[start : start + r] = np.arange(first, first + r)
        self.rows += r

    def _blocks(self, line: int, offset: int) -> Iterator[tuple[bytes, int]]:
        """Blocks of whole lines (the last one may lack its newline) with their first line."""
        f = self.f
        while True:
            buf = self._read(_BLOCK_BYTES)
            if not buf:
                return
            if buf[-1:] != b"\n":
                buf += f.readline()
            if b"\x00" in buf:
                self._decode(buf, line)  # raises, naming the line of the NUL byte
            if buf[-1:] != b"\n":
                buf += b"\n"
            yield buf, line
            line += buf.count(b"\n")

    def _rest_as_text(self, buf: bytes, first: int) -> Iterator[str]:
        """The lines of ``buf`` and of the rest of the file, decoded."""
        yield from io.StringIO(self._decode(buf, first), newline="")
        line = first + buf.count(b"\n")
        for raw in self._blocks(line, 0):
            chunk, start = raw
            yield from io.StringIO(self._decode(chunk, start), newline="")
