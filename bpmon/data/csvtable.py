"""From a CSV file's cells to its table: the missing values (rows dropped, or the first one an
error), empty columns, cells that are not finite numbers, local numbers named in a note, then the
label and the features."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from bpmon.data.csvfeatures import CsvFeatures
from bpmon.data.csvlabel import CsvLabel
from bpmon.data.csvnumbers import _is_number, _local_number, _number_name
from bpmon.data.csvtypes import CsvInfo, CsvTable
from bpmon.errors import BpmonError


class CsvTableBuilding(CsvLabel, CsvFeatures):
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
