"""The CSV reader's fast path: a block of lines whose every cell is a plain number or empty,
parsed by whole-array NumPy operations instead of a Python call per cell.

Conventions (``csvdata`` relies on each):

* :func:`parse_block` takes bytes that end with ``\\n``: whole lines, ``\\r\\n`` already turned
  into ``\\n``, no header. It returns a float64 array of shape ``(rows, k)``, or None when the
  block is not for the fast path: a byte other than ``0-9 . + - e E``, the separator and
  ``\\n``; a line with another number of cells than ``k`` (a blank line too); a cell that is not
  a number (``-``, ``1.2.3``, ``1e``). It never raises on bad input: the careful reader then
  parses the block and reports what is wrong, with its line and column.
* A cell's value is exactly Python's ``float(cell)``. A cell of at most :data:`MAX_PLAIN`
  characters without an exponent, whose digits read as an integer ``m`` below 2**53, is
  ``m / 10**f`` (``f`` digits after the point): both are exact float64 numbers, so the one
  division is correctly rounded, as ``float`` is (Clinger's fast path). Any other cell (an
  exponent, a 17th character, a leading ``+``) goes through ``float`` itself; one that is not
  finite (``1e999``) sends the block to the careful reader, which decides what it is.
* An empty cell is NaN: a missing value (no number parses to NaN on this path).

How: for each byte, ``w`` = the number of bytes after it in its cell (separator included),
from one ``np.repeat`` of the cells' ends. A table indexed by (byte class, ``w``) gives each
digit its place value ``d * 10**(w - 1)`` and the point ``w`` (where it stands) in the high
bits; one running sum over the block and a difference at each cell's end sum a cell's table
values. The running sum wraps around 2**64, which the difference undoes exactly because each
cell's own sum is below 2**63. The point was counted as a digit position, so the digits before
it came out 10x too large: ``divmod`` by ``10**w`` separates and fixes the two halves.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

NEWLINE = 0x0A
# Cells longer than this, or with an exponent, are read by float(): up to 16 characters the
# digits (at most 16 of them) sum to below 10**16 < 2**54, which leaves the high bits free.
MAX_PLAIN = 16
# The largest integer below which every integer is a float64 (Clinger's condition).
_EXACT = 2**53
# w is looked up in a table row of this many columns; longer cells are read by float() anyway.
_W = 32
# Table rows: ``byte - 45`` (wrapping in uint8): 0 '-', 1 '.', 3..12 the digits; every other
# row holds zeros (the separators, newline, e, E and + add nothing to a cell's sum).
_MINUS, _DOT = 0, 1
_FRAC_SHIFT = 54  # bits 54..58: w of the point (digits after it + 1), at most 17 < 32
_DOTS_SHIFT = 59  # bits 59..63: the number of points, at most 16 (+1 carry) < 32
_MANTISSA = np.uint64((1 << _FRAC_SHIFT) - 1)
_FIVE_BITS = np.uint64(31)


def _table() -> npt.NDArray[np.uint64]:
    table = np.zeros((256, _W), dtype=np.uint64)
    for digit in range(10):
        for w in range(1, MAX_PLAIN + 2):
            table[3 + digit, w] = digit * 10 ** (w - 1)
    for w in range(_W):
        table[_DOT, w] = (1 << _DOTS_SHIFT) + (min(w, 31) << _FRAC_SHIFT)
    return table.ravel()


_TABLE = _table()
_POW10_INT = np.array([10**e for e in range(MAX_PLAIN + 2)], dtype=np.int64)
_POW10 = 10.0 ** np.arange(MAX_PLAIN + 2)
_SIGN = np.array([1.0, -1.0])
_ODD = (ord("e"), ord("E"), ord("+"))


def parse_block(buf: bytes, sep: int, k: int) -> FloatArray | None:
    """The cells of ``buf`` (whole lines of ``k`` cells separated by byte ``sep``) as a
    ``(rows, k)`` float64 array, or None when the block needs the careful reader."""
    a = np.frombuffer(buf, dtype=np.uint8)
    n = a.size
    if n == 0 or a[-1] != NEWLINE:
        return None
    is_end = a == sep
    is_end |= a == NEWLINE
    ends = np.flatnonzero(is_end)
    nf = ends.size
    if nf % k:
        return None
    # Every line has k cells exactly when every k-th end is a newline and the others are not.
    kinds = a[ends].reshape(-1, k)
    if not (kinds[:, -1] == NEWLINE).all() or (k > 1 and (kinds[:, :-1] == NEWLINE).any()):
        return None
    x = a - np.uint8(45)
    minus = x == _MINUS
    odd_bytes = (a == _ODD[0]) | (a == _ODD[1]) | (a == _ODD[2])
    n_odd = int(np.count_nonzero(odd_bytes))
    counted = (
        int(np.count_nonzero(minus))
        + int(np.count_nonzero(x == _DOT))
        + int(np.count_nonzero((x - np.uint8(3)) < 10))
        + n_odd
        + nf
    )
    if counted != n:
        return None  # a byte outside the number alphabet: text, a space, a quote, ...
    # A minus sign stands first in its cell, or after an exponent's e (that cell is odd).
    after_end = np.empty(n, dtype=bool)
    after_end[0] = True
    after_end[1:] = is_end[:-1]
    if n_odd:
        after_end[1:] |= odd_bytes[:-1]
    if (minus & ~after_end).any():
        return None

    lengths = np.diff(ends, prepend=-1)  # each cell with its separator
    size = lengths - 1
    w = np.repeat(ends, lengths)
    w -= np.arange(n, dtype=w.dtype)  # bytes after each byte in its cell, separator included
    if int(size.max()) >= _W - 1:
        np.minimum(w, _W - 1, out=w)  # such long cells are odd; keep the lookup in the table
    index = x.astype(np.intp)
    index <<= 5
    index |= w
    del w
    values = _TABLE.take(index)
    del index
    np.cumsum(values, out=values)
    sums = values[ends]
    del values
    packed = np.diff(sums, prepend=np.uint64(0))  # wraps mod 2**64, which the sums undo

    odd = size > MAX_PLAIN
    if n_odd:
        odd[np.searchsorted(ends, np.flatnonzero(odd_bytes))] = True
    dots = (packed >> np.uint64(_DOTS_SHIFT)).astype(np.intp)
    point = ((packed >> np.uint64(_FRAC_SHIFT)) & _FIVE_BITS).astype(np.intp)
    mantissa = (packed & _MANTISSA).astype(np.int64)
    starts = ends - size
    negative = a[np.minimum(starts, n - 1)] == ord("-")
    negative &= size > 0
    digits = size - dots - negative
    empty = size == 0
    if (~odd & ((dots > 1) | ((digits < 1) & ~empty))).any():
        return None
    point[odd] = 0
    # point = digits after the point + 1, or 0 without one: the digits before it were read one
    # place too far left. mantissa = high * 10**point + low; the number is high * 10**f + low.
    frac = np.maximum(point - 1, 0)
    high, low = np.divmod(mantissa, _POW10_INT.take(point))
    high *= _POW10_INT.take(frac)
    high += low
    odd |= high >= _EXACT
    out = high.astype(np.float64)
    out /= _POW10.take(frac)
    out *= _SIGN.take(negative.view(np.uint8))
    if empty.any():
        out[empty] = np.nan
    if odd.any():
        for cell in np.flatnonzero(odd).tolist():
            start = int(starts[cell])
            try:
                value = float(buf[start : start + int(size[cell])])
            except ValueError:
                return None
            if value in (np.inf, -np.inf):
                return None
            out[cell] = value
    return out.reshape(-1, k)
