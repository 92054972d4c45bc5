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
  two classes, so that their softmax presets stay valid. A CSV file is binary, multiclass or a
  regression as :mod:`bpmon.data.csvdata` says (``data.task``; guessed from the label column by
  default); :data:`OUTPUT_LOSS` gives each task's output activation and loss.
* Regression (CSV only): the target has shape ``(N, 1)`` and is standardised with the
  *training* split's mean and standard deviation, which the set carries as ``y_mean`` and
  ``y_std`` (0 and 1 for classification), so a prediction ``p`` is ``p * y_std + y_mean`` in
  the target's own units. R^2 is the same on either scale; a mean squared error on this scale
  is ``y_std**2`` times smaller than in the target's units. ``classes`` is empty. A training
  target that is constant up to rounding is only centred (``y_std`` is then 1).
* ``notes`` (CSV only) are short sentences for the user: what was assumed (no header, the
  separator, the task), encoded (one-hot columns), dropped (rows with a missing value, counted
  in ``dropped``, empty columns) and features constant in the training split.
* Noise (``cfg.noise``, or the set's default: 0.1 for moons, spiral and blobs, 0 for xor and
  circle) is honoured by every 2-D set (see :mod:`bpmon.data.synthetic`); digits and csv are
  measured data and ignore it.
* Everything is deterministic given ``cfg.seed``.
* Split: when the test fraction (``cfg.test_fraction``, or the set's default: 0.2 for csv, 0
  for the others; never for xor, whose four points are the whole problem) is above 0, the
  points are shuffled with the seed and ``round(N * test_fraction)`` of them become the test
  set, but at least one and never so many that fewer than :data:`MIN_TRAIN_POINTS` are left to
  train on; the rest, in shuffled order, are the training set. A CSV classification split is
  stratified: each class gives its share of the test points (largest remainders first), and a
  class with at least two rows keeps at least one in the training set. (The built-in sets keep
  the plain shuffle, which their presets' figures were measured with.) A set too small to split
  (a CSV file of two rows) is refused. Otherwise the test arrays are None and the training set
  is in generation order.
* Standardisation: when ``cfg.standardize`` (default: on for csv, off for the others), each
  feature is shifted and scaled by the mean and
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

import numpy as np
import numpy.typing as npt

from bpmon.config import (
    DATASETS,
    MAX_CLASSES,
    DataConfig,
    LossName,
    OutputName,
    show_value,
    validate_data,
)
from bpmon.data import synthetic
from bpmon.data.csvdata import CsvInfo, Task, inspect_csv, read_csv
from bpmon.data.digits import CLASSES as DIGIT_CLASSES
from bpmon.data.digits import FEATURE_NAMES as DIGIT_FEATURES
from bpmon.data.digits import digits
from bpmon.errors import BpmonError
from bpmon.memory import ensure_fits

__all__ = [
    "DATASET_NAMES",
    "MAX_CLASSES",
    "MIN_TRAIN_POINTS",
    "OUTPUT_LOSS",
    "CsvInfo",
    "Dataset",
    "Task",
    "dataset_bytes",
    "inspect_csv",
    "load_dataset",
    "noise_of",
    "standardize_of",
    "test_fraction_of",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

# The output activation and loss each task trains with (the CLI picks them from a CSV file's
# task): a sigmoid unit with binary cross-entropy, a softmax over the classes with
# cross-entropy, one linear unit with mean squared error.
OUTPUT_LOSS: dict[Task, tuple[OutputName, LossName]] = {
    "binary": ("sigmoid", "bce"),
    "multiclass": ("softmax", "cross_entropy"),
    "regression": ("identity", "mse"),
}

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
    # Regression only: the training target's mean and standard deviation (see the module doc).
    y_mean: float = 0.0
    y_std: float = 1.0
    notes: tuple[str, ...] = ()
    dropped: int = 0

    @property
    def n_inputs(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_outputs(self) -> int:
        """1 for binary and regression, the number of classes for multiclass."""
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
        built = _BUILDERS[cfg.name](cfg)
    X, task, classes, features = built.X, built.task, built.classes, built.features
    if cfg.name != "csv":  # the CSV reader refuses a cell that is not finite, naming it
        _check_finite(cfg, X, features)
    n = len(X)
    y_width = len(classes) if task == "multiclass" else 1
    if cfg.name == "csv":
        # The rows and classes are known only now; the file's size was checked before parsing.
        # (xor and digits are small and fixed.)
        what = f"{len(classes)} classes" if classes else "a regression target"
        ensure_fits(
            dataset_bytes(n, X.shape[1], y_width),
            f"data.path = {show_value(cfg.path)} ({n:,} rows, {what})",
        )
    test_fraction = test_fraction_of(cfg)
    train: IntArray | None = None
    test: IntArray | None = None
    if test_fraction > 0 and cfg.name != "xor":
        if n < MIN_TRAIN_POINTS + 1:
            raise BpmonError(
                f"{_source(cfg)}: data.test_fraction = {show_value(test_fraction)}: "
                f"expected 0 for a set of {n} points; a split needs at least "
                f"{MIN_TRAIN_POINTS + 1} ({MIN_TRAIN_POINTS} to train on and 1 to test)"
            )
        if cfg.name == "csv" and built.labels is not None:
            train, test = _stratified_split(built.labels, len(classes), test_fraction, cfg.seed)
        else:
            train, test = _split(n, test_fraction, cfg.seed)
    notes, dropped = list(built.notes), built.dropped
    y_mean, y_std = 0.0, 1.0
    if built.targets is not None:
        y_train, y_test, y_mean, y_std = _scale_targets(
            built.targets, train, test, _source(cfg), built.label
        )
    else:
        assert built.labels is not None
        labels = built.labels
        y_train = _encode(labels if train is None else labels[train], len(classes), task)
        y_test = None if test is None else _encode(labels[test], len(classes), task)
    X_test: FloatArray | None = None
    if train is not None and test is not None:
        X_train, X_test = X[train], X[test]
    else:
        # Standardisation works in place: on a copy unless the builder's array is ours alone.
        X_train = X if built.owned else np.array(X, dtype=np.float64)
    # The builder's arrays (for a CSV file, every cell it read) are not needed any more.
    del X, built
    if standardize_of(cfg):
        X_test, constant = _standardize(X_train, X_test, features, _source(cfg))
        if cfg.name == "csv" and constant:
            shown = ", ".join(repr(features[j]) for j in constant[:5])
            more = f" and {len(constant) - 5} more" if len(constant) > 5 else ""
            notes.append(f"constant in the training split, left at 0: {shown}{more}")
    return Dataset(
        name=cfg.name,
        X_train=_frozen(X_train),
        y_train=_frozen(y_train),
        X_test=None if X_test is None else _frozen(X_test),
        y_test=None if y_test is None else _frozen(y_test),
        task=task,
        classes=classes,
        feature_names=features,
        y_mean=y_mean,
        y_std=y_std,
        notes=tuple(notes),
        dropped=dropped,
    )


@dataclass(frozen=True)
class _Built:
    """What a builder makes: features, and class indices or (CSV regression) raw targets.
    ``owned``: ``X`` is a fresh array nothing else holds, which may be changed in place."""

    X: FloatArray
    labels: IntArray | None
    classes: tuple[str, ...]
    features: tuple[str, ...]
    task: Task
    targets: FloatArray | None = None
    label: str = ""
    notes: tuple[str, ...] = ()
    dropped: int = 0
    owned: bool = True


def _numbered(count: int) -> tuple[str, ...]:
    return tuple(str(k) for k in range(count))


def _xor(cfg: DataConfig) -> _Built:
    X, labels = synthetic.xor(noise_of(cfg), cfg.seed)
    return _Built(X, labels, _numbered(2), _XY, "binary")


def _circle(cfg: DataConfig) -> _Built:
    X, labels = synthetic.circle(cfg.n, cfg.seed, noise_of(cfg))
    return _Built(X, labels, _numbered(2), _XY, "binary")


def _moons(cfg: DataConfig) -> _Built:
    X, labels = synthetic.moons(cfg.n, noise_of(cfg), cfg.seed)
    return _Built(X, labels, _numbered(2), _XY, "binary")


def _spiral(cfg: DataConfig) -> _Built:
    X, labels = synthetic.spiral(cfg.n, cfg.classes, noise_of(cfg), cfg.seed)
    return _Built(X, labels, _numbered(cfg.classes), _XY, "multiclass")


def _blobs(cfg: DataConfig) -> _Built:
    X, labels = synthetic.blobs(cfg.n, cfg.classes, noise_of(cfg), cfg.seed)
    return _Built(X, labels, _numbered(cfg.classes), _XY, "multiclass")


def _digits(cfg: DataConfig) -> _Built:
    X, labels = digits()
    return _Built(X, labels, DIGIT_CLASSES, DIGIT_FEATURES, "multiclass")


def _csv(cfg: DataConfig) -> _Built:
    table = read_csv(cfg)
    info = table.info
    return _Built(
        X=table.X,
        labels=table.labels,
        classes=info.classes,
        features=info.feature_names,
        task=info.task,
        targets=table.targets,
        label=info.label,
        notes=info.notes,
        dropped=info.dropped,
        # Often a view of every cell the reader holds, which must not change under it.
        owned=False,
    )


_BUILDERS: dict[str, Callable[[DataConfig], _Built]] = {
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


# A user's own file is held out 20% for a test accuracy and standardised: measurements in
# millimetres and grams otherwise kill every ReLU at the first step.
CSV_TEST_FRACTION = 0.2


def test_fraction_of(cfg: DataConfig) -> float:
    """``cfg.test_fraction``, or the set's default when it is left out."""
    if cfg.test_fraction is not None:
        return cfg.test_fraction
    return CSV_TEST_FRACTION if cfg.name == "csv" else 0.0


# The noise of the sets that have always had one; xor and circle are clean unless asked.
DEFAULT_NOISE = 0.1
_NOISY_BY_DEFAULT = ("moons", "spiral", "blobs")


def noise_of(cfg: DataConfig) -> float:
    """``cfg.noise``, or the set's default when it is left out: :data:`DEFAULT_NOISE` for
    moons, spiral and blobs, 0 for xor and circle (the story's clean points)."""
    if cfg.noise is not None:
        return cfg.noise
    return DEFAULT_NOISE if cfg.name in _NOISY_BY_DEFAULT else 0.0


def standardize_of(cfg: DataConfig) -> bool:
    """``cfg.standardize``, or the set's default when it is left out."""
    if cfg.standardize is not None:
        return cfg.standardize
    return cfg.name == "csv"


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
    if cfg.name in _SIZED or cfg.name == "xor":
        raise BpmonError(
            f"data.noise = {show_value(noise_of(cfg))}: expected a noise level small enough "
            f"for the {cfg.name} points to stay finite numbers (feature {name!r} overflows)"
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
    n_test = _test_size(n, test_fraction)
    order = np.random.default_rng([seed, _SPLIT_STREAM]).permutation(n)
    return order[n_test:], order[:n_test]


def _test_size(n: int, test_fraction: float) -> int:
    return min(max(1, round(n * test_fraction)), n - MIN_TRAIN_POINTS)


def stratified_test_limit(counts: IntArray) -> int:
    """The most test points a stratified split takes from classes of ``counts`` rows: all but
    one of each class of two or more, and the rows of single-row classes."""
    return int(np.maximum(counts - 1, 0).sum() + (counts == 1).sum())


def _stratified_split(
    labels: IntArray, n_classes: int, test_fraction: float, seed: int
) -> tuple[IntArray, IntArray]:
    """:func:`_split`'s sizes and shuffle, with each class giving its share of the test
    points: ``floor(count * n_test / n)``, then one more each to the classes with the largest
    remainders until there are ``n_test``. A class of two or more rows keeps one in the
    training set; a class of one gives its row only when nothing else can."""
    n = labels.shape[0]
    order = np.random.default_rng([seed, _SPLIT_STREAM]).permutation(n)
    counts = np.bincount(labels, minlength=n_classes)
    # Never so many test points that a class of two or more rows loses its last training row:
    # six rows of three classes at a 60% split hold out three, not four.
    n_test = min(_test_size(n, test_fraction), stratified_test_limit(counts))
    quota = counts * (n_test / n)
    take = np.minimum(np.floor(quota).astype(np.intp), np.maximum(counts - 1, 0))
    short = n_test - int(take.sum())
    for cap in (np.maximum(counts - 1, 0), counts):
        while short > 0:
            room = np.flatnonzero(take < cap)
            if room.size == 0:
                break
            # Largest remainder first; the class index breaks ties, so the seed alone decides.
            for c in sorted(room.tolist(), key=lambda c: (-(quota[c] - take[c]), c)):
                if short == 0:
                    break
                take[c] += 1
                short -= 1
    shuffled = labels[order]
    by_class = np.argsort(shuffled, kind="stable")
    firsts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.arange(n) - np.repeat(firsts, counts)  # each row's place in its class, shuffled
    in_test = np.empty(n, dtype=bool)
    in_test[by_class] = rank < take[shuffled[by_class]]
    return order[~in_test], order[in_test]


def _standardize(
    X_train: FloatArray, X_test: FloatArray | None, features: tuple[str, ...], source: str
) -> tuple[FloatArray | None, list[int]]:
    """Standardise ``X_train`` in place (it must be an array of our own) and return the
    standardised test set and the features constant in the training split."""
    # Divide each feature by its largest magnitude first. Every value is then in [-1, 1], so the
    # sums and squares inside mean and std cannot overflow, which they do on the raw values (the
    # std of a column holding 1e308 is inf, and 0 after (x - mean) / inf); it also makes the
    # constant test independent of the feature's units.
    scale = np.maximum(X_train.max(axis=0), -X_train.min(axis=0))
    scale = np.where(scale > 0, scale, 1.0)
    X_train /= scale
    mean = X_train.mean(axis=0)
    spread = X_train.std(axis=0)
    constant = spread <= _CONSTANT_RTOL
    # |unit - mean| <= 2 and spread >= _CONSTANT_RTOL: the training values stay below 2e12.
    spread = np.where(constant, 1.0, spread)
    X_train -= mean
    X_train /= spread
    if X_test is None:
        return None, np.flatnonzero(constant).tolist()
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
    return test, np.flatnonzero(constant).tolist()


def _scale_targets(
    targets: FloatArray, train: IntArray | None, test: IntArray | None, source: str, label: str
) -> tuple[FloatArray, FloatArray | None, float, float]:
    """Regression targets standardised with the training split's statistics, as ``(N, 1)``
    columns, and that mean and standard deviation in the target's units."""
    t_train = targets if train is None else targets[train]
    # As for the features: scaled by the largest magnitude first, so that nothing overflows.
    scale = float(np.abs(t_train).max())
    scale = scale if scale > 0 else 1.0
    mean = float(np.mean(t_train / scale))
    spread = float(np.std(t_train / scale))
    spread = spread if spread > _CONSTANT_RTOL else 1.0
    with np.errstate(over="ignore"):
        y_mean, y_std = mean * scale, spread * scale
        y_test = None if test is None else (targets[test] / scale - mean) / spread
    if not (np.isfinite(y_mean) and np.isfinite(y_std)):
        raise BpmonError(
            f"{source}: the label column {label!r} holds numbers too large (up to "
            f"{show_value(scale)}) to standardise; expected targets below about 1e300"
        )
    if y_test is not None and not np.isfinite(y_test).all():
        row = int(np.argmin(np.isfinite(y_test)))
        raise BpmonError(
            f"{source}: the label column {label!r} holds a test target of "
            f"{show_value(float(targets[test][row]))}, too far outside the training targets "
            "to standardise to a finite number (choose another data.seed or data.test_fraction)"
        )
    y_train = (t_train / scale - mean) / spread
    return y_train[:, np.newaxis], None if y_test is None else y_test[:, np.newaxis], y_mean, y_std


def _frozen(a: FloatArray) -> FloatArray:
    a = np.ascontiguousarray(a, dtype=np.float64)
    a.setflags(write=False)
    return a
