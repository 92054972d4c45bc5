"""Numbers written the local way (issue 15, item 9), on generated files: decimal commas in
semicolon and tab files (``1,5``, ``1.234,5``), thousands separators (``"9,417.15"`` quoted in
a comma file, ``1,234,567``); each is read as the number it stands for, the ``data:`` note
names the columns, and such a column is never one-hot encoded. And text from the file (column
names, class labels) reaches the screen as printable text, never as terminal controls.

Before this, ``1,5`` and ``"9,417.15"`` were text: one-hot encoded, or refused as "an identifier
or free text".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpmon.config import DataConfig
from bpmon.data.csvdata import DECIMAL_COMMA, THOUSANDS, read_csv

SETTINGS = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def load(path: Path, **kw: Any) -> Any:
    return read_csv(DataConfig(name="csv", path=str(path), test_fraction=0.0, **kw))


def written(value: float, digits: int, style: str) -> str:
    """``value`` with ``digits`` decimals in ``style``; the plain text is ``f"{value:.{d}f}"``."""
    if style == "decimal comma":
        return f"{value:.{digits}f}".replace(".", ",")
    grouped = f"{value:,.{digits}f}"  # 9,417.15
    if style == "dots and a decimal comma":
        return grouped.translate(str.maketrans(",.", ".,"))  # 9.417,15
    return '"' + grouped + '"'  # thousands, quoted in a comma file


STYLES = {
    "decimal comma": (";", "\t"),
    "dots and a decimal comma": (";", "\t"),
    "thousands": (",",),
}


@st.composite
def files(draw: st.DrawFn) -> dict[str, Any]:
    style = draw(st.sampled_from(sorted(STYLES)))
    sep = draw(st.sampled_from(STYLES[style]))
    digits = draw(st.integers(1 if style != "thousands" else 0, 4))
    n = draw(st.integers(4, 40))
    values = draw(
        st.lists(
            st.floats(-1e7, 1e7, allow_nan=False, allow_infinity=False), min_size=n, max_size=n
        )
    )
    # At least one cell written the local way: a fraction, or thousands to group.
    values[0] = 12_345.678 if style != "decimal comma" else 1.5
    plain = [float(f"{v:.{digits}f}") for v in values]
    labels = [i % 2 for i in range(n)]
    lines = [sep.join(["amount", "other", "label"])]
    for i, v in enumerate(values):
        lines.append(sep.join([written(v, digits, style), str(i % 3), str(labels[i])]))
    return {"text": "\n".join(lines) + "\n", "plain": plain, "style": style}


@SETTINGS
@given(case=files())
def test_local_numbers_are_read_as_numbers(tmp_path: Path, case: dict[str, Any]) -> None:
    path = tmp_path / "local.csv"
    path.write_text(case["text"], encoding="utf-8")
    table = load(path)
    assert table.info.feature_names == ("amount", "other")  # no amount=... one-hot columns
    np.testing.assert_array_equal(table.X[:, 0], case["plain"])
    kind = THOUSANDS if case["style"] == "thousands" else DECIMAL_COMMA
    notes = [note for note in table.info.notes if note.startswith(kind)]
    assert len(notes) == 1 and "'amount'" in notes[0], table.info.notes


@pytest.mark.parametrize(
    ("text", "column", "kind"),
    [
        ("a;b;y\n1,5;2;0\n2,5;3;1\n3;4;0\n0,25;5;1\n", [1.5, 2.5, 3.0, 0.25], DECIMAL_COMMA),
        (
            "a\tb\ty\n1,5\t2\t0\n-2,5\t3\t1\n3\t4\t0\n,5\t5\t1\n",
            [1.5, -2.5, 3.0, 0.5],
            DECIMAL_COMMA,
        ),
        (
            'a,b,y\n"9,417.15",2,0\n"1,234",3,1\n12,4,0\n5.5,5,1\n',
            [9417.15, 1234, 12, 5.5],
            THOUSANDS,
        ),
        ("a;b;y\n1,234,567;2;0\n1;3;1\n2;4;0\n3;5;1\n", [1234567, 1, 2, 3], THOUSANDS),
    ],
    ids=["semicolon", "tab", "comma, quoted", "semicolon, several commas"],
)
def test_the_issues_cases(tmp_path: Path, text: str, column: list[float], kind: str) -> None:
    path = tmp_path / "case.csv"
    path.write_text(text, encoding="utf-8")
    table = load(path)
    np.testing.assert_array_equal(table.X[:, 0], column)
    assert any(note.startswith(kind) and "'a'" in note for note in table.info.notes)
    assert table.info.feature_names == ("a", "b")


def test_a_decimal_comma_column_with_many_values_is_not_refused_as_free_text(
    tmp_path: Path,
) -> None:
    # Before: "holds text with 100 distinct values ...: an identifier or free text".
    rows = "".join(f"{i},{i % 7};{i % 3};{i % 2}\n" for i in range(100))
    path = tmp_path / "many.csv"
    path.write_text("a;b;y\n" + rows, encoding="utf-8")
    table = load(path)
    assert table.X.shape == (100, 2)
    assert table.X[13, 0] == pytest.approx(13.6)


def test_a_row_of_decimal_commas_is_data_not_a_header(tmp_path: Path) -> None:
    path = tmp_path / "noheader.csv"
    path.write_text("1,5;2;0\n2,5;3;1\n3,5;4;0\n", encoding="utf-8")
    table = load(path)
    assert table.info.header is False and table.X.shape == (3, 2)


def test_text_from_the_file_is_printable(tmp_path: Path) -> None:
    title = "\x1b]2;PWNED\x07"
    path = tmp_path / "labels.csv"
    rows = "".join(f"{i},{i % 4},{'cat' + title if i % 2 else 'dog'}\n" for i in range(20))
    path.write_text(f"x{title},w\x1b[2J,label\n" + rows, encoding="utf-8")
    table = load(path)
    shown = [*table.info.classes, *table.info.feature_names, *table.info.notes]
    assert not any(ch in text for text in shown for ch in "\x1b\x07")
    assert "cat\\x1b]2;PWNED\\x07" in table.info.classes
    assert table.info.feature_names == ("x\\x1b]2;PWNED\\x07", "w\\x1b[2J")
