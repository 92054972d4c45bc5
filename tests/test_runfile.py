"""The run file: what bpmon writes validates against the shipped schema, the committed version-1
file keeps loading, and the readers (replay and watch) tolerate what real files do: a line still
being written, a corrupt line, a file that is not there yet, truncated or replaced, a newer
version or not a run at all. Every wait polls a condition with a deadline."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpmon.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from bpmon.errors import BpmonError
from bpmon.launch import live_trainer
from bpmon.presets import list_presets, load_preset
from bpmon.runfile import VERSION, Recorder, RunWriter
from bpmon.sources import RunFileSource, newest_run_file
from bpmon.trainer import Command, Trainer

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = {
    version: json.loads((ROOT / "bpmon" / "schema" / f"run-v{version}.schema.json").read_text())
    for version in (1, 2)
}
SCHEMA = SCHEMAS[2]
COMMITTED = ROOT / "tests" / "data" / "run-v1.jsonl"
WAIT = 10.0


def validate_file(path: Path) -> list[dict[str, Any]]:
    """Every line of ``path`` parsed and checked against the schema of its header's version."""
    validator = jsonschema.Draft202012Validator(SCHEMA)
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        record = json.loads(line)
        if number == 1:
            validator = jsonschema.Draft202012Validator(SCHEMAS[record["version"]])
        errors = list(validator.iter_errors(record))
        assert not errors, f"{path}:{number}: {errors[0].message}"
        records.append(record)
    return records


def record_run(path: Path, trainer: Trainer, steps: int, commands: list[Command]) -> None:
    with open(path, "w", encoding="utf-8") as stream:
        recorder = Recorder(RunWriter(stream, str(path)))
        trainer.on_snapshot = recorder
        trainer.run(max_steps=steps)
        for command in commands:
            trainer.send(command)
            trainer.run(max_steps=trainer.latest().step + steps)
        recorder.close()


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


class CountingClock:
    """``time.monotonic``, counting its calls: a watching reader reads its clock at least once
    each time round its loop (to say how long the file has been quiet), so a count of calls is
    a count of polls, not a guess at how long they take."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return time.monotonic()


@pytest.fixture
def sources() -> Iterator[Callable[[str, str], RunFileSource]]:
    started: list[RunFileSource] = []

    def make(path: str, mode: str, clock: Callable[[], float] = time.monotonic) -> RunFileSource:
        source = RunFileSource(path, mode, clock)  # type: ignore[arg-type]
        source.open_now()
        source.start()
        started.append(source)
        return source

    yield make
    for source in started:
        source.stop()


# -- writers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", [p.name for p in list_presets()])
def test_every_presets_record_validates(tmp_path: Path, preset: str) -> None:
    config = load_preset(preset).config.with_epochs(30)
    path = tmp_path / "run.jsonl"
    trainer = live_trainer(config, preset, interval=0.0)
    record_run(path, trainer, 10, [])
    header, *lines, end = validate_file(path)
    assert header["source"] == "bpmon" and header["name"] == preset
    assert load_preset(preset).config.with_epochs(30) == _config_of(header)
    assert end["event"] == "end" and end["state"] in ("stopped", "finished", "diverged")
    assert lines and all("step" in line for line in lines)


def _config_of(header: dict[str, Any]) -> RunConfig:
    from bpmon.runfile import config_from_record

    return config_from_record(header["config"], "header")


def test_restarts_are_recorded_as_events(tmp_path: Path) -> None:
    config = RunConfig(
        data=DataConfig(name="circle", n=40, seed=1),
        model=ModelConfig(hidden=(4, 4), activation="relu", init="he"),
        train=TrainConfig(lr=0.1, epochs=10**6),
    )
    path = tmp_path / "run.jsonl"
    record_run(path, live_trainer(config, "keys", interval=0.0), 5, [Command("depth", 1)])
    records = validate_file(path)
    restarts = [r for r in records if r.get("event") == "restart"]
    assert len(restarts) == 1
    assert restarts[0]["architecture"] == "2-4-4-4-1" and restarts[0]["run_id"] == 1
    assert records[-1] == {"event": "end", "state": "stopped"}


@settings(max_examples=30, deadline=None)
@given(
    loss=st.floats(allow_nan=True, allow_infinity=True),
    lr=st.floats(1e-6, 100),
)
def test_non_finite_numbers_are_written_as_null(loss: float, lr: float) -> None:
    from bpmon.runfile import num

    assert num(loss) == (loss if math.isfinite(loss) else None)
    json.dumps({"loss": num(loss), "lr": num(lr)}, allow_nan=False)


# -- readers -------------------------------------------------------------------------------------


def test_the_committed_version_1_file_keeps_loading(sources: Any) -> None:
    records = validate_file(COMMITTED)
    last = [r for r in records if "step" in r][-1]
    source = sources(str(COMMITTED), "replay")
    wait_for(lambda: source.latest().step == last["step"], "the last snapshot")
    snap = source.latest()
    assert snap.preset == records[0]["name"]
    assert snap.architecture == records[0]["architecture"]
    assert [layer.name for layer in snap.layers] == [x["name"] for x in last["layers"]]
    assert snap.layers[0].grad_norm == pytest.approx(last["layers"][0]["grad_norm"])
    assert snap.mode == "REPLAY" and "the run ended finished" in snap.detail
    # The header's configuration reaches the replay, as the live monitor had it.
    assert snap.config is not None and snap.config.train.epochs == records[0]["epochs"]
    assert len(snap.loss_steps) == len([r for r in records if "step" in r])


def test_replay_moves_a_cursor_over_the_snapshots(sources: Any) -> None:
    source = sources(str(COMMITTED), "replay")
    steps = [r["step"] for r in validate_file(COMMITTED) if "step" in r]
    wait_for(lambda: source.latest().step == steps[-1], "the last snapshot")
    source.send(Command("home"))
    wait_for(lambda: source.latest().step == steps[0], "home")
    assert source.latest().marker_step == steps[0]
    source.send(Command("seek", 1))
    source.send(Command("seek", 1))
    wait_for(lambda: source.latest().step == steps[2], "two to the right")
    assert "snapshot 3/" in source.latest().detail
    source.send(Command("end"))
    wait_for(lambda: source.latest().step == steps[-1], "end")
    source.send(Command("home"))
    source.send(Command("speed", 2.0))
    source.send(Command("toggle_pause"))
    wait_for(lambda: source.latest().step == steps[-1], "playback to the end")
    assert source.supports("seek") and not source.supports("depth")


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def test_watch_waits_for_a_file_then_follows_it(tmp_path: Path, sources: Any) -> None:
    path = tmp_path / "later.jsonl"
    clock = CountingClock()
    source = sources(str(path), "watch", clock)
    assert "waiting for" in source.latest().detail
    lines = _lines(COMMITTED)
    with open(path, "w", encoding="utf-8") as f:
        f.write(lines[0])
        f.flush()
        f.write(lines[1])
        f.flush()
        wait_for(lambda: source.latest().step == json.loads(lines[1])["step"], "the first line")
        # Half a line: not read until its newline arrives.
        f.write(lines[2][:40])
        f.flush()
        # Several polls (each reads the clock at least once): the half line must not be taken.
        polls = clock.calls
        wait_for(lambda: clock.calls >= polls + 12, "several polls")
        assert source.latest().step == json.loads(lines[1])["step"]
        assert not source.latest().message
        f.write(lines[2][40:])
        f.flush()
        wait_for(lambda: source.latest().step == json.loads(lines[2])["step"], "the whole line")
        assert source.latest().mode == "WATCHING"
        f.writelines(lines[3:])
    wait_for(lambda: source.latest().mode == "ENDED (finished)", "the end line")


def test_a_corrupt_line_is_skipped_and_counted(tmp_path: Path, sources: Any) -> None:
    lines = _lines(COMMITTED)
    path = tmp_path / "corrupt.jsonl"
    path.write_text("".join([*lines[:4], '{"step": 5, "loss": 0.1, "la\n', *lines[4:]]))
    source = sources(str(path), "watch")
    wait_for(lambda: source.latest().mode == "ENDED (finished)", "the end")
    assert source.latest().message == "1 corrupt line skipped (line 5)"


def test_a_truncated_or_replaced_file_is_read_again(tmp_path: Path, sources: Any) -> None:
    lines = _lines(COMMITTED)
    path = tmp_path / "run.jsonl"
    path.write_text("".join(lines[:-1]))
    source = sources(str(path), "watch")
    last_step = json.loads(lines[-2])["step"]
    wait_for(lambda: source.latest().step == last_step, "the whole file")
    # Truncated (a writer that started over): read from the start again.
    path.write_text("".join(lines[:3]))
    wait_for(lambda: source.latest().step == json.loads(lines[2])["step"], "the shorter file")
    # Replaced by a new file of the same name (a new run): followed from its start.
    other = tmp_path / "new.jsonl"
    other.write_text("".join(lines[:5]))
    os.replace(other, path)
    wait_for(lambda: source.latest().step == json.loads(lines[4])["step"], "the new file")


@pytest.mark.parametrize(
    ("first_line", "words"),
    [
        (json.dumps({"format": "bpmon-run", "version": VERSION + 1}), "newer"),
        (json.dumps({"format": "tensorboard"}), "not a bpmon run file"),
        (json.dumps([1, 2, 3]), "not a bpmon run file"),
        ("step,loss", "not a bpmon run file"),
    ],
)
def test_a_file_that_is_not_a_readable_run_is_one_clear_error(
    tmp_path: Path, first_line: str, words: str
) -> None:
    path = tmp_path / "odd.jsonl"
    path.write_text(first_line + "\n")
    for mode in ("replay", "watch"):
        with pytest.raises(BpmonError, match=words) as caught:
            RunFileSource(str(path), mode).open_now()  # type: ignore[arg-type]
        assert str(path) in str(caught.value)


def test_replay_of_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(BpmonError, match="no such file"):
        RunFileSource(str(tmp_path / "none.jsonl"), "replay").open_now()


def test_a_long_file_shows_its_end_before_it_is_read_whole(tmp_path: Path, sources: Any) -> None:
    lines = _lines(COMMITTED)
    header, body = lines[0], [ln for ln in lines if ln.startswith('{"step"')]
    path = tmp_path / "long.jsonl"
    count = 30_000
    with open(path, "w", encoding="utf-8") as f:
        f.write(header)
        for step in range(1, count + 1):
            record = json.loads(body[step % len(body)])
            record["step"] = step
            f.write(json.dumps(record) + "\n")
    source = sources(str(path), "replay")
    # The first snapshot handed out is the last line's, whatever the backfill has reached.
    assert source.latest().step == count
    wait_for(lambda: "reading" not in source.latest().detail, "the backfill")
    snap = source.latest()
    assert snap.loss_steps[0] == 1 and snap.loss_steps[-1] == count
    assert f"snapshot {count:,}/{count:,}" in snap.detail


def test_watch_dir_takes_the_newest_run_file(tmp_path: Path) -> None:
    old, new = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    old.write_text("x\n")
    new.write_text("y\n")
    os.utime(old, (1, 1))
    assert newest_run_file(str(tmp_path)) == str(new)
    assert newest_run_file(str(tmp_path / "nothing-here")) is None


def test_watch_dir_waits_for_its_first_run_file(tmp_path: Path, sources: Any) -> None:
    source = sources(str(tmp_path), "watch")
    assert "waiting for a run file" in source.latest().detail
    (tmp_path / "run.jsonl").write_text("".join(_lines(COMMITTED)))
    wait_for(lambda: source.latest().mode == "ENDED (finished)", "the run file")


def test_watch_dir_moves_to_a_newer_run_file(tmp_path: Path, sources: Any) -> None:
    old = tmp_path / "old.jsonl"
    old.write_text("".join(_lines(COMMITTED)))
    source = sources(str(tmp_path), "watch")
    wait_for(lambda: source.latest().mode == "ENDED (finished)", "the old run")
    new = tmp_path / "new.jsonl"
    new.write_text("".join(_lines(COMMITTED)[:4]))
    step = json.loads(_lines(COMMITTED)[3])["step"]
    wait_for(lambda: source.latest().mode == "WATCHING", "the new run")
    wait_for(lambda: source.latest().step == step, "the new run's last line")
