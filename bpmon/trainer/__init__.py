"""Training: one run's state and step (:mod:`.run`), its states and transitions
(:mod:`.states`), the snapshot consumers read (:mod:`.snapshot`), the commands and intents they
send (:mod:`.commands`), and the loop that ties them together on a thread (:mod:`.loop`)."""

from bpmon.trainer.commands import Command, CommandKind
from bpmon.trainer.loop import Trainer
from bpmon.trainer.run import EVAL_ROWS, HISTORY_POINTS, PREDICTION_ROWS, LossHistory, Run
from bpmon.trainer.snapshot import Prediction, Snapshot, accuracy
from bpmon.trainer.states import STATES, State

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
