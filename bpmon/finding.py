"""A finding: one thing wrong with a run, said plainly (see :mod:`bpmon.diagnosis`).

Its own module, below the trainer's snapshot that carries findings and the diagnosis that makes
them, so that neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["info", "warning", "error"]


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
