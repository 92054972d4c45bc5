"""The table of actions (bpmon/actions.py) is checked when it is imported: a table whose advice
names a key no row binds, whose two rows take one key on one source, or whose live-only key that
does not train has no notice of its own is refused. The bindings are the table's, in its order."""

from __future__ import annotations

from dataclasses import replace

import pytest
from textual.binding import Binding

from bpmon import actions
from bpmon.actions import ACTIONS, EVERY, REPLAY, Action
from bpmon.trainer.commands import CURSOR_COMMANDS, TRAINER_COMMANDS
from bpmon.trainer.loop import HANDLERS
from bpmon.tui import keys
from bpmon.tui.keys import bindings


def bad_tables() -> list[tuple[str, dict[str, Action]]]:
    rows = dict(ACTIONS)
    return [
        ("not bound", {**rows, "x": Action("x", "try x", key="x")}),
        ("not bound", {**rows, "y": Action("y", "try y", key="a", via="clip")}),
        ("is both", {**rows, "z": Action("z", help="z", keys=("r",), command="restart")}),
        ("is both", {**rows, "w": Action("w", keys=("left",), sources=REPLAY, run="help")}),
        ("does nothing", {**rows, "n": Action("n", keys=("N",))}),
        ("own 'otherwise'", {**rows, "save": replace(rows["save"], otherwise="")}),
    ]


@pytest.mark.parametrize("why,table", bad_tables())
def test_a_bad_table_is_refused_at_import(
    monkeypatch: pytest.MonkeyPatch, why: str, table: dict[str, Action]
) -> None:
    monkeypatch.setattr(actions, "ACTIONS", table)
    with pytest.raises(ImportError, match=why):
        actions._check()


def test_a_row_with_a_key_of_its_own_source_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    row = Action("zoom", help="Zoom", keys=("z",), footer="zoom", sources=EVERY, run="help")
    table = {**ACTIONS, "zoom": row}
    monkeypatch.setattr(actions, "ACTIONS", table)
    monkeypatch.setattr(keys, "ACTIONS", table)
    actions._check()
    assert any(b.key == "z" and b.action == "help" for b in bindings())


def test_every_key_is_bound_first_to_its_row_and_last_to_its_notice() -> None:
    first: dict[str, str] = {}
    last: dict[str, str] = {}
    for binding in Binding.make_bindings(bindings()):
        first.setdefault(binding.key, binding.action)
        last[binding.key] = binding.action
    for row in ACTIONS.values():
        if row.keys:
            assert row.keys[0] in first, row.id
        if row.sources == {"live"}:
            assert all(last[key] == f"refuse({row.id!r})" for key in row.keys), row.id


def test_the_trainer_takes_what_the_table_sends_a_live_run() -> None:
    live = {a.command for a in ACTIONS.values() if a.command and "live" in a.sources}
    assert live <= TRAINER_COMMANDS == HANDLERS.keys()
    assert not CURSOR_COMMANDS & TRAINER_COMMANDS


def test_a_kind_the_trainer_does_not_take_does_nothing() -> None:
    from bpmon.launch import live_trainer
    from bpmon.presets import load_preset
    from bpmon.trainer import Command

    preset = load_preset("xor")
    trainer = live_trainer(preset.config, preset.name)
    assert not trainer.supports("seek")
    trainer.send(Command("seek", 1))
    trainer.send(Command("lr", 2.0))
    snap = trainer.run(max_steps=2)
    # The run went on, and the command after the one it does not take was applied.
    assert snap.step == 2
    assert snap.lr == 2 * preset.config.train.lr
