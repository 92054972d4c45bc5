"""The training loop and what it tells the outside world.

The trainer owns the network, the data and the optimiser, and is the only code that touches
them. It talks to consumers (the TUI, the headless CLI, the benchmark) in two ways only:

- it *publishes* immutable :class:`Snapshot` values at a time cadence (``interval`` seconds,
  not every step), by rebinding one attribute that readers fetch with :meth:`Trainer.latest`;
- it *receives* :class:`Command` values through a :class:`queue.Queue`.

Nothing else is shared between threads. A snapshot holds only tuples, floats and strings, so a
reader on another thread can never see an array the loop is writing into.

The per-step path is kept lean because the monitor must not slow the training it watches:
one forward/backward, one optimiser step, a finiteness check of the scalar loss, a cheap
``Queue.empty()`` check and a clock read. Telemetry, accuracy and predictions are computed only
when a snapshot is due.
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from bpmon.config import RunConfig, architecture
from bpmon.data import Dataset, load_dataset
from bpmon.engine.activations import Array
from bpmon.engine.network import Network
from bpmon.engine.optimizers import Optimizer, make_optimizer
from bpmon.errors import BpmonError
from bpmon.telemetry import LayerStats, collect, first_nonfinite_layer

State = Literal["running", "paused", "finished", "diverged", "error", "stopped"]
CommandKind = Literal["pause", "resume", "toggle_pause", "step", "restart", "set_lr", "stop"]

PREDICTION_ROWS = 16
HISTORY_POINTS = 512


@dataclass(frozen=True)
class Command:
    """A request to the training thread; ``config`` goes with restart, ``lr`` with set_lr."""

    kind: CommandKind
    config: RunConfig | None = None
    lr: float | None = None


@dataclass(frozen=True)
class Prediction:
    """One row of the prediction table. ``output`` is the network's output row (one probability
    for a binary task, one per class otherwise); ``target`` and ``predicted`` are class indices."""

    inputs: tuple[float, ...]
    target: int
    output: tuple[float, ...]
    predicted: int
    correct: bool


@dataclass(frozen=True)
class Snapshot:
    """Everything a consumer may show about a run at one moment; immutable, plain values."""

    run_id: int
    preset: str
    config: RunConfig
    architecture: str
    state: State
    step: int
    epoch: int
    epochs: int
    loss: float
    loss_steps: tuple[int, ...]
    loss_values: tuple[float, ...]
    previous_loss_steps: tuple[int, ...]
    previous_loss_values: tuple[float, ...]
    layers: tuple[LayerStats, ...]
    initial_layers: tuple[LayerStats, ...]
    accuracy: float | None
    test_accuracy: float | None
    predictions: tuple[Prediction, ...]
    classes: tuple[str, ...]
    steps_per_second: float
    lr: float
    elapsed: float
    diverged_step: int | None = None
    diverged_layer: str | None = None
    message: str = ""

    @property
    def switches(self) -> str:
        """``"2-8-8-4-1 relu +bn"``: the architecture with the switches a user can flip."""
        bn = " +bn" if self.config.model.batchnorm else ""
        return f"{self.architecture} {self.config.model.activation}{bn}"


class LossHistory:
    """The loss curve in bounded memory: every ``stride``-th step is kept, and when the buffer
    fills, every other point is dropped and the stride doubles. However long the run, it holds
    at most ``capacity`` points spread evenly over the whole run."""

    def __init__(self, capacity: int = HISTORY_POINTS) -> None:
        self.capacity = capacity
        self.stride = 1
        self.steps: list[int] = []
        self.values: list[float] = []

    def add(self, step: int, loss: float) -> None:
        if step % self.stride:
            return
        self.steps.append(step)
        self.values.append(loss)
        if len(self.steps) >= self.capacity:
            del self.steps[1::2], self.values[1::2]
            self.stride *= 2


def accuracy(output: Array, y: Array) -> float:
    """Fraction right: threshold 0.5 for a single output, argmax for one-hot targets."""
    if y.shape[1] == 1:
        return float(np.mean((output > 0.5) == (y > 0.5)))
    return float(np.mean(np.argmax(output, axis=1) == np.argmax(y, axis=1)))


def build_network(config: RunConfig, data: Dataset) -> Network:
    m = config.model
    sizes = (data.n_inputs, *m.hidden, data.n_outputs)
    return Network(
        sizes,
        activation=m.activation,
        output=m.output,
        batchnorm=m.batchnorm,
        init=m.init,
        loss=m.loss,
        seed=config.train.seed,
        init_std=m.init_std,
        bn_eps=m.bn_eps,
        bn_momentum=m.bn_momentum,
        dtype=m.dtype,
    )


def build_optimizer(config: RunConfig, net: Network) -> Optimizer:
    t = config.train
    return make_optimizer(
        t.optimizer, net.params, net.grads, t.lr, t.momentum, t.beta1, t.beta2, t.adam_eps
    )


@dataclass
class _Run:
    """The mutable state of one run; lives on the training thread only."""

    config: RunConfig
    data: Dataset
    net: Network
    opt: Optimizer
    X: Array
    y: Array
    X_test: Array | None
    y_test: Array | None
    rng: np.random.Generator
    history: LossHistory = field(default_factory=LossHistory)
    step: int = 0
    epoch: int = 0
    loss: float = math.nan
    initial_layers: tuple[LayerStats, ...] = ()
    diverged_step: int | None = None
    diverged_layer: str | None = None
    order: NDArray[np.intp] | None = None  # this epoch's sample order, for mini-batches


class Trainer:
    """Runs training for one :class:`RunConfig`, in its own thread or in the caller's.

    ``start()``/``stop()`` run the loop on a background thread (the TUI); ``run()`` runs it in the
    calling thread until the epochs are done or it diverges (the headless CLI, the benchmark).
    ``on_snapshot`` is called on the training thread with each published snapshot.
    """

    def __init__(
        self,
        config: RunConfig,
        preset: str = "",
        interval: float = 0.1,
        on_snapshot: Callable[[Snapshot], None] | None = None,
        data: Dataset | None = None,
        start_paused: bool = False,
    ) -> None:
        self.preset = preset
        self.interval = interval
        self.on_snapshot = on_snapshot
        self._commands: queue.Queue[Command] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._state: State = "paused" if start_paused else "running"
        self._run_id = 0
        self._previous: tuple[tuple[int, ...], tuple[float, ...]] = ((), ())
        self._message = ""
        self._t_start = time.perf_counter()
        self._rate = 0.0
        self._rate_mark = (self._t_start, 0)
        self._run = self._new_run(config, data)
        self._latest = self._snapshot()

    # -- the consumer's side -------------------------------------------------------------------

    def latest(self) -> Snapshot:
        """The most recently published snapshot (safe from any thread)."""
        return self._latest

    def send(self, command: Command) -> None:
        self._commands.put(command)

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("trainer already started")
        self._thread = threading.Thread(target=self._serve, name="bpmon-trainer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Ask the loop to stop and wait for its thread; a step takes microseconds to
        milliseconds, so this returns almost at once."""
        self._commands.put(Command("stop"))
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def n_train(self) -> int:
        """Training samples in the current run (for turning epochs into steps)."""
        return int(self._run.X.shape[0])

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run(self, max_steps: int | None = None) -> Snapshot:
        """Train in the calling thread until finished, diverged, stopped or ``max_steps``."""
        budget = math.inf if max_steps is None else max_steps
        if self._state == "paused":
            self._state = "running"
        self._drain()
        with _quiet_numpy():
            while self._state == "running" and self._run.step < budget:
                self._steps_until_due(budget)
                self._drain()
            if self._state == "running":
                # Budget reached: the loop held back its last publish so that this step is
                # published once, already as paused (one --record line per snapshot, not two).
                self._state = "paused"
                return self._publish()
        return self._latest

    # -- the training thread -------------------------------------------------------------------

    def _serve(self) -> None:
        with _quiet_numpy():
            self._serve_commands()

    def _serve_commands(self) -> None:
        while self._state != "stopped":
            try:
                if self._state == "running":
                    self._steps_until_due()
                    self._drain()
                else:
                    self._handle(self._commands.get())
            except Exception as exc:  # the app stays up: the user sees the message and can restart
                self._state = "error"
                self._message = f"{type(exc).__name__}: {exc}"
                self._latest = replace(self._latest, state="error", message=self._message)

    def _steps_until_due(self, limit: float = math.inf) -> None:
        """Train until a snapshot is due, the epochs are done, a command arrives or the step
        count reaches ``limit``."""
        run = self._run
        due = time.perf_counter() + self.interval
        clock = time.perf_counter
        pending = self._commands.empty
        while True:
            if not self._step(run):
                break
            if run.step >= limit and self._state == "running":
                return
            if run.step == 1 or clock() >= due or not pending():
                break
        self._publish()

    def _step(self, run: _Run) -> bool:
        """One optimiser step (one epoch for full batch); False when the run cannot go on."""
        bs = run.config.train.batch_size
        n = run.X.shape[0]
        if 0 < bs < n:
            pos = run.step % math.ceil(n / bs)
            if pos == 0 or run.order is None:
                run.order = run.rng.permutation(n)
            idx = run.order[pos * bs : (pos + 1) * bs]
            loss = run.net.forward_backward(run.X[idx], run.y[idx])
            epoch_done = (pos + 1) * bs >= n
        else:
            loss = run.net.forward_backward(run.X, run.y)
            epoch_done = True
        if not math.isfinite(loss):
            run.loss = loss
            run.diverged_step = run.step + 1
            run.diverged_layer = first_nonfinite_layer(run.net)
            self._state = "diverged"
            return False
        run.opt.step()
        run.step += 1
        run.loss = loss
        run.history.add(run.step, loss)
        if epoch_done:
            run.epoch += 1
        if run.step == 1:
            run.initial_layers = collect(run.net, run.opt, run.config.thresholds)
        if run.epoch >= run.config.train.epochs:
            self._state = "finished"
            return False
        return True

    def _drain(self) -> None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            self._handle(command)

    def _handle(self, command: Command) -> None:
        kind = command.kind
        if kind == "stop":
            self._state = "stopped"
            self._publish()
            return
        if kind == "restart":
            self._restart(command.config or self._run.config)
        elif kind == "set_lr" and command.lr is not None:
            self._run.opt.lr = command.lr
            self._run.config = self._run.config.with_lr(command.lr)
        elif kind == "pause" and self._state == "running":
            self._state = "paused"
        elif kind == "resume" and self._state == "paused":
            self._state = "running"
        elif kind == "toggle_pause" and self._state in ("running", "paused"):
            self._state = "paused" if self._state == "running" else "running"
        elif kind == "step" and self._state == "paused":
            self._step(self._run)
        self._publish()

    def _restart(self, config: RunConfig) -> None:
        """A fresh network from the config's seed; the old curve is kept for comparison."""
        old = self._run
        try:
            data = old.data if config.data == old.config.data else None
            self._run = self._new_run(config, data)
        except (ValueError, OSError, BpmonError) as exc:
            self._message = f"cannot restart: {exc}"
            return
        self._previous = (tuple(old.history.steps), tuple(old.history.values))
        self._run_id += 1
        self._message = ""
        self._state = "running" if self._state != "stopped" else "stopped"

    def _new_run(self, config: RunConfig, data: Dataset | None) -> _Run:
        data = data or load_dataset(config.data)
        net = build_network(config, data)
        dtype = net.dtype
        X_test = None if data.X_test is None else data.X_test.astype(dtype)
        y_test = None if data.y_test is None else data.y_test.astype(dtype)
        self._rate_mark = (time.perf_counter(), 0)
        return _Run(
            config=config,
            data=data,
            net=net,
            opt=build_optimizer(config, net),
            X=np.ascontiguousarray(data.X_train, dtype=dtype),
            y=np.ascontiguousarray(data.y_train, dtype=dtype),
            X_test=X_test,
            y_test=y_test,
            rng=np.random.default_rng(config.train.seed),
        )

    def _publish(self) -> Snapshot:
        snapshot = self._snapshot()
        self._latest = snapshot
        if self.on_snapshot is not None:
            self.on_snapshot(snapshot)
        return snapshot

    def _snapshot(self) -> Snapshot:
        run = self._run
        now = time.perf_counter()
        t0, s0 = self._rate_mark
        if now - t0 >= 0.05 and run.step > s0:
            self._rate = (run.step - s0) / (now - t0)
            self._rate_mark = (now, run.step)
        elif run.step < s0:
            self._rate_mark = (now, run.step)
        started = run.step > 0
        layers = collect(run.net, run.opt, run.config.thresholds) if started else ()
        out = run.net.predict(run.X)
        acc = accuracy(out, run.y)
        test_acc = None
        if run.X_test is not None and run.y_test is not None:
            test_acc = accuracy(run.net.predict(run.X_test), run.y_test)
        return Snapshot(
            run_id=self._run_id,
            preset=self.preset,
            config=run.config,
            architecture=architecture(run.net.sizes),
            state=self._state,
            step=run.step,
            epoch=run.epoch,
            epochs=run.config.train.epochs,
            loss=run.loss,
            loss_steps=tuple(run.history.steps),
            loss_values=tuple(run.history.values),
            previous_loss_steps=self._previous[0],
            previous_loss_values=self._previous[1],
            layers=layers,
            initial_layers=run.initial_layers,
            accuracy=acc,
            test_accuracy=test_acc,
            predictions=_predictions(run.X, run.y, out),
            classes=run.data.classes,
            steps_per_second=self._rate,
            lr=run.opt.lr,
            elapsed=now - self._t_start,
            diverged_step=run.diverged_step,
            diverged_layer=run.diverged_layer,
            message=self._message,
        )


def _quiet_numpy() -> contextlib.AbstractContextManager[object]:
    """Overflow and NaN are expected in a diverging run, and the trainer reports them itself
    (state "diverged" with step and layer); NumPy's warnings would only scribble over the
    terminal. ``errstate`` is per thread, so each training thread enters this itself."""
    return np.errstate(all="ignore")


def _predictions(X: Array, y: Array, out: Array) -> tuple[Prediction, ...]:
    rows = []
    for i in range(min(PREDICTION_ROWS, X.shape[0])):
        if y.shape[1] == 1:
            target, predicted = int(y[i, 0] > 0.5), int(out[i, 0] > 0.5)
        else:
            target, predicted = int(np.argmax(y[i])), int(np.argmax(out[i]))
        rows.append(
            Prediction(
                inputs=tuple(float(v) for v in X[i]),
                target=target,
                output=tuple(float(v) for v in out[i]),
                predicted=predicted,
                correct=target == predicted,
            )
        )
    return tuple(rows)
