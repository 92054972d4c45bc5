"""How much memory a run would take, checked before anything big is allocated.

NumPy answers an impossible allocation with a ``MemoryError`` (or, with overcommit, a process the
kernel kills later); both lose the user's terminal to a traceback. Every builder of large arrays
(the data sets, the network) estimates its bytes first and calls :func:`ensure_fits`, which
refuses with the estimate and what the machine has free.
"""

from __future__ import annotations

import os

from bpmon.errors import BpmonError

# A run may take at most this share of the memory that is available now: the monitor, the
# terminal and whatever else the user runs need the rest.
MAX_SHARE = 0.8


def available_bytes() -> int:
    """Memory the kernel could hand out now without swapping (``MemAvailable``), or the total
    physical memory where ``/proc/meminfo`` is not there (macOS, BSD)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 2**63 - 1  # unknown: do not refuse what might fit


def format_bytes(n: float) -> str:
    """``1.5e9`` -> ``"1.4 GiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def ensure_fits(estimate: float, what: str) -> None:
    """Raise :class:`BpmonError` when ``estimate`` bytes exceed the share of free memory a run
    may take; ``what`` names the thing and where it was asked for (``"[data] n = 2000000000"``)."""
    available = available_bytes()
    if estimate > MAX_SHARE * available:
        raise BpmonError(
            f"{what}: needs about {format_bytes(estimate)}, but only "
            f"{format_bytes(available)} of memory is available; make it smaller"
        )
