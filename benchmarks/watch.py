"""``bpmon watch`` on a long run file: first frame, memory, and how soon an appended line shows.

The file is 10^6 snapshot lines of a four-layer network (about 1 GB; ``--quick``: 2,000 lines),
written once into ``benchmarks/results/`` and reused. In a pty at 80x24:

- first frame: from the launch to a screen that shows the panels and the file's last step;
- resident memory: the process's peak (VmHWM) once the whole file has been read in the
  background (the screen no longer says "reading the earlier lines");
- append latency: a line with a new step is appended to the file and timed until its step is on
  the screen, several times.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from benchmarks.harness import Figure, Settings, child_env, median
from benchmarks.terminal import Child, visible_text

RESULTS = Path(__file__).resolve().parent / "results"
LAYERS = 4


def _header() -> str:
    layers = [
        {"name": f"layer{i}", "kind": "Linear", "shape": [64, 64], "fan_in": 64, "fan_out": 64}
        for i in range(LAYERS)
    ]
    return json.dumps(
        {
            "format": "bpmon-run",
            "version": 1,
            "source": "torch",
            "name": "bench",
            "started": "2026-01-01T00:00:00+00:00",
            "host": "bench",
            "pid": 1,
            "layers": layers,
            "thresholds": {
                "vanish_rel": 0.01,
                "vanish_abs": 1e-8,
                "explode_rel": 100.0,
                "explode_abs": 100.0,
            },
            "architecture": "64-64-64-64-64",
            "switches": "64-64-64-64-64 torch",
            "epochs": None,
        }
    )


def _line(step: int) -> str:
    layers = [
        {
            "name": f"layer{i}",
            "fan_in": 64,
            "fan_out": 64,
            "grad_norm": 0.01 * (i + 1),
            "bias_grad_norm": 0.001,
            "weight_norm": 4.0,
            "update_ratio": 1e-3,
            "delta_norm": 0.1,
            "health": 0.1,
            "health_label": "dead",
            "status": "healthy",
            "activation": "relu" if i < LAYERS - 1 else None,
        }
        for i in range(LAYERS)
    ]
    return json.dumps(
        {
            "step": step,
            "epoch": None,
            "time": step * 0.01,
            "loss": 1.0 / (1.0 + step * 1e-4),
            "lr": 0.01,
            "state": "running",
            "run_id": 0,
            "layers": layers,
        },
        separators=(",", ":"),
    )


def run_file(lines: int) -> Path:
    """The benchmark's run file of ``lines`` snapshots, written once."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"watch-{lines}.jsonl"
    if path.exists():
        return path
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(_header() + "\n")
        for step in range(1, lines + 1):
            f.write(_line(step) + "\n")
    os.replace(tmp, path)
    return path


def _peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def launch(path: Path, appends: int) -> dict[str, object]:
    """One ``bpmon watch`` in a pty on a copy of ``path`` (appended to, so the original stays)."""
    work = path.with_name(path.stem + "-live.jsonl")
    with open(path, "rb") as src, open(work, "wb") as dst:
        while chunk := src.read(1 << 24):
            dst.write(chunk)
    with open(path, "rb") as f:
        last_step = sum(1 for _ in f) - 1
    argv = [sys.executable, "-m", "bpmon", "watch", str(work)]
    env = child_env(TERM="xterm-256color")
    for name in ("COLUMNS", "LINES", "NO_COLOR"):
        env.pop(name, None)
    child = Child(argv, env)
    result: dict[str, object] = {}
    exit_code: int | None = None
    seen = b""
    try:
        deadline = child.t_start + 30
        while time.perf_counter() < deadline and not child.eof:
            seen += child.read(0.02)
            # The whole output so far: a first frame is tens of kilobytes, and its status line
            # (with the step) comes first.
            text = visible_text(seen)
            if "gradients" in text and (f"{last_step:,}" in text or str(last_step) in text):
                result["first_frame_s"] = time.perf_counter() - child.t_start
                break
        else:
            raise RuntimeError("bpmon watch drew no frame: " + visible_text(seen)[-2000:])
        # The background read of the whole file.
        deadline = time.perf_counter() + 120
        while time.perf_counter() < deadline:
            seen = (seen + child.read(0.1))[-40000:]
            if "reading the earlier" not in visible_text(seen[-6000:]):
                break
        result["rss_mb"] = _peak_rss_mb(child.pid)
        latencies = []
        with open(work, "a", encoding="utf-8") as f:
            for k in range(appends):
                step = 900_000_000 + k
                f.write(_line(step) + "\n")
                f.flush()
                t0 = time.perf_counter()
                shown = b""
                while time.perf_counter() < t0 + 5:
                    shown = (shown + child.read(0.005))[-20000:]
                    text = visible_text(shown)
                    if str(step) in text or f"{step:,}" in text:
                        latencies.append(time.perf_counter() - t0)
                        break
                time.sleep(0.3)
        result["latencies"] = latencies
        child.write(b"q")
        deadline = time.perf_counter() + 5
        while time.perf_counter() < deadline and exit_code is None:
            child.read(0.02)
            exit_code = child.poll()
        result["exit_code"] = exit_code
        return result
    finally:
        if exit_code is None:
            child.kill()
        else:
            os.close(child.fd)
        work.unlink(missing_ok=True)


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def waiting_cpu(header_mb: int, seconds: float) -> float:
    """The share of a core ``bpmon watch`` takes while a header of ``header_mb`` MB waits for its
    newline (the old reader read it all again at every poll: 37% for 50 MB)."""
    path = RESULTS / f"partial-header-{header_mb}mb.jsonl"
    RESULTS.mkdir(exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(_header()[:-1] + ', "pad": "' + "x" * (header_mb << 20))
    env = child_env(TERM="xterm-256color")
    child = Child([sys.executable, "-m", "bpmon", "watch", str(path)], env)
    try:
        seen = b""
        deadline = time.perf_counter() + 30
        while "waiting for the first" not in visible_text(seen[-20000:]):
            if time.perf_counter() > deadline or child.eof:
                raise RuntimeError("bpmon watch drew no frame: " + visible_text(seen)[-2000:])
            seen += child.read(0.05)
        cpu0, t0 = _cpu_seconds(child.pid), time.perf_counter()
        while time.perf_counter() < t0 + seconds:
            child.read(0.1)
        return (_cpu_seconds(child.pid) - cpu0) / (time.perf_counter() - t0)
    finally:
        child.kill()
        path.unlink(missing_ok=True)


def run(settings: Settings) -> list[Figure]:
    # Within the 16 MiB line limit: a longer header is refused as soon as it passes the limit.
    header_mb = settings.scale(15, 5)
    share = 100 * waiting_cpu(header_mb, settings.seconds(5.0, 0.5))
    waiting = Figure(
        key="watch_waiting_cpu_pct",
        title=f"`bpmon watch`: CPU while a {header_mb} MB header waits for its newline",
        unit="% of a core",
        target=5.0,
        op="<=",
        bpmon=share,
        value=share,
        samples={"bpmon": [share]},
        details={"header_mb": header_mb},
    )
    lines = settings.scale(1_000_000, 2_000)
    path = run_file(lines)
    result = launch(path, appends=settings.scale(10, 2))
    if result["exit_code"] != 0:
        raise RuntimeError(f"bpmon watch did not quit cleanly: {result}")
    latencies = list(result["latencies"])  # type: ignore[call-overload]
    size_mb = path.stat().st_size / 2**20
    details = {"lines": lines, "file_mb": round(size_mb, 1), "layers": LAYERS}
    first = float(result["first_frame_s"])  # type: ignore[arg-type]
    rss = float(result["rss_mb"])  # type: ignore[arg-type]
    late = median(latencies) if latencies else float("nan")
    return [
        Figure(
            key="watch_first_frame_s",
            title=f"`bpmon watch` first frame on {lines:,} lines ({size_mb:,.0f} MB, pty 80x24)",
            unit="s",
            target=1.0,
            op="<=",
            bpmon=first,
            value=first,
            samples={"bpmon": [first]},
            details=details,
        ),
        Figure(
            key="watch_rss_mb",
            title=f"`bpmon watch` peak resident memory after reading all {lines:,} lines",
            unit="MB",
            target=150.0,
            op="<=",
            bpmon=rss,
            value=rss,
            samples={"bpmon": [rss]},
            details=details,
        ),
        Figure(
            key="watch_append_s",
            title="`bpmon watch`: a line appended by the writer to on screen",
            unit="s",
            target=0.25,
            op="<=",
            bpmon=late,
            value=late,
            samples={"bpmon": latencies},
            details=details,
        ),
        waiting,
    ]
