"""The ``bpmon`` command: the live monitor by default, ``--headless`` for text and JSON.

Exit codes: 0 the run finished, 1 it diverged, 2 bad usage or bad input (always one line on
stderr, never a traceback), 130 interrupted. Textual and plotext are imported only when the
app opens, so ``--help`` and ``--list-presets`` stay fast.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, Any, NoReturn

from bpmon.config import HIDDEN_ACTIVATIONS, MAX_DEPTH, OPTIMIZERS, RunConfig
from bpmon.errors import BpmonError

if TYPE_CHECKING:
    from bpmon.presets import Preset
    from bpmon.trainer import Snapshot, Trainer

EXIT_OK, EXIT_DIVERGED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse prints the whole usage block; one line is easier to read in a log.
        self.exit(EXIT_USAGE, f"bpmon: error: {message} (see bpmon --help)\n")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _seed(text: str) -> int:
    value = int(text)
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"expected an integer from 0 to 2**32 - 1, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="bpmon",
        description="Watch backpropagation: live loss, per-layer gradient norms and predictions.",
    )
    p.add_argument("--preset", default="xor", help="preset name or path to a .toml (default: xor)")
    p.add_argument("--list-presets", action="store_true", help="list presets and exit")
    p.add_argument("--headless", action="store_true", help="print text instead of opening the app")
    p.add_argument("--json", action="store_true", help="headless: end with one JSON line")
    p.add_argument("--record", metavar="FILE", help="headless: append a JSON line per snapshot")
    p.add_argument(
        "--every", type=_positive_int, metavar="N", help="headless: progress every N epochs"
    )
    g = p.add_argument_group("overrides")
    g.add_argument("--epochs", type=_positive_int)
    g.add_argument("--seed", type=_seed, help="initialisation seed")
    g.add_argument("--activation", choices=HIDDEN_ACTIVATIONS)
    g.add_argument("--depth", type=_positive_int, help=f"hidden layers, 1 to {MAX_DEPTH}")
    g.add_argument("--width", type=_positive_int, help="units in every hidden layer")
    g.add_argument("--batchnorm", action=argparse.BooleanOptionalAction, default=None)
    g.add_argument("--lr", type=_positive_float, help="learning rate")
    g.add_argument("--optimizer", choices=OPTIMIZERS)
    return p


# Each override flag and the RunConfig method that applies it, in the order they compose:
# --depth before --width so that "--depth 3 --width 5" gives three layers of five.
_OVERRIDES: tuple[tuple[str, Callable[[RunConfig, Any], RunConfig]], ...] = (
    ("depth", RunConfig.with_depth),
    ("width", RunConfig.with_width),
    ("activation", RunConfig.with_activation),
    ("batchnorm", RunConfig.with_batchnorm),
    ("lr", RunConfig.with_lr),
    ("optimizer", RunConfig.with_optimizer),
    ("epochs", RunConfig.with_epochs),
    ("seed", RunConfig.with_seed),
)


def apply_overrides(config: RunConfig, args: argparse.Namespace) -> RunConfig:
    if args.depth is not None and args.depth > MAX_DEPTH:
        raise BpmonError(f"--depth {args.depth}: at most {MAX_DEPTH} hidden layers")
    for name, apply in _OVERRIDES:
        value = getattr(args, name)
        if value is not None:
            config = apply(config, value)
    return config


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _main(args)
    except BpmonError as exc:
        print(f"bpmon: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("bpmon: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _main(args: argparse.Namespace) -> int:
    from bpmon.presets import check, list_presets, load_preset

    if args.list_presets:
        presets = list_presets()
        width = max(len(p.name) for p in presets)
        for preset in presets:
            print(f"{preset.name:<{width}}  {preset.description}")
        return EXIT_OK
    preset = load_preset(args.preset)
    config = apply_overrides(preset.config, args)
    check(config, "command line")
    if not args.headless:
        given = [
            flag
            for flag, on in (
                ("--json", args.json),
                ("--record", args.record),
                ("--every", args.every),
            )
            if on
        ]
        if given:
            raise BpmonError(f"{', '.join(given)}: headless only; add --headless")
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise BpmonError("the monitor needs a terminal; use --headless for text output")
        from bpmon.tui import run_app
        from bpmon.tui.app import SNAPSHOT_INTERVAL

        return run_app(build_trainer(config, preset, interval=SNAPSHOT_INTERVAL))
    return run_headless(config, preset, args)


def build_trainer(
    config: RunConfig,
    preset: Preset,
    interval: float,
    on_snapshot: Callable[[Snapshot], None] | None = None,
) -> Trainer:
    """A trainer for ``config``; a network the data set cannot feed (a softmax output on a
    binary task, say) is bad input, reported as one line like any other."""
    from bpmon.trainer import Trainer

    try:
        return Trainer(config, preset.name, interval=interval, on_snapshot=on_snapshot)
    except ValueError as exc:
        raise BpmonError(f"{preset.path}: {exc}") from None


def run_headless(config: RunConfig, preset: Preset, args: argparse.Namespace) -> int:
    from bpmon import report

    out = sys.stdout
    bar = _ProgressBar(out) if out.isatty() and not args.json else None
    record: IO[str] | None = None
    if args.record:
        try:
            record = open(args.record, "a", encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise BpmonError(f"--record {args.record}: {exc.strerror}") from None

    def on_snapshot(snap: Snapshot) -> None:
        if record is not None:
            # One flushed line per snapshot: a killed run leaves a readable file.
            record.write(json.dumps(report.record(snap)) + "\n")
            record.flush()
        if bar is not None:
            bar.draw(snap)

    trainer = build_trainer(config, preset, interval=0.1, on_snapshot=on_snapshot)
    epochs = config.train.epochs
    every = args.every or max(1, epochs // 10)
    steps_per_epoch = _steps_per_epoch(config, trainer.n_train)
    trained = 0.0
    try:
        snap = trainer.latest()
        while True:
            target = min(snap.epoch + every - snap.epoch % every, epochs) * steps_per_epoch
            t0 = time.perf_counter()
            snap = trainer.run(max_steps=target)
            trained += time.perf_counter() - t0
            if bar is not None:
                bar.clear()
            print(report.progress_line(snap), file=out, flush=True)
            if snap.state != "paused":
                break
    finally:
        if record is not None:
            record.close()
    rate = snap.step / trained if trained > 0 else 0.0
    print("", file=out)
    for line in report.prediction_table(snap):
        print(line, file=out)
    print(f"\nFinal loss: {snap.loss:.6f}", file=out)
    if snap.accuracy is not None:
        test = "" if snap.test_accuracy is None else f", test accuracy: {snap.test_accuracy:.2%}"
        print(f"Accuracy: {snap.accuracy:.2%}{test}", file=out)
    if args.json:
        print(json.dumps(report.summary(snap, rate)), file=out)
    if snap.state == "diverged":
        print(
            f"bpmon: diverged at step {snap.diverged_step} in {snap.diverged_layer} "
            f"(loss {snap.loss}); try a lower --lr",
            file=sys.stderr,
        )
        return EXIT_DIVERGED
    return EXIT_OK


def _steps_per_epoch(config: RunConfig, n_train: int) -> int:
    bs = config.train.batch_size
    return math.ceil(n_train / bs) if 0 < bs < n_train else 1


class _ProgressBar:
    """A one-line bar on a terminal, redrawn in place; cleared before each progress line."""

    def __init__(self, stream: IO[str], width: int = 30) -> None:
        self.stream = stream
        self.width = width

    def draw(self, snap: Snapshot) -> None:
        done = snap.epoch / max(1, snap.epochs)
        filled = int(done * self.width)
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(
            f"\r[{bar}] {done:4.0%} epoch {snap.epoch}/{snap.epochs} "
            f"loss {snap.loss:.4g} {snap.steps_per_second:,.0f} steps/s"
        )
        self.stream.flush()

    def clear(self) -> None:
        self.stream.write("\r\033[K")
        self.stream.flush()
