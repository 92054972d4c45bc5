"""A run column: the panels of one source (its status, findings and gradients), bound to that
source's snapshots. The app composes one or more; the keys act on the active one.

Alone (``single``), the column is the whole monitor: status, banner, findings, then the
gradient rows beside or above the loss plot and the prediction table (or the decision
boundary). Beside others, it is the compact column of :mod:`bpmon.tui.compare`: a title naming
the run, its status, banner, gradient rows and findings; the loss chart under the columns is
the app's, shared by every run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Container, Vertical
from textual.reactive import reactive

from bpmon.trainer import Snapshot

from .banner import DivergenceBanner
from .boundary import BoundaryPanel
from .compare import LETTERS, RunGradients, RunStatus, RunTitle
from .findings import FindingsStrip
from .gradients import GradientPanel
from .loss import LossPanel
from .predictions import PredictionPanel
from .status import StatusLine

if TYPE_CHECKING:
    from bpmon.sources import Source


class RunColumn(Vertical):
    """The panels of ``source``, the run at ``index`` (A, B, ...) of the app's columns."""

    snapshot: reactive[Snapshot | None] = reactive(None, always_update=True, repaint=False)
    """The newest snapshot of this column's source that the app's frame timer fetched."""
    pending: reactive[str] = reactive("", repaint=False)
    """The state a pause/resume key asked for until a snapshot shows it (PAUSING…)."""
    wide: reactive[bool] = reactive(False, repaint=False)
    """Alone: wide enough for the step-1 bars beside the current ones."""
    compact: reactive[bool] = reactive(True, repaint=False)
    """Beside others: too narrow for the full gradient rows."""
    finding_rows: reactive[int] = reactive(3, repaint=False)
    """How many lines the findings strip may take."""
    log_y: reactive[bool] = reactive(False, repaint=False)
    """Log loss axis (``l``); the loss plot's, alone."""

    def __init__(self, source: Source, index: int, *, single: bool) -> None:
        letter = LETTERS[index].lower()
        super().__init__(id=f"run-{letter}", classes="" if single else "run")
        self.source = source
        self.index = index
        self.single = single

    def compose(self) -> ComposeResult:
        if self.single:
            yield StatusLine(id="status").data_bind(RunColumn.snapshot, RunColumn.pending)
            yield DivergenceBanner(id="banner").data_bind(RunColumn.snapshot)
            yield FindingsStrip(id="findings").data_bind(
                RunColumn.snapshot, max_rows=RunColumn.finding_rows
            )
            with Container(id="panels"):
                yield GradientPanel(id="gradients").data_bind(
                    RunColumn.snapshot, detail=RunColumn.wide
                )
                with Container(id="lower"):
                    yield LossPanel(id="loss").data_bind(RunColumn.snapshot, log_y=RunColumn.log_y)
                    yield PredictionPanel(id="predictions").data_bind(RunColumn.snapshot)
                    yield BoundaryPanel(id="boundary").data_bind(RunColumn.snapshot)
            return
        letter = LETTERS[self.index].lower()
        yield RunTitle(id=f"title-{letter}", classes="run-title")
        yield RunStatus(id=f"status-{letter}").data_bind(RunColumn.snapshot, RunColumn.pending)
        yield DivergenceBanner(id=f"banner-{letter}").data_bind(RunColumn.snapshot)
        yield RunGradients(id=f"gradients-{letter}").data_bind(
            RunColumn.snapshot, compact=RunColumn.compact
        )
        yield FindingsStrip(id=f"findings-{letter}").data_bind(
            RunColumn.snapshot, max_rows=RunColumn.finding_rows
        )

    def on_mount(self) -> None:
        # A run file's reader knows the snapshots before its cursor; a trainer's come here.
        history = getattr(self.source, "layer_history", None)
        if self.single and callable(history):
            self.gradients().history_of = history
        series = getattr(self.source, "metric_series", None)
        if self.single and callable(series):
            self.figures().series_of = series

    def watch_snapshot(self, old: Snapshot | None, new: Snapshot | None) -> None:
        if new is None or not self.pending:
            return
        if (
            new.state == self.pending
            or new.state not in ("running", "paused")
            or (old is not None and new.run_id != old.run_id)
        ):
            self.pending = ""

    def gradients(self) -> GradientPanel:
        return self.query_one(GradientPanel)

    def figures(self) -> PredictionPanel:
        return self.query_one(PredictionPanel)

    def show_active(self, active: bool) -> None:
        """Beside others: whether the keys act on this column (its title says so)."""
        if self.single:
            return
        self.set_class(active, "-active")
        self.query_one(RunTitle).show(self.index, self.snapshot, active)
