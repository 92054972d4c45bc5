"""Property tests of the one validation of a run's configuration, from every way in.

Every field of every table in :data:`bpmon.config.TABLES` is tested from its own :class:`Rule`
(the list of keys is read from the dataclasses, never written out here): values the rule refuses
(NaN, infinities, huge, negative, out of range, wrong types, tables, deeply nested arrays) must
be refused by the preset loader with one message naming the file, the ``table.key`` and the
rule's own words; values drawn from the rule's range must load. Then whole random documents go
through the real command, in this process and in subprocesses, and the command-line flags get
the same treatment: exit status 0, 1 or 2 only, never a traceback, and a status of 2 comes with
exactly one line on stderr.

How many generated cases each test runs is set by its ``settings`` (``max_examples``) below.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from bpmon import cli
from bpmon.config import MAX_DEPTH, MIN_DEPTH, TABLES, Rule, rule
from bpmon.errors import BpmonError
from bpmon.presets import load_preset

# Every configuration key, read from the dataclasses: a field added tomorrow is tested too.
KEYS = [f"{table}.{f.name}" for table, cls in TABLES.items() for f in fields(cls)]
CHOICE_WORDS = sorted({c for key in KEYS for c in rule(key).choices})

# Cases per key for the per-field properties; there are len(KEYS) keys (38 today).
PER_KEY = 40
# Whole documents through bpmon.cli.main in this process, and through ``python -m bpmon``.
IN_PROCESS_DOCUMENTS = 300
SUBPROCESS_DOCUMENTS = 40
# Generated values per flag for the command-line properties.
PER_FLAG = 100

# Deeper than tomllib can parse by recursion (it gives up below 500 levels).
DEEP = 600


def cases(n: int) -> settings:
    """``n`` generated cases, without hypothesis's 200 ms deadline (a case that trains takes
    longer on a loaded machine)."""
    return settings(
        max_examples=n,
        deadline=None,
        # Filtered and recursive strategies draw slowly on a loaded machine; that is no fault.
        suppress_health_check=[HealthCheck.too_slow],
    )


# --- writing TOML by hand -----------------------------------------------------------------------


@dataclass(frozen=True)
class Deep:
    """``depth`` nested arrays around ``inner``: written as text, since building the lists and
    repr-ing them would hit Python's recursion limit before TOML's."""

    depth: int
    inner: str = ""


@dataclass(frozen=True)
class Raw:
    """TOML text written as it is: an integer of more digits than Python's str(int) will give."""

    text: str


def toml_string(text: str) -> str:
    """A TOML basic string: quote, backslash and every control character escaped."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_string(key)


def toml_value(value: object) -> str:
    if isinstance(value, Deep):
        return "[" * value.depth + value.inner + "]" * value.depth
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)  # "1e+308", "-0.0", "5e-324": all TOML floats
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items())
        return "{" + items + "}"
    raise TypeError(value)


def toml_document(doc: dict[str, Any]) -> str:
    """Top-level values first, then each table under its header (a table must come last)."""
    lines = [f"{toml_key(k)} = {toml_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for name, table in doc.items():
        if isinstance(table, dict):
            lines.append(f"[{toml_key(name)}]")
            lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def test_the_toml_writer_round_trips() -> None:
    import tomllib

    doc = {
        "description": 'a "quoted"\\ \x00\x1f\x7f é',
        "data": {"n": 10**30, "noise": -0.0, "x": [1, [2.5, "s"]], "t": {"a b": True}},
        "model": {"init_std": math.inf},
    }
    assert tomllib.loads(toml_document(doc)) == doc
    assert math.isnan(tomllib.loads(toml_document({"t": {"x": math.nan}}))["t"]["x"])
    assert tomllib.loads("x = " + toml_value(Deep(3, "1"))) == {"x": [[[1]]]}


# --- values a rule accepts and refuses ------------------------------------------------------------

FINITE = st.floats(allow_nan=False, allow_infinity=False)
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
HUGE_INTS = st.sampled_from([10**15, 2**53 + 1, 2**63, 10**30, 10**300])
SCALARS = st.one_of(
    st.integers(-1000, 1000),
    HUGE_INTS,
    HUGE_INTS.map(lambda i: -i),
    st.floats(),
    st.booleans(),
    st.text(max_size=12),
    st.sampled_from(CHOICE_WORDS),
)
# Inline tables and arrays of anything, a few levels deep, and arrays deeper than TOML can go.
NESTED: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
DEEP_ARRAYS = st.builds(Deep, st.integers(50, 300), st.sampled_from(["", "1", '"x"', "1.5"]))
TOO_DEEP_ARRAYS = st.builds(Deep, st.integers(DEEP, 3000), st.sampled_from(["", "1"]))


def below(r: Rule) -> st.SearchStrategy[float]:
    """Numbers under the rule's lower bound, and the bound itself when it is open."""
    assert r.low is not None
    low = r.low
    options: list[st.SearchStrategy[float]] = [
        st.integers(-(10**300), math.ceil(low) - 1),
        st.just(-(10**30)),
    ]
    if r.kind == "float":
        options += [
            st.floats(max_value=low, exclude_max=True, allow_nan=False, allow_infinity=False),
            st.just(-1e308),
        ]
    if r.low_open:
        options.append(st.just(low))
    # The filter only drops -0.0 at an inclusive bound of 0, which hypothesis counts as below it.
    return st.one_of(options).filter(lambda x: x < low or (r.low_open and x == low))


def above(r: Rule) -> st.SearchStrategy[float]:
    """Numbers over the rule's upper bound, and the bound itself when it is open."""
    assert r.high is not None
    high = r.high
    options: list[st.SearchStrategy[float]] = [
        st.integers(math.floor(high) + 1, 10**300),
        st.just(10**30),
    ]
    if r.kind == "float":
        options += [
            st.floats(min_value=high, exclude_min=True, allow_nan=False, allow_infinity=False),
            st.just(1e308),
        ]
    if r.high_open:
        options.append(st.just(high))
    return st.one_of(options).filter(lambda x: x > high or (r.high_open and x == high))


def bad_values(r: Rule) -> st.SearchStrategy[Any]:
    """Values ``r`` must refuse, by construction (not by asking the rule)."""
    wrong: list[st.SearchStrategy[Any]] = [
        DEEP_ARRAYS,
        st.dictionaries(st.text(max_size=6), SCALARS, max_size=3),  # an inline table
    ]
    if r.kind not in ("widths", "choices"):  # a list of choice words may be a good "choices"
        wrong.append(st.lists(NESTED, max_size=4))
    if r.kind not in ("str", "path", "choice", "choices"):
        wrong.append(st.text(max_size=12))
    if r.kind != "bool":
        wrong.append(st.booleans())
    if r.kind not in ("int", "float"):
        wrong += [st.integers(), st.floats()]
    if r.kind in ("int", "float"):
        wrong.append(NON_FINITE)
        if r.low is not None:
            wrong.append(below(r))
        if r.high is not None:
            wrong.append(above(r))
    if r.kind == "int":
        wrong.append(st.floats())  # even 2.0: TOML says float, the field says integer
    if r.kind in ("choice", "choices"):
        wrong.append(st.text(max_size=12).filter(lambda s: s not in r.choices))
    if r.kind == "choices":
        good = st.lists(st.sampled_from(r.choices), max_size=5)
        not_a_choice = st.one_of(
            st.text(max_size=8).filter(lambda s: s not in r.choices), st.integers(), NESTED
        ).filter(lambda v: not (isinstance(v, str) and v in r.choices))
        wrong += [
            st.just([]),
            st.lists(st.sampled_from(r.choices), min_size=MAX_DEPTH + 1, max_size=MAX_DEPTH + 5),
            st.tuples(good, not_a_choice, good).map(lambda t: [*t[0], t[1], *t[2]]),
        ]
    if r.kind in ("str", "path"):
        wrong.append(st.text(max_size=8).map(lambda s: s + "\x00"))  # no C API takes it
    if r.kind == "names":
        wrong += [
            st.just([]),
            st.lists(st.just("a"), min_size=2, max_size=3),  # a name twice
            st.lists(st.just(""), min_size=1, max_size=2),
            st.lists(st.integers(), min_size=1, max_size=3),
        ]
    if r.kind == "widths":
        width = st.integers(1, 64)
        bad_width = st.one_of(
            st.integers(max_value=0),
            st.floats(),
            st.booleans(),
            st.text(max_size=4),
            st.lists(width, max_size=2),
        )
        wrong += [
            st.just([]),
            st.lists(width, min_size=MAX_DEPTH + 1, max_size=MAX_DEPTH + 20),
            st.tuples(st.lists(width, max_size=5), bad_width, st.lists(width, max_size=5)).map(
                lambda t: [*t[0], t[1], *t[2]]
            ),
        ]
    return st.one_of(wrong)


def in_range(r: Rule, huge: bool = True) -> st.SearchStrategy[Any]:
    """Numbers the rule accepts. ``huge=False`` keeps sizes small or astronomically large (which
    the memory estimate refuses at once), never the millions that would take minutes to train."""
    if r.kind == "int":
        low = int(r.low) if r.low is not None else -(10**6)
        high = int(r.high) if r.high is not None else None
        if huge:
            return st.integers(low, high if high is not None else low + 10**30)
        small = st.integers(low, min(low + 64, high) if high is not None else low + 64)
        return small | (st.just(high) if high is not None else st.integers(10**15, 10**30))
    floats = st.floats(
        min_value=r.low,
        max_value=r.high,
        exclude_min=r.low_open,
        exclude_max=r.high_open,
        allow_nan=False,
        allow_infinity=False,
    )
    lo = math.floor(r.low) + 1 if r.low is not None else -(10**6)
    hi = math.ceil(r.high) - 1 if r.high is not None else 10**300
    ints = st.integers(lo, hi) if lo <= hi else st.nothing()
    return floats | ints


def good_values(r: Rule, huge: bool = True) -> st.SearchStrategy[Any]:
    if r.kind == "choice":
        return st.sampled_from(r.choices)
    if r.kind == "choices":  # one name, or one per hidden layer (companions sets the depth)
        return st.sampled_from(r.choices) | st.lists(
            st.sampled_from(r.choices), min_size=MIN_DEPTH, max_size=MAX_DEPTH
        )
    if r.kind == "bool":
        return st.booleans()
    if r.kind in ("str", "path"):
        return st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20)
    if r.kind == "widths":
        width = st.integers(1, 10**30) if huge else st.integers(1, 64)
        return st.lists(width, min_size=MIN_DEPTH, max_size=MAX_DEPTH)
    if r.kind == "names":
        name = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1)
        return st.lists(name, min_size=1, max_size=6, unique=True)
    return in_range(r, huge)


def companions(key: str, value: object) -> dict[str, dict[str, Any]]:
    """Other keys a good value needs so that the rules tying fields together hold too."""
    if key == "data.name" and value == "csv":
        return {"data": {"path": "points.csv"}}
    if key == "model.loss":
        return {
            "model": {
                "output": {"bce": "sigmoid", "cross_entropy": "softmax"}.get(str(value), "sigmoid")
            }
        }
    if key == "model.activation" and isinstance(value, list):
        return {"model": {"hidden": [3] * len(value)}}
    if key == "thresholds.vanish_abs":
        return {"thresholds": {"explode_abs": math.nextafter(math.inf, 0)}}
    if key == "thresholds.explode_abs":
        return {"thresholds": {"vanish_abs": 0.0}}
    return {}


def write_preset(folder: Path, doc: dict[str, Any]) -> Path:
    path = folder / "generated.toml"
    path.write_text(toml_document(doc), encoding="utf-8")
    return path


def assert_names_the_key(exc: BpmonError, path: Path, key: str) -> None:
    message = str(exc)
    assert "\n" not in message, message
    assert str(path) in message, message
    assert key in message, message
    assert rule(key).expected() in message, message


# --- each field from the preset loader ----------------------------------------------------------


@pytest.mark.parametrize("key", KEYS)
@cases(PER_KEY)
@given(data=st.data())
def test_a_bad_value_names_file_key_and_rule(
    key: str, data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    table, name = key.split(".")
    value = data.draw(bad_values(rule(key)), label="value")
    path = write_preset(
        tmp_path_factory.mktemp("bad"), {"description": "bad", table: {name: value}}
    )
    with pytest.raises(BpmonError) as caught:
        load_preset(str(path))
    assert_names_the_key(caught.value, path, key)


@pytest.mark.parametrize("key", KEYS)
@cases(PER_KEY)
@given(data=st.data())
def test_a_good_value_loads(
    key: str, data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    table, name = key.split(".")
    r = rule(key)
    value = data.draw(good_values(r), label="value")
    # vanish_abs must stay below explode_abs, whose largest value is the largest float.
    assume(key != "thresholds.vanish_abs" or float(value) < sys.float_info.max)
    doc: dict[str, Any] = {"description": "good", table: {name: value}}
    for other, extra in companions(key, value).items():
        doc.setdefault(other, {}).update(extra)
    path = write_preset(tmp_path_factory.mktemp("good"), doc)
    loaded = getattr(getattr(load_preset(str(path)).config, table), name)
    if r.kind == "float":
        assert loaded == float(value) and type(loaded) is float
    elif r.kind in ("widths", "names") or isinstance(value, list):
        assert loaded == tuple(value)
    elif r.kind != "path":  # a relative path is made relative to the preset's folder
        assert loaded == value


# Values past what the parsers take: an integer beyond the floats (float() raises OverflowError)
# and one of more digits than int() reads (tomllib raises a plain ValueError for it).
ASTRONOMICAL = 10**400
TOO_MANY_DIGITS = Raw("1" + "0" * 5000)


@pytest.mark.parametrize("key", KEYS)
def test_arrays_nested_too_deeply_for_toml_name_file_and_key(key: str, tmp_path: Path) -> None:
    # tomllib parses arrays by recursion and gives up between 400 and 500 levels (RecursionError);
    # no field takes nested arrays, so the message can say which key, like any other bad value.
    table, name = key.split(".")
    path = write_preset(tmp_path, {table: {name: Deep(DEEP, "1")}})
    with pytest.raises(BpmonError) as caught:
        load_preset(str(path))
    assert_names_the_key(caught.value, path, key)


@pytest.mark.parametrize("key", [k for k in KEYS if rule(k).kind in ("int", "float")])
@pytest.mark.parametrize("sign", [1, -1])
def test_an_integer_beyond_the_floats(key: str, sign: int, tmp_path: Path) -> None:
    # An integer field without an upper bound takes 10**400 (the memory estimate refuses it when
    # a run is built); every other numeric field must refuse it naming the key, not let
    # OverflowError through as a traceback.
    table, name = key.split(".")
    r = rule(key)
    value = sign * ASTRONOMICAL
    fits = (
        r.kind == "int"
        and (r.low is None or value >= r.low)
        and (r.high is None or value <= r.high)
    )
    path = write_preset(tmp_path, {table: {name: value}})
    if fits:
        assert getattr(getattr(load_preset(str(path)).config, table), name) == value
        return
    with pytest.raises(BpmonError) as caught:
        load_preset(str(path))
    assert_names_the_key(caught.value, path, key)


def test_an_integer_of_five_thousand_digits_names_the_file(tmp_path: Path) -> None:
    path = write_preset(tmp_path, {"train": {"seed": TOO_MANY_DIGITS}})
    with pytest.raises(BpmonError) as caught:
        load_preset(str(path))
    message = str(caught.value)
    assert "\n" not in message and str(path) in message, message


# --- whole random documents through the command -------------------------------------------------

EXTREMES = st.sampled_from([ASTRONOMICAL, -ASTRONOMICAL, TOO_MANY_DIGITS])

TABLE_NAMES = st.sampled_from([*TABLES, "description", "name"]) | st.text(max_size=8)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    """A random preset. Half are wild (known and unknown tables and keys, values good, bad and
    strange); half are tame (known keys, values in range) so that many load and train, and the
    paths past loading (data, memory estimate, network, training, report) are fuzzed too.
    Sizes stay small or astronomically large, so that a document that loads trains at once."""
    tame = draw(st.booleans())
    doc: dict[str, Any] = {}
    names = st.sampled_from(list(TABLES)) if tame else TABLE_NAMES
    for name in draw(st.lists(names, max_size=5, unique=True)):
        cls = TABLES.get(name)
        if cls is None:
            doc[name] = draw(NESTED | st.just({}) | st.text(max_size=20))
            continue
        keys = [f.name for f in fields(cls)]
        table: dict[str, Any] = {}
        known = st.sampled_from(keys)
        for key in draw(st.lists(known if tame else known | st.text(max_size=8), max_size=6)):
            r = rule(f"{name}.{key}") if key in keys else None
            options = [SCALARS, NESTED, DEEP_ARRAYS, TOO_DEEP_ARRAYS, EXTREMES]
            if r is not None:
                good = good_values(r, huge=False)
                options = [good] if tame else [good] * 4 + [bad_values(r), *options]
            table[key] = draw(st.one_of(options))
        doc[name] = table
    return doc


def check_outcome(code: int, err: str) -> None:
    if currently_in_test_context():
        event(f"exit {code}")  # pytest --hypothesis-show-statistics shows how the cases ended
    assert code in (0, 1, 2), (code, err)
    assert "Traceback" not in err, err
    if code == 2:
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("bpmon: "), err


def run_in_process(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


@cases(IN_PROCESS_DOCUMENTS)
@given(doc=documents())
def test_random_presets_in_process(
    doc: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = write_preset(tmp_path_factory.mktemp("doc"), doc)
    code, _, err = run_in_process(["--preset", str(path), "--headless", "--json", "--epochs", "1"])
    check_outcome(code, err)


EPOCH = ["--epochs", "1"]


@cases(SUBPROCESS_DOCUMENTS)
@given(doc=documents())
def test_random_presets_through_the_command(
    doc: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("cmd")
    path = write_preset(folder, doc)
    proc = subprocess.run(
        [sys.executable, "-m", "bpmon", "--preset", str(path), "--headless", "--json", *EPOCH],
        cwd=folder,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    check_outcome(proc.returncode, proc.stderr)


# --- command-line flags -------------------------------------------------------------------------

# Each flag with a type, and the rule its value is checked by: the config's own rule where the
# flag sets one field, the CLI's where it shapes the network.
FLAG_RULES: dict[str, Rule] = {
    "--lr": rule("train.lr"),
    "--seed": rule("train.seed"),
    "--epochs": rule("train.epochs"),
    "--depth": Rule("int", low=MIN_DEPTH, high=MAX_DEPTH),
    "--width": Rule("int", low=1),
    "--every": Rule("int", low=1),
    "--weight-decay": rule("train.weight_decay"),
    "--dropout": rule("model.dropout"),
    "--noise": rule("data.noise"),
    "--test-fraction": rule("data.test_fraction"),
}


def bad_flag(argv: list[str], flag: str) -> str:
    """The one line that refusing ``argv`` printed; it must name ``flag``."""
    code, _, err = run_in_process(argv)
    assert code == 2, err
    check_outcome(code, err)
    line = err.strip()
    assert flag in line, line
    return line


def test_every_typed_flag_is_covered() -> None:
    typed = {
        option
        for action in cli._parser()._actions
        if action.type is not None
        for option in action.option_strings
    }
    # --features takes a comma-separated list checked by data.features' rule (its misuse is
    # tested in tests/test_csv_cli.py), --speed "full" or a number (tests/test_playground.py);
    # every other typed flag is a number.
    assert typed - {"--features", "--speed"} == set(FLAG_RULES)


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--lr", "nan"], "--lr"),
        (["--lr", "inf"], "--lr"),
        (["--lr", "-1"], "--lr"),
        (["--lr", "1e200"], "--lr"),
        (["--lr", "0"], "--lr"),
        (["--seed", "-1"], "--seed"),
        (["--seed", str(2**32)], "--seed"),
        (["--seed", "1.5"], "--seed"),
        (["--epochs", "0"], "--epochs"),
        (["--epochs", "1e3"], "--epochs"),
        (["--depth", "13"], "--depth"),
        (["--depth", "0"], "--depth"),
        (["--width", "0"], "--width"),
        (["--every", "0"], "--every"),
        (["--every", "x"], "--every"),
        (["--weight-decay", "-0.1"], "--weight-decay"),
        (["--dropout", "1"], "--dropout"),
        (["--noise", "nan"], "--noise"),
        (["--test-fraction", "1.0"], "--test-fraction"),
    ],
)
def test_bad_flag_values(args: list[str], flag: str) -> None:
    line = bad_flag(["--preset", "xor", "--headless", *args], flag)
    assert FLAG_RULES[flag].expected() in line
    assert "invalid" not in line  # argparse's "invalid <type> value", which names a function


def test_a_network_too_big_for_memory_names_the_flags() -> None:
    args = ["--preset", "xor", "--headless", "--width", "100000", "--depth", "12"]
    line = bad_flag(args, "--width 100000")
    assert "--depth 12" in line
    assert re.search(r"needs about [\d.]+ \w+, but only [\d.]+ \w+ of memory", line), line


def flag_text(value: object) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def bad_flag_texts(r: Rule) -> st.SearchStrategy[str]:
    """Texts a numeric flag must refuse: out of range, not finite, not a number at all."""
    numbers: list[st.SearchStrategy[Any]] = [NON_FINITE]
    if r.low is not None:
        numbers.append(below(r))
    if r.high is not None:
        numbers.append(above(r))
    if r.kind == "int":
        numbers.append(FINITE.filter(lambda x: not x.is_integer()))

    def not_a_number(text: str) -> bool:
        try:
            float(text)
        except ValueError:
            return True
        return False

    return st.one_of(
        st.one_of(numbers).map(flag_text),
        st.sampled_from(["nan", "NaN", "-inf", "Infinity", "1e999", "", " ", "0x10", "1_0_"]),
        st.text(max_size=20).filter(not_a_number),
        st.just("9" * 5000),  # past Python's limit for int(str)
    ).filter(lambda t: not _accepted(r, t))


def _accepted(r: Rule, text: str) -> bool:
    # The few texts Python's int() and float() read that the lists above cannot rule out
    # ("1_0" is 10, " 5 " is 5): drop them rather than assert on them.
    try:
        value = int(text) if r.kind == "int" else float(text)
    except (ValueError, OverflowError):
        return False
    return (
        math.isfinite(value)
        and (r.low is None or value >= r.low)
        and (r.high is None or value <= r.high)
        and not (r.low_open and value == r.low)
        and not (r.high_open and value == r.high)
    )


@pytest.mark.parametrize("flag", sorted(FLAG_RULES))
@cases(PER_FLAG)
@given(data=st.data())
def test_generated_bad_flag_values(flag: str, data: st.DataObject) -> None:
    r = FLAG_RULES[flag]
    text = data.draw(bad_flag_texts(r), label="text")
    # "--flag=TEXT": a text starting with "-" is the flag's value, not another option.
    line = bad_flag(["--headless", f"{flag}={text}"], flag)
    assert r.expected() in line, line
    assert len(line) < 300, line  # a pasted megabyte is echoed cut short


@pytest.mark.parametrize("flag", sorted(FLAG_RULES))
@cases(PER_FLAG)
@given(data=st.data())
def test_generated_good_flag_values_parse(flag: str, data: st.DataObject) -> None:
    r = FLAG_RULES[flag]
    value = data.draw(in_range(r), label="value")
    args = cli._parser().parse_args([f"{flag}={flag_text(value)}"])
    parsed = getattr(args, flag.removeprefix("--").replace("-", "_"))
    # A float flag reads an integer past 2**53 as the nearest float, as TOML's float keys do.
    assert parsed == (float(value) if r.kind == "float" else value)


def test_the_flag_types_raise_argument_type_errors() -> None:
    # argparse turns a ValueError from a type into "invalid <function name> value"; only an
    # ArgumentTypeError carries our message.
    for action in cli._parser()._actions:
        parse: Callable[[str], Any] | None = action.type  # type: ignore[assignment]
        if parse is None:
            continue
        for text in ("x", "", "nan", "-1", "0", "1e999", "9" * 5000):
            try:
                parse(text)
            except argparse.ArgumentTypeError as exc:
                assert "expected" in str(exc)
