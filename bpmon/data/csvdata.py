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

import csv
import io
import math
import os
import re
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import BinaryIO, Literal

import numpy as np
import numpy.typing as npt

from bpmon.config import MAX_CLASSES, DataConfig
from bpmon.data.fastcsv import parse_block
from bpmon.errors import BpmonError
from bpmon.memory import ensure_fits, format_bytes
from bpmon.text import printable

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
Task = Literal["binary", "multiclass", "regression"]

# Lower-cased, stripped cells that mean "no value here".
MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "?", "null"})
# More distinct values than this in a text feature is an identifier or free text.
MAX_CATEGORIES = 50
# ... and so is a text feature with more distinct values than half the rows, in a file of at
# least this many rows (in a smaller one a handful of values is already "half the rows").
MIN_ROWS_FOR_SHARE = 20
# task = "auto" takes a numeric label for classes up to this many distinct integers: counts,
# ratings and codes are integers with few values; measurements have many values, or fractions.
AUTO_MAX_CLASSES = 20
SEPARATORS = (",", ";", "\t")
# Preference among separators that all split the first rows evenly (see the module doc).
_PREFERENCE = ("\t", ";", ",")
_SEPARATOR_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
_SAMPLE_BYTES = 64 * 1024
_SAMPLE_ROWS = 50
_BLOCK_BYTES = 1 << 20
# Threads for the fast path; NumPy releases the GIL in the loops that take the time. More than
# two measured no faster on the two-core development machine, and slower while it was busy.
MAX_WORKERS = 2
# Categories kept per text column; one past the largest limit says "too many" in every case.
_CATEGORY_CAP = max(MAX_CLASSES, MAX_CATEGORIES) + 1
_BOM = b"\xef\xbb\xbf"
# The fast path's temporaries, per byte of a block in flight: the index and value arrays (8
# bytes each), the byte masks and the block itself, with room to spare.
_FAST_BYTES_PER_BYTE = 48


@dataclass(frozen=True)
class CsvInfo:
    """What :func:`inspect_csv` found: enough to choose the network's output and loss.

    ``task`` is ``binary`` (sigmoid + bce), ``multiclass`` (softmax + cross_entropy, one output
    per class) or ``regression`` (identity + mse, one output). ``classes`` is empty for
    regression. ``feature_names`` are the network's inputs, one-hot columns included
    (``city=Paris``). ``n_rows`` counts the rows kept, ``dropped`` those dropped for a missing
    value. ``notes`` are short sentences saying what was assumed, encoded or dropped.
    """

    path: str
    task: Task
    classes: tuple[str, ...]
    feature_names: tuple[str, ...]
    label: str
    n_rows: int
    dropped: int
    separator: str
    header: bool
    notes: tuple[str, ...]

    @property
    def n_outputs(self) -> int:
        """1 for binary and regression, the number of classes for multiclass."""
        return len(self.classes) if self.task == "multiclass" else 1


@dataclass(frozen=True)
class CsvTable:
    """A read file: features (rows x features, one-hot columns expanded; maybe a read-only
    view) and either class indices into ``info.classes`` or raw regression ``targets``."""

    info: CsvInfo
    X: FloatArray
    labels: IntArray | None
    targets: FloatArray | None


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


@dataclass
class _TextColumn:
    """The text cells of one column: a category code per row (-1: not text) and the
    categories in order of first appearance, up to _CATEGORY_CAP (then ``overflow``)."""

    codes: npt.NDArray[np.int32]
    categories: dict[str, int] = field(default_factory=dict)
    overflow: bool = False

    def add(self, row: int, text: str) -> None:
        code = self.categories.get(text)
        if code is None:
            if len(self.categories) < _CATEGORY_CAP:
                code = self.categories[text] = len(self.categories)
            else:
                self.overflow = True
                code = _CATEGORY_CAP
        self.codes[row] = code


class _Reader:
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

    # -- the first rows: separator, header, columns --------------------------------------------

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

    def _decode(self, raw: bytes, line0: int) -> str:
        nul = raw.find(b"\x00")
        if nul >= 0:
            line = line0 + raw.count(b"\n", 0, nul)
            raise BpmonError(
                f"{self.path}:{line}: the file holds a NUL byte: it is a binary file, not CSV text"
            )
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            line = line0 + raw.count(b"\n", 0, e.start)
            raise BpmonError(f"{self.path}:{line}: the file is not UTF-8 text") from None

    def _first_row(self, sample: bytes, bom: int) -> tuple[int, list[str], int]:
        """The first non-blank row: its line, its cells and the byte offset after it."""
        consumed = [bom]

        def lines() -> Iterator[str]:
            pos = bom
            while pos < len(sample):
                end = sample.find(b"\n", pos)
                end = len(sample) if end < 0 else end + 1
                chunk = sample[pos:end]
                pos = end
                consumed[0] = end
                yield chunk.decode("utf-8")

        reader = csv.reader(lines(), delimiter=self.sep)
        previous_end = 0
        try:
            for row in reader:
                if any(cell.strip() for cell in row):
                    return previous_end + 1, row, consumed[0]
                previous_end = reader.line_num
        except csv.Error as e:
            raise BpmonError(f"{self.path}:{reader.line_num}: malformed CSV: {e}") from None
        raise BpmonError(f"{self.path}: the file is empty; it needs rows of data")

    def _has_header(self, row: list[str]) -> bool:
        if self.cfg.header is not None:
            return self.cfg.header
        cells = [cell.strip() for cell in row]
        numbers = [c for c in cells if c.lower() not in MISSING_TOKENS]
        return not numbers or not all(_is_number(c) or _local_number(c, self.sep) for c in numbers)

    def _header_names(self, line: int, row: list[str]) -> tuple[str, ...]:
        names = []
        unnamed = []
        for j, cell in enumerate(row):
            name = printable(cell.strip())
            if len(name) >= 2 and name[0] == name[-1] == "'":
                name = name[1:-1].strip()
            if not name:
                name = f"col{j + 1}"
                unnamed.append(name)
            names.append(name)
        if unnamed:
            self.notes.append(f"unnamed column(s) named {', '.join(unnamed)}")
        seen: set[str] = set()
        for j, name in enumerate(names):
            if name in seen:
                raise BpmonError(
                    f"{self.path}:{line}: column {j + 1}: the column name {name!r} repeats"
                )
            seen.add(name)
        return tuple(names)

    def _listing(self) -> str:
        shown = ", ".join(repr(n) for n in self.names[:30])
        return shown + (f", ... ({len(self.names)} in all)" if len(self.names) > 30 else "")

    def _label_column(self) -> int:
        label = self.cfg.label
        if label is None:
            return self.k - 1
        if label not in self.names:
            raise BpmonError(
                f"{self.path}: no column named {label!r}; the columns are {self._listing()}"
            )
        return self.names.index(label)

    def _feature_columns(self) -> list[int]:
        wanted = self.cfg.features
        if wanted is None:
            return [j for j in range(self.k) if j != self.label_col]
        columns = []
        for name in wanted:
            if name not in self.names:
                raise BpmonError(
                    f"{self.path}: data.features: no column named {name!r}; "
                    f"the columns are {self._listing()}"
                )
            j = self.names.index(name)
            if j == self.label_col:
                raise BpmonError(
                    f"{self.path}: data.features: {name!r} is the label column; "
                    "a feature must be another column"
                )
            columns.append(j)
        return columns

    # -- the cells --------------------------------------------------------------------------------

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

    def _room(self, r: int, line: int) -> None:
        # Cannot happen (the capacity bounds the rows); a guard against writing past the end.
        if self.rows + r > self.M.shape[0]:
            raise BpmonError(f"{self.path}:{line}: the file changed while it was being read")

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

    def _careful(self, lines: Iterable[str], first: int) -> None:
        """Read rows with the csv module, in batches, into ``M`` and the text columns."""
        reader = csv.reader(lines, delimiter=self.sep)
        batch: list[list[str]] = []
        batch_lines: list[int] = []
        previous_end = 0
        try:
            for row in reader:
                line = first + previous_end
                previous_end = reader.line_num
                if len(row) != self.k:
                    # A blank (or all-space) line is one blank cell; it is skipped. A line of
                    # k empty cells is a row of missing values, as the fast path reads it.
                    if len(row) <= 1 and not (row and row[0].strip()):
                        continue
                    what = "the header" if self.header else "the first row"
                    raise BpmonError(
                        f"{self.path}:{line}: the row has {len(row)} cells but {what} has {self.k}"
                    )
                batch.append(row)
                batch_lines.append(line)
                if len(batch) >= 16384:
                    self._store(batch, batch_lines)
                    batch, batch_lines = [], []
        except csv.Error as e:
            raise BpmonError(
                f"{self.path}:{first + reader.line_num - 1}: malformed CSV: {e}"
            ) from None
        self._store(batch, batch_lines)

    def _store(self, rows: list[list[str]], lines: list[int]) -> None:
        if not rows:
            return
        r = len(rows)
        start = self.rows
        self._room(r, lines[0])
        self.lines[start : start + r] = lines
        for j in self.used:
            values, texts, local = _convert([row[j] for row in rows], self.sep)
            for kind, example in local.items():
                self.local.setdefault(kind, {}).setdefault(j, example)
            self.M[start : start + r, j] = values
            if not self.has_nan:
                self.has_nan = bool(np.isnan(values).any())
            if texts:
                column = self.texts.get(j)
                if column is None:
                    codes = np.full(self.M.shape[0], -1, dtype=np.int32)
                    column = self.texts[j] = _TextColumn(codes)
                for i, text in texts:
                    column.add(start + i, text)
        self.rows += r

    # -- from cells to a table ------------------------------------------------------------------

    def _table(self) -> CsvTable:
        n = self.rows
        if n == 0:
            what = "a header row" if self.header else "no rows"
            raise BpmonError(f"{self.path}:{self.header_line}: there is {what} but no data rows")
        M = self.M[:n]
        lines = self.lines[:n]
        missing = {j: self._missing(j, n) for j in self.used}
        self._check_label_and_empty_columns(missing, n)
        for j in self.used:
            self._check_finite(j, n, lines)
        feature_cols = self.feature_cols
        keep: npt.NDArray[np.bool_] | None = None
        bad_rows = np.zeros(n, dtype=bool)
        if self.has_nan:
            for j in sorted({self.label_col, *feature_cols}):
                bad_rows |= missing[j]
        dropped = int(np.count_nonzero(bad_rows))
        if dropped:
            first = int(np.argmax(bad_rows))
            column = next(j for j in sorted(missing) if missing[j][first])
            where = f"line {int(lines[first])}, column {self.names[column]!r}"
            if self.cfg.missing == "error":
                raise BpmonError(
                    f"{self.path}:{int(lines[first])}: column {column + 1} "
                    f"({self.names[column]!r}): the value is missing (empty, or a token such as "
                    "NA); data.missing = 'drop' skips such rows"
                )
            if dropped == n:
                raise BpmonError(
                    f"{self.path}: every row has a missing value (the first on {where}); "
                    "nothing is left to train on"
                )
            self.notes.append(
                f"dropped {dropped:,} row{'s' if dropped > 1 else ''} with a missing value "
                f"(first: {where})"
            )
            keep = ~bad_rows
        rows = n - dropped

        for kind, columns in self.local.items():
            used = {j: cell for j, cell in columns.items() if j in self.used}
            if used:
                named = ", ".join(repr(self.names[j]) for j in sorted(used))
                example = used[min(used)]
                value = _number_name((_local_number(example, self.sep) or (math.nan, ""))[0])
                self.notes.append(f"{kind} read as numbers in {named} ({example!r} = {value})")
        task, classes, labels, targets = self._label(M, keep, rows)
        X, names = self._features(M, keep, rows)
        info = CsvInfo(
            path=self.path,
            task=task,
            classes=classes,
            feature_names=names,
            label=self.names[self.label_col],
            n_rows=rows,
            dropped=dropped,
            separator=self.sep,
            header=self.header,
            notes=tuple(self.notes),
        )
        return CsvTable(info, X, labels, targets)

    def _missing(self, j: int, n: int) -> npt.NDArray[np.bool_]:
        if not self.has_nan:
            return np.zeros(n, dtype=bool)
        miss = np.isnan(self.M[:n, j])
        column = self.texts.get(j)
        if column is not None:
            miss &= column.codes[:n] < 0
        return miss

    def _check_label_and_empty_columns(
        self, missing: dict[int, npt.NDArray[np.bool_]], n: int
    ) -> None:
        if missing[self.label_col].all():
            raise BpmonError(
                f"{self.path}: the label column {self.names[self.label_col]!r} holds no values "
                "(every cell is missing)"
            )
        empty = [j for j in self.feature_cols if missing[j].all()]
        if not empty:
            return
        if self.cfg.features is not None:
            raise BpmonError(
                f"{self.path}: data.features: column {self.names[empty[0]]!r} holds no values "
                "(every cell is missing)"
            )
        for j in empty:
            self.notes.append(
                f"column {self.names[j]!r} is empty (every cell is missing): left out"
            )
            del missing[j]
        self.feature_cols = [j for j in self.feature_cols if j not in empty]
        if not self.feature_cols:
            raise BpmonError(
                f"{self.path}: no feature column holds a value (every cell is missing)"
            )

    def _check_finite(self, j: int, n: int, lines: npt.NDArray[np.int64]) -> None:
        """A column whose only non-numbers are numbers out of range (inf, 1e999) is numeric
        with a bad cell, not a text column."""
        column = self.texts.get(j)
        if column is None or column.overflow:
            return
        if all(_is_number(text) for text in column.categories):
            row = int(np.argmax(column.codes[:n] >= 0))
            text = next(t for t, c in column.categories.items() if c == column.codes[row])
            raise BpmonError(
                f"{self.path}:{int(lines[row])}: column {j + 1} ({self.names[j]!r}): "
                f"{text!r} is not a finite number"
            )

    def _label(
        self, M: FloatArray, keep: npt.NDArray[np.bool_] | None, rows: int
    ) -> tuple[Task, tuple[str, ...], IntArray | None, FloatArray | None]:
        j = self.label_col
        name = self.names[j]
        task = self.cfg.task
        column = self.texts.get(j)
        if column is not None:
            if task == "regress":
                text = next(iter(column.categories))
                raise BpmonError(
                    f"{self.path}: data.task = 'regress': the label column {name!r} holds text "
                    f"(such as {text!r}); regression needs numbers"
                )
            classes, labels, count = _categories(M[:, j], column, keep)
            self._check_classes(name, count, classes, exact=not column.overflow)
            if task == "auto":
                self.notes.append(
                    f"task guessed: classification (label {name!r} holds text, "
                    f"{len(classes)} classes)"
                )
            return _class_task(classes), classes, labels, None
        values = M[:, j] if keep is None else M[keep, j]
        distinct = np.unique(values)
        count = distinct.size
        integers = bool(np.all(np.mod(distinct, 1.0) == 0.0))
        if task == "auto":
            classify = count <= 2 or (integers and count <= AUTO_MAX_CLASSES)
            if classify:
                kind = "distinct integers" if integers else "values"
                self.notes.append(
                    f"task guessed: classification (label {name!r} has {count} {kind}); "
                    "--task regress to override"
                )
            else:
                self.notes.append(
                    f"task guessed: regression (label {name!r} has {count:,} distinct "
                    "numbers); --task classify to override"
                )
        else:
            classify = task == "classify"
        if not classify:
            if count < 2:
                raise BpmonError(
                    f"{self.path}: the label column {name!r} has only one value "
                    f"({_number_name(float(distinct[0]))!r}); there is nothing to predict"
                )
            return "regression", (), None, np.array(values, dtype=np.float64)
        classes = tuple(_number_name(float(v)) for v in distinct)
        self._check_classes(name, count, classes, exact=True)
        labels = np.searchsorted(distinct, values).astype(np.intp)
        return _class_task(classes), classes, labels, None

    def _check_classes(
        self, name: str, count: int, classes: tuple[str, ...], *, exact: bool
    ) -> None:
        if count > MAX_CLASSES:
            many = f"{count:,}" if exact else f"more than {MAX_CLASSES}"
            raise BpmonError(
                f"{self.path}: the label column {name!r} has {many} distinct values; at most "
                f"{MAX_CLASSES} classes are allowed (a column of measurements is a regression "
                "target: --task regress; data.label chooses the label column)"
            )
        if count < 2:
            raise BpmonError(
                f"{self.path}: the label column {name!r} has only one value "
                f"({classes[0]!r}); classification needs at least 2 classes"
            )

    def _features(
        self, M: FloatArray, keep: npt.NDArray[np.bool_] | None, rows: int
    ) -> tuple[FloatArray, tuple[str, ...]]:
        cols = self.feature_cols
        text_cols = [j for j in cols if j in self.texts]
        if not text_cols:
            names = tuple(self.names[j] for j in cols)
            if keep is None and cols == list(range(cols[0], cols[0] + len(cols))):
                return M[:, cols[0] : cols[0] + len(cols)], names  # a view: the split copies
            source = M if keep is None else M[keep]
            return np.ascontiguousarray(source[:, cols]), names
        encoded: dict[int, tuple[tuple[str, ...], IntArray]] = {}
        for j in text_cols:
            categories, codes, count = _categories(M[:, j], self.texts[j], keep)
            self._check_categories(j, count, rows)
            encoded[j] = (categories, codes)
            self.notes.append(f"one-hot: {self.names[j]!r} -> {len(categories)} columns")
        width = sum(len(encoded[j][0]) if j in encoded else 1 for j in cols)
        X = np.zeros((rows, width), dtype=np.float64)
        names_out: list[str] = []
        at = 0
        for j in cols:
            if j in encoded:
                categories, codes = encoded[j]
                X[np.arange(rows), at + codes] = 1.0
                names_out.extend(f"{self.names[j]}={c}" for c in categories)
                at += len(categories)
            else:
                X[:, at] = M[:, j] if keep is None else M[keep, j]
                names_out.append(self.names[j])
                at += 1
        return X, tuple(names_out)

    def _check_categories(self, j: int, count: int, rows: int) -> None:
        share = rows >= MIN_ROWS_FOR_SHARE and count > rows / 2
        if count > MAX_CATEGORIES or share:
            many = f"more than {MAX_CATEGORIES}" if count > _CATEGORY_CAP else f"{count:,}"
            column = self.texts[j]
            example = next(iter(column.categories))
            raise BpmonError(
                f"{self.path}: column {self.names[j]!r} holds text with {many} distinct values "
                f"(such as {example!r}) in {rows:,} rows: an identifier or free text, not a "
                f"category to one-hot encode (at most {MAX_CATEGORIES}, and at most half the "
                "rows); leave it out with --features (data.features)"
            )


def _detect_separator(text: str) -> str:
    """The separator that splits the first rows evenly (see the module doc)."""
    lines = text.splitlines(keepends=True)
    if len(lines) > 1 and not text.endswith(("\n", "\r")):
        lines = lines[:-1]  # a line cut short by the sample's end
    widths: dict[str, set[int]] = {}
    for sep in SEPARATORS:
        seen: set[int] = set()
        rows = 0
        try:
            for row in csv.reader(lines, delimiter=sep):
                if not any(cell.strip() for cell in row):
                    continue
                seen.add(len(row))
                rows += 1
                if rows >= _SAMPLE_ROWS:
                    break
        except csv.Error:
            continue
        widths[sep] = seen
    even = [sep for sep, seen in widths.items() if len(seen) == 1 and min(seen) > 1]
    for sep in _PREFERENCE:
        if sep in even:
            return sep
    return ","


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# Numbers as people write them in other locales (see the module doc): a decimal comma, with
# optional dots between thousands, and commas between thousands before an optional point.
_DECIMAL_COMMA = re.compile(r"[+-]?(?:\d{1,3}(?:\.\d{3})+|\d*),\d+")
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?")
DECIMAL_COMMA, THOUSANDS = "decimal commas", "thousands separators"


def _local_number(text: str, sep: str) -> tuple[float, str] | None:
    """``text`` as a number written with a decimal comma or thousands separators, and which of
    the two (:data:`DECIMAL_COMMA`, :data:`THOUSANDS`); None when it is neither.

    A comma in a comma-separated file was quoted, and there it is a thousands separator only
    (``"9,417.15"``, ``"1,234"``); in a semicolon or tab file a single comma is the decimal
    mark (``1,5``, ``1.234,5``), and only several commas or a point after them mean thousands.
    """
    if "," not in text:
        return None
    if _THOUSANDS.fullmatch(text) and (sep == "," or "." in text or text.count(",") > 1):
        return float(text.replace(",", "")), THOUSANDS
    if sep != "," and _DECIMAL_COMMA.fullmatch(text):
        return float(text.replace(".", "").replace(",", ".")), DECIMAL_COMMA
    return None


def _convert(
    cells: list[str], sep: str = ","
) -> tuple[FloatArray, list[tuple[int, str]], dict[str, str]]:
    """A column's cells as floats (NaN for missing and text cells), its text cells, and for
    each kind of local number (:func:`_local_number`) read in it, the first such cell."""
    try:
        values = np.array([float(cell) for cell in cells], dtype=np.float64)
    except ValueError:
        pass
    else:
        # float() also read "nan" (missing, as NaN already) and "inf" or "1e999" (text here,
        # refused later if the column turns out numeric).
        infinite = np.isinf(values)
        if not infinite.any():
            return values, [], {}
        texts = [(int(i), printable(cells[i].strip())) for i in np.flatnonzero(infinite)]
        values[infinite] = np.nan
        return values, texts, {}
    values = np.empty(len(cells), dtype=np.float64)
    texts = []
    local: dict[str, str] = {}
    for i, cell in enumerate(cells):
        text = cell.strip()
        if text.lower() in MISSING_TOKENS:
            values[i] = np.nan
            continue
        try:
            value = float(text)
        except ValueError:
            number = _local_number(text, sep)
            if number is not None and math.isfinite(number[0]):
                values[i] = number[0]
                local.setdefault(number[1], text)
                continue
            values[i] = np.nan
            texts.append((i, printable(text)))
            continue
        if math.isinf(value):
            values[i] = np.nan
            texts.append((i, text))
        else:
            values[i] = value
    return values, texts, local


def _number_name(value: float) -> str:
    """A number as a class or category name: ``2`` for 2.0, ``2.5``, ``1e+300``."""
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _categories(
    column: FloatArray, text: _TextColumn, keep: npt.NDArray[np.bool_] | None
) -> tuple[tuple[str, ...], IntArray, int]:
    """A text column's categories among the kept rows (sorted as text), each kept row's index
    into them, and their number (past the cap, only known to be more than the cap)."""
    if text.overflow:
        return (), np.zeros(0, dtype=np.intp), _CATEGORY_CAP + 1
    n = column.shape[0]
    codes = text.codes[:n]
    if keep is not None:
        codes = codes[keep]
        column = column[keep]
    numeric = ~np.isnan(column)
    distinct, inverse = np.unique(column[numeric], return_inverse=True)
    # One code space for both kinds of cell: numbers first, then the text categories.
    raw = np.empty(codes.shape[0], dtype=np.intp)
    raw[numeric] = inverse.reshape(-1)
    raw[~numeric] = distinct.size + codes[~numeric]
    present, dense = np.unique(raw, return_inverse=True)
    words = list(text.categories)
    all_names = [_number_name(float(v)) for v in distinct] + words
    names = [all_names[int(c)] for c in present]
    # A text column holds a word that is not a number (_check_finite saw to that): its
    # categories sort as text.
    order = sorted(range(len(names)), key=names.__getitem__)
    rank = np.empty(len(names), dtype=np.intp)
    rank[order] = np.arange(len(names))
    return tuple(names[i] for i in order), rank[dense.reshape(-1)], len(names)


def _class_task(classes: tuple[str, ...]) -> Task:
    return "binary" if len(classes) == 2 else "multiclass"
