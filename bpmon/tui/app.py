"""The Textual app: keys become trainer commands, snapshots become panel updates.

The training thread never calls into the UI. A 12 Hz timer on the UI thread fetches
``trainer.latest()`` and, when it is a new object, hands it to every panel's ``show``. That timer
is the only thing that redraws, so a fast run cannot flood the terminal and a paused run costs
nothing. Keys turn into :class:`Command` values sent to the trainer's queue.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import ClassVar

from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Vertical
from textual.notifications import SeverityLevel
from textual.reactive import reactive
from textual.widgets import Footer

from bpmon.config import HIDDEN_ACTIVATIONS, MAX_DEPTH, MIN_DEPTH, RunConfig
from bpmon.trainer import Command, Snapshot, Trainer

from .banner import DivergenceBanner
from .gradients import GradientPanel
from .help import HelpScreen
from .loss import LossPanel
from .predictions import PredictionPanel
from .status import StatusLine
from .toosmall import MIN_HEIGHT, MIN_WIDTH, TooSmall

# The UI pulls the latest snapshot 12 times a second and the trainer publishes 20 times a
# second, so every tick finds a new one: at least 10 frames/s reach the screen while training.
# Only the small panels redraw on every frame; the plot and the table throttle themselves.
FRAME_INTERVAL = 1 / 12
SNAPSHOT_INTERVAL = 0.05
# Side by side needs 80 columns for the gradient bars plus room for a useful plot.
WIDE_WIDTH = 140
# How long a key's edit is remembered when the trainer has not yet published a snapshot that
# reflects it; after that the latest snapshot's config is trusted again (e.g. a failed restart).
PENDING_TIMEOUT = 1.0
STOP_TIMEOUT = 2.0

_ACTIVATION = Binding.Group("act", compact=True)
_DEPTH = Binding.Group("depth", compact=True)
_LR = Binding.Group("lr x2 /2", compact=True)


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
    """Live view of one :class:`Trainer`; takes a trainer that has not been started yet."""

    # Absolute, because Textual resolves a relative CSS_PATH against the file of whichever
    # subclass is instantiated.
    CSS_PATH = Path(__file__).with_name("bpmon.tcss")
    TITLE = "bpmon"
    ENABLE_COMMAND_PALETTE = False
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
        _key("l", "toggle_log", "log", "Loss axis: log / linear", show=False),
        _key("question_mark", "help", "help", "This help"),
        _key("q", "quit", "quit", "Quit (stops the training thread)"),
        _key("ctrl+c", "quit", "quit", "Quit", show=False),
    ]

    log_scale: reactive[bool] = reactive(False)

    def __init__(self, trainer: Trainer) -> None:
        super().__init__()
        self.trainer = trainer
        self._shown: Snapshot | None = None
        self._notified = ""
        # The config a key edited last, until a snapshot shows it: two quick presses must
        # build on each other, not both on the same stale snapshot.
        self._pending: tuple[RunConfig, float] | None = None

    def compose(self) -> ComposeResult:
        yield TooSmall(id="too-small")
        with Vertical(id="main"):
            yield StatusLine(id="status")
            yield DivergenceBanner(id="banner")
            with Container(id="panels"):
                yield GradientPanel(id="gradients")
                with Container(id="lower"):
                    yield LossPanel(id="loss")
                    yield PredictionPanel(id="predictions")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._show(self.trainer.latest())
        if not self.trainer.alive:
            self.trainer.start()
        # Owned by the screen that holds the panels, so the timer goes when they go and never
        # fires into a half-dismantled app.
        self.screen.set_interval(FRAME_INTERVAL, self._tick)

    def on_unmount(self) -> None:
        self.trainer.stop(STOP_TIMEOUT)

    def on_resize(self, event: events.Resize) -> None:
        width, height = event.size
        self.query_one(TooSmall).show_size(width, height)
        self.query_one(GradientPanel).set_detail(width >= WIDE_WIDTH)

    # -- frames ----------------------------------------------------------------------------------

    def _tick(self) -> None:
        snapshot = self.trainer.latest()
        if snapshot is not self._shown:
            self._show(snapshot)

    def _show(self, snapshot: Snapshot) -> None:
        self._shown = snapshot
        self.query_one(StatusLine).show(snapshot)
        self.query_one(DivergenceBanner).show(snapshot)
        self.query_one(GradientPanel).show(snapshot)
        self.query_one(LossPanel).show(snapshot)
        self.query_one(PredictionPanel).show(snapshot)
        if snapshot.message and snapshot.message != self._notified:
            severity: SeverityLevel = "error" if snapshot.state == "error" else "warning"
            self.notify(snapshot.message, title=f"training {snapshot.state}", severity=severity)
        self._notified = snapshot.message

    def watch_log_scale(self, log_scale: bool) -> None:
        self.query_one(LossPanel).set_log_y(log_scale)

    # -- commands --------------------------------------------------------------------------------

    def _base_config(self) -> RunConfig:
        latest = self.trainer.latest().config
        if self._pending is not None:
            config, deadline = self._pending
            if latest != config and time.monotonic() < deadline:
                return config
            self._pending = None
        return latest

    def _restart(self, config: RunConfig) -> None:
        self._pending = (config, time.monotonic() + PENDING_TIMEOUT)
        self.trainer.send(Command("restart", config=config))

    def action_toggle_pause(self) -> None:
        state = self.trainer.latest().state
        if state in ("running", "paused"):
            self.trainer.send(Command("toggle_pause"))
        else:
            why = {"error": "stopped on an error", "stopped": "been stopped"}.get(state, state)
            self.notify(f"The run has {why}; r restarts it.", severity="warning")

    def action_step(self) -> None:
        if self.trainer.latest().state != "paused":
            self.notify("n steps a paused run; space pauses.", severity="warning")
            return
        self.trainer.send(Command("step"))

    def action_restart(self) -> None:
        self._restart(self._base_config())

    def action_activation(self, direction: int) -> None:
        config = self._base_config()
        current = config.model.activation
        # The output-only "identity" is not in the cycle; stepping from it starts the cycle.
        index = HIDDEN_ACTIVATIONS.index(current) if current in HIDDEN_ACTIVATIONS else -1
        if index < 0 and direction < 0:
            index = 0
        nxt = HIDDEN_ACTIVATIONS[(index + direction) % len(HIDDEN_ACTIVATIONS)]
        self._restart(config.with_activation(nxt))

    def action_depth(self, delta: int) -> None:
        config = self._base_config()
        depth = config.model.depth + delta
        if not MIN_DEPTH <= depth <= MAX_DEPTH:
            self.notify(
                f"Depth stays between {MIN_DEPTH} and {MAX_DEPTH} hidden layers.",
                severity="warning",
            )
            return
        self._restart(config.with_depth(depth))

    def action_batchnorm(self) -> None:
        config = self._base_config()
        self._restart(config.with_batchnorm(not config.model.batchnorm))

    def action_lr(self, factor: float) -> None:
        config = self._base_config()
        lr = config.train.lr * factor
        self._pending = (config.with_lr(lr), time.monotonic() + PENDING_TIMEOUT)
        self.trainer.send(Command("set_lr", lr=lr))

    def action_toggle_log(self) -> None:
        self.log_scale = not self.log_scale

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
            return
        self.push_screen(HelpScreen(self.help_rows()))

    def help_rows(self) -> list[tuple[str, str]]:
        rows = [
            (self.get_key_display(binding), binding.tooltip)
            for binding in Binding.make_bindings(self.BINDINGS)
            if binding.description and binding.tooltip
        ]
        # Textual's own keys, for the gradient rows and the table when they do not fit.
        rows.append(("tab", "Focus the next panel; ↑ ↓ pgup pgdn scroll it"))
        return rows

    async def action_quit(self) -> None:
        # Join the training thread before the UI goes, so no thread outlives the app.
        self.trainer.stop(STOP_TIMEOUT)
        self.exit()
