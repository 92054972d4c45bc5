"""Regenerate the README's screenshot: ``python docs/screenshot.py`` writes docs/screenshot.svg.

The run is trained to a fixed step before the app opens, so the picture is a paused run whose
numbers depend only on the preset and its seed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from bpmon.presets import load_preset
from bpmon.trainer import Trainer
from bpmon.tui.app import BpmonApp

PRESET, STEPS, SIZE = "sigmoid-vanishing", 300, (120, 36)


async def main(out: Path) -> None:
    # A snapshot at every step, so that the findings have held long enough to be shown.
    trainer = Trainer(load_preset(PRESET).config, preset=PRESET, interval=0.0)
    trainer.run(max_steps=STEPS)
    app = BpmonApp(trainer)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.5)
        app.save_screenshot(filename=out.name, path=str(out.parent))
        await app.action_quit()


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("screenshot.svg")
    asyncio.run(main(target))
    print(target)
