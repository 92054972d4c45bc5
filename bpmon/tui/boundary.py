"""The decision-boundary panel: the network's answer over the input plane, as the TensorFlow
Playground draws it, in a terminal.

It paints the :class:`~bpmon.trainer.boundary.Boundary` the snapshot carries and nothing else:
the grid was computed by the trainer, and the panel only samples it to its own size (nearest
pixel). Two pixels per cell: a half block ``▀`` whose foreground is the top pixel and whose
background is the bottom one. Each class has a colour from the stylesheet
(``boundary--class-N``), a lighter one where the network is unsure (``boundary--unsure-N``:
confidence under :data:`UNSURE`, so the boundary shows as a pale band), and a strong one for
its points (``boundary--point-N``); classes past the sixth reuse the six. Training points are
``●``, test points ``○``, drawn over the plane with the training points on top.

Without colour (the ``NO_COLOR`` environment variable, which Textual reads into
``App.no_color`` and answers by removing every colour), a half block would show nothing, so each
cell is one character: the class's own mark (``·``, ``+``, ``x`` ...) where the network is
sure, a blank on the boundary, and a point as its class's digit (reversed for a test point).

The plane is square (the trainer makes its extent square) and keeps its aspect: it takes the
panel's height, and the legend goes beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import ClassVar

from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from bpmon.runmodel import UNKNOWN, Boundary, Point
from bpmon.trainer import Snapshot

from .predictions import class_name, scores
from .view import SnapshotView

PALETTE = 6
# Below this confidence (of 255: the winning probability less than halfway from chance to
# certain) a pixel is painted in its class's unsure shade.
UNSURE = 128
# bytes.translate table: a confidence byte to 1 where the pixel is painted sure, else 0.
_SURE = bytes(int(c >= UNSURE) for c in range(256))
HALF_BLOCK = "▀"
TRAIN_MARK = "●"
TEST_MARK = "○"
MONO_MARKS = "·+x=o#"
MONO_POINTS = "0123456789abcdefghijklmnopqrstuvwxyz"
# The legend needs this many columns beside the plane, or the plane gives some up.
LEGEND_MIN = 15
# The plane never gets smaller than this many pixels across to make room for the legend.
PLANE_MIN = 16


def _components() -> set[str]:
    names = {"boundary--legend", "boundary--unknown"}
    for k in range(PALETTE):
        names |= {f"boundary--class-{k}", f"boundary--unsure-{k}", f"boundary--point-{k}"}
    return names


class BoundaryPanel(SnapshotView):
    """The snapshot's decision boundary; shown by the app while the snapshot has one."""

    # No cadence of its own: a new boundary comes at most four times a second (the trainer's
    # bpmon.trainer.boundary.INTERVAL), and a snapshot that brings none costs draw() a
    # comparison. So a repaint always goes out with the frame that brought the snapshot, never
    # in a frame of its own from a timer.
    REDRAW_INTERVAL = 0.0

    COMPONENT_CLASSES: ClassVar[set[str]] = _components()

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._lines: list[Strip] = []
        self._painted: tuple[Hashable, ...] | None = None

    def on_mount(self) -> None:
        self.border_title = "decision boundary"

    def context(self) -> tuple[Hashable, ...]:
        return (self.app.no_color,)

    def draw(self, snapshot: Snapshot) -> None:
        subtitle = scores(snapshot)
        # Setting a border title repaints the whole panel, even to the same text.
        if subtitle != self.border_subtitle:
            self.border_subtitle = subtitle
        boundary = snapshot.boundary
        if boundary is None:
            return
        size = (self.size.width, self.size.height)
        # What the picture shows: a boundary whose classes and sure/unsure pixels are those
        # already on the screen (a net that has settled) costs no repaint and no bytes.
        picture = (
            boundary.classes,
            boundary.confidence.translate(_SURE),
            boundary.x1,
            boundary.x2,
            boundary.axes,
            boundary.train,
            boundary.test,
            size,
            snapshot.classes,
            self.app.no_color,
        )
        if picture == self._painted:
            return
        self._painted = picture
        self._lines = self._paint(boundary, snapshot.classes, *size)
        self.refresh()

    def render_line(self, y: int) -> Strip:
        if y < len(self._lines):
            return self._lines[y]
        return Strip.blank(self.size.width, self.rich_style)

    # -- painting ---------------------------------------------------------------------------------

    def style_of(self, name: str) -> Style:
        """A component class's style from the stylesheet."""
        return self.get_component_rich_style(name, partial=True)

    def _paint(
        self, boundary: Boundary, names: tuple[str, ...], width: int, height: int
    ) -> list[Strip]:
        if width <= 0 or height <= 0:
            return []
        side = min(width, 2 * height)
        legend = width - side - 1
        if legend < LEGEND_MIN and width - LEGEND_MIN - 1 >= PLANE_MIN:
            side = min(side, width - LEGEND_MIN - 1)
            legend = width - side - 1
        mono = self.app.no_color
        style = self.style_of
        plane = _mono(boundary, side) if mono else _halves(style, boundary, side)
        text = _legend(boundary, names, mono) if legend >= LEGEND_MIN else []
        legend_style = style("boundary--legend")
        keys = _legend_keys(style, boundary, mono)
        # Every segment carries a style on the panel's own (Textual's NO_COLOR filter expects
        # one on each), and cells the plane leaves open take the panel's background.
        base = self.rich_style
        lines = []
        for y in range(height):
            segments = list(plane[y]) if y < len(plane) else [Segment(" " * side)]
            if legend >= LEGEND_MIN:
                segments.append(Segment(" "))
                if y < len(text):
                    key, label = text[y]
                    line = label[: legend - 2] if key is not None else label[:legend]
                    if key is not None:
                        segments += [keys[key], Segment(" ")]
                    segments.append(Segment(line, legend_style))
            strip = Strip(Segment.apply_style(segments, base))
            lines.append(strip.adjust_cell_length(width, base))
        return lines


StyleOf = Callable[[str], Style]


def _pixel_index(boundary: Boundary, side: int) -> list[int]:
    """For each of ``side`` pixels across the panel's plane, the grid pixel it shows."""
    n = boundary.size
    return [min(n - 1, (2 * i + 1) * n // (2 * side)) for i in range(side)]


def _points(boundary: Boundary, side: int) -> dict[tuple[int, int], tuple[Point, bool]]:
    """The panel pixel (row, col) of each point that lies on the plane; training points win a
    pixel they share with a test point (they are drawn on top)."""
    at: dict[tuple[int, int], tuple[Point, bool]] = {}
    for points, train in ((boundary.test, False), (boundary.train, True)):
        for point in points:
            u, v = boundary.locate(point)
            col, row = int(u * side), int(v * side)
            if 0 <= col < side and 0 <= row < side:
                at[row, col] = (point, train)
    return at


def _halves(style: StyleOf, boundary: Boundary, side: int) -> list[list[Segment]]:
    """The plane in half blocks: ``ceil(side / 2)`` rows of ``side`` cells."""
    shade: dict[tuple[int, bool], Color | None] = {}
    for k in range(PALETTE):
        shade[k, True] = style(f"boundary--class-{k}").color
        shade[k, False] = style(f"boundary--unsure-{k}").color
    unknown = style("boundary--unknown").color
    marks = [style(f"boundary--point-{k}") for k in range(PALETTE)]
    index = _pixel_index(boundary, side)
    classes, confidence, n = boundary.classes, boundary.confidence, boundary.size

    def colour(row: int, col: int) -> Color | None:
        i = index[row] * n + index[col]
        k = classes[i]
        return unknown if k == UNKNOWN else shade[k % PALETTE, confidence[i] >= UNSURE]

    points = _points(boundary, side)
    styles: dict[tuple[Color | None, Color | None], Style] = {}
    rows = []
    for y in range(0, side, 2):
        segments = []
        for x in range(side):
            top = colour(y, x)
            bottom = colour(y + 1, x) if y + 1 < side else None
            hit = points.get((y, x)) or points.get((y + 1, x))
            if hit is not None:
                point, train = hit
                under = top if (y, x) in points else bottom
                mark = marks[point.label % PALETTE] + Style(bgcolor=under)
                segments.append(Segment(TRAIN_MARK if train else TEST_MARK, mark))
                continue
            key = (top, bottom)
            cell = styles.get(key)
            if cell is None:
                cell = styles[key] = Style(color=top, bgcolor=bottom)
            segments.append(Segment(HALF_BLOCK, cell))
        rows.append(list(Segment.simplify(segments)))
    return rows


def _mono(boundary: Boundary, side: int) -> list[list[Segment]]:
    """The plane in characters, one per cell (the cell's top pixel)."""
    index = _pixel_index(boundary, side)
    classes, confidence, n = boundary.classes, boundary.confidence, boundary.size
    points = _points(boundary, side)
    test_style = Style(reverse=True)
    rows = []
    for y in range(0, side, 2):
        chars = []
        for x in range(side):
            i = index[y] * n + index[x]
            k = classes[i]
            if k == UNKNOWN:
                chars.append(Segment("?"))
            elif confidence[i] < UNSURE:
                chars.append(Segment(" "))
            else:
                chars.append(Segment(MONO_MARKS[k % len(MONO_MARKS)]))
            hit = points.get((y, x)) or points.get((y + 1, x))
            if hit is not None:
                point, train = hit
                mark = MONO_POINTS[point.label % len(MONO_POINTS)]
                chars[-1] = Segment(mark, None if train else test_style)
        rows.append(list(Segment.simplify(chars)))
    return rows


def _legend_keys(style: StyleOf, boundary: Boundary, mono: bool) -> dict[str, Segment]:
    """The coloured (or, without colour, lettered) key of each legend line."""
    keys: dict[str, Segment] = {}
    for k in range(min(boundary.n_classes, PALETTE if not mono else len(MONO_MARKS))):
        if mono:
            keys[f"class-{k}"] = Segment(MONO_MARKS[k])
        else:
            keys[f"class-{k}"] = Segment("█", style(f"boundary--class-{k}"))
    keys["train"] = Segment(
        "0" if mono else TRAIN_MARK, None if mono else style("boundary--point-0")
    )
    keys["test"] = Segment(
        "0" if mono else TEST_MARK,
        Style(reverse=True) if mono else style("boundary--point-0"),
    )
    return keys


def _legend(boundary: Boundary, names: tuple[str, ...], mono: bool) -> list[tuple[str | None, str]]:
    """The legend's lines: (key, text)."""
    shown = min(boundary.n_classes, PALETTE if not mono else len(MONO_MARKS))
    lines: list[tuple[str | None, str]] = []
    for k in range(shown):
        label = class_name(names, k) if names else str(k)
        if mono:
            label += f" ({MONO_POINTS[k % len(MONO_POINTS)]})"
        lines.append((f"class-{k}", label))
    if boundary.n_classes > shown:
        lines.append((None, f"+{boundary.n_classes - shown} more"))
    lines.append(("train", f"train ({len(boundary.train)})"))
    if boundary.test:
        lines.append(("test", f"test ({len(boundary.test)})"))
    (left, right), (bottom, top) = boundary.x1, boundary.x2
    lines.append((None, ""))
    lines.append((None, f"→ {boundary.axes[0]} {left:.3g}…{right:.3g}"))
    lines.append((None, f"↑ {boundary.axes[1]} {bottom:.3g}…{top:.3g}"))
    return lines
