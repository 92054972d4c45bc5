"""A user's CSV file: a header row of column names, numeric features and one label column.

Every problem with the file is reported as a :class:`~bpmon.errors.BpmonError` whose message
starts ``FILE:LINE:`` (1-based physical lines, as an editor numbers them) and names the column,
so that it can be fixed without a traceback; a problem of the whole file or column (no data rows,
one label value, too many label values) starts ``FILE:``. Blank lines are skipped; cells are
stripped of surrounding spaces; a UTF-8 byte-order mark (as Excel writes) is ignored.

bpmon classifies: the label column may hold at most :data:`bpmon.config.MAX_CLASSES` distinct
values. More is almost surely a column of measurements (a price, a temperature), which would
make a network with thousands of outputs and one-hot targets of rows x values floats.

The file is parsed a row at a time into flat typed arrays (8 bytes a feature, 1 byte a label),
never into a list of Python strings, and its size is checked against the free memory with
:func:`bpmon.memory.ensure_fits` before the first row is read.
"""

from __future__ import annotations

import csv
import math
import os
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO

import numpy as np
import numpy.typing as npt

from bpmon.config import MAX_CLASSES
from bpmon.errors import BpmonError
from bpmon.memory import ensure_fits, format_bytes

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

# A row's label is stored as one byte, the index of its class: MAX_CLASSES must fit in it.
_LABEL_CODE = "B"
_LABEL_CODES = 2 ** (8 * array(_LABEL_CODE).itemsize)
assert MAX_CLASSES <= _LABEL_CODES

# An upper bound on the bytes of memory that parsing takes per byte of the file. A row with k
# feature cells takes at least 2k + 1 bytes of the file (each cell a character and a separator,
# the label at least one character) and 8k + 1 bytes of arrays, or 8k + 8 once the label
# column has more than MAX_CLASSES values (then features are no longer kept and each row keeps
# an 8-byte hash of its label, to count them); that is at most 16 / 3 bytes per file byte. An
# array that grows may briefly hold its old and its new buffer (x 2), and afterwards the class
# indices (or the sorted hashes) take 8 bytes a row, 8 / 3 per file byte: below 14 in all.
PARSE_BYTES_PER_FILE_BYTE = 16


@dataclass(frozen=True)
class CsvTable:
    """A parsed file: features in file order, label indices into ``classes``."""

    X: FloatArray
    labels: IntArray
    classes: tuple[str, ...]
    feature_names: tuple[str, ...]


def read_csv(path: str, label: str | None) -> CsvTable:
    """Parse ``path``; ``label`` names the label column, None means the last column.

    Label values may be any text. They are sorted (numerically when every one is a number, so
    that ``2`` comes before ``10``), and the k-th becomes class k.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            size = os.fstat(f.fileno()).st_size
            # Before the first row: a file too big for memory is refused with its size and the
            # free memory instead of a MemoryError halfway through.
            ensure_fits(
                size * PARSE_BYTES_PER_FILE_BYTE,
                f"data.path = {path!r} (a file of {format_bytes(size)})",
            )
            return _parse(path, f, label)
    except FileNotFoundError:
        raise BpmonError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BpmonError(f"{path}: is a directory, not a CSV file") from None
    except OSError as e:
        raise BpmonError(f"{path}: cannot read the file: {e.strerror or e}") from None


def _parse(path: str, f: TextIO, label: str | None) -> CsvTable:
    rows = _rows(path, f)
    first = next(rows, None)
    if first is None:
        raise BpmonError(f"{path}: the file is empty; it needs a header row and data rows")
    header_line, header = first
    names = tuple(cell.strip() for cell in header)
    _check_header(path, header_line, names)
    label_col = _label_column(path, names, label)
    feature_cols = [j for j in range(len(names)) if j != label_col]

    features = array("d")
    # Each row's label as an index into `seen` (labels in order of first appearance) while
    # there are at most MAX_CLASSES of them.
    codes = array(_LABEL_CODE)
    seen: dict[str, int] = {}
    # Past MAX_CLASSES the file is refused, but the message gives the exact count: each further
    # row keeps a hash of its label (8 bytes, where a set of the strings would keep ~60 per
    # value). A collision of 64-bit hashes could only make the count in the message one short.
    overflow = array("q")
    n_rows = 0
    for line, row in rows:
        if len(row) != len(names):
            raise BpmonError(
                f"{path}:{line}: the row has {len(row)} cells but the header has {len(names)}"
            )
        # Every cell is checked even once the file is known to be refused, so that a bad cell
        # is reported the same way whatever the label column holds.
        values = [_number(path, line, j, names[j], row[j]) for j in feature_cols]
        value = row[label_col].strip()
        if not value:
            raise BpmonError(f"{path}:{line}: {_column(label_col, names)}: the label is empty")
        n_rows += 1
        code = seen.get(value)
        if code is None and len(seen) < MAX_CLASSES:
            code = seen[value] = len(seen)
        if code is None:
            overflow.append(hash(value))
        elif not overflow:
            features.extend(values)
            codes.append(code)

    if n_rows == 0:
        raise BpmonError(f"{path}:{header_line}: there is a header row but no data rows")
    column = names[label_col]
    if overflow:
        count = len(seen) + len(np.unique(np.frombuffer(overflow, dtype=np.int64)))
        raise BpmonError(
            f"{path}: the label column {column!r} has {count:,} distinct values; bpmon "
            f"classifies, and at most {MAX_CLASSES} classes are allowed (a column of "
            "measurements is not a class label; data.label chooses the label column)"
        )
    if len(seen) < 2:
        raise BpmonError(
            f"{path}: the label column {column!r} has only one value "
            f"({next(iter(seen))!r}); classification needs at least 2 classes"
        )
    classes = _sorted_classes(list(seen))
    # seen numbers labels by first appearance; rank maps that number to the sorted class index.
    rank = np.empty(len(classes), dtype=np.intp)
    rank[[seen[c] for c in classes]] = np.arange(len(classes))
    labels = rank[np.frombuffer(codes, dtype=np.uint8)]
    X = np.frombuffer(features, dtype=np.float64).reshape(n_rows, len(feature_cols))
    return CsvTable(X, labels, classes, tuple(names[j] for j in feature_cols))


def _rows(path: str, f: TextIO) -> Iterator[tuple[int, list[str]]]:
    """The non-blank rows, each with the line it starts on."""
    reader = csv.reader(f)
    # line_num is the last line of the row just read; a quoted cell may span lines, so the row
    # starts on the line after the previous row ended.
    previous_end = 0
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                yield previous_end + 1, row
            previous_end = reader.line_num
    except csv.Error as e:
        raise BpmonError(f"{path}:{reader.line_num}: malformed CSV: {e}") from None
    except UnicodeDecodeError:
        raise BpmonError(f"{path}:{reader.line_num + 1}: the file is not UTF-8 text") from None


def _check_header(path: str, line: int, names: tuple[str, ...]) -> None:
    if len(names) < 2:
        raise BpmonError(
            f"{path}:{line}: the header has {len(names)} column; "
            "at least one feature column and a label column are needed"
        )
    # A first row of numbers is almost surely data: using it as names would silently lose a row.
    if all(_is_number(name) for name in names):
        raise BpmonError(
            f"{path}:{line}: the first row must be a header of column names, "
            "but it holds only numbers"
        )
    seen: set[str] = set()
    for j, name in enumerate(names):
        if name in seen:
            raise BpmonError(f"{path}:{line}: column {j + 1}: the column name {name!r} repeats")
        seen.add(name)


def _label_column(path: str, names: tuple[str, ...], label: str | None) -> int:
    if label is None:
        return len(names) - 1
    if label not in names:
        listing = ", ".join(repr(n) for n in names)
        raise BpmonError(f"{path}: no column named {label!r}; the columns are {listing}")
    return names.index(label)


def _column(j: int, names: tuple[str, ...]) -> str:
    return f"column {j + 1} ({names[j]!r})"


def _number(path: str, line: int, j: int, name: str, cell: str) -> float:
    text = cell.strip()
    where = f"{path}:{line}: column {j + 1} ({name!r})"
    if not text:
        raise BpmonError(f"{where}: the cell is empty; features must be numbers")
    try:
        value = float(text)
    except ValueError:
        raise BpmonError(f"{where}: {text!r} is not a number") from None
    # float() accepts "nan" and "inf" (and turns "1e999" into inf); a network fed either only
    # produces NaN losses.
    if not math.isfinite(value):
        raise BpmonError(f"{where}: {text!r} is not a finite number")
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _sorted_classes(values: list[str]) -> tuple[str, ...]:
    unique = set(values)
    if all(_is_number(v) and math.isfinite(float(v)) for v in unique):
        # Ties such as "1" and "1.0" are distinct labels; the text breaks them deterministically.
        return tuple(sorted(unique, key=lambda v: (float(v), v)))
    return tuple(sorted(unique))
