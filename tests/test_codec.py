"""The one codec of the run model (``bpmon.codec``): every recorded field survives snapshot ->
record -> JSON line -> snapshot, and a file's values that do not fit the model are a
``DecodeError`` (a corrupt line), never another exception, whatever field they are put in."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpmon.codec import INT_MAX, DecodeError, from_record, to_record
from bpmon.config import RunConfig
from bpmon.readback import decode_line
from bpmon.runfile import parse_line, read_header
from bpmon.runmodel import (
    STATES,
    STATUSES,
    End,
    Finding,
    Header,
    LayerDescription,
    LayerStats,
    NonFinite,
    Prediction,
    Restart,
    Snapshot,
    Spike,
)

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "tests" / "data" / "run-v1.jsonl"

# -- generated snapshots ---------------------------------------------------------------------

counts = st.integers(0, INT_MAX)
floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
# A ``float | None`` field says "unknown" with None: a NaN there is written null and read None.
optional_floats = st.none() | st.floats(allow_nan=False, allow_infinity=False)
texts = st.text(st.characters(codec="utf-8").filter(str.isprintable), max_size=12)

layers = st.builds(
    LayerStats,
    name=texts,
    fan_in=counts,
    fan_out=counts,
    grad_norm=floats,
    bias_grad_norm=floats,
    weight_norm=floats,
    update_ratio=floats,
    delta_norm=floats,
    health=floats,
    health_label=texts,
    status=st.sampled_from(STATUSES),
    activation=st.none() | texts,
    params=counts,
    note=texts,
)
predictions = st.builds(
    Prediction,
    inputs=st.tuples(floats, floats),
    target=counts,
    output=st.lists(floats, max_size=3).map(tuple),
    predicted=counts,
    correct=st.booleans(),
    target_value=optional_floats,
)
findings = st.builds(
    Finding,
    rule=texts,
    severity=st.sampled_from(("info", "warning", "error")),
    layers=st.lists(texts, max_size=3).map(tuple),
    evidence=texts,
    advice=texts,
    key=st.none() | texts,
)
spikes = st.builds(
    Spike,
    step=counts,
    series=st.sampled_from(("grad_norm", "loss")),
    value=floats,
    mean=floats,
    sigmas=floats,
    layer=texts,
    layer_step=st.none() | counts,
    factor=floats,
    loss_followed=st.none() | st.booleans(),
    norms_start=counts,
    norms=st.lists(st.lists(floats, max_size=3).map(tuple), max_size=3).map(tuple),
)
snapshots = st.builds(
    Snapshot,
    step=counts,
    epoch=counts,
    elapsed=floats,
    loss=floats,
    accuracy=optional_floats,
    test_accuracy=optional_floats,
    lr=floats,
    state=st.sampled_from(STATES),
    run_id=counts,
    layers=st.lists(layers, max_size=3).map(tuple),
    predictions=st.lists(predictions, max_size=3).map(tuple),
    diverged_step=st.none() | counts,
    diverged_layer=st.none() | texts,
    steps_per_second=floats,
    message=texts,
    findings=st.lists(findings, max_size=3).map(tuple),
    r2=optional_floats,
    test_r2=optional_floats,
    metrics=st.lists(st.tuples(texts, floats), max_size=3).map(tuple),
    lrs=st.lists(floats, max_size=3).map(tuple),
    grad_norm_total=optional_floats,
    clip_max=optional_floats,
    clip_factor=optional_floats,
    clipped_share=optional_floats,
    nonfinite=st.none()
    | st.builds(
        NonFinite,
        step=counts,
        gradient=texts,
        module=texts,
        weights=st.booleans(),
        forward_checked=st.booleans(),
        loss=st.booleans(),
        inputs=st.booleans(),
    ),
    update_start=st.none() | counts,
    update_losses=st.lists(floats, max_size=4).map(tuple),
    update_grad_norms=st.lists(floats, max_size=4).map(tuple),
    spikes=st.lists(spikes, max_size=2).map(tuple),
)


def same(a: Any, b: Any, where: str = "") -> None:
    """``a == b`` field by field, NaN equal to NaN; the first difference named."""
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        assert type(a) is type(b), where
        for f in dataclasses.fields(a):
            same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b), f"{where}: {a!r} != {b!r}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and not math.isfinite(a):
        # Infinities have no JSON: a file says "not a number" for every non-finite figure.
        assert a == b or (isinstance(b, float) and math.isnan(b)), f"{where}: {a!r} != {b!r}"
    else:
        assert a == b and type(a) is type(b), f"{where}: {a!r} != {b!r}"


def through_a_file(record: dict[str, Any]) -> Any:
    return json.loads(json.dumps(record, allow_nan=False, separators=(",", ":")))


@settings(max_examples=150, deadline=None)
@given(snapshots)
def test_every_recorded_field_survives_a_line(snap: Snapshot) -> None:
    back = from_record(Snapshot, through_a_file(to_record(snap)))
    same(snap, back)


def test_the_round_trip_covers_every_recorded_field() -> None:
    # A field added to the model without a strategy above would not be tested.
    recorded = {f.name for f in dataclasses.fields(Snapshot) if f.metadata.get("record", True)}
    generated = set(snapshots.wrapped_strategy.kwargs)  # type: ignore[attr-defined]
    assert recorded == generated


@settings(max_examples=40, deadline=None)
@given(
    name=texts,
    classes=st.lists(texts, max_size=4).map(tuple),
    notes=st.lists(texts, max_size=2).map(tuple),
    epochs=st.none() | counts,
    preset=st.sampled_from(["xor-story", "relu-bn", "digits-relu-bn", "spiral"]),
)
def test_headers_and_restarts_survive_a_line(
    name: str, classes: tuple[str, ...], notes: tuple[str, ...], epochs: int | None, preset: str
) -> None:
    from bpmon.presets import load_preset

    config = load_preset(preset).config
    description = LayerDescription("layer0", "Dense", (2, 8), 2, 8, "relu", 24, ("tied.w",))
    head = Header(
        name=name, layers=(description,), classes=classes, notes=notes, epochs=epochs, config=config
    )
    same(head, from_record(Header, through_a_file(to_record(head))))
    restart = Restart(
        run_id=3, epochs=epochs, classes=classes, config=config, layers=(description,)
    )
    same(restart, from_record(Restart, through_a_file(to_record(restart))))
    same(End(state="stopped"), from_record(End, {"event": "end", "state": "stopped"}))


def test_control_characters_from_a_file_arrive_escaped() -> None:
    record = to_record(Snapshot(layers=(LayerStats("x", 1, 1, *[1.0] * 6, "", "healthy"),)))
    record["layers"][0]["name"] = "\x1b]2;TITLE\x07fc1\x1b[2J"
    record["message"] = "\x9b31m"
    snap = from_record(Snapshot, record)
    assert snap.layers[0].name == "\\x1b]2;TITLE\\x07fc1\\x1b[2J"
    assert snap.message == "\\x9b31m"
    assert all(s.isprintable() for s in (snap.layers[0].name, snap.message))


# -- hostile values ---------------------------------------------------------------------------

DEEP: Any = 0
for _ in range(60):
    DEEP = [DEEP]
BAD_VALUES: list[Any] = [
    "abc",
    "nan",
    10**30,
    -1,
    math.inf,  # what json.loads makes of 1e400
    [[1]],
    {"a": [1]},
    DEEP,
    True,
    1.5,
    None,
    "",
]


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key path into a parsed line, containers included."""
    if prefix:
        yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value[:3]):
            yield from paths(item, (*prefix, i))


def mutated(record: dict[str, Any], path: tuple[Any, ...], bad: Any) -> dict[str, Any]:
    copy = json.loads(json.dumps(record))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = bad
    return copy


def real_lines() -> list[dict[str, Any]]:
    """Lines as bpmon's writers write them: the committed version 1 file, a version 2 line of
    every field, a restart and an end line."""
    lines = [json.loads(line) for line in COMMITTED.read_text(encoding="utf-8").splitlines()]
    full = Snapshot(
        step=5,
        layers=(LayerStats("l0", 2, 3, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, "dead", "healthy", "relu"),),
        predictions=(Prediction((1.0, 2.0), 0, (3.0,), 0, True, 3.5),),
        findings=(Finding("plateau", "info", ("l0",), "e", "a", "]"),),
        metrics=(("val_loss", 0.5),),
        lrs=(0.1, 0.2),
        r2=0.9,
        clip_max=1.0,
    )
    restart = Restart(run_id=1, architecture="2-3-1", classes=("a", "b"), config=RunConfig())
    return [lines[1], lines[-2], to_record(full), to_record(restart), lines[-1]]


def test_every_field_of_real_lines_set_to_a_wrong_value_is_a_decode_error_or_fine() -> None:
    tried = refused = 0
    for record in real_lines():
        for path in paths(record):
            for bad in BAD_VALUES:
                tried += 1
                try:
                    decode_line(mutated(record, path, bad))
                except DecodeError as exc:
                    refused += 1
                    assert str(exc).isprintable() and "\n" not in str(exc)
    # Most wrong values are refused; some are fine where they land (null where a figure may
    # be unknown, "" for a name).
    assert tried > 2000 and refused > tried // 2, (tried, refused)


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("step", 10**30, "step = 1000000000000000000000000000000: expected an integer"),
        ("loss", "nan", 'loss = "nan": expected a number or null'),
        ("loss", math.inf, "loss = Infinity: expected a finite number or null"),
        ("layers", [1, 2], "layers[0] = 1: expected an object"),
        ("state", "melted", 'state = "melted": expected one of'),
    ],
)
def test_a_wrong_value_is_named_with_its_key(key: str, value: Any, says: str) -> None:
    record = real_lines()[0]
    record[key] = value
    with pytest.raises(DecodeError) as caught:
        decode_line(record)
    assert str(caught.value).startswith(says)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"layers": [1, 2]}, "layers[0] = 1: expected an object"),
        ({"thresholds": {"vanish_rel": "nan"}}, 'thresholds.vanish_rel = "nan"'),
        ({"epochs": -3}, "epochs = -3: expected an integer"),
        ({"config": {"model": {"hidden": "x"}}}, "config: config: model.hidden"),
    ],
)
def test_a_header_that_cannot_be_used_is_one_line(change: dict[str, Any], says: str) -> None:
    from bpmon.errors import BpmonError

    head = json.loads(COMMITTED.read_text(encoding="utf-8").splitlines()[0]) | change
    with pytest.raises(BpmonError) as caught:
        read_header(head, "run.jsonl")
    assert str(caught.value).startswith(f"run.jsonl:1: {says}")


def test_deep_nesting_is_a_corrupt_line_not_a_recursion_error() -> None:
    assert parse_line(b"[" * 100_000 + b"]" * 100_000 + b"\n") is None
    assert parse_line(b'{"step": ' + b"[" * 100_000 + b"\n") is None


def _mutated_file(path: Path, line_no: int, key_path: tuple[Any, ...], bad: Any) -> Path:
    lines = COMMITTED.read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[line_no])
    lines[line_no] = json.dumps(mutated(record, key_path, bad))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("line_no", "key_path", "bad"),
    [
        (0, ("layers",), [1, 2]),  # the header's layers
        (0, ("layers", 0, "activation"), [1]),
        (0, ("thresholds", "vanish_rel"), "nan"),
        (-2, ("layers", 0, "fan_in"), "abc"),
        (-2, ("step",), 10**30),
        (-2, ("predictions", 0, "predicted"), [[5]]),
    ],
)
def test_replay_of_a_hostile_file_ends_in_one_line_without_a_traceback(
    tmp_path: Path, line_no: int, key_path: tuple[Any, ...], bad: Any
) -> None:
    path = _mutated_file(tmp_path / "run.jsonl", line_no, key_path, bad)
    proc = subprocess.run(
        [sys.executable, "-m", "bpmon", "replay", str(path)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    # A bad header is the reason; a bad snapshot line is skipped, and what stops this replay is
    # only that the test gives it no terminal.
    if line_no == 0:
        assert lines[0].startswith(f"bpmon: {path}:1: ")
    else:
        assert "needs a terminal" in lines[0]
