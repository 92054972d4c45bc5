"""The data sets a run can train on, built from a :class:`~bpmon.config.DataConfig`.

Conventions, shared by every set:

* Inputs are float64 of shape ``(N, d)``.
* Targets are float64. A binary task has shape ``(N, 1)`` holding 0.0 or 1.0 (for a sigmoid
  output); a multiclass task is one-hot of shape ``(N, C)`` (for a softmax output). Column ``k``
  (or target value ``k`` for binary) is class ``classes[k]``.
* xor, circle and moons are binary; spiral, blobs and digits are multiclass even when asked for
  two classes, so that their softmax presets stay valid; a CSV file is binary when its label
  column has two values and multiclass when it has more.
* Everything is deterministic given ``cfg.seed``.
* Split: when ``cfg.test_fraction > 0`` (never for xor, whose four points are the whole
  problem), the points are shuffled with the seed and ``round(N * test_fraction)`` of them (at
  least one, and never all) become the test set; the rest, in shuffled order, are the training
  set. Otherwise the test arrays are None and the training set is in generation order.
* Standardisation: when ``cfg.standardize``, each feature is shifted and scaled by the mean and
  standard deviation of the *training* split only, so that nothing about the test points leaks
  into training; a constant feature is only centred.
* The arrays of a :class:`Dataset` are read-only, so that one can be shared between threads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from bpmon.config import DATASETS, DataConfig
from bpmon.data import synthetic
from bpmon.data.csvdata import read_csv
from bpmon.data.digits import CLASSES as DIGIT_CLASSES
from bpmon.data.digits import FEATURE_NAMES as DIGIT_FEATURES
from bpmon.data.digits import digits
from bpmon.errors import BpmonError

__all__ = ["DATASET_NAMES", "Dataset", "Task", "load_dataset"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
Task = Literal["binary", "multiclass"]

DATASET_NAMES: tuple[str, ...] = DATASETS
# Sets whose size is cfg.n; xor, digits and csv have a fixed size.
_SIZED = ("circle", "moons", "spiral", "blobs")
_MIN_POINTS = 4
# Separate the split's random stream from the generator's: both start from cfg.seed, and a
# shuffle drawn from the very numbers that placed the points would correlate the two.
_SPLIT_STREAM = 1
# A feature whose spread is this small relative to its size is constant up to rounding, and
# dividing by that spread would blow rounding noise up to unit scale.
_CONSTANT_RTOL = 1e-12
_XY = ("x1", "x2")


@dataclass(frozen=True)
class Dataset:
    """A training set and an optional test set, with the encoding described in the module doc."""

    name: str
    X_train: FloatArray
    y_train: FloatArray
    X_test: FloatArray | None
    y_test: FloatArray | None
    task: Task
    classes: tuple[str, ...]
    feature_names: tuple[str, ...]

    @property
    def n_inputs(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_outputs(self) -> int:
        """1 for a binary task, the number of classes for a multiclass one."""
        return int(self.y_train.shape[1])


def load_dataset(cfg: DataConfig) -> Dataset:
    """Build the data set ``cfg`` describes; bad values raise :class:`BpmonError`."""
    _validate(cfg)
    X, labels, classes, features, task = _BUILDERS[cfg.name](cfg)
    y = _encode(labels, len(classes), task)
    X_test: FloatArray | None = None
    y_test: FloatArray | None = None
    if cfg.test_fraction > 0 and cfg.name != "xor":
        train, test = _split(len(X), cfg.test_fraction, cfg.seed)
        X, X_test, y, y_test = X[train], X[test], y[train], y[test]
    if cfg.standardize:
        X, X_test = _standardize(X, X_test)
    return Dataset(
        name=cfg.name,
        X_train=_frozen(X),
        y_train=_frozen(y),
        X_test=None if X_test is None else _frozen(X_test),
        y_test=None if y_test is None else _frozen(y_test),
        task=task,
        classes=classes,
        feature_names=features,
    )


Raw = tuple[FloatArray, IntArray, tuple[str, ...], tuple[str, ...], Task]


def _numbered(count: int) -> tuple[str, ...]:
    return tuple(str(k) for k in range(count))


def _xor(cfg: DataConfig) -> Raw:
    X, labels = synthetic.xor()
    return X, labels, _numbered(2), _XY, "binary"


def _circle(cfg: DataConfig) -> Raw:
    X, labels = synthetic.circle(cfg.n, cfg.seed)
    return X, labels, _numbered(2), _XY, "binary"


def _moons(cfg: DataConfig) -> Raw:
    X, labels = synthetic.moons(cfg.n, cfg.noise, cfg.seed)
    return X, labels, _numbered(2), _XY, "binary"


def _spiral(cfg: DataConfig) -> Raw:
    X, labels = synthetic.spiral(cfg.n, cfg.classes, cfg.noise, cfg.seed)
    return X, labels, _numbered(cfg.classes), _XY, "multiclass"


def _blobs(cfg: DataConfig) -> Raw:
    X, labels = synthetic.blobs(cfg.n, cfg.classes, cfg.noise, cfg.seed)
    return X, labels, _numbered(cfg.classes), _XY, "multiclass"


def _digits(cfg: DataConfig) -> Raw:
    X, labels = digits()
    return X, labels, DIGIT_CLASSES, DIGIT_FEATURES, "multiclass"


def _csv(cfg: DataConfig) -> Raw:
    if cfg.path is None:
        raise BpmonError("data set 'csv' needs a file: set data.path")
    table = read_csv(cfg.path, cfg.label)
    task: Task = "binary" if len(table.classes) == 2 else "multiclass"
    return table.X, table.labels, table.classes, table.feature_names, task


_BUILDERS: dict[str, Callable[[DataConfig], Raw]] = {
    "xor": _xor,
    "circle": _circle,
    "moons": _moons,
    "spiral": _spiral,
    "blobs": _blobs,
    "digits": _digits,
    "csv": _csv,
}


def _validate(cfg: DataConfig) -> None:
    if cfg.name not in _BUILDERS:
        known = ", ".join(DATASET_NAMES)
        raise BpmonError(f"unknown data set {cfg.name!r}; the known ones are {known}")
    # RandomState (for circle) takes seeds in [0, 2**32); hold every set to the same range.
    if not 0 <= cfg.seed < 2**32:
        raise BpmonError(f"data.seed must be between 0 and {2**32 - 1}, not {cfg.seed}")
    # Written as a negated range so that NaN fails too.
    if not 0 <= cfg.test_fraction < 1:
        raise BpmonError(
            f"data.test_fraction must be at least 0 and below 1, not {cfg.test_fraction}"
        )
    if cfg.name in _SIZED:
        if cfg.n < _MIN_POINTS:
            raise BpmonError(f"data.n must be at least {_MIN_POINTS}, not {cfg.n}")
        if not 0 <= cfg.noise < float("inf"):
            raise BpmonError(f"data.noise must be a finite number >= 0, not {cfg.noise}")
    if cfg.name in ("spiral", "blobs"):
        if cfg.classes < 2:
            raise BpmonError(f"data.classes must be at least 2, not {cfg.classes}")
        if cfg.classes > cfg.n:
            raise BpmonError(
                f"data.classes ({cfg.classes}) cannot exceed data.n ({cfg.n}): "
                "every class needs a point"
            )


def _encode(labels: IntArray, n_classes: int, task: Task) -> FloatArray:
    if task == "binary":
        return labels.astype(np.float64)[:, np.newaxis]
    return np.eye(n_classes, dtype=np.float64)[labels]


def _split(n: int, test_fraction: float, seed: int) -> tuple[IntArray, IntArray]:
    """Shuffled (train, test) index arrays; the test set has between 1 and n - 1 points.

    ``n >= 2`` always holds here: sized sets have at least 4 points and a CSV file with two
    classes has at least two rows.
    """
    n_test = min(max(1, round(n * test_fraction)), n - 1)
    order = np.random.default_rng([seed, _SPLIT_STREAM]).permutation(n)
    return order[n_test:], order[:n_test]


def _standardize(
    X_train: FloatArray, X_test: FloatArray | None
) -> tuple[FloatArray, FloatArray | None]:
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    std = np.where(std > _CONSTANT_RTOL * (1.0 + np.abs(mean)), std, 1.0)
    X_test = None if X_test is None else (X_test - mean) / std
    return (X_train - mean) / std, X_test


def _frozen(a: FloatArray) -> FloatArray:
    a = np.ascontiguousarray(a, dtype=np.float64)
    a.setflags(write=False)
    return a
