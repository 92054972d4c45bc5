"""A user's CSV file: a header row of column names, numeric features and one label column.

Every problem with the file is reported as a :class:`~bpmon.errors.BpmonError` whose message
starts ``FILE:LINE:`` (1-based physical lines, as an editor numbers them) and names the column,
so that it can be fixed without a traceback. Blank lines are skipped; cells are stripped of
surrounding spaces; a UTF-8 byte-order mark (as Excel writes) is ignored.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bpmon.errors import BpmonError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]


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
    rows = _read_rows(path)
    if not rows:
        raise BpmonError(f"{path}: the file is empty; it needs a header row and data rows")
    header_line, header = rows[0]
    names = tuple(cell.strip() for cell in header)
    _check_header(path, header_line, names)
    if len(rows) == 1:
        raise BpmonError(f"{path}:{header_line}: there is a header row but no data rows")

    label_col = _label_column(path, names, label)
    feature_cols = [j for j in range(len(names)) if j != label_col]
    X = np.empty((len(rows) - 1, len(feature_cols)), dtype=np.float64)
    raw_labels: list[str] = []
    for i, (line, row) in enumerate(rows[1:]):
        if len(row) != len(names):
            raise BpmonError(
                f"{path}:{line}: the row has {len(row)} cells but the header has {len(names)}"
            )
        for k, j in enumerate(feature_cols):
            X[i, k] = _number(path, line, j, names[j], row[j])
        value = row[label_col].strip()
        if not value:
            raise BpmonError(f"{path}:{line}: {_column(label_col, names)}: the label is empty")
        raw_labels.append(value)

    classes = _sorted_classes(raw_labels)
    if len(classes) < 2:
        raise BpmonError(
            f"{path}: the label column {names[label_col]!r} has only one value "
            f"({classes[0]!r}); classification needs at least 2 classes"
        )
    index = {c: k for k, c in enumerate(classes)}
    labels = np.array([index[v] for v in raw_labels], dtype=np.intp)
    return CsvTable(X, labels, classes, tuple(names[j] for j in feature_cols))


def _read_rows(path: str) -> list[tuple[int, list[str]]]:
    """The non-blank rows, each with the line it starts on."""
    rows: list[tuple[int, list[str]]] = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            # line_num is the last line of the row just read; a quoted cell may span lines, so
            # the row starts on the line after the previous row ended.
            previous_end = 0
            try:
                for row in reader:
                    if any(cell.strip() for cell in row):
                        rows.append((previous_end + 1, row))
                    previous_end = reader.line_num
            except csv.Error as e:
                raise BpmonError(f"{path}:{reader.line_num}: malformed CSV: {e}") from None
            except UnicodeDecodeError:
                raise BpmonError(
                    f"{path}:{reader.line_num + 1}: the file is not UTF-8 text"
                ) from None
    except FileNotFoundError:
        raise BpmonError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BpmonError(f"{path}: is a directory, not a CSV file") from None
    except OSError as e:
        raise BpmonError(f"{path}: cannot read the file: {e.strerror or e}") from None
    return rows


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
    # float() accepts "nan" and "inf"; a network fed either only produces NaN losses.
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
