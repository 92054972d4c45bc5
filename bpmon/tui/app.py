"""The Textual app: keys become commands, snapshots become what the run columns show.

The app shows one or more sources (a :class:`~bpmon.trainer.Trainer`, or a run file read by
:mod:`bpmon.sources`), each in its run column (:mod:`bpmon.tui.column`): one is the whole
monitor, several (up to four) stand side by side over one loss chart (``--compare``). The keys
act on the *active* column, whose source is ``source``; ``tab`` moves them to the next.

The training thread never calls into the UI, and while the app runs the UI calls nothing of a
source's but ``latest()``, ``send()`` and ``supports()``. A 12 Hz timer on the UI thread
fetches each ``source.latest()`` and, when it is news, hands it to its column, whose panels
redraw at their own cadence (:mod:`bpmon.tui.view`); the app's reactive ``snapshot`` is the
active column's. That timer is where every redraw starts, so a fast run cannot flood the
terminal and a paused run costs nothing. Keys send intents (:class:`Command`: "one layer
more", "lr x2"); the trainer turns them into a configuration, or says in the snapshot's notice
why it would not.

Every key is a row of the action table (:data:`bpmon.actions.ACTIONS`): the bindings, the
footer, the help, the palette (:mod:`bpmon.tui.palette`) and ``check_action`` come from it
(:mod:`bpmon.tui.keys`). A key acts, and shows, only where its row applies to the active
source; a live run's key pressed on a run file says, once, that it does not apply.

The app starts the sources when it mounts and tells them to stop when it unmounts, whatever
ends it (q, ctrl+c, a signal, a crash); it never waits for a thread (see
:func:`bpmon.tui.run_app`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import events
from textual.app import App, ComposeResult
from textual.binding import BindingType
from textual.command import CommandPalette
from textual.containers import Horizontal, Vertical
from textual.geometry import Size
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Footer

from bpmon.actions import ACTIONS
from bpmon.trainer import Command, Snapshot
from bpmon.trainer.commands import data_refusal

from .column import RunColumn
from .compare import (
    FULL_COLUMN,
    LETTERS,
    ROOMY_HEIGHT,
    ROWS_ROOMY,
    ROWS_SHORT,
    RunFindingsScreen,
)
from .findings import FindingsScreen
from .help import HelpScreen, help_rows
from .keys import acts, bindings, row_of
from .loss import LossPanel
from .news import announcements, news
from .palette import PaletteCommands
from .saving import save_run
from .screens import MonitorScreen, Palette
from .toasts import NoticeApp
from .toosmall import MIN_HEIGHT, MIN_WIDTH, TooSmall

if TYPE_CHECKING:
    from bpmon.actions import Action
    from bpmon.sources import Source

__all__ = ["FRAME_INTERVAL", "SNAPSHOT_INTERVAL", "WIDE_WIDTH", "BpmonApp", "news"]

# The UI pulls the latest snapshot 12 times a second and the trainer publishes 20 times a
# second, so every tick finds a new one: at least 10 frames/s reach the screen while training.
# Only the small panels redraw on every frame; the others declare a slower cadence.
FRAME_INTERVAL = 1 / 12
SNAPSHOT_INTERVAL = 0.05
# Side by side needs 80 columns for the gradient bars plus room for a useful plot.
WIDE_WIDTH = 140
# Where the findings strip may take this many lines: more on a tall terminal.
_FINDING_ROWS_SHORT = 3
_FINDING_ROWS_TALL = 6
_TALL = 40
_RECORDED = "This is a recorded run: keys that change training do not apply."
_NOT_LIVE = "That key does nothing here: this is not a live run."
_ROWS = {"up": -1, "down": 1, "pageup": -2, "pagedown": 2}


class BpmonApp(NoticeApp[None]):
    """Live view of one or two sources of snapshots, one run column each; takes sources that
    have not been started yet."""

    # Absolute, because Textual resolves a relative CSS_PATH against the file of whichever
    # subclass is instantiated.
    CSS_PATH = Path(__file__).with_name("bpmon.tcss")
    TITLE = "bpmon"
    COMMANDS = App.COMMANDS | {PaletteCommands}
    COMMAND_PALETTE_DISPLAY = "ctrl+p"
    # Textual annotates these as `ClassVar[...] | None`, which mypy reads as instance variables,
    # so a ClassVar annotation here would be an error; hence the noqa.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (MIN_WIDTH, "-normal"), (WIDE_WIDTH, "-wide")]  # noqa: RUF012
    VERTICAL_BREAKPOINTS = [(0, "-short"), (MIN_HEIGHT, "-tall"), (ROOMY_HEIGHT, "-roomy")]  # noqa: RUF012
    BINDINGS: ClassVar[list[BindingType]] = list(bindings())

    snapshot: reactive[Snapshot | None] = reactive(None, always_update=True, repaint=False)
    """The active column's newest snapshot (the findings modal shows it)."""
    log_scale: reactive[bool] = reactive(False, repaint=False)
    """Log loss axis (``l``); bound to the loss panel."""
    terminal_size: reactive[Size] = reactive(Size(0, 0), repaint=False)
    wide: reactive[bool] = reactive(False, repaint=False)
    """Wide enough for the step-1 bars beside the current ones (one column)."""
    compact: reactive[bool] = reactive(True, repaint=False)
    """Each of several columns too narrow for the full gradient rows."""
    finding_rows: reactive[int] = reactive(_FINDING_ROWS_SHORT, repaint=False)
    """How many lines a findings strip may take."""
    boundary_shown: reactive[bool] = reactive(False, repaint=False)
    """Whether the snapshot carries a decision boundary (``v``): its panel then takes the
    prediction table's place."""
    active: reactive[int] = reactive(0, init=False)
    """The column the keys act on."""

    def __init__(self, *sources: Source) -> None:
        if not 1 <= len(sources) <= len(LETTERS):
            raise ValueError(
                f"the monitor shows 1 to {len(LETTERS)} runs side by side, not {len(sources)}"
            )
        super().__init__()
        self.sources = sources
        self.columns = tuple(
            RunColumn(s, i, single=len(sources) == 1) for i, s in enumerate(sources)
        )
        self._told_not_applicable = False
        self._told_no_data: int | None = None

    @property
    def source(self) -> Source:
        """The source the keys act on: the active column's."""
        return self.sources[self.active]

    @property
    def column(self) -> RunColumn:
        return self.columns[self.active]

    def compose(self) -> ComposeResult:
        yield TooSmall(id="too-small").data_bind(BpmonApp.terminal_size)
        binds = {
            "wide": BpmonApp.wide,
            "compact": BpmonApp.compact,
            "finding_rows": BpmonApp.finding_rows,
            "log_y": BpmonApp.log_scale,
        }
        with Vertical(id="main"):
            if len(self.columns) == 1:
                yield self.columns[0].data_bind(**binds)
            else:
                with Horizontal(id="compare"):
                    for column in self.columns:
                        yield column.data_bind(**binds)
                # Under the columns: one chart for every run's curve.
                names = tuple(
                    f"{LETTERS[i]} {s.latest().preset}" for i, s in enumerate(self.sources)
                )
                yield LossPanel(id="loss", names=names).data_bind(log_y=BpmonApp.log_scale)
        # At 80 columns the keys fill the footer; ctrl+p is in the help (?) instead.
        yield Footer(compact=True, show_command_palette=False)

    def get_default_screen(self) -> Screen[None]:
        return MonitorScreen(id="_default")

    def action_command_palette(self) -> None:
        # Textual's own action, opening the palette as a screen that ignores stale resizes.
        if self.use_command_palette and not isinstance(self.screen, CommandPalette):
            self.push_screen(Palette(id="--command-palette"))

    def on_mount(self) -> None:
        for column in self.columns:
            column.snapshot = column.source.latest()
            column.show_active(column is self.column)
        self._shared_loss()
        self.snapshot = self.column.snapshot
        if len(self.columns) == 1 and self.snapshot is not None:
            self._announce(0, None, self.snapshot)
        for source in self.sources:
            if not source.alive:
                source.start()
        # Owned by the screen that holds the panels, so the timer goes when they go and never
        # fires into a half-dismantled app.
        self.screen.set_interval(FRAME_INTERVAL, self._tick)

    def on_unmount(self) -> None:
        # The one way the training threads are told to end, however the app ends: asked, never
        # waited for here, since a step may take seconds and the UI must not hang on it.
        # ``run_app`` gives the threads a moment to finish once the terminal is restored.
        for source in self.sources:
            source.stop(timeout=0)

    def on_resize(self, event: events.Resize) -> None:
        self.terminal_size = event.size
        width, height = event.size
        self.wide = width >= WIDE_WIDTH
        self.compact = width < FULL_COLUMN * len(self.columns)
        if len(self.columns) == 1:
            self.finding_rows = _FINDING_ROWS_TALL if height >= _TALL else _FINDING_ROWS_SHORT
        else:
            self.finding_rows = ROWS_ROOMY if height >= ROOMY_HEIGHT else ROWS_SHORT

    # -- frames ----------------------------------------------------------------------------------

    def _tick(self) -> None:
        for index, column in enumerate(self.columns):
            latest, shown = column.source.latest(), column.snapshot
            # A run file's reader publishes a new object at every poll, most of them equal to
            # the last: only news reaches the panels.
            if latest is shown or latest == shown:
                continue
            self._announce(index, shown, latest)
            column.snapshot = latest
        self._shared_loss()
        if self.column.snapshot is not self.snapshot:
            self.snapshot = self.column.snapshot

    def _shared_loss(self) -> None:
        if len(self.columns) > 1:
            self.query_one("#loss", LossPanel).show_runs([c.snapshot for c in self.columns])

    def _announce(self, index: int, old: Snapshot | None, new: Snapshot) -> None:
        """Say what a column's new snapshot has to say once (see :mod:`bpmon.tui.news`)."""
        for message, title, severity in announcements(index, len(self.columns), old, new):
            # Not markup: a notice quotes values such as "[4, 4]" that markup would eat.
            self.notify(message, title=title, severity=severity, markup=False)

    def watch_snapshot(self, new: Snapshot | None) -> None:
        if new is not None and len(self.columns) == 1:
            self.boundary_shown = new.boundary is not None

    def watch_boundary_shown(self, shown: bool) -> None:
        # On the app, not on the panels' container: it holds whichever screen is on top (help).
        self.set_class(shown, "-boundary")

    def watch_active(self) -> None:
        self.snapshot = self.column.snapshot
        for column in self.columns:
            column.show_active(column is self.column)
        # ↑ ↓ pgup pgdn scroll the active run's gradient rows.
        self.column.gradients().focus()
        self.refresh_bindings()

    # -- keys: each one a row of the action table ------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Only the keys whose row applies to the active source act, and show in the footer
        and the help."""
        if isinstance(self.screen, CommandPalette):
            # The palette's input takes the keys; enter chooses a command there.
            return action == "quit"
        if action == "refuse":
            return True
        row = row_of(action, parameters)
        return row is None or self.applies(row)

    def applies(self, row: Action, *, in_help: bool = False) -> bool:
        """Whether ``row`` acts on the active source, here and now."""
        if not acts(row, len(self.columns), self.source.supports):
            return False
        name = row.run.partition("(")[0]
        if name == "metric":
            # Only where the script logged a number to plot.
            return bool(self.column.figures().metric_names)
        if name == "findings":
            # Under the help, enter is the help's (it closes it).
            return not isinstance(self.screen, HelpScreen)
        if name in ("rows", "toggle_group", "flow"):
            # Over the main screen only, never taking ↑ ↓ from a table that has the focus.
            if not isinstance(self.screen, MonitorScreen):
                return False
            if name == "toggle_group":
                return self.column.gradients().on_cursor_group()
            return name == "flow" or in_help or not isinstance(self.focused, DataTable)
        return True

    def action_refuse(self, action: str) -> None:
        row = ACTIONS[action]
        if row.one_run and len(self.columns) > 1:
            self.notify(row.one_run, severity="warning")
        elif row.otherwise:
            self.notify(row.otherwise, severity="warning")
        else:
            self._refused()

    def _refused(self) -> None:
        if not self._told_not_applicable:
            self._told_not_applicable = True
            recorded = self.snapshot is not None and bool(self.snapshot.mode)
            self.notify(_RECORDED if recorded else _NOT_LIVE, severity="warning")

    def send(self, command: Command) -> bool:
        """Send ``command`` to the active source (the keys' and the palette's way), or say that
        it does not apply there."""
        if not self.source.supports(command.kind):
            self._refused()
            return False
        self.source.send(command)
        return True

    def action_send(self, action: str) -> None:
        """The command of the table's row ``action``, to the active source."""
        row = ACTIONS[action]
        if row.command is not None:
            self.send(Command(row.command, row.amount, key=row.setting))

    def action_quit_keys(self) -> None:
        self.notify("q quits (ctrl+c too).", severity="information")

    def action_toggle_pause(self) -> None:
        shown = self.source.latest()
        state = self.column.pending or shown.state
        if state not in ("running", "paused"):
            why = {"error": "stopped on an error", "stopped": "been stopped"}.get(state, state)
            self.notify(f"The run has {why}; r restarts it.", severity="warning")
            return
        if not self.send(Command("toggle_pause")):
            return
        wanted = "paused" if state == "running" else "running"
        # A step can take seconds; until a snapshot shows the new state, the status line says
        # that the key was taken ("PAUSING…").
        self.column.pending = "" if wanted == shown.state else wanted

    def action_step(self) -> None:
        if (self.column.pending or self.source.latest().state) != "paused":
            self.notify("n steps a paused run; space pauses.", severity="warning")
            return
        self.send(Command("step"))

    def action_boundary(self) -> None:
        # On or off by what the trainer last published, so the key always does what it shows.
        self.send(Command("boundary", 0.0 if self.source.latest().boundary is not None else 1.0))

    def action_data(self) -> None:
        snapshot = self.source.latest()
        if snapshot.config is not None and (why := data_refusal(snapshot.config)):
            # Said once a run: the trainer would refuse every press with the same words.
            if self._told_no_data != snapshot.run_id:
                self._told_no_data = snapshot.run_id
                self.notify(f"key d: {why}", severity="warning", markup=False)
            return
        self.action_send("data")

    def action_save(self) -> None:
        save_run(self, self.source.latest())

    def set_pace(self, pace: float) -> None:
        """The live run's pace, in steps per second (the palette's choice)."""
        self.send(Command("pace", value=pace))

    # -- what only the UI does --------------------------------------------------------------------

    def action_switch_run(self) -> None:
        self.active = (self.active + 1) % len(self.columns)

    def action_toggle_log(self) -> None:
        self.log_scale = not self.log_scale

    def action_metric(self) -> None:
        self.column.figures().next_metric()

    def action_rows(self, key: str) -> None:
        """↑ ↓ move the gradient rows' cursor a line, pgup pgdn a page."""
        panel, how = self.column.gradients(), _ROWS[key]
        panel.move(how if abs(how) == 1 else (how // 2) * panel.page())

    def action_toggle_group(self) -> None:
        self.column.gradients().toggle()

    def action_flow(self) -> None:
        panel = self.column.gradients()
        panel.flow = not panel.flow

    def action_findings(self) -> None:
        if isinstance(self.screen, FindingsScreen):
            self.screen.dismiss()
            return
        self.push_screen(FindingsScreen() if len(self.columns) == 1 else RunFindingsScreen())

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
            return
        self.push_screen(HelpScreen(help_rows(self)))
