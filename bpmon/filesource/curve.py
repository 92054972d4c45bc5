"""One run's loss curve in a run file, and where its snapshot lines start: numbers only (step,
loss, offset, findings: 28 bytes a line), never the parsed lines, so that a file of millions of
lines fits."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

from bpmon.metrichistory import MetricHistory
from bpmon.readback import RunInfo
from bpmon.runmodel import LayerStats

# The loss curve handed to the panels has at most this many points (the plot thins it again).
CURVE_POINTS = 512


@dataclass
class _Curve:
    """One run's loss curve and where its snapshot lines start in the file."""

    steps: array[int] = field(default_factory=lambda: array("q"))
    losses: array[float] = field(default_factory=lambda: array("d"))
    offsets: array[int] = field(default_factory=lambda: array("q"))
    # Per snapshot: the index of its findings in the FindingsPass's sets; RECORDED when the
    # line carries its own, PENDING while the pass has not reached it.
    findings: array[int] = field(default_factory=lambda: array("i"))
    first_layers: tuple[LayerStats, ...] = ()
    info: RunInfo = field(default_factory=RunInfo)
    metrics: MetricHistory = field(default_factory=MetricHistory)

    def add(self, step: int, loss: float, offset: int, findings: int = -2) -> None:
        self.steps.append(step)
        self.losses.append(loss)
        self.offsets.append(offset)
        self.findings.append(findings)

    def extend(self, other: _Curve) -> None:
        self.steps.extend(other.steps)
        self.losses.extend(other.losses)
        self.offsets.extend(other.offsets)
        self.findings.extend(other.findings)
        self.metrics.extend(other.metrics)

    def thinned(self, upto: int | None = None) -> tuple[tuple[int, ...], tuple[float, ...]]:
        """At most :data:`CURVE_POINTS` evenly spread points, the first and last kept; NaN
        (a null loss) is left in, as the trainer's history leaves a diverged step."""
        n = len(self.steps) if upto is None else min(upto, len(self.steps))
        if n <= CURVE_POINTS:
            picks: range | list[int] = range(n)
        else:
            picks = [round(i * (n - 1) / (CURVE_POINTS - 1)) for i in range(CURVE_POINTS)]
        return tuple(self.steps[i] for i in picks), tuple(self.losses[i] for i in picks)


RECORDED = -1
PENDING = -2
