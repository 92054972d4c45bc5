"""What a CSV cell says as a number: missing, a number as Python's ``float`` reads it, a number
written the local way (a decimal comma, thousands separators), or text; and a number as the name
of a class or category. See :mod:`bpmon.data.csvdata` for the conventions."""

from __future__ import annotations

import math
import re

import numpy as np

from bpmon.data.csvtypes import FloatArray
from bpmon.text import printable

# Lower-cased, stripped cells that mean "no value here".
MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "?", "null"})


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
