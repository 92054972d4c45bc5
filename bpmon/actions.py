"""The table of actions: every thing a person can do in the monitor, once (:data:`ACTIONS`),
and how an action reads as a finding's advice where the run is.

A row is one action: its id, its key(s), its footer label, its help line, whether it changes
training, the sources it acts on, and what it maps to (the command kind a source receives, with
its amount or configuration key). Built from it: the monitor's bindings, ``check_action``, the
footer, the help screen and the command palette (:mod:`bpmon.tui.keys`), the "does not apply
here" notices, which command kinds bpmon's trainer takes and the trainer's dispatch over them
(:mod:`bpmon.trainer.commands`, :mod:`bpmon.trainer.loop`). A new training key is one row here
plus its handler in the trainer (or, for a configuration key that cycles, one entry in
:data:`bpmon.trainer.commands.CYCLES`).

A finding names action ids (``Finding.actions``, the likeliest fix first) and the numbers of
its run that the wording quotes (``Finding.facts``); it never holds a key letter of its own.
The view renders each action for the run in view (:func:`advice`):

- ``"live"``, bpmon's own run: the label and the key that applies it (``lower the learning
  rate ([)``), as the monitor's bindings do it; an action without a key is said in words.
- ``"torch"``, a PyTorch run read from its run file: the change to make in the training script,
  with the run's own numbers (``the optimiser's lr is 0.1 — AdamW at 1e-3 is usual here``).
- ``"file"``, any other recorded run: the label alone, since no key changes a recording.

No key is named where it does nothing: a key is shown only for a source that applies it, and
:func:`_check` refuses at import a table whose advice names a key that no row binds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from bpmon.config import HIDDEN_ACTIVATIONS, INITS, MAX_DEPTH, MIN_DEPTH, OPTIMIZERS
from bpmon.text import printable

Where = Literal["live", "torch", "file"]
WHERE: tuple[Where, ...] = ("live", "torch", "file")
Facts = Mapping[str, float | str]
# The sources a key acts on: bpmon's own training run, a run file's replay (a cursor), a run
# file followed as it grows.
SourceKind = Literal["live", "replay", "watch"]
LIVE: frozenset[SourceKind] = frozenset({"live"})
REPLAY: frozenset[SourceKind] = frozenset({"replay"})
EVERY: frozenset[SourceKind] = frozenset({"live", "replay", "watch"})
# How many run columns an action needs: one (the decision boundary, the gradient rows' cursor),
# several (moving the keys to another column), or either ("").
Columns = Literal["", "one", "many"]

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
    # The pace of a live run (amount +1 faster / -1 slower, or ``value`` steps per second).
    "pace",
    # A configuration key to its next value in CYCLES (``key``), or to ``value`` (``key``).
    "cycle",
    "set",
    # A replay's cursor (bpmon.sources): one snapshot on (amount +1 / -1), the first, the last,
    # and the playback speed (amount: the factor).
    "seek",
    "home",
    "end",
    "speed",
]

# The data sets the playground's ``d`` moves among: the 2-D ones, whose points a person can
# picture. spiral and blobs are multiclass (a softmax over their classes), the others binary.
PLAYGROUND_DATASETS: tuple[str, ...] = ("xor", "circle", "moons", "spiral", "blobs")
# Mini-batch sizes for ``m``, largest first; 0 is the full batch.
BATCH_SIZES: tuple[int, ...] = (0, 64, 16, 1)
# The paces ``<`` and ``>`` step through, in steps per second; inf is full speed.
PACES: tuple[float, ...] = (1.0, 10.0, 100.0, 1000.0, math.inf)


@dataclass(frozen=True)
class Action:
    """One thing a person can do: a key of the monitor, a finding's advice, or both.

    ``label``: how advice says it (a finding's actions only); ``help``: the help screen's line
    and the palette entry's text ("" keeps it out of both); ``keys``: the monitor's keys for it
    (Textual key names; the first is the one shown, the others aliases); ``footer``: its word in
    the footer ("" leaves it out of the footer, the help and the palette: the key still acts);
    ``show``: whether the footer shows it (else help and palette only); ``group``: the footer's
    group of consecutive keys; ``trains``: whether it changes training; ``sources``: the kinds
    of source it acts on; ``columns``: whether it needs one run column or several.

    What it maps to: ``command``, the :class:`~bpmon.trainer.commands.Command` kind it sends,
    with ``amount`` and ``setting`` (the configuration key a ``cycle`` steps); or ``run``, the
    app's own action (``"help"``; ``{key}`` stands for the key pressed) where the key is the
    view's or needs a check first. ``otherwise``: the notice where it does not apply (by
    default, for a key that trains, a generic one, once: keys that change training do not
    apply to a run file; a live run's key that does not train says its own). ``display``: the
    keys as the help shows them, for keys Textual binds itself. ``one_run``: the notice where it
    does not apply because several runs are side by side.

    Advice: ``key`` is the key advice shows on a live run, ``via`` the action whose keys apply
    this one (``leaky_relu`` is the activation key), ``where`` the runs it applies to and
    ``script`` its PyTorch phrasing from the finding's facts (None: the label says it)."""

    id: str
    label: str = ""
    help: str = ""
    keys: tuple[str, ...] = ()
    footer: str = ""
    show: bool = True
    group: str = ""
    trains: bool = True
    sources: frozenset[SourceKind] = LIVE
    columns: Columns = ""
    command: CommandKind | None = None
    amount: float = 0.0
    setting: str = ""
    run: str = ""
    otherwise: str = ""
    one_run: str = ""
    display: str = ""
    key: str | None = None
    via: str = ""
    where: frozenset[Where] = frozenset(WHERE)
    script: Callable[[Facts], str] | None = None

    def render(self, where: Where, facts: Facts) -> str:
        """This action as advice for a run ``where``, on one line: the facts a script's wording
        quotes (a layer's or an activation's name) may come from a file from elsewhere."""
        if where == "torch" and self.script is not None:
            return printable(self.script(facts))
        if where == "live" and self.key is not None:
            return f"{self.label} ({self.key})"
        return self.label

    def action(self, key: str) -> str:
        """The Textual action string ``key`` runs: the app's own action, or sending this row's
        command (``send('lr_down')``)."""
        return self.run.format(key=key) if self.run else f"send({self.id!r})"


def _num(facts: Facts, name: str) -> float:
    value = facts.get(name)
    return float(value) if isinstance(value, int | float) else math.nan


def _lr(value: float) -> str:
    return f"{value:.2g}" if math.isfinite(value) else "unknown"


def _lower_lr(facts: Facts) -> str:
    lr = _num(facts, "lr")
    share, over = _num(facts, "clipped_share"), _num(facts, "clip_over")
    if share >= 0.5 and math.isfinite(over):
        return (
            f"clip_grad_norm_ scaled {share:.0%} of recent updates: the pre-clip norm is "
            f"{over:.0f}x max_norm — lower the optimiser's lr ({_lr(lr)})"
        )
    if not math.isfinite(lr):
        return "lower the optimiser's lr"
    if _num(facts, "adaptive") == 1:
        usual = "AdamW at 1e-3 is usual here" if lr > 3e-3 else f"try {lr / 3:.2g}"
        return f"the optimiser's lr is {_lr(lr)} — {usual}"
    return f"the optimiser's lr is {_lr(lr)} — try {lr / 10:.2g}"


def _raise_lr(facts: Facts) -> str:
    lr, level = _num(facts, "lr"), _num(facts, "level")
    moves = (
        f"each step moves the weights by 10^{level:.1f} of their size"
        if math.isfinite(level)
        else ""
    )
    if not math.isfinite(lr):
        return "raise the optimiser's lr" + (f": {moves}" if moves else "")
    return (
        f"the optimiser's lr is {_lr(lr)}"
        + (f" and {moves}" if moves else "")
        + f" — try {lr * 3:.2g}"
    )


def _init(facts: Facts) -> str:
    std, fan_in, fan_out = _num(facts, "init_std"), _num(facts, "fan_in"), _num(facts, "fan_out")
    act = str(facts.get("activation") or "")
    if str(facts.get("cause")) == "dead":
        layer = str(facts.get("layer") or "the layer")
        return (
            f"{layer}'s units are off from the first update: start its bias at 0 "
            "(nn.init.zeros_) and its weights with nn.init.kaiming_normal_"
        )
    if not (math.isfinite(std) and fan_in > 0):
        return "use nn.init.xavier_uniform_ (tanh, sigmoid) or nn.init.kaiming_normal_ (ReLU)"
    if act in ("relu", "leaky_relu"):
        target, how = math.sqrt(2.0 / fan_in), "nn.init.kaiming_normal_"
    else:
        gain = 5.0 / 3.0 if act == "tanh" else 1.0
        fans = fan_in + (fan_out if fan_out > 0 else fan_in)
        target, how = gain * math.sqrt(2.0 / fans), "nn.init.xavier_uniform_"
        if act == "tanh":
            how += " with gain 5/3"
    return f"weights start with std {std:.2g} for fan-in {fan_in:.0f}: {how} gives {target:.2g}"


def _activation(facts: Facts) -> str:
    act = str(facts.get("activation") or "sigmoid")
    name = {"sigmoid": "nn.Sigmoid", "tanh": "nn.Tanh"}.get(act, act)
    return f"replace {name} with nn.ReLU (or nn.GELU) in the hidden layers"


def _norm(facts: Facts) -> str:
    layer = str(facts.get("layer") or "each hidden layer")
    return f"add a normalisation layer (nn.LayerNorm or nn.BatchNorm1d) after {layer}"


def _nan_trace(facts: Facts) -> str:
    step = _num(facts, "nonfinite_step")
    at = f"update {step:.0f} was the first checked: " if math.isfinite(step) else ""
    return f"{at}watch(..., nan_trace=True) checks every update and names where the NaN started"


_PACE_STEPS = " → ".join("full speed" if p == math.inf else f"{p:g}" for p in reversed(PACES))
_BATCHES = " → ".join(str(b) if b else "full" for b in BATCH_SIZES)
_INITS = " → ".join("normal (randn*0.1)" if i == "normal" else i for i in INITS)
_RESTARTS = "the same seed, same settings"

# In the order of the footer, the help screen and the palette. Two rows may share a key when no
# source takes both (space pauses a live run and plays a replay); the first that applies acts.
ACTIONS: dict[str, Action] = {
    a.id: a
    for a in (
        # A live run's keys.
        Action(
            "pause",
            help="Pause or resume training",
            keys=("space",),
            footer="pause",
            command="toggle_pause",
            run="toggle_pause",
        ),
        Action(
            "step",
            help="One training step (while paused)",
            keys=("n",),
            footer="step",
            show=False,
            command="step",
            run="step",
        ),
        Action(
            "restart",
            "restart",
            f"Restart from {_RESTARTS}",
            ("r",),
            "restart",
            command="restart",
            key="r",
            script=lambda f: "restart the script",
        ),
        Action(
            "activation",
            "try ReLU",
            "Next activation: " + " → ".join(HIDDEN_ACTIVATIONS) + " (restarts)",
            ("a",),
            "next",
            group="act",
            command="activation",
            amount=1,
            key="a",
            script=_activation,
        ),
        Action(
            "activation_back",
            help="Previous activation (restarts)",
            keys=("A", "shift+a"),
            footer="previous",
            group="act",
            command="activation",
            amount=-1,
        ),
        Action(
            "depth_up",
            help=f"One hidden layer more, same width (up to {MAX_DEPTH}; restarts)",
            keys=("plus",),
            footer="more",
            group="depth",
            command="depth",
            amount=1,
        ),
        Action(
            "depth_down",
            "fewer layers",
            f"One hidden layer fewer (down to {MIN_DEPTH}; restarts)",
            ("minus",),
            "fewer",
            group="depth",
            command="depth",
            amount=-1,
            key="-",
            script=lambda f: "remove a hidden layer, or add weight decay or dropout",
        ),
        Action(
            "batchnorm",
            "try batch-norm",
            "Batch-norm on/off (restarts)",
            ("b",),
            "bn",
            command="batchnorm",
            key="b",
            script=_norm,
        ),
        Action(
            "lr_up",
            "raise the learning rate",
            "Learning rate x2, live",
            ("right_square_bracket",),
            "x2",
            group="lr x2 /2",
            command="lr",
            amount=2.0,
            key="]",
            script=_raise_lr,
        ),
        Action(
            "lr_down",
            "lower the learning rate",
            "Learning rate /2, live",
            ("left_square_bracket",),
            "/2",
            group="lr x2 /2",
            command="lr",
            amount=0.5,
            key="[",
            script=_lower_lr,
        ),
        Action(
            "init",
            "change the initialisation",
            f"Next init: {_INITS} (restarts)",
            ("i",),
            "init",
            show=False,
            command="cycle",
            amount=1,
            setting="model.init",
            key="i",
            script=_init,
        ),
        Action(
            "optimizer",
            help="Next optimiser: " + " → ".join(OPTIMIZERS) + " (restarts)",
            keys=("o",),
            footer="opt",
            show=False,
            command="cycle",
            amount=1,
            setting="train.optimizer",
        ),
        # Through the app: it says once a run why a data set that is not 2-D does not change.
        Action(
            "data",
            help="Next data set: " + " → ".join(PLAYGROUND_DATASETS) + " (restarts)",
            keys=("d",),
            footer="data",
            show=False,
            command="cycle",
            amount=1,
            setting="data.name",
            run="data",
        ),
        Action(
            "batch",
            help=f"Next mini-batch: {_BATCHES} (restarts)",
            keys=("m",),
            footer="batch",
            show=False,
            command="cycle",
            amount=1,
            setting="train.batch_size",
        ),
        Action(
            "slower",
            help=f"Slower: {_PACE_STEPS} steps/s",
            keys=("less_than_sign",),
            footer="slower",
            show=False,
            command="pace",
            amount=-1,
        ),
        Action(
            "faster",
            help="Faster, up to full speed",
            keys=("greater_than_sign",),
            footer="faster",
            show=False,
            command="pace",
            amount=1,
        ),
        Action(
            "save",
            help="Save this run as a preset file (bpmon-NAME-N.toml, here)",
            keys=("s",),
            footer="save",
            show=False,
            trains=False,
            run="save",
            otherwise="s saves a live run as a preset; this one is read from a file.",
        ),
        # A replay's keys.
        Action(
            "back",
            help="One snapshot back",
            keys=("left",),
            footer="back",
            group="snapshot",
            trains=False,
            sources=REPLAY,
            command="seek",
            amount=-1,
        ),
        Action(
            "on",
            help="One snapshot on",
            keys=("right",),
            footer="on",
            group="snapshot",
            trains=False,
            sources=REPLAY,
            command="seek",
            amount=1,
        ),
        Action(
            "first",
            help="The first snapshot",
            keys=("home",),
            footer="first",
            trains=False,
            sources=REPLAY,
            command="home",
        ),
        Action(
            "last",
            help="The last snapshot",
            keys=("end",),
            footer="last",
            trains=False,
            sources=REPLAY,
            command="end",
        ),
        Action(
            "play",
            help="Play / pause the replay (from the start when at the end)",
            keys=("space",),
            footer="play",
            trains=False,
            sources=REPLAY,
            command="toggle_pause",
        ),
        Action(
            "play_slower",
            help="Play slower",
            keys=("less_than_sign",),
            footer="slower",
            group="speed",
            trains=False,
            sources=REPLAY,
            command="speed",
            amount=0.5,
        ),
        Action(
            "play_faster",
            help="Play faster",
            keys=("greater_than_sign",),
            footer="faster",
            group="speed",
            trains=False,
            sources=REPLAY,
            command="speed",
            amount=2.0,
        ),
        # The decision boundary: a live run's, with one column (the trainer says why on data
        # that is not 2-D).
        Action(
            "boundary",
            help="Decision boundary over the input plane (2-D data), on/off",
            keys=("v",),
            footer="boundary",
            show=False,
            trains=False,
            columns="one",
            command="boundary",
            run="boundary",
            otherwise="v: a run file has no network to draw a decision boundary with.",
            one_run="v: the decision boundary is drawn for one run at a time, not with --compare.",
        ),
        # Every source's keys.
        Action(
            "findings",
            help="Every finding in full, with its advice (also enter)",
            keys=("f", "enter"),
            footer="findings",
            show=False,
            trains=False,
            sources=EVERY,
            run="findings",
        ),
        # Enter opens or closes the gradient group under the cursor, else the findings (the
        # alias above, bound after every row's first key).
        Action("group", keys=("enter",), trains=False, sources=EVERY, run="toggle_group"),
        Action(
            "flow",
            help="Gradient flow over time: the rows as a heatmap, on/off",
            keys=("h",),
            footer="flow",
            show=False,
            trains=False,
            sources=EVERY,
            columns="one",
            run="flow",
        ),
        Action(
            "log",
            help="Loss axis: log / linear",
            keys=("l",),
            footer="log",
            show=False,
            trains=False,
            sources=EVERY,
            run="toggle_log",
        ),
        Action(
            "metric",
            help="Plot the next number the script logged",
            keys=("g",),
            footer="metric",
            show=False,
            trains=False,
            sources=EVERY,
            columns="one",
            run="metric",
        ),
        Action(
            "help",
            help="This help",
            keys=("question_mark",),
            footer="help",
            trains=False,
            sources=EVERY,
            run="help",
        ),
        Action(
            "quit",
            help="Quit (stops the training thread)",
            keys=("q",),
            footer="quit",
            trains=False,
            sources=EVERY,
            run="quit",
        ),
        Action(
            "interrupt",
            help="Quit",
            keys=("ctrl+c",),
            footer="quit",
            show=False,
            trains=False,
            sources=EVERY,
            run="quit",
        ),
        # Textual's App quits on ctrl+q; here q and ctrl+c quit, as the README and help say.
        Action("quit_keys", keys=("ctrl+q",), trains=False, sources=EVERY, run="quit_keys"),
        Action(
            "switch",
            help="Move the keys to the next run (A → B, the last → A), its gradient rows' too",
            keys=("tab",),
            footer="A⇄B",
            trains=False,
            sources=EVERY,
            columns="many",
            run="switch_run",
        ),
        # The gradient rows: a cursor that ↑ ↓ pgup pgdn move with no focus needed first.
        Action(
            "rows",
            help="Move through the gradient rows; enter opens or closes a group",
            keys=("up", "down", "pageup", "pagedown"),
            trains=False,
            sources=EVERY,
            run="rows('{key}')",
            display="↑ ↓ pgup pgdn",
        ),
        # Textual's own keys, in the help only.
        Action(
            "focus",
            help="Focus the next panel; ↑ ↓ pgup pgdn scroll it",
            trains=False,
            sources=EVERY,
            columns="one",
            display="tab",
        ),
        Action(
            "palette",
            help="Command palette: presets, settings and every action, by name",
            trains=False,
            sources=EVERY,
            display="ctrl+p",
        ),
        Action(
            "focus_back",
            help="Focus a panel; ↑ ↓ pgup pgdn scroll it",
            trains=False,
            sources=EVERY,
            columns="many",
            display="shift+tab",
        ),
        # Advice only: no key of its own.
        Action(
            "leaky_relu",
            "try leaky_relu",
            key="a",
            via="activation",
            script=lambda f: "use nn.LeakyReLU(0.01) in place of nn.ReLU",
        ),
        Action(
            "clip",
            "clip the gradients",
            "Clip the gradients' global norm",
            where=frozenset({"torch"}),
            script=lambda f: (
                "add torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0) "
                "before optimizer.step()"
            ),
        ),
        Action(
            "nan_trace",
            "check every update for the first NaN",
            "Look for the first non-finite value on every update, not only measured ones",
            trains=False,
            where=frozenset({"torch"}),
            script=_nan_trace,
        ),
        Action(
            "wait",
            "wait (a saddle can take long)",
            "Wait: the loss may leave a saddle on its own",
            trains=False,
            sources=EVERY,
        ),
        Action(
            "stop",
            "stop here",
            "Stop: the run has learnt what generalises",
            trains=False,
            sources=EVERY,
        ),
    )
}


def commands(source: SourceKind) -> frozenset[CommandKind]:
    """The command kinds the keys send to a source of kind ``source``."""
    return frozenset(
        a.command for a in ACTIONS.values() if a.command is not None and source in a.sources
    )


def _check() -> None:
    """The table is one: every id once, every advice key bound by a row of the live run (its
    own or its ``via``'s) whose first key shows as that key, and no two rows of one source
    kind and one column count on the same key (which of them acted would depend on order)."""
    shown = {"left_square_bracket": "[", "right_square_bracket": "]", "minus": "-"}
    for row in ACTIONS.values():
        keyed = ACTIONS.get(row.via, row) if row.via else row
        if row.key is not None and (
            not keyed.keys
            or shown.get(keyed.keys[0], keyed.keys[0]) != row.key
            or "live" not in keyed.sources
        ):
            raise ImportError(f"bpmon.actions: {row.id}'s advice key {row.key!r} is not bound")
        if row.command is None and not row.run and row.keys:
            raise ImportError(f"bpmon.actions: {row.id} has keys and does nothing")
        if row.sources == LIVE and row.keys and not row.trains and not row.otherwise:
            # The generic notice says that keys changing training do not apply to a file.
            raise ImportError(f"bpmon.actions: {row.id} needs its own 'otherwise' notice")
    seen: dict[tuple[str, str, str], str] = {}
    for row in ACTIONS.values():
        for key in row.keys[:1]:
            for source in row.sources:
                for columns in ("one", "many"):
                    if row.columns in ("", columns):
                        place = (key, source, columns)
                        if place in seen:
                            raise ImportError(
                                f"bpmon.actions: {key} is both {seen[place]} and {row.id}"
                            )
                        seen[place] = row.id


_check()


def where_of(config: object, switches: str) -> Where:
    """Where a snapshot's run is: ``live`` when it has bpmon's own configuration (its trainer
    applies keys), ``torch`` for a run file the PyTorch bridge wrote (its header's
    ``switches`` end in ``torch``, see :func:`bpmon.torch.layers.switches`), else ``file``."""
    if config is not None:
        return "live"
    return "torch" if switches.split()[-1:] == ["torch"] else "file"


def advice(actions: Sequence[str], where: Where, facts: Facts, joiner: str = " or ") -> str:
    """The advice of a finding for a run ``where``: each of its actions that applies there,
    rendered for it, joined by ``joiner``."""
    parts = [
        ACTIONS[a].render(where, facts)
        for a in actions
        if a in ACTIONS and where in ACTIONS[a].where
    ]
    said: list[str] = []
    for part in dict.fromkeys(parts):
        if said and said[-1].startswith("try ") and part.startswith("try "):
            # "try ReLU (a) or batch-norm (b)", not "try ReLU (a) or try batch-norm (b)".
            part = part.removeprefix("try ")
        said.append(part)
    return joiner.join(said)


def shown_key(action: str, where: Where) -> str | None:
    """The key advice shows for ``action`` on a run ``where`` (None where none applies it)."""
    row = ACTIONS.get(action)
    return row.key if row is not None and where == "live" and "live" in row.where else None
