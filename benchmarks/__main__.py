"""``python -m benchmarks [--quick] [--out PATH] [--only GROUP ...]``: run, print, write JSON.

Each group runs in a fresh child process (``--group NAME``), because a group leaves its imports
and garbage behind: after the PyTorch groups a process holds some 340,000 more objects, every
full garbage collection walks them while holding the GIL, and the app's frame cost and the
trainer's speed under the app then measure PyTorch's import, not bpmon.
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import machine, report
from benchmarks.harness import Figure, Settings, child_env

# Cheap ones first; the groups that run the app for long come last.
GROUPS = ("cli", "xor", "mlp", "memory", "tui", "terminal")
GROUPS += ("bridge",)  # bpmon.torch's cost (benchmarks/bridge.py); skipped without torch
GROUPS += ("watch",)  # bpmon watch on a run file of 10^6 lines (benchmarks/watch.py)
GROUPS += ("csvload",)  # reading a CSV file of 10^6 rows vs np.loadtxt (benchmarks/csvload.py)
GROUPS += ("boundary",)  # the app with the decision boundary open (benchmarks/boundary.py)
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "latest.json"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument(
        "--quick", action="store_true", help="tiny budgets: check every contender works (CI)"
    )
    p.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"JSON file (default {DEFAULT_OUT})"
    )
    p.add_argument("--only", nargs="+", choices=GROUPS, metavar="GROUP", help=", ".join(GROUPS))
    p.add_argument("--group", choices=GROUPS, help=argparse.SUPPRESS)  # the child's side
    return p


def run_group_here(name: str, settings: Settings, out: Path) -> None:
    """The child: run one group and write its figures as JSON."""
    run: Callable[[Settings], list[Figure]] = importlib.import_module(f"benchmarks.{name}").run
    figures = run(settings)
    report.write(out, {f.key: f.as_json() for f in figures})


def run_group(name: str, settings: Settings) -> list[Figure]:
    """Run one group in a child process; a failure raises. The child's stderr passes through,
    and its stdout goes to stderr too, so that this process's stdout is the table alone."""
    with tempfile.TemporaryDirectory(prefix="bpmon-bench-") as tmp:
        out = Path(tmp) / f"{name}.json"
        argv = [sys.executable, "-m", "benchmarks", "--group", name, "--out", str(out)]
        proc = subprocess.run(
            [*argv, *(["--quick"] if settings.quick else [])],
            env=child_env(),
            stdout=subprocess.PIPE,
            text=True,
            check=False,
        )
        sys.stderr.write(proc.stdout)
        if proc.returncode != 0:
            raise RuntimeError(f"group {name} exited {proc.returncode}")
        figures = json.loads(out.read_text(encoding="utf-8"))
    return [Figure.from_json(key, doc) for key, doc in figures.items()]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings(quick=args.quick)
    if args.group:
        run_group_here(args.group, settings, args.out)
        return 0
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    figures: list[Figure] = []
    errors: dict[str, str] = {}
    timings: dict[str, float] = {}
    for name in args.only or GROUPS:
        print(f"[benchmarks] {name} ...", file=sys.stderr, flush=True)
        g0 = time.perf_counter()
        try:
            figures += run_group(name, settings)
        except (RuntimeError, OSError, ValueError) as exc:
            # One broken group must not lose the others' numbers; the JSON records the failure
            # (the child printed its traceback) and the exit code says so.
            errors[name] = str(exc)
        timings[name] = time.perf_counter() - g0
    doc = report.document(
        figures,
        {
            "mode": "quick" if settings.quick else "full",
            "started": started.isoformat(timespec="seconds"),
            "duration_s": time.perf_counter() - t0,
            "group_duration_s": timings,
            "machine": machine.describe(),
            "errors": errors,
        },
    )
    report.write(args.out, doc)
    print(report.markdown(figures))
    print(f"\n[benchmarks] wrote {args.out}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
