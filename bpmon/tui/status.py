"""The status line: what is running, where it is, and how well it is doing."""

from __future__ import annotations

import math
from typing import ClassVar

from rich.text import Text
from textual.widgets import Static

from bpmon.trainer import Snapshot


def format_loss(loss: float) -> str:
    return f"{loss:.4g}" if math.isfinite(loss) else str(loss)


def format_percent(fraction: float) -> str:
    return f"{fraction * 100:.1f}%"


class StatusLine(Static):
    """Preset, architecture with its switches, progress, loss, accuracy, speed, lr and state."""

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

    def show(self, snapshot: Snapshot) -> None:
        self.update(self.render_snapshot(snapshot))

    def render_snapshot(self, snapshot: Snapshot) -> Text:
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
        text.append("\n")

        text.append("epoch ", label)
        text.append(f"{snapshot.epoch}/{snapshot.epochs}")
        if snapshot.step != snapshot.epoch:
            # Mini-batch runs take several steps per epoch; the banner and `n` talk in steps.
            text.append("  step ", label)
            text.append(str(snapshot.step))
        text.append("  loss ", label)
        text.append(format_loss(snapshot.loss) if snapshot.step else "—")
        if snapshot.accuracy is not None:
            text.append("  acc ", label)
            text.append(format_percent(snapshot.accuracy))
        if snapshot.test_accuracy is not None:
            text.append("  test ", label)
            text.append(format_percent(snapshot.test_accuracy))
        if snapshot.state == "running" and snapshot.steps_per_second > 0:
            # Only a running run has a speed; leaving it out otherwise also keeps a paused
            # screen byte-for-byte reproducible.
            text.append(f"  {snapshot.steps_per_second:,.0f}", "bold")
            text.append(" steps/s", label)
        if snapshot.message:
            text.append("\n")
            text.append(
                snapshot.message, self.get_component_rich_style("status--message", partial=True)
            )
        return text
