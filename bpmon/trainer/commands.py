"""Commands a consumer sends the trainer, and how an intent becomes a new configuration.

Keys send *intents* ("one hidden layer more", "next activation", "learning rate x2"), not
configurations: the trainer applies an intent to the configuration it is actually running, so
two quick presses build on each other, and the result goes through the same
:func:`bpmon.config.validate` as a preset file and the command line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from bpmon.config import HIDDEN_ACTIVATIONS, LR_MAX, LR_MIN, RunConfig, validate

CommandKind = Literal[
    "pause",
    "resume",
    "toggle_pause",
    "step",
    "restart",
    "stop",
    "activation",
    "depth",
    "batchnorm",
    "lr",
    # The decision boundary in the snapshots (bpmon.trainer.boundary): amount 1 on, 0 off.
    "boundary",
    # A replay's cursor (bpmon.sources): one snapshot on (amount +1 / -1), the first, the last,
    # and the playback speed (amount: the factor).
    "seek",
    "home",
    "end",
    "speed",
]
# What a replay's cursor understands (bpmon.sources); a live run understands every other kind.
CURSOR_COMMANDS: frozenset[CommandKind] = frozenset({"seek", "home", "end", "speed"})
TRAINER_COMMANDS: frozenset[CommandKind] = frozenset(get_args(CommandKind)) - CURSOR_COMMANDS
# The intents that change the configuration and restart the run; "lr" changes it live.
RESTARTING_INTENTS: tuple[CommandKind, ...] = ("activation", "depth", "batchnorm")


@dataclass(frozen=True)
class Command:
    """A request to the training thread.

    ``amount`` goes with the intents: +1 / -1 for ``activation`` (next / previous) and
    ``depth`` (a layer more / fewer), the factor for ``lr``, and with a replay's ``seek``
    (snapshots to move) and ``speed`` (the factor). ``config`` goes with ``restart``
    when the run should restart from another configuration (None: the same one).
    """

    kind: CommandKind
    amount: float = 0.0
    config: RunConfig | None = None


def apply_intent(config: RunConfig, command: Command) -> tuple[RunConfig, str]:
    """The configuration ``command`` asks for, validated, and a notice for the user ("" when
    there is nothing to say). Raises :class:`BpmonError` when the result is not a valid run."""
    kind, amount = command.kind, command.amount
    if kind == "activation":
        # With one activation per layer, the key steps from the first layer's and gives every
        # layer the result: one press, one network the user can name. (The depth keys keep a
        # list a list: + repeats the last layer's activation, - drops the last layer's.)
        current = config.model.activations[0]
        # The output-only "identity" is not in the cycle; stepping from it starts the cycle.
        index = HIDDEN_ACTIVATIONS.index(current) if current in HIDDEN_ACTIVATIONS else -1
        if index < 0 and amount < 0:
            index = 0
        step = 1 if amount >= 0 else -1
        new = config.with_activation(HIDDEN_ACTIVATIONS[(index + step) % len(HIDDEN_ACTIVATIONS)])
        return validate(new, "key a"), ""
    if kind == "depth":
        sign = "+" if amount >= 0 else "-"
        new = config.with_depth(config.model.depth + (1 if amount >= 0 else -1))
        return validate(new, f"key {sign}"), ""
    if kind == "batchnorm":
        return validate(config.with_batchnorm(not config.model.batchnorm), "key b"), ""
    if kind == "lr":
        return _scaled_lr(config, amount)
    raise ValueError(f"{kind!r} is not an intent")


def _scaled_lr(config: RunConfig, factor: float) -> tuple[RunConfig, str]:
    """The learning rate times ``factor``, held to [LR_MIN, LR_MAX]: at a bound the keys stop
    and say so, instead of reaching 0 or inf, from where no key could bring the run back."""
    lr = config.train.lr * factor
    notice = ""
    if not lr <= LR_MAX:
        lr, notice = LR_MAX, f"The learning rate stays at most {LR_MAX:g}."
    elif not lr >= LR_MIN:
        lr, notice = LR_MIN, f"The learning rate stays at least {LR_MIN:g}."
    return validate(config.with_lr(lr), "key ] / ["), notice
