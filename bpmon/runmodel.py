"""The model of a run: every value a run hands its consumers, and every line of its run file.

Plain frozen dataclasses of tuples, floats, ints, strings and bytes, with no NumPy and no
training code, so that a replay, a followed file, the headless report and the PyTorch bridge all
speak of a run in the same terms as bpmon's trainer without importing it. :mod:`bpmon.codec`
turns each of them into a JSON object and back, from the fields declared here; a field's
metadata says where it travels:

- ``record=False``: not written to a snapshot line. The header and the restart events carry it
  (``preset``, ``architecture``, ``classes``...), or the reader derives it (the loss curve, the
  cursor), or it is the live monitor's own (a notice, the pace, the decision boundary).
- ``key``: the JSON key when it is not the field's name (``"time"`` for ``elapsed``).
- ``null_as``: the value a JSON ``null`` stands for where the field has no None (a writer that
  does not know the epoch writes null; the monitor shows epoch 0).
- ``sparse``: written only where the value is not the field's default (a reader decodes a
  missing key as the default).

Conventions: numbers that are not finite are NaN in the model and ``null`` in a file; a count
(a step, an epoch, a fan-in) is an int >= 0; text from a file has been made printable
(:func:`bpmon.text.printable`) before it reaches one of these objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from bpmon.config import RunConfig, Thresholds

FORMAT = "bpmon-run"
VERSION = 2

State = Literal["running", "paused", "finished", "diverged", "error", "stopped"]
STATES: tuple[State, ...] = ("running", "paused", "finished", "diverged", "error", "stopped")
EndState = Literal["finished", "diverged", "interrupted", "stopped", "error"]
END_STATES: tuple[EndState, ...] = ("finished", "diverged", "interrupted", "stopped", "error")
# The prediction table's rows, the first of the training split: what a snapshot carries and a
# reader keeps of a line, whatever the file holds (a line may hold 400,000).
PREDICTION_ROWS = 16

Severity = Literal["info", "warning", "error"]
Status = Literal["vanishing", "healthy", "exploding", "nonfinite"]
STATUSES: tuple[Status, ...] = ("vanishing", "healthy", "exploding", "nonfinite")

# The boundary's class for a pixel whose output is not finite.
UNKNOWN = 255
# How many points the loss curve of a run keeps (see LossHistory).
HISTORY_POINTS = 512
# The runs one monitor shows side by side (``--compare``, repeated), by letter: the first run
# is A, each ``--compare`` adds the next.
RUN_LETTERS = ("A", "B", "C", "D")


def _off() -> Any:
    """Metadata of a field that no snapshot line carries (see the module docstring)."""
    return {"record": False}


@dataclass(frozen=True)
class Finding:
    """One thing wrong with a run, said plainly: ``evidence`` holds the numbers, ``advice`` what
    to try, and ``key`` the monitor's key that tries it (None when no key does)."""

    rule: str
    severity: Severity
    layers: tuple[str, ...]
    evidence: str
    advice: str
    key: str | None = None
    # The actions that try a fix, ids of bpmon.actions.ACTIONS, the likeliest first; the view
    # renders each for the run's source (a key, or a change to a PyTorch script).
    actions: tuple[str, ...] = ()
    # The run's own numbers an action's wording quotes (name, value): "lr", "clipped_share"...
    facts: tuple[tuple[str, float | str], ...] = ()

    @property
    def line(self) -> str:
        """The finding in one line: its rule, its evidence and its advice."""
        return f"{self.rule}: {self.evidence} — {self.advice}"


@dataclass(frozen=True)
class LayerStats:
    """One layer at one snapshot. ``health_label`` says what ``health`` counts ("saturated" or
    "dead"; empty for the output layer, which has no hidden activation). ``activation`` names
    the hidden activation after the layer (None for the output layer). ``update_ratio`` NaN
    means unknown (never 0 for "not stepped"). ``params`` is the trainable parameters in the row
    (0: not known); ``note`` says why a figure is missing."""

    name: str
    fan_in: int
    fan_out: int
    grad_norm: float
    bias_grad_norm: float
    weight_norm: float
    update_ratio: float
    delta_norm: float
    health: float
    health_label: str
    status: Status
    activation: str | None = None
    params: int = 0
    note: str = ""
    # The layer's type where a run file's header says it ("Linear"; empty when unknown): the
    # panels name a numbered row "164 (Linear)". The header says it once, not every line.
    kind: str = field(default="", metadata=_off())


@dataclass(frozen=True)
class Prediction:
    """One row of the prediction table. ``output`` is the network's output row (one probability
    for a binary task, one per class otherwise); ``target`` and ``predicted`` are class indices.
    A row whose output is not finite is never ``correct``, whatever its ``predicted`` says."""

    inputs: tuple[float, ...] = field(metadata={"key": "input"})
    target: int
    output: tuple[float, ...]
    predicted: int = 0
    correct: bool = False
    # Regression: the target in its own units (``output`` is the prediction in the same units,
    # ``target`` and ``predicted`` are 0, and ``correct`` says only that the output is finite).
    target_value: float | None = None


class Point(NamedTuple):
    """A data point in the boundary's plane coordinates with its true class."""

    x1: float
    x2: float
    label: int


@dataclass(frozen=True)
class Boundary:
    """The network's answer over the plane at one step (conventions:
    :mod:`bpmon.trainer.boundary`, which computes it)."""

    step: int
    axes: tuple[str, str]
    x1: tuple[float, float]
    """The plane's left and right edge."""
    x2: tuple[float, float]
    """The plane's bottom and top edge."""
    size: int
    n_classes: int
    classes: bytes
    """Predicted class per pixel, ``size * size``, row-major from the top."""
    confidence: bytes
    """Confidence per pixel, 0 (a coin toss) to 255 (certain)."""
    train: tuple[Point, ...]
    test: tuple[Point, ...]

    def locate(self, point: Point) -> tuple[float, float]:
        """Where ``point`` lies as fractions of the plane: (across from the left, down from the
        top), each in [0, 1] for a point inside it."""
        (left, right), (bottom, top) = self.x1, self.x2
        return (point.x1 - left) / (right - left), (top - point.x2) / (top - bottom)


# -- where the first non-finite value came from (issue 18 item 6) --------------------------------


@dataclass(frozen=True)
class NonFinite:
    """Where a run's first non-finite value was seen, at update ``step``: the first update whose
    gradients or loss were checked and found not finite (the PyTorch bridge checks due updates,
    or every update with ``watch(..., nan_trace=True)``; bpmon's engine checks every update).

    - ``gradient``: the first parameter, in backward order (the order backward produced the
      gradients: output side first), whose gradient is not finite; "" when every gradient was
      finite (a non-finite loss only) or none was checked.
    - ``module``: the first module, in forward order, whose output was not finite while its
      inputs were finite; "" when the forward pass was not checked on that update
      (``forward_checked`` False) or every output was finite.
    - ``weights``: that module's own parameters were already not finite, so the non-finite
      value arrived at an earlier update that was not checked (its output is not where it
      started).
    - ``loss``: the loss logged for that update was not finite.
    - ``inputs``: the model's own input (the data) was not finite, so no module made it.
    """

    step: int
    gradient: str = ""
    module: str = ""
    weights: bool = False
    forward_checked: bool = False
    loss: bool = False
    inputs: bool = False

    @property
    def line(self) -> str:
        """One line, as the banner and the finding say it: where the first non-finite value
        was made, ``first non-finite: transformer.h.3.attn, forward output, update 1234``. The
        gradient is named only when nothing before it was found: once the forward pass or the
        loss is not finite, backward makes every gradient so, the output side's first."""
        if self.module:
            head = f"{self.module}, {'weights' if self.weights else 'forward output'}"
        elif self.inputs:
            head = "the input data"
        elif self.gradient and not (self.loss and self.forward_checked):
            head = f"{self.gradient}, gradient"
        else:
            head = "the loss"
        return f"first non-finite: {head}, update {self.step}"


@dataclass(frozen=True)
class Spike:
    """A point of a per-update series (the loss, or the global gradient norm before clipping)
    at least ``sigmas`` standard deviations above the rolling mean of the updates before it;
    written by the PyTorch bridge (:mod:`bpmon.torch.spikes` says how it is scored).

    ``layer`` is the row whose gradient norm (weights and biases together) left its own range
    first in the updates up to ``step``, at update ``layer_step``, ``factor`` times the median
    of its range ("" and NaN when none did). ``loss_followed``: whether the loss spiked too
    within the updates after (None: no loss was logged). ``norms`` holds every row's gradient
    norm (rows in the line's order) for updates ``norms_start`` .. ``step``: the context."""

    step: int
    series: Literal["grad_norm", "loss"]
    value: float
    mean: float
    sigmas: float
    layer: str = ""
    layer_step: int | None = None
    factor: float = math.nan
    loss_followed: bool | None = None
    norms_start: int = 0
    norms: tuple[tuple[float, ...], ...] = ()


@dataclass(frozen=True)
class Snapshot:
    """Everything a consumer may show about a run at one moment; immutable, plain values.

    ``message`` is sticky (why the run is in error, why a restart failed); ``notice`` is said
    once, each time ``notice_id`` changes (an intent that was refused or clamped).
    ``switches`` is the architecture with the switches a user can flip: ``"2-8-8-4-1 relu +bn"``.

    A snapshot need not come from bpmon's own trainer: one read back from a run file (a replay,
    a followed file, a PyTorch run) has no ``config`` and may not know ``epochs``, the accuracy
    or the predictions. ``mode`` then says where it comes from in the status line's first word
    (``"REPLAY"``, ``"WATCHING"``, ``"ENDED (finished)"``; empty for a live run), ``detail``
    adds what the source knows (``"snapshot 12/300 · 2x"``, ``"writer quiet for 12 s"``), and
    ``marker_step`` is the step the loss curve marks (a replay's cursor).

    ``findings`` are what :mod:`bpmon.diagnosis` makes of the recent snapshots, most severe
    first; the source that publishes the snapshot computes them, never a panel. A run file
    records them on every snapshot line, so that a replay shows what the live monitor showed.

    ``boundary`` is the network's answer over the input plane (:mod:`bpmon.trainer.boundary`),
    present only while a consumer has asked for it (key ``v``) and the data is 2-D; it is
    recomputed at its own, slower cadence, so consecutive snapshots may share one.

    Every field has a default so that a writer that knows only some figures (the PyTorch
    bridge) builds a snapshot of those; a default says "not known".
    """

    # The recorded fields first, in the order of version 1's snapshot lines: a reader's fast
    # path reads step, loss and run_id from a line's start (bpmon.sources).
    step: int = 0
    epoch: int = field(default=0, metadata={"null_as": 0})
    elapsed: float = field(default=0.0, metadata={"key": "time"})
    loss: float = math.nan
    accuracy: float | None = None
    test_accuracy: float | None = None
    lr: float = math.nan
    state: State = "running"
    run_id: int = 0
    layers: tuple[LayerStats, ...] = ()
    predictions: tuple[Prediction, ...] = ()
    diverged_step: int | None = None
    diverged_layer: str | None = None
    preset: str = field(default="", metadata=_off())
    config: RunConfig | None = field(default=None, metadata=_off())
    architecture: str = field(default="", metadata=_off())
    switches: str = field(default="", metadata=_off())
    epochs: int | None = field(default=None, metadata=_off())
    loss_steps: tuple[int, ...] = field(default=(), metadata=_off())
    loss_values: tuple[float, ...] = field(default=(), metadata=_off())
    previous_loss_steps: tuple[int, ...] = field(default=(), metadata=_off())
    previous_loss_values: tuple[float, ...] = field(default=(), metadata=_off())
    initial_layers: tuple[LayerStats, ...] = field(default=(), metadata=_off())
    classes: tuple[str, ...] = field(default=(), metadata=_off())
    steps_per_second: float = 0.0
    thresholds: Thresholds = field(default_factory=Thresholds, metadata=_off())
    message: str = ""
    notice: str = field(default="", metadata=_off())
    notice_id: int = field(default=0, metadata=_off())
    mode: str = field(default="", metadata=_off())
    detail: str = field(default="", metadata=_off())
    marker_step: int | None = field(default=None, metadata=_off())
    # A live run's pace in steps per second (inf: full speed; see bpmon.trainer.loop).
    pace: float = field(default=math.inf, metadata=_off())
    findings: tuple[Finding, ...] = ()
    # Regression runs report R² (train, test) where classification reports accuracy, which is
    # then None.
    r2: float | None = None
    test_r2: float | None = None
    notes: tuple[str, ...] = field(default=(), metadata=_off())
    boundary: Boundary | None = field(default=None, metadata=_off())
    # Every other number a script logged by name (a validation loss, tokens per second), NaN
    # where unusable.
    metrics: tuple[tuple[str, float], ...] = ()
    # The lr each parameter group used for this update (``lr`` is the first group's).
    lrs: tuple[float, ...] = ()
    # The global L2 norm of the watched gradients before clipping.
    grad_norm_total: float | None = None
    # Gradient clipping seen on this update: the max_norm (or clip value), None when no clipping
    # was called; the factor it applied (1.0: not clipped); the share of recent updates clipped.
    clip_max: float | None = None
    clip_factor: float | None = None
    clipped_share: float | None = None
    # -- where the first non-finite value came from (NonFinite; issue 18 item 6) ------------------
    # Set from the first update found non-finite on, and kept on every later line: the run's
    # first non-finite update does not change.
    nonfinite: NonFinite | None = None
    # -- end of the non-finite block --------------------------------------------------------------

    # -- every update, not only the measured ones (the PyTorch bridge; issue 18 items 4-5) -----
    # Updates ``update_start`` .. ``update_start + len - 1``, the ones since the previous line
    # (this line's own the last): each one's logged loss and global gradient norm before
    # clipping, NaN where not known. None and (): not recorded (every other writer).
    # A field is written only where it is not its default (``sparse``).
    update_start: int | None = field(default=None, metadata={"sparse": True})
    update_losses: tuple[float, ...] = field(default=(), metadata={"sparse": True})
    update_grad_norms: tuple[float, ...] = field(default=(), metadata={"sparse": True})
    # The spikes found in those series whose context is complete (see Spike).
    spikes: tuple[Spike, ...] = field(default=(), metadata={"sparse": True})


# -- the lines of a run file other than snapshots -------------------------------------------------


@dataclass(frozen=True)
class LayerDescription:
    """One watched layer as the header (or a restart) describes it: ``kind`` is ``Dense``,
    ``Linear``, ``Conv2d``...; ``activation`` the one that follows, None where not known;
    ``params`` its trainable parameters (0: not known); ``tied`` the other owners' names of
    a weight shared between modules."""

    name: str
    kind: str = ""
    shape: tuple[int, ...] = ()
    fan_in: int = 0
    fan_out: int = 0
    activation: str | None = None
    params: int = 0
    tied: tuple[str, ...] = ()


@dataclass(frozen=True)
class Header:
    """The first line of a run file: what the run is, and what every snapshot line of its first
    run shares. ``config`` (bpmon's own runs only) is the whole configuration, so that a
    recorded run can be run again; ``excluded`` the parameter names a PyTorch run left out."""

    format: str = FORMAT
    version: int = VERSION
    source: str = "bpmon"
    name: str = ""
    started: str = ""
    host: str = ""
    pid: int = 0
    layers: tuple[LayerDescription, ...] = ()
    thresholds: Thresholds = field(default_factory=Thresholds)
    architecture: str = ""
    switches: str = ""
    epochs: int | None = None
    classes: tuple[str, ...] = ()
    config: RunConfig | None = None
    notes: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()


@dataclass(frozen=True)
class Restart:
    """A restart inside a file (a key in the monitor): the snapshot lines after it belong to
    run ``run_id``, whose network and data these fields describe as the header did the first's."""

    event: Literal["restart"] = "restart"
    run_id: int = 0
    architecture: str = ""
    switches: str = ""
    epochs: int | None = None
    layers: tuple[LayerDescription, ...] = ()
    config: RunConfig | None = None
    classes: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class End:
    """The last line, written when the writer ends on purpose."""

    event: Literal["end"] = "end"
    state: str = "stopped"


class LossHistory:
    """The loss curve in bounded memory: every ``stride``-th step is kept, and when the buffer
    fills, every other point is dropped and the stride doubles. However long the run, it holds
    at most ``capacity`` points spread evenly over the whole run."""

    def __init__(self, capacity: int = HISTORY_POINTS) -> None:
        self.capacity = capacity
        self.stride = 1
        self.steps: list[int] = []
        self.values: list[float] = []

    def add(self, step: int, loss: float) -> None:
        if step % self.stride:
            return
        self.steps.append(step)
        self.values.append(loss)
        if len(self.steps) >= self.capacity:
            del self.steps[1::2], self.values[1::2]
            self.stride *= 2
