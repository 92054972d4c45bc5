"""What is shown instead of the panels when the terminal is smaller than the layout needs."""

from __future__ import annotations

from textual.widgets import Static

MIN_WIDTH = 80
MIN_HEIGHT = 24


def too_small(width: int, height: int) -> bool:
    return width < MIN_WIDTH or height < MIN_HEIGHT


class TooSmall(Static):
    """A centred message naming the current and the needed size."""

    def show_size(self, width: int, height: int) -> None:
        self.update(
            f"Terminal too small: {width}x{height}, need {MIN_WIDTH}x{MIN_HEIGHT}"
            " — enlarge the window\n\n(q quits)"
        )
