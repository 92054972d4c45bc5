"""Regenerate the README's gradient-flow pictures: ``python docs/heatmaps.py`` writes
docs/flow-vanishing.svg, docs/flow-explosion.svg and docs/flow-spike.svg.

Each is ``bpmon replay`` of a hand-written run file of a 12-block GPT (tests/bigmodels.py: the
rows a GPT-2 gives the bridge, norms shaped like each failure, statuses from bpmon's own
classifier) with the heatmap open (``h``) and the blocks shown (the stack opened, as enter does).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

# The run files are the tests' own (one place that writes them).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from bigmodels import write_gpt_run

from bpmon.sources import RunFileSource
from bpmon.tui.app import BpmonApp
from bpmon.tui.gradients import GradientPanel

SIZE = (100, 44)
PATTERNS = ("vanishing", "explosion", "spike")


async def shoot(run: Path, out: Path) -> None:
    source = RunFileSource(str(run), "replay")
    source.open_now()
    app = BpmonApp(source)
    async with app.run_test(size=SIZE) as pilot:
        panel = app.query_one("#gradients", GradientPanel)
        # The whole run read (the reader reads the file's tail first, then the rest).
        while source.latest().loss_steps[:1] != (10,) or "120/120" not in source.latest().detail:
            await pilot.pause(0.05)
        panel.chosen["transformer.h"] = True
        panel.flow = True
        await pilot.pause(1.5)
        app.save_screenshot(filename=out.name, path=str(out.parent))
        await app.action_quit()


async def main(folder: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for pattern in PATTERNS:
            run = write_gpt_run(Path(tmp) / f"gpt-12-{pattern}.jsonl", pattern)
            await shoot(run, folder / f"flow-{pattern}.svg")


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent
    asyncio.run(main(target))
    print(*(target / f"flow-{p}.svg" for p in PATTERNS))
