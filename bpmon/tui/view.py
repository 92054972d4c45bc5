"""What every panel shares: the snapshot it is given, and the one rule for when it redraws.

The app holds the current :class:`Snapshot` in a reactive attribute and binds it to each
panel's ``snapshot`` (Textual data binding), so a panel never asks for data: it is given it.
How often a panel turns what it is given into a picture is decided here, for all of them:

- while a run trains, a panel redraws at most once per its ``REDRAW_INTERVAL`` seconds; the
  newest snapshot that arrived in between is drawn when the interval is up, so the last one
  before a long step is not lost;
- a run paced at most :data:`EVERY_STEP_PACE` steps per second redraws at every snapshot, so
  that each step is seen (the pace itself bounds the redraws);
- anything else redraws at once: a new run, a new state (a pause, a divergence), a move of a
  replay's cursor (``marker_step``: left/right must answer at once), a new size, or a change in
  what the panel's :meth:`SnapshotView.context` returns (the loss axis, the step-1 bars), and
  every new snapshot of a run that is not training (a step with ``n``).

A panel drawn from more than the app's snapshot (the loss panel of runs side by side) names
the others in :meth:`SnapshotView.also_shown`: news in any of them redraws, at the training
cadence while any of them trains.

Text that changes with the snapshot goes in a :class:`TextLine`, whose ``text`` is a reactive:
setting it to equal text costs nothing, so no panel keeps its own "did this change" record.
"""

from __future__ import annotations

import math
import operator
import time
from collections.abc import Hashable
from typing import Any, ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual.reactive import reactive
from textual.timer import Timer
from textual.widget import Widget

from bpmon.trainer import Snapshot

__all__ = ["EVERY_STEP_PACE", "SnapshotView", "TextLine"]

# The app shows 12 frames a second: a run paced at most this fast gets a frame for each step.
EVERY_STEP_PACE = 12.0


class SnapshotView(Widget):
    """A widget that shows the app's current snapshot. Subclasses set ``REDRAW_INTERVAL``,
    implement :meth:`draw`, and name in :meth:`context` anything else their picture depends on
    (and call :meth:`redraw` when it changes).

    A panel that is also some other widget lists that one first (``class P(VerticalScroll,
    SnapshotView)``): Textual takes a widget's default CSS and its CSS type names from the first
    base only.
    """

    REDRAW_INTERVAL: ClassVar[float] = 0.0
    """While a run trains, at most one redraw per this many seconds (0: every snapshot)."""

    snapshot: reactive[Snapshot | None] = reactive(None, always_update=True, repaint=False)
    """What to show; bound to the app's ``snapshot``."""

    def __init__(self, *children: Widget, **kwargs: Any) -> None:
        super().__init__(*children, **kwargs)
        self._drawn: tuple[tuple[Snapshot, ...], tuple[Hashable, ...]] | None = None
        self._drawn_at = -math.inf
        self._timer: Timer | None = None

    def context(self) -> tuple[Hashable, ...]:
        """Besides the run, its state, the replay cursor and the size: what a change of redraws
        at once."""
        return ()

    def draw(self, snapshot: Snapshot) -> None:
        """Show ``snapshot``; called only when :meth:`redraw` decides it is time."""
        raise NotImplementedError

    def also_shown(self) -> tuple[Snapshot, ...]:
        """Snapshots besides ``snapshot`` that the picture shows (their run and state belong in
        :meth:`context` too, to redraw at once when they change)."""
        return ()

    def watch_snapshot(self) -> None:
        self.redraw()

    def on_resize(self) -> None:
        self.redraw()

    def redraw(self) -> None:
        """Draw the current snapshot now, later, or not at all, by the rule in the module doc."""
        snapshot = self.snapshot
        if snapshot is None or not self.is_mounted:
            return
        key = (
            snapshot.run_id,
            snapshot.state,
            snapshot.marker_step,
            self.size,
            *self.context(),
        )
        shown = (snapshot, *self.also_shown())
        if self._drawn is not None:
            drawn, drawn_key = self._drawn
            if key == drawn_key:
                if len(drawn) == len(shown) and all(map(operator.is_, drawn, shown)):
                    return
                wait = self._drawn_at + self.REDRAW_INTERVAL - time.monotonic()
                # A slow pace shows every step: each of its snapshots is drawn as it comes.
                paced = all(s.pace <= EVERY_STEP_PACE for s in shown)
                if any(s.state == "running" for s in shown) and wait > 0 and not paced:
                    if self._timer is None:
                        self._timer = self.set_timer(wait, self._on_due)
                    return
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self._drawn = (shown, key)
        self._drawn_at = time.monotonic()
        self.draw(snapshot)

    def _on_due(self) -> None:
        self._timer = None
        self.redraw()


class TextLine(Widget):
    """One or more lines of rich text, drawn only when the text changes.

    The screen is laid out again only when the text's size may have changed: when the number
    of lines or the widest line's width changes, or on any change if the stylesheet lets the
    text wrap. Lines that do not wrap (``text-wrap: nowrap``) keep a frame cheap: while a run
    trains, only digits change, and the size stays.
    """

    DEFAULT_CSS = """
    TextLine {
        height: auto;
    }
    """

    text: reactive[Text] = reactive(Text, layout=False)

    def render(self) -> Text:
        return self.text

    def watch_text(self, old: Text, new: Text) -> None:
        if self.styles.text_wrap != "nowrap" or _shape(old) != _shape(new):
            self.refresh(layout=True)


def _shape(text: Text) -> tuple[int, int]:
    """Lines and the widest line's cells."""
    lines = text.plain.split("\n")
    return len(lines), max(cell_len(line) for line in lines)
