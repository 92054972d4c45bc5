"""The loss curve, drawn by plotext; the previous run's curve stays behind it, dimmed."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, ClassVar

from textual import events
from textual_plotext import PlotextPlot

from bpmon.trainer import Snapshot

# A running curve is redrawn at most this often: the plot is the largest and most expensive
# panel, both to render and in bytes sent to the terminal, and once a second still shows the
# loss moving. Anything else (a new run, a pause, the axis, the size) redraws at once.
PLOT_INTERVAL = 1.0

# Before the first layout the widget has no width; this is only used to pick points then.
_FALLBACK_WIDTH = 80
_FALLBACK_HEIGHT = 12


def decimate(xs: Sequence[int], ys: Sequence[float], points: int) -> tuple[list[int], list[float]]:
    """At most ``points`` evenly spread samples, always keeping the first and the last, so the
    cost of drawing depends on the plot's width and not on how long the run has gone on."""
    n = len(xs)
    if n <= points or points < 2:
        return list(xs), list(ys)
    picks = [round(i * (n - 1) / (points - 1)) for i in range(points)]
    return [xs[i] for i in picks], [ys[i] for i in picks]


def nice_ticks(high: int, count: int) -> list[int]:
    """Whole-step ticks from 0 at a 1-2-5 spacing, about ``count`` of them up to ``high``."""
    if high <= 0 or count < 1:
        return [0]
    raw = high / count
    spacing = 1
    while spacing * 5 < raw:
        spacing *= 10
    for factor in (1, 2, 5, 10):
        if spacing * factor >= raw:
            spacing *= factor
            break
    return list(range(0, high + 1, spacing))


def tick_label(step: int) -> str:
    return str(step) if step < 10_000 else f"{step / 1000:g}k"


def value_ticks(low: float, high: float, count: int, log: bool) -> list[float]:
    """``count`` ticks from ``low`` to ``high``, evenly spaced (geometrically on a log axis).

    Supplied by hand because plotext's own labels print every digit of a value, and a diverging
    run's 1e+226 then takes the whole plot's width for its labels.
    """
    if count < 2 or not low < high:
        return [low]
    if log:
        ratio = (high / low) ** (1 / (count - 1))
        return [low * ratio**i for i in range(count)]
    spacing = (high - low) / (count - 1)
    return [low + spacing * i for i in range(count)]


def value_label(value: float) -> str:
    return f"{value:.3g}"


def _positive(xs: Sequence[int], ys: Sequence[float]) -> tuple[list[int], list[float]]:
    kept = [(x, y) for x, y in zip(xs, ys, strict=True) if y > 0]
    return [x for x, _ in kept], [y for _, y in kept]


class LossPanel(PlotextPlot):
    """Training loss against step, linear or log y-axis."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"loss--current", "loss--previous"}

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.log_y = False
        self._snapshot: Snapshot | None = None
        self._drawn: tuple[Any, ...] | None = None
        self._drawn_step = -1
        self._drawn_at = 0.0

    def on_mount(self) -> None:
        self.border_title = "loss"

    def set_log_y(self, log_y: bool) -> None:
        self.log_y = log_y
        if self._snapshot is not None:
            self.show(self._snapshot)

    def on_resize(self, event: events.Resize) -> None:
        # The points drawn follow the width and the y ticks the height: a new size, a new pick.
        if self._snapshot is not None:
            self.show(self._snapshot)

    def show(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        width = self.size.width or _FALLBACK_WIDTH
        key = (
            snapshot.run_id,
            snapshot.state,
            len(snapshot.previous_loss_steps),
            self.log_y,
            width,
            self.size.height,
        )
        now = time.monotonic()
        throttled = snapshot.state == "running" and now - self._drawn_at < PLOT_INTERVAL
        if key == self._drawn and (snapshot.step == self._drawn_step or throttled):
            return
        self._drawn, self._drawn_step, self._drawn_at = key, snapshot.step, now
        self._draw(snapshot, width)
        self.refresh()

    def _rgb(self, component: str) -> tuple[int, int, int] | str:
        color = self.get_component_rich_style(component, partial=True).color
        if color is None:
            return "default"
        r, g, b = color.get_truecolor()
        return (r, g, b)

    def _draw(self, snapshot: Snapshot, width: int) -> None:
        plt = self.plt
        plt.clear_figure()
        scale = "log" if self.log_y else "linear"
        plt.yscale(scale)
        self.border_title = f"loss · {scale} (l)"
        self.border_subtitle = "dim: previous run" if snapshot.previous_loss_steps else ""
        curves = [
            (snapshot.previous_loss_steps, snapshot.previous_loss_values, "loss--previous"),
            (snapshot.loss_steps, snapshot.loss_values, "loss--current"),
        ]
        last = max(snapshot.loss_steps[-1:] + snapshot.previous_loss_steps[-1:], default=0)
        ticks = nice_ticks(last, max(1, width // 12))
        plt.xticks([float(t) for t in ticks], [tick_label(t) for t in ticks])
        drawn: list[float] = []
        for steps, values, component in curves:
            xs, ys = decimate(steps, values, width)
            if self.log_y:
                # A log axis cannot place zero; a loss of exactly 0 is dropped, not faked.
                xs, ys = _positive(xs, ys)
            if xs:
                plt.plot(xs, ys, marker="hd", color=self._rgb(component))
                drawn.extend(ys)
        if drawn:
            height = self.size.height or _FALLBACK_HEIGHT
            yticks = value_ticks(min(drawn), max(drawn), min(5, height // 3), self.log_y)
            plt.yticks(yticks, [value_label(t) for t in yticks])
        if not snapshot.loss_steps and not snapshot.previous_loss_steps:
            plt.title("waiting for the first step")
