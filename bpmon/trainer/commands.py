"""Commands a consumer sends the trainer, and how an intent becomes a new configuration.

Keys send *intents* ("one hidden layer more", "next activation", "learning rate x2"), not
configurations: the trainer applies an intent to the configuration it is actually running, so
two quick presses build on each other, and the result goes through the same
:func:`bpmon.config.validate` as a preset file and the command line.

Besides the keys' own intents there are two generic ones over a configuration key: ``cycle``
(the next of the values in :data:`CYCLES`: ``i`` ``o`` ``d`` ``m``) and ``set`` (one value: the
command palette). Both change the key with :func:`with_value` and both restart the run.
The pace (steps per second, ``<`` ``>``) is the loop's, not the configuration's: see
:func:`next_pace`.

Which kinds a key sends, and to which source, is the action table's (:mod:`bpmon.actions`):
the kinds here are derived from it, and the trainer's dispatch covers them (checked at import).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import get_args

from bpmon.actions import (
    ACTIONS,
    BATCH_SIZES,
    PACES,
    PLAYGROUND_DATASETS,
    CommandKind,
    commands,
)

# Re-exported: the trainer's users import them from here.
__all__ = [
    "BATCH_SIZES",
    "CURSOR_COMMANDS",
    "CYCLES",
    "CYCLE_KEYS",
    "MULTICLASS_DATASETS",
    "PACES",
    "PLAYGROUND_DATASETS",
    "RESTARTING_INTENTS",
    "TRAINER_COMMANDS",
    "Command",
    "CommandKind",
    "apply_intent",
    "current_value",
    "data_refusal",
    "format_pace",
    "next_pace",
    "with_value",
]
from bpmon.config import (
    HIDDEN_ACTIVATIONS,
    INITS,
    LR_MAX,
    LR_MIN,
    OPTIMIZERS,
    TABLES,
    RunConfig,
    rule,
    show_value,
    validate,
)
from bpmon.errors import BpmonError

# What a replay's cursor understands (bpmon.sources): the replay's keys that a live run has not.
CURSOR_COMMANDS: frozenset[CommandKind] = commands("replay") - commands("live")
# A live run understands every other kind: its keys' (the table's), the palette's ``set`` and
# ``restart`` with a configuration, and ``pause``, ``resume`` and ``stop`` for code that drives it.
TRAINER_COMMANDS: frozenset[CommandKind] = frozenset(get_args(CommandKind)) - CURSOR_COMMANDS
# The intents that change the configuration and restart the run; "lr" changes it live.
RESTARTING_INTENTS: tuple[CommandKind, ...] = ("activation", "depth", "batchnorm", "cycle", "set")

# The multiclass sets among the playground's (bpmon.actions.PLAYGROUND_DATASETS): a softmax
# over their classes; the others are binary.
MULTICLASS_DATASETS: tuple[str, ...] = ("spiral", "blobs")
# What ``cycle`` steps through, per configuration key: one entry per key of the playground.
CYCLES: dict[str, tuple[str | int, ...]] = {
    "model.init": INITS,
    "train.optimizer": OPTIMIZERS,
    "data.name": PLAYGROUND_DATASETS,
    "train.batch_size": BATCH_SIZES,
}
# The key a cycle is pressed with, for messages ("key i: ..."): the table's row for it.
CYCLE_KEYS: dict[str, str] = {
    a.setting: a.keys[0] for a in ACTIONS.values() if a.command == "cycle" and a.keys
}
if set(CYCLE_KEYS) != set(CYCLES):
    raise ImportError(f"bpmon.trainer.commands: cycles {sorted(CYCLES)} vs keys {CYCLE_KEYS}")


@dataclass(frozen=True)
class Command:
    """A request to the training thread.

    ``amount`` goes with the intents: +1 / -1 for ``activation`` (next / previous),
    ``depth`` (a layer more / fewer), ``pace`` (faster / slower) and ``cycle`` (next /
    previous), the factor for ``lr``, and with a replay's ``seek`` (snapshots to move) and
    ``speed`` (the factor). ``config`` goes with ``restart`` when the run should restart from
    another configuration (None: the same one); ``value`` then names it (a preset's name).
    ``key`` is the dotted configuration key of ``cycle`` and ``set`` (``"model.init"``);
    ``value`` the value ``set`` gives it, or the steps per second ``pace`` sets.
    """

    kind: CommandKind
    amount: float = 0.0
    config: RunConfig | None = None
    key: str = ""
    value: str | float | None = None


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
    if kind == "cycle":
        return _cycled(config, command.key, amount)
    if kind == "set":
        if command.value is None:
            raise ValueError("a set intent needs a value")
        return _set(config, command.key, command.value, "palette"), ""
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


def with_value(config: RunConfig, key: str, value: object) -> RunConfig:
    """``config`` with the dotted ``key`` set to ``value`` (not validated).

    A new data set keeps the output and loss when they fit it; between a binary set and a
    multiclass one, the binary pair (sigmoid + bce) and the multiclass pair (softmax +
    cross-entropy) trade places, so that cycling through the sets comes back to where it began.
    """
    table, name = key.split(".")
    part = getattr(config, table)
    new = replace(config, **{table: replace(part, **{name: value})})
    if key == "data.name":
        m = new.model
        pair = (m.output, m.loss)
        if value in MULTICLASS_DATASETS and pair == ("sigmoid", "bce"):
            new = replace(new, model=replace(m, output="softmax", loss="cross_entropy"))
        elif value not in MULTICLASS_DATASETS and pair == ("softmax", "cross_entropy"):
            new = replace(new, model=replace(m, output="sigmoid", loss="bce"))
    return new


def current_value(config: RunConfig, key: str) -> object:
    """The value of the dotted ``key`` in ``config``."""
    table, name = key.split(".")
    return getattr(getattr(config, table), name)


def data_refusal(config: RunConfig) -> str:
    """Why the data set of ``config`` cannot be changed, or "" when it can."""
    name = config.data.name
    if name in PLAYGROUND_DATASETS:
        return ""
    sets = ", ".join(PLAYGROUND_DATASETS)
    return f"the data set changes only among the 2-D sets ({sets}); this run's is {name!r}"


def _set(config: RunConfig, key: str, value: str | float | int, source: str) -> RunConfig:
    """``config`` with ``key`` = ``value``, checked by the key's rule and :func:`validate`."""
    table, _, name = key.partition(".")
    if table not in TABLES or name not in {f.name for f in fields(TABLES[table])}:
        raise BpmonError(f"{source}: unknown key {key!r}")
    if key == "data.name" and (why := data_refusal(config)):
        raise BpmonError(f"{source}: {why}")
    try:
        value = rule(key).accept(value)
    except ValueError as exc:
        raise BpmonError(f"{source}: {key} = {show_value(value)}: expected {exc}") from None
    return validate(with_value(config, key, value), source)


def _cycled(config: RunConfig, key: str, amount: float) -> tuple[RunConfig, str]:
    """``key`` at its next value in :data:`CYCLES` (the previous one for a negative
    ``amount``). A value :func:`validate` refuses is skipped, and the notice says why (batch 1
    with batch-norm), so that a cycle never gets stuck; when every value is refused, so is the
    intent."""
    values = CYCLES[key]
    source = f"key {CYCLE_KEYS.get(key, key)}"
    current = current_value(config, key)
    # A value outside the cycle (a preset's batch of 32) starts it from its first value.
    index = values.index(current) if current in values else -1
    step = 1 if amount >= 0 else -1
    refusals: list[str] = []
    for i in range(1, len(values)):
        value = values[(index + step * i) % len(values)]
        try:
            new = _set(config, key, value, source)
        except BpmonError as exc:
            if key == "data.name" and data_refusal(config):
                raise
            refusals.append(f"{exc}; skipped")
            continue
        return new, "; ".join(refusals)
    raise BpmonError(refusals[0].removesuffix("; skipped") if refusals else f"{source}: no change")


def next_pace(pace: float, amount: float) -> tuple[float, str]:
    """The pace after ``>`` (``amount`` > 0: the next faster in :data:`PACES`) or ``<`` (the
    next slower), and a notice when there is none: a pace between two of them (``--speed 5``)
    steps to the nearer one in the asked direction."""
    if amount >= 0:
        faster = [p for p in PACES if p > pace]
        return (faster[0], "") if faster else (pace, "Full speed is the fastest pace.")
    slower = [p for p in PACES if p < pace]
    if slower:
        return slower[-1], ""
    return pace, f"{format_pace(pace)} is the slowest pace."


def format_pace(pace: float) -> str:
    """``10.0`` -> ``"10 steps/s"``, ``inf`` -> ``"full speed"``."""
    if math.isinf(pace):
        return "full speed"
    return f"{pace:g} step/s" if pace == 1 else f"{pace:g} steps/s"
