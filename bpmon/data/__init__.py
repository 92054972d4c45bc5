"""The data sets a run can train on, built from a :class:`~bpmon.config.DataConfig`.

Conventions, shared by every set:

* Names are defined once, in :data:`bpmon.config.DATASETS`; ``_BUILDERS`` here maps each name to
  the function that builds it, and importing this module fails if the two ever disagree.
* Inputs are float64 of shape ``(N, d)``, and every value is finite (a set whose values are not,
  such as moons with a noise of 1e308, is refused naming ``data.noise``).
* Targets are float64. A binary task has shape ``(N, 1)`` holding 0.0 or 1.0 (for a sigmoid
  output); a multiclass task is one-hot of shape ``(N, C)`` (for a softmax output). Column ``k``
  (or target value ``k`` for binary) is class ``classes[k]``.
* xor, circle and moons are binary; spiral, blobs and digits are multiclass even when asked for
  two classes, so that their softmax presets stay valid; a CSV file is binary when its label
  column has two values and multiclass when it has more (at most
  :data:`bpmon.config.MAX_CLASSES`).
* Everything is deterministic given ``cfg.seed``.
* Split: when ``cfg.test_fraction > 0`` (never for xor, whose four points are the whole
  problem), the points are shuffled with the seed and ``round(N * test_fraction)`` of them become
  the test set, but at least one and never so many that fewer than :data:`MIN_TRAIN_POINTS` are
  left to train on; the rest, in shuffled order, are the training set. A set too small for that
  (a CSV file of two rows) is refused. Otherwise the test arrays are None and the training set
  is in generation order.
* Standardisation: when ``cfg.standardize``, each feature is shifted and scaled by the mean and
  standard deviation of the *training* split only, so that nothing about the test points leaks
  into training. The statistics are computed on the feature divided by its largest magnitude,
  so that any finite input (1e308, subnormals) gives finite output. A feature whose spread is
  below 1e-12 of its largest magnitude is constant up to rounding and is only centred (it
  becomes 0, up to rounding). A test value too far outside the training values to standardise
  to a finite number is refused, naming the feature.
* Memory: before anything big is allocated, the bytes a set takes are bounded from above by
  :func:`dataset_bytes` and checked with :func:`bpmon.memory.ensure_fits`, so that a set too big
  for the machine is refused naming ``data.n`` (or ``data.path``) instead of dying of
  ``MemoryError``.
* Loading a set never prints a NumPy warning: where an overflow is possible it is expected,
  silenced and checked for explicitly.
* Error messages about a configuration value read ``data.<key> = <value>: expected ...``; those
  about a file start with its path.
* The arrays of a :class:`Dataset` are read-only, so that one can be shared between threads.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from bpmon.config import DATASETS, MAX_CLASSES, DataConfig, show_value, validate_data
from bpmon.data import synthetic
from bpmon.data.csvdata import read_csv
from bpmon.data.digits import CLASSES as DIGIT_CLASSES
from bpmon.data.digits import FEATURE_NAMES as DIGIT_FEATURES
from bpmon.data.digits import digits
from bpmon.errors import BpmonError
from bpmon.memory import ensure_fits

__all__ = [
    "DATASET_NAMES",
    "MAX_CLASSES",
    "MIN_TRAIN_POINTS",
    "Dataset",
    "Task",
    "dataset_bytes",
    "load_dataset",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
Task = Literal["binary", "multiclass"]

# The names live in the config (the TOML loader checks against them); this is the same tuple,
# kept under its old name for callers that look it up here.
DATASET_NAMES: tuple[str, ...] = DATASETS
# Batch normalisation divides by the variance of a batch, which needs two points. Every set has
# at least this many training points (a split never leaves fewer, and an unsplit CSV file has a
# row for each of its two or more classes), so Dataset.n_train is a safe thing for the trainer
# to check a batch-norm run against.
MIN_TRAIN_POINTS = 2
# Sets whose size is cfg.n; xor, digits and csv have a fixed size.
_SIZED = ("circle", "moons", "spiral", "blobs")
# Sized sets with cfg.classes classes (and that many outputs); the other two are binary.
_MULTICLASS_SIZED = ("spiral", "blobs")
_MIN_POINTS = 4
# Separate the split's random stream from the generator's: both start from cfg.seed, and a
# shuffle drawn from the very numbers that placed the points would correlate the two.
_SPLIT_STREAM = 1
# A feature whose spread is this small relative to its largest magnitude is constant up to
# rounding, and dividing by that spread would blow rounding noise up to unit scale.
_CONSTANT_RTOL = 1e-12
_XY = ("x1", "x2")
# dataset_bytes counts, per point, this many float64 arrays the size of the features, of the
# targets, and of one number a point. They are what load_dataset and the generators hold at
# worst, summed as if all were alive at once: the generators' temporaries (moons holds its two
# halves, their concatenation, the noise and the sum: 4 copies of X), the split's copy, the
# standardisation's 3 temporaries and the boolean finiteness mask (X: 4 + 1 + 3 + 1 < 10); the
# one-hot targets, their split copy and one spare (y: 3); labels, the split's permutation and
# the generators' index, radius and angle arrays (6).
_X_COPIES = 10
_Y_COPIES = 3
_POINT_ARRAYS = 6


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

    @property
    def n_train(self) -> int:
        """Points in the training set, always at least :data:`MIN_TRAIN_POINTS`."""
        return int(self.X_train.shape[0])


def dataset_bytes(n_points: int, n_features: int, n_outputs: int) -> int:
    """An upper bound on the bytes :func:`load_dataset` holds at once for a set of ``n_points``
    points with ``n_features`` features and ``n_outputs`` target columns (1 for binary)."""
    per_point = _X_COPIES * n_features + _Y_COPIES * n_outputs + _POINT_ARRAYS
    return 8 * n_points * per_point


def load_dataset(cfg: DataConfig) -> Dataset:
    """Build the data set ``cfg`` describes; bad values raise :class:`BpmonError`."""
    _validate(cfg)
    if cfg.name in _SIZED:
        ensure_fits(dataset_bytes(cfg.n, len(_XY), _sized_outputs(cfg)), _size_keys(cfg))
    # A huge noise level can overflow a generator to inf or NaN. NumPy would print a warning on
    # stderr (under the monitor's screen); the features are checked just below instead.
    with np.errstate(over="ignore", invalid="ignore"):
        X, labels, classes, features, task = _BUILDERS[cfg.name](cfg)
    _check_finite(cfg, X, features)
    y_width = 1 if task == "binary" else len(classes)
    if cfg.name == "csv":
        # The rows and classes are known only now; the file's size was checked before parsing.
        # (xor and digits are small and fixed.)
        ensure_fits(
            dataset_bytes(len(X), X.shape[1], y_width),
            f"data.path = {show_value(cfg.path)} ({len(X):,} rows, {len(classes)} classes)",
        )
    y = _encode(labels, len(classes), task)
    X_test: FloatArray | None = None
    y_test: FloatArray | None = None
    if cfg.test_fraction > 0 and cfg.name != "xor":
        if len(X) < MIN_TRAIN_POINTS + 1:
            raise BpmonError(
                f"{_source(cfg)}: data.test_fraction = {show_value(cfg.test_fraction)}: "
                f"expected 0 for a set of {len(X)} points; a split needs at least "
                f"{MIN_TRAIN_POINTS + 1} ({MIN_TRAIN_POINTS} to train on and 1 to test)"
            )
        train, test = _split(len(X), cfg.test_fraction, cfg.seed)
        X, X_test, y, y_test = X[train], X[test], y[train], y[test]
    if cfg.standardize:
        X, X_test = _standardize(X, X_test, features, _source(cfg))
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
        raise BpmonError("data.path = None: expected the CSV file that data set 'csv' reads")
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


def _check_builders(names: Collection[str], builders: Collection[str]) -> None:
    """Raise RuntimeError unless ``builders`` (the keys of _BUILDERS) are exactly ``names``."""
    missing = [n for n in names if n not in builders]
    extra = [n for n in builders if n not in names]
    if missing or extra:
        raise RuntimeError(
            "bpmon.data._BUILDERS must have one builder for each name in "
            f"bpmon.config.DATASETS; no builder for {missing}, builders for unknown names {extra}"
        )


# At import, so that a name added to the config without a builder (or the other way round)
# fails every run and test at once, not when someone first picks that set.
_check_builders(DATASETS, _BUILDERS)


def _validate(cfg: DataConfig) -> None:
    # The ranges of every key, and the rules between them, live in the one config validation.
    validate_data(cfg)


def _sized_outputs(cfg: DataConfig) -> int:
    return cfg.classes if cfg.name in _MULTICLASS_SIZED else 1


def _size_keys(cfg: DataConfig) -> str:
    """The keys that make a sized set big, as ``ensure_fits`` names them."""
    if cfg.name in _MULTICLASS_SIZED:
        return f"data.n = {cfg.n}, data.classes = {cfg.classes}"
    return f"data.n = {cfg.n}"


def _source(cfg: DataConfig) -> str:
    """Where a set's values come from, to start a message about them: a CSV file's path (as
    every message about a file starts), else the set's name."""
    if cfg.name == "csv" and cfg.path is not None:
        return cfg.path
    return f"data set {cfg.name!r}"


def _check_finite(cfg: DataConfig, X: FloatArray, features: tuple[str, ...]) -> None:
    finite = np.isfinite(X).all(axis=0)
    if finite.all():
        return
    name = features[int(np.argmin(finite))]
    if cfg.name in _SIZED:
        raise BpmonError(
            f"data.noise = {show_value(cfg.noise)}: expected a noise level small enough for the "
            f"{cfg.name} points to stay finite numbers (feature {name!r} overflows)"
        )
    # CSV cells are checked as they are read and digits is a fixed file: a safety net only.
    raise BpmonError(f"{_source(cfg)}: feature {name!r} holds a value that is not a finite number")


def _encode(labels: IntArray, n_classes: int, task: Task) -> FloatArray:
    if task == "binary":
        return labels.astype(np.float64)[:, np.newaxis]
    return np.eye(n_classes, dtype=np.float64)[labels]


def _split(n: int, test_fraction: float, seed: int) -> tuple[IntArray, IntArray]:
    """Shuffled (train, test) index arrays: at least 1 test point and MIN_TRAIN_POINTS training
    points, which needs ``n > MIN_TRAIN_POINTS`` (load_dataset checks)."""
    n_test = min(max(1, round(n * test_fraction)), n - MIN_TRAIN_POINTS)
    order = np.random.default_rng([seed, _SPLIT_STREAM]).permutation(n)
    return order[n_test:], order[:n_test]


def _standardize(
    X_train: FloatArray, X_test: FloatArray | None, features: tuple[str, ...], source: str
) -> tuple[FloatArray, FloatArray | None]:
    # Divide each feature by its largest magnitude first. Every value is then in [-1, 1], so the
    # sums and squares inside mean and std cannot overflow, which they do on the raw values (the
    # std of a column holding 1e308 is inf, and 0 after (x - mean) / inf); it also makes the
    # constant test independent of the feature's units.
    scale = np.maximum(X_train.max(axis=0), -X_train.min(axis=0))
    scale = np.where(scale > 0, scale, 1.0)
    unit = X_train / scale
    mean = unit.mean(axis=0)
    spread = unit.std(axis=0)
    # |unit - mean| <= 2 and spread >= _CONSTANT_RTOL: the training values stay below 2e12.
    spread = np.where(spread > _CONSTANT_RTOL, spread, 1.0)
    train = (unit - mean) / spread
    if X_test is None:
        return train, None
    # A test value may lie so far outside the training values that its standardised value is
    # beyond float64; the overflow is expected here and refused just below, without a warning.
    with np.errstate(over="ignore"):
        test = (X_test / scale - mean) / spread
    finite = np.isfinite(test)
    if not finite.all():
        row, col = np.argwhere(~finite)[0]
        raise BpmonError(
            f"{source}: data.standardize = true: feature {features[col]!r} of a test point is "
            f"{show_value(float(X_test[row, col]))}, too far outside the training points (whose "
            f"largest magnitude is {show_value(float(scale[col]))}) to standardise to a finite "
            "number; expected test values on the scale of the training ones (choose another "
            "data.seed or data.test_fraction, or turn data.standardize off)"
        )
    return train, test


def _frozen(a: FloatArray) -> FloatArray:
    a = np.ascontiguousarray(a, dtype=np.float64)
    a.setflags(write=False)
    return a
