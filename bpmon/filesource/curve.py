"""One run's loss curve in a run file, and where its snapshot lines start: numbers only (step,
loss, offset, findings: 28 bytes a line), never the parsed lines, so that a file of millions of
lines fits."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

from bpmon.curvepoints import Points, envelope
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
    # The loss curve: a line's own point, or every update's since the previous line where the
    # line carries them (bpmon.curvepoints).
    point_steps: array[int] = field(default_factory=lambda: array("q"))
    point_losses: array[float] = field(default_factory=lambda: array("d"))
    _thin: tuple[int, tuple[tuple[int, ...], tuple[float, ...]]] | None = None

    def add(
        self, step: int, loss: float, offset: int, findings: int = -2, points: Points | None = None
    ) -> None:
        self.steps.append(step)
        self.losses.append(loss)
        self.offsets.append(offset)
        self.findings.append(findings)
        for x, y in points or ((step, loss),):
            self.point_steps.append(x)
            self.point_losses.append(y)

    def extend(self, other: _Curve) -> None:
        self.steps.extend(other.steps)
        self.losses.extend(other.losses)
        self.offsets.extend(other.offsets)
        self.findings.extend(other.findings)
        self.metrics.extend(other.metrics)
        self.point_steps.extend(other.point_steps)
        self.point_losses.extend(other.point_losses)

    def thinned(self) -> tuple[tuple[int, ...], tuple[float, ...]]:
        """At most :data:`CURVE_POINTS` points, each stretch's lowest and highest (a spike
        stays; :func:`bpmon.curvepoints.envelope`), the first and last kept; NaN (a null
        loss) is left in, as the trainer's history leaves a diverged step. Kept until the
        curve grows."""
        n = len(self.point_steps)
        if self._thin is None or self._thin[0] != n:
            xs, ys = envelope(self.point_steps, self.point_losses, CURVE_POINTS)
            self._thin = n, (tuple(xs), tuple(ys))
        return self._thin[1]


RECORDED = -1
PENDING = -2
