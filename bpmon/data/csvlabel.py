"""The label column and the task: classes (binary, multiclass) or a regression target, guessed
from the label's values when ``task = "auto"``."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from bpmon.config import MAX_CLASSES
from bpmon.data.csvnumbers import _number_name
from bpmon.data.csvstate import CsvState
from bpmon.data.csvtext import _categories
from bpmon.data.csvtypes import FloatArray, IntArray, Task
from bpmon.errors import BpmonError

# task = "auto" takes a numeric label for classes up to this many distinct integers: counts,
# ratings and codes are integers with few values; measurements have many values, or fractions.
AUTO_MAX_CLASSES = 20


class CsvLabel(CsvState):
    def _label(
        self, M: FloatArray, keep: npt.NDArray[np.bool_] | None, rows: int
    ) -> tuple[Task, tuple[str, ...], IntArray | None, FloatArray | None]:
        j = self.label_col
        name = self.names[j]
        task = self.cfg.task
        column = self.texts.get(j)
        if column is not None:
            if task == "regress":
                text = next(iter(column.categories))
                raise BpmonError(
                    f"{self.path}: data.task = 'regress': the label column {name!r} holds text "
                    f"(such as {text!r}); regression needs numbers"
                )
            classes, labels, count = _categories(M[:, j], column, keep)
            self._check_classes(name, count, classes, exact=not column.overflow)
            if task == "auto":
                self.notes.append(
                    f"task guessed: classification (label {name!r} holds text, "
                    f"{len(classes)} classes)"
                )
            return _class_task(classes), classes, labels, None
        values = M[:, j] if keep is None else M[keep, j]
        distinct = np.unique(values)
        count = distinct.size
        integers = bool(np.all(np.mod(distinct, 1.0) == 0.0))
        if task == "auto":
            classify = count <= 2 or (integers and count <= AUTO_MAX_CLASSES)
            if classify:
                kind = "distinct integers" if integers else "values"
                self.notes.append(
                    f"task guessed: classification (label {name!r} has {count} {kind}); "
                    "--task regress to override"
                )
            else:
                self.notes.append(
                    f"task guessed: regression (label {name!r} has {count:,} distinct "
                    "numbers); --task classify to override"
                )
        else:
            classify = task == "classify"
        if not classify:
            if count < 2:
                raise BpmonError(
                    f"{self.path}: the label column {name!r} has only one value "
                    f"({_number_name(float(distinct[0]))!r}); there is nothing to predict"
                )
            return "regression", (), None, np.array(values, dtype=np.float64)
        classes = tuple(_number_name(float(v)) for v in distinct)
        self._check_classes(name, count, classes, exact=True)
        labels = np.searchsorted(distinct, values).astype(np.intp)
        return _class_task(classes), classes, labels, None

    def _check_classes(
        self, name: str, count: int, classes: tuple[str, ...], *, exact: bool
    ) -> None:
        if count > MAX_CLASSES:
            many = f"{count:,}" if exact else f"more than {MAX_CLASSES}"
            raise BpmonError(
                f"{self.path}: the label column {name!r} has {many} distinct values; at most "
                f"{MAX_CLASSES} classes are allowed (a column of measurements is a regression "
                "target: --task regress; data.label chooses the label column)"
            )
        if count < 2:
            raise BpmonError(
                f"{self.path}: the label column {name!r} has only one value "
                f"({classes[0]!r}); classification needs at least 2 classes"
            )


def _class_task(classes: tuple[str, ...]) -> Task:
    return "binary" if len(classes) == 2 else "multiclass"
