"""Two runs side by side (``bpmon --preset A --compare B``): one column per run, both loss curves
in one chart, and ``tab`` to move the keys from one run to the other.

:class:`CompareApp` is the monitor (:class:`~bpmon.tui.app.BpmonApp`) with two sources: its
``source`` is the *active* one, the run the keys act on, so every key, ``check_action``, the
help, the findings modal and the thread contract work as they do for one run; ``tab`` swaps
which source that is. The frame timer fetches both sources' snapshots each tick and hands each
to its column; the loss panel gets both.

A key changes the active run only, and says so: whatever a run's snapshots show changed (its
activation, depth, batch-norm, learning rate, a restart, a pause) is announced with the run's
name, ``run B (digits-relu-bn): activation sigmoid → relu (restarted)``, as are the notices
and messages that the single-run monitor announces.

Layout: under 160 columns a column is too narrow for the full gradient rows (~76 cells), so
both columns show them compactly (name, bar, norm, status; the bar shortened to fit, on the
same fixed log scale in both columns so the profiles compare by eye). From 160 columns each
column has the full gradient panel.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Footer

from bpmon.trainer import Snapshot

from .app import FOCUS_ROW, BpmonApp, _key, news
from .banner import DivergenceBanner
from .findings import FindingsScreen, FindingsStrip
from .gradients import (
    BAR_WIDTH,
    LOG_MAX,
    LOG_MIN,
    GradientPanel,
    axis_labels,
    bar_cells,
    format_norm,
    pad,
    short_name,
)
from .loss import LossPanel
from .status import StatusLine
from .toosmall import MIN_HEIGHT, TooSmall
from .view import TextLine

if TYPE_CHECKING:
    from bpmon.sources import Source

LETTERS = ("A", "B")
# From this width each column (half of it) holds the full gradient rows.
FULL_WIDTH = 160
# From this height the findings and the gradients get more rows.
ROOMY_HEIGHT = 36
# Lines for each run's findings: two at 80x24 (the loss chart keeps its rows), more when roomy.
_FINDING_ROWS_SHORT = 2
_FINDING_ROWS_ROOMY = 4
# The compact bar: shorter than the full panel's when the column is narrow, never shorter than
# one cell per decade.
_BAR_MIN = LOG_MAX - LOG_MIN
# The axis labels need this many cells to place three decades without overlapping.
_AXIS_THREE = 14
_NORM, _STATUS = 7, 9
# Where the column's gradient rows start: the name is at least as wide as the header's word.
_NAME_MIN, _NAME_MAX = len("layer"), 12


def run_label(index: int, snapshot: Snapshot | None) -> str:
    """``run B (digits-relu-bn)``: how an announcement names the run."""
    preset = "" if snapshot is None or not snapshot.preset else f" ({snapshot.preset})"
    return f"run {LETTERS[index]}{preset}"


def changes(old: Snapshot | None, new: Snapshot) -> list[str]:
    """What a key did to a run, as its snapshots show it: the switches and learning rate it
    changed, a restart, a pause, resume or single step. Nothing for the first snapshot, nor for
    what a run does by itself (finishing, diverging: its status line says that)."""
    if old is None:
        return []
    said: list[str] = []
    if old.config is not None and new.config is not None:
        before, after = old.config.model, new.config.model
        if before.activation_text != after.activation_text:
            said.append(f"activation {before.activation_text} → {after.activation_text}")
        if before.depth != after.depth:
            said.append(f"hidden layers {before.depth} → {after.depth}")
        if before.batchnorm != after.batchnorm:
            said.append(f"batch-norm {'on' if after.batchnorm else 'off'}")
    if old.lr != new.lr and math.isfinite(old.lr) and math.isfinite(new.lr):
        said.append(f"learning rate {old.lr:g} → {new.lr:g}")
    if new.run_id != old.run_id:
        said.append("restarted")
    elif (old.state, new.state) == ("running", "paused"):
        said.append("paused")
    elif (old.state, new.state) == ("paused", "running"):
        said.append("resumed")
    elif old.state == new.state == "paused" and new.step > old.step:
        said.append(f"one step, to step {new.step}")
    return [", ".join(said)] if said else []


class RunTitle(TextLine):
    """A column's first line: the run's letter and preset after a mark in its curve's colour,
    and whether the keys act on it (the stylesheet highlights the active column's title)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"run-title--a", "run-title--b"}

    def show(self, index: int, snapshot: Snapshot | None, active: bool) -> None:
        preset = "" if snapshot is None else snapshot.preset
        text = Text("▶ " if active else "  ")
        text.append(f"{LETTERS[index]} ", "bold")
        style = self.get_component_rich_style(f"run-title--{LETTERS[index].lower()}", partial=True)
        text.append("━━ ", style)
        text.append(preset, "bold")
        text.append(" · keys here" if active else " · tab: keys here")
        self.text = text


class RunStatus(StatusLine):
    """The status line without the preset's name, which the column's title already shows: the
    switches (what ``a``, ``b``, ``+`` change) then fit in a half-width column."""

    def render_snapshot(self, snapshot: Snapshot) -> tuple[Text, Text]:
        return super().render_snapshot(replace(snapshot, preset=""))


class RunGradients(GradientPanel):
    """The gradient panel of one column: the full rows where the column is wide enough
    (``compact`` False), else one short row per layer: name, bar, norm and status, the bar on
    the panel's fixed log scale but only as long as the column allows."""

    # Both runs' rows scroll with the focus (tab), as they always did here.
    WINDOWED = False
    compact: reactive[bool] = reactive(True, repaint=False)
    """Short rows; bound to the app's (it depends on the width)."""

    def context(self) -> tuple[Hashable, ...]:
        return (*super().context(), self.compact)

    def watch_compact(self) -> None:
        self.redraw()

    def draw(self, snapshot: Snapshot) -> None:
        if not self.compact:
            self.border_title = "gradients ‖dL/dW‖ · input layer first"
            super().draw(snapshot)
            return
        self.border_title = "‖dL/dW‖ · input layer first"
        inside = self.content_size.width - self.styles.scrollbar_size_vertical
        name = min(_NAME_MAX, max([_NAME_MIN, *(cell_len(x.name) for x in snapshot.layers)]))
        bar = max(_BAR_MIN, min(BAR_WIDTH, inside - name - _NORM - _STATUS - 3))
        header = f"{pad('layer', name)} {compact_axis(bar)} {'norm':>{_NORM}} status"
        self.header.text = Text(header, self._style("header"))
        body = Text()
        if not snapshot.layers:
            body.append("no gradients yet", self._style("legend"))
        for i, layer in enumerate(snapshot.layers):
            if i:
                body.append("\n")
            status = self._style(layer.status)
            filled, track = bar_cells(layer.grad_norm, bar)
            body.append(pad(short_name(layer.name, name), name) + " ")
            body.append(filled, status)
            body.append(track, self._style("track"))
            body.append(f" {format_norm(layer.grad_norm):>{_NORM}} ")
            body.append(layer.status, status)
        self.body.text = body
        self.legend.text = Text()


def compact_axis(width: int) -> str:
    """The decades under a bar of ``width`` cells: three where they fit, else the two ends."""
    if width >= _AXIS_THREE:
        return axis_labels(width)
    low, high = f"1e{LOG_MIN}", f"1e{LOG_MAX}"
    return low + " " * (width - len(low) - len(high)) + high


class RunFindingsScreen(FindingsScreen):
    """The findings modal, its title naming the run whose findings it lists (the active one)."""

    def on_mount(self) -> None:
        # FindingsScreen's own on_mount runs too (Textual calls each class's handler).
        self.watch(self.app, "active", self._title)

    def _title(self, active: int) -> None:
        app = self.app
        if isinstance(app, CompareApp):
            label = run_label(active, app.snapshot)
            self.query_one("#findings-box").border_title = f"bpmon findings · {label}"


class CompareApp(BpmonApp, inherit_bindings=False):
    """The monitor of two sources side by side; the keys act on ``source``, the active one,
    which ``tab`` swaps. Takes two sources that have not been started."""

    # Two columns leave no room for a plane; v says so (the trainers never compute one).
    SHOWS_BOUNDARY = False

    BINDINGS: ClassVar[list[BindingType]] = [
        *BpmonApp.BINDINGS,
        _key(
            "tab",
            "switch_run",
            "A⇄B",
            "Move the keys to the other run (A ⇄ B), its gradient rows' too",
        ),
    ]
    VERTICAL_BREAKPOINTS = [  # noqa: RUF012 - see BpmonApp
        *BpmonApp.VERTICAL_BREAKPOINTS,
        (ROOMY_HEIGHT, "-roomy"),
    ]

    active: reactive[int] = reactive(0, init=False)
    """Which run the keys act on: 0 (A) or 1 (B)."""
    run_a: reactive[Snapshot | None] = reactive(None, always_update=True, repaint=False)
    run_b: reactive[Snapshot | None] = reactive(None, always_update=True, repaint=False)
    compact: reactive[bool] = reactive(True, repaint=False)
    """Each column too narrow for the full gradient rows."""
    compare_rows: reactive[int] = reactive(_FINDING_ROWS_SHORT, repaint=False)
    """How many lines each run's findings may take."""

    def __init__(self, a: Source, b: Source) -> None:
        super().__init__(a)
        self.sources = (a, b)

    def compose(self) -> ComposeResult:
        yield TooSmall(id="too-small").data_bind(CompareApp.terminal_size)
        with Vertical(id="main"):
            with Horizontal(id="compare"):
                for index, run in enumerate((CompareApp.run_a, CompareApp.run_b)):
                    letter = LETTERS[index].lower()
                    with Vertical(id=f"run-{letter}", classes="run"):
                        yield RunTitle(id=f"title-{letter}", classes="run-title")
                        yield RunStatus(id=f"status-{letter}").data_bind(snapshot=run)
                        yield DivergenceBanner(id=f"banner-{letter}").data_bind(snapshot=run)
                        yield RunGradients(id=f"gradients-{letter}").data_bind(
                            snapshot=run, compact=CompareApp.compact
                        )
                        yield FindingsStrip(id=f"findings-{letter}").data_bind(
                            snapshot=run, max_rows=CompareApp.compare_rows
                        )
            # Under both columns: one chart for both curves.
            yield LossPanel(id="loss", names=self._names()).data_bind(
                snapshot=CompareApp.run_a, other=CompareApp.run_b, log_y=CompareApp.log_scale
            )
        yield Footer(compact=True, show_command_palette=False)

    def _names(self) -> tuple[str, str]:
        a, b = (source.latest().preset for source in self.sources)
        return f"A {a}", f"B {b}"

    def on_mount(self) -> None:
        # BpmonApp's on_mount runs after this one (Textual calls each class's handler): it
        # starts the active source, sets ``snapshot`` and the frame timer.
        self.run_a, self.run_b = (source.latest() for source in self.sources)
        other = self.sources[1]
        if not other.alive:
            other.start()
        self._show_active()

    def on_unmount(self) -> None:
        # BpmonApp's stops the active source; the other one is told here.
        for source in self.sources:
            source.stop(timeout=0)

    def on_resize(self, event: events.Resize) -> None:
        self.compact = event.size.width < FULL_WIDTH
        roomy = event.size.height >= ROOMY_HEIGHT
        self.compare_rows = _FINDING_ROWS_ROOMY if roomy else _FINDING_ROWS_SHORT

    # -- frames ----------------------------------------------------------------------------------

    def _tick(self) -> None:
        for index, source in enumerate(self.sources):
            latest = source.latest()
            shown = self.run_a if index == 0 else self.run_b
            if latest is shown or latest == shown:
                continue
            self._announce_run(index, shown, latest)
            if index == 0:
                self.run_a = latest
            else:
                self.run_b = latest
        active = self.run_a if self.active == 0 else self.run_b
        if active is not self.snapshot:
            self.snapshot = active

    def announce(self, old: Snapshot | None, new: Snapshot) -> None:
        """Nothing: ``snapshot`` changes run on ``tab``, so each run's news is announced from
        its own column's snapshots instead (:meth:`_announce_run`)."""

    def _announce_run(self, index: int, old: Snapshot | None, new: Snapshot) -> None:
        label = run_label(index, new)
        for message in changes(old, new):
            self.notify(f"{label}: {message}", markup=False)
        for message, title, severity in news(old, new):
            self.notify(f"{label}: {message}", title=title, severity=severity, markup=False)

    # -- keys ------------------------------------------------------------------------------------

    def action_switch_run(self) -> None:
        self.active = 1 - self.active

    def watch_active(self) -> None:
        self.source = self.sources[self.active]
        # A pause asked of the other run is not this one's.
        self.pending = ""
        self.snapshot = self.run_a if self.active == 0 else self.run_b
        self._show_active()
        # ↑ ↓ pgup pgdn scroll the active run's gradient rows.
        self.query_one(f"#gradients-{LETTERS[self.active].lower()}").focus()
        self.refresh_bindings()

    def _show_active(self) -> None:
        for index, snapshot in enumerate((self.run_a, self.run_b)):
            letter = LETTERS[index].lower()
            active = index == self.active
            self.query_one(f"#run-{letter}").set_class(active, "-active")
            self.query_one(f"#title-{letter}", RunTitle).show(index, snapshot, active)

    def action_findings(self) -> None:
        if isinstance(self.screen, FindingsScreen):
            self.screen.dismiss()
            return
        self.push_screen(RunFindingsScreen())

    def help_rows(self) -> list[tuple[str, str]]:
        label = run_label(self.active, self.snapshot)
        rows = [
            (keys, "Quit (stops both training threads)" if keys == "q" else what)
            for keys, what in super().help_rows()
            if (keys, what) != FOCUS_ROW
        ]
        rows.insert(0, ("", f"The keys act on {label}, the highlighted column; tab swaps."))
        rows.append(("shift+tab", "Focus a panel; ↑ ↓ pgup pgdn scroll it"))
        return rows


__all__ = ["FULL_WIDTH", "LETTERS", "MIN_HEIGHT", "CompareApp", "changes", "run_label"]
