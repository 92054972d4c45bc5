"""Regenerate the README's screenshots: ``python docs/screenshot.py`` writes docs/screenshot.svg
(one run) and docs/compare.svg (two runs side by side, ``--compare``).

Every run is trained to a fixed step before the app opens, so each picture is of paused runs
whose numbers depend only on the presets and their seeds.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from textual.app import App

from bpmon.launch import live_trainer
from bpmon.presets import load_preset
from bpmon.trainer import Trainer
from bpmon.tui.app import BpmonApp

PRESET, STEPS, SIZE = "sigmoid-vanishing", 300, (120, 36)
# The pair: the vanishing preset beside its fix, same data, depth and width.
COMPARED, COMPARE_SIZE = "digits-relu-bn", (120, 36)


def trained(preset: str) -> Trainer:
    # A snapshot at every step, so that the findings have held long enough to be shown.
    trainer = live_trainer(load_preset(preset).config, preset=preset, interval=0.0)
    trainer.run(max_steps=STEPS)
    return trainer


async def shoot(app: App[None], size: tuple[int, int], out: Path) -> None:
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.5)
        app.save_screenshot(filename=out.name, path=str(out.parent))
        await app.action_quit()


async def main(folder: Path) -> None:
    await shoot(BpmonApp(trained(PRESET)), SIZE, folder / "screenshot.svg")
    app = BpmonApp(trained(PRESET), trained(COMPARED))
    await shoot(app, COMPARE_SIZE, folder / "compare.svg")


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent
    asyncio.run(main(target))
    print(target / "screenshot.svg", target / "compare.svg")
