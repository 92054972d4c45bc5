"""What one read of a CSV file holds while it reads: the fields the pieces of
:class:`~bpmon.data.csvdata._Reader` share (each piece is a class over them)."""

from __future__ import annotations

from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from bpmon.config import DataConfig
from bpmon.data.csvtext import _TextColumn
from bpmon.data.csvtypes import FloatArray


class CsvState:
    """Set by ``_Reader.__init__`` and ``_Reader.read``: the file, its separator, header and
    columns, then the cells (``M``, NaN for a missing or text cell), each row's line (``lines``)
    and the text cells (``texts``)."""

    cfg: DataConfig
    path: str
    f: BinaryIO
    notes: list[str]
    local: dict[str, dict[int, str]]
    size: int
    sep: str
    header: bool
    names: tuple[str, ...]
    k: int
    header_line: int
    label_col: int
    feature_cols: list[int]
    used: list[int]
    M: FloatArray
    lines: npt.NDArray[np.int64]
    texts: dict[int, _TextColumn]
    rows: int
    has_nan: bool
