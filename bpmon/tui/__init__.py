"""The terminal monitor. Textual is imported only when the app runs, so that ``bpmon --help``
and the headless commands start without paying for it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bpmon.trainer import Trainer

__all__ = ["run_app"]


def run_app(trainer: Trainer) -> int:
    """Run ``trainer`` (not yet started) in its background thread and show it; returns the
    process exit code. Build it with ``interval=bpmon.tui.app.SNAPSHOT_INTERVAL``."""
    from bpmon.tui.app import BpmonApp

    app = BpmonApp(trainer)
    try:
        app.run()
    finally:
        # Also on a crash in the UI: never leave the training thread running.
        trainer.stop()
    return app.return_code or 0
