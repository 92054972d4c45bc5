"""The data sets: shapes, encodings, determinism, the split, standardisation and CSV errors."""

from __future__ import annotations

import re
import tracemalloc
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, event, example, given, settings
from hypothesis import strategies as st

import bpmon.data as data_module
from bpmon import memory
from bpmon.config import DATASETS, MAX_CLASSES, DataConfig
from bpmon.data import (
    DATASET_NAMES,
    MIN_TRAIN_POINTS,
    Dataset,
    csvdata,
    dataset_bytes,
    load_dataset,
)
from bpmon.errors import BpmonError

SYNTHETIC = ("circle", "moons", "spiral", "blobs")
ALL_BUT_CSV = ("xor", *SYNTHETIC, "digits")
# What every message about a configuration value looks like.
KEY_MESSAGE = re.compile(r"^data\.\w+ = .+: expected ")


@contextmanager
def no_numpy_warnings() -> Iterator[None]:
    """Fail on any warning, and on any overflow, division by zero or invalid operation that
    NumPy would otherwise only warn about. (Underflow to 0 is harmless and stays allowed.)"""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", divide="raise", invalid="raise"):
            yield


def labels_of(d: Dataset, y: np.ndarray) -> np.ndarray:
    """Integer class of each row, whichever the encoding."""
    if d.task == "binary":
        return np.asarray(y[:, 0].astype(int))
    return np.asarray(y.argmax(axis=1))


def check_encoding(d: Dataset, y: np.ndarray) -> None:
    assert y.dtype == np.float64
    if d.task == "binary":
        assert y.shape[1] == 1
        assert set(np.unique(y)) <= {0.0, 1.0}
    else:
        assert y.shape[1] == len(d.classes)
        assert set(np.unique(y)) <= {0.0, 1.0}
        np.testing.assert_array_equal(y.sum(axis=1), 1.0)


# --- every set -------------------------------------------------------------------------------


def test_every_listed_name_builds() -> None:
    # The names come from the config (the TOML loader validates against them): each one needs
    # a loader behind it. csv needs a file and has its own tests below.
    for name in DATASET_NAMES:
        if name != "csv":
            assert load_dataset(DataConfig(name=name)).name == name


@pytest.mark.parametrize(
    ("name", "task", "n_rows", "n_inputs", "n_outputs"),
    [
        ("xor", "binary", 4, 2, 1),
        ("circle", "binary", 200, 2, 1),
        ("moons", "binary", 200, 2, 1),
        ("spiral", "multiclass", 200, 2, 3),
        ("blobs", "multiclass", 200, 2, 3),
        ("digits", "multiclass", 1797, 64, 10),
    ],
)
def test_shapes_dtypes_and_encoding(
    name: str, task: str, n_rows: int, n_inputs: int, n_outputs: int
) -> None:
    d = load_dataset(DataConfig(name=name, n=200, classes=3, seed=3))
    assert d.name == name
    assert d.task == task
    assert d.X_train.shape == (n_rows, n_inputs)
    assert d.y_train.shape == (n_rows, n_outputs)
    assert d.X_train.dtype == np.float64
    assert d.X_test is None and d.y_test is None
    assert (d.n_inputs, d.n_outputs) == (n_inputs, n_outputs)
    assert len(d.feature_names) == n_inputs
    assert len(d.classes) == (2 if task == "binary" else n_outputs)
    check_encoding(d, d.y_train)
    # Every class is present in the full set.
    assert set(labels_of(d, d.y_train)) == set(range(len(d.classes)))
    assert np.isfinite(d.X_train).all()


def test_arrays_are_read_only() -> None:
    d = load_dataset(DataConfig(name="moons", test_fraction=0.25))
    for a in (d.X_train, d.y_train, d.X_test, d.y_test):
        assert a is not None
        with pytest.raises(ValueError, match="read-only"):
            a[0, 0] = 1.0


def test_xor_values() -> None:
    d = load_dataset(DataConfig(name="xor", n=999, seed=7))
    np.testing.assert_array_equal(d.X_train, [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(d.y_train, [[0], [1], [1], [0]])
    assert d.classes == ("0", "1")
    assert d.feature_names == ("x1", "x2")


def test_xor_is_never_split() -> None:
    d = load_dataset(DataConfig(name="xor", test_fraction=0.5))
    assert d.X_test is None and d.y_test is None
    assert len(d.X_train) == 4


def test_circle_reproduces_the_story() -> None:
    d = load_dataset(DataConfig(name="circle", n=200, seed=42))
    # The story: np.random.seed(42); X = np.random.randn(200, 2) * 2 (same stream as RandomState).
    X = np.random.RandomState(42).randn(200, 2) * 2
    y = (X[:, 0] ** 2 + X[:, 1] ** 2 < 2.25).astype(float).reshape(-1, 1)
    np.testing.assert_array_equal(d.X_train, X)
    np.testing.assert_array_equal(d.y_train, y)
    # Pin a few numbers too, in case RandomState itself ever changed.
    np.testing.assert_allclose(d.X_train[0], [0.99342831, -0.2765286], rtol=1e-7)
    assert int(d.y_train.sum()) == 51  # np.random.seed(42) puts 51 of 200 inside


def test_circle_leaves_the_global_random_state_alone() -> None:
    # The legacy global state is exactly what this test is about.
    np.random.seed(123)  # noqa: NPY002
    expected = np.random.rand(3)  # noqa: NPY002
    np.random.seed(123)  # noqa: NPY002
    load_dataset(DataConfig(name="circle", seed=42))
    np.testing.assert_array_equal(np.random.rand(3), expected)  # noqa: NPY002


def test_moons_geometry() -> None:
    d = load_dataset(DataConfig(name="moons", n=101, noise=0.0))
    y = d.y_train[:, 0]
    upper, lower = d.X_train[y == 0], d.X_train[y == 1]
    assert (len(upper), len(lower)) == (50, 51)
    # Without noise the upper moon is the unit half circle, the lower one is shifted to (1, 0.5).
    np.testing.assert_allclose(np.hypot(*upper.T), 1.0)
    np.testing.assert_allclose(np.hypot(lower[:, 0] - 1.0, lower[:, 1] - 0.5), 1.0)
    assert (upper[:, 1] >= 0).all() and (lower[:, 1] <= 0.5).all()


def test_spiral_geometry() -> None:
    d = load_dataset(DataConfig(name="spiral", n=300, classes=3, noise=0.0))
    labels = labels_of(d, d.y_train)
    np.testing.assert_array_equal(np.bincount(labels), [100, 100, 100])
    radius = np.hypot(*d.X_train.T)
    # Each arm runs from the centre out to radius 1.
    for k in range(3):
        r = radius[labels == k]
        assert r.min() == pytest.approx(0.0) and r.max() == pytest.approx(1.0)
    assert d.classes == ("0", "1", "2")


@pytest.mark.parametrize("name", ["spiral", "blobs"])
def test_class_count_follows_the_config(name: str) -> None:
    d = load_dataset(DataConfig(name=name, n=50, classes=5))
    assert d.n_outputs == 5
    assert d.classes == ("0", "1", "2", "3", "4")
    np.testing.assert_array_equal(np.bincount(labels_of(d, d.y_train)), [10] * 5)


def test_two_class_spiral_stays_multiclass() -> None:
    d = load_dataset(DataConfig(name="spiral", classes=2))
    assert d.task == "multiclass" and d.n_outputs == 2


def test_blobs_cluster_around_their_centres() -> None:
    d = load_dataset(DataConfig(name="blobs", n=600, classes=3, noise=0.05, seed=1))
    labels = labels_of(d, d.y_train)
    for k in range(3):
        points = d.X_train[labels == k]
        np.testing.assert_allclose(points.std(axis=0), 0.05, rtol=0.2)


def test_digits() -> None:
    d = load_dataset(DataConfig(name="digits"))
    assert d.X_train.shape == (1797, 64)
    assert d.X_train.min() == 0.0 and d.X_train.max() == 1.0
    # Pixels were integers 0..16.
    np.testing.assert_array_equal(d.X_train * 16, np.round(d.X_train * 16))
    assert d.classes == tuple("0123456789")
    counts = np.bincount(labels_of(d, d.y_train), minlength=10)
    np.testing.assert_array_equal(counts, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])
    # The first image is a zero.
    assert labels_of(d, d.y_train)[0] == 0
    assert d.X_train[0].reshape(8, 8)[0, 2] * 16 == 5
    assert d.feature_names[0] == "px0_0" and d.feature_names[63] == "px7_7"


# --- determinism -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", SYNTHETIC)
def test_same_seed_same_arrays(name: str) -> None:
    cfg = DataConfig(name=name, n=120, seed=5, test_fraction=0.25)
    a, b = load_dataset(cfg), load_dataset(cfg)
    for x, y in [(a.X_train, b.X_train), (a.y_train, b.y_train), (a.X_test, b.X_test)]:
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("name", SYNTHETIC)
def test_different_seed_different_points(name: str) -> None:
    a = load_dataset(DataConfig(name=name, n=120, seed=5))
    b = load_dataset(DataConfig(name=name, n=120, seed=6))
    assert not np.array_equal(a.X_train, b.X_train)


def test_different_seed_different_split() -> None:
    a = load_dataset(DataConfig(name="digits", seed=0, test_fraction=0.2))
    b = load_dataset(DataConfig(name="digits", seed=1, test_fraction=0.2))
    assert a.X_test is not None and b.X_test is not None
    assert not np.array_equal(a.X_test, b.X_test)


# --- split and standardisation ---------------------------------------------------------------


def rows(X: np.ndarray) -> set[bytes]:
    return {r.tobytes() for r in X}


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(SYNTHETIC),
    n=st.integers(4, 300),
    fraction=st.floats(0.01, 0.99),
    seed=st.integers(0, 2**32 - 1),
)
def test_split_sizes_and_no_overlap(name: str, n: int, fraction: float, seed: int) -> None:
    cfg = DataConfig(name=name, n=n, classes=2, seed=seed, test_fraction=fraction)
    d = load_dataset(cfg)
    whole = load_dataset(replace(cfg, test_fraction=0.0))
    assert d.X_test is not None and d.y_test is not None
    n_test = min(max(1, round(n * fraction)), n - MIN_TRAIN_POINTS)
    assert len(d.X_test) == len(d.y_test) == n_test
    assert len(d.X_train) == len(d.y_train) == n - n_test
    # The two parts are exactly the original points, each once, with their own targets.
    pairs = np.hstack([whole.X_train, whole.y_train])
    split = np.vstack([np.hstack([d.X_train, d.y_train]), np.hstack([d.X_test, d.y_test])])
    np.testing.assert_array_equal(
        pairs[np.lexsort(pairs.T[::-1])], split[np.lexsort(split.T[::-1])]
    )
    if len(rows(whole.X_train)) == n:  # no duplicate points, so overlap is observable
        assert not rows(d.X_train) & rows(d.X_test)


def test_split_rounds_the_test_size() -> None:
    d = load_dataset(DataConfig(name="digits", test_fraction=0.2))
    assert d.X_test is not None
    assert len(d.X_test) == 359  # round(1797 * 0.2) = round(359.4)
    assert len(d.X_train) == 1438


def test_split_holds_out_at_least_one_and_keeps_two() -> None:
    tiny = load_dataset(DataConfig(name="moons", n=10, test_fraction=0.01))
    assert tiny.X_test is not None and len(tiny.X_test) == 1
    most = load_dataset(DataConfig(name="moons", n=4, test_fraction=0.95))
    assert most.X_test is not None and len(most.X_test) == 2 and most.n_train == 2


@pytest.mark.parametrize("name", ["circle", "digits"])
def test_standardisation_uses_train_statistics_only(name: str) -> None:
    cfg = DataConfig(name=name, seed=2, test_fraction=0.3)
    raw = load_dataset(cfg)
    std = load_dataset(replace(cfg, standardize=True))
    assert raw.X_test is not None and std.X_test is not None
    mean, spread = raw.X_train.mean(axis=0), raw.X_train.std(axis=0)
    spread = np.where(spread > 0, spread, 1.0)
    np.testing.assert_allclose(std.X_train, (raw.X_train - mean) / spread, atol=1e-12)
    np.testing.assert_allclose(std.X_test, (raw.X_test - mean) / spread, atol=1e-12)
    varying = raw.X_train.std(axis=0) > 0
    np.testing.assert_allclose(std.X_train.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(std.X_train.std(axis=0)[varying], 1.0)
    # Test statistics were not used: the test set is not exactly centred.
    assert np.abs(std.X_test.mean(axis=0)[varying]).max() > 1e-3
    np.testing.assert_array_equal(std.y_train, raw.y_train)


def test_standardisation_leaves_constant_features_finite() -> None:
    d = load_dataset(DataConfig(name="digits", standardize=True))
    assert np.isfinite(d.X_train).all()
    # Pixel (0, 0) is blank in every image: centred, and not divided by zero.
    np.testing.assert_array_equal(d.X_train[:, 0], 0.0)


def test_standardisation_ignores_rounding_noise_in_constant_columns(tmp_path: Path) -> None:
    path = tmp_path / "const.csv"
    path.write_text("a,b,label\n" + "".join(f"0.1,{i},{i % 2}\n" for i in range(7)))
    d = load_dataset(DataConfig(name="csv", path=str(path), standardize=True))
    np.testing.assert_allclose(d.X_train[:, 0], 0.0, atol=1e-12)


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (DataConfig(name="mnist"), "'xor', 'circle', 'moons', 'spiral', 'blobs', 'digits', 'csv'"),
        (DataConfig(name="circle", n=3), "data.n"),
        (DataConfig(name="moons", noise=-0.1), "data.noise"),
        (DataConfig(name="moons", noise=float("nan")), "data.noise"),
        (DataConfig(name="spiral", classes=1), "data.classes"),
        (DataConfig(name="blobs", n=5, classes=6), "data.classes"),
        (DataConfig(name="moons", test_fraction=1.0), "data.test_fraction"),
        (DataConfig(name="moons", test_fraction=-0.1), "data.test_fraction"),
        (DataConfig(name="moons", test_fraction=float("nan")), "data.test_fraction"),
        (DataConfig(name="circle", seed=-1), "data.seed"),
        (DataConfig(name="circle", seed=2**32), "data.seed"),
        (DataConfig(name="csv"), "data.path"),
    ],
)
def test_bad_config(cfg: DataConfig, message: str) -> None:
    with pytest.raises(BpmonError, match=message) as info:
        load_dataset(cfg)
    assert KEY_MESSAGE.match(str(info.value)), str(info.value)


def test_fixed_size_sets_ignore_n() -> None:
    assert len(load_dataset(DataConfig(name="digits", n=10)).X_train) == 1797
    assert len(load_dataset(DataConfig(name="xor", n=10, classes=5)).X_train) == 4


# --- CSV -------------------------------------------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "data.csv") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def load_csv(
    path: str,
    label: str | None = None,
    *,
    test_fraction: float = 0.0,
    standardize: bool = False,
    seed: int = 0,
) -> Dataset:
    cfg = DataConfig(
        name="csv",
        path=path,
        label=label,
        test_fraction=test_fraction,
        standardize=standardize,
        seed=seed,
    )
    return load_dataset(cfg)


def test_csv_with_string_labels(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "sepal length, sepal width,species\n"
        "5.1,3.5,setosa\n"
        "\n"
        "7.0,3.2,versicolor\n"
        "6.3,3.3,virginica\n"
        "4.9, 3.0 , setosa\n",
    )
    d = load_csv(path)
    assert d.name == "csv"
    assert d.task == "multiclass"
    assert d.classes == ("setosa", "versicolor", "virginica")
    assert d.feature_names == ("sepal length", "sepal width")
    np.testing.assert_array_equal(d.X_train, [[5.1, 3.5], [7.0, 3.2], [6.3, 3.3], [4.9, 3.0]])
    np.testing.assert_array_equal(d.y_train, [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]])


def test_csv_binary_with_named_label_column(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufeffok,a,b\nyes,1,2\nno,3,4\nyes,5,6\n")  # with a BOM
    d = load_csv(path, label="ok")
    assert d.task == "binary" and d.n_outputs == 1
    assert d.classes == ("no", "yes")
    assert d.feature_names == ("a", "b")
    np.testing.assert_array_equal(d.X_train, [[1, 2], [3, 4], [5, 6]])
    np.testing.assert_array_equal(d.y_train, [[1], [0], [1]])


def test_csv_numeric_labels_sort_as_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, "x,y\n1,10\n2,2\n3,-1\n4,2\n")
    d = load_csv(path)
    assert d.classes == ("-1", "2", "10")
    np.testing.assert_array_equal(d.y_train.argmax(axis=1), [2, 1, 0, 1])


def test_csv_quoted_multiline_cell_keeps_line_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, 'x,label\n1,"two\nlines"\n2,b\n,c\n')
    with pytest.raises(BpmonError, match=r"data\.csv:5: column 1 \('x'\): the value is missing"):
        load_dataset(DataConfig(name="csv", path=path, missing="error"))


def test_csv_split_and_standardise(tmp_path: Path) -> None:
    body = "".join(f"{i},{i * i},{'ab'[i % 2]}\n" for i in range(20))
    d = load_csv(write(tmp_path, "u,v,c\n" + body), test_fraction=0.25, standardize=True, seed=4)
    assert d.X_test is not None and len(d.X_test) == 5 and len(d.X_train) == 15
    np.testing.assert_allclose(d.X_train.mean(axis=0), 0.0, atol=1e-12)


@pytest.mark.parametrize(
    ("text", "line", "detail"),
    [
        ("", None, "empty"),
        ("\n\n", None, "empty"),
        ("a,b,label\n", 1, "no data rows"),
        ("\na,b,label\n\n", 2, "no data rows"),
        ("a,b,label\n1,2,x\n3,4\n", 3, "2 cells but the header has 3"),
        ("a,b,label\n1,2,x\n3,4,y,5\n", 3, "4 cells but the header has 3"),
        ("a,b,label\n1,,x\n,2,y\n", None, r"every row has a missing value \(the first on line 2"),
        ("a,b,label\n1,2,x\n3,nan,y\n", None, r"'label' has only one value \('x'\)"),
        ("a,b,label\n1,2,x\n3,inf,y\n", 3, r"column 2 \('b'\): 'inf' is not a finite"),
        ("a,b,label\n1,2,x\n3,-Infinity,y\n", 3, r"'-Infinity' is not a finite"),
        ("a,b,label\n1,1e999,x\n", 2, r"'1e999' is not a finite"),
        ("a,b,label\n1,2,x\n3,4,\n", None, r"'label' has only one value \('x'\)"),
        ("a,b,label\n1,2,x\n3,4,x\n", None, r"'label' has only one value \('x'\)"),
        ("a,b,label\n1,2,x\n3,4,y,\n", 3, "4 cells but the header has 3"),
        ("label\n1\n2\n", 1, "at least one feature column"),
        ("a,a,label\n1,2,x\n", 1, "'a' repeats"),
    ],
)
def test_csv_errors_name_file_and_line(
    tmp_path: Path, text: str, line: int | None, detail: str
) -> None:
    path = write(tmp_path, text, name="my_table.csv")
    where = r"my_table\.csv" + (f":{line}:" if line is not None else ":")
    with pytest.raises(BpmonError, match=where + ".*" + detail):
        load_csv(path)


def test_csv_unknown_label_lists_the_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "a,b,label\n1,2,x\n3,4,y\n")
    with pytest.raises(BpmonError) as info:
        load_csv(path, label="target")
    message = str(info.value)
    assert "data.csv" in message and "'target'" in message
    assert "'a', 'b', 'label'" in message


def test_csv_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "nowhere.csv")
    with pytest.raises(BpmonError, match=r"nowhere\.csv: no such file"):
        load_csv(path)


def test_csv_directory(tmp_path: Path) -> None:
    with pytest.raises(BpmonError, match="directory"):
        load_csv(str(tmp_path))


def test_csv_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(b"a,label\n1,x\n2,caf\xe9\n")
    with pytest.raises(BpmonError, match=r"latin\.csv:\d+: the file is not UTF-8"):
        load_csv(str(path))


@settings(max_examples=30, deadline=None)
@given(
    table=st.lists(
        st.tuples(
            st.floats(allow_nan=False, allow_infinity=False),
            st.floats(allow_nan=False, allow_infinity=False),
            st.sampled_from(["cat", "dog", "eel"]),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_csv_round_trips_numbers(
    tmp_path_factory: pytest.TempPathFactory, table: list[tuple[float, float, str]]
) -> None:
    labels = sorted({row[2] for row in table})
    path = tmp_path_factory.mktemp("rt") / "rt.csv"
    path.write_text("p,q,animal\n" + "".join(f"{a!r},{b!r},{c}\n" for a, b, c in table))
    if len(labels) < 2:
        with pytest.raises(BpmonError, match="only one value"):
            load_csv(str(path))
        return
    d = load_csv(str(path))
    np.testing.assert_array_equal(d.X_train, [[a, b] for a, b, _ in table])
    assert d.classes == tuple(labels)
    got = [d.classes[k] for k in labels_of(d, d.y_train)]
    assert got == [c for _, _, c in table]


# --- hardening: every bad input is one clear message, never a traceback or a wrong result ---


def write_table(directory: Path, header: str, rows: list[str], name: str = "t.csv") -> str:
    path = directory / name
    path.write_text(header + "\n" + "".join(row + "\n" for row in rows), encoding="utf-8")
    return str(path)


@settings(max_examples=40, deadline=None)
@given(
    k=st.integers(2, 3 * MAX_CLASSES),
    repeats=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
    label_first=st.booleans(),
)
@example(k=MAX_CLASSES, repeats=1, seed=0, label_first=False)
@example(k=MAX_CLASSES + 1, repeats=2, seed=0, label_first=True)
@example(k=1953, repeats=1, seed=1, label_first=False)
def test_label_column_of_measurements_is_refused(
    tmp_path_factory: pytest.TempPathFactory, k: int, repeats: int, seed: int, label_first: bool
) -> None:
    # k distinct real numbers in the label column, each on `repeats` rows, in random order: up
    # to MAX_CLASSES they are classes, past it the file is refused with the exact count.
    rng = np.random.default_rng(seed)
    values = [repr(float(v)) for v in rng.uniform(-1e4, 1e4, size=k)]
    assume(len(set(values)) == k)
    labels = [values[i] for i in rng.permutation(np.repeat(np.arange(k), repeats))]
    header = "price,a,b" if label_first else "a,b,price"
    rows = [f"{v},{i},{-i}" if label_first else f"{i},{-i},{v}" for i, v in enumerate(labels)]
    path = write_table(tmp_path_factory.mktemp("labels"), header, rows, name="houses.csv")
    classify = DataConfig(
        name="csv", path=path, label="price", task="classify", test_fraction=0, standardize=False
    )
    if k > 2:
        # Left to guess, k > 2 distinct fractions are a measurement: a regression target.
        guessed = load_dataset(replace(classify, task="auto"))
        assert guessed.task == "regression" and guessed.classes == ()
        assert (
            f"task guessed: regression (label 'price' has {k:,} distinct numbers)"
            in (guessed.notes[0])
        )
    if k > MAX_CLASSES:
        with pytest.raises(BpmonError) as info:
            load_dataset(classify)
        assert str(info.value) == (
            f"{path}: the label column 'price' has {k:,} distinct values; at most "
            f"{MAX_CLASSES} classes are allowed (a column of measurements is a regression "
            "target: --task regress; data.label chooses the label column)"
        )
        return
    d = load_dataset(classify)
    assert d.classes == tuple(sorted(values, key=float))
    assert d.n_outputs == (1 if k == 2 else k)
    assert [d.classes[c] for c in labels_of(d, d.y_train)] == labels


# Finite float64 values at the edges: the largest, tiny subnormals, signed zeros.
EDGES = (
    0.0,
    -0.0,
    1.0,
    -1.0,
    1e308,
    -1e308,
    1.7976931348623157e308,
    -1.7976931348623157e308,
    5e-324,
    -5e-324,
    2.2250738585072014e-308,
    1e-300,
)
FINITE = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(EDGES))


@st.composite
def feature_columns(draw: st.DrawFn, n: int) -> list[float]:
    """Any finite values, one value repeated, or two neighbouring floats (constant up to
    rounding)."""
    kind = draw(st.sampled_from(["any", "constant", "neighbours"]))
    if kind == "any":
        return draw(st.lists(FINITE, min_size=n, max_size=n))
    v = draw(FINITE)
    if kind == "constant":
        return [v] * n
    w = float(np.nextafter(v, -np.inf if v > 0 else np.inf))
    return draw(st.lists(st.sampled_from([v, w]), min_size=n, max_size=n))


@st.composite
def feature_tables(draw: st.DrawFn, min_rows: int = 2) -> np.ndarray:
    n = draw(st.integers(min_rows, 25))
    d = draw(st.integers(1, 4))
    return np.array([draw(feature_columns(n)) for _ in range(d)], dtype=np.float64).T


def write_features(directory: Path, X: np.ndarray) -> str:
    """X as a CSV file (repr round-trips every float) with labels a, b, a, b, ..."""
    header = ",".join(f"f{j}" for j in range(X.shape[1])) + ",label"
    rows = [",".join(repr(float(v)) for v in row) + f",{'ab'[i % 2]}" for i, row in enumerate(X)]
    return write_table(directory, header, rows)


@settings(max_examples=200, deadline=None)
@given(X=feature_tables())
def test_standardisation_of_any_finite_features_is_finite_and_standard(
    tmp_path_factory: pytest.TempPathFactory, X: np.ndarray
) -> None:
    path = write_features(tmp_path_factory.mktemp("std"), X)
    with no_numpy_warnings():
        d = load_csv(path, standardize=True)
    Z = d.X_train
    assert Z.shape == X.shape and np.isfinite(Z).all()
    eps = float(np.finfo(np.float64).eps)
    for col, z in zip(X.T, Z.T, strict=True):
        if (col == col[0]).all():
            event("constant column")
            np.testing.assert_array_equal(z, 0.0)
            continue
        # The spread in units of the largest magnitude (scaled first, so that it cannot overflow).
        spread = float(np.std(col / np.abs(col).max()))
        if spread > 2e-12:
            # Rounding in the scaled values is ~eps; dividing by the spread magnifies it.
            tol = 1e-9 + 100 * eps / spread
            event("varying column")
            assert abs(z.mean()) <= tol
            assert abs(z.std() - 1.0) <= tol
        elif spread < 0.5e-12:
            # Constant up to rounding: only centred, so what is left is rounding noise.
            event("constant up to rounding")
            assert np.abs(z).max() <= 1e-10


@settings(max_examples=100, deadline=None)
@given(
    X=feature_tables(min_rows=3),
    fraction=st.floats(0.01, 0.99),
    seed=st.integers(0, 2**32 - 1),
)
def test_standardised_test_split_is_finite_or_refused(
    tmp_path_factory: pytest.TempPathFactory, X: np.ndarray, fraction: float, seed: int
) -> None:
    path = write_features(tmp_path_factory.mktemp("split"), X)
    with no_numpy_warnings():
        try:
            d = load_csv(path, test_fraction=fraction, standardize=True, seed=seed)
        except BpmonError as e:
            assert re.match(rf"{re.escape(path)}: data\.standardize = true: feature 'f\d'", str(e))
            assert "expected test values on the scale of the training ones" in str(e)
            return
    assert d.X_test is not None
    assert np.isfinite(d.X_train).all() and np.isfinite(d.X_test).all()


def test_test_value_far_outside_the_training_values_is_refused(tmp_path: Path) -> None:
    # One huge value among tiny ones: standardised by the tiny ones' spread it would be inf.
    path = write_table(
        tmp_path, "a,label", [f"{v!r},{'xy'[i % 2]}" for i, v in enumerate([1e308] + [1e-300] * 9)]
    )
    outcomes = []
    for seed in range(20):
        try:
            load_csv(path, test_fraction=0.5, standardize=True, seed=seed)
            outcomes.append("ok")
        except BpmonError as e:
            assert "feature 'a' of a test point is 1e+308" in str(e)
            outcomes.append("refused")
    # The huge row lands in the test half for some seeds and in the training half for others.
    assert set(outcomes) == {"ok", "refused"}


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(("moons", "spiral", "blobs")),
    noise=st.one_of(
        st.floats(0.0, 1.7976931348623157e308),
        st.sampled_from([1e300, 1e307, 1e308, 1.7976931348623157e308]),
    ),
    fraction=st.sampled_from([0.0, 0.3]),
    standardize=st.booleans(),
)
def test_any_finite_noise_gives_finite_points_or_names_data_noise(
    name: str, noise: float, fraction: float, standardize: bool
) -> None:
    cfg = DataConfig(name=name, n=40, noise=noise, test_fraction=fraction, standardize=standardize)
    with no_numpy_warnings():
        try:
            d = load_dataset(cfg)
        except BpmonError as e:
            assert str(e).startswith(f"data.noise = {noise!r}: expected a noise level")
            return
    assert np.isfinite(d.X_train).all()
    assert d.X_test is None or np.isfinite(d.X_test).all()


@contextmanager
def traced() -> Iterator[Callable[[], int]]:
    """Trace allocations (NumPy's too); the yielded function gives the peak so far in bytes."""
    tracemalloc.start()
    try:
        yield lambda: tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(SYNTHETIC),
    n=st.integers(10**12, 10**18),
    classes=st.integers(2, MAX_CLASSES),
)
@example(name="moons", n=2_000_000_000_000, classes=2)
def test_sets_too_big_for_memory_are_refused_before_allocating(
    name: str, n: int, classes: int
) -> None:
    with traced() as peak, pytest.raises(BpmonError) as info:
        load_dataset(DataConfig(name=name, n=n, classes=classes))
    message = str(info.value)
    assert message.startswith(f"data.n = {n}") and "available" in message
    if name in ("spiral", "blobs"):
        assert f"data.classes = {classes}" in message
    # Refused from the estimate alone: nothing the size of the set was allocated.
    assert peak() < 1 << 20


@settings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(SYNTHETIC),
    n=st.integers(4, 20_000),
    classes=st.integers(2, 10),
    fraction=st.sampled_from([0.0, 0.2, 0.9]),
    standardize=st.booleans(),
)
def test_dataset_bytes_bounds_what_loading_takes(
    name: str, n: int, classes: int, fraction: float, standardize: bool
) -> None:
    cfg = DataConfig(
        name=name, n=n, classes=min(classes, n), test_fraction=fraction, standardize=standardize
    )
    outputs = cfg.classes if name in ("spiral", "blobs") else 1
    load_dataset(cfg)  # once untraced, so that one-time caches (imports) are not counted
    with traced() as peak:
        load_dataset(cfg)
        # Python's own objects (the generator, small index arrays) are a fixed few KiB.
        assert peak() <= dataset_bytes(n, 2, outputs) + (64 << 10)


@settings(max_examples=20, deadline=None)
@given(
    n_rows=st.integers(MIN_TRAIN_POINTS + 1, 2000),
    n_features=st.integers(1, 5),
    n_classes=st.integers(2, 12),
    fraction=st.sampled_from([0.0, 0.25]),
    standardize=st.booleans(),
)
def test_csv_memory_stays_within_its_estimates(
    tmp_path_factory: pytest.TempPathFactory,
    n_rows: int,
    n_features: int,
    n_classes: int,
    fraction: float,
    standardize: bool,
) -> None:
    # Short cells ("1,") are the worst case per byte of the file.
    rows = [",".join(["1"] * n_features + [str(i % n_classes)]) for i in range(n_rows)]
    header = ",".join(f"f{j}" for j in range(n_features)) + ",label"
    path = write_table(tmp_path_factory.mktemp("mem"), header, rows)
    size = Path(path).stat().st_size
    classes = min(n_rows, n_classes)
    outputs = 1 if classes == 2 else classes
    parsing = csvdata.parse_bytes(n_rows + 1, n_features + 1, size)
    bound = parsing + dataset_bytes(n_rows, n_features, outputs)
    load_csv(path, test_fraction=fraction, standardize=standardize)  # warm up, as above
    with traced() as peak:
        load_csv(path, test_fraction=fraction, standardize=standardize)
        # The file's read buffer and the csv module's row objects are a fixed few KiB.
        assert peak() <= bound + (64 << 10)


@settings(max_examples=40, deadline=None)
@given(
    n_rows=st.integers(2, 300),
    share=st.floats(0.0, 1.0, exclude_max=True),
    after_parse=st.booleans(),
)
def test_csv_too_big_for_memory_is_refused(
    tmp_path_factory: pytest.TempPathFactory, n_rows: int, share: float, after_parse: bool
) -> None:
    rows = [f"{i},{2 * i},{'xy'[i % 2]}" for i in range(n_rows)]
    if not after_parse:
        rows.append("oops,1,x,y")  # never reached: the parse's estimate alone is refused
    path = write_table(tmp_path_factory.mktemp("big"), "a,b,label", rows)
    size = Path(path).stat().st_size
    if after_parse:
        need = dataset_bytes(n_rows, 2, 1)
    else:
        # The rows the reader makes room for: the lines after the header, at most.
        need = csvdata.parse_bytes(len(rows) + 1, 3, size)
    available = int(share * need / memory.MAX_SHARE)  # so that MAX_SHARE * available < need
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(memory, "available_bytes", lambda: available)
        if after_parse:  # let the file through, to reach the check of the parsed table
            mp.setattr(csvdata, "parse_bytes", lambda rows, columns, file_bytes: 0)
        with traced() as peak, pytest.raises(BpmonError) as info:
            load_csv(path)
        if not after_parse:
            # Refused from the estimate: nothing the size of the cells was allocated.
            assert peak() < 64 * len(rows) + (1 << 20)
    message = str(info.value)
    assert message.startswith(f"data.path = {path!r} (") and "available" in message
    if after_parse:
        assert f"({n_rows:,} rows, 2 classes)" in message
    else:
        assert "lines of 3 columns)" in message


BAD_VALUES = st.one_of(
    st.tuples(
        st.just("name"),
        st.builds(DataConfig, name=st.text().filter(lambda t: t not in DATASETS)),
    ),
    st.tuples(
        st.just("seed"),
        st.builds(
            DataConfig,
            name=st.sampled_from(ALL_BUT_CSV),
            seed=st.one_of(st.integers(max_value=-1), st.integers(min_value=2**32)),
        ),
    ),
    st.tuples(
        st.just("test_fraction"),
        st.builds(
            DataConfig,
            name=st.sampled_from(ALL_BUT_CSV),
            test_fraction=st.one_of(
                st.floats(max_value=-1e-300),
                st.floats(min_value=1.0),
                st.just(float("nan")),
            ),
        ),
    ),
    st.tuples(
        st.just("n"),
        st.builds(DataConfig, name=st.sampled_from(SYNTHETIC), n=st.integers(max_value=3)),
    ),
    st.tuples(
        st.just("noise"),
        st.builds(
            DataConfig,
            name=st.sampled_from(SYNTHETIC),
            noise=st.one_of(st.floats(max_value=-1e-300), st.just(float("nan")), st.just(np.inf)),
        ),
    ),
    st.tuples(
        st.just("classes"),
        st.builds(
            DataConfig, name=st.sampled_from(("spiral", "blobs")), classes=st.integers(max_value=1)
        ),
    ),
    st.tuples(
        st.just("classes"),
        st.integers(4, 50).flatmap(
            lambda n: st.builds(
                DataConfig,
                name=st.sampled_from(("spiral", "blobs")),
                n=st.just(n),
                classes=st.integers(n + 1, n + 100),
            )
        ),
    ),
    st.tuples(st.just("path"), st.just(DataConfig(name="csv"))),
)


@settings(max_examples=150, deadline=None)
@given(case=BAD_VALUES)
def test_bad_values_name_key_value_and_expectation(case: tuple[str, DataConfig]) -> None:
    key, cfg = case
    with pytest.raises(BpmonError) as info:
        load_dataset(cfg)
    message = str(info.value)
    assert KEY_MESSAGE.match(message), message
    assert message.startswith(f"data.{key} = ")


def test_builders_are_exactly_the_config_names() -> None:
    assert set(data_module._BUILDERS) == set(DATASETS)
    assert DATASET_NAMES is DATASETS


@settings(max_examples=60, deadline=None)
@given(
    dropped=st.sets(st.sampled_from(DATASETS)),
    added=st.sets(st.text(min_size=1).filter(lambda t: t not in DATASETS), max_size=3),
)
def test_builders_drifting_from_the_config_names_is_caught(
    dropped: set[str], added: set[str]
) -> None:
    builders = [n for n in DATASETS if n not in dropped] + sorted(added)
    if not dropped and not added:
        data_module._check_builders(DATASETS, builders)
        return
    with pytest.raises(RuntimeError) as info:
        data_module._check_builders(DATASETS, builders)
    for name in dropped | added:
        assert repr(name) in str(info.value)


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(SYNTHETIC),
    n=st.integers(4, 60),
    fraction=st.floats(0.01, 0.99),
    seed=st.integers(0, 2**32 - 1),
)
@example(name="moons", n=4, fraction=0.99, seed=0)
def test_split_leaves_at_least_two_points_to_train(
    name: str, n: int, fraction: float, seed: int
) -> None:
    d = load_dataset(DataConfig(name=name, n=n, classes=2, seed=seed, test_fraction=fraction))
    assert d.X_test is not None
    assert d.n_train == len(d.X_train) == len(d.y_train) >= MIN_TRAIN_POINTS
    assert len(d.X_test) >= 1 and d.n_train + len(d.X_test) == n


@settings(max_examples=30, deadline=None)
@given(n_rows=st.integers(2, 8), fraction=st.floats(0.01, 0.99), seed=st.integers(0, 99))
@example(n_rows=2, fraction=0.5, seed=0)
def test_csv_too_small_to_split_is_refused(
    tmp_path_factory: pytest.TempPathFactory, n_rows: int, fraction: float, seed: int
) -> None:
    rows = [f"{i},{'xy'[i % 2]}" for i in range(n_rows)]
    path = write_table(tmp_path_factory.mktemp("small"), "a,label", rows)
    if n_rows <= MIN_TRAIN_POINTS:
        with pytest.raises(BpmonError) as info:
            load_csv(path, test_fraction=fraction, seed=seed)
        assert str(info.value).startswith(f"{path}: data.test_fraction = {fraction!r}: expected 0")
        assert f"at least {MIN_TRAIN_POINTS + 1}" in str(info.value)
        return
    d = load_csv(path, test_fraction=fraction, seed=seed)
    assert d.n_train >= MIN_TRAIN_POINTS and d.X_test is not None and len(d.X_test) >= 1


# --- noise: every 2-D set -----------------------------------------------------------------------

TWO_D = ("xor", "circle", "moons", "spiral", "blobs")


def clean_and_noisy(name: str, noise: float, seed: int) -> tuple[Dataset, Dataset]:
    cfg = DataConfig(name=name, n=300, classes=3, seed=seed, noise=0.0)
    return load_dataset(cfg), load_dataset(replace(cfg, noise=noise))


@settings(max_examples=30, deadline=None)
@given(name=st.sampled_from(TWO_D), seed=st.integers(0, 2**32 - 1))
def test_noise_zero_gives_the_clean_shape(name: str, seed: int) -> None:
    d = load_dataset(DataConfig(name=name, n=300, classes=3, seed=seed, noise=0.0))
    X = d.X_train
    labels = labels_of(d, d.y_train)
    if name == "xor":
        np.testing.assert_array_equal(X, [[0, 0], [0, 1], [1, 0], [1, 1]])
    elif name == "circle":
        # The story's points, and the label says exactly which are inside the circle.
        np.testing.assert_array_equal(X, np.random.RandomState(seed).randn(300, 2) * 2)
        np.testing.assert_array_equal(labels, (X[:, 0] ** 2 + X[:, 1] ** 2 < 2.25).astype(int))
    elif name == "moons":
        upper = X[labels == 0]
        lower = X[labels == 1] - [1.0, 0.5]
        np.testing.assert_allclose(np.hypot(upper[:, 0], upper[:, 1]), 1.0)
        np.testing.assert_allclose(np.hypot(lower[:, 0], lower[:, 1]), 1.0)
    elif name == "spiral":
        # On arm j the angle is 4 (j + r) exactly: the point's own radius gives it back.
        r = np.hypot(X[:, 0], X[:, 1])
        np.testing.assert_allclose(X[:, 0], r * np.sin(4 * (labels + r)), atol=1e-12)
        np.testing.assert_allclose(X[:, 1], r * np.cos(4 * (labels + r)), atol=1e-12)
    else:
        # Every point of a blob sits on its centre.
        for c in range(3):
            assert len(np.unique(X[labels == c], axis=0)) == 1


@settings(max_examples=30, deadline=None)
@given(
    name=st.sampled_from(TWO_D),
    noise=st.floats(0.05, 2.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_noise_moves_the_points_and_keeps_the_labels(name: str, noise: float, seed: int) -> None:
    clean, noisy = clean_and_noisy(name, noise, seed)
    np.testing.assert_array_equal(clean.y_train, noisy.y_train)
    moved = noisy.X_train - clean.X_train
    # Every point moves, but a spiral arm's first point: at radius 0 its angle does not matter.
    still = int(np.count_nonzero(np.all(moved == 0, axis=1)))
    assert still <= (3 if name == "spiral" else 0)
    if name != "spiral":  # spiral's noise is in the angle, not in the coordinates
        # The points move by gaussian noise of that standard deviation (xor: 8 numbers only).
        low, high = (0.2, 2.5) if name == "xor" else (0.8, 1.2)
        assert low * noise < float(np.sqrt(np.mean(moved**2))) < high * noise


@pytest.mark.parametrize("name", TWO_D)
def test_the_seed_decides_the_noise(name: str) -> None:
    cfg = DataConfig(name=name, n=100, seed=3, noise=0.3)
    a, b = load_dataset(cfg), load_dataset(cfg)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    assert not np.array_equal(a.X_train, load_dataset(replace(cfg, seed=4)).X_train)


@pytest.mark.parametrize("name", TWO_D)
def test_noise_left_out_is_the_sets_default(name: str) -> None:
    default = 0.1 if name in ("moons", "spiral", "blobs") else 0.0
    assert data_module.noise_of(DataConfig(name=name)) == default
    a = load_dataset(DataConfig(name=name, n=100, seed=2))
    b = load_dataset(DataConfig(name=name, n=100, seed=2, noise=default))
    np.testing.assert_array_equal(a.X_train, b.X_train)


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(TWO_D[1:]),
    n=st.integers(4, 300),
    fraction=st.floats(0.0, 0.99),
    noise=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_the_split_follows_the_fraction_with_any_noise(
    name: str, n: int, fraction: float, noise: float, seed: int
) -> None:
    d = load_dataset(
        DataConfig(name=name, n=n, classes=2, seed=seed, noise=noise, test_fraction=fraction)
    )
    if fraction == 0:
        assert d.X_test is None and len(d.X_train) == n
        return
    n_test = min(max(1, round(n * fraction)), n - MIN_TRAIN_POINTS)
    assert d.X_test is not None and len(d.X_test) == n_test
    assert len(d.X_train) == n - n_test
