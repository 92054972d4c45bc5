"""Real CSV files, as they ship inside packages on PyPI (``tests/data/SOURCES.md``), loaded with
the defaults: what was read, dropped, encoded and guessed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bpmon.config import DataConfig
from bpmon.data import Dataset, inspect_csv, load_dataset
from bpmon.errors import BpmonError

DATA = Path(__file__).resolve().parent / "data"


def load(name: str, **kw: object) -> Dataset:
    return load_dataset(DataConfig(name="csv", path=str(DATA / name), **kw))  # type: ignore[arg-type]


def rows(d: Dataset) -> int:
    return d.n_train + (0 if d.X_test is None else len(d.X_test))


def check_split(d: Dataset) -> None:
    """The default 20% test split; standardised features; every class in the training set."""
    assert d.X_test is not None and d.y_test is not None
    assert len(d.X_test) == round(rows(d) * 0.2)
    assert np.isfinite(d.X_train).all() and np.isfinite(d.X_test).all()
    varying = d.X_train.std(axis=0) > 1e-9
    np.testing.assert_allclose(d.X_train.mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(d.X_train.std(axis=0)[varying], 1.0)
    if d.task == "multiclass":
        assert (d.y_train.sum(axis=0) > 0).all()
    elif d.task == "binary":
        assert set(np.unique(d.y_train)) == {0.0, 1.0}


def test_iris_multiclass() -> None:
    d = load("iris.csv")
    # scikit-learn's first line (150,4,setosa,versicolor,virginica) holds text: a header.
    assert d.feature_names == ("150", "4", "setosa", "versicolor")
    assert (rows(d), d.n_inputs, d.dropped) == (150, 4, 0)
    assert d.task == "multiclass" and d.classes == ("0", "1", "2") and d.n_outputs == 3
    assert d.notes == (
        "task guessed: classification (label 'virginica' has 3 distinct integers); "
        "--task regress to override",
    )
    check_split(d)
    # Stratified: 10 of each species' 50 rows are held out.
    assert d.y_test is not None
    np.testing.assert_array_equal(d.y_test.sum(axis=0), [10, 10, 10])


def test_wine_first_line_is_not_a_header() -> None:
    # scikit-learn's wine file starts "178,13,class_0,class_1,class_2": five cells, and then
    # rows of fourteen. One clear error, naming the first row that disagrees.
    path = str(DATA / "wine_data.csv")
    with pytest.raises(BpmonError) as info:
        load("wine_data.csv")
    assert str(info.value) == f"{path}:2: the row has 14 cells but the header has 5"


def test_co2_regression_with_missing_values() -> None:
    d = load("co2.csv")
    assert (rows(d), d.n_inputs, d.dropped) == (2225, 1, 59)
    assert d.task == "regression" and d.classes == () and d.n_outputs == 1
    assert d.feature_names == ("date",)
    assert d.notes[:2] == (
        "dropped 59 rows with a missing value (first: line 8, column 'co2')",
        "task guessed: regression (label 'co2' has 581 distinct numbers); "
        "--task classify to override",
    )
    check_split(d)
    # The target in its own units: ppm around 340, standardised with the training split's.
    assert 330 < d.y_mean < 350 and 10 < d.y_std < 20
    np.testing.assert_allclose(d.y_train.mean(), 0.0, atol=1e-9)
    np.testing.assert_allclose(d.y_train.std(), 1.0)
    assert d.y_test is not None and d.y_test.shape == (445, 1)


def test_grunfeld_text_column_one_hot() -> None:
    d = load("grunfeld.csv", label="invest")
    firms = [n for n in d.feature_names if n.startswith("firm=")]
    assert len(firms) == 11 and "firm=General Motors" in firms
    assert d.feature_names == ("value", "capital", *firms, "year")
    assert (rows(d), d.n_inputs, d.dropped) == (220, 14, 0)
    assert d.task == "regression"
    assert "one-hot: 'firm' -> 11 columns" in d.notes
    # Each row is in exactly one firm (before standardisation: 0/1 columns).
    raw = load("grunfeld.csv", label="invest", standardize=False, test_fraction=0.0)
    block = raw.X_train[:, 2:13]
    assert set(np.unique(block)) == {0.0, 1.0}
    np.testing.assert_array_equal(block.sum(axis=1), 1.0)


def test_grunfeld_default_label_is_the_last_column() -> None:
    # The last column is the year: 20 distinct integers, which the guess takes for classes.
    info = inspect_csv(DataConfig(name="csv", path=str(DATA / "grunfeld.csv")))
    assert info.label == "year" and info.task == "multiclass" and len(info.classes) == 20
    assert info.n_outputs == 20 and info.n_rows == 220
    assert info.notes[0].startswith("task guessed: classification (label 'year' has 20 distinct")


def test_anes96_tab_separated_with_quoted_names() -> None:
    d = load("anes96.csv")
    assert d.feature_names == (
        "popul", "TVnews", "selfLR", "ClinLR", "DoleLR", "PID", "age", "educ", "income",
    )  # fmt: skip
    assert (rows(d), d.n_inputs, d.dropped) == (944, 9, 0)
    assert d.task == "binary" and d.classes == ("0", "1")
    assert d.notes[0] == "separator: tab (detected)"
    check_split(d)


def test_modechoice_semicolon_separated() -> None:
    d = load("modechoice.csv", label="choice")
    assert (rows(d), d.n_inputs, d.dropped) == (840, 8, 0)
    assert d.task == "binary"
    assert d.notes[0] == "separator: semicolon (detected)"
    check_split(d)


def test_statecrime_identifier_column_is_refused_then_left_out() -> None:
    path = str(DATA / "statecrime.csv")
    with pytest.raises(BpmonError) as info:
        load("statecrime.csv")
    message = str(info.value)
    assert message.startswith(f"{path}: column 'state' holds text with 51 distinct values")
    assert "--features" in message
    features = ("violent", "murder", "hs_grad", "poverty", "single", "white")
    d = load("statecrime.csv", features=features)
    assert (rows(d), d.n_inputs, d.task) == (51, 6, "regression")
    assert d.feature_names == features


@pytest.mark.parametrize(
    "name", ["iris.csv", "co2.csv", "grunfeld.csv", "anes96.csv", "modechoice.csv"]
)
def test_inspect_agrees_with_load(name: str) -> None:
    cfg = DataConfig(name="csv", path=str(DATA / name))
    info, d = inspect_csv(cfg), load_dataset(cfg)
    assert (info.task, info.classes, info.feature_names) == (d.task, d.classes, d.feature_names)
    assert (info.n_rows, info.dropped, info.n_outputs) == (rows(d), d.dropped, d.n_outputs)
    assert set(info.notes) <= set(d.notes)
