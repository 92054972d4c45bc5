"""Resident memory of a long xor run: after 10^6 steps against after 10^4.

The trainer keeps the loss curve in a bounded, thinning buffer and publishes fixed-size
snapshots, so nothing should grow with the number of steps. Measured in a fresh child process
(``python -m benchmarks.memory``) so that what the other groups allocated is not counted, from
the current resident set size (``/proc/self/statm``), after a ``gc.collect()``.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from typing import Any

from benchmarks.harness import Figure, Settings, child_env


def resident_mb() -> float:
    """The current resident set size in MB (not the peak: a peak would hide a later drop)."""
    with open("/proc/self/statm", encoding="ascii") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure(checkpoints: list[int]) -> dict[str, Any]:
    """Train the xor preset and record the resident size at each checkpoint (in steps)."""
    from benchmarks.xor import xor_config
    from bpmon.launch import live_trainer

    preset, config = xor_config()
    trainer = live_trainer(config, preset, interval=0.1)
    rss = {}
    for steps in checkpoints:
        snap = trainer.run(max_steps=steps)
        gc.collect()
        rss[str(snap.step)] = resident_mb()
    return {"preset": preset, "rss_mb": rss, "loss_points": len(snap.loss_steps)}


def _count(n: int) -> str:
    """``10^6`` for a power of ten, ``30,000`` otherwise."""
    digits = str(n)
    if digits.startswith("1") and set(digits[1:]) <= {"0"} and n >= 10:
        return f"10^{len(digits) - 1}"
    return f"{n:,}"


def run(settings: Settings) -> list[Figure]:
    small = 10_000
    big = settings.scale(1_000_000, 30_000)
    checkpoints = [small, 100_000, 300_000, big] if not settings.quick else [small, big]
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory", *map(str, checkpoints)],
        capture_output=True,
        text=True,
        env=child_env(),
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"memory child failed: {proc.stderr[-2000:]}")
    result = json.loads(proc.stdout)
    rss = result["rss_mb"]
    growth = rss[str(big)] - rss[str(small)]
    return [
        Figure(
            key="memory_growth_mb",
            title=f"resident memory, xor trainer: after {_count(big)} steps vs {_count(small)}",
            unit="MB",
            target=10.0,
            op="<=",
            bpmon=growth,
            value=growth,
            details=result,
            note=f"RSS {rss[str(small)]:.1f} MB after {small:,} steps, "
            f"{rss[str(big)]:.1f} MB after {big:,}",
        )
    ]


if __name__ == "__main__":
    print(json.dumps(measure([int(a) for a in sys.argv[1:]])))
