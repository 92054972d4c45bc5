"""What the gradients mean: findings computed from recent snapshots, with the key that tries a fix.

Every rule is a pure function of a short window of snapshots (newest last) and never of the
preset's name, so the same rules run on a live run, a replayed file, a followed file and a
PyTorch run watched from its run file, and in the headless summary. A rule returns a
:class:`Finding` (rule, severity, layers, evidence in numbers, the ids of the actions that try a
fix, likeliest first, and the run's numbers their wording quotes) or None. Where a condition
was already there at the run's first measured update, the finding blames the initialisation,
not the learning rate. The rules are calibrated on real PyTorch models, healthy and broken
(``python -m benchmarks.calibration``, ``tests/test_calibration.py``).

:class:`Diagnosis` adds hysteresis, so that findings do not flicker: a finding is raised after
its rule has held for :data:`RAISE_AFTER` snapshots in a row and dropped after it has failed for
:data:`CLEAR_AFTER` in a row; while it stands, its evidence follows the newest numbers.

Thresholds live next to the rule that uses them, each with where it comes from.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace

from bpmon.actions import ACTIONS, advice, shown_key
from bpmon.runmodel import Finding, LayerStats, Severity, Snapshot

# A finding appears after its rule held for this many snapshots in a row, and goes after it
# failed for this many: at the monitor's 20 snapshots a second, about a quarter of a second.
RAISE_AFTER = 5
CLEAR_AFTER = 5
# How many snapshots the rules look back over.
WINDOW = 40
# Rules on a recorded fact that cannot flicker (where the first NaN came from) or an event
# recorded once (a spike): shown from the first snapshot that holds it.
IMMEDIATE = frozenset({"non-finite", "spike"})


Rule = Callable[[Sequence[Snapshot]], Finding | None]


def _ratio_words(ratio: float) -> str:
    """``1.2e-4`` -> ``"1/8,300"``: how a person reads a small fraction."""
    if ratio <= 0 or not math.isfinite(ratio):
        return "none"
    inverse = 1 / ratio
    digits = max(0, len(str(int(inverse))) - 2)
    return f"1/{round(inverse, -digits):,.0f}"


def _hidden(layers: Sequence[LayerStats]) -> list[LayerStats]:
    return [layer for layer in layers if layer.activation is not None]


# -- what every rule shares ---------------------------------------------------------------------


def _finding(
    rule: str,
    severity: Severity,
    layers: tuple[str, ...],
    evidence: str,
    actions: tuple[str, ...],
    facts: Mapping[str, float | str] | None = None,
    joiner: str = " or ",
) -> Finding:
    """A finding naming ``actions`` (ids of :data:`bpmon.actions.ACTIONS`); its ``advice`` and
    ``key`` are the live run's wording, which the view replaces for other sources."""
    facts = dict(facts or {})
    if not set(actions) <= RULE_ACTIONS[rule]:
        raise ValueError(f"{rule}: actions {actions} outside RULE_ACTIONS")
    return Finding(
        rule,
        severity,
        layers,
        evidence,
        advice(actions, "live", facts, joiner),
        shown_key(actions[0], "live") if actions else None,
        actions=actions,
        facts=tuple(facts.items()),
    )


def _at_start(snap: Snapshot) -> tuple[LayerStats, ...]:
    """The layers as the run's first measured update found them (empty when unknown). A
    condition that holds there was there before training could cause it: the initialisation's."""
    return snap.initial_layers if len(snap.initial_layers) == len(snap.layers) else ()


def _init_facts(layer: LayerStats) -> dict[str, float | str]:
    """The numbers the "init" action quotes: the weights' standard deviation at the start and
    the fans it is judged against (a layer's ``params`` where the writer counted them, since a
    convolution's fan-in is its channels times its kernel)."""
    params = getattr(layer, "params", 0) or layer.fan_in * layer.fan_out
    fan_out = max(layer.fan_out, 1)
    return {
        "init_std": layer.weight_norm / math.sqrt(params) if params > 0 else math.nan,
        "fan_in": params / fan_out,
        "fan_out": float(fan_out),
        "activation": layer.activation or "",
        "layer": layer.name,
    }


def _lr_facts(snap: Snapshot) -> dict[str, float | str]:
    """The numbers the learning-rate actions quote: the lr of this update, whether the
    optimiser is adaptive (see :func:`adaptive`), the update ratio's level, and the clipping
    where the writer recorded it."""
    facts: dict[str, float | str] = {"lr": snap.lr, "adaptive": float(adaptive(snap))}
    level = _ratio_level(snap)
    if level is not None:
        facts["level"] = level
    share = getattr(snap, "clipped_share", None)
    total, clip = getattr(snap, "grad_norm_total", None), getattr(snap, "clip_max", None)
    if isinstance(share, float):
        facts["clipped_share"] = share
    if isinstance(total, float) and isinstance(clip, float) and clip > 0:
        facts["clip_over"] = total / clip
    return facts


def _lr_actions(snap: Snapshot) -> tuple[str, ...]:
    """Lower the lr; where the writer says no clipping was called (``clip_max`` None on a
    snapshot that has the field), clipping is the other way (on PyTorch). A snapshot without the
    field cannot tell, and is not told to clip what may be clipped already."""
    unclipped = hasattr(snap, "clip_max") and snap.clip_max is None
    return ("lr_down", "clip") if unclipped else ("lr_down",)


# -- vanishing -------------------------------------------------------------------------------------

# The story's night: the first layers get a tiny share of the gradient the output layer gets. The
# telemetry's own relative threshold (Thresholds.vanish_rel, 1e-2) marks a layer vanishing; the
# rule reports the first layer's share of the output layer's gradient and what caused it.
#
# Vanishing is a profile through depth: the starving layers are the input side's, VANISH_DEPTH
# of them at least, each behind the next. One small layer in the middle of a residual network
# (a transformer's MLP beside its skip connection) is not starved by the layers after it: its
# gradient reaches it around them, so it is not this rule.
VANISH_DEPTH = 2


# Saturation worth naming as the cause: a tenth of a layer's units pinned.
SATURATION_NOTED = 0.1


def vanishing(window: Sequence[Snapshot]) -> Finding | None:
    snap = window[-1]
    layers = snap.layers
    starving = [layer for layer in layers if layer.status == "vanishing"]
    if not starving or len(starving) == len(layers) or snap.state == "diverged":
        # All layers at once is a flat zero profile (dead units, convergence): not this rule.
        return None
    prefix = list(itertools.takewhile(lambda x: x.status == "vanishing", layers))
    if len(prefix) < VANISH_DEPTH or len(prefix) != len(starving):
        return None
    first, out = starving[0], layers[-1]
    if not (math.isfinite(out.grad_norm) and out.grad_norm > 0):
        return None
    share = first.grad_norm / out.grad_norm
    evidence = f"{first.name} gets {_ratio_words(share)} of the output layer's gradient"
    saturated = [x for x in _hidden(layers) if x.health_label == "saturated"]
    worst = max(saturated, key=lambda x: x.health, default=None)
    if worst is not None and worst.health >= SATURATION_NOTED:
        whose = "its" if worst is first else f"{worst.name}'s"
        evidence += f"; {worst.health:.0%} of {whose} {worst.activation} units are saturated"
    facts: dict[str, float | str] = {"activation": first.activation or "", "layer": first.name}
    if first.activation in ("sigmoid", "tanh"):
        actions: tuple[str, ...] = ("activation", "batchnorm")
    else:
        actions = ("batchnorm", "depth_down")
    return _finding(
        "vanishing", "warning", tuple(x.name for x in starving), evidence, actions, facts
    )


# -- exploding -------------------------------------------------------------------------------------

# In a plain ReLU net the weight-gradient norms stay flat across depth while the error signal
# dL/dz grows toward the input, so the rule reads the error signal: the input side's delta norm at
# least EXPLODE_GROWTH times the output layer's (the telemetry's explode_rel, 100), or any layer
# flagged exploding by the telemetry (its absolute floor), or the loss spiking to SPIKE times its
# recent median, or standing SPIKE times above where the run started (a loss that blew up and
# stays up, which a recent median soon follows).
#
# Whose fault: a profile that was already there at the first measured update was made by the
# initialisation, not by the learning rate (a deep tanh net with weights of std 1 at step 1).
EXPLODE_GROWTH = 100.0
SPIKE = 10.0


def _blowing_up(layers: Sequence[LayerStats]) -> tuple[float, tuple[str, ...]]:
    """(the error signal's growth from the output back to the input, the layers flagged
    exploding) of one snapshot's layers."""
    deltas = [layer.delta_norm for layer in layers]
    growth = deltas[0] / deltas[-1] if deltas and deltas[-1] > 0 else math.nan
    return growth, tuple(layer.name for layer in layers if layer.status == "exploding")


def exploding(window: Sequence[Snapshot]) -> Finding | None:
    snap = window[-1]
    layers = snap.layers
    if not layers or snap.state == "diverged":
        return None
    growth, flagged = _blowing_up(layers)
    losses = [s.loss for s in window[:-1] if math.isfinite(s.loss)]
    spike = (
        bool(losses) and math.isfinite(snap.loss) and snap.loss > SPIKE * statistics.median(losses)
    )
    curve = [v for v in snap.loss_values if math.isfinite(v)]
    start = curve[0] if len(curve) > 1 else math.nan
    risen = statistics.median(curve[-3:]) / start if start > 0 else math.nan
    names: tuple[str, ...] = ()
    if math.isfinite(growth) and growth >= EXPLODE_GROWTH:
        evidence = (
            f"the error signal grows {growth:,.0f}x from the output layer back to {layers[0].name}"
        )
        names = tuple(layer.name for layer in layers)
    elif flagged:
        worst = max((x for x in layers if x.status == "exploding"), key=lambda x: x.grad_norm)
        evidence = f"{worst.name}'s gradient norm is {worst.grad_norm:.2g}"
        names = flagged
    elif spike:
        evidence = f"the loss jumped to {snap.loss:.3g}, {SPIKE:g}x its recent median"
    elif math.isfinite(risen) and risen >= SPIKE:
        evidence = f"the loss rose to {snap.loss:.3g}, {risen:,.0f}x where it started"
    else:
        return None
    initial = _at_start(snap)
    if initial and names:
        growth0, flagged0 = _blowing_up(initial)
        if flagged0 or (math.isfinite(growth0) and growth0 >= EXPLODE_GROWTH):
            evidence += ", as at the first update"
            facts = _init_facts(initial[0])
            return _finding("exploding", "error", names, evidence, ("init", "batchnorm"), facts)
    return _finding("exploding", "error", names, evidence, _lr_actions(snap), _lr_facts(snap))


# -- dead ReLUs ------------------------------------------------------------------------------------

# SageMaker Debugger's dead-ReLU rule: more than half the units of a layer inactive. bpmon's
# telemetry counts a unit dead when it is active on no sample of the batch (health_label "dead").
# Only the ReLU family's units can die (a zero derivative on the whole negative side); GELU and
# SiLU pass a gradient there, so a writer's "off" share for them is not death.
DEAD_SHARE = 0.5
CAN_DIE = frozenset({"relu", "leaky_relu", "relu6"})


def dead_relus(window: Sequence[Snapshot]) -> Finding | None:
    snap = window[-1]
    dead = [x for x in _most_of("dead", DEAD_SHARE, snap) if x.activation in CAN_DIE]
    if not dead:
        return None
    worst = max(dead, key=lambda x: x.health)
    evidence = f"{worst.health:.0%} of {worst.name}'s units never fire"
    if len(dead) > 1:
        evidence += f" ({len(dead)} layers over {DEAD_SHARE:.0%})"
    names = tuple(x.name for x in dead)
    born = {
        x.name
        for x in _at_start(snap)
        if x.health_label == "dead" and x.health > DEAD_SHARE and x.name in names
    }
    if worst.name in born:
        # Dead at the first update: its bias or weights started it there, not the steps.
        evidence += ", since the first update"
        facts = _init_facts(worst) | {"cause": "dead"}
        return _finding("dead ReLUs", "warning", names, evidence, ("init", "leaky_relu"), facts)
    actions = ("lr_down", "leaky_relu", "batchnorm")
    return _finding("dead ReLUs", "warning", names, evidence, actions, _lr_facts(snap))


def _most_of(label: str, share: float, snap: Snapshot) -> list[LayerStats]:
    """The hidden layers more than ``share`` of whose units are ``label`` (dead, saturated)."""
    return [x for x in _hidden(snap.layers) if x.health_label == label and x.health > share]


# -- saturation ------------------------------------------------------------------------------------

# Karpathy ("Yes you should understand backprop"): a tanh unit beyond |a| = 0.97 passes almost no
# gradient back. The telemetry counts saturated entries per layer (sigmoid and tanh, see
# bpmon.engine.activations); the rule fires when most of a layer is pinned. Pinned from the
# first update on, the weights started too large: the initialisation is the fix.
SATURATED_SHARE = 0.5


def saturation(window: Sequence[Snapshot]) -> Finding | None:
    snap = window[-1]
    pinned = _most_of("saturated", SATURATED_SHARE, snap)
    if not pinned:
        return None
    worst = max(pinned, key=lambda x: x.health)
    evidence = f"{worst.health:.0%} of {worst.name}'s {worst.activation} outputs are pinned"
    names = tuple(x.name for x in pinned)
    at_start = [
        x for x in _at_start(snap) if x.health_label == "saturated" and x.health > SATURATED_SHARE
    ]
    if at_start:
        evidence += ", since the first update"
        facts = _init_facts(at_start[0])
        return _finding("saturation", "warning", names, evidence, ("init", "batchnorm"), facts)
    facts2: dict[str, float | str] = {"activation": worst.activation or "", "layer": worst.name}
    return _finding("saturation", "warning", names, evidence, ("batchnorm", "activation"), facts2)


# -- update ratio ----------------------------------------------------------------------------------

# cs231n ("Neural Networks Part 3"): the update of a weight matrix should be about 1e-3 of its
# size. Below 1e-4 the run barely moves. Above, it depends on the optimiser, measured on real
# models (benchmarks/calibration.py):
# - SGD's step is lr times the gradient, and healthy runs step far above 1e-2 early on (an MLP
#   with momentum 0.9 at lr 0.05: 10^-1.7; the LSTM language model's lr 20: 10^-0.5), so a large
#   ratio is a warning only while the loss stands above where it started: steps too big to learn.
# - Adam's step is about lr per weight whatever the gradient, so its ratio is lr over the
#   weights' scale: a GPT at AdamW 1e-3 with weights of std 0.02 peaks at 10^-1.5 after warmup,
#   at lr x100 it is above 10^-1 for its first updates. Above ADAPTIVE_HIGH is too fast.
# Read from the median over the layers, only while the loss is still well above where it
# started from (a converged run's updates are tiny for the right reason).
UPDATE_LOW = -4.0
UPDATE_HIGH = -2.0
ADAPTIVE_HIGH = -1.2
STILL_LEARNING = 0.1
# "Too low" needs the loss to be still above half its start: a run that has come down far with
# small steps (relu-bn, lr 0.01: 10^-4.6) is slow, not stuck.
STALLED = 0.5
# An optimiser is adaptive when its steps are this many times lr x the gradient (median over the
# layers): SGD's are 1 (up to 1/(1 - momentum), 10, and below 1 under clipping); Adam's are
# lr x sqrt(weights) whatever the gradient, hundreds of times more on every model measured.
ADAPTIVE = 30.0


def _ratio_level(snap: Snapshot) -> float | None:
    ratios = [x.update_ratio for x in snap.layers if math.isfinite(x.update_ratio)]
    ratios = [r for r in ratios if r > 0]
    return math.log10(statistics.median(ratios)) if ratios else None


def adaptive(snap: Snapshot) -> bool:
    """Whether the optimiser's steps are Adam's kind (about lr per weight whatever the
    gradient) rather than SGD's (lr times the gradient), read from the snapshot alone: the
    median over the layers of ``||update|| / (lr * ||gradient||)`` above :data:`ADAPTIVE`."""
    lr = snap.lr
    if not (math.isfinite(lr) and lr > 0):
        return False
    steps = [
        x.update_ratio * x.weight_norm / (lr * x.grad_norm)
        for x in snap.layers
        if math.isfinite(x.update_ratio)
        and x.update_ratio > 0
        and math.isfinite(x.grad_norm)
        and x.grad_norm > 0
        and math.isfinite(x.weight_norm)
    ]
    return bool(steps) and statistics.median(steps) > ADAPTIVE


def update_ratio(window: Sequence[Snapshot]) -> Finding | None:
    snap = window[-1]
    level = _ratio_level(snap)
    if level is None or snap.state == "diverged":
        return None
    evidence = f"each step changes the weights by 10^{level:.1f} of their size"
    fast = adaptive(snap)
    if fast and level > ADAPTIVE_HIGH:
        evidence += f" (Adam-like steps: aim below 10^{ADAPTIVE_HIGH:g})"
        return _finding("update ratio", "warning", (), evidence, ("lr_down",), _lr_facts(snap))
    if not fast and level > UPDATE_HIGH and _above_start(snap):
        evidence += ", and the loss is above where it started (aim: 10^-3)"
        return _finding("update ratio", "warning", (), evidence, ("lr_down",), _lr_facts(snap))
    if level < UPDATE_LOW and _far_from_done(snap, STALLED):
        evidence += " (aim: 10^-3)"
        return _finding("update ratio", "info", (), evidence, ("lr_up",), _lr_facts(snap))
    return None


def _far_from_done(snap: Snapshot, share: float = STILL_LEARNING) -> bool:
    """Whether the loss is still above ``share`` of where the run started."""
    # The first and the last finite value, without filtering the whole curve on every snapshot.
    first = next((v for v in snap.loss_values if math.isfinite(v)), None)
    if first is None:
        return False
    last = next(v for v in reversed(snap.loss_values) if math.isfinite(v))
    return last > share * first


def _above_start(snap: Snapshot) -> bool:
    """Whether the recent loss (the median of the last three points, so that one noisy
    mini-batch does not decide) stands above the run's first."""
    values = [v for v in snap.loss_values if math.isfinite(v)]
    return len(values) > 1 and statistics.median(values[-3:]) > values[0]


# -- plateau ---------------------------------------------------------------------------------------

# A loss that has not improved by PLATEAU_GAIN (relative) over the second half of its curve, while
# it is still above STILL_LEARNING of where it started and every gradient is small: the xor
# preset's saddle at 0.125.
PLATEAU_GAIN = 0.01
SMALL_GRADIENT = 1e-2
PLATEAU_POINTS = 20


def plateau(window: Sequence[Snapshot]) -> Finding | None:
    snap = window[-1]
    # The cheap tests first: this rule runs on every snapshot, of a live run and of a file.
    if len(snap.loss_values) < PLATEAU_POINTS or not snap.layers or not _far_from_done(snap):
        return None
    values = [v for v in snap.loss_values if math.isfinite(v)]
    if len(values) < PLATEAU_POINTS:
        return None
    half = values[len(values) // 2 :]
    gain = (half[0] - half[-1]) / abs(half[0]) if half[0] else 0.0
    largest = max(x.grad_norm for x in snap.layers)
    if gain >= PLATEAU_GAIN or not largest < SMALL_GRADIENT:
        return None
    steps = snap.loss_steps[-1] - snap.loss_steps[-len(half)]
    evidence = (
        f"the loss improved {max(gain, 0.0):.1%} over the last {steps:,} steps, at {half[-1]:.4g};"
        f" the largest gradient is {largest:.1e}"
    )
    return _finding("plateau", "info", (), evidence, ("wait", "lr_up"), _lr_facts(snap), ", or ")


# -- oscillation -----------------------------------------------------------------------------------

# The loss going up and down on nearly every point of the recent curve, the swings growing: the
# steps are too big for the valley. Noise turns too: in a sequence of independent values, each
# inner point is a turn with probability 2/3 (mean 2(n-2)/3 turns, variance (16n-29)/90), which
# is what sampled single mini-batch losses give. So the turns must stand OSC_SIGMAS standard
# deviations above that: on 24 points, 21 turns of 22 at least. Needs OSC_POINTS points.
OSC_POINTS = 12
OSC_SIGMAS = 3.0


def oscillation(window: Sequence[Snapshot]) -> Finding | None:
    snap = window[-1]
    values = [v for v in snap.loss_values[-OSC_POINTS * 2 :] if math.isfinite(v)]
    n = len(values)
    if n < OSC_POINTS:
        return None
    diffs = [b - a for a, b in itertools.pairwise(values)]
    turns = sum(1 for a, b in itertools.pairwise(diffs) if a * b < 0)
    noise = 2 * (n - 2) / 3 + OSC_SIGMAS * math.sqrt((16 * n - 29) / 90)
    if turns < min(noise, n - 2):
        return None
    swings = [abs(d) for d in diffs]
    half = len(swings) // 2
    early, late = statistics.mean(swings[:half]), statistics.mean(swings[half:])
    if not late > early:
        return None
    evidence = (
        f"the loss turned {turns} times in {len(diffs)} steps, swings {late / early:.1f}x larger"
    )
    return _finding("oscillation", "warning", (), evidence, ("lr_down",), _lr_facts(snap))


# -- divergence ------------------------------------------------------------------------------------


def divergence(window: Sequence[Snapshot]) -> Finding | None:
    snap = window[-1]
    if snap.state != "diverged":
        return None
    where = f" in {snap.diverged_layer}" if snap.diverged_layer else ""
    evidence = f"the loss diverged at step {snap.diverged_step}{where} (loss {snap.loss:.3g})"
    if snap.nonfinite is not None:
        evidence += "; " + snap.nonfinite.line
    layers = (snap.diverged_layer,) if snap.diverged_layer else ()
    actions = ("lr_down", "restart")
    return _finding("divergence", "error", layers, evidence, actions, _lr_facts(snap), " and ")


# -- where the first non-finite value came from (issue 18 item 6) --------------------------------

# A PyTorch run goes on after its first NaN (bpmon's own run diverges, and the divergence
# finding says where). The origin is a recorded fact that does not come and go, so the finding
# stands from the first line that carries it (see IMMEDIATE). Where the update named was not
# the first non-finite one (the module's weights were already not finite, or its forward was
# not checked), the advice is to check every update.


def non_finite(window: Sequence[Snapshot]) -> Finding | None:
    snap = window[-1]
    origin = snap.nonfinite
    if origin is None or snap.state == "diverged":
        return None
    # The module it was made in; a parameter only when no module was found.
    where = origin.module or origin.gradient
    names = (where,) if where else ()
    # Found late, the first thing to do is to find where it started; found where it started,
    # the usual cause is a step too large.
    late = origin.weights or not origin.forward_checked
    actions = ("nan_trace",) if late else _lr_actions(snap)
    facts = _lr_facts(snap) | {"nonfinite_step": float(origin.step)}
    evidence = origin.line.removeprefix("first non-finite: ")  # the rule's name says it
    return _finding("non-finite", "error", names, evidence, actions, facts)


# -- spike -----------------------------------------------------------------------------------------

# A spike is an event the writer found in its per-update series (bpmon.torch.spikes): the
# finding stands while the line that recorded it is among the last SPIKE_HELD snapshots, and is
# raised at once (IMMEDIATE), since no later snapshot can hold it again.
SPIKE_HELD = 20


def _spike_words(snap: Snapshot) -> tuple[str, tuple[str, ...]] | None:
    spikes = getattr(snap, "spikes", ())
    if not spikes:
        return None
    sp = spikes[-1]
    what = "gradient-norm" if sp.series == "grad_norm" else "loss"
    words = (
        f"{what} spike at update {sp.step}: {sp.value:.3g}, {sp.sigmas:.0f} standard deviations "
        f"above the mean of the updates before ({sp.mean:.3g})"
    )
    if sp.layer:
        words += (
            f"; {sp.layer}'s gradient left its range first (update {sp.layer_step}, "
            f"{sp.factor:.3g}x its median)"
        )
    if sp.series == "grad_norm" and sp.loss_followed is not None:
        words += "; the loss followed" if sp.loss_followed else "; the loss did not follow"
    return words, ((sp.layer,) if sp.layer else ())


def spike(window: Sequence[Snapshot]) -> Finding | None:
    for snap in reversed(list(window)[-SPIKE_HELD:]):
        found = _spike_words(snap)
        if found is not None:
            evidence, layers = found
            return _finding(
                "spike", "warning", layers, evidence, _lr_actions(snap), _lr_facts(snap), " or "
            )
    return None


# -- overfitting -----------------------------------------------------------------------------------

# Training accuracy OVERFIT_GAP above test accuracy, and still rising over the window.
OVERFIT_GAP = 0.15


def overfitting(window: Sequence[Snapshot]) -> Finding | None:
    snap = window[-1]
    if snap.accuracy is None or snap.test_accuracy is None:
        return None
    gap = snap.accuracy - snap.test_accuracy
    first = next((s.accuracy for s in window if s.accuracy is not None), None)
    if gap < OVERFIT_GAP or first is None or not snap.accuracy > first:
        return None
    evidence = f"train accuracy {snap.accuracy:.0%} vs test {snap.test_accuracy:.0%}, still rising"
    return _finding("overfitting", "info", (), evidence, ("depth_down", "stop"), None, ", or ")


RULES: dict[str, Rule] = {
    "divergence": divergence,
    "non-finite": non_finite,
    "exploding": exploding,
    "spike": spike,
    "vanishing": vanishing,
    "dead ReLUs": dead_relus,
    "saturation": saturation,
    "oscillation": oscillation,
    "update ratio": update_ratio,
    "plateau": plateau,
    "overfitting": overfitting,
}


# What each rule can advise: checked against the action table when this module is imported, so
# that no finding can name an action the view cannot render.
RULE_ACTIONS: dict[str, frozenset[str]] = {
    "divergence": frozenset({"lr_down", "restart"}),
    "non-finite": frozenset({"nan_trace", "lr_down", "clip"}),
    "exploding": frozenset({"init", "batchnorm", "lr_down", "clip"}),
    "spike": frozenset({"lr_down", "clip"}),
    "vanishing": frozenset({"activation", "batchnorm", "depth_down"}),
    "dead ReLUs": frozenset({"init", "leaky_relu", "lr_down", "batchnorm"}),
    "saturation": frozenset({"init", "batchnorm", "activation"}),
    "oscillation": frozenset({"lr_down"}),
    "update ratio": frozenset({"lr_down", "lr_up"}),
    "plateau": frozenset({"wait", "lr_up"}),
    "overfitting": frozenset({"depth_down", "stop"}),
}


def _check_actions() -> None:
    unknown = {a for named in RULE_ACTIONS.values() for a in named} - ACTIONS.keys()
    if unknown or RULE_ACTIONS.keys() != RULES.keys():
        raise ImportError(f"bpmon.diagnosis: unknown actions {sorted(unknown)} or rules")


_check_actions()


def evaluate(window: Sequence[Snapshot]) -> tuple[Finding, ...]:
    """Every rule that holds on ``window`` now, without hysteresis."""
    if not window or not window[-1].layers:
        return ()
    window = list(window)  # the rules slice it; a deque does not
    found = (rule(window) for rule in RULES.values())
    normalised = normalises(window[-1])
    return rank(_without_norm(f) if normalised else f for f in found if f is not None)


def normalises(snap: Snapshot) -> bool:
    """Whether the run's network has normalisation layers already: its switches say ``+bn``
    (bpmon's batch-norm switch; a PyTorch model with any norm layer, torch's or one recognised
    by what it is, see :func:`bpmon.torch.layers.is_norm`)."""
    return "+bn" in snap.switches.split()


def _without_norm(finding: Finding) -> Finding:
    """``finding`` without the "try batch-norm" action: a network that normalises already is
    not told to add it (on bpmon's own run its key would switch batch-norm off)."""
    if "batchnorm" not in finding.actions:
        return finding
    actions = tuple(a for a in finding.actions if a != "batchnorm")
    facts = dict(finding.facts)
    return replace(
        finding,
        actions=actions,
        advice=advice(actions, "live", facts),
        key=shown_key(actions[0], "live") if actions else None,
    )


class Diagnosis:
    """The findings of one run, fed its snapshots in order (see the module docstring). A new
    run (another ``run_id``) starts over."""

    def __init__(self) -> None:
        self._run_id: int | None = None
        self._reset()

    def _reset(self) -> None:
        self._window: deque[Snapshot] = deque(maxlen=WINDOW)
        self._held: dict[str, int] = {}
        self._gone: dict[str, int] = {}
        self._shown: dict[str, Finding] = {}

    def add(self, snap: Snapshot) -> tuple[Finding, ...]:
        """The findings standing after ``snap``."""
        if snap.run_id != self._run_id:
            self._reset()
            self._run_id = snap.run_id
        if (
            self._window
            and self._window[-1].step == snap.step
            and snap.state == self._window[-1].state
        ):
            return self.findings
        self._window.append(snap)
        now = {f.rule: f for f in evaluate(self._window)}
        for rule in RULES:
            if rule in now:
                self._held[rule] = self._held.get(rule, 0) + 1
                self._gone[rule] = 0
                # An end state is final: what holds there is shown at once.
                if (
                    self._held[rule] >= RAISE_AFTER
                    or rule in self._shown
                    or rule in IMMEDIATE
                    or _final(snap)
                ):
                    self._shown[rule] = now[rule]
            else:
                self._held[rule] = 0
                self._gone[rule] = self._gone.get(rule, 0) + 1
                if self._gone[rule] >= CLEAR_AFTER or _final(snap):
                    self._shown.pop(rule, None)
        return self.findings

    @property
    def findings(self) -> tuple[Finding, ...]:
        """The standing findings, most severe first, in the order of :data:`RULES`."""
        return rank(self._shown.values())


def rank(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """Most severe first; within a severity, in the order of :data:`RULES`."""
    rules = list(RULES)
    severity = {"error": 0, "warning": 1, "info": 2}
    return tuple(sorted(findings, key=lambda f: (severity[f.severity], rules.index(f.rule))))


def _final(snap: Snapshot) -> bool:
    return snap.state in ("finished", "diverged", "error", "stopped")
