"""The Textual app: keys become commands, snapshots become what the panels show.

The training thread never calls into the UI, and while the app runs the UI calls nothing of the
source's (the trainer, or a run file's reader) but ``latest()``, ``send()`` and
``supports()``. A 12 Hz timer on the UI thread fetches ``source.latest()`` and, when it is a
new object, sets the app's reactive ``snapshot``, which Textual's data binding passes to every
panel; each panel then redraws at its own cadence (:mod:`bpmon.tui.view`). That timer is where
every redraw starts, so a fast run cannot flood the terminal and a paused run costs nothing.
Keys send intents (:class:`Command`: "one layer more", "lr x2"); the trainer turns them into a
configuration, or says in the snapshot's notice why it would not.

The keys follow the source: ``check_action`` lets a binding act (and show in the footer and the
help) only where ``source.supports()`` its command. A live run's < > set its pace (steps per
second); a run file's replay gets its cursor keys (left/right, home/end, space plays, < >
playback speed); a training key pressed on a run file falls through to a hidden binding that
says, once, that it does not apply.

The command palette (ctrl+p, :mod:`bpmon.tui.palette`) offers the presets, the values of the
playground's settings and every action here; it sends the same commands as the keys. ``s``
saves the run on screen as a preset file (:mod:`bpmon.tui.saving`).

The app starts the source when it mounts and tells it to stop when it unmounts, whatever ends
it (q, ctrl+c, a signal, a crash); it never waits for the thread (see :func:`bpmon.tui.run_app`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.command import CommandPalette
from textual.containers import Container, Vertical
from textual.geometry import Size
from textual.notifications import SeverityLevel
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Footer

from bpmon.config import HIDDEN_ACTIVATIONS, INITS, MAX_DEPTH, MIN_DEPTH, OPTIMIZERS, RunConfig
from bpmon.trainer import Command, CommandKind, Snapshot
from bpmon.trainer.commands import BATCH_SIZES, PACES, PLAYGROUND_DATASETS, data_refusal

from .banner import DivergenceBanner
from .boundary import BoundaryPanel
from .findings import FindingsScreen, FindingsStrip
from .gradients import GradientPanel
from .help import HelpScreen
from .loss import LossPanel
from .palette import PaletteCommands
from .predictions import PredictionPanel
from .saving import save_preset
from .screens import MonitorScreen, Palette
from .status import StatusLine, knobs
from .thisrun import KEY as METRIC_KEY
from .toosmall import MIN_HEIGHT, MIN_WIDTH, TooSmall

if TYPE_CHECKING:
    from bpmon.sources import Source

# The UI pulls the latest snapshot 12 times a second and the trainer publishes 20 times a
# second, so every tick finds a new one: at least 10 frames/s reach the screen while training.
# Only the small panels redraw on every frame; the others declare a slower cadence.
FRAME_INTERVAL = 1 / 12
SNAPSHOT_INTERVAL = 0.05
# Side by side needs 80 columns for the gradient bars plus room for a useful plot.
WIDE_WIDTH = 140

_ACTIVATION = Binding.Group("act", compact=True)
_DEPTH = Binding.Group("depth", compact=True)
_LR = Binding.Group("lr x2 /2", compact=True)
_SEEK = Binding.Group("snapshot", compact=True)
_SPEED = Binding.Group("speed", compact=True)

# The actions that are a command to the source: each acts only where the source supports it.
_COMMANDS: dict[str, CommandKind] = {
    "step": "step",
    "restart": "restart",
    "activation": "activation",
    "depth": "depth",
    "batchnorm": "batchnorm",
    "lr": "lr",
    "seek": "seek",
    "first": "home",
    "last": "end",
    "speed": "speed",
    "boundary": "boundary",
    "pace": "pace",
    "cycle": "cycle",
}
# Keys that change training: on a source that does not train, they say so (once).
_TRAINING_KEYS = (
    "space,n,r,a,A,shift+a,plus,minus,b,right_square_bracket,left_square_bracket,"
    "i,o,d,m,s,less_than_sign,greater_than_sign"
)
# Where the findings strip may take this many lines: more on a tall terminal.
_FINDING_ROWS_SHORT = 3
_FINDING_ROWS_TALL = 6
_TALL = 40
_RECORDED = "This is a recorded run: keys that change training do not apply."
_NOT_LIVE = "That key does nothing here: this is not a live run."
_QUIT_READER = "Quit (the file is only read: its writer goes on)"
# Textual's own keys, for the gradient rows and the table when they do not fit.
FOCUS_ROW = ("tab", "Focus the next panel; ↑ ↓ pgup pgdn scroll it")
_NO_BOUNDARY = "v: a run file has no network to draw a decision boundary with."
_NO_BOUNDARY_HERE = "v: the decision boundary is drawn for one run at a time, not with --compare."
_PACES = " → ".join("full speed" if p == float("inf") else f"{p:g}" for p in reversed(PACES))
_BATCHES = " → ".join(str(b) if b else "full" for b in BATCH_SIZES)


def _key(
    key: str,
    action: str,
    description: str = "",
    help_text: str = "",
    *,
    show: bool = True,
    group: Binding.Group | None = None,
) -> Binding:
    """An app binding. ``help_text`` is the help screen's line; no description means an alias that
    stays out of the footer and the help. Every one is a priority binding: no widget here wants
    these keys, and they must keep working under the help screen, which as a modal would
    otherwise cut the app's bindings off."""
    return Binding(
        key, action, description, show=show, priority=True, tooltip=help_text, group=group
    )


class BpmonApp(App[None]):
    """Live view of one source of snapshots (a :class:`~bpmon.trainer.Trainer`, or a run file
    read by :mod:`bpmon.sources`); takes one that has not been started yet."""

    # Absolute, because Textual resolves a relative CSS_PATH against the file of whichever
    # subclass is instantiated.
    CSS_PATH = Path(__file__).with_name("bpmon.tcss")
    TITLE = "bpmon"
    SHOWS_BOUNDARY = True
    """Whether the layout has the decision-boundary panel (``v``)."""
    COMMANDS = App.COMMANDS | {PaletteCommands}
    COMMAND_PALETTE_DISPLAY = "ctrl+p"
    # Textual annotates these as `ClassVar[...] | None`, which mypy reads as instance variables,
    # so a ClassVar annotation here would be an error; hence the noqa.
    HORIZONTAL_BREAKPOINTS = [  # noqa: RUF012
        (0, "-narrow"),
        (MIN_WIDTH, "-normal"),
        (WIDE_WIDTH, "-wide"),
    ]
    VERTICAL_BREAKPOINTS = [  # noqa: RUF012
        (0, "-short"),
        (MIN_HEIGHT, "-tall"),
    ]

    BINDINGS: ClassVar[list[BindingType]] = [
        # A live run's keys.
        _key("space", "toggle_pause", "pause", "Pause or resume training"),
        _key("n", "step", "step", "One training step (while paused)", show=False),
        _key("r", "restart", "restart", "Restart from the same seed, same settings"),
        _key(
            "a",
            "activation(1)",
            "next",
            "Next activation: " + " → ".join(HIDDEN_ACTIVATIONS) + " (restarts)",
            group=_ACTIVATION,
        ),
        _key(
            "A", "activation(-1)", "previous", "Previous activation (restarts)", group=_ACTIVATION
        ),
        _key("shift+a", "activation(-1)"),
        _key(
            "plus",
            "depth(1)",
            "more",
            f"One hidden layer more, same width (up to {MAX_DEPTH}; restarts)",
            group=_DEPTH,
        ),
        _key(
            "minus",
            "depth(-1)",
            "fewer",
            f"One hidden layer fewer (down to {MIN_DEPTH}; restarts)",
            group=_DEPTH,
        ),
        _key("b", "batchnorm", "bn", "Batch-norm on/off (restarts)"),
        _key("right_square_bracket", "lr(2.0)", "x2", "Learning rate x2, live", group=_LR),
        _key("left_square_bracket", "lr(0.5)", "/2", "Learning rate /2, live", group=_LR),
        _key(
            "i",
            "cycle('model.init')",
            "init",
            "Next init: "
            + " → ".join("normal (randn*0.1)" if i == "normal" else i for i in INITS)
            + " (restarts)",
            show=False,
        ),
        _key(
            "o",
            "cycle('train.optimizer')",
            "opt",
            "Next optimiser: " + " → ".join(OPTIMIZERS) + " (restarts)",
            show=False,
        ),
        _key(
            "d",
            "cycle('data.name')",
            "data",
            "Next data set: " + " → ".join(PLAYGROUND_DATASETS) + " (restarts)",
            show=False,
        ),
        _key(
            "m",
            "cycle('train.batch_size')",
            "batch",
            f"Next mini-batch: {_BATCHES} (restarts)",
            show=False,
        ),
        _key("less_than_sign", "pace(-1)", "slower", f"Slower: {_PACES} steps/s", show=False),
        _key("greater_than_sign", "pace(1)", "faster", "Faster, up to full speed", show=False),
        _key(
            "s",
            "save",
            "save",
            "Save this run as a preset file (bpmon-NAME-N.toml, here)",
            show=False,
        ),
        # A replay's keys.
        _key("left", "seek(-1)", "back", "One snapshot back", group=_SEEK),
        _key("right", "seek(1)", "on", "One snapshot on", group=_SEEK),
        _key("home", "first", "first", "The first snapshot"),
        _key("end", "last", "last", "The last snapshot"),
        _key("space", "play", "play", "Play / pause the replay (from the start when at the end)"),
        _key("less_than_sign", "speed(0.5)", "slower", "Play slower", group=_SPEED),
        _key("greater_than_sign", "speed(2.0)", "faster", "Play faster", group=_SPEED),
        # A training key on a source that does not train: after the keys above, so that it is
        # reached only when they do not apply.
        *(_key(key, "not_applicable") for key in _TRAINING_KEYS.split(",")),
        # The decision boundary: a live run's (the trainer says why on data that is not 2-D);
        # on a run file the second binding says why not.
        _key(
            "v",
            "boundary",
            "boundary",
            "Decision boundary over the input plane (2-D data), on/off",
            show=False,
        ),
        _key("v", "no_boundary"),
        # Every source's keys.
        _key(
            "f",
            "findings",
            "findings",
            "Every finding in full, with its advice (also enter)",
            show=False,
        ),
        # The gradient rows: a cursor that ↑ ↓ pgup pgdn move with no focus needed first;
        # enter opens or closes the group under it (else it opens the findings, below).
        _key("up", "rows(-1)"),
        _key("down", "rows(1)"),
        _key("pageup", "rows(-2)"),
        _key("pagedown", "rows(2)"),
        _key("enter", "toggle_group"),
        _key("enter", "findings"),
        _key(
            "h",
            "flow",
            "flow",
            "Gradient flow over time: the rows as a heatmap, on/off",
            show=False,
        ),
        _key("l", "toggle_log", "log", "Loss axis: log / linear", show=False),
        _key(METRIC_KEY, "metric", "metric", "Plot the next number the script logged", show=False),
        _key("question_mark", "help", "help", "This help"),
        _key("q", "quit", "quit", "Quit (stops the training thread)"),
        _key("ctrl+c", "quit", "quit", "Quit", show=False),
        # Textual's App quits on ctrl+q; here q and ctrl+c quit, as the README and help say.
        _key("ctrl+q", "quit_keys"),
    ]

    snapshot: reactive[Snapshot | None] = reactive(None, always_update=True, repaint=False)
    """The newest snapshot the frame timer fetched; bound to every panel."""
    log_scale: reactive[bool] = reactive(False, repaint=False)
    """Log loss axis (``l``); bound to the loss panel."""
    pending: reactive[str] = reactive("", repaint=False)
    """The state a pause/resume key asked for until a snapshot shows it (display only)."""
    terminal_size: reactive[Size] = reactive(Size(0, 0), repaint=False)
    wide: reactive[bool] = reactive(False, repaint=False)
    """Wide enough for the step-1 bars beside the current ones."""
    finding_rows: reactive[int] = reactive(_FINDING_ROWS_SHORT, repaint=False)
    """How many lines the findings strip may take."""
    boundary_shown: reactive[bool] = reactive(False, repaint=False)
    """Whether the snapshot carries a decision boundary (``v``): its panel then takes the
    prediction table's place."""

    def __init__(self, source: Source) -> None:
        super().__init__()
        self.source = source
        self._told_not_applicable = False
        self._told_no_data: int | None = None

    def compose(self) -> ComposeResult:
        yield TooSmall(id="too-small").data_bind(BpmonApp.terminal_size)
        with Vertical(id="main"):
            yield StatusLine(id="status").data_bind(BpmonApp.snapshot, BpmonApp.pending)
            yield DivergenceBanner(id="banner").data_bind(BpmonApp.snapshot)
            yield FindingsStrip(id="findings").data_bind(
                BpmonApp.snapshot, max_rows=BpmonApp.finding_rows
            )
            with Container(id="panels"):
                yield GradientPanel(id="gradients").data_bind(
                    BpmonApp.snapshot, detail=BpmonApp.wide
                )
                with Container(id="lower"):
                    yield LossPanel(id="loss").data_bind(
                        BpmonApp.snapshot, log_y=BpmonApp.log_scale
                    )
                    yield PredictionPanel(id="predictions").data_bind(BpmonApp.snapshot)
                    yield BoundaryPanel(id="boundary").data_bind(BpmonApp.snapshot)
        # At 80 columns the keys fill the footer; ctrl+p is in the help (?) instead.
        yield Footer(compact=True, show_command_palette=False)

    def get_default_screen(self) -> Screen[None]:
        return MonitorScreen(id="_default")

    def action_command_palette(self) -> None:
        # Textual's own action, opening the palette as a screen that ignores stale resizes.
        if self.use_command_palette and not isinstance(self.screen, CommandPalette):
            self.push_screen(Palette(id="--command-palette"))

    def on_mount(self) -> None:
        self.snapshot = self.source.latest()
        panel = self._gradient_panel()
        # A run file's reader knows the snapshots before its cursor; a trainer's come here.
        history = getattr(self.source, "layer_history", None)
        if panel is not None and callable(history):
            panel.history_of = history
        figures = self._prediction_panel()
        series = getattr(self.source, "metric_series", None)
        if figures is not None and callable(series):
            figures.series_of = series
        if not self.source.alive:
            self.source.start()
        # Owned by the screen that holds the panels, so the timer goes when they go and never
        # fires into a half-dismantled app.
        self.screen.set_interval(FRAME_INTERVAL, self._tick)

    def on_unmount(self) -> None:
        # The one way the training thread is told to end, however the app ends: asked, never
        # waited for here, since a step may take seconds and the UI must not hang on it.
        # ``run_app`` gives the thread a moment to finish once the terminal is restored.
        self.source.stop(timeout=0)

    def on_resize(self, event: events.Resize) -> None:
        self.terminal_size = event.size
        self.wide = event.size.width >= WIDE_WIDTH
        tall = event.size.height >= _TALL
        self.finding_rows = _FINDING_ROWS_TALL if tall else _FINDING_ROWS_SHORT

    # -- frames ----------------------------------------------------------------------------------

    def _tick(self) -> None:
        latest = self.source.latest()
        # A run file's reader publishes a new object at every poll, most of them equal to the
        # last: only news reaches the panels.
        if latest is not self.snapshot and latest != self.snapshot:
            self.snapshot = latest

    def watch_snapshot(self, old: Snapshot | None, new: Snapshot | None) -> None:
        if new is None:
            return
        self.boundary_shown = new.boundary is not None
        if self.pending and (
            new.state == self.pending
            or new.state not in ("running", "paused")
            or (old is not None and new.run_id != old.run_id)
        ):
            self.pending = ""
        self.announce(old, new)

    def announce(self, old: Snapshot | None, new: Snapshot) -> None:
        """Say what the new snapshot has to say once (see :func:`news`)."""
        for message, title, severity in news(old, new):
            # Not markup: a notice quotes values such as "[4, 4]" that markup would eat.
            self.notify(message, title=title, severity=severity, markup=False)

    def watch_boundary_shown(self, shown: bool) -> None:
        # On the app, not on the panels' container: it holds whichever screen is on top (help)
        # and whatever layout a subclass composes.
        self.set_class(shown, "-boundary")

    # -- keys: each one is an intent sent to the source, which decides what it means -----------

    def _live(self) -> bool:
        """Whether the source trains (space pauses it) rather than replays (space plays)."""
        return not self.source.supports("seek")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Only the keys the source understands act, and show in the footer and the help."""
        if isinstance(self.screen, CommandPalette):
            # The palette's input takes the keys; enter chooses a command there.
            return action == "quit"
        return self.applies(action)

    def applies(self, action: str) -> bool:
        """Whether ``action`` (a name, without parameters) does something on this source."""
        if action == "boundary" and not self.SHOWS_BOUNDARY:
            return False
        if action in _COMMANDS:
            return self.source.supports(_COMMANDS[action])
        if action == "toggle_pause":
            return self._live() and self.source.supports("toggle_pause")
        if action == "play":
            return not self._live() and self.source.supports("toggle_pause")
        if action == "save":
            return self.source.supports("restart")
        if action == "metric":
            figures = self._prediction_panel()
            return figures is not None and bool(figures.metric_names)
        if action == "findings":
            # Under the help, enter is the help's (it closes it).
            return not isinstance(self.screen, HelpScreen)
        if action in ("rows", "toggle_group", "flow"):
            # Over the main screen only, with its own gradient panel (not --compare's), and
            # never taking ↑ ↓ from a table that has the focus.
            panel = self._gradient_panel()
            if panel is None or not isinstance(self.screen, MonitorScreen):
                return False
            if action == "toggle_group":
                return panel.on_cursor_group()
            return action == "flow" or not isinstance(self.focused, DataTable)
        return True

    def _tell_not_applicable(self) -> None:
        if self._told_not_applicable:
            return
        self._told_not_applicable = True
        recorded = self.snapshot is not None and bool(self.snapshot.mode)
        self.notify(_RECORDED if recorded else _NOT_LIVE, severity="warning")

    def _send(self, kind: CommandKind, amount: float = 0.0, **details: object) -> bool:
        if not self.source.supports(kind):
            self._tell_not_applicable()
            return False
        self.source.send(Command(kind, float(amount), **details))  # type: ignore[arg-type]
        return True

    def action_quit_keys(self) -> None:
        self.notify("q quits (ctrl+c too).", severity="information")

    def action_not_applicable(self) -> None:
        self._tell_not_applicable()

    def action_toggle_pause(self) -> None:
        shown = self.source.latest()
        state = self.pending or shown.state
        if state not in ("running", "paused"):
            why = {"error": "stopped on an error", "stopped": "been stopped"}.get(state, state)
            self.notify(f"The run has {why}; r restarts it.", severity="warning")
            return
        if not self._send("toggle_pause"):
            return
        wanted = "paused" if state == "running" else "running"
        # A step can take seconds; until a snapshot shows the new state, the status line says
        # that the key was taken ("PAUSING…").
        self.pending = "" if wanted == shown.state else wanted

    def action_step(self) -> None:
        if (self.pending or self.source.latest().state) != "paused":
            self.notify("n steps a paused run; space pauses.", severity="warning")
            return
        self._send("step")

    def action_restart(self) -> None:
        self._send("restart")

    def action_activation(self, direction: int) -> None:
        self._send("activation", direction)

    def action_depth(self, delta: int) -> None:
        self._send("depth", delta)

    def action_batchnorm(self) -> None:
        self._send("batchnorm")

    def action_lr(self, factor: float) -> None:
        self._send("lr", factor)

    def action_boundary(self) -> None:
        # On or off by what the trainer last published, so the key always does what it shows.
        self._send("boundary", 0.0 if self.source.latest().boundary is not None else 1.0)

    def action_no_boundary(self) -> None:
        self.notify(_NO_BOUNDARY if self.SHOWS_BOUNDARY else _NO_BOUNDARY_HERE, severity="warning")

    def action_pace(self, direction: int) -> None:
        self._send("pace", direction)

    def action_cycle(self, key: str) -> None:
        config = self.source.latest().config
        if key == "data.name" and config is not None and (why := data_refusal(config)):
            # Said once a run: the trainer would refuse every press with the same words.
            run_id = self.source.latest().run_id
            if self._told_no_data != run_id:
                self._told_no_data = run_id
                self.notify(f"key d: {why}", severity="warning", markup=False)
            return
        self._send("cycle", 1, key=key)

    # The command palette's choices (bpmon.tui.palette): the same commands as the keys.

    def apply_setting(self, key: str, value: str | float) -> None:
        """Set configuration ``key`` to ``value`` and restart (the trainer validates it)."""
        self._send("set", key=key, value=value)

    def choose_preset(self, name: str, config: RunConfig) -> None:
        """Restart from preset ``name``'s configuration; the status line then names it."""
        self._send("restart", config=config, value=name)

    def set_pace(self, pace: float) -> None:
        self._send("pace", value=pace)

    def action_save(self) -> None:
        """Write the run on screen (its configuration, every key's change included) as a
        preset file in the working directory, and say where."""
        snapshot = self.source.latest()
        config = snapshot.config
        if config is None:
            self.notify("This run has no configuration to save.", severity="warning")
            return
        lr = f"lr {config.train.lr:g}"
        summary = ", ".join((snapshot.switches, knobs(config, ""), lr))
        description = f"Saved by bpmon from {snapshot.preset or 'a run'}: {summary}"
        try:
            path = save_preset(config, description, snapshot.preset, Path.cwd())
        except OSError as exc:
            reason = exc.strerror or str(exc)
            self.notify(
                f"Cannot save the run in the working directory: {reason}",
                title="not saved",
                severity="error",
                markup=False,
            )
            return
        self.notify(
            f"Saved {path.name}: bpmon --preset {path.name} runs it again.",
            title="saved",
            markup=False,
        )

    # A replay's cursor: the source moves it and publishes the snapshot under it.

    def action_seek(self, delta: int) -> None:
        self._send("seek", delta)

    def action_first(self) -> None:
        self._send("home")

    def action_last(self) -> None:
        self._send("end")

    def action_play(self) -> None:
        self._send("toggle_pause")

    def action_speed(self, factor: float) -> None:
        self._send("speed", factor)

    # -- what only the UI does --------------------------------------------------------------------

    def action_toggle_log(self) -> None:
        self.log_scale = not self.log_scale

    def _prediction_panel(self) -> PredictionPanel | None:
        return next(self.query("#predictions").results(PredictionPanel), None)

    def action_metric(self) -> None:
        figures = self._prediction_panel()
        if figures is not None:
            figures.next_metric()

    def _gradient_panel(self) -> GradientPanel | None:
        found = self.query("#gradients").results(GradientPanel)
        return next(found, None)

    def action_rows(self, how: int) -> None:
        """↑ ↓ (``how`` -1, 1) move the gradient rows' cursor a line, pgup pgdn (-2, 2) a page."""
        panel = self._gradient_panel()
        if panel is not None:
            panel.move(how if abs(how) == 1 else (how // 2) * panel.page())

    def action_toggle_group(self) -> None:
        panel = self._gradient_panel()
        if panel is not None:
            panel.toggle()

    def action_flow(self) -> None:
        panel = self._gradient_panel()
        if panel is not None:
            panel.flow = not panel.flow

    def action_findings(self) -> None:
        if isinstance(self.screen, FindingsScreen):
            self.screen.dismiss()
            return
        self.push_screen(FindingsScreen())

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
            return
        self.push_screen(HelpScreen(self.help_rows()))

    def help_rows(self) -> list[tuple[str, str]]:
        """The keys that act on this source, one row each."""
        trains = self.source.supports("step")
        rows = [
            (
                self.get_key_display(binding),
                binding.tooltip if trains or binding.key != "q" else _QUIT_READER,
            )
            for binding in Binding.make_bindings(self.BINDINGS)
            if binding.description
            and binding.tooltip
            and self.applies(binding.action.partition("(")[0])
        ]
        if self._gradient_panel() is not None:
            rows.append(
                ("↑ ↓ pgup pgdn", "Move through the gradient rows; enter opens or closes a group")
            )
        rows.append(FOCUS_ROW)
        rows.append(("ctrl+p", "Command palette: presets, settings and every action, by name"))
        return rows


def news(old: Snapshot | None, new: Snapshot) -> list[tuple[str, str, SeverityLevel]]:
    """What ``new`` has to say once, after ``old`` of the same source: its notice (an intent
    refused or clamped) when it is a new one, and its sticky message (an error, a failed
    restart) when it comes; as (message, title, severity). A run file's message (corrupt lines
    skipped) is in the status line only: its count may grow."""
    said: list[tuple[str, str, SeverityLevel]] = []
    notice = ""
    if old is None or new.notice_id != old.notice_id:
        notice = new.notice
        if notice:
            said.append((notice, "", "warning"))
    if (
        new.message
        and not new.mode
        and new.message != notice
        and (old is None or new.message != old.message)
    ):
        severity: SeverityLevel = "error" if new.state == "error" else "warning"
        said.append((new.message, f"training {new.state}", severity))
    return said
