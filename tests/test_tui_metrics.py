"""The "this run" panel of a PyTorch run, through keys and the screen: the numbers a script logs
(``mon.log(val_loss=...)``) plotted over the run and chosen with ``g``, in a replay (the cursor)
and in a followed file; every line fits at 80x24. The reader's history of those numbers
(bpmon.metrichistory) and the panel's layout (bpmon.tui.thisrun) are tested on generated input:
names long, wide, escaped or hostile, hundreds of them, NaN values, a name only in some lines."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.cells import cell_len
from test_tui import drive, press, screen_text, wait_screen, wait_shows
from test_tui_runfiles import header_line, run_file_app, snapshot_line
from textual.pilot import Pilot

from bpmon.codec import to_record
from bpmon.metrichistory import MAX_NAME, MAX_NAMES, MetricHistory
from bpmon.runmodel import Snapshot
from bpmon.sources import TAIL_BYTES, RunFileSource
from bpmon.text import printable
from bpmon.tui.thisrun import KEY, Styles, figure, figure_lines, fit, picture, plot

SnapCompare = Callable[..., bool]
NAMES = ["blocks.0.fc", "blocks.1.fc", "head"]
LONG = "val_accuracy_of_a_really_long_metric_name_here"


def tokens(step: int) -> float:
    return 20_000.0 + (step * 7919) % 5000


def val_loss(step: int) -> float:
    return 2.0 / (1 + step / 100)


def metrics_at(step: int) -> list[list[Any]]:
    """tokens_per_s on every line; val_loss and the long name from step 50, every 50 steps (as
    a script that validates now and then writes them with a writer that keeps no old values)."""
    out: list[list[Any]] = [["tokens_per_s", tokens(step)]]
    if step % 50 == 0:
        out += [["val_loss", val_loss(step)], [LONG, 1 - val_loss(step) / 4]]
    return out


def torch_line(names: Sequence[str], step: int, metrics: list[list[Any]], **more: Any) -> str:
    # The runfiles tests' snapshot line (its keys in the writers' order), with what a PyTorch
    # run adds after them.
    record = json.loads(snapshot_line(names, step))
    record |= {
        "metrics": metrics,
        "lrs": [3e-4, 1e-4],
        "grad_norm_total": 12.3456 if step % 30 else 0.75,
        "clip_max": 1.0,
        "clip_factor": 1 / 12.3456 if step % 30 else 1.0,
        "clipped_share": 0.75,
        **more,
    }
    # Compact, as bpmon's writers write: the reader's scan reads such lines by its fast path.
    return json.dumps(record, separators=(",", ":")) + "\n"


def write_metrics_run(path: Path, steps: Sequence[int] = range(10, 410, 10)) -> Path:
    path.write_text(
        header_line(NAMES, name="metrics")
        + "".join(torch_line(NAMES, s, metrics_at(s)) for s in steps)
    )
    return path


def panel_lines(screen: str) -> list[str]:
    """The "this run" panel's inner lines (its border's columns left out)."""
    lines = screen.splitlines()
    top = next(i for i, line in enumerate(lines) if "─ this run " in line)
    left = lines[top].index("╭─ this run")
    out = []
    for line in lines[top + 1 :]:
        if line[left:].startswith("╰"):
            break
        out.append(line[left + 1 : line.index("│", left + 1)])
    return out


def is_title(line: str, name: str, index: int, count: int) -> bool:
    return line.strip().startswith(name) and line.rstrip().endswith(f"{KEY} {index}/{count}")


def top_row(panel: list[str]) -> str:
    """The plot's top row: the highest value reaches it, so it is the first with a full block."""
    return next(x for x in panel if "█" in x).strip()


async def wait_title(pilot: Pilot[Any], name: str, index: int, count: int = 3) -> list[str]:
    screen = await wait_screen(
        pilot,
        lambda s: (
            "─ this run " in s and any(is_title(x, name, index, count) for x in panel_lines(s))
        ),
        f"{name} plotted ({index} of {count})",
    )
    return panel_lines(screen)


# -- through keys and the screen -------------------------------------------------------------


def test_g_cycles_the_logged_numbers_and_every_line_fits_80x24(tmp_path: Path) -> None:
    app = run_file_app(write_metrics_run(tmp_path / "run.jsonl"))

    async def body(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "snapshot 40/40", "this run")
        panel = await wait_title(pilot, "tokens_per_s", 1)
        inner = len(panel[0])
        # The line the issue found cut: the norm, the threshold and the factor are all there.
        assert panel[0].split() == ["‖g‖", "pre-clip", "12.35", "/", "clip", "1", "x0.08"], panel
        assert panel[1].strip().endswith("75% of recent updates")
        assert panel[2].strip().startswith("lrs") and panel[2].strip().endswith("0.0003 · 0.0001")
        # The long name is cut with an ellipsis and its value kept, right-aligned.
        long_line = next(x for x in panel if x.strip().startswith("val_accuracy_of"))
        assert "…" in long_line and long_line.rstrip().endswith(figure(1 - val_loss(400) / 4))
        # The plot's range is the series' own: its highest and lowest logged value.
        values = [tokens(s) for s in range(10, 410, 10)]
        assert top_row(panel).startswith(figure(max(values)))
        assert panel[-2].strip().startswith(figure(min(values)))
        assert panel[-1].split() == ["10", "400"]
        await press(pilot, KEY)
        panel = await wait_title(pilot, "val_loss", 2)
        # val_loss came every 50 steps: its plot starts at step 50.
        assert panel[-1].split() == ["50", "400"]
        assert top_row(panel).startswith(figure(val_loss(50)))
        await press(pilot, KEY)
        panel = await wait_title(pilot, "val_accuracy_of", 3)
        await press(pilot, KEY)
        panel = await wait_title(pilot, "tokens_per_s", 1)
        assert all(len(x) == inner for x in panel)

    drive(app, body)


def test_the_replay_cursor_marks_the_plot_and_a_number_not_in_its_line(tmp_path: Path) -> None:
    app = run_file_app(write_metrics_run(tmp_path / "run.jsonl"))

    async def body(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "snapshot 40/40")
        await press(pilot, KEY)
        await wait_title(pilot, "val_loss", 2)
        # Step 60 has no val_loss of its own: the title says so; the plot marks the cursor.
        await press(pilot, "home", *["right"] * 5)
        await wait_shows(pilot, "snapshot 6/40", "◆ step 60")
        # The panel redraws on its own frame: wait for the cursor's picture, not the status's.
        await wait_screen(
            pilot,
            lambda s: (
                any(is_title(x, "val_loss", 2, 3) and "— · g 2/3" in x for x in panel_lines(s))
                and "◆" in panel_lines(s)[-1]
            ),
            "step 60 marked on val_loss's plot, its own value absent",
        )
        # Before val_loss's first step the cursor is off its plot.
        await press(pilot, "home")
        await wait_shows(pilot, "snapshot 1/40")
        await wait_screen(
            pilot,
            lambda s: (
                any(is_title(x, "val_loss", 2, 3) for x in panel_lines(s))
                and "◆" not in panel_lines(s)[-1]
            ),
            "the cursor off val_loss's plot at step 10",
        )

    drive(app, body)


def test_a_followed_file_plots_the_lines_it_gains(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_text(header_line(NAMES, name="metrics"))
    app = run_file_app(path, mode="watch")

    async def body(pilot: Pilot[Any]) -> None:
        # Before the first snapshot line the panel says so (not "lr nan").
        waiting = await wait_screen(
            pilot,
            lambda s: (
                "─ this run " in s
                and any("waiting for the first snapshot" in x for x in panel_lines(s))
            ),
            "the panel waiting",
        )
        with path.open("a") as f:
            f.write("".join(torch_line(NAMES, s, [["tokens_per_s", float(s)]]) for s in (10, 20)))
        await wait_shows(pilot, "WATCHING", "tokens_per_s")
        assert "lr " not in " ".join(panel_lines(waiting)), waiting
        await wait_screen(
            pilot, lambda s: panel_lines(s)[-1].split() == ["10", "20"], "the first two steps"
        )
        with path.open("a") as f:
            for s in (30, 40):
                f.write(torch_line(NAMES, s, [["tokens_per_s", float(s)], ["val_loss", 1.5]]))
        screen = await wait_screen(
            pilot, lambda s: panel_lines(s)[-1].split() == ["10", "40"], "the appended steps"
        )
        panel = panel_lines(screen)
        assert top_row(panel).startswith("40") and panel[-2].strip().startswith("10")
        await press(pilot, KEY)
        await wait_title(pilot, "val_loss", 2, count=2)

    drive(app, body)


def test_hundreds_of_names_say_how_many_are_left_out(tmp_path: Path) -> None:
    many = [[f"probe.{i:03d}.{'x' * (i % 50)}", float(i)] for i in range(300)]
    path = tmp_path / "many.jsonl"
    path.write_text(
        header_line(NAMES, name="many") + "".join(torch_line(NAMES, s, many) for s in (1, 2))
    )
    app = run_file_app(path)

    async def body(pilot: Pilot[Any]) -> None:
        panel = await wait_title(pilot, "probe.000", 1, count=300)
        assert any("more logged: g plots each" in x for x in panel), panel
        await press(pilot, KEY, KEY)
        await wait_title(pilot, "probe.002", 3, count=300)

    drive(app, body)


def test_g_is_in_the_help_only_where_numbers_were_logged(tmp_path: Path) -> None:
    app = run_file_app(write_metrics_run(tmp_path / "run.jsonl"))

    async def body(pilot: Pilot[Any]) -> None:
        await wait_title(pilot, "tokens_per_s", 1)
        await press(pilot, "question_mark")
        await wait_shows(pilot, "Plot the next number the script logged")

    drive(app, body)
    path = tmp_path / "none.jsonl"
    path.write_text(header_line(NAMES) + "".join(torch_line(NAMES, s, []) for s in (1, 2)))
    app = run_file_app(path)

    async def without(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "snapshot 2/2", "mon.log(val_loss=...) records them")
        await press(pilot, KEY, "question_mark")
        screen = await wait_shows(pilot, "This help")
        assert "Plot the next number" not in screen

    drive(app, without)


# -- SVG snapshots: look at them after --snapshot-update ---------------------------------------


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_snapshot_three_logged_numbers(
    snap_compare: SnapCompare, size: tuple[int, int], tmp_path: Path
) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "snapshot 40/40")
        await press(pilot, KEY, "home", *["right"] * 19)
        await wait_shows(pilot, "snapshot 20/40", "◆ step 200")
        await wait_title(pilot, "val_loss", 2)
        await pilot.pause(0.3)

    app = run_file_app(write_metrics_run(tmp_path / "run.jsonl"))
    assert snap_compare(app, terminal_size=size, run_before=run_before)


# -- the reader's history ---------------------------------------------------------------------


def test_the_scan_of_a_long_file_keeps_every_logged_point(tmp_path: Path) -> None:
    # Past TAIL_BYTES the earlier lines come from the reader's scan, whose fast path reads the
    # metrics out of the unparsed line: the series must be the one every line gives.
    names = [f"encoder.layers.{i}.fc" for i in range(40)]
    path = tmp_path / "long.jsonl"
    steps = range(1, 80)
    path.write_text(
        header_line(names, name="long")
        + "".join(torch_line(names, s, metrics_at(s)) for s in steps)
    )
    assert path.stat().st_size > 2 * TAIL_BYTES
    source = RunFileSource(str(path), "replay")
    source.open_now()
    source.start()
    try:
        deadline = time.monotonic() + 10
        while "reading the earlier lines" in source.latest().detail:
            assert time.monotonic() < deadline, "the scan did not finish"
            threading.Event().wait(0.02)
        names_seen, (got_steps, got_values) = source.metric_series("val_loss")
        assert names_seen == ("tokens_per_s", "val_loss", LONG)
        assert got_steps == (50,) and got_values == (val_loss(50),)
        _, (got_steps, got_values) = source.metric_series("tokens_per_s")
        assert got_steps == tuple(steps)
        assert got_values == tuple(tokens(s) for s in steps)
    finally:
        source.stop()


metric_names = st.one_of(
    st.text(min_size=0, max_size=30),
    st.text(alphabet='\x1b\x07\n\u2028日本\u200b"\\:[', min_size=1, max_size=8),
    st.just('x","metrics":[["evil",1]],"y'),
    st.text(alphabet="ab", min_size=MAX_NAME - 2, max_size=MAX_NAME + 40),
)
values = st.one_of(st.floats(allow_infinity=False), st.none())
lines = st.lists(
    st.lists(st.tuples(metric_names, values), max_size=6, unique_by=lambda p: p[0]),
    max_size=40,
)


def as_model(value: float | None) -> float:
    """What the codec reads a value as: null and NaN are NaN."""
    return math.nan if value is None or value != value else float(value)


def same(a: Sequence[float], b: Sequence[float]) -> bool:
    return len(a) == len(b) and all(
        x == y or (x != x and y != y) for x, y in zip(a, b, strict=True)
    )


@given(lines, st.integers(min_value=2, max_value=9))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_history_of_generated_lines(
    logged: list[list[tuple[str, float | None]]], capacity: int
) -> None:
    """From raw lines (the scan's fast path), parsed records and decoded snapshots alike: the
    names in first-seen order, printable, cut; each series a thinning of what was logged, its
    first and last point kept, bounded; a name in some lines has points only at theirs."""
    by_raw, by_record = MetricHistory(capacity), MetricHistory(capacity)
    expected: dict[str, list[tuple[int, float]]] = {}
    for step, pairs in enumerate(logged, start=1):
        written = [[n, None if v is None or v != v else v] for n, v in pairs]
        record = {"step": step, "metrics": written}
        raw = (json.dumps(record, allow_nan=False) + "\n").encode()
        by_raw.add_line(step, raw)
        by_record.add_record(step, record)
        for name, value in pairs:
            shown = printable(name)
            shown = shown if len(shown) <= MAX_NAME else shown[: MAX_NAME - 1] + "…"
            expected.setdefault(shown, []).append((step, as_model(value)))
    assert by_raw.names() == by_record.names() == tuple(expected)[:MAX_NAMES]
    for name in by_raw.names():
        assert all(ch.isprintable() for ch in name) and len(name) <= MAX_NAME
        steps, got = by_raw.series(name)
        assert same(got, by_record.series(name)[1]) and steps == by_record.series(name)[0]
        full = expected[name]
        assert len(steps) <= capacity + 1
        assert (steps[0], steps[-1]) == (full[0][0], full[-1][0])
        wanted = dict(full)  # the last value logged at a step (a cut name may repeat in a line)
        assert set(steps) <= set(wanted)
        assert list(steps) == sorted(steps)
        assert same(got, [wanted[s] for s in steps]) or len(set(s for s, _ in full)) < len(full)


@given(lines, lines)
@settings(max_examples=30, deadline=None)
def test_extend_is_the_history_of_both_parts(
    first: list[list[tuple[str, float | None]]], second: list[list[tuple[str, float | None]]]
) -> None:
    """The scan's history of the earlier lines, extended by the follower's: the names of both
    in file order, every series ending where the later part ends it."""
    early, late, whole = MetricHistory(), MetricHistory(), MetricHistory()
    for step, pairs in enumerate(first + second, start=1):
        record = {"metrics": [[n, v] for n, v in pairs]}
        (early if step <= len(first) else late).add_record(step, record)
        whole.add_record(step, record)
    early.extend(late)
    assert early.names() == whole.names()
    for name in whole.names():
        assert early.series(name)[0][-1:] == whole.series(name)[0][-1:]


def test_names_past_the_limit_are_counted_not_kept() -> None:
    history = MetricHistory()
    history.add(1, [(f"n{i}", float(i)) for i in range(MAX_NAMES + 5)])
    assert len(history.names()) == MAX_NAMES and history.names_dropped == 5


# -- the layout ---------------------------------------------------------------------------------


snapshots = st.builds(
    Snapshot,
    step=st.integers(0, 10**6),
    metrics=st.lists(
        st.tuples(metric_names.map(printable), st.floats(allow_infinity=False)), max_size=400
    ).map(tuple),
    lrs=st.lists((st.floats(min_value=0, max_value=10) | st.just(math.nan)), max_size=40).map(
        tuple
    ),
    grad_norm_total=st.none() | st.floats(allow_infinity=False),
    clip_max=st.none() | st.floats(min_value=0, max_value=1e12),
    clip_factor=st.none() | st.floats(min_value=0, max_value=1),
    clipped_share=st.none() | st.floats(min_value=0, max_value=1),
    marker_step=st.none() | st.integers(0, 10**6),
    mode=st.just("REPLAY"),
)
series = st.lists(st.tuples(st.integers(0, 10**6), st.floats(allow_infinity=False)), max_size=80)


@given(snapshots, series, st.integers(1, 160), st.integers(1, 50))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_line_fits_whatever_the_run_logged(
    snapshot: Snapshot, points: list[tuple[int, float]], width: int, height: int
) -> None:
    # The points in any order: a hostile file's steps need not rise.
    names = tuple(dict.fromkeys(name for name, _ in snapshot.metrics))
    chosen = names[0] if names else None
    steps = tuple(s for s, _ in points)
    values = tuple(v for _, v in points)
    text = picture(snapshot, names, chosen, (steps, values), width, height, Styles())
    shown = text.plain.split("\n")
    assert len(shown) <= max(1, height)
    assert all(cell_len(line) <= width for line in shown), (width, shown)


@given(snapshots)
@settings(max_examples=80, deadline=None)
def test_the_updates_figures_fit_the_panel_at_80x24(snapshot: Snapshot) -> None:
    # 38 cells: the panel's inside at 80x24. The norm against max_norm and every lr stay
    # readable whole: values are never cut there, labels give way.
    for label, value, _ in figure_lines(snapshot, 38):
        line = fit(label, value, 38, Styles().label).plain
        assert cell_len(line) == 38 and line.endswith(value), (label, value)


def test_a_plot_of_nan_and_a_constant() -> None:
    styles = Styles()
    rows = [x.plain for x in plot((1, 2, 3), (1.0, math.nan, 1.0), 2, 20, 2, styles)]
    assert "×" in rows[1] and "◆" in rows[2]  # noqa: RUF001
    # The ends of the float range: their span is not a float.
    rows = [x.plain for x in plot((1, 2), (-1.7e308, 1.7e308), None, 20, 2, styles)]
    assert rows[0].endswith(" █") and rows[1].endswith("▁█")
    rows = [x.plain for x in plot((1, 2), (math.nan, math.nan), None, 20, 2, styles)]
    assert rows[0] == "no finite value to draw"
    rows = [x.plain for x in plot((), (), None, 20, 2, styles)]
    assert rows[0] == "nothing logged yet"


def test_many_param_groups_say_their_count_and_range() -> None:
    snapshot = Snapshot(lrs=tuple(1e-4 * (i + 1) for i in range(12)))
    ((label, value, _),) = figure_lines(snapshot, 38)
    assert (label, value) == ("lrs", "12 groups 0.0001…0.0012")
    assert figure_lines(Snapshot(lrs=(1e-3, 2e-3)), 38)[0][1] == "0.001 · 0.002"


def test_the_record_the_bridge_writes_is_read_by_the_fast_path() -> None:
    snapshot = Snapshot(step=7, metrics=(("val_loss", 0.5), ("tokens_per_s", math.nan)))
    raw = (json.dumps(to_record(snapshot)) + "\n").encode()
    history = MetricHistory()
    history.add_line(7, raw)
    assert history.names() == ("val_loss", "tokens_per_s")
    assert history.series("val_loss") == ((7,), (0.5,))
    assert math.isnan(history.series("tokens_per_s")[1][0])


def test_screen_text_is_what_the_panel_drew(tmp_path: Path) -> None:
    # The helper above reads the panel by its border: check it against the widget's own text.
    app = run_file_app(write_metrics_run(tmp_path / "run.jsonl"))

    async def body(pilot: Pilot[Any]) -> None:
        panel = await wait_title(pilot, "tokens_per_s", 1)
        drawn = app.query_one("#run-figures").render().plain.split("\n")  # type: ignore[union-attr]
        assert [x.strip() for x in drawn] == [x.strip() for x in panel[: len(drawn)]]
        assert screen_text(app)

    drive(app, body)
