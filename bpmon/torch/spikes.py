"""Spikes in the per-update series: the score, and the row whose gradient norm moved first.

The score is OLMo 2's (arXiv 2501.00656): a point is a spike when it lies at least ``sigmas``
standard deviations above the mean of the last ``window`` points before it (7 and 1,000 by
default; ``watch(spike_sigmas=..., spike_window=...)``), on the logged loss and on the global
gradient norm before clipping. Only rises count (a loss that falls fast is learning), and:

- the point must also lie as many standard deviations above the point before it (the last one
  kept in the window): a spike is a sudden rise, not a drift. A CNN leaving its first plateau
  (the calibration set's ``cnn F.relu healthy``) has its gradient norm climb from 0.3 to 5 over
  25 updates, each a little above the last, while its loss falls from 2.2 to 0.4; against the
  flat stretch before it, that climb scored 7 standard deviations at update 55;

- the standard deviation is taken as at least 1% of the mean's size, so that a series that is
  almost flat (a loss of 2.3026 for 100 updates) does not call a rise of 0.1% a spike;
- scoring starts once the window holds :data:`MIN_POINTS` points;
- a spike is not added to the window, so that one spike does not hide the next for 1,000
  updates by widening the standard deviation;
- points that are not finite are neither scored nor kept (the NaN's origin is its own record).

**Where it is computed, and why on the host.** The series are read back at each measured
update, in that update's one transfer (:mod:`bpmon.torch.series`); scoring them there, point by
point in update order, with running sums over a ring of ``window`` floats, finds a spike for the
update where it happened, costs nothing on the updates that are not due (no device work, no
read-back) and keeps the rule in plain Python that a test can drive. The price is latency: a
spike is known at the next measured update (at most ``every`` updates later), so the per-row
norms around it come from the device ring :mod:`bpmon.torch.series` keeps of every update's
per-tensor norms, and "measured in full for the K after it" starts from the moment it is known
(the bridge then measures every update until ``K`` after the spike).

**The row that moved first.** For each row (weights and biases together), its own range is its
norms over the updates before the ``K`` that precede the spike (up to :data:`RANGE` of them); a
row leaves its range at the first update of the ``K + 1`` up to the spike where its norm is
above the range's maximum and ``sigmas`` standard deviations (at least 1% of the mean) above
its mean. The row that left first (the largest factor over its range's median among rows that
left at the same update) is named, with that factor.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from bpmon.runmodel import Spike

SIGMAS = 7.0
WINDOW = 1000
CONTEXT = 8  # K: the updates kept before a spike, and measured in full after it
RANGE = 24  # a row's own range: at most this many updates before the K that precede a spike
MIN_POINTS = 20
# The standard deviation is at least this share of the mean's size.
FLOOR = 0.01


class Rolling:
    """The mean and standard deviation of the last ``window`` points, by running sums, summed
    again from the ring every ``window`` points so that rounding cannot drift."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.values: deque[float] = deque()
        self.total = 0.0
        self.squares = 0.0
        self._added = 0

    def score(self, x: float) -> tuple[float, float, float] | None:
        """``(sigmas above the mean, the mean, sigmas above the last point kept)`` of ``x``,
        None while the window is short."""
        n = len(self.values)
        if n < min(MIN_POINTS, self.window):
            return None
        mean = self.total / n
        var = max(self.squares / n - mean * mean, 0.0)
        sd = max(math.sqrt(var), FLOOR * abs(mean), 1e-30)
        return (x - mean) / sd, mean, (x - self.values[-1]) / sd

    def add(self, x: float) -> None:
        self.values.append(x)
        self.total += x
        self.squares += x * x
        if len(self.values) > self.window:
            old = self.values.popleft()
            self.total -= old
            self.squares -= old * old
        self._added += 1
        if self._added % self.window == 0:
            self.total = math.fsum(self.values)
            self.squares = math.fsum(v * v for v in self.values)


@dataclass
class Open:
    """A spike found, waiting for the ``K`` updates after it (whether the loss followed)."""

    step: int
    series: str
    value: float
    mean: float
    sigmas: float
    loss_seen: bool = False
    loss_followed: bool = False
    until: int = 0


@dataclass
class Scorer:
    """Scores the two series point by point (:meth:`feed`); a spike is open until ``context``
    updates after it have been fed, then :meth:`complete` hands it over."""

    sigmas: float = SIGMAS
    window: int = WINDOW
    context: int = CONTEXT
    loss: Rolling = field(init=False)
    grad: Rolling = field(init=False)
    open: list[Open] = field(default_factory=list)
    last: int = 0  # the last update fed

    def __post_init__(self) -> None:
        self.loss = Rolling(self.window)
        self.grad = Rolling(self.window)

    def feed(self, step: int, loss: float, grad: float) -> Open | None:
        """Update ``step``'s loss and gradient norm (NaN: not known); the spike it opens."""
        self.last = step
        opened = None
        g_spike = self._score(self.grad, grad)
        l_spike = self._score(self.loss, loss)
        if math.isfinite(loss):
            for spike in self.open:
                if spike.step <= step <= spike.until:
                    spike.loss_seen = True
                    spike.loss_followed = spike.loss_followed or l_spike is not None
        recent = [s for s in self.open if s.step < step <= s.until]
        until = step + self.context
        if g_spike is not None and not any(s.series == "grad_norm" for s in recent):
            opened = Open(step, "grad_norm", grad, g_spike[1], g_spike[0], until=until)
            opened.loss_seen = math.isfinite(loss)
            opened.loss_followed = l_spike is not None
        elif l_spike is not None and not recent:
            opened = Open(step, "loss", loss, l_spike[1], l_spike[0], until=until)
            opened.loss_seen = opened.loss_followed = True
        if opened is not None:
            self.open.append(opened)
        return opened

    def _score(self, rolling: Rolling, x: float) -> tuple[float, float] | None:
        """``(sigmas, mean)`` when ``x`` is a spike (then kept out of the window), else None."""
        if not math.isfinite(x):
            return None
        got = rolling.score(x)
        if got is not None and got[0] >= self.sigmas and got[2] >= self.sigmas:
            return got[0], got[1]
        rolling.add(x)
        return None

    def complete(self, final: bool = False) -> list[Open]:
        """The open spikes whose ``K`` updates after them have been fed (every one at the end
        of the run, ``final``)."""
        done = [s for s in self.open if final or self.last >= s.until]
        self.open = [s for s in self.open if s not in done]
        return done


def first_to_leave(
    norms: Sequence[Sequence[float]], start: int, step: int, context: int, sigmas: float
) -> tuple[int, int, float] | None:
    """``(row, update, factor)``: the row whose norm left its own range first among the
    updates ``step - context`` .. ``step``, given ``norms[k][row]`` for update ``start + k``
    (see the module docstring); None when no row did, or no range is known."""
    first_in = max(step - context, start)
    base = [norms[k] for k in range(first_in - start)]
    if not base:
        return None
    rows = len(norms[0])
    ranges: list[tuple[float, float, float] | None] = []
    for r in range(rows):
        values = [b[r] for b in base if math.isfinite(b[r])]
        if not values:
            ranges.append(None)
            continue
        mean = statistics.fmean(values)
        sd = max(statistics.pstdev(values), FLOOR * abs(mean), 1e-30)
        ranges.append((max(values), mean + sigmas * sd, statistics.median(values)))
    for u in range(first_in, step + 1):
        left = []
        for r, bounds in enumerate(ranges):
            x = norms[u - start][r]
            if bounds is None or not math.isfinite(x):
                continue
            top, high, median = bounds
            if x > top and x > high:
                left.append((x / median if median > 0 else math.inf, r))
        if left:
            factor, r = max(left)
            return r, u, factor
    return None


def spike_record(
    spike: Open,
    names: Sequence[str],
    norms: Sequence[Sequence[float]],
    start: int,
    context: int,
    sigmas: float,
) -> Spike:
    """The run file's record of ``spike``, from every row's norms of updates ``start`` on."""
    found = first_to_leave(norms, start, spike.step, context, sigmas)
    layer, layer_step, factor = ("", None, math.nan)
    if found is not None:
        layer, layer_step, factor = names[found[0]], found[1], found[2]
    first = max(spike.step - context, start)
    kept = tuple(tuple(row) for row in norms[first - start : spike.step - start + 1])
    return Spike(
        step=spike.step,
        series="loss" if spike.series == "loss" else "grad_norm",
        value=spike.value,
        mean=spike.mean,
        sigmas=spike.sigmas,
        layer=layer,
        layer_step=layer_step,
        factor=factor,
        loss_followed=spike.loss_followed if spike.loss_seen else None,
        norms_start=first if kept else 0,
        norms=kept,
    )
