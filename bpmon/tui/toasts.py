"""Notifications whose toast cannot freeze the monitor.

Textual (8.2) gives a toast the time its notification has left, read when the toast is built,
and runs it down with a one-shot timer. The toast rack checks that a notification has not
expired a moment before it builds the toast, so a notification that expires in between (many
toasts at once on a loaded machine: each new screen, the help closing, builds a toast for every
live notification) gets a negative time; and a timer with a negative interval loops without ever
yielding to the event loop: the monitor stops drawing and answering keys for good, and cannot
even quit. The fuzzed-key test froze that way under load (caught with ``Timer(-0.00027,
name='set_timer#1', repeat=0)`` spinning) and held CI until its per-test limit.

A :class:`Notice` tells the toast at least :data:`MIN_SHOWN` seconds, while it expires, for
Textual's reaping and for the rack's check, at its true time; a :class:`NoticeApp` posts one
for every ``notify``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from textual import notifications
from textual.app import App
from textual.notifications import Notification, Notify, SeverityLevel

# A toast that was due to go already shows this long; any positive time keeps the timer sane.
MIN_SHOWN = 0.1


@dataclass
class Notice(Notification):
    @property
    def time_left(self) -> float:
        """What the toast is given to live: never less than :data:`MIN_SHOWN`."""
        return max(self._left(), MIN_SHOWN)

    @property
    def has_expired(self) -> bool:
        return self._left() <= 0

    def _left(self) -> float:
        # On the clock Textual's notifications read (time.time, as their module has it).
        clock = notifications.time  # type: ignore[attr-defined]
        return float(self.raised_at + self.timeout - clock())


R = TypeVar("R")


class NoticeApp(App[R]):
    """Textual's ``App``, its ``notify`` posting a :class:`Notice`."""

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        if timeout is None:
            timeout = self.NOTIFICATION_TIMEOUT
        self.post_message(Notify(Notice(message, title, severity, timeout, markup=markup)))
