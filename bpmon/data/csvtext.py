"""The text cells of a CSV file's columns: a category code per row while reading, then the
categories among the rows kept."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from bpmon.config import MAX_CLASSES
from bpmon.data.csvnumbers import _number_name
from bpmon.data.csvtypes import FloatArray, IntArray

# More distinct values than this in a text feature is an identifier or free text.
MAX_CATEGORIES = 50
# Categories kept per text column; one past the largest limit says "too many" in every case.
_CATEGORY_CAP = max(MAX_CLASSES, MAX_CATEGORIES) + 1


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
