"""The decision boundary open (key ``v``) must not cost the training it shows: the xor trainer's
speed with the app open and the boundary shown, against the same trainer headless, and the
frames per second that reach the screen, at 80x24 and at 160x48.

The setup is :mod:`benchmarks.tui`'s (the real app on Textual's headless driver, training rates
from the trainer's own snapshots, frames counted where Textual hands them to the driver), with
``v`` pressed once the app is up; a run is measured only after its snapshots carry the boundary,
and the panel is checked to be on the screen at the end. The trainer computes a boundary at most
every ``bpmon.trainer.boundary.INTERVAL`` seconds; the time one takes is reported beside.
"""

from __future__ import annotations

import asyncio
import time
from functools import partial

from benchmarks.harness import Figure, Settings, interleave, median, paired_ratio
from benchmarks.tui import MeasuredApp, app_rate, headless_rate, open_boundary, watched_trainer
from benchmarks.xor import xor_config
from bpmon.config import validate
from bpmon.presets import load_preset
from bpmon.trainer.boundary import INTERVAL, Plane
from bpmon.trainer.run import Run
from bpmon.tui.boundary import BoundaryPanel

SIZES = ((80, 24), (160, 48))


def boundary_ms(preset: str, repeats: int) -> float:
    """Milliseconds the trainer spends on one boundary of ``preset``'s network."""
    config = validate(load_preset(preset).config, preset)
    run = Run.build(config)
    run.train_step()
    plane = Plane(run.data, run.net.dtype)
    plane.boundary(run.net, run.step)
    t0 = time.perf_counter()
    for _ in range(repeats):
        plane.boundary(run.net, run.step)
    return 1000 * (time.perf_counter() - t0) / repeats


def fps(size: tuple[int, int], warm: float, window: float) -> float:
    """Frames per second with the boundary open at ``size``."""

    async def main() -> float:
        trainer = watched_trainer()
        app = MeasuredApp(trainer)
        async with app.run_test(size=size):
            await open_boundary(app, trainer)
            await asyncio.sleep(warm)
            n0, t0 = len(app.frame_times), time.perf_counter()
            await asyncio.sleep(window)
            frames = (len(app.frame_times) - n0) / (time.perf_counter() - t0)
            if not app.query_one(BoundaryPanel).display:
                raise RuntimeError("the boundary panel is not on the screen")
        return frames

    return asyncio.run(main())


def run(settings: Settings) -> list[Figure]:
    warm = settings.seconds(1.0, 0.2)
    window = settings.seconds(3.0, 0.3)
    preset, _ = xor_config()
    cost = {name: boundary_ms(name, settings.scale(200, 5)) for name in ("xor", "spiral")}
    figures = []
    for size in SIZES:
        tag = f"{size[0]}x{size[1]}"
        samples = interleave(
            {
                "headless": lambda: headless_rate(warm, window),
                "app": partial(app_rate, warm, window, size),
                "app_boundary": partial(app_rate, warm, window, size, boundary=True),
            },
            settings.scale(4, 1),
            settings.warmup,
        )
        ratio = paired_ratio(samples["app_boundary"], samples["headless"])
        plain = paired_ratio(samples["app"], samples["headless"])
        own = paired_ratio(samples["app_boundary"], samples["app"])
        figures.append(
            Figure(
                key=f"boundary_vs_headless_{tag}",
                title=f"{preset} trainer steps/s with the decision boundary open ({tag}) vs "
                "headless",
                unit="steps/s",
                target=0.8,
                op=">=",
                bpmon=median(samples["app_boundary"]),
                contender=median(samples["headless"]),
                contender_name="headless, same thread setup",
                ratio=ratio,
                value=ratio,
                on_ratio=True,
                samples=samples,
                details={
                    "boundary_ms": cost,
                    "interval_s": INTERVAL,
                    "app_without_boundary_vs_headless": plain,
                    "app_with_vs_without_boundary": own,
                },
                note=f"side by side, the app without the boundary: {plain:.2f}x headless, so the "
                f"boundary's own share is {own:.2f}x; one boundary (64x64 grid) takes "
                f"{cost['xor']:.2f} ms for xor, {cost['spiral']:.2f} ms for spiral (2-32-32-3), "
                f"at most every {INTERVAL:g} s",
            )
        )
        rate = fps(size, warm, settings.seconds(10.0, 0.5))
        figures.append(
            Figure(
                key=f"boundary_fps_{tag}",
                title=f"app frames per second with the decision boundary open ({tag})",
                unit="fps",
                target=10.0,
                op=">=",
                bpmon=rate,
                value=rate,
                note="the panel repaints only in a frame that brings a new boundary (at most 4 a "
                "second) and adds no frames of its own",
            )
        )
    return figures
