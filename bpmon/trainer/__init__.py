"""Training: one run's state and step (:mod:`.run`), its states and transitions
(:mod:`.states`), the snapshot consumers read (:mod:`.snapshot`), the commands and intents they
send (:mod:`.commands`), and the loop that ties them together on a thread (:mod:`.loop`).

The names are loaded when first used: a replay imports ``bpmon.trainer.commands`` (the keys it
answers) and the run model, and must not pay for NumPy and the engine that the loop imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bpmon.runmodel import (
        HISTORY_POINTS,
        PREDICTION_ROWS,
        STATES,
        LossHistory,
        Prediction,
        Snapshot,
        State,
    )
    from bpmon.trainer.commands import Command, CommandKind
    from bpmon.trainer.loop import Trainer
    from bpmon.trainer.run import EVAL_ROWS, Run
    from bpmon.trainer.snapshot import accuracy

_WHERE = {
    "EVAL_ROWS": "bpmon.trainer.run",
    "HISTORY_POINTS": "bpmon.runmodel",
    "PREDICTION_ROWS": "bpmon.runmodel",
    "STATES": "bpmon.runmodel",
    "Command": "bpmon.trainer.commands",
    "CommandKind": "bpmon.trainer.commands",
    "LossHistory": "bpmon.runmodel",
    "Prediction": "bpmon.runmodel",
    "Run": "bpmon.trainer.run",
    "Snapshot": "bpmon.runmodel",
    "State": "bpmon.runmodel",
    "Trainer": "bpmon.trainer.loop",
    "accuracy": "bpmon.trainer.snapshot",
}

__all__ = [
    "EVAL_ROWS",
    "HISTORY_POINTS",
    "PREDICTION_ROWS",
    "STATES",
    "Command",
    "CommandKind",
    "LossHistory",
    "Prediction",
    "Run",
    "Snapshot",
    "State",
    "Trainer",
    "accuracy",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'bpmon.trainer' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
