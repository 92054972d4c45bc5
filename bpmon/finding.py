"""A finding: one thing wrong with a run, said plainly (see :mod:`bpmon.diagnosis`).

Its own module, below the trainer's snapshot that carries findings and the diagnosis that makes
them, so that neither imports the other.
"""

from __future__ import annotations

from bpmon.runmodel import Finding, Severity

__all__ = ["Finding", "Severity"]
