"""The loss curve, drawn by plotext; the previous run's curve stays behind it, dimmed. Runs
compared side by side share one chart: each run's curve in its own colour, a legend naming
them."""

from __future__ import annotations

import math
import sys
from collections.abc import Hashable, Sequence
from typing import ClassVar

from rich.text import Text
from textual.reactive import reactive
from textual_plotext import PlotextPlot

from bpmon.curvepoints import envelope
from bpmon.runmodel import RUN_LETTERS
from bpmon.trainer import Snapshot

from .view import SnapshotView

# Before the first layout the widget has no width; this is only used to pick points then.
_FALLBACK_WIDTH = 80
_FALLBACK_HEIGHT = 12
# Values whose size is in this range reach plotext as they are; others are scaled first.
_SAFE_LOW = 1e-100
_SAFE_HIGH = 1e100
# The replay cursor's mark on the curve, and in the title.
MARKER = "◆"
# The component-class names of the runs after the first (b, c, d), whose colours the
# stylesheet gives.
_OTHERS = tuple(x.lower() for x in RUN_LETTERS[1:])


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


def value_ticks(low: float, high: float, count: int) -> list[float]:
    """``count`` evenly spaced ticks from ``low`` to ``high`` (on the plotted axis, so a log
    axis gets them geometrically spaced in value)."""
    if count < 2 or not low < high:
        return [low]
    spacing = (high - low) / (count - 1)
    return [low + spacing * i for i in range(count)]


def value_label(value: float) -> str:
    return f"{value:.3g}"


def power_label(exponent: float) -> str:
    """The label of a log axis tick: ``10 ** exponent``, even where that overflows a float."""
    try:
        return value_label(10.0**exponent)
    except OverflowError:
        return value_label(sys.float_info.max)


def axis_values(xs: Sequence[int], ys: Sequence[float], log: bool) -> tuple[list[int], list[float]]:
    """The points a curve can show on the axis: finite losses, and on a log axis only the
    positive ones, as their log10 (a log axis cannot place zero; that point is dropped, not
    faked)."""
    if log:
        kept = [(x, math.log10(y)) for x, y in zip(xs, ys, strict=True) if 0 < y < math.inf]
    else:
        kept = [(x, y) for x, y in zip(xs, ys, strict=True) if math.isfinite(y)]
    return [x for x, _ in kept], [y for _, y in kept]


def cursor_value(loss: float, log: bool) -> float | None:
    """Where the replay cursor's loss sits on the plotted axis; None where it cannot."""
    if log:
        return math.log10(loss) if 0 < loss < math.inf else None
    return loss if math.isfinite(loss) else None


def linear_scale(ys: Sequence[float]) -> float:
    """What to divide values by before handing them to plotext, whose arithmetic on the axis
    range overflows near the ends of the float range (1e300) and underflows near zero."""
    largest = max((abs(y) for y in ys), default=0.0)
    if largest == 0.0 or _SAFE_LOW <= largest <= _SAFE_HIGH:
        return 1.0
    return largest


class LossPanel(PlotextPlot, SnapshotView):
    """Training loss against step, linear or log y-axis; a replay's cursor
    (``snapshot.marker_step``) is a vertical line with a mark on the curve, and its step is in
    the title.

    Any history draws: empty, one point, all zero, negative, huge or not finite. plotext only
    ever gets finite numbers of moderate size on a linear axis; the log axis is drawn by
    plotting log10 of the loss and labelling the ticks with the values.

    Given other runs (``others``, with ``names`` for the legend), the panel compares: every
    run's curve against step in its own colour (``loss--current`` for the first, then
    ``loss--b``, ``loss--c``, ``loss--d``) and the legend in the border; each run's curve from
    before a restart is dimmed in its own colour (``loss--faded``, ``loss--b-faded``, ...), so
    that it reads as that run's.
    """

    # A running curve is redrawn at most once a second: the plot is the largest and most
    # expensive panel, both to render and in bytes sent to the terminal, and once a second
    # still shows the loss moving.
    REDRAW_INTERVAL = 1.0

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "loss--current",
        "loss--previous",
        "loss--faded",
        "loss--marker",
        *(f"loss--{x}" for x in _OTHERS),
        *(f"loss--{x}-faded" for x in _OTHERS),
    }

    log_y: reactive[bool] = reactive(False, repaint=False)
    """A log10 loss axis; bound to the app's ``log_scale``."""
    others: reactive[tuple[Snapshot | None, ...]] = reactive((), always_update=True, repaint=False)
    """The runs compared with ``snapshot``'s, in order (empty: one run; None: no snapshot yet)."""

    def __init__(self, *, names: tuple[str, ...] = (), id: str | None = None) -> None:
        super().__init__(id=id)
        self.names = names
        """The legend's names of ``snapshot``'s run and then the others'."""

    def on_mount(self) -> None:
        self.border_title = "loss"

    def context(self) -> tuple[Hashable, ...]:
        return (
            self.log_y,
            tuple(None if x is None else (x.run_id, x.state) for x in self.others),
        )

    def also_shown(self) -> tuple[Snapshot, ...]:
        return tuple(x for x in self.others if x is not None)

    def show_runs(self, runs: Sequence[Snapshot | None]) -> None:
        """Runs side by side, the first's snapshot then the others'; a reactive is set only
        when one of them is news, so that an unchanged frame redraws nothing."""
        first, others = runs[0], tuple(runs[1:])
        if self.snapshot is not first:
            self.snapshot = first
        if len(others) != len(self.others) or any(
            a is not b for a, b in zip(others, self.others, strict=True)
        ):
            self.others = others

    def watch_log_y(self) -> None:
        self.redraw()

    def watch_others(self) -> None:
        self.redraw()

    def _rgb(self, component: str) -> tuple[int, int, int] | str:
        color = self.get_component_rich_style(component, partial=True).color
        if color is None:
            return "default"
        r, g, b = color.get_truecolor()
        return (r, g, b)

    def draw(self, snapshot: Snapshot) -> None:
        width = self.size.width or _FALLBACK_WIDTH
        height = self.size.height or _FALLBACK_HEIGHT
        plt = self.plt
        plt.clear_figure()
        scale = "log" if self.log_y else "linear"
        self.border_title = f"loss · {scale} (l)"
        histories = [
            (snapshot.previous_loss_steps, snapshot.previous_loss_values, "loss--previous"),
            (snapshot.loss_steps, snapshot.loss_values, "loss--current"),
        ]
        if not self.others:
            self.border_subtitle = "dim: previous run" if snapshot.previous_loss_steps else ""
        else:
            runs = [(snapshot, "loss--current", "loss--faded")] + [
                (x, f"loss--{letter}", f"loss--{letter}-faded")
                for x, letter in zip(self.others, _OTHERS, strict=False)
                if x is not None
            ]
            # Each run's curve from before its restart, dimmed in that run's own colour, under
            # every current curve.
            histories = [(x.previous_loss_steps, x.previous_loss_values, f) for x, _, f in runs]
            histories += [(x.loss_steps, x.loss_values, c) for x, c, _ in runs]
            legend = self.legend()
            if any(x.previous_loss_steps for x, _, _ in runs):
                legend.append("  dim: before a restart")
            self.border_subtitle = legend
        last = max((steps[-1] for steps, _, _ in histories if steps), default=0)
        ticks = nice_ticks(last, max(1, width // 12))
        plt.xticks([float(t) for t in ticks], [tick_label(t) for t in ticks])
        curves = []
        for steps, values, component in histories:
            xs, ys = axis_values(*envelope(steps, values, width), log=self.log_y)
            if xs:
                curves.append((xs, ys, component))
        shown = [y for _, ys, _ in curves for y in ys]
        divide = 1.0 if self.log_y else linear_scale(shown)
        marker = snapshot.marker_step
        if marker is not None:
            self.border_title += f" · {MARKER} step {marker}"
            if shown:
                # Under the curves: where they cross it, the curve is what shows.
                plt.vline(marker, color=self._rgb("loss--marker"))
        for xs, ys, component in curves:
            plt.plot(xs, [y / divide for y in ys], marker="hd", color=self._rgb(component))
        at = cursor_value(snapshot.loss, self.log_y)
        if marker is not None and shown and at is not None:
            plt.scatter([marker], [at / divide], marker=MARKER, color=self._rgb("loss--marker"))
        if shown:
            low, high = min(shown) / divide, max(shown) / divide
            yticks = value_ticks(low, high, min(5, height // 3))
            labels = [power_label(t) if self.log_y else value_label(t * divide) for t in yticks]
            plt.yticks(yticks, labels)
        elif not any(steps for steps, _, _ in histories):
            plt.title("waiting for the first step")
        else:
            what = "positive" if self.log_y else "finite"
            plt.title(f"no {what} loss to draw")
        self.refresh()

    def legend(self) -> Text:
        """The runs' names, each after a mark in its curve's colour."""
        text = Text()
        components = ("loss--current", *(f"loss--{x}" for x in _OTHERS))
        for i, (name, component) in enumerate(zip(self.names, components, strict=False)):
            if i:
                text.append("  ")
            text.append("━━ ", self.get_component_rich_style(component, partial=True))
            text.append(name)
        return text
