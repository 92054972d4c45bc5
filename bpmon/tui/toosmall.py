"""What is shown instead of the panels when the terminal is smaller than the layout needs."""

from __future__ import annotations

from rich.text import Text
from textual.geometry import Size
from textual.reactive import reactive
from textual.widget import Widget

MIN_WIDTH = 80
MIN_HEIGHT = 24


def too_small(width: int, height: int) -> bool:
    return width < MIN_WIDTH or height < MIN_HEIGHT


class TooSmall(Widget):
    """A centred message naming the terminal's size and the size needed (the stylesheet shows
    it only below that size)."""

    terminal_size: reactive[Size] = reactive(Size(0, 0))
    """The terminal's size; bound to the app's."""

    def render(self) -> Text:
        width, height = self.terminal_size
        return Text(
            f"Terminal too small: {width}x{height}, need {MIN_WIDTH}x{MIN_HEIGHT}"
            " — enlarge the window\n\n(q quits)"
        )
