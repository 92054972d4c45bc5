"""The findings on real PyTorch models (benchmarks/calibration.py): small versions of a GPT, a
CNN with batch-norm, an LSTM language model and an MLP, healthy and broken, each watched by
``bpmon.torch.watch`` into a run file, read back and diagnosed in file order with hysteresis.

On every healthy run no finding of warning or error severity stands at any snapshot; on every
broken run the rule that names its cause stands within the first 20% of its updates, offering
the fix for that cause first. The runs are trained once for the module (about 20 s of CPU).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

pytest.importorskip("torch")

from benchmarks.calibration import CASES, EARLY, Outcome, diagnose, snapshots, table
from bpmon.actions import ACTIONS, advice, where_of

BY_NAME = {case.name: case for case in CASES}
HEALTHY = [c.name for c in CASES if c.healthy]
BROKEN = [c.name for c in CASES if not c.healthy]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    folder = tmp_path_factory.mktemp("calibration")
    return {case.name: diagnose(case, folder) for case in CASES}


def test_the_set_has_every_family_healthy_and_broken() -> None:
    families = {c.family for c in CASES}
    assert families == {"gpt", "cnn", "lstm", "mlp"}
    for family in families:
        kinds = [c.healthy for c in CASES if c.family == family]
        assert True in kinds and False in kinds, family
    assert all(c.action in ACTIONS for c in CASES if not c.healthy)


@pytest.mark.parametrize("name", HEALTHY)
def test_a_healthy_run_raises_no_warning(name: str, outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes[name]
    assert len(outcome.steps) >= 50
    assert outcome.serious() == [], [(step, f.line) for step, f in outcome.serious()[:3]]


@pytest.mark.parametrize("name", BROKEN)
def test_a_broken_run_is_named_early(name: str, outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes[name]
    caught = outcome.caught()
    shown = sorted({f.line for found in outcome.findings for f in found})
    assert caught is not None, shown[:5]
    step, finding = caught
    assert step <= EARLY * outcome.updates
    assert finding.rule in BY_NAME[name].rules


@pytest.mark.parametrize("name", BROKEN)
def test_advice_on_a_pytorch_run_is_a_script_change(
    name: str, outcomes: dict[str, Outcome]
) -> None:
    """The findings of a run file the bridge wrote are rendered for a script, never with a key
    of the monitor (none applies to a recorded run), and the learning-rate advice quotes the
    run's own lr."""
    outcome = outcomes[name]
    snap = snapshots(outcome.path)[-1]
    where = where_of(snap.config, snap.switches)
    assert where == "torch"
    for found in outcome.findings:
        for f in found:
            text = advice(f.actions, where, dict(f.facts))
            assert text and not re.search(r"\(\S\)", text), text
            if f.actions[0] == "lr_down":
                assert "lr" in text and any(ch.isdigit() for ch in text), text


def test_a_model_that_normalises_is_never_told_to_add_normalisation(
    outcomes: dict[str, Outcome],
) -> None:
    """Issue 16: the GPT (its own LayerNorm class) and the CNN (BatchNorm2d) normalise already;
    no finding on them offers "try batch-norm"."""
    checked = set()
    for name, outcome in outcomes.items():
        if "+bn" not in snapshots(outcome.path)[-1].switches.split():
            continue
        checked.add(BY_NAME[name].family)
        for found in outcome.findings:
            assert all("batchnorm" not in f.actions for f in found), [f.line for f in found]
    assert checked == {"gpt", "cnn"}


def test_the_clipped_lstm_advice_quotes_the_clipping(outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes["lstm lrx100"]
    caught = outcome.caught()
    assert caught is not None
    facts = dict(caught[1].facts)
    assert "clipped_share" in facts and "clip_over" in facts
    text = advice(caught[1].actions, "torch", facts)
    assert "clip_grad_norm_ scaled" in text


def test_the_table_has_a_row_per_rule_and_a_verdict_per_run(
    outcomes: dict[str, Outcome],
) -> None:
    text = table(list(outcomes.values()))
    lines = text.splitlines()
    assert lines[0].count("|") == len(CASES) + 2
    assert lines[-1].startswith("| target |") and "✗" not in lines[-1], lines[-1]


def test_the_monitor_shows_a_pytorch_run_s_advice_without_keys(
    outcomes: dict[str, Outcome],
) -> None:
    """``bpmon replay`` of the LSTM run at lr x100: the findings strip and the modal say what to
    change in the script, with the run's lr, name no key, and do not claim a key applies it."""
    from test_tui import drive, press, wait_screen, wait_shows

    from bpmon.sources import RunFileSource
    from bpmon.tui.app import BpmonApp

    source = RunFileSource(str(outcomes["lstm lrx100"].path), "replay")
    source.open_now()
    app = BpmonApp(source)

    async def body(pilot: Any) -> None:
        # The strip keeps the action's label where the script's wording does not fit beside the
        # evidence; the modal spells the change out with the run's lr.
        screen = await wait_shows(pilot, "exploding:")
        assert not re.search(r"\([\[\]ab\-r]\)", screen), screen
        await press(pilot, "f")
        modal = await wait_shows(pilot, "bpmon findings", "escape closes", "lr (2e+03)")
        assert "a finding's key applies it" not in modal
        assert "press [" not in modal
        await press(pilot, "escape")
        await wait_screen(pilot, lambda s: "bpmon findings" not in s, "the modal closed")

    drive(app, body, size=(120, 30))
