"""The training loop and what it tells the outside world.

The :class:`Trainer` runs one :class:`~bpmon.trainer.run.Run` at a time and talks to consumers
(the TUI, the headless CLI, the benchmark) in two ways only:

- it *publishes* immutable :class:`~bpmon.trainer.snapshot.Snapshot` values at a time cadence
  (``interval`` seconds, not every step), by rebinding one attribute that readers fetch with
  :meth:`Trainer.latest`; each is handed on through a ``stage`` first, when it has one (the
  launcher's diagnosis, :func:`bpmon.launch.live_trainer`, which adds the findings), so the
  trainer never calls up into what reads its snapshots;
- it *receives* :class:`~bpmon.trainer.commands.Command` values through a :class:`queue.Queue`.

Nothing else is shared between threads. The per-step path is kept lean because the monitor must
not slow the training it watches: one step of the run, a cheap ``Queue.empty()`` check and a
clock read. Its state changes only through :func:`bpmon.trainer.states.after`.

A live run may be *paced* (``pace`` steps per second, ``<`` ``>`` in the monitor) so that a
person can watch each step: the loop then waits for each step's time on the command queue
(so that a key is answered at once, never after a blind sleep) and, when the steps come no
faster than snapshots are due, publishes after every step. Full speed (``pace`` = inf, the
default) takes the unpaced path, which does no work per step for pacing.
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from bpmon.config import RunConfig, validate
from bpmon.data import Dataset
from bpmon.errors import BpmonError
from bpmon.trainer.boundary import BoundaryFeed
from bpmon.trainer.commands import (
    RESTARTING_INTENTS,
    TRAINER_COMMANDS,
    Command,
    CommandKind,
    apply_intent,
    next_pace,
)
from bpmon.trainer.handle import TrainerHandle
from bpmon.trainer.run import Run
from bpmon.trainer.snapshot import LoopFacts, Snapshot, snapshot_of
from bpmon.trainer.states import Event, State, after

# The steps/s figure is re-measured over at least this many seconds, so it does not flicker.
RATE_WINDOW = 0.05


class Trainer(TrainerHandle):
    """Runs training for one :class:`RunConfig`, in its own thread or in the caller's.

    ``start()``/``stop()`` run the loop on a background thread (the TUI); ``run()`` runs it in the
    calling thread until the epochs are done or it diverges (the headless CLI, the benchmark).
    ``pace`` (steps per second, inf for full speed) applies to the background thread only.
    ``stage`` turns each snapshot into the one published (the launcher adds the findings there),
    on the training thread and in publishing order: what :meth:`latest` returns and
    ``on_snapshot`` sees is its result. ``on_snapshot`` is called on the training thread with
    each published snapshot. The config
    is checked by :func:`bpmon.config.validate`; a bad one raises :class:`BpmonError`.
    """

    def __init__(
        self,
        config: RunConfig,
        preset: str = "",
        interval: float = 0.1,
        on_snapshot: Callable[[Snapshot], None] | None = None,
        data: Dataset | None = None,
        start_paused: bool = False,
        pace: float = math.inf,
        stage: Callable[[Snapshot], Snapshot] | None = None,
    ) -> None:
        if not pace > 0:
            raise ValueError(f"pace must be > 0 steps per second, not {pace!r}")
        self.preset = preset
        self.interval = interval
        self._pace = pace
        # When the next paced step, and at fast paces the next snapshot, are due (perf_counter).
        self._pace_due = 0.0
        self._publish_due = 0.0
        self.on_snapshot = on_snapshot
        self._stage = stage
        self._commands: queue.Queue[Command] = queue.Queue()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._state: State = "paused" if start_paused else "running"
        self._run_id = 0
        self._previous: tuple[tuple[int, ...], tuple[float, ...]] = ((), ())
        self._message = ""
        self._notice = ""
        self._notice_id = 0
        self._t_start = time.perf_counter()
        self._rate = 0.0
        self._rate_mark = (self._t_start, 0)
        self._run = Run.build(validate(config, preset or "config"), data)
        # The decision boundary, computed only while a consumer has asked for it (key v).
        self._boundary = BoundaryFeed()
        if self._run.data.notes:
            # What the data module assumed about a user's file: said once, at the start.
            self._say("data: " + "; ".join(self._run.data.notes))
        self._latest = replace(self._snapshot(), pace=pace)

    def run(self, max_steps: int | None = None) -> Snapshot:
        """Train in the calling thread until finished, diverged, stopped or ``max_steps``."""
        budget = math.inf if max_steps is None else max_steps
        self._event("resume")
        self._drain()
        with _quiet_numpy():
            while self._state == "running" and self._run.step < budget:
                self._steps_until_due(budget)
                self._drain()
            if self._state == "running":
                # Budget reached: the loop held back its last publish so that this step is
                # published once, already as paused (one --record line per snapshot, not two).
                self._event("pause")
                return self._publish()
        return self._latest

    # -- the training thread -------------------------------------------------------------------

    def _serve(self) -> None:
        with _quiet_numpy():
            while self._state != "stopped" and not self._stopping.is_set():
                try:
                    if self._state == "running":
                        if self._pace == math.inf:
                            self._steps_until_due()
                        else:
                            self._paced_step()
                        self._drain()
                    else:
                        self._handle(self._commands.get())
                except Exception as exc:  # the app stays up: the user sees why and can restart
                    self._event("fail")
                    self._message = f"{type(exc).__name__}: {exc}"
                    self._publish_safely()

    def _event(self, event: Event) -> None:
        self._state = after(self._state, event)

    def _steps_until_due(self, limit: float = math.inf) -> None:
        """Train until a snapshot is due, the run ends, a command arrives or the step count
        reaches ``limit``; then publish (except at ``limit``, see :meth:`run`)."""
        run = self._run
        due = time.perf_counter() + self.interval
        clock = time.perf_counter
        pending = self._commands.empty
        while True:
            outcome = run.train_step()
            if outcome is not None:
                self._event(outcome)
                break
            if run.step >= limit:
                return
            if run.step == 1 or clock() >= due or not pending():
                break
        self._publish()

    def _paced_step(self) -> None:
        """Wait for the next step's time on the command queue, handling what arrives; at its
        time, train one step and publish it (or, at paces faster than snapshots are due, publish
        on their cadence)."""
        now = time.perf_counter()
        if now < self._pace_due:
            try:
                command = self._commands.get(timeout=self._pace_due - now)
            except queue.Empty:
                return
            self._handle(command)
            return
        period = 1.0 / self._pace
        # On time: the next step keeps the schedule (wake-up delays do not add up); late (a
        # slow step, a pause, the start): the next is a period from now, no burst to catch up.
        on_time = now - self._pace_due < period
        self._pace_due = (self._pace_due if on_time else now) + period
        run = self._run
        outcome = run.train_step()
        if outcome is not None:
            self._event(outcome)
        elif period < self.interval and run.step > 1 and now < self._publish_due:
            # Steps faster than snapshots are due: publish on the time cadence, as at full
            # speed (a frame could not show every step anyway).
            return
        self._publish_due = now + self.interval
        self._publish()

    def _drain(self) -> None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            self._handle(command)

    def _handle(self, command: Command) -> None:
        # One handler per kind the trainer takes (TRAINER_COMMANDS, from the action table):
        # HANDLERS, below the class, is checked against it at import. A kind it does not take
        # (a replay's cursor) does nothing, as supports() says.
        handler = HANDLERS.get(command.kind)
        if handler is not None:
            handler(self, command)
        self._publish()

    def _on_stop(self, command: Command) -> None:
        self._event("stop")

    def _on_restart(self, command: Command) -> None:
        run_id = self._run_id
        self._restart(command.config or self._run.config, "restart")
        if self._run_id != run_id and isinstance(command.value, str):
            # Another preset, chosen in the command palette: the status line names it.
            self.preset = command.value

    def _on_pace(self, command: Command) -> None:
        if command.value is not None:
            pace = float(command.value)
            if pace > 0:
                self._pace = pace
            else:
                self._say(f"The pace must be more than 0 steps/s, not {command.value!r}.")
        else:
            self._pace, notice = next_pace(self._pace, command.amount)
            if notice:
                self._say(notice)
        self._pace_due = time.perf_counter()

    def _on_pause(self, command: Command) -> None:
        kind = command.kind
        self._event(
            "toggle" if kind == "toggle_pause" else "pause" if kind == "pause" else "resume"
        )

    def _on_boundary(self, command: Command) -> None:
        why = self._boundary.ask(command.amount > 0, self._run.data)
        if why:
            self._say(why)

    def _on_step(self, command: Command) -> None:
        if self._state == "paused":
            outcome = self._run.train_step()
            if outcome is not None:
                self._event(outcome)

    def _apply(self, command: Command) -> None:
        try:
            config, notice = apply_intent(self._run.config, command)
        except BpmonError as exc:
            self._say(str(exc))
            return
        if notice:
            self._say(notice)
        if command.kind == "lr":
            self._run.opt.lr = config.train.lr
            self._run.config = config
        else:
            self._restart(config, f"key {command.kind}")

    def _say(self, notice: str) -> None:
        self._notice = notice
        self._notice_id += 1

    def _restart(self, config: RunConfig, source: str) -> None:
        """A fresh network from the config's seed; the old curve is kept for comparison."""
        old = self._run
        try:
            data = old.data if config.data == old.config.data else None
            self._run = Run.build(validate(config, source), data)
        except (BpmonError, OSError) as exc:
            self._message = f"cannot restart: {exc}"
            return
        self._rate_mark = (time.perf_counter(), 0)
        self._previous = (tuple(old.history.steps), tuple(old.history.values))
        self._run_id += 1
        self._message = ""
        self._event("restart")

    def _publish(self) -> Snapshot:
        snapshot = replace(self._snapshot(), pace=self._pace)
        if self._stage is not None:
            snapshot = self._stage(snapshot)
        self._latest = snapshot
        if self.on_snapshot is not None:
            self.on_snapshot(snapshot)
        return snapshot

    def _publish_safely(self) -> None:
        """After a failure the run's arrays may be what failed: publish the last snapshot with
        the new state and message rather than computing a new one."""
        self._latest = replace(self._latest, state=self._state, message=self._message)

    def _snapshot(self) -> Snapshot:
        run = self._run
        now = time.perf_counter()
        t0, s0 = self._rate_mark
        if now - t0 >= RATE_WINDOW and run.step > s0:
            self._rate = (run.step - s0) / (now - t0)
            self._rate_mark = (now, run.step)
        elif run.step < s0:
            self._rate_mark = (now, run.step)
        return snapshot_of(
            run,
            LoopFacts(
                run_id=self._run_id,
                preset=self.preset,
                state=self._state,
                previous=self._previous,
                steps_per_second=self._rate,
                elapsed=now - self._t_start,
                message=self._message,
                notice=self._notice,
                notice_id=self._notice_id,
                boundary=self._boundary.of(
                    run.net, run.data, run.step, now, self._state == "running"
                ),
            ),
        )


def _quiet_numpy() -> contextlib.AbstractContextManager[object]:
    """Overflow and NaN are expected in a diverging run, and the trainer reports them itself
    (state "diverged" with step and layer); NumPy's warnings would only scribble over the
    terminal. ``errstate`` is per thread, so each training thread enters this itself."""
    return np.errstate(all="ignore")


# The trainer's dispatch: a handler for each kind it takes.
HANDLERS: dict[CommandKind, Callable[[Trainer, Command], None]] = {
    "stop": Trainer._on_stop,
    "restart": Trainer._on_restart,
    **dict.fromkeys((*RESTARTING_INTENTS, "lr"), Trainer._apply),
    "pace": Trainer._on_pace,
    **dict.fromkeys(("toggle_pause", "pause", "resume"), Trainer._on_pause),
    "boundary": Trainer._on_boundary,
    "step": Trainer._on_step,
}
if HANDLERS.keys() != TRAINER_COMMANDS:
    raise ImportError(
        f"bpmon.trainer.loop: no handler for {sorted(TRAINER_COMMANDS - HANDLERS.keys())}"
    )
