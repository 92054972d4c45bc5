"""Big models on a small screen, through keys and the screen: a 12-block GPT's run file at 80x24
(groups, the fixed header, ↑ ↓ pgup pgdn and enter with no focus first), numbered
``nn.Sequential`` rows, the panel a PyTorch run gets instead of predictions, and the gradient
flow over time (``h``) on a live run, a replay and under NO_COLOR. The history behind the map
(bpmon.tui.flow) is tested on generated columns."""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from bigmodels import gpt_layers, write_gpt_run
from hypothesis import given
from hypothesis import strategies as st
from test_tui import drive, make_app, press, screen_text, wait_for, wait_screen, wait_shows
from test_tui_runfiles import header_line, run_file_app, snapshot_line
from textual.pilot import Pilot

from bpmon.telemetry import LayerStats, Status
from bpmon.trainer import Command, CommandKind, Snapshot
from bpmon.tui.app import BpmonApp
from bpmon.tui.flow import Column, FlowHistory, representative, thin
from bpmon.tui.gradients import GradientPanel
from bpmon.tui.predictions import run_figures


def gradient_panel(screen: str) -> list[str]:
    lines = screen.splitlines()
    top = next(i for i, line in enumerate(lines) if "╭─ gradient" in line)
    bottom = next(i for i in range(top + 1, len(lines)) if lines[i].startswith("╰"))
    return lines[top : bottom + 1]


# -- many rows at 80x24 ------------------------------------------------------------------------


def test_a_12_block_gpt_fits_80x24_and_its_groups_open_by_keys(tmp_path: Path) -> None:
    app = run_file_app(write_gpt_run(tmp_path / "gpt.jsonl"))

    async def body(pilot: Pilot[Any]) -> None:
        screen = await wait_shows(pilot, "snapshot 120/120", "lm_head", "q quit")
        panel = gradient_panel(screen)
        assert "layer" in panel[1] and "norm" in panel[1] and "status" in panel[1]
        names = ["transformer.wte", "transformer.wpe", "▸ transformer.h", "lm_head"]
        for name in names:
            assert any(name in line for line in panel), (name, screen)
        assert "more ↓" not in screen
        group = next(line for line in panel if "▸ transformer.h" in line)
        assert re.search(r"healthy\s+↕ \S+…\S+", group), group
        # ↓ three times (no tab first) puts the cursor on the stack; enter opens it.
        await press(pilot, "down", "down", "down", "enter")
        screen = await wait_shows(pilot, "▾ transformer.h", "more ↓")
        panel = gradient_panel(screen)
        assert "layer" in panel[1], "the header stays at the top"
        assert any("▸ 0 " in line for line in panel)
        # pgdn goes on down to the last block; the header stays put.
        for _ in range(4):
            await press(pilot, "pagedown")
        screen = await wait_shows(pilot, "▸ 11 ", "lm_head", "above ↑")
        assert "layer" in gradient_panel(screen)[1]
        # enter on a block opens it: its rows, named without the block's path.
        await press(pilot, "up", "enter")
        screen = await wait_shows(pilot, "▾ 11", "attn.c_attn", "mlp.c_proj")
        assert "transformer.h.11" not in screen
        await press(pilot, "enter")
        await wait_screen(pilot, lambda s: "▸ 11 " in s, "block 11 closed again")
        # enter with the cursor on a group is the group's; f still opens the findings.
        assert "bpmon findings" not in screen_text(app)

    drive(app, body)


def test_numbered_sequential_rows_read_with_their_kind(tmp_path: Path) -> None:
    names = ["0", "2", "164"]
    path = tmp_path / "seq.jsonl"
    path.write_text(header_line(names, name="seq") + snapshot_line(names, 10))
    app = run_file_app(path)

    async def body(pilot: Pilot[Any]) -> None:
        screen = await wait_shows(pilot, "164 (Linear)", "0 (Linear)", "2 (Linear)")
        assert "▸" not in screen, "a plain Sequential does not group"

    drive(app, body)


# At 160 columns the panel sits beside the plot with 60% of the width: too little for a
# 41-character name and every column, so the name is cut there; at 200 it is whole again.
@pytest.mark.parametrize("size", [(120, 40), (200, 50)], ids=["120x40", "200x50"])
def test_names_are_whole_where_there_is_room(tmp_path: Path, size: tuple[int, int]) -> None:
    names = [f"model.encoder.blocks_with_a_long_name.fc{i}" for i in range(3)]
    path = tmp_path / "long.jsonl"
    path.write_text(header_line(names, name="long") + snapshot_line(names, 10))
    app = run_file_app(path)

    async def body(pilot: Pilot[Any]) -> None:
        # In the panel's rows (a finding's line may name the layer too).
        await wait_screen(
            pilot,
            lambda s: (
                "╭─ gradient" in s
                and any(name in line for line in gradient_panel(s) for name in names)
                and all(any(name in line for line in gradient_panel(s)) for name in names)
            ),
            "every name whole in the gradient panel",
        )

    drive(app, body, size=size)


# -- the panel a PyTorch run gets ----------------------------------------------------------------


@dataclass(frozen=True)
class TorchSnapshot(Snapshot):
    """A snapshot with the fields the PyTorch bridge adds (written by hand here until the
    bridge writes them)."""

    metrics: tuple[tuple[str, float], ...] = ()
    lrs: tuple[float, ...] = ()
    grad_norm_total: float | None = None
    clip_max: float | None = None
    clip_factor: float | None = None
    clipped_share: float | None = None


class StaticSource:
    """One snapshot, shown as a recorded run shows it."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.alive = False

    def latest(self) -> Snapshot:
        return self.snapshot

    def send(self, command: Command) -> None:
        pass

    def supports(self, kind: CommandKind) -> bool:
        return False

    def start(self) -> None:
        self.alive = True

    def stop(self, timeout: float = 0.0) -> None:
        self.alive = False


def torch_snapshot(tmp_path: Path, **fields: Any) -> Snapshot:
    source = run_file_app(write_gpt_run(tmp_path / "gpt.jsonl", snapshots=3)).source
    assert hasattr(source, "_build")
    base = source._build()
    values = {f: getattr(base, f) for f in Snapshot.__dataclass_fields__}
    return TorchSnapshot(**{**values, "mode": "REPLAY", **fields})


def test_a_hand_written_loop_s_unknown_lr_says_how_to_give_it() -> None:
    # pytorch/examples word_language_model steps with p.data.add_: no optimiser, no lr to read.
    figures = dict((name, value) for name, value, _ in run_figures(Snapshot(lr=math.nan)))
    assert figures["lr"] == "unknown · mon.log(lr=…)"
    assert dict((n, v) for n, v, _ in run_figures(Snapshot(lr=0.5)))["lr"] == "0.5"


def test_a_torch_run_shows_its_figures_instead_of_predictions(tmp_path: Path) -> None:
    snapshot = torch_snapshot(
        tmp_path,
        metrics=(("val_loss", 1.234), ("tokens_per_s", 12345.0), ("bad", math.nan)),
        lrs=(6e-4, 3e-4),
        grad_norm_total=2.5,
        clip_max=1.0,
        clip_factor=0.4,
        clipped_share=0.62,
    )
    figures = dict((name, value) for name, value, _ in run_figures(snapshot))
    assert figures["‖g‖ pre-clip"] == "2.5 / clip 1 x0.40"
    assert figures["clipped"] == "62% of recent updates"
    assert figures["lrs"] == "0.0006 · 0.0003"
    assert figures["val_loss"] == "1.234" and figures["tokens_per_s"] == "12,345"
    app = BpmonApp(StaticSource(snapshot))

    async def body(pilot: Pilot[Any]) -> None:
        screen = await wait_shows(pilot, "this run", "val_loss", "tokens_per_s")
        # The value right-aligned after its label (bpmon.tui.thisrun).
        assert re.search(r"‖g‖ pre-clip +2\.5 / clip 1 x0\.40 │", screen), screen
        assert "62% of recent updates" in screen
        assert "input  target" not in screen

    drive(app, body)


def test_without_the_new_fields_the_panel_says_what_it_has(tmp_path: Path) -> None:
    app = run_file_app(write_gpt_run(tmp_path / "gpt.jsonl", snapshots=3))

    async def body(pilot: Pilot[Any]) -> None:
        screen = await wait_shows(pilot, "this run", "lr", "mon.log(val_loss=...)")
        assert "predictions" not in screen

    drive(app, body)


def test_bpmons_own_run_keeps_its_prediction_table() -> None:
    _trainer, app = make_app("xor")

    async def body(pilot: Pilot[Any]) -> None:
        screen = await wait_shows(pilot, "predictions", "target")
        assert "this run" not in screen

    drive(app, body)


# -- gradient flow over time -----------------------------------------------------------------


def flow_lines(screen: str) -> list[str]:
    return [line for line in gradient_panel(screen) if re.match(r"│ +(▸ |▾ )?\S", line)]


def test_h_shows_a_live_runs_flow_and_h_again_the_bars() -> None:
    trainer, app = make_app("xor", steps=None)

    async def body(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "layer0")
        panel = app.query_one(GradientPanel)
        await wait_for(pilot, lambda: len(panel.history.columns) >= 4, "four snapshots")
        await press(pilot, "h")
        screen = await wait_shows(pilot, "gradient flow over time", "step ")
        rows = [line for line in gradient_panel(screen) if line.startswith("│ layer")]
        assert len(rows) >= 3 and all("▌" in line for line in rows[1:]), screen
        await press(pilot, "h")
        await wait_shows(pilot, "gradients ‖dL/dW‖", "1e-8")
        trainer.send(Command("toggle_pause"))

    drive(app, body)


def test_the_replay_cursor_marks_its_column(tmp_path: Path) -> None:
    # 16 snapshots: all in the reader's first read of the file's tail.
    app = run_file_app(write_gpt_run(tmp_path / "gpt.jsonl", "spike", snapshots=16))

    async def body(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "snapshot 16/16")
        await press(pilot, "h")
        screen = await wait_shows(pilot, "gradient flow", "step 10")
        wte = next(line for line in gradient_panel(screen) if "transformer.wte" in line)
        assert wte.count("▌") == 8, "16 snapshots, two a character"
        await press(pilot, "home")
        screen = await wait_shows(pilot, "snapshot 1/16", "▼")
        at_start = gradient_panel(screen)[1].index("▼")
        for _ in range(10):
            await press(pilot, "right")
        screen = await wait_shows(pilot, "snapshot 11/16")
        header = gradient_panel(screen)[1]
        assert header.index("▼") == at_start + 5, header
        # What the reader has read up to the cursor: 11 snapshots, two a character.
        rows = [line for line in gradient_panel(screen) if "transformer.wte" in line]
        assert rows[0].count("▌") == 6

    drive(app, body)


def test_flow_without_colour_has_a_character_per_level(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = run_file_app(write_gpt_run(tmp_path / "gpt.jsonl", "vanishing", snapshots=16))

    async def body(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "snapshot 16/16")
        await press(pilot, "h")
        screen = await wait_shows(pilot, "gradient flow", "▁▂▄▆█")
        wte = next(line for line in gradient_panel(screen) if "transformer.wte" in line)
        head = next(line for line in gradient_panel(screen) if "lm_head" in line)
        # The input end six decades under the output: low blocks against high ones.
        assert "▁" * 16 in wte or "▂" * 16 in wte, wte
        assert "▆" * 16 in head or "█" * 16 in head, head

    drive(app, body)


# -- the history behind the map ----------------------------------------------------------------

STATUS = st.sampled_from(["healthy", "vanishing", "exploding", "nonfinite"])
NORM = st.one_of(st.floats(1e-12, 1e6), st.just(math.nan), st.just(math.inf), st.just(0.0))


def stats(norms: list[float], statuses: list[Status]) -> list[LayerStats]:
    base = gpt_layers("healthy", 0, 10)[0]
    return [
        replace(base, name=f"r{i}", grad_norm=n, status=s)
        for i, (n, s) in enumerate(zip(norms, statuses, strict=True))
    ]


@given(st.lists(st.tuples(NORM, STATUS), min_size=1, max_size=300), st.integers(1, 40))
def test_the_worst_cell_survives_any_thinning(
    cells: list[tuple[float, Status]], width: int
) -> None:
    history = FlowHistory(columns=16)
    for step, (norm, status) in enumerate(cells):
        history.add(0, step, stats([norm], [status]))
    assert len(history.columns) <= 32
    shown = thin(history.columns, width)
    assert len(shown) <= width
    worst = representative(cells)
    kept = representative((c.norms[0], c.statuses[0]) for c in shown)
    assert kept[1] == worst[1]
    assert kept[0] == worst[0] or (math.isnan(kept[0]) and math.isnan(worst[0]))
    # Every step is covered once, in order.
    assert shown[0].first == 0 and shown[-1].last == len(cells) - 1
    assert all(a.last + 1 == b.first for a, b in itertools.pairwise(shown))


def test_a_spike_in_one_update_shows_after_thinning() -> None:
    history = FlowHistory(columns=8)
    for step in range(1000):
        norm = 1e3 if step == 617 else 1e-2
        history.add(0, step, stats([norm, 1e-2], ["healthy", "healthy"]))
    shown = thin(history.columns, 8)
    spikes = [c for c in shown if c.norms[0] == 1e3]
    assert len(spikes) == 1 and spikes[0].first <= 617 <= spikes[0].last
    assert all(c.norms[1] == 1e-2 for c in shown)


def test_the_history_starts_again_for_another_run_and_follows_a_cursor_back() -> None:
    history = FlowHistory()
    for step in range(10):
        history.add(0, step, stats([1.0], ["healthy"]))
    history.add(0, 4, stats([2.0], ["healthy"]))
    assert [c.last for c in history.columns] == [0, 1, 2, 3, 4]
    assert history.columns[-1].norms == (2.0,)
    history.add(1, 100, stats([1.0], ["healthy"]))
    assert [c.first for c in history.columns] == [100]
    history.add(1, 101, stats([1.0, 1.0], ["healthy", "healthy"]))
    assert [c.first for c in history.columns] == [101]


def test_thinning_keeps_what_fits() -> None:
    column = Column(0, 0, (1.0,), ("healthy",))
    assert thin([column], 5) == [column]
    assert thin([column], 0) == []
