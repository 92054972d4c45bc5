"""The first rows of a CSV file: its text (UTF-8, no NUL byte), its separator, its header row and
which columns are the label and the features. See :mod:`bpmon.data.csvdata` for the
conventions."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from bpmon.data.csvnumbers import MISSING_TOKENS, _is_number, _local_number
from bpmon.data.csvstate import CsvState
from bpmon.errors import BpmonError
from bpmon.text import printable

SEPARATORS = (",", ";", "\t")
# Preference among separators that all split the first rows evenly (see the module doc).
_PREFERENCE = ("\t", ";", ",")
_SEPARATOR_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
_SAMPLE_BYTES = 64 * 1024
_SAMPLE_ROWS = 50


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


class CsvHead(CsvState):
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
