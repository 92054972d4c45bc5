"""The terminal monitor. Textual is imported only when the app runs, so that ``bpmon --help``
and the headless commands start without paying for it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bpmon.config import RunConfig

__all__ = ["run_app"]


def run_app(config: RunConfig, preset: str) -> int:
    """Train ``config`` in a background thread and show it; returns the process exit code."""
    from bpmon.trainer import Trainer
    from bpmon.tui.app import SNAPSHOT_INTERVAL, BpmonApp

    trainer = Trainer(config, preset=preset, interval=SNAPSHOT_INTERVAL)
    app = BpmonApp(trainer)
    try:
        app.run()
    finally:
        # Also on a crash in the UI: never leave the training thread running.
        trainer.stop()
    return app.return_code or 0
