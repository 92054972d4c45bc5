"""What a run's new snapshot has to say once, as notifications: its notice (an intent refused
or clamped), its sticky message (an error, a failed restart), and, beside another run, what a
key changed in it (:func:`bpmon.tui.compare.changes`), each named by its run."""

from __future__ import annotations

from textual.notifications import SeverityLevel

from bpmon.trainer import Snapshot

from .compare import changes, run_label

Said = tuple[str, str, SeverityLevel]


def news(old: Snapshot | None, new: Snapshot) -> list[Said]:
    """What ``new`` has to say once, after ``old`` of the same source: its notice (an intent
    refused or clamped) when it is a new one, and its sticky message (an error, a failed
    restart) when it comes; as (message, title, severity). A run file's message (corrupt lines
    skipped) is in the status line only: its count may grow."""
    said: list[Said] = []
    notice = ""
    if old is None or new.notice_id != old.notice_id:
        notice = new.notice
        if notice:
            said.append((notice, "", "warning"))
    if (
        new.message
        and not new.mode
        and new.message != notice
        and (old is None or new.message != old.message)
    ):
        severity: SeverityLevel = "error" if new.state == "error" else "warning"
        said.append((new.message, f"training {new.state}", severity))
    return said


def announcements(index: int, columns: int, old: Snapshot | None, new: Snapshot) -> list[Said]:
    """What column ``index`` of ``columns`` says for ``new`` after ``old``: alone, its
    :func:`news`; beside others, also what a key changed in a live run, each line after the
    run's name (``run B (digits-relu-bn): activation sigmoid → relu (restarted)``)."""
    if columns == 1:
        return news(old, new)
    label = run_label(index, new)
    # A recorded run's cursor moving over a restart is not a key changing the run.
    changed = [] if new.mode else changes(old, new)
    said: list[Said] = [(f"{label}: {m}", "", "information") for m in changed]
    return said + [(f"{label}: {m}", title, sev) for m, title, sev in news(old, new)]
