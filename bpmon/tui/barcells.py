"""The cells of one row of the gradient panel, as text (no widget here): a bar on the fixed log
scale, the numbers beside it, and the plan of the columns for a width (see
:mod:`bpmon.tui.gradients`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len

from bpmon.runmodel import LayerStats, Status

from .flow import SEVERITY

LOG_MIN = -8
LOG_MAX = 2
# Two cells per decade, and the whole row stays inside 76 columns (80 minus border and padding).
BAR_WIDTH = 20
_EIGHTHS = " ▏▎▍▌▋▊▉"
_FULL = "█"
# A group's bar between its smallest and its largest norm.
_RANGE = "░"
_TRACK = "·"
_NONFINITE = "▒"
_HEALTH_WORDS = {"saturated": "sat", "dead": "dead"}

# The columns every row has: bar, norm, status, health and update ratio, and the four spaces
# between them.
_NORM, _STATUS, _HEALTH, _RATIO = 7, 9, 9, 7
_FIXED = BAR_WIDTH + _NORM + _STATUS + _HEALTH + _RATIO + 4
# The name column: at least this wide (bpmon's "layer0" and the header), at most this wide.
NAME_MIN = 7
NAME_MAX = 64
# A long name keeps at least this many cells before the in→out column is given room: at 80
# columns a PyTorch name reads "…layers.17.mlp.fc1" rather than "…mlp.fc1" plus its fans.
NAME_KEEP = 18
# The in→out column: at least this wide ("in→out" and a space, as it always was).
FANS_MIN = 7
# The activation column (only where the width allows), at most this wide.
ACT_MAX = 10


def short_number(x: float) -> str:
    """``0.01`` -> ``"1e-2"``, ``100.0`` -> ``"1e2"``, ``0.0025`` -> ``"2.5e-3"``."""
    mantissa, exponent = f"{x:.1e}".split("e")
    mantissa = mantissa.removesuffix(".0")
    return f"{mantissa}e{int(exponent)}"


def bar_cells(grad_norm: float, width: int = BAR_WIDTH) -> tuple[str, str]:
    """The filled and the empty part of one bar; their lengths add up to ``width``."""
    if not math.isfinite(grad_norm):
        return _NONFINITE * width, ""
    if grad_norm <= 0:
        eighths = 0
    else:
        fraction = (math.log10(grad_norm) - LOG_MIN) / (LOG_MAX - LOG_MIN)
        eighths = round(min(1.0, max(0.0, fraction)) * width * 8)
    full, rest = divmod(eighths, 8)
    filled = _FULL * full + (_EIGHTHS[rest] if rest else "")
    return filled, _TRACK * (width - len(filled))


def axis_labels(width: int = BAR_WIDTH) -> str:
    """``1e-8 … 1e-3 … 1e2`` placed under the bar column at their decades."""
    cells = [" "] * width
    middle = (LOG_MIN + LOG_MAX) // 2
    for label, start in (
        (f"1e{LOG_MIN}", 0),
        (f"1e{middle}", (middle - LOG_MIN) * width // (LOG_MAX - LOG_MIN) - 2),
        (f"1e{LOG_MAX}", width - len(f"1e{LOG_MAX}")),
    ):
        cells[start : start + len(label)] = label
    return "".join(cells)


def fans(layer: LayerStats) -> str:
    return f"{layer.fan_in}→{layer.fan_out}"


def short_name(name: str, width: int) -> str:
    """``name`` in ``width`` cells: as it is when it fits, else its right end after an
    ellipsis (``"model.layers.17.mlp.fc1"`` -> ``"…layers.17.mlp.fc1"``)."""
    if cell_len(name) <= width:
        return name
    kept = ""
    for char in reversed(name):
        if cell_len(kept) + cell_len(char) + 1 > width:
            break
        kept = char + kept
    return "…" + kept if width >= 1 else ""


def pad(text: str, width: int) -> str:
    """``text`` left-aligned in ``width`` cells (cells, not characters)."""
    return text + " " * max(0, width - cell_len(text))


@dataclass(frozen=True)
class Columns:
    """Cells given to the columns whose width depends on the layers and the panel: the name,
    in→out (0: left out) and the activation (0: left out)."""

    name: int
    fans: int
    activation: int

    @property
    def width(self) -> int:
        optional = sum(w + 1 for w in (self.fans, self.activation) if w)
        return self.name + 1 + optional + _FIXED


def plan_columns(
    width: int, layers: Sequence[LayerStats], labels: Sequence[str] | None = None
) -> Columns:
    """The columns that fit ``width`` cells, in this order of need: the name up to
    :data:`NAME_KEEP` cells (or all of it), in→out, the rest of the name, the activation.

    When the hidden layers have different activations (a preset's per-layer list), the
    activation comes before in→out: the status line can name one activation for the whole
    network but not one per layer, and the widths are in its architecture string anyway.

    ``labels`` are what the name column shows when that is not the layers' names (grouped
    rows, indented)."""
    names = labels if labels is not None else [x.name for x in layers]
    want_name = min(NAME_MAX, max([NAME_MIN, *(cell_len(x) for x in names)]))
    want_fans = max([FANS_MIN, *(len(fans(x)) for x in layers)])
    activations = [cell_len(x.activation) for x in layers if x.activation]
    want_act = min(ACT_MAX, max([len("act"), *activations])) if activations else 0
    room = max(1, width - _FIXED - 1)  # for the name, and the optional columns with a space
    if len({x.activation for x in layers if x.activation}) > 1:
        name = max(1, min(want_name, room - want_act - 1))
        act = want_act if room - name >= want_act + 1 else 0
        left = room - name - (act + 1 if act else 0)
        fan_cells = want_fans if left >= want_fans + 1 else 0
        name = max(
            1, min(want_name, room - (act + 1 if act else 0) - (fan_cells + 1 if fan_cells else 0))
        )
        return Columns(name, fan_cells, act)
    fan_cells = want_fans if room - want_fans - 1 >= min(want_name, NAME_KEEP) else 0
    name = max(1, min(want_name, room - (fan_cells + 1 if fan_cells else 0)))
    left = room - name - (fan_cells + 1 if fan_cells else 0)
    act = want_act if want_act and left >= want_act + 1 else 0
    return Columns(name, fan_cells, act)


def format_norm(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return "0" if value == 0 else f"{value:.1e}"


def format_health(layer: LayerStats) -> str:
    if not layer.health_label:
        return "—"
    word = _HEALTH_WORDS.get(layer.health_label, layer.health_label[:4])
    return f"{word} {layer.health * 100:3.0f}%"


def short_activation(name: str | None, width: int) -> str:
    """The activation after a layer in ``width`` cells (cut at the right: ``leaky_relu`` is
    still ``leaky_rel…``); "—" where there is none (the output layer) or it is not known."""
    if not name:
        return "—"
    if cell_len(name) <= width:
        return name
    return name[: max(0, width - 1)] + "…"


def format_ratio(value: float) -> str:
    return "—" if math.isnan(value) else format_norm(value)


def group_summary(rows: Sequence[LayerStats]) -> tuple[float, float, Status]:
    """A group's smallest and largest finite norm (NaN when none is finite) and its worst
    status."""
    finite = [x.grad_norm for x in rows if math.isfinite(x.grad_norm)]
    worst: Status = max(
        (x.status for x in rows), key=lambda s: SEVERITY.get(s, 0), default="healthy"
    )
    if not finite:
        return math.nan, math.nan, worst
    return min(finite), max(finite), worst
