"""Rows read with the :mod:`csv` module (a block the fast path passes on, or the rest of a file
with a quote): a row of the wrong width is an error naming its line, and each used column's cells
become numbers or text."""

from __future__ import annotations

import csv
from collections.abc import Iterable

import numpy as np

from bpmon.data.csvnumbers import _convert
from bpmon.data.csvstate import CsvState
from bpmon.data.csvtext import _TextColumn
from bpmon.errors import BpmonError


class CsvRows(CsvState):
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

    def _room(self, r: int, line: int) -> None:
        # Cannot happen (the capacity bounds the rows); a guard against writing past the end.
        if self.rows + r > self.M.shape[0]:
            raise BpmonError(f"{self.path}:{line}: the file changed while it was being read")
