"""The terminal monitor. Textual is imported only when the app runs, so that ``bpmon --help``
and the headless commands start without paying for it."""

from __future__ import annotations

import asyncio
import signal
from functools import partial
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bpmon.sources import Source

__all__ = ["EXIT_SIGHUP", "EXIT_SIGTERM", "STOP_TIMEOUT", "run_app"]

# The shell's convention for "ended by signal N": 128 + N.
EXIT_SIGTERM = 128 + signal.SIGTERM
EXIT_SIGHUP = 128 + signal.SIGHUP
# How long the training thread is given to finish its step once the app has closed (the app
# told it to stop as it closed). A step usually takes microseconds to milliseconds; a huge
# network's can take seconds, and then the process exits without it (the thread is a daemon),
# so quitting never waits on training.
STOP_TIMEOUT = 0.05


def run_app(source: Source, *compare: Source) -> int:
    """Run ``source`` (a trainer or a run file, not yet started) on its background thread and
    show it, side by side with the sources of ``compare`` (each on its own thread); returns the
    process exit code: 0 after q, 143 after SIGTERM, 129 after SIGHUP.
    Build a trainer with ``interval=bpmon.tui.app.SNAPSHOT_INTERVAL``.

    A signal ends the app the way q does, through Textual, so the terminal is restored
    (alternate screen, mouse reporting and cursor) instead of being left in the app's modes.
    """
    from bpmon.tui.app import BpmonApp

    app = BpmonApp(source, *compare)
    codes = {signal.SIGTERM: EXIT_SIGTERM, signal.SIGHUP: EXIT_SIGHUP}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for signum, code in codes.items():
            loop.add_signal_handler(signum, partial(app.exit, return_code=code))
        try:
            await app.run_async()
        finally:
            for signum in codes:
                loop.remove_signal_handler(signum)

    try:
        asyncio.run(main())
    finally:
        # The app asked the threads to stop when it closed; wait a moment for a short step.
        for each in (source, *compare):
            each.stop(STOP_TIMEOUT)
    return app.return_code or 0
