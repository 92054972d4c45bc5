"""The divergence banner: where the loss stopped being a number, and what the keys can do now."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from bpmon.trainer import Snapshot


class DivergenceBanner(Static):
    """Shown only while the run's state is ``diverged``; hidden otherwise."""

    _shown: tuple[int, int | None] | None = None

    def show(self, snapshot: Snapshot) -> None:
        diverged = snapshot.state == "diverged"
        self.set_class(diverged, "-shown")
        if not diverged or self._shown == (snapshot.run_id, snapshot.diverged_step):
            return
        self._shown = (snapshot.run_id, snapshot.diverged_step)
        step = "?" if snapshot.diverged_step is None else str(snapshot.diverged_step)
        layer = snapshot.diverged_layer or "?"
        self.update(
            Text.assemble(
                ("DIVERGED", "bold"),
                f" at step {step} in {layer}: the loss is not finite; training paused.\n",
                ("[", "bold"),
                " halve lr, ",
                ("r", "bold"),
                " restart · ",
                ("a", "bold"),
                "/",
                ("A", "bold"),
                " activation · ",
                ("b", "bold"),
                " batch-norm · ",
                ("-", "bold"),
                " fewer layers",
            )
        )
