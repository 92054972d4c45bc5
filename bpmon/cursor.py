"""A replay's cursor: which snapshot of the file is shown, and playback at a speed.

The cursor moves over every snapshot of the file, all its runs one after the other (index 0 is
the first run's first snapshot); None means "the last one", which a replay shows until a key
moves it. Playing advances it by ``speed`` snapshots a second of the clock it is given, and stops
at the last; playing from the last starts again at the first. It knows nothing of files: its
owner says how many snapshots there are.
"""

from __future__ import annotations

from dataclasses import dataclass

from bpmon.trainer.commands import Command

# Replay speeds, in snapshots per second of playback.
SPEEDS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


@dataclass
class ReplayCursor:
    index: int | None = None
    playing: bool = False
    speed: int = 2
    play_mark: float = 0.0

    def handle(self, command: Command, total: int, now: float) -> None:
        """Apply a cursor or playback command over ``total`` snapshots."""
        if not total:
            return
        current = total - 1 if self.index is None else self.index
        kind = command.kind
        if kind == "seek":
            self.index = min(total - 1, max(0, current + int(command.amount)))
            self.playing = False
        elif kind == "home":
            self.index, self.playing = 0, False
        elif kind == "end":
            self.index, self.playing = total - 1, False
        elif kind in ("toggle_pause", "resume", "pause"):
            self.playing = {"pause": False, "resume": True}.get(kind, not self.playing)
            if self.playing and current >= total - 1:
                self.index = 0  # play from the start when at the end
            self.play_mark = now
        elif kind == "speed":
            i = SPEEDS.index(self.speed) + (1 if command.amount > 1 else -1)
            self.speed = SPEEDS[min(len(SPEEDS) - 1, max(0, i))]

    def advance(self, now: float, total: int) -> None:
        """Move on by the snapshots due since the last move, while playing."""
        if not self.playing or self.index is None:
            return
        steps = int((now - self.play_mark) * self.speed)
        if steps:
            self.play_mark += steps / self.speed
            self.index = min(total - 1, self.index + steps)
            if self.index >= total - 1:
                self.playing = False
