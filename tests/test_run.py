"""One run's rules: mini-batch bounds, runaway losses, non-finite outputs, memory, intents and
the state table. Classes of input are generated (hypothesis), not picked by hand."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bpmon.config import (
    HIDDEN_ACTIVATIONS,
    LR_MAX,
    LR_MIN,
    MAX_DEPTH,
    MIN_DEPTH,
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    validate,
)
from bpmon.data import Dataset
from bpmon.errors import BpmonError
from bpmon.presets import load_preset
from bpmon.trainer import Command, Trainer
from bpmon.trainer.commands import apply_intent
from bpmon.trainer.run import (
    EVAL_ROWS,
    PREDICTION_ROWS,
    RUNAWAY_FACTOR,
    Run,
    batch_bounds,
    eval_rows,
)
from bpmon.trainer.snapshot import LoopFacts, accuracy, correct_rows, snapshot_of
from bpmon.trainer.states import STATES, TRANSITIONS, State, after


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 500), batch_size=st.integers(0, 600), min_batch=st.integers(1, 2))
def test_batches_cover_every_sample_once_and_none_is_too_small(
    n: int, batch_size: int, min_batch: int
) -> None:
    # Batches of one with batch-norm are refused by the config validation before they get here.
    assume(batch_size == 0 or batch_size >= min_batch)
    bounds = batch_bounds(n, batch_size, min_batch)
    covered = [i for start, stop in bounds for i in range(start, stop)]
    assert covered == list(range(n))
    if len(bounds) > 1:
        assert all(stop - start >= min_batch for start, stop in bounds)
        assert all(stop - start <= batch_size + min_batch - 1 for start, stop in bounds)


@pytest.mark.parametrize("n", [5, 9, 33])
def test_batch_norm_trains_when_the_last_batch_would_hold_one_sample(n: int) -> None:
    config = RunConfig(
        data=DataConfig(name="circle", n=n, seed=1),
        model=ModelConfig(hidden=(4,), activation="relu", batchnorm=True, init="he"),
        train=TrainConfig(batch_size=4, epochs=3, lr=0.1),
    )
    snap = Trainer(config).run()
    assert snap.state == "finished"
    assert snap.epoch == 3


def test_batch_norm_with_one_training_sample_is_bad_input() -> None:
    one = _dataset(np.zeros((1, 2)), np.zeros((1, 1)))
    config = RunConfig(model=ModelConfig(hidden=(4,), batchnorm=True))
    with pytest.raises(BpmonError, match="at least 2 training samples"):
        Trainer(config, data=one)


def test_a_tiny_test_split_leaves_batch_norm_two_training_samples() -> None:
    config = RunConfig(
        data=DataConfig(name="circle", n=4, seed=1, test_fraction=0.75),
        model=ModelConfig(hidden=(4,), batchnorm=True),
        train=TrainConfig(epochs=3),
    )
    assert Trainer(config).run().state == "finished"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_runaway_finite_loss_is_a_divergence() -> None:
    # Inputs of 1e14 through an identity network give a finite loss of about 1e28 at step 1
    # and one far beyond RUNAWAY_FACTOR times that right after: no inf is ever produced.
    X = np.full((8, 2), 1e14)
    X[::2] *= -1
    y = np.arange(8, dtype=np.float64)[:, None] % 2
    data = _dataset(X, y)
    config = RunConfig(
        model=ModelConfig(hidden=(4,), activation="identity", output="identity", init="he"),
        train=TrainConfig(lr=LR_MAX, epochs=1000),
    )
    snap = Trainer(config, data=data).run()
    assert snap.state == "diverged"
    assert snap.diverged_step is not None and snap.diverged_step < 1000
    assert not math.isfinite(snap.loss) or snap.loss > RUNAWAY_FACTOR * snap.loss_values[0]


@settings(max_examples=200, deadline=None)
@given(
    rows=st.integers(1, 20),
    classes=st.integers(1, 5),
    seed=st.integers(0, 2**16),
    bad=st.sampled_from([math.nan, math.inf, -math.inf]),
)
def test_a_non_finite_output_is_never_correct(
    rows: int, classes: int, seed: int, bad: float
) -> None:
    rng = np.random.default_rng(seed)
    width = 1 if classes == 1 else classes
    output = rng.random((rows, width))
    labels = rng.integers(0, max(2, classes), rows)
    y = labels[:, None].astype(float) if width == 1 else np.eye(width)[labels]
    poisoned = rng.random(rows) < 0.5
    output[poisoned, rng.integers(0, width)] = bad
    right = correct_rows(output, y)
    assert not right[poisoned].any()
    assert accuracy(output, y) <= 1 - poisoned.mean() + 1e-12


def test_a_network_too_big_for_memory_is_refused_before_allocating() -> None:
    config = RunConfig(model=ModelConfig(hidden=(100_000,) * 12))
    with pytest.raises(BpmonError, match=r"model\.hidden = .*needs about .* available"):
        Trainer(config)


# -- intents -----------------------------------------------------------------------------------


def _relu(depth: int = 2, lr: float = 0.1, batch_size: int = 0) -> RunConfig:
    return RunConfig(
        data=DataConfig(name="circle", n=40, seed=1),
        model=ModelConfig(hidden=(4,) * depth, activation="relu", init="he"),
        train=TrainConfig(lr=lr, batch_size=batch_size, epochs=10**9),
    )


@given(start=st.integers(MIN_DEPTH, MAX_DEPTH), presses=st.lists(st.sampled_from([1, -1])))
def test_depth_intents_stay_within_the_limits(start: int, presses: list[int]) -> None:
    config = _relu(depth=start)
    for amount in presses:
        depth = config.model.depth
        try:
            config, _ = apply_intent(config, Command("depth", amount))
        except BpmonError as exc:
            assert depth + amount in (MIN_DEPTH - 1, MAX_DEPTH + 1)
            assert "model.hidden" in str(exc) and f"{MAX_DEPTH}" in str(exc)
        assert MIN_DEPTH <= config.model.depth <= MAX_DEPTH


@given(
    lr=st.floats(LR_MIN, LR_MAX),
    presses=st.lists(st.sampled_from([2.0, 0.5]), max_size=80),
)
def test_lr_intents_stay_in_range_and_always_come_back(lr: float, presses: list[float]) -> None:
    config = _relu(lr=lr)
    for factor in presses:
        before = config.train.lr
        config, notice = apply_intent(config, Command("lr", factor))
        assert LR_MIN <= config.train.lr <= LR_MAX
        at_bound = not LR_MIN <= before * factor <= LR_MAX
        assert bool(notice) == at_bound
    # From any state of the keys, one press the other way moves the rate again.
    up, _ = apply_intent(config, Command("lr", 2.0))
    down, _ = apply_intent(config, Command("lr", 0.5))
    assert up.train.lr > config.train.lr or down.train.lr < config.train.lr


def test_activation_intents_cycle_through_the_hidden_activations() -> None:
    config = _relu()
    seen = []
    for _ in HIDDEN_ACTIVATIONS:
        config, _ = apply_intent(config, Command("activation", 1))
        seen.append(config.model.activation)
    assert sorted(seen) == sorted(HIDDEN_ACTIVATIONS)
    back, _ = apply_intent(config, Command("activation", -1))
    assert back.model.activation == seen[-2]


def test_batchnorm_intent_is_refused_with_batches_of_one() -> None:
    with pytest.raises(BpmonError, match="batch-norm"):
        apply_intent(_relu(batch_size=1), Command("batchnorm"))


def test_a_refused_intent_keeps_the_run_and_says_why() -> None:
    trainer = Trainer(_relu(depth=MAX_DEPTH), start_paused=True)
    trainer.send(Command("depth", 1))
    snap = trainer.run(max_steps=2)
    assert snap.run_id == 0
    assert snap.config.model.depth == MAX_DEPTH
    assert snap.notice_id == 1 and "model.hidden" in snap.notice


def test_intents_build_on_each_other_in_the_trainer() -> None:
    trainer = Trainer(_relu(depth=2), start_paused=True)
    for _ in range(3):
        trainer.send(Command("depth", 1))
    trainer.send(Command("lr", 0.5))
    snap = trainer.run(max_steps=1)
    assert snap.config.model.depth == 5
    assert snap.lr == pytest.approx(0.05)
    assert snap.run_id == 3


# -- states ------------------------------------------------------------------------------------


def test_every_state_has_its_transitions_and_ended_runs_only_restart_or_stop() -> None:
    assert set(TRANSITIONS) == set(STATES)
    for state in ("finished", "diverged", "error"):
        assert after(state, "resume") == state
        assert after(state, "toggle") == state
        assert after(state, "restart") == "running"
        assert after(state, "stop") == "stopped"
    for event in ("pause", "resume", "toggle", "finish", "diverge", "fail", "restart"):
        assert after("stopped", event) == "stopped"


def _dataset(X: np.ndarray, y: np.ndarray) -> Dataset:
    return Dataset(
        name="xor",
        X_train=X,
        y_train=y,
        X_test=None,
        y_test=None,
        task="binary",
        classes=("0", "1"),
        feature_names=("x1", "x2"),
    )


def test_replace_keeps_configs_comparable() -> None:
    # Intents compare the config they produce with the running one to decide on a restart.
    assert replace(_relu(), model=_relu().model) == _relu()


# -- what a snapshot measures on a large split ----------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 40_000), seed=st.integers(0, 2**31 - 1), rows=st.integers(16, 9000))
def test_the_evaluation_sample_is_fixed_ascending_and_starts_with_the_table_rows(
    n: int, seed: int, rows: int
) -> None:
    sample = eval_rows(n, seed, rows)
    if n <= rows:
        assert sample is None
        return
    assert sample is not None
    assert len(sample) == rows and len(np.unique(sample)) == rows
    assert (np.diff(sample) > 0).all() and sample[0] >= 0 and sample[-1] < n
    assert sample[:PREDICTION_ROWS].tolist() == list(range(PREDICTION_ROWS))
    again = eval_rows(n, seed, rows)
    assert again is not None and (again == sample).all()


def large_run() -> Run:
    config = load_preset("relu-bn").config
    config = replace(
        config,
        data=replace(config.data, name="blobs", n=5 * EVAL_ROWS, classes=3, test_fraction=0.5),
    )
    config = replace(config, model=replace(config.model, output="softmax", loss="cross_entropy"))
    run = Run.build(validate(config, "test"))
    for _ in range(30):
        run.train_step()
    return run


def facts(state: State) -> LoopFacts:
    return LoopFacts(
        run_id=0,
        preset="test",
        state=state,
        previous=((), ()),
        steps_per_second=0.0,
        elapsed=0.0,
        message="",
        notice="",
        notice_id=0,
    )


def test_a_large_split_is_measured_on_its_sample_while_training_and_whole_at_the_end() -> None:
    run = large_run()
    assert run.eval_train is not None and run.X_test is not None and run.y_test is not None
    assert run.eval_test is not None
    sample, test_sample = run.eval_train, run.eval_test
    live = snapshot_of(run, facts("running"))
    assert live.accuracy == accuracy(run.net.predict(run.X[sample]), run.y[sample])
    assert live.test_accuracy == accuracy(
        run.net.predict(run.X_test[test_sample]), run.y_test[test_sample]
    )
    for state in ("finished", "diverged", "stopped", "error"):
        ended = snapshot_of(run, facts(state))  # type: ignore[arg-type]
        assert ended.accuracy == accuracy(run.net.predict(run.X), run.y)
        assert ended.test_accuracy == accuracy(run.net.predict(run.X_test), run.y_test)
        # The table shows the same first rows either way.
        assert ended.predictions == live.predictions
    # The sample estimates the whole: within a few points on 8,192 rows.
    assert abs(live.accuracy - ended.accuracy) < 0.03  # type: ignore[operator]
