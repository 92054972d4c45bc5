"""The feature columns as the network's inputs: numbers as they are, text one-hot encoded (and a
text column that is an identifier or free text refused)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from bpmon.data.csvstate import CsvState
from bpmon.data.csvtext import _CATEGORY_CAP, MAX_CATEGORIES, _categories
from bpmon.data.csvtypes import FloatArray, IntArray
from bpmon.errors import BpmonError

# ... and so is a text feature with more distinct values than half the rows, in a file of at
# least this many rows (in a smaller one a handful of values is already "half the rows").
MIN_ROWS_FOR_SHARE = 20


class CsvFeatures(CsvState):
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
