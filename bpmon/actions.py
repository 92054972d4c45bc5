"""What a finding advises, once per action: the table :data:`ACTIONS` and how an action reads
where the run is.

A finding names action ids (``Finding.actions``, the likeliest fix first) and the numbers of
its run that the wording quotes (``Finding.facts``); it never holds a key letter of its own.
The view renders each action for the run in view (:func:`advice`):

- ``"live"``, bpmon's own run: the label and the key that applies it (``lower the learning
  rate ([)``), as the monitor's bindings do it; an action without a key is said in words.
- ``"torch"``, a PyTorch run read from its run file: the change to make in the training script,
  with the run's own numbers (``the optimiser's lr is 0.1 — AdamW at 1e-3 is usual here``).
- ``"file"``, any other recorded run: the label alone, since no key changes a recording.

No key is named where it does nothing: a key is shown only for a source that applies it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from bpmon.text import printable

Where = Literal["live", "torch", "file"]
WHERE: tuple[Where, ...] = ("live", "torch", "file")
Facts = Mapping[str, float | str]


@dataclass(frozen=True)
class Action:
    """One thing a person can do about a finding.

    ``keys``: the monitor's keys that apply it on a live run (Textual key names; a test checks
    each is bound to this action in :class:`bpmon.tui.app.BpmonApp`), ``key`` the one shown in
    advice; ``label``: how the advice says it; ``help``: what the key does, in one line;
    ``trains``: whether it changes training; ``where``: the sources it applies to; ``script``:
    the PyTorch phrasing, from the finding's facts (None: the label says it). The app's
    bindings and help rows are not built from this table yet (issue 17 item 1): ``help`` and
    ``trains`` are for that."""

    id: str
    label: str
    help: str
    key: str | None = None
    keys: tuple[str, ...] = ()
    trains: bool = True
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


ACTIONS: dict[str, Action] = {
    a.id: a
    for a in (
        Action(
            "lr_down",
            "lower the learning rate",
            "Learning rate /2, live",
            key="[",
            keys=("left_square_bracket",),
            script=_lower_lr,
        ),
        Action(
            "lr_up",
            "raise the learning rate",
            "Learning rate x2, live",
            key="]",
            keys=("right_square_bracket",),
            script=_raise_lr,
        ),
        Action(
            "activation",
            "try ReLU",
            "Next activation (restarts)",
            key="a",
            keys=("a",),
            script=_activation,
        ),
        Action(
            "leaky_relu",
            "try leaky_relu",
            "Next activation (restarts)",
            key="a",
            keys=("a",),
            script=lambda f: "use nn.LeakyReLU(0.01) in place of nn.ReLU",
        ),
        Action(
            "batchnorm",
            "try batch-norm",
            "Batch-norm on/off (restarts)",
            key="b",
            keys=("b",),
            script=_norm,
        ),
        Action(
            "depth_down",
            "fewer layers",
            "One hidden layer fewer (restarts)",
            key="-",
            keys=("minus",),
            script=lambda f: "remove a hidden layer, or add weight decay or dropout",
        ),
        Action(
            "init",
            "change the initialisation",
            "Next init: normal → xavier → he (restarts)",
            key="i",
            keys=("i",),
            script=_init,
        ),
        Action(
            "restart",
            "restart",
            "Restart from the same seed, same settings",
            key="r",
            keys=("r",),
            script=lambda f: "restart the script",
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
        ),
        Action("stop", "stop here", "Stop: the run has learnt what generalises", trains=False),
    )
}


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
