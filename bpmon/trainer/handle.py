"""The consumer's side of a :class:`~bpmon.trainer.loop.Trainer`: what another thread (the
monitor, the headless CLI) calls: the latest snapshot, commands in, which commands apply, start
and stop of the training thread, and a few facts of the run. Only these cross threads: a
snapshot by rebinding one attribute, commands through a :class:`queue.Queue`, the stop through
an :class:`threading.Event` (see :mod:`bpmon.trainer.loop`)."""

from __future__ import annotations

import queue
import threading
from typing import TYPE_CHECKING

from bpmon.trainer.commands import TRAINER_COMMANDS, Command, CommandKind

if TYPE_CHECKING:
    from bpmon.trainer.run import Run
    from bpmon.trainer.snapshot import Snapshot


class TrainerHandle:
    """The methods other threads call; the fields are set by ``Trainer.__init__``."""

    _latest: Snapshot
    _commands: queue.Queue[Command]
    _stopping: threading.Event
    _thread: threading.Thread | None
    _pace: float
    _run: Run

    def _serve(self) -> None:
        """The training thread's loop (:class:`~bpmon.trainer.loop.Trainer`'s)."""
        raise NotImplementedError

    def latest(self) -> Snapshot:
        """The most recently published snapshot (safe from any thread)."""
        return self._latest

    def send(self, command: Command) -> None:
        self._commands.put(command)

    def supports(self, kind: CommandKind) -> bool:
        """Whether :meth:`send` does something with commands of ``kind``."""
        return kind in TRAINER_COMMANDS

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("trainer already started")
        self._thread = threading.Thread(target=self._serve, name="bpmon-trainer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Ask the loop to stop and wait up to ``timeout`` seconds for its thread. A step cannot
        be interrupted halfway, so a long one may outlast the wait; the thread is a daemon and
        stops at the end of that step (or with the process)."""
        # The event ends the loop at its next step even with commands queued before this one.
        self._stopping.set()
        self._commands.put(Command("stop"))
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def n_train(self) -> int:
        """Training samples in the current run."""
        return int(self._run.X.shape[0])

    @property
    def steps_per_epoch(self) -> int:
        """Optimiser steps in one epoch of the current run (1 for full batch)."""
        return self._run.steps_per_epoch

    @property
    def pace(self) -> float:
        """Steps per second of the background thread's loop (inf: full speed)."""
        return self._pace

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
