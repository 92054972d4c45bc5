"""The trainer: runs to completion, determinism, commands on the background thread, immutable
snapshots, divergence, bad restarts, and bounded memory."""

from __future__ import annotations

import dataclasses
import functools
import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from bpmon.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from bpmon.presets import load_preset
from bpmon.telemetry import LayerStats
from bpmon.trainer import (
    HISTORY_POINTS,
    Command,
    LossHistory,
    Prediction,
    Snapshot,
    Trainer,
    accuracy,
)
from bpmon.trainer.run import RUNAWAY_FACTOR

THREAD_NAME = "bpmon-trainer"
FOREVER = 10**9  # epochs: a run that only ends when told to


def xor(epochs: int = 2000, **train: Any) -> RunConfig:
    return RunConfig(train=TrainConfig(epochs=epochs, **train))


def circle(epochs: int = 5, batch_size: int = 0, n: int = 100, **train: Any) -> RunConfig:
    return RunConfig(
        data=DataConfig(name="circle", n=n, seed=1),
        model=ModelConfig(hidden=(8, 8), activation="tanh", init="xavier"),
        train=TrainConfig(epochs=epochs, batch_size=batch_size, lr=0.1, **train),
    )


def diverging(epochs: int = 1000) -> RunConfig:
    """ReLU into an identity output under mse with lr 100, the largest allowed: diverges at
    once."""
    return RunConfig(
        data=DataConfig(name="circle", n=100, seed=1),
        model=ModelConfig(
            hidden=(8, 8), activation="relu", output="identity", loss="mse", init="he"
        ),
        train=TrainConfig(lr=100.0, epochs=epochs),
    )


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll ``predicate`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)


def went_round(trainer: Trainer, times: int = 3) -> None:
    """Wait until the training thread has taken ``times`` more commands off its queue, each a
    ``pause`` (nothing to do for a paused run), and published after each: the loop went round
    that often, which is when a paused loop that stepped anyway would have stepped. A
    deterministic stand-in for "wait a while and see that nothing happened"."""
    for _ in range(times):
        seen = trainer.latest()
        trainer.send(Command("pause"))
        wait_for(functools.partial(_published_since, trainer, seen), what="the loop to go round")


def _published_since(trainer: Trainer, seen: Snapshot) -> bool:
    return trainer.latest() is not seen


def trainer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


@pytest.fixture
def started() -> Iterator[Callable[..., Trainer]]:
    """Start trainers on their threads; every one is stopped at teardown, pass or fail."""
    trainers: list[Trainer] = []

    def start(config: RunConfig, **kwargs: Any) -> Trainer:
        trainer = Trainer(config, **kwargs)
        trainers.append(trainer)
        trainer.start()
        return trainer

    yield start
    for trainer in trainers:
        trainer.stop(timeout=2.0)
    assert not any(t.alive for t in trainers)


# --- run() in the calling thread ---------------------------------------------------------------


def test_run_to_completion_full_batch() -> None:
    snap = Trainer(xor(epochs=50)).run()
    assert snap.state == "finished"
    assert snap.epoch == snap.epochs == 50
    assert snap.step == 50  # full batch: one step per epoch
    assert math.isfinite(snap.loss)
    assert snap.loss_steps[-1] == 50 and snap.loss_values[-1] == snap.loss
    assert snap.diverged_step is None and snap.diverged_layer is None
    assert snap.architecture == "2-4-1"
    assert len(snap.layers) == len(snap.initial_layers) == 2


@pytest.mark.parametrize(
    ("n", "batch_size", "steps_per_epoch"),
    [(100, 32, 4), (100, 25, 4), (100, 30, 4), (100, 99, 2), (100, 100, 1), (100, 500, 1)],
)
def test_step_counts_with_mini_batches(n: int, batch_size: int, steps_per_epoch: int) -> None:
    assert steps_per_epoch == (math.ceil(n / batch_size) if batch_size < n else 1)
    trainer = Trainer(circle(epochs=5, batch_size=batch_size, n=n))
    assert trainer.n_train == n
    snap = trainer.run()
    assert snap.state == "finished"
    assert snap.epoch == 5
    assert snap.step == 5 * steps_per_epoch
    assert math.isfinite(snap.loss)


def test_run_with_a_step_budget_pauses_and_resumes() -> None:
    trainer = Trainer(circle(epochs=5, batch_size=32))
    snap = trainer.run(max_steps=6)
    assert (snap.state, snap.step, snap.epoch) == ("paused", 6, 1)
    snap = trainer.run(max_steps=8)
    assert (snap.state, snap.step, snap.epoch) == ("paused", 8, 2)
    snap = trainer.run()
    assert (snap.state, snap.step, snap.epoch) == ("finished", 20, 5)


def test_the_xor_story_preset_sits_on_the_saddle() -> None:
    preset = load_preset("xor-story")
    snap = Trainer(preset.config, preset.name).run()
    assert snap.state == "finished" and snap.epoch == 2000
    assert snap.preset == "xor-story"
    assert snap.loss == pytest.approx(0.125, abs=1e-3)


# --- determinism -------------------------------------------------------------------------------


@pytest.mark.parametrize("config", [xor(epochs=300), circle(epochs=10, batch_size=16)])
def test_same_config_same_numbers(config: RunConfig) -> None:
    a = Trainer(config).run()
    b = Trainer(config).run()
    assert a.loss_steps == b.loss_steps
    assert a.loss_values == b.loss_values
    assert a.loss == b.loss
    assert [p.output for p in a.predictions] == [p.output for p in b.predictions]


def test_a_different_seed_gives_different_numbers() -> None:
    a = Trainer(circle(epochs=3, batch_size=16)).run()
    b = Trainer(circle(epochs=3, batch_size=16, seed=1)).run()
    assert a.loss_values != b.loss_values


def test_restart_with_the_same_config_reproduces_the_run() -> None:
    config = circle(epochs=10, batch_size=16)
    trainer = Trainer(config)
    first = trainer.run(max_steps=25)
    assert first.step == 25
    trainer.run(max_steps=40)  # go past it, then start over
    trainer.send(Command("restart", config=config))
    again = trainer.run(max_steps=25)
    assert again.run_id == first.run_id + 1
    assert again.step == 25
    assert again.loss == first.loss
    assert again.loss_values == first.loss_values
    assert again.previous_loss_steps[-1] == 40


# --- the background thread ---------------------------------------------------------------------


def test_pause_resume_and_single_steps(started: Callable[..., Trainer]) -> None:
    trainer = started(xor(epochs=FOREVER))
    wait_for(lambda: trainer.latest().step > 0, what="the first step")

    trainer.send(Command("pause"))
    wait_for(lambda: trainer.latest().state == "paused", what="paused")
    paused_at = trainer.latest().step
    went_round(trainer)
    assert trainer.latest().step == paused_at
    assert trainer.latest().state == "paused"

    trainer.send(Command("step"))
    wait_for(lambda: trainer.latest().step != paused_at, what="one step")
    went_round(trainer)
    snap = trainer.latest()
    assert snap.step == paused_at + 1
    assert snap.state == "paused"

    trainer.send(Command("step"))
    trainer.send(Command("step"))
    wait_for(lambda: trainer.latest().step == paused_at + 3, what="two more steps")

    trainer.send(Command("resume"))
    wait_for(lambda: trainer.latest().state == "running", what="running")
    wait_for(lambda: trainer.latest().step > paused_at + 100, what="steps after resume")


def test_toggle_pause(started: Callable[..., Trainer]) -> None:
    trainer = started(xor(epochs=FOREVER))
    trainer.send(Command("toggle_pause"))
    wait_for(lambda: trainer.latest().state == "paused", what="paused")
    trainer.send(Command("toggle_pause"))
    wait_for(lambda: trainer.latest().state == "running", what="running")


def test_start_paused_waits_for_a_command(started: Callable[..., Trainer]) -> None:
    trainer = started(xor(epochs=FOREVER), start_paused=True)
    went_round(trainer)
    assert trainer.latest().state == "paused"
    assert trainer.latest().step == 0
    trainer.send(Command("step"))
    wait_for(lambda: trainer.latest().step == 1, what="one step")


def test_set_lr_keeps_the_run(started: Callable[..., Trainer]) -> None:
    trainer = started(xor(epochs=FOREVER))
    wait_for(lambda: trainer.latest().step > 0, what="the first step")
    run_id = trainer.latest().run_id
    trainer.send(Command("lr", 0.5))
    wait_for(lambda: trainer.latest().lr == 0.25, what="the new lr")
    snap = trainer.latest()
    assert snap.config.train.lr == 0.25
    assert snap.run_id == run_id
    assert snap.state == "running"
    step = snap.step
    wait_for(lambda: trainer.latest().step > step, what="training to go on")


def test_restart_with_another_activation(started: Callable[..., Trainer]) -> None:
    config = xor(epochs=FOREVER)
    trainer = started(config)
    wait_for(lambda: len(trainer.latest().loss_values) > 2, what="a loss curve")
    run_id = trainer.latest().run_id
    trainer.send(Command("restart", config=config.with_activation("tanh")))
    wait_for(lambda: trainer.latest().run_id != run_id, what="the restart")
    snap = trainer.latest()
    assert snap.run_id == run_id + 1
    assert snap.config.model.activation == "tanh"
    assert snap.previous_loss_values
    assert len(snap.previous_loss_values) == len(snap.previous_loss_steps)
    assert snap.state == "running"
    wait_for(lambda: trainer.latest().step > 10, what="the new run to train")
    assert trainer.latest().config.model.activation == "tanh"


def test_stop_in_the_middle_of_a_long_run(started: Callable[..., Trainer]) -> None:
    trainer = started(circle(epochs=FOREVER, batch_size=16))
    wait_for(lambda: trainer.latest().step > 10, what="training")
    assert trainer.alive
    assert trainer_threads()
    # The run has no end (FOREVER epochs): the thread ending at all is the stop working.
    trainer.stop()
    wait_for(lambda: not trainer.alive, what="the thread to end")
    assert not trainer_threads()
    assert trainer.latest().state == "stopped"


def test_stop_while_paused_and_after_finishing(started: Callable[..., Trainer]) -> None:
    paused = started(xor(epochs=FOREVER), start_paused=True)
    finished = started(xor(epochs=20))
    wait_for(lambda: finished.latest().state == "finished", what="the short run to finish")
    assert finished.latest().step == 20
    assert finished.alive  # a finished run keeps serving commands (a restart, say)
    # Both wait on the command queue, not for a step: stop wakes them.
    paused.stop()
    finished.stop()
    wait_for(lambda: not paused.alive and not finished.alive, what="both threads to end")
    assert not trainer_threads()


def test_snapshots_are_published_while_running(started: Callable[..., Trainer]) -> None:
    published: list[Snapshot] = []
    trainer = started(
        circle(epochs=FOREVER, batch_size=16), interval=0.05, on_snapshot=published.append
    )
    # The run never ends, so snapshots that keep coming are published while it runs, not at
    # an end; a reader fetching latest() sees them too.
    wait_for(lambda: len(published) >= 5, what="five snapshots")
    wait_for(lambda: trainer.latest().step > published[4].step, what="a newer snapshot to read")
    steps = [s.step for s in published[:5]]
    assert steps == sorted(set(steps)), steps
    assert all(s.state == "running" for s in published[:5])


# --- snapshots ---------------------------------------------------------------------------------


def _no_arrays(value: object, path: str = "snapshot") -> None:
    assert not isinstance(value, np.ndarray | np.generic | list | dict), (path, type(value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _no_arrays(getattr(value, f.name), f"{path}.{f.name}")
    elif isinstance(value, tuple):
        for i, item in enumerate(value):
            _no_arrays(item, f"{path}[{i}]")


def test_snapshots_are_immutable_plain_values() -> None:
    trainer = Trainer(circle(epochs=3, batch_size=16))
    snap = trainer.run()
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.loss = 0.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.state = "running"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.predictions[0].output = (1.0,)  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.layers[0].grad_norm = 0.0  # type: ignore[misc]
    assert type(snap.loss_values) is tuple and type(snap.loss_steps) is tuple
    assert all(type(v) is float for v in snap.loss_values)
    assert all(type(s) is int for s in snap.loss_steps)
    assert type(snap.predictions) is tuple and snap.predictions
    assert all(isinstance(p, Prediction) for p in snap.predictions)
    assert all(type(p.inputs) is tuple and type(p.output) is tuple for p in snap.predictions)
    assert type(snap.layers) is tuple and snap.layers
    assert all(isinstance(layer, LayerStats) for layer in snap.layers)
    _no_arrays(snap)
    # Training on does not reach into a snapshot already handed out.
    before = dataclasses.astuple(snap.layers[0]), snap.loss_values, snap.predictions
    trainer.send(Command("restart"))
    trainer.run(max_steps=5)
    assert (dataclasses.astuple(snap.layers[0]), snap.loss_values, snap.predictions) == before


def test_the_first_snapshot_before_any_step() -> None:
    snap = Trainer(xor(), start_paused=True).latest()
    assert isinstance(snap, Snapshot)
    assert snap.state == "paused"
    assert snap.step == 0 and snap.epoch == 0
    assert snap.layers == () and snap.loss_values == ()
    assert len(snap.predictions) == 4


def test_predictions_are_capped_at_sixteen_rows() -> None:
    snap = Trainer(circle(epochs=1)).run()
    assert len(snap.predictions) == 16
    for p in snap.predictions:
        assert p.correct == (p.target == p.predicted)


# --- divergence and errors ---------------------------------------------------------------------


def test_divergence_in_the_calling_thread() -> None:
    with np.errstate(all="ignore"):
        snap = Trainer(diverging()).run()
    assert snap.state == "diverged"
    # Non-finite, or a runaway: more than RUNAWAY_FACTOR times the first step's loss.
    assert not math.isfinite(snap.loss) or snap.loss > RUNAWAY_FACTOR * snap.loss_values[0]
    assert snap.diverged_step is not None and 1 <= snap.diverged_step <= 1000
    assert snap.diverged_layer in {"layer0", "layer1", "layer2"}
    assert snap.step < 1000


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_divergence_on_the_thread_keeps_serving_commands(
    started: Callable[..., Trainer],
) -> None:
    config = diverging()
    trainer = started(config)  # (np.errstate would not reach the trainer's thread)
    wait_for(lambda: trainer.latest().state == "diverged", what="divergence")
    snap = trainer.latest()
    assert not math.isfinite(snap.loss) or snap.loss > RUNAWAY_FACTOR * snap.loss_values[0]
    assert snap.diverged_step is not None and snap.diverged_step >= 1
    assert snap.diverged_layer is not None and snap.diverged_layer.startswith("layer")
    assert trainer.alive

    trainer.send(Command("restart", config=config.with_lr(0.001)))
    wait_for(lambda: trainer.latest().run_id == snap.run_id + 1, what="the restart")
    wait_for(lambda: trainer.latest().step > 5, what="the sane run to train")
    snap = trainer.latest()
    assert snap.state in ("running", "finished")
    assert math.isfinite(snap.loss)
    assert snap.diverged_step is None and snap.diverged_layer is None


def test_a_bad_restart_does_not_kill_the_thread(started: Callable[..., Trainer]) -> None:
    config = xor(epochs=FOREVER)
    trainer = started(config)
    wait_for(lambda: trainer.latest().step > 0, what="training")
    # The dataclasses accept it; the network cannot be built (bce is computed from logits).
    bad = dataclasses.replace(
        config, model=dataclasses.replace(config.model, loss="bce", output="identity")
    )
    trainer.send(Command("restart", config=bad))
    wait_for(lambda: trainer.latest().message != "", what="a message")
    snap = trainer.latest()
    assert "bce" in snap.message
    assert trainer.alive
    # Either the old run carries on, or the trainer stopped: never running the broken config.
    assert snap.run_id == 0
    assert snap.config == config
    assert snap.state != "running" or snap.config.model.loss == "mse"

    trainer.send(Command("restart", config=config.with_activation("tanh")))
    wait_for(lambda: trainer.latest().run_id == 1, what="a good restart")
    wait_for(lambda: trainer.latest().step > 0, what="training")
    snap = trainer.latest()
    assert snap.state == "running" and snap.message == ""


def test_a_restart_with_missing_data_does_not_kill_the_thread(
    started: Callable[..., Trainer], tmp_path: Any
) -> None:
    config = xor(epochs=FOREVER)
    trainer = started(config)
    wait_for(lambda: trainer.latest().step > 0, what="training")
    missing = str(tmp_path / "gone.csv")
    bad = dataclasses.replace(config, data=DataConfig(name="csv", path=missing))
    trainer.send(Command("restart", config=bad))
    wait_for(lambda: trainer.latest().message != "", what="a message")
    snap = trainer.latest()
    assert "gone.csv" in snap.message
    assert trainer.alive
    assert snap.config == config and snap.run_id == 0
    trainer.send(Command("restart", config=config))
    wait_for(lambda: trainer.latest().run_id == 1, what="a good restart")
    wait_for(lambda: trainer.latest().state == "running", what="running")


# --- bounded memory ----------------------------------------------------------------------------


def test_loss_history_is_bounded_and_spans_the_run() -> None:
    history = LossHistory(capacity=512)
    total = 10**5
    for step in range(1, total + 1):
        history.add(step, 1.0 / step)
        assert len(history.steps) <= 512
    assert len(history.steps) == len(history.values)
    assert len(history.steps) >= 512 // 4  # thinned, not emptied
    assert history.steps[0] in (0, 1)
    assert history.steps[-1] >= total - 2 * history.stride
    assert history.steps[-1] >= 0.99 * total
    assert history.steps == sorted(set(history.steps))
    assert all(v == 1.0 / s for s, v in zip(history.steps, history.values, strict=True))
    # Spread over the run, no hole wider than a few strides.
    gaps = np.diff(history.steps)
    assert gaps.max() <= 4 * history.stride


def test_loss_history_keeps_everything_below_capacity() -> None:
    history = LossHistory(capacity=64)
    for step in range(1, 51):
        history.add(step, float(step))
    assert history.steps == list(range(1, 51))


def test_a_long_run_keeps_a_bounded_curve() -> None:
    snap = Trainer(xor(epochs=20_000)).run()
    assert snap.step == 20_000
    assert 0 < len(snap.loss_values) <= HISTORY_POINTS <= 512
    assert len(snap.loss_steps) == len(snap.loss_values)
    assert snap.loss_steps[0] in (0, 1)
    assert snap.loss_steps[-1] >= 19_000


# --- accuracy ----------------------------------------------------------------------------------


def test_accuracy_binary() -> None:
    y = np.array([[0.0], [1.0], [1.0], [0.0]])
    assert accuracy(np.array([[0.1], [0.9], [0.6], [0.4]]), y) == 1.0
    assert accuracy(np.array([[0.9], [0.9], [0.6], [0.4]]), y) == 0.75
    assert accuracy(np.array([[0.5], [0.5], [0.5], [0.5]]), y) == 0.5  # 0.5 is not > 0.5
    assert accuracy(1.0 - y, y) == 0.0


def test_accuracy_one_hot() -> None:
    y = np.eye(3)[[0, 1, 2, 2]]
    out = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.5, 0.3], [0.0, 0.1, 0.9]])
    assert accuracy(out, y) == 0.75
    assert accuracy(y, y) == 1.0
    assert type(accuracy(out, y)) is float
