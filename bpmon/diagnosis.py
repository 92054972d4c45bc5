"""What the gradients mean: findings computed from recent snapshots, with the key that tries a fix.

Every rule is a pure function of a short window of snapshots (newest last) and never of the
preset's name, so the same rules run on a live run, a replayed file, a followed file and a
PyTorch run watched from its run file, and in the headless summary. A rule returns a
:class:`Finding` (rule, severity, layers, evidence in numbers, advice with a key) or None.

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
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from bpmon.finding import Finding
from bpmon.telemetry import LayerStats

if TYPE_CHECKING:
    # Only a type: the diagnosis reads snapshots and never runs the trainer (the launcher puts
    # it between the trainer and its readers, bpmon.launch.live_trainer).
    from bpmon.trainer.snapshot import Snapshot

# A finding appears after its rule held for this many snapshots in a row, and goes after it
# failed for this many: at the monitor's 20 snapshots a second, about a quarter of a second.
RAISE_AFTER = 5
CLEAR_AFTER = 5
# How many snapshots the rules look back over.
WINDOW = 40


Rule = Callable[[Sequence["Snapshot"]], Finding | None]


def _ratio_words(ratio: float) -> str:
    """``1.2e-4`` -> ``"1/8,300"``: how a person reads a small fraction."""
    if ratio <= 0 or not math.isfinite(ratio):
        return "none"
    inverse = 1 / ratio
    digits = max(0, len(str(int(inverse))) - 2)
    return f"1/{round(inverse, -digits):,.0f}"


def _hidden(layers: Sequence[LayerStats]) -> list[LayerStats]:
    return [layer for layer in layers if layer.activation is not None]


# -- vanishing -------------------------------------------------------------------------------------

# The story's night: the first layers get a tiny share of the gradient the output layer gets. The
# telemetry's own relative threshold (Thresholds.vanish_rel, 1e-2) marks a layer vanishing; the
# rule reports the first layer's share of the output layer's gradient and what caused it.


# Saturation worth naming as the cause: a tenth of a layer's units pinned.
SATURATION_NOTED = 0.1


def vanishing(window: Sequence[Snapshot]) -> Finding | None:
    snap = window[-1]
    starving = [layer for layer in snap.layers if layer.status == "vanishing"]
    if not starving or len(starving) == len(snap.layers) or snap.state == "diverged":
        # All layers at once is a flat zero profile (dead units, convergence): not this rule.
        return None
    first, out = starving[0], snap.layers[-1]
    if not (math.isfinite(out.grad_norm) and out.grad_norm > 0):
        return None
    share = first.grad_norm / out.grad_norm
    evidence = f"{first.name} gets {_ratio_words(share)} of the output layer's gradient"
    saturated = [x for x in _hidden(snap.layers) if x.health_label == "saturated"]
    worst = max(saturated, key=lambda x: x.health, default=None)
    if worst is not None and worst.health >= SATURATION_NOTED:
        whose = "its" if worst is first else f"{worst.name}'s"
        evidence += f"; {worst.health:.0%} of {whose} {worst.activation} units are saturated"
    if first.activation in ("sigmoid", "tanh"):
        advice, key = "try ReLU (a) or batch-norm (b)", "a"
    else:
        advice, key = "try batch-norm (b) or fewer layers (-)", "b"
    return Finding("vanishing", "warning", tuple(x.name for x in starving), evidence, advice, key)


# -- exploding -------------------------------------------------------------------------------------

# In a plain ReLU net the weight-gradient norms stay flat across depth while the error signal
# dL/dz grows toward the input, so the rule reads the error signal: the input side's delta norm at
# least EXPLODE_GROWTH times the output layer's (the telemetry's explode_rel, 100), or any layer
# flagged exploding by the telemetry (its absolute floor), or the loss spiking to SPIKE times its
# recent median.
EXPLODE_GROWTH = 100.0
SPIKE = 10.0


def exploding(window: Sequence[Snapshot]) -> Finding | None:
    snap = window[-1]
    layers = snap.layers
    if not layers or snap.state == "diverged":
        return None
    deltas = [layer.delta_norm for layer in layers]
    flagged = tuple(layer.name for layer in layers if layer.status == "exploding")
    growth = deltas[0] / deltas[-1] if deltas[-1] > 0 else math.nan
    losses = [s.loss for s in window[:-1] if math.isfinite(s.loss)]
    spike = (
        bool(losses) and math.isfinite(snap.loss) and snap.loss > SPIKE * statistics.median(losses)
    )
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
        names = ()
    else:
        return None
    return Finding("exploding", "error", names, evidence, "lower the learning rate ([)", "[")


# -- dead ReLUs ------------------------------------------------------------------------------------

# SageMaker Debugger's dead-ReLU rule: more than half the units of a layer inactive. bpmon's
# telemetry counts a unit dead when it is active on no sample of the batch (health_label "dead").
DEAD_SHARE = 0.5


def dead_relus(window: Sequence[Snapshot]) -> Finding | None:
    dead = _most_of("dead", DEAD_SHARE, window[-1])
    if not dead:
        return None
    worst = max(dead, key=lambda x: x.health)
    evidence = f"{worst.health:.0%} of {worst.name}'s units never fire"
    if len(dead) > 1:
        evidence += f" ({len(dead)} layers over {DEAD_SHARE:.0%})"
    advice = "lower the learning rate ([), or try leaky_relu (a) or batch-norm (b)"
    return Finding("dead ReLUs", "warning", tuple(x.name for x in dead), evidence, advice, "[")


def _most_of(label: str, share: float, snap: Snapshot) -> list[LayerStats]:
    """The hidden layers more than ``share`` of whose units are ``label`` (dead, saturated)."""
    return [x for x in _hidden(snap.layers) if x.health_label == label and x.health > share]


# -- saturation ------------------------------------------------------------------------------------

# Karpathy ("Yes you should understand backprop"): a tanh unit beyond |a| = 0.97 passes almost no
# gradient back. The telemetry counts saturated entries per layer (sigmoid and tanh, see
# bpmon.engine.activations); the rule fires when most of a layer is pinned.
SATURATED_SHARE = 0.5


def saturation(window: Sequence[Snapshot]) -> Finding | None:
    pinned = _most_of("saturated", SATURATED_SHARE, window[-1])
    if not pinned:
        return None
    worst = max(pinned, key=lambda x: x.health)
    evidence = f"{worst.health:.0%} of {worst.name}'s {worst.activation} outputs are pinned"
    advice = "try batch-norm (b), or ReLU (a)"
    return Finding("saturation", "warning", tuple(x.name for x in pinned), evidence, advice, "b")


# -- update ratio ----------------------------------------------------------------------------------

# cs231n ("Neural Networks Part 3"): the update of a weight matrix should be about 1e-3 of its
# size. Below 1e-4 the run barely moves; above 1e-2 it overshoots. Read from the median over the
# layers, only while the loss is still well above where it started from (a converged run's updates
# are tiny for the right reason).
UPDATE_LOW = -4.0
UPDATE_HIGH = -2.0
STILL_LEARNING = 0.1
# "Too low" needs the loss to be still above half its start: a run that has come down far with
# small steps (relu-bn, lr 0.01: 10^-4.6) is slow, not stuck.
STALLED = 0.5


def update_ratio(window: Sequence[Snapshot]) -> Finding | None:
    snap = window[-1]
    ratios = [x.update_ratio for x in snap.layers if math.isfinite(x.update_ratio)]
    ratios = [r for r in ratios if r > 0]
    if not ratios or snap.state == "diverged":
        return None
    level = math.log10(statistics.median(ratios))
    if level > UPDATE_HIGH:
        evidence = f"each step changes the weights by 10^{level:.1f} of their size (aim: 10^-3)"
        return Finding("update ratio", "warning", (), evidence, "lower the learning rate ([)", "[")
    if level < UPDATE_LOW and _far_from_done(snap, STALLED):
        evidence = f"each step changes the weights by 10^{level:.1f} of their size (aim: 10^-3)"
        return Finding("update ratio", "info", (), evidence, "raise the learning rate (])", "]")
    return None


def _far_from_done(snap: Snapshot, share: float = STILL_LEARNING) -> bool:
    """Whether the loss is still above ``share`` of where the run started."""
    values = [v for v in snap.loss_values if math.isfinite(v)]
    return bool(values) and values[-1] > share * values[0]


# -- plateau ---------------------------------------------------------------------------------------

# A loss that has not improved by PLATEAU_GAIN (relative) over the second half of its curve, while
# it is still above STILL_LEARNING of where it started and every gradient is small: the xor
# preset's saddle at 0.125.
PLATEAU_GAIN = 0.01
SMALL_GRADIENT = 1e-2
PLATEAU_POINTS = 20


def plateau(window: Sequence[Snapshot]) -> Finding | None:
    snap = window[-1]
    values = [v for v in snap.loss_values if math.isfinite(v)]
    if len(values) < PLATEAU_POINTS or not snap.layers or not _far_from_done(snap):
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
    advice = "wait (a saddle can take long), or raise the learning rate (])"
    return Finding("plateau", "info", (), evidence, advice, "]")


# -- oscillation -----------------------------------------------------------------------------------

# The loss going up and down on most steps of the recent curve, the swings growing: the steps are
# too big for the valley. Needs at least OSC_POINTS points; "most" is OSC_TURNS of the turns.
OSC_POINTS = 12
OSC_TURNS = 0.6


def oscillation(window: Sequence[Snapshot]) -> Finding | None:
    snap = window[-1]
    values = [v for v in snap.loss_values[-OSC_POINTS * 2 :] if math.isfinite(v)]
    if len(values) < OSC_POINTS:
        return None
    diffs = [b - a for a, b in itertools.pairwise(values)]
    turns = sum(1 for a, b in itertools.pairwise(diffs) if a * b < 0)
    if turns < OSC_TURNS * (len(diffs) - 1):
        return None
    swings = [abs(d) for d in diffs]
    half = len(swings) // 2
    early, late = statistics.mean(swings[:half]), statistics.mean(swings[half:])
    if not late > early:
        return None
    evidence = (
        f"the loss turned {turns} times in {len(diffs)} steps, swings {late / early:.1f}x larger"
    )
    return Finding("oscillation", "warning", (), evidence, "lower the learning rate ([)", "[")


# -- divergence ------------------------------------------------------------------------------------


def divergence(window: Sequence[Snapshot]) -> Finding | None:
    snap = window[-1]
    if snap.state != "diverged":
        return None
    where = f" in {snap.diverged_layer}" if snap.diverged_layer else ""
    evidence = f"the loss diverged at step {snap.diverged_step}{where} (loss {snap.loss:.3g})"
    advice = "lower the learning rate ([) and restart (r)"
    layers = (snap.diverged_layer,) if snap.diverged_layer else ()
    return Finding("divergence", "error", layers, evidence, advice, "[")


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
    advice = "fewer layers (-), or stop here"
    return Finding("overfitting", "info", (), evidence, advice, "-")


RULES: dict[str, Rule] = {
    "divergence": divergence,
    "exploding": exploding,
    "vanishing": vanishing,
    "dead ReLUs": dead_relus,
    "saturation": saturation,
    "oscillation": oscillation,
    "update ratio": update_ratio,
    "plateau": plateau,
    "overfitting": overfitting,
}


def evaluate(window: Sequence[Snapshot]) -> tuple[Finding, ...]:
    """Every rule that holds on ``window`` now, without hysteresis."""
    if not window or not window[-1].layers:
        return ()
    window = list(window)  # the rules slice it; a deque does not
    found = (rule(window) for rule in RULES.values())
    return rank(f for f in found if f is not None)


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
                if self._held[rule] >= RAISE_AFTER or rule in self._shown or _final(snap):
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
