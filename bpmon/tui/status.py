"""The status line: what is running, where it is, and how well it is doing."""

from __future__ import annotations

import math
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from bpmon.trainer import Snapshot


def format_loss(loss: float) -> str:
    return f"{loss:.4g}" if math.isfinite(loss) else str(loss)


def format_rate(per_second: float) -> str:
    """``48260`` -> ``"48.3k"``: three significant digits, since the rest only flickers (and
    every change is bytes on the wire)."""
    if per_second >= 1000:
        return f"{per_second / 1000:.3g}k"
    return f"{per_second:.3g}"


def format_percent(fraction: float) -> str:
    return f"{fraction * 100:.1f}%"


class StatusLine(Vertical):
    """Preset, architecture with its switches, progress, loss, accuracy, speed, lr and state.

    Two widgets, one per line: a terminal is sent every line of a widget that changed, and
    while a run trains only the progress line (epoch, loss, speed) changes."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "status--running",
        "status--paused",
        "status--finished",
        "status--diverged",
        "status--error",
        "status--stopped",
        "status--label",
        "status--message",
    }

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._shown: dict[str, tuple[Text, int]] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="status-run")
        yield Static(id="status-progress")

    @property
    def plain(self) -> str:
        """What the status line says, as text."""
        return "\n".join(text.plain for text, _ in self._shown.values())

    def show(self, snapshot: Snapshot) -> None:
        run, progress = self.render_snapshot(snapshot)
        self._update("status-run", run)
        self._update("status-progress", progress)

    def _update(self, widget_id: str, text: Text) -> None:
        shown = self._shown.get(widget_id)
        if shown is not None and text == shown[0]:
            return
        # A relayout of the screen costs more than drawing this line; it is needed only when
        # the text wraps to a different number of lines.
        lines = len(text.wrap(self.app.console, max(1, self.content_size.width)))
        self.query_one(f"#{widget_id}", Static).update(
            text, layout=shown is None or lines != shown[1]
        )
        self._shown[widget_id] = (text, lines)

    def render_snapshot(self, snapshot: Snapshot) -> tuple[Text, Text]:
        """The run line (state, preset, architecture, lr) and the progress line."""
        label = self.get_component_rich_style("status--label", partial=True)
        state_style = self.get_component_rich_style(f"status--{snapshot.state}", partial=True)

        text = Text(no_wrap=False, overflow="fold")
        text.append(f" {snapshot.state.upper()} ", state_style)
        text.append("  ")
        if snapshot.preset:
            text.append(snapshot.preset, "bold")
            text.append("  ")
        text.append(snapshot.switches)
        text.append("  lr ", label)
        text.append(f"{snapshot.lr:g}")
        run = text

        # Single spaces between fields (the labels are dimmed): the longest progress line, a
        # mini-batch run with a test split, then still fits 80 columns without wrapping, so
        # the layout does not jump as the digits change.
        text = Text(no_wrap=False, overflow="fold")
        text.append("epoch ", label)
        text.append(f"{snapshot.epoch}/{snapshot.epochs}")
        if snapshot.step != snapshot.epoch:
            # Mini-batch runs take several steps per epoch; the banner and `n` talk in steps.
            text.append(" step ", label)
            text.append(str(snapshot.step))
        text.append(" loss ", label)
        text.append(format_loss(snapshot.loss) if snapshot.step else "—")
        if snapshot.accuracy is not None:
            text.append(" acc ", label)
            text.append(format_percent(snapshot.accuracy))
        if snapshot.test_accuracy is not None:
            text.append(" test ", label)
            text.append(format_percent(snapshot.test_accuracy))
        if snapshot.state == "running" and snapshot.steps_per_second > 0:
            # Only a running run has a speed; leaving it out otherwise also keeps a paused
            # screen byte-for-byte reproducible.
            text.append(f" {format_rate(snapshot.steps_per_second)}", "bold")
            text.append(" steps/s", label)
        if snapshot.message:
            text.append("\n")
            text.append(
                snapshot.message, self.get_component_rich_style("status--message", partial=True)
            )
        return run, text
