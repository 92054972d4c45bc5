"""Replay shows what live showed: the figures of a regression (R², targets), the findings the
live diagnosis held at each snapshot, every run of a session with restarts, and a followed file
whose bad lines are skipped while its end still shows."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bpmon.launch import live_trainer
from bpmon.presets import load_preset
from bpmon.readback import FindingsPass, decode_line
from bpmon.runfile import Recorder, RunWriter
from bpmon.runmodel import Finding, Snapshot
from bpmon.sources import RunFileSource
from bpmon.trainer import Command, Trainer

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
WAIT = 20.0


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def sources() -> Iterator[Callable[[str, str], RunFileSource]]:
    made: list[RunFileSource] = []

    def make(path: str, mode: str) -> RunFileSource:
        source = RunFileSource(path, "replay" if mode == "replay" else "watch")
        source.open_now()
        source.start()
        made.append(source)
        return source

    yield make
    for source in made:
        source.stop()


def record(path: Path, trainer: Trainer, steps: int, commands: list[Command]) -> list[Snapshot]:
    """Run ``trainer`` with a recorder, as ``--record`` does; the snapshots live consumers got."""
    seen: list[Snapshot] = []
    with open(path, "w", encoding="utf-8") as stream:
        recorder = Recorder(RunWriter(stream, str(path)))

        def both(snap: Snapshot) -> None:
            seen.append(snap)
            recorder(snap)

        trainer.on_snapshot = both
        trainer.run(max_steps=steps)
        for command in commands:
            trainer.send(command)
            trainer.run(max_steps=trainer.latest().step + steps)
        recorder.close()
    return seen


def replay_at(source: RunFileSource, total: int, picks: list[int]) -> list[Snapshot]:
    """The snapshot the replay shows with its cursor at each of ``picks`` (0-based, rising)."""
    wait_for(lambda: f"/{total:,}" in source.latest().detail and "…" not in source.latest().detail,
             "the whole file")  # fmt: skip
    source.send(Command("home"))
    wait_for(lambda: source.latest().detail.startswith("snapshot 1/"), "home")
    shown, at = [], 0
    for i in picks:
        if i != at:
            source.send(Command("seek", i - at))
            at = i
        wait_for(lambda i=i: source.latest().detail.startswith(f"snapshot {i + 1:,}/"), f"{i}")
        shown.append(source.latest())
    return shown


def picks(findings: list[tuple[int, tuple[Finding, ...]]]) -> list[int]:
    """Where to look: around every change of the findings, and every 20th snapshot."""
    changes = {i for i in range(1, len(findings)) if findings[i][1] != findings[i - 1][1]}
    near = {j for i in changes for j in (i - 1, i)} | set(range(0, len(findings), 20))
    return sorted(near | {len(findings) - 1})


# -- a regression's figures ----------------------------------------------------------------------


def test_a_recorded_regression_replays_its_r2_and_targets(tmp_path: Path, sources: Any) -> None:
    # Measured before: live R² 0.985, replay no R² and every target 0.
    path = tmp_path / "r.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "bpmon", str(DATA / "co2.csv"), "--headless", "--json",
         "--epochs", "30", "--record", str(path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.splitlines()[-1])  # after the data notes
    summary = summary[0] if isinstance(summary, list) else summary
    source = sources(str(path), "replay")
    wait_for(lambda: source.latest().state == "finished", "the last snapshot")
    snap = source.latest()
    assert summary["r2"] is not None and snap.r2 == pytest.approx(summary["r2"])
    assert snap.accuracy is None
    targets = [p["target"] for p in summary["predictions"]]
    assert [p.target_value for p in snap.predictions] == pytest.approx(targets)
    assert any(t != 0 for t in targets)
    assert snap.notes and snap.config is not None and snap.config.data.name == "csv"


# -- findings -------------------------------------------------------------------------------------


def findings_at(snaps: list[Snapshot]) -> list[tuple[int, tuple[Finding, ...]]]:
    return [(s.step, s.findings) for s in snaps]


def test_replay_shows_the_findings_live_showed_snapshot_by_snapshot(
    tmp_path: Path, sources: Any
) -> None:
    path = tmp_path / "xor.jsonl"
    config = load_preset("xor").config
    live = record(path, live_trainer(config, "xor", interval=0.0), 700, [])
    assert any(s.findings for s in live), "the xor preset raises findings live"
    expected = findings_at(live)
    at = picks(expected)
    replayed = replay_at(sources(str(path), "replay"), len(live), at)
    assert findings_at(replayed) == [expected[i] for i in at]


def test_a_file_without_findings_is_diagnosed_once_in_file_order(
    tmp_path: Path, sources: Any
) -> None:
    path = tmp_path / "xor.jsonl"
    live = record(path, live_trainer(load_preset("xor").config, "xor", interval=0.0), 700, [])
    # As a version 1 file or another writer's: no findings on the lines.
    stripped = tmp_path / "v1.jsonl"
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    for line in lines:
        line.pop("findings", None)
    stripped.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    # The live diagnosis, fed the file's snapshots in order with its hysteresis.
    expected, once = [], FindingsPass()
    for line in lines[1:]:
        snap = decode_line(line)
        if isinstance(snap, Snapshot):
            expected.append((snap.step, once.sets[once.add(snap)]))
    at = picks(expected)
    replayed = replay_at(sources(str(stripped), "replay"), len(live), at)
    assert findings_at(replayed) == [expected[i] for i in at]
    # Never the whole run's curve at the cursor: nothing stands at the first snapshot, where a
    # rule must first hold for several snapshots in a row.
    assert replayed[0].findings == ()
    assert any(f for _, f in expected)


# -- every run of a session ------------------------------------------------------------------------


def test_every_run_of_a_session_with_restarts_is_replayable(tmp_path: Path, sources: Any) -> None:
    path = tmp_path / "rs.jsonl"
    trainer = live_trainer(load_preset("relu-bn").config, "relu-bn", interval=0.0)
    live = record(path, trainer, 30, [Command("activation", 1), Command("depth", 1)])
    runs = sorted({s.run_id for s in live})
    assert len(runs) == 3
    restarts = [
        r for r in map(json.loads, path.read_text(encoding="utf-8").splitlines())
        if r.get("event") == "restart"
    ]  # fmt: skip
    assert all(r["classes"] == list(live[0].classes) for r in restarts)
    source = sources(str(path), "replay")
    total = len(live)
    wait_for(lambda: f"snapshot {total}/{total}" in source.latest().detail, "every run counted")
    assert "run 3 of 3" in source.latest().detail
    source.send(Command("home"))
    wait_for(lambda: source.latest().detail.startswith(f"snapshot 1/{total}"), "the first run")
    first = source.latest()
    assert first.run_id == runs[0] and first.step == live[0].step
    assert "run 1 of 3" in first.detail and first.switches == live[0].switches
    # Past the first run's last snapshot: the second run, and what its restart changed.
    in_first = sum(1 for s in live if s.run_id == runs[0])
    source.send(Command("seek", in_first))
    wait_for(lambda: source.latest().run_id == runs[1], "the second run")
    second = source.latest()
    assert "run 2 of 3: activation relu → " in second.detail, second.detail
    assert second.switches == next(s.switches for s in live if s.run_id == runs[1])
    assert second.previous_loss_steps, "the first run's curve shows dimmed behind the second"


# -- a followed file ------------------------------------------------------------------------------


def test_bad_lines_appended_to_a_followed_file_do_not_stop_the_reader(
    tmp_path: Path, sources: Any
) -> None:
    committed = (DATA / "run-v1.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    path = tmp_path / "followed.jsonl"
    path.write_text("".join(committed[:3]), encoding="utf-8")
    source = sources(str(path), "watch")
    wait_for(lambda: source.latest().step == json.loads(committed[2])["step"], "the first lines")
    good = json.loads(committed[3])
    bad = [
        dict(good, step="abc"),
        dict(good, step=10**30),
        dict(good, layers=[1, 2]),
        dict(good, loss="nan"),
        {"event": "restart", "run_id": [1]},
        {"event": "end", "state": {"x": 1}},
    ]
    with open(path, "a", encoding="utf-8") as f:
        f.writelines(json.dumps(x) + "\n" for x in bad)
        f.write("[" * 50_000 + "\n")
        f.writelines(committed[3:])
    wait_for(lambda: source.latest().mode == "ENDED (finished)", "the end line")
    assert source.alive
    snap = source.latest()
    assert snap.step == json.loads(committed[-2])["step"]
    assert snap.message.startswith('7 corrupt lines skipped (line 4): step = "abc": expected')


def test_the_cursor_keys_reach_every_run_and_name_the_boundary(tmp_path: Path) -> None:
    from test_tui import drive, press, screen_text, wait_shows
    from textual.pilot import Pilot

    from bpmon.tui.app import BpmonApp

    path = tmp_path / "rs.jsonl"
    trainer = live_trainer(load_preset("relu-bn").config, "relu-bn", interval=0.0)
    live = record(path, trainer, 20, [Command("activation", 1), Command("depth", 1)])
    total = len(live)
    in_first = sum(1 for s in live if s.run_id == live[0].run_id)
    source = RunFileSource(str(path), "replay")
    source.open_now()
    app = BpmonApp(source)

    async def body(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, f"snapshot {total}/{total}", "run 3 of 3")
        await press(pilot, "home")
        await wait_shows(pilot, f"snapshot 1/{total}", "run 1 of 3")
        await press(pilot, *(["right"] * in_first))
        await wait_shows(pilot, f"snapshot {in_first + 1}/{total}", "run 2 of 3: activation relu →")
        await press(pilot, "end")
        await wait_shows(pilot, f"snapshot {total}/{total}", "run 3 of 3: hidden")
        assert "Traceback" not in screen_text(app)

    drive(app, body, size=(160, 40))
