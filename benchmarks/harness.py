"""What every group shares: run settings, interleaved timing, and the :class:`Figure` record.

Why interleave: other processes come and go on this machine, and a contender measured for ten
seconds after another was measured for ten seconds may simply have met a quieter machine. Taking
turns round by round (A B, then B A, so that neither always goes first) exposes both to the same
conditions, and the median of the per-round ratios discards the rounds a burst of load hit.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import bpmon

Op = Literal[">=", "<="]


@dataclass(frozen=True)
class Settings:
    """How much work a run does: ``quick`` checks that every contender works, no more."""

    quick: bool

    @property
    def rounds(self) -> int:
        """Timed rounds per interleaved comparison (after one untimed warm-up round)."""
        return 1 if self.quick else 7

    @property
    def warmup(self) -> int:
        return 0 if self.quick else 1

    def scale(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def seconds(self, full: float, quick: float) -> float:
        return quick if self.quick else full


def interleave(
    contenders: Mapping[str, Callable[[], float]], rounds: int, warmup: int = 0
) -> dict[str, list[float]]:
    """Call each contender once per round, alternating the order (A B, B A, ...); return each
    one's results from the timed rounds. A contender returns one measurement (a rate or a
    time) of a fixed amount of work."""
    names = list(contenders)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(warmup + rounds):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            value = contenders[name]()
            if r >= warmup:
                samples[name].append(value)
    return samples


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else math.nan


def paired_ratio(a: Sequence[float], b: Sequence[float]) -> float:
    """The median over rounds of ``a[i] / b[i]``: the two measurements of a round ran back to
    back, on the same machine weather."""
    return median([x / y for x, y in zip(a, b, strict=True) if y > 0])


@dataclass
class Figure:
    """One row of the results table.

    ``value`` is the number held against the target: the ratio for a comparison
    (``bpmon / contender``, higher is better for rates; ``on_ratio``), otherwise bpmon's own
    figure. ``aim`` marks a target that is a wish, not a requirement. A figure that could not be
    measured (no PyTorch installed) is ``skipped`` with a ``note`` saying why.
    """

    key: str
    title: str
    unit: str
    target: float
    op: Op
    bpmon: float | None = None
    contender: float | None = None
    contender_name: str = ""
    ratio: float | None = None
    value: float | None = None
    on_ratio: bool = False
    aim: bool = False
    skipped: bool = False
    note: str = ""
    samples: dict[str, list[float]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def met(self) -> bool | None:
        if self.skipped or self.value is None or not math.isfinite(self.value):
            return None
        return self.value >= self.target if self.op == ">=" else self.value <= self.target

    def as_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "unit": self.unit,
            "bpmon": self.bpmon,
            "contender": self.contender,
            "contender_name": self.contender_name,
            "ratio": self.ratio,
            "value": self.value,
            "target": {
                "op": self.op,
                "threshold": self.target,
                "on": "ratio" if self.on_ratio else "bpmon",
                "aim": self.aim,
            },
            "met": self.met,
            "skipped": self.skipped,
            "note": self.note,
            "samples": self.samples,
            "details": self.details,
        }

    @classmethod
    def from_json(cls, key: str, doc: dict[str, Any]) -> Figure:
        """The inverse of :meth:`as_json` (a group's figures come back from its child process)."""
        target = doc["target"]
        return cls(
            key=key,
            title=doc["title"],
            unit=doc["unit"],
            target=target["threshold"],
            op=target["op"],
            bpmon=doc["bpmon"],
            contender=doc["contender"],
            contender_name=doc["contender_name"],
            ratio=doc["ratio"],
            value=doc["value"],
            on_ratio=target["on"] == "ratio",
            aim=target["aim"],
            skipped=doc["skipped"],
            note=doc["note"],
            samples=doc["samples"],
            details=doc["details"],
        )


def comparison(
    key: str,
    title: str,
    unit: str,
    samples: dict[str, list[float]],
    mine: str,
    theirs: str,
    target: float,
    contender_name: str | None = None,
    note: str = "",
) -> Figure:
    """A rate comparison from interleaved samples: medians of each, median paired ratio."""
    ratio = paired_ratio(samples[mine], samples[theirs])
    return Figure(
        key=key,
        title=title,
        unit=unit,
        target=target,
        op=">=",
        bpmon=median(samples[mine]),
        contender=median(samples[theirs]),
        contender_name=contender_name or theirs,
        ratio=ratio,
        value=ratio,
        on_ratio=True,
        note=note,
        samples={mine: samples[mine], theirs: samples[theirs]},
    )


def skipped_comparison(key: str, title: str, unit: str, target: float, note: str) -> Figure:
    """A comparison that could not run (its contender is not installed), and why."""
    return Figure(key, title, unit, target, ">=", on_ratio=True, skipped=True, note=note)


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child Python: this process's, with the directory this process
    imported bpmon (and this package) from put first on ``PYTHONPATH``, so a child measures the
    same code whether bpmon is installed or run from the checkout. The BLAS variables pass
    through unchanged."""
    env = dict(os.environ)
    roots = [str(Path(bpmon.__file__).resolve().parent.parent), str(Path(__file__).parent.parent)]
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([*roots, *([old] if old else [])]))
    env.update(extra)
    return env
