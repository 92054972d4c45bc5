"""The divergence banner: where the loss stopped being a number, and what the keys can do now."""

from __future__ import annotations

from rich.text import Text

from bpmon.trainer import Snapshot

from .view import SnapshotView, TextLine


def banner_text(snapshot: Snapshot) -> Text:
    step = "?" if snapshot.diverged_step is None else str(snapshot.diverged_step)
    layer = snapshot.diverged_layer or "?"
    if snapshot.mode:
        # A recorded run: no key of this monitor changes it, so none is offered.
        return Text.assemble(
            ("DIVERGED", "bold"), f" at step {step} in {layer}: the loss is not finite."
        )
    return Text.assemble(
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


class DivergenceBanner(TextLine, SnapshotView):
    """Shown only while the run's state is ``diverged`` (the stylesheet hides it otherwise)."""

    def draw(self, snapshot: Snapshot) -> None:
        diverged = snapshot.state == "diverged"
        self.set_class(diverged, "-shown")
        if diverged:
            self.text = banner_text(snapshot)
