"""The decision boundary: what the network answers over the input plane of 2-D classification
data, as an immutable :class:`Boundary` a panel can paint.

Conventions:

- Coordinates are the network's input coordinates: the features as the network is fed them,
  so standardised where the data set standardises (a CSV file by default; the built-in sets
  are raw). The axes are named by the data set's feature names (``x1``, ``x2`` or a CSV file's
  columns).
- Extent: the bounding box of the training and test points, each side widened by
  :data:`MARGIN` of the larger span, then the smaller span widened about its centre to the
  larger one, so that the plane is square and a unit of ``x1`` is as long as a unit of ``x2``:
  a circle stays round. The span is at least a millionth of the coordinates' magnitude
  (points near 10^15 must not round onto the edges), and 2 for a single point at the origin.
  Non-finite points, which only a data set handed to the trainer directly can hold, are left
  out. The extent is fixed for a run (it depends on the data only), so the picture does not
  jump as the net learns.
- Grid: ``N x N`` pixels (``N`` = :data:`RESOLUTION`), row-major, row 0 at the top (the highest
  ``x2``), column 0 at the left (the lowest ``x1``). Pixel ``(row, col)`` is the network's answer
  at its centre: ``x1 = x1_lo + (col + 0.5) * span / N``, ``x2 = x2_hi - (row + 0.5) * span / N``.
- Each pixel holds the predicted class, decided as the prediction table decides it (a single
  sigmoid output: class 1 when above 0.5; otherwise the argmax), and a confidence: how far the
  winning probability ``p`` stands above chance, ``(p - 1/C) / (1 - 1/C)`` for ``C`` classes,
  from 0 (a coin toss: on the boundary) to 1 (certain), quantised to 0..255. A pixel whose
  output is not finite has class :data:`UNKNOWN` and confidence 0. Both grids are ``bytes``:
  immutable, and one object each instead of 4,096 Python numbers.
- The answer comes from the evaluation forward pass (batch-norm with its running statistics,
  no dropout), which allocates its own arrays and writes nothing that the next
  backward pass reads (see :mod:`bpmon.engine.layers`): computing a boundary between two steps
  leaves training exactly as it was.
- Points: the training and the test points with their true class, at most :data:`MAX_POINTS`
  of each, taken evenly through the set (a CSV file of 10^6 rows shows a sample).
"""

from __future__ import annotations

import math

import numpy as np

from bpmon.data import Dataset
from bpmon.engine.activations import Array
from bpmon.engine.network import Network
from bpmon.runmodel import UNKNOWN, Boundary, Point

RESOLUTION = 64
MARGIN = 0.1
MAX_POINTS = 400
_LARGEST = float(np.finfo(np.float64).max)
_PRECISION = 1e-6
# Seconds of training between two boundaries while a run trains: a 64x64 grid through the
# network is a forward pass over 4,096 points, which next to a step of a small network is
# expensive (see the benchmark "boundary"); a picture four times a second is enough to watch.
INTERVAL = 0.25


def unavailable(data: Dataset) -> str:
    """Why the boundary of ``data`` cannot be drawn ("" when it can)."""
    if data.task == "regression":
        return f"v: a decision boundary is drawn for a classification; {data.name} is a regression."
    if data.n_inputs != 2:
        return (
            f"v: the decision boundary is drawn over a plane of 2 input features; "
            f"{data.name} has {data.n_inputs}."
        )
    return ""


class Plane:
    """The fixed part of one run's boundary: the extent, the grid's inputs and the points."""

    def __init__(self, data: Dataset, dtype: np.dtype[np.floating]) -> None:
        sets = [data.X_train] if data.X_test is None else [data.X_train, data.X_test]
        X = np.concatenate(sets)
        X = X[np.isfinite(X).all(axis=1)]
        if X.shape[0] == 0:
            X = np.zeros((1, 2))
        lo, hi = X.min(axis=0), X.max(axis=0)
        # Halves first: points near +-1.8e308 must not overflow the span or the centre.
        centre = lo / 2 + hi / 2
        half = float(np.max(hi / 2 - lo / 2)) * (1 + 2 * MARGIN)
        # Never narrower than a millionth of the coordinates' size, so that the edges and the
        # pixel centres stay apart in floating point far from the origin; 1 for one point.
        half = max(half, float(np.max(np.abs(centre))) * _PRECISION) or 1.0
        span = 2 * min(half, _LARGEST / 2)
        self.x1 = (float(centre[0] - span / 2), float(centre[0] + span / 2))
        self.x2 = (float(centre[1] - span / 2), float(centre[1] + span / 2))
        offsets = (np.arange(RESOLUTION) + 0.5) * (span / RESOLUTION)
        cols, rows = np.meshgrid(self.x1[0] + offsets, self.x2[1] - offsets)
        self.inputs: Array = np.column_stack([cols.ravel(), rows.ravel()]).astype(dtype)
        self.n_classes = max(len(data.classes), 2)
        self.axes = (data.feature_names[0], data.feature_names[1])
        self.train = _points(data.X_train, data.y_train)
        self.test = () if data.y_test is None else _points(data.X_test, data.y_test)

    def boundary(self, net: Network, step: int) -> Boundary:
        out = net.predict(self.inputs)
        finite = np.isfinite(out).all(axis=1)
        if out.shape[1] == 1:
            p1 = out[:, 0]
            classes = (p1 > 0.5).astype(np.intp)
            p = np.maximum(p1, 1 - p1)
        else:
            classes = np.argmax(out, axis=1)
            p = np.max(out, axis=1)
        chance = 1 / self.n_classes
        sure = np.clip((p - chance) / (1 - chance), 0.0, 1.0)
        sure = np.where(finite, sure, 0.0)
        classes = np.where(finite, classes, UNKNOWN)
        return Boundary(
            step=step,
            axes=self.axes,
            x1=self.x1,
            x2=self.x2,
            size=RESOLUTION,
            n_classes=self.n_classes,
            classes=classes.astype(np.uint8).tobytes(),
            confidence=np.rint(sure * 255).astype(np.uint8).tobytes(),
            train=self.train,
            test=self.test,
        )


def _points(X: Array | None, y: Array) -> tuple[Point, ...]:
    assert X is not None
    finite = np.isfinite(X).all(axis=1)
    X, y = X[finite], y[finite]
    stride = max(1, math.ceil(X.shape[0] / MAX_POINTS))
    X, y = X[::stride], y[::stride]
    labels = (y[:, 0] > 0.5).astype(np.intp) if y.shape[1] == 1 else np.argmax(y, axis=1)
    return tuple(Point(float(a), float(b), int(k)) for (a, b), k in zip(X, labels, strict=True))


class BoundaryFeed:
    """The trainer's side of ``v``: whether a consumer wants the boundary, and the boundary of
    the current run at the cadence of :data:`INTERVAL` (at once when a run is not training,
    so that a step with ``n`` shows). A run's :class:`Plane` is built once."""

    def __init__(self, interval: float = INTERVAL) -> None:
        self.interval = interval
        self.wanted = False
        self._plane: tuple[Dataset, Plane] | None = None
        self._last: tuple[Network, Boundary, float] | None = None

    def ask(self, on: bool, data: Dataset) -> str:
        """Show (``on``) or stop showing the boundary; returns why it cannot be shown, or ""."""
        why = unavailable(data) if on else ""
        self.wanted = on and not why
        if not self.wanted:
            self._last = None
        return why

    def of(
        self, net: Network, data: Dataset, step: int, now: float, running: bool
    ) -> Boundary | None:
        """The boundary to publish for a run at ``step`` (None when not wanted or not 2-D)."""
        if not self.wanted or unavailable(data):
            return None
        if self._plane is None or self._plane[0] is not data:
            self._plane = (data, Plane(data, net.dtype))
        last = self._last
        if last is not None and last[0] is net:
            _, boundary, at = last
            if boundary.step == step or (running and now - at < self.interval):
                return boundary
        boundary = self._plane[1].boundary(net, step)
        self._last = (net, boundary, now)
        return boundary
