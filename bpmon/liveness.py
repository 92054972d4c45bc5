"""Whether a followed run file's writer is still there, and how long a silence is "quiet".

A writer names itself in the header (``host``, ``pid``, ``started``): when it ran on this host
since the machine last booted (a pid means nothing across boots, and a file copied from a
machine of the same name started before this boot) and that process no longer exists and no
end line came, the run has ended without one (SIGKILL, out of memory), which ``bpmon watch``
says instead of waiting forever. A writer on another host cannot be asked; its file only goes
quiet.

"Quiet" is relative to this writer's own rhythm: a real model writing every 50 updates may take
longer than any fixed number of seconds between lines, so a silence is quiet when it lasts
:data:`QUIET_FACTOR` times the median gap seen between its lines, and at least ``floor`` seconds.
"""

from __future__ import annotations

import datetime
import os
import socket
import statistics
import time
from collections import deque

QUIET_FACTOR = 3.0
# How often the writer's process is looked for: "gone" shows within this plus one poll.
CHECK_EVERY = 1.0
GAPS = 50


class Liveness:
    def __init__(self, floor: float) -> None:
        self.floor = floor
        self.host = ""
        self.pid: int | None = None
        self._gaps: deque[float] = deque(maxlen=GAPS)
        self._last: float | None = None
        self._checked = -CHECK_EVERY

    def writer(self, host: object, pid: object, started: object) -> None:
        """The header's ``host``, ``pid`` and ``started`` (anything else: not checkable)."""
        self.host = host if isinstance(host, str) else ""
        ok = isinstance(pid, int) and not isinstance(pid, bool) and pid > 0
        self.pid = pid if ok and _since_boot(started) else None  # type: ignore[assignment]

    def arrived(self, now: float) -> None:
        """Lines arrived at ``now`` (the reader's clock)."""
        if self._last is not None:
            self._gaps.append(now - self._last)
        self._last = now

    def quiet_after(self) -> float:
        if not self._gaps:
            return self.floor
        return max(self.floor, QUIET_FACTOR * statistics.median(self._gaps))

    def gone(self, now: float) -> bool:
        """True when the writer ran on this host and its process no longer exists; looked at
        once every :data:`CHECK_EVERY` seconds."""
        if self.pid is None or now - self._checked < CHECK_EVERY:
            return False
        self._checked = now
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False  # it exists under another user (EPERM), or cannot be asked
        return False


def _since_boot(started: object) -> bool:
    """Whether the ISO time ``started`` is after this machine's last boot (where the boot time
    cannot be known, true: the host and pid are all there is)."""
    if not isinstance(started, str):
        return False
    try:
        at = datetime.datetime.fromisoformat(started).timestamp()
    except (ValueError, OverflowError, OSError):
        return False
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    if boottime is None:
        return True
    booted = time.time() - time.clock_gettime(boottime)
    return at >= booted - 1.0
