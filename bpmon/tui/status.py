"""The status line: what is running, where it is, and how well it is doing."""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.reactive import reactive

from bpmon.config import RunConfig
from bpmon.trainer import Snapshot

from .view import SnapshotView, TextLine

# A run of at least this many equal hidden widths is written once with its count.
_RUN = 3
# The state word a pending key shows until a snapshot with the state it asked for arrives.
_PENDING_WORDS = {"paused": "PAUSING…", "running": "RESUMING…"}
# The first words of a run file's ``mode`` the stylesheet colours (``status--replay``, ...).
_MODE_WORDS = ("replay", "watching", "ended")


def format_loss(loss: float) -> str:
    return f"{loss:.4g}" if math.isfinite(loss) else str(loss)


def format_rate(per_second: float) -> str:
    """``48260`` -> ``"48.3k"``: three significant digits, since the rest only flickers (and
    every change is bytes on the wire)."""
    if per_second >= 1000:
        return f"{per_second / 1000:.3g}k"
    return f"{per_second:.3g}"


def format_r2(r2: float) -> str:
    return f"{r2:.3f}" if math.isfinite(r2) else "—"


def format_percent(fraction: float) -> str:
    return f"{fraction * 100:.1f}%"


def short_architecture(architecture: str) -> str:
    """``"2-2048-2048-2048-1"`` -> ``"2-2048x3-1"``: repeated hidden widths once, with a count,
    so that a deep wide network still fits the line. Shorter repeats (``2-8-8-4-1``) stay."""
    sizes = architecture.split("-")
    if len(sizes) <= 2:
        return architecture
    hidden: list[str] = []
    i = 1
    while i < len(sizes) - 1:
        j = i
        while j < len(sizes) - 1 and sizes[j] == sizes[i]:
            j += 1
        count = j - i
        hidden.extend([f"{sizes[i]}x{count}"] if count >= _RUN else sizes[i:j])
        i = j
    return "-".join([sizes[0], *hidden, sizes[-1]])


def short_switches(switches: str) -> str:
    """The snapshot's ``switches`` (``"2-8-8-4-1 relu +bn"``) with the architecture shortened."""
    architecture, _, rest = switches.partition(" ")
    return f"{short_architecture(architecture)} {rest}".rstrip()


def knobs(config: RunConfig, preset: str) -> str:
    """The settings the playground's keys change besides the architecture: the data set (when
    the preset's name does not already say it), the initialisation, the optimiser, a mini-batch
    size, and dropout and weight decay when they are on: ``"circle he adam batch 16 drop 0.25"``.
    The story's init reads as it wrote it."""
    m, t = config.model, config.train
    parts = [] if config.data.name == preset else [config.data.name]
    parts.append(f"randn*{m.init_std:g}" if m.init == "normal" else m.init)
    parts.append(t.optimizer)
    if t.batch_size:
        parts.append(f"batch {t.batch_size}")
    if m.dropout:
        parts.append(f"drop {m.dropout:g}")
    if t.weight_decay:
        parts.append(f"wd {t.weight_decay:g}")
    return " ".join(parts)


def short_pace(pace: float) -> str:
    """``10.0`` -> ``"10/s"``: the status line's short form of
    :func:`bpmon.trainer.commands.format_pace`."""
    return f"{pace:g}/s"


def mode_class(mode: str) -> str:
    """The component class of a recorded run's state word: ``"ENDED (finished)"`` -> ``"ended"``
    (``status--ended``); a word the stylesheet does not know gets ``status--mode``."""
    word = mode.split(" ", 1)[0].lower()
    return word if word in _MODE_WORDS else "mode"


class StatusLine(SnapshotView):
    """State (and pace), preset, architecture with its switches, the data set, init, optimiser
    and batch size, lr; then progress, loss, accuracy and speed.

    One widget per line, none of which wraps: a terminal is sent every line of a widget that
    changed, and while a run trains only the progress line (epoch, loss, speed) changes. A
    third line, shown only when there is one, holds the run's sticky message (an error, the
    corrupt lines a run file's reader skipped).

    A snapshot read from a run file says where it comes from in ``mode`` (``REPLAY``,
    ``WATCHING``, ``ENDED (finished)``): that is the state word then, and the source's
    ``detail`` (``snapshot 12/300 · at 2/s``) follows the run's name."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "status--running",
        "status--paused",
        "status--finished",
        "status--diverged",
        "status--error",
        "status--stopped",
        "status--pending",
        *(f"status--{word}" for word in _MODE_WORDS),
        "status--mode",
        "status--detail",
        "status--label",
        "status--message",
    }

    pending: reactive[str] = reactive("", repaint=False)
    """The state a key asked for and no snapshot shows yet ("paused", "running"), or ""."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.run_line = TextLine(id="status-run")
        self.progress_line = TextLine(id="status-progress")
        self.message_line = TextLine(id="status-message")

    def compose(self) -> ComposeResult:
        yield self.run_line
        yield self.progress_line
        yield self.message_line

    @property
    def plain(self) -> str:
        """What the status line says, as text."""
        lines = [self.run_line, self.progress_line, self.message_line]
        return "\n".join(line.text.plain for line in lines if line.text.plain)

    def context(self) -> tuple[Hashable, ...]:
        return (self.pending,)

    def watch_pending(self) -> None:
        self.redraw()

    def draw(self, snapshot: Snapshot) -> None:
        run, progress = self.render_snapshot(snapshot)
        self.run_line.text = run
        self.progress_line.text = progress
        self.message_line.text = Text(snapshot.message, self._style("message"))
        self.set_class(bool(snapshot.message), "-message")

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"status--{name}", partial=True)

    def render_snapshot(self, snapshot: Snapshot) -> tuple[Text, Text]:
        """The run line (state, preset, architecture, lr) and the progress line."""
        label = self._style("label")
        text = Text()
        if snapshot.mode:
            text.append(f" {snapshot.mode} ", self._style(mode_class(snapshot.mode)))
        else:
            word = _PENDING_WORDS.get(self.pending, "") if snapshot.state != self.pending else ""
            state = self._style("pending" if word else snapshot.state)
            text.append(f" {word or snapshot.state.upper()} ", state)
            if math.isfinite(snapshot.pace):
                # The pace first: at 80 columns a long line loses its end, not this.
                text.append("  pace ", label)
                text.append(short_pace(snapshot.pace), "bold")
        text.append("  ")
        if snapshot.preset:
            text.append(snapshot.preset, "bold")
            text.append("  ")
        if snapshot.detail:
            text.append(snapshot.detail, self._style("detail"))
            text.append("  ")
        text.append(short_switches(snapshot.switches))
        if snapshot.config is not None:
            text.append("  ")
            text.append(knobs(snapshot.config, snapshot.preset))
        # A run file's lr goes on the progress line, where there is room after the detail.
        if math.isfinite(snapshot.lr) and not snapshot.mode:
            text.append("  lr ", label)
            text.append(f"{snapshot.lr:g}")
        text.rstrip()
        run = text

        # Single spaces between fields (the labels are dimmed): the longest progress line, a
        # mini-batch run with a test split, then still fits 80 columns, so the layout does not
        # jump as the digits change.
        text = Text()
        if snapshot.epochs is None:
            # A run file that does not know its plan (a PyTorch run): steps, in plain digits.
            text.append("step ", label)
            text.append(str(snapshot.step))
            if snapshot.epoch and snapshot.epoch != snapshot.step:
                text.append(" epoch ", label)
                text.append(str(snapshot.epoch))
        else:
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
        # A regression reports R² where a classification reports accuracy.
        if snapshot.r2 is not None:
            text.append(" R² ", label)
            text.append(format_r2(snapshot.r2))
        if snapshot.test_r2 is not None:
            text.append(" test ", label)
            text.append(format_r2(snapshot.test_r2))
        if snapshot.mode and math.isfinite(snapshot.lr):
            # A run file may not know it (null).
            text.append(" lr ", label)
            text.append(f"{snapshot.lr:g}")
        if snapshot.state == "running" and snapshot.steps_per_second > 0:
            # Only a running run has a speed; leaving it out otherwise also keeps a paused
            # screen byte-for-byte reproducible.
            text.append(f" {format_rate(snapshot.steps_per_second)}", "bold")
            text.append(" steps/s", label)
        return run, text
