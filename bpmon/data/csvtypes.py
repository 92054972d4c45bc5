"""What reading a CSV file gives: :class:`CsvInfo` (what the file holds) and :class:`CsvTable`
(its numbers); see :mod:`bpmon.data.csvdata` for the conventions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
Task = Literal["binary", "multiclass", "regression"]


@dataclass(frozen=True)
class CsvInfo:
    """What :func:`inspect_csv` found: enough to choose the network's output and loss.

    ``task`` is ``binary`` (sigmoid + bce), ``multiclass`` (softmax + cross_entropy, one output
    per class) or ``regression`` (identity + mse, one output). ``classes`` is empty for
    regression. ``feature_names`` are the network's inputs, one-hot columns included
    (``city=Paris``). ``n_rows`` counts the rows kept, ``dropped`` those dropped for a missing
    value. ``notes`` are short sentences saying what was assumed, encoded or dropped.
    """

    path: str
    task: Task
    classes: tuple[str, ...]
    feature_names: tuple[str, ...]
    label: str
    n_rows: int
    dropped: int
    separator: str
    header: bool
    notes: tuple[str, ...]

    @property
    def n_outputs(self) -> int:
        """1 for binary and regression, the number of classes for multiclass."""
        return len(self.classes) if self.task == "multiclass" else 1


@dataclass(frozen=True)
class CsvTable:
    """A read file: features (rows x features, one-hot columns expanded; maybe a read-only
    view) and either class indices into ``info.classes`` or raw regression ``targets``."""

    info: CsvInfo
    X: FloatArray
    labels: IntArray | None
    targets: FloatArray | None
