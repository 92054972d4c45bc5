"""The states of a training run and every transition between them, in one table.

A run is ``running`` or ``paused`` while it can still train; it ends ``finished`` (its epochs
are done), ``diverged`` (the loss stopped being a number, or grew without bound) or ``error``
(a step raised); ``stopped`` means the trainer was told to stop and serves nothing more. Any
ended run can be restarted. An event that a state has no entry for leaves the state as it is:
pausing a finished run, for example, does nothing.
"""

from __future__ import annotations

from typing import Literal

from bpmon.runmodel import STATES, State

__all__ = ["STATES", "TRANSITIONS", "Event", "State", "after"]

Event = Literal[
    "pause",  # a user's pause, or run() reaching its step budget
    "resume",  # a user's resume, or run() asked to train on
    "toggle",  # the space key
    "finish",  # the last epoch is done
    "diverge",  # a non-finite or runaway loss
    "fail",  # a step raised an exception
    "restart",  # a new run from a config (the same one, or one an intent changed)
    "stop",  # the consumer is going away
]

_ENDED: dict[Event, State] = {"restart": "running", "stop": "stopped"}
_TRAINABLE: dict[Event, State] = {
    "finish": "finished",
    "diverge": "diverged",
    "fail": "error",
    **_ENDED,
}

TRANSITIONS: dict[State, dict[Event, State]] = {
    "running": {"pause": "paused", "toggle": "paused", **_TRAINABLE},
    "paused": {"resume": "running", "toggle": "running", **_TRAINABLE},
    "finished": _ENDED,
    "diverged": _ENDED,
    "error": _ENDED,
    "stopped": {},
}


def after(state: State, event: Event) -> State:
    """The state that ``event`` leads to from ``state``."""
    return TRANSITIONS[state].get(event, state)
