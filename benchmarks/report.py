"""The results as a Markdown table (paste-ready for the README) and as a JSON document."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.harness import Figure

HEADER = ("figure", "bpmon", "contender", "ratio", "target", "met?")


def number(value: float | None, unit: str) -> str:
    """``52,310 steps/s``, ``0.12 s``, ``3.4 MB``, ``9.8 fps``: a figure with its unit."""
    if value is None:
        return "—"
    if not math.isfinite(value):
        return str(value)
    if unit == "B/s":
        return f"{value / 1024:,.1f} KB/s"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    elif abs(value) >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3f}"
    return f"{text} {unit}" if unit else text


def target_text(fig: Figure) -> str:
    if fig.on_ratio:
        threshold = f"{fig.target:g}x"
    elif fig.unit == "B/s":
        threshold = f"{fig.target / 1024:g} KB/s"
    else:
        threshold = f"{fig.target:g} {fig.unit}"
    op = "≥" if fig.op == ">=" else "≤"
    return f"aim {op} {threshold}" if fig.aim else f"{op} {threshold}"


def met_text(fig: Figure) -> str:
    if fig.skipped:
        return "skipped"
    met = fig.met
    if met is None:
        return "?"
    return "yes" if met else "**no**"


def row(fig: Figure) -> tuple[str, ...]:
    contender = number(fig.contender, fig.unit)
    if fig.contender_name and fig.contender is not None:
        contender = f"{contender} ({fig.contender_name})"
    elif fig.contender_name:
        contender = fig.contender_name
    ratio = "—" if fig.ratio is None else f"{fig.ratio:.2f}x"
    bpmon = "—" if fig.skipped else number(fig.bpmon, fig.unit)
    return (fig.title, bpmon, contender, ratio, target_text(fig), met_text(fig))


def markdown(figures: Sequence[Figure]) -> str:
    rows = [HEADER, *(row(f) for f in figures)]
    lines = ["| " + " | ".join(cells) + " |" for cells in rows]
    lines.insert(1, "|" + "|".join("---" for _ in HEADER) + "|")
    notes = [f"- {f.title}: {f.note}" for f in figures if f.note]
    return "\n".join(lines + (["", *notes] if notes else []))


def document(figures: Sequence[Figure], meta: dict[str, Any]) -> dict[str, Any]:
    return {**meta, "figures": {f.key: f.as_json() for f in figures}}


def write(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # allow_nan=False: a NaN or infinity is a bug in a benchmark, and JSON has no spelling for it.
    text = json.dumps(_finite_or_none(doc), indent=2, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")


def _finite_or_none(value: Any) -> Any:
    """Non-finite floats become null, so the file stays valid JSON; the reader sees the gap."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_none(v) for v in value]
    return value
