"""Wall time of ``bpmon --help`` and ``bpmon --list-presets``, each a fresh process.

These must feel instant, which is why the CLI imports NumPy, Textual and plotext only when a
run starts. The contender is a bare ``python -c pass``: the part of the time no code of bpmon's
can remove. Run as ``python -m bpmon`` (the console script adds only its own tiny shim).
"""

from __future__ import annotations

import functools
import subprocess
import sys
import time
from collections.abc import Callable

from benchmarks.harness import Figure, Settings, child_env, interleave, median


def _wall(argv: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, env=child_env(), check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{argv} exited {proc.returncode}: {proc.stderr.decode()[-500:]}")
    return elapsed


def run(settings: Settings) -> list[Figure]:
    bpmon = [sys.executable, "-m", "bpmon"]
    commands = {
        "help": [*bpmon, "--help"],
        "list-presets": [*bpmon, "--list-presets"],
        "python": [sys.executable, "-c", "pass"],
    }
    contenders: dict[str, Callable[[], float]] = {
        name: functools.partial(_wall, argv) for name, argv in commands.items()
    }
    samples = interleave(contenders, settings.scale(9, 1), settings.warmup)
    baseline = median(samples["python"])
    figures = []
    for name in ("help", "list-presets"):
        figures.append(
            Figure(
                key=f"cli_{name.replace('-', '_')}_s",
                title=f"`bpmon --{name}` wall time",
                unit="s",
                target=0.3,
                op="<=",
                bpmon=median(samples[name]),
                contender=baseline,
                contender_name="`python -c pass`",
                value=median(samples[name]),
                samples={name: samples[name], "python": samples["python"]},
                details={"argv": commands[name][1:]},
            )
        )
    return figures
