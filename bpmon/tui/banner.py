"""The divergence banner: where the loss stopped being a number, and what the keys can do now;
and, on a run that goes on after its first NaN (a PyTorch run), where that NaN came from."""

from __future__ import annotations

from rich.text import Text

from bpmon.trainer import Snapshot

from .view import SnapshotView, TextLine


def banner_text(snapshot: Snapshot) -> Text:
    origin = snapshot.nonfinite
    if snapshot.state != "diverged":
        # A run that trains on past a NaN: only where it came from.
        said = "" if origin is None else origin.line.removeprefix("first non-finite: ")
        return Text.assemble(("first non-finite:", "bold"), f" {said}")
    step = "?" if snapshot.diverged_step is None else str(snapshot.diverged_step)
    layer = snapshot.diverged_layer or "?"
    if origin is None:
        where = f" in {layer}: the loss is not finite"
    else:
        # bpmon's engine finds it at the step it diverges: the step is said once.
        said = origin.line
        if origin.step == snapshot.diverged_step:
            said = said.removesuffix(f", update {origin.step}")
        where = f": {said}"
    if snapshot.mode:
        # A recorded run: no key of this monitor changes it, so none is offered.
        return Text.assemble(("DIVERGED", "bold"), f" at step {step}{where}.")
    return Text.assemble(
        ("DIVERGED", "bold"),
        f" at step {step}{where}; training paused.\n",
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
    """Shown only while the run's state is ``diverged``, or once a run that goes on has a
    first non-finite value (the stylesheet hides it otherwise)."""

    def draw(self, snapshot: Snapshot) -> None:
        shown = snapshot.state == "diverged" or snapshot.nonfinite is not None
        self.set_class(shown, "-shown")
        if shown:
            self.text = banner_text(snapshot)
