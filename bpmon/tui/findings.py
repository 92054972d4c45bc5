"""The findings: what the diagnosis makes of the gradients, one line each under the status line,
and every one in full, with its advice, in a modal (enter or f).

The findings come in the snapshot, most severe first (:mod:`bpmon.diagnosis` computes them on
the source's side); these widgets only lay them out. A finding names actions
(:mod:`bpmon.actions`), and its advice is rendered for the run in view: on bpmon's own run with
the keys that apply it (an ordinary key of the app, so it works from the main screen and from
the modal alike), on a PyTorch run as the change to make in the script, on any other recording
in words alone. No advice names a key that does nothing where it is shown.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from typing import ClassVar

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.reactive import reactive
from textual.screen import ModalScreen

from bpmon.actions import ACTIONS, Where, advice, where_of
from bpmon.runmodel import Finding, Severity
from bpmon.trainer import Snapshot

from .screens import TerminalSized
from .view import SnapshotView, TextLine

# A marker per severity, so that the line reads without colour too.
MARKERS: dict[Severity, str] = {"error": "✖", "warning": "▲", "info": "●"}
# Before the first layout the strip has no width: lay lines out for 80 columns.
_FALLBACK_WIDTH = 78
# A cut moves back to a space at most this many characters before it.
_WORD_BACKOFF = 12
# Evidence cut shorter than this is no evidence: the advice goes first then.
_MIN_EVIDENCE = 16
# A key in an advice: "try ReLU (a)", "lower the learning rate ([)".
_KEY_IN_ADVICE = re.compile(r"\(([^\s()])\)")
# Where an advice offers another way ("try ReLU (a) or batch-norm (b)") or a further step
# ("lower the learning rate ([) and restart (r)").
_ALTERNATIVES = re.compile(r",? (?:or|and) ")
# The end of the first line, where it fits: enter opens the modal.
_HINT = "  ⏎ more"
_CLOSES = "escape closes"
# At most this many layer names in the modal; the rest are counted.
_LAYERS_LISTED = 6

FINDING_CLASSES: set[str] = {
    *(f"findings--{severity}" for severity in MARKERS),
    "findings--key",
    "findings--dim",
}


def where_of_snapshot(snapshot: Snapshot) -> Where:
    """Where the snapshot's run is, for the wording of advice (:func:`bpmon.actions.where_of`)."""
    return where_of(snapshot.config, snapshot.switches)


def full_advice(finding: Finding, where: Where = "live") -> str:
    """The finding's whole advice for a run ``where``. A finding made before action ids (no
    ``actions``) keeps its text, less its keys where none applies."""
    if finding.actions:
        if where == "live":
            return finding.advice
        return advice(finding.actions, where, dict(finding.facts))
    return finding.advice if where == "live" else _unkeyed(finding.advice)


def _unkeyed(text: str) -> str:
    return _KEY_IN_ADVICE.sub("", text).replace(" ,", ",").strip()


def key_advice(finding: Finding, where: Where = "live") -> str:
    """The part of the advice that goes with the finding's first action (or key): ``"try ReLU
    (a) or batch-norm (b)"`` with key ``a`` -> ``"try ReLU (a)"``; the whole advice when no part
    names it. The strip shows this part when the whole advice does not fit; the modal shows it
    all."""
    if finding.actions:
        if where != "live":
            return advice(finding.actions[:1], where, dict(finding.facts)) or full_advice(
                finding, where
            )
        first = ACTIONS[finding.actions[0]].render("live", dict(finding.facts))
        return first if first in finding.advice else finding.advice
    if where != "live":
        return full_advice(finding, where)
    if finding.key is None:
        return finding.advice
    tag = f"({finding.key})"
    for part in _ALTERNATIVES.split(finding.advice):
        if tag in part:
            return part.strip()
    return finding.advice


def cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, its end replaced by an ellipsis when it is cut, at a
    space where one is near enough."""
    if cell_len(text) <= width:
        return text
    if width < 1:
        return ""
    kept = ""
    for char in text:
        if cell_len(kept) + cell_len(char) + 1 > width:
            break
        kept += char
    space = kept.rfind(" ")
    inside_a_word = not text[len(kept)].isspace()
    if inside_a_word and 0 < space >= len(kept) - _WORD_BACKOFF:
        # Not half a word (nor half a number: "1/84,00…" would read as 8,400).
        kept = kept[:space]
    return kept.rstrip(" ,;:") + "…"


class _Styles:
    """The component styles of a findings widget, looked up once per draw."""

    def __init__(self, widget: SnapshotView) -> None:
        def style(name: str) -> Style:
            return widget.get_component_rich_style(f"findings--{name}", partial=True)

        self.severity = {severity: style(severity) for severity in MARKERS}
        self.key = style("key")
        self.dim = style("dim")

    def advice(self, advice: str) -> Text:
        """The advice with its keys picked out."""
        text = Text(advice)
        for match in _KEY_IN_ADVICE.finditer(advice):
            text.stylize(self.key, match.start(1), match.end(1))
        return text


def finding_line(finding: Finding, width: int, styles: _Styles, where: Where = "live") -> Text:
    """One finding in ``width`` cells: marker, rule, evidence, and the advice for ``where``.

    What gives way when the line is too long, in this order: the advice's other ways (only the
    part with the finding's key stays), the evidence after its first clause, the end of the
    evidence (an ellipsis), on a recorded run the script's wording (the action's label stays),
    and last the advice.
    """
    severity = styles.severity.get(finding.severity, styles.dim)
    head = f"{MARKERS.get(finding.severity, '•')} {finding.rule}: "
    first_clause = finding.evidence.split("; ")[0]
    short = key_advice(finding, where)
    chosen: tuple[str, str] | None = None
    for said in dict.fromkeys((full_advice(finding, where), short)):
        for evidence in dict.fromkeys((finding.evidence, first_clause)):
            tail = f" — {said}" if said else ""
            if cell_len(head + evidence + tail) <= width:
                chosen = evidence, said
                break
        if chosen:
            break
    if chosen is None:
        tail = f" — {short}" if short else ""
        room = width - cell_len(head) - cell_len(tail)
        if room < _MIN_EVIDENCE and where != "live" and finding.actions:
            # A script change is long: the strip names the action, the modal spells it out.
            short = ACTIONS[finding.actions[0]].label
            room = width - cell_len(head) - cell_len(f" — {short}")
        if room < _MIN_EVIDENCE:
            short, room = "", width - cell_len(head)
        chosen = cut(first_clause, room), short
    evidence, said = chosen
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(head[:-2], severity + Style(bold=True))
    text.append(": ")
    text.append(evidence)
    if said:
        text.append(" — ", styles.dim)
        text.append_text(styles.advice(said) if where == "live" else Text(said))
    return text


class FindingsStrip(TextLine, SnapshotView):
    """One line per finding under the status line, most severe first; no room at all when
    there is none. At most ``max_rows`` lines: past that, the last line counts the rest."""

    # Findings come and go with hysteresis (a quarter of a second at least); their evidence's
    # numbers change with every snapshot, which nobody reads at 12 Hz.
    REDRAW_INTERVAL = 0.5

    COMPONENT_CLASSES: ClassVar[set[str]] = FINDING_CLASSES

    max_rows: reactive[int] = reactive(3, repaint=False)
    """How many lines the strip may take; bound to the app's (it depends on the height)."""

    def context(self) -> tuple[Hashable, ...]:
        return (self.max_rows,)

    def watch_max_rows(self) -> None:
        self.redraw()

    def draw(self, snapshot: Snapshot) -> None:
        findings = snapshot.findings
        self.set_class(bool(findings), "-shown")
        if not findings:
            self.text = Text()
            return
        width = self.content_size.width or _FALLBACK_WIDTH
        styles = _Styles(self)
        where = where_of_snapshot(snapshot)
        rows = max(1, self.max_rows)
        shown = findings if len(findings) <= rows else findings[: rows - 1]
        lines = [finding_line(finding, width, styles, where) for finding in shown]
        hidden = len(findings) - len(shown)
        if hidden:
            lines.append(Text(cut(f"+{hidden} more: enter lists them all", width), styles.dim))
        elif cell_len(lines[0].plain + _HINT) <= width:
            # Where there is room, the first line says where the rest is.
            lines[0].append(_HINT, styles.dim)
        self.text = Text("\n").join(lines)


def findings_text(snapshot: Snapshot, styles: _Styles) -> Text:
    """Every finding in full: rule and severity, evidence, the layers, the advice for where the
    run is and, on bpmon's own run, the key of its first action."""
    where = where_of_snapshot(snapshot)
    text = Text()
    if not snapshot.findings:
        text.append("No findings: none of the rules holds on the recent snapshots.", styles.dim)
        return text
    for i, finding in enumerate(snapshot.findings):
        if i:
            text.append("\n\n")
        severity = styles.severity.get(finding.severity, styles.dim) + Style(bold=True)
        text.append(f"{MARKERS.get(finding.severity, '•')} {finding.rule}", severity)
        text.append(f"  {finding.severity}", styles.dim)
        text.append(f"\n{finding.evidence}")
        if finding.layers:
            names = list(finding.layers[:_LAYERS_LISTED])
            if len(finding.layers) > _LAYERS_LISTED:
                names.append(f"and {len(finding.layers) - _LAYERS_LISTED} more")
            text.append("\nlayers: ", styles.dim)
            text.append(", ".join(names))
        text.append("\n→ ", styles.dim)
        said = full_advice(finding, where)
        text.append_text(styles.advice(said) if where == "live" else Text(said))
        if finding.key is not None and where == "live":
            text.append("  press ", styles.dim)
            text.append(finding.key, styles.key)
    return text


class FindingsList(TextLine, SnapshotView):
    """Every finding of the snapshot it is given, in full (the modal's body)."""

    REDRAW_INTERVAL = 0.5

    COMPONENT_CLASSES: ClassVar[set[str]] = FINDING_CLASSES

    def draw(self, snapshot: Snapshot) -> None:
        self.text = findings_text(snapshot, _Styles(self))


class FindingsScreen(TerminalSized, ModalScreen[None]):
    """Every finding with its evidence and advice, kept up to date with the app's snapshot;
    escape closes it (and enter or f, the app's keys that opened it). On bpmon's own run a
    finding's key applies it from here as from the main screen, and the subtitle says so; on a
    recorded run it does not say it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="findings-box") as box:
            box.border_title = "bpmon findings"
            box.border_subtitle = _CLOSES
            yield FindingsList(id="findings-list")

    def on_mount(self) -> None:
        # The app's reactive snapshot, passed on as the panels get theirs.
        self.watch(self.app, "snapshot", self._show)

    def _show(self, snapshot: Snapshot | None) -> None:
        self.query_one(FindingsList).snapshot = snapshot
        keys = snapshot is not None and where_of_snapshot(snapshot) == "live"
        self.query_one("#findings-box").border_subtitle = (
            f"a finding's key applies it · {_CLOSES}" if keys else _CLOSES
        )

    def action_close(self) -> None:
        self.dismiss()
