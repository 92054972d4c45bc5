"""The Textual app while it trains: does watching slow training down, how many frames reach the
screen, and does a frame cost more late in a long run than early?

Everything runs in-process with Textual's headless driver at 80x24 (``App.run_test``), with the
real panels. Training rates come from the trainer's own snapshots: steps between two snapshots
over the trainer-clock time between them, so the reading is exact whatever the UI is doing.

Frames are counted where Textual hands a screen update to the terminal driver. In headless mode
Textual skips turning that update into escape sequences; :class:`MeasuredApp` does it anyway (and
throws the text away) so that a frame here costs what it costs in a terminal. The cost of a
frame is the CPU time of the UI thread (everything Textual and the panels do) divided by the
frames it produced: early in the run and late in it, which must come out the same, since every
curve is decimated to the plot's width and the trainer's history is bounded.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from dataclasses import asdict, dataclass

from rich.console import RenderableType
from textual import events
from textual.screen import Screen

from benchmarks.harness import Figure, Settings, interleave, median, paired_ratio
from benchmarks.xor import xor_config
from bpmon.launch import live_trainer
from bpmon.trainer import Snapshot, Trainer
from bpmon.tui.app import FRAME_INTERVAL, SNAPSHOT_INTERVAL, BpmonApp
from bpmon.tui.gradients import GradientPanel

SIZE = (80, 24)


class MeasuredApp(BpmonApp):
    """The real app, recording when each frame goes out and how many bytes it would write."""

    def __init__(self, trainer: Trainer) -> None:
        super().__init__(trainer)
        self.frame_times: list[float] = []
        self.frame_bytes: list[int] = []

    def _display(self, screen: Screen[object], renderable: RenderableType | None) -> None:
        if renderable is not None and self.is_headless:
            from textual._compositor import CompositorUpdate

            if isinstance(renderable, CompositorUpdate):
                text = renderable.render_segments(self.console)
                self.frame_bytes.append(len(text.encode("utf-8")))
            self.frame_times.append(time.perf_counter())
        super()._display(screen, renderable)


def _rate(a: Snapshot, b: Snapshot) -> float:
    return (b.step - a.step) / (b.elapsed - a.elapsed) if b.elapsed > a.elapsed else 0.0


def watched_trainer() -> Trainer:
    """The endless xor trainer as the monitor runs it (``bpmon --preset xor``)."""
    preset, config = xor_config()
    return live_trainer(config, preset, interval=SNAPSHOT_INTERVAL)


def headless_rate(warm: float, window: float) -> float:
    """Steps/s of the trainer on its thread with nobody watching."""
    preset, config = xor_config()
    trainer = live_trainer(config, preset, interval=0.1)
    trainer.start()
    try:
        time.sleep(warm)
        first = trainer.latest()
        time.sleep(window)
        return _rate(first, trainer.latest())
    finally:
        trainer.stop()


async def open_boundary(app: BpmonApp, trainer: Trainer) -> None:
    """Press v, as a user does, and wait until the snapshots carry the boundary."""
    app.post_message(events.Key("v", "v"))
    while trainer.latest().boundary is None:
        await asyncio.sleep(0.01)


async def open_heatmap(app: BpmonApp) -> None:
    """Press h, as a user does, and wait until the gradient panel draws the flow over time."""
    app.post_message(events.Key("h", "h"))
    panel = app.query_one("#gradients", GradientPanel)
    while not panel.flow or "gradient flow" not in str(panel.border_title):
        await asyncio.sleep(0.01)


def app_rate(
    warm: float,
    window: float,
    size: tuple[int, int] = SIZE,
    boundary: bool = False,
    heatmap: bool = False,
) -> float:
    """Steps/s of the same trainer while the app shows it (with the decision boundary open
    when ``boundary``, the gradient flow over time when ``heatmap``)."""

    async def main() -> float:
        trainer = watched_trainer()
        app = BpmonApp(trainer)
        async with app.run_test(size=size):
            if boundary:
                await open_boundary(app, trainer)
            if heatmap:
                await open_heatmap(app)
            await asyncio.sleep(warm)
            first = trainer.latest()
            await asyncio.sleep(window)
            return _rate(first, trainer.latest())

    return asyncio.run(main())


@dataclass
class Window:
    """What the UI thread did over a stretch of time: frames, CPU seconds, trainer steps."""

    frames: int
    cpu_s: float
    steps: tuple[int, int]

    @property
    def ms_per_frame(self) -> float:
        return 1000 * self.cpu_s / self.frames if self.frames else math.nan


async def _window(app: MeasuredApp, trainer: Trainer, seconds: float) -> Window:
    """Watch the running app for ``seconds``. ``time.thread_time`` read here, in a coroutine on
    the app's event loop, is the UI thread's CPU time."""
    frames, cpu, step = len(app.frame_times), time.thread_time(), trainer.latest().step
    await asyncio.sleep(seconds)
    return Window(
        len(app.frame_times) - frames, time.thread_time() - cpu, (step, trainer.latest().step)
    )


@dataclass
class LongRun:
    """One long session of the app: its frame rate, and a frame's cost early and late."""

    fps: float
    early: Window
    late: Window
    final_step: int
    loss_points: int
    frame_gaps_s: list[float]
    frame_bytes: list[int]

    def as_json(self) -> dict[str, object]:
        return {
            "fps": self.fps,
            "early": {**asdict(self.early), "ms_per_frame": self.early.ms_per_frame},
            "late": {**asdict(self.late), "ms_per_frame": self.late.ms_per_frame},
            "final_step": self.final_step,
            "loss_points_in_last_snapshot": self.loss_points,
            "frame_gap_s": {
                "median": median(self.frame_gaps_s),
                "max": max(self.frame_gaps_s, default=math.nan),
            },
            "bytes_per_frame_median": median([float(b) for b in self.frame_bytes]),
        }


def long_run(warm: float, window: float, total: float) -> LongRun:
    async def main() -> LongRun:
        trainer = watched_trainer()
        app = MeasuredApp(trainer)
        async with app.run_test(size=SIZE):
            await asyncio.sleep(warm)
            t0, n0 = time.perf_counter(), len(app.frame_times)
            early = await _window(app, trainer, window)
            await asyncio.sleep(max(0.0, total - warm - 2 * window))
            late = await _window(app, trainer, window)
            t1, n1 = time.perf_counter(), len(app.frame_times)
            snap = trainer.latest()
        times = app.frame_times[n0:n1]
        return LongRun(
            fps=(n1 - n0) / (t1 - t0),
            early=early,
            late=late,
            final_step=snap.step,
            loss_points=len(snap.loss_steps),
            frame_gaps_s=[b - a for a, b in itertools.pairwise(times)],
            frame_bytes=app.frame_bytes[n0:n1],
        )

    return asyncio.run(main())


def run(settings: Settings) -> list[Figure]:
    warm = settings.seconds(1.0, 0.2)
    window = settings.seconds(3.0, 0.3)
    samples = interleave(
        {
            "headless": lambda: headless_rate(warm, window),
            "app": lambda: app_rate(warm, window),
            "heatmap": lambda: app_rate(warm, window, heatmap=True),
        },
        settings.scale(4, 1),
        settings.warmup,
    )
    ratio = paired_ratio(samples["app"], samples["headless"])
    speed = Figure(
        key="tui_vs_headless",
        title="xor trainer steps/s with the app open (80x24) vs headless",
        unit="steps/s",
        target=0.8,
        op=">=",
        bpmon=median(samples["app"]),
        contender=median(samples["headless"]),
        contender_name="headless, same thread setup",
        ratio=ratio,
        value=ratio,
        on_ratio=True,
        samples=samples,
        note="both train on the trainer's background thread; the app's UI thread competes "
        "for the GIL",
    )

    heatmap_ratio = paired_ratio(samples["heatmap"], samples["headless"])
    heatmap = Figure(
        key="tui_heatmap_vs_headless",
        title="xor trainer steps/s with the gradient flow over time open (h, 80x24) vs headless",
        unit="steps/s",
        target=0.8,
        op=">=",
        bpmon=median(samples["heatmap"]),
        contender=median(samples["headless"]),
        contender_name="headless, same thread setup",
        ratio=heatmap_ratio,
        value=heatmap_ratio,
        on_ratio=True,
        samples={"heatmap": samples["heatmap"], "headless": samples["headless"]},
        note="the map is redrawn at the bars' cadence (4/s) from a history the panel keeps of "
        "every snapshot it is given",
    )

    total = settings.seconds(40.0, 1.0)
    session = long_run(warm, window, total)
    early, late = session.early.ms_per_frame, session.late.ms_per_frame
    # What the UI thread could sustain if frames were only limited by their cost.
    capacity = 1000 / max(early, late)
    frames = Figure(
        key="tui_fps",
        title="app frames per second while training",
        unit="fps",
        target=10.0,
        op=">=",
        bpmon=session.fps,
        value=session.fps,
        details={**session.as_json(), "capacity_fps": capacity},
        note=f"the app draws from a {1 / FRAME_INTERVAL:g} Hz timer, and only when a new "
        f"snapshot has come (the trainer publishes every {SNAPSHOT_INTERVAL:g} s), so "
        f"{1 / FRAME_INTERVAL:g} fps is its ceiling; at its CPU cost per frame it could draw "
        f"~{capacity:.0f} fps",
    )
    growth = late / early if early > 0 else math.nan
    cost = Figure(
        key="tui_frame_cost_growth",
        title=f"UI-thread CPU per frame, late vs early in a {total:g} s run",
        unit="ms",
        target=1.25,
        op="<=",
        bpmon=late,
        contender=early,
        contender_name="early in the run",
        ratio=growth,
        value=growth,
        details=session.as_json(),
        on_ratio=True,
        note=f"early: steps {session.early.steps[0]:,}-{session.early.steps[1]:,}, "
        f"late: steps {session.late.steps[0]:,}-{session.late.steps[1]:,}",
    )
    return [speed, heatmap, frames, cost]
