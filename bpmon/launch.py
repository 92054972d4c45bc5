"""The launcher: command-line arguments made into a run, and the run started.

``bpmon`` (:mod:`bpmon.cli`) and ``bpmon serve`` (:mod:`bpmon.serve`) both turn parsed
arguments into a run here: a preset or a CSV file with the override flags applied, the presets
of ``--compare`` beside it, a run file for ``bpmon replay`` and ``bpmon watch``; and start it:
the monitor (:func:`run_monitor`, :func:`run_file_main`) or the headless run
(:func:`run_headless`, one run at a time in :func:`_train_headless`). Bad input is a
:class:`~bpmon.errors.BpmonError` (one line, status 2); a failed write is an
:class:`OutputError`; the statuses are the ``EXIT_*`` below, which :mod:`bpmon.cli` documents.

It also composes what a live run publishes: a :class:`~bpmon.trainer.Trainer` whose snapshots go
through the diagnosis (:func:`live_trainer`), so that the app, the headless report and the run
file all see the findings, with hysteresis, in publishing order, while the trainer itself never
imports the diagnosis above it.

This module imports the app (Textual, plotext), the trainer and the diagnosis only when a run
starts, so that ``--help`` and ``--list-presets`` stay fast.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import math
import os
import shutil
import signal
import stat
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import IO, TYPE_CHECKING, Any

from bpmon.config import DataConfig, RunConfig, validate, validate_data
from bpmon.errors import BpmonError
from bpmon.runmodel import RUN_LETTERS
from bpmon.text import printable

if TYPE_CHECKING:
    from bpmon.data import Dataset
    from bpmon.presets import Preset
    from bpmon.runfile import Recorder
    from bpmon.sources import RunFileSource
    from bpmon.trainer import Snapshot, Trainer

EXIT_OK, EXIT_DIVERGED, EXIT_USAGE = 0, 1, 2
EXIT_IOERR = 74  # EX_IOERR in sysexits.h
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE


class Signalled(Exception):
    """A headless run was stopped by SIGTERM or SIGHUP (its run file already closed)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class OutputError(Exception):
    """A write to stdout or to the ``--record`` file failed; ``name`` says which."""

    def __init__(self, name: str, error: OSError) -> None:
        super().__init__(f"{name}: cannot write: {reason(error)}")
        self.name = name
        self.error = error


def reason(error: OSError) -> str:
    return error.strerror or str(error)


def closed_error() -> OSError:
    return OSError(errno.EBADF, os.strerror(errno.EBADF))


class Stdout:
    """``sys.stdout`` with every failure turned into an :class:`OutputError` naming "stdout".

    ``sys.stdout`` is None when the command started with descriptor 1 closed (``bpmon >&-``);
    that is reported at the first write like any other failure, not as an AttributeError.
    """

    def __init__(self) -> None:
        self.stream: IO[str] | None = sys.stdout

    def write(self, text: str, flush: bool = False) -> None:
        if self.stream is None:
            raise OutputError("stdout", closed_error())
        try:
            self.stream.write(text)
            if flush:
                self.stream.flush()
        except OSError as exc:
            raise OutputError("stdout", exc) from None

    def line(self, text: str = "", flush: bool = False) -> None:
        self.write(text + "\n", flush)

    def flush(self) -> None:
        self.write("", flush=True)

    def isatty(self) -> bool:
        return self.stream is not None and self.stream.isatty()

    def fileno(self) -> int | None:
        try:
            return None if self.stream is None else self.stream.fileno()
        except (OSError, ValueError):  # pytest's capture, a StringIO: not a descriptor
            return None


def say(line: str) -> None:
    """One line on stderr; when stderr itself is gone there is nobody left to tell."""
    if sys.stderr is not None:
        with contextlib.suppress(OSError):
            print(printable(line), file=sys.stderr, flush=True)


def flush_stdout() -> None:
    """Flush stdout, reporting a failure as an :class:`OutputError`."""
    # Flush here: at interpreter exit a failed flush is only "Exception ignored" and status
    # 120, after the status chosen here has been thrown away.
    if sys.stdout is not None:
        Stdout().flush()


# The CSV flags and the [data] key each sets.
_CSV_FLAGS = (
    ("label", "label"),
    ("features", "features"),
    ("task", "task"),
    ("header", "header"),
    ("missing", "missing"),
)


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
    ("weight_decay", RunConfig.with_weight_decay),
    ("dropout", RunConfig.with_dropout),
    ("noise", RunConfig.with_noise),
    ("test_fraction", RunConfig.with_test_fraction),
)


def _flag_name(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def apply_overrides(config: RunConfig, args: argparse.Namespace) -> RunConfig:
    """``config`` with the override flags applied, each checked by :func:`validate` as it is
    applied so that a refusal names the flag that caused it."""
    for name, apply in _OVERRIDES:
        value = getattr(args, name)
        if value is not None:
            config = validate(apply(config, value), f"{_flag_name(name)} {value}")
    return config


def overrides_given(args: argparse.Namespace) -> str:
    """The override flags on the command line, as typed: ``"--depth 12 --width 100000"``."""
    given = []
    for name, _ in _OVERRIDES:
        value = getattr(args, name)
        if isinstance(value, bool):
            given.append(_flag_name(name) if value else f"--no-{name}")
        elif value is not None:
            given.append(f"{_flag_name(name)} {value}")
    return " ".join(given)


def launch(args: argparse.Namespace) -> int:
    """The run ``args`` name (``bpmon``'s flags, parsed), started: the monitor, or with
    ``--headless`` the headless run; its exit status."""
    preset, data = preset_and_data(args)
    config = apply_overrides(preset.config, args)
    if config.data != preset.config.data:
        data = None  # --noise or --test-fraction: the set loaded with the preset is another
    compare = compared(args)
    if args.save_preset:
        save_preset(args.save_preset, config, preset.description)
    if args.headless and args.speed is not None:
        raise BpmonError("--speed: the monitor only; headless runs train at full speed")
    if not args.headless:
        given = [
            flag
            for flag, on in (
                ("--json", args.json),
                ("--every", args.every),
            )
            if on
        ]
        if given:
            raise BpmonError(f"{', '.join(given)}: headless only; add --headless")
        needs_terminal()
        return run_monitor(config, preset, args, data, compare)
    return run_headless(config, preset, args, data, compare)


def needs_terminal() -> None:
    if os.environ.get("TEXTUAL_DRIVER") == "textual.drivers.web_driver:WebDriver":
        # bpmon serve: textual-serve runs each page's monitor with Textual's web driver, which
        # talks to the page through pipes, not a terminal.
        return
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise BpmonError("the monitor needs a terminal; use --headless for text output")


def open_run_file(command: str, path: str) -> RunFileSource:
    """The run file of ``bpmon replay`` / ``bpmon watch``, opened: a file that is not a run, or
    of a newer version, is one line (:class:`BpmonError`) before the monitor opens."""
    from bpmon.sources import RunFileSource

    if command == "replay" and os.path.isdir(path):
        raise BpmonError(f"{path}: is a directory; replay takes a run file (.jsonl)")
    source = RunFileSource(path, "replay" if command == "replay" else "watch")
    source.open_now()
    return source


def check_compares(compares: Sequence[str]) -> None:
    """At most as many ``--compare`` as the monitor has letters for, beside the first run."""
    if len(compares) >= len(RUN_LETTERS):
        raise BpmonError(
            f"--compare {compares[len(RUN_LETTERS) - 1]}: at most {len(RUN_LETTERS) - 1} runs "
            f"beside the first ({RUN_LETTERS[0]} to {RUN_LETTERS[-1]})"
        )


def run_file_main(command: str, path: str, compare: Sequence[str] = ()) -> int:
    """``bpmon replay`` / ``bpmon watch``: the monitor over a run file, side by side with the
    files of ``--compare`` (all opened, and so checked, before the monitor starts)."""
    check_compares(compare)
    source = open_run_file(command, path)
    others = [open_run_file(command, each) for each in compare]
    needs_terminal()
    from bpmon.tui import run_app

    return run_app(source, *others)


def compared(args: argparse.Namespace) -> list[tuple[RunConfig, Preset]]:
    """The runs of ``--compare``: each preset loaded and checked as ``--preset``'s is, with the
    same overrides applied (they apply to every run). What cannot go with several runs is
    refused here, before any trains."""
    compares: list[str] = args.compare or []
    if not compares:
        return []
    from bpmon.presets import load_preset

    check_compares(compares)
    if args.csv or args.data:
        raise BpmonError(f"--compare {compares[0]}: compares presets, not a CSV file")
    for flag, value in (("--record", args.record), ("--save-preset", args.save_preset)):
        if value:
            raise BpmonError(
                f"{flag} {value}: one run only; --compare trains several (run each on its own)"
            )
    runs = []
    for name in compares:
        try:
            preset = load_preset(name)
        except BpmonError as exc:
            # "unknown preset 'x'" does not say which flag named it; a file's error names it.
            message = str(exc)
            raise BpmonError(
                message if message.startswith(name) else f"--compare: {message}"
            ) from None
        runs.append((apply_overrides(preset.config, args), preset))
    return runs


def preset_and_data(args: argparse.Namespace) -> tuple[Preset, Dataset | None]:
    """The preset the command line names, or the one made for its CSV file (with the data set
    already loaded, so that the file is read once)."""
    from bpmon.presets import csv_preset, load_preset

    csv_path = args.csv or args.data
    given = [f"--{flag}" for flag, _ in _CSV_FLAGS if getattr(args, flag) is not None]
    if args.csv and args.data:
        raise BpmonError(f"{args.data}: one CSV file at a time (--csv {args.csv} names another)")
    if csv_path is None:
        if given:
            raise BpmonError(f"{', '.join(given)}: only with a CSV file (bpmon DATA.csv ...)")
        return load_preset(args.preset or "xor"), None
    if args.preset:
        raise BpmonError(f"{csv_path}: a CSV file or --preset {args.preset}, not both")
    if csv_path.endswith(".toml"):
        raise BpmonError(f"{csv_path}: a preset file goes with --preset")
    values = {key: getattr(args, flag) for flag, key in _CSV_FLAGS}
    values["task"] = {"classify": "classify", "regress": "regress", None: "auto"}[args.task]
    values["missing"] = values["missing"] or "drop"
    data = validate_data(DataConfig(name="csv", path=csv_path, **values), csv_path)
    return csv_preset(data)


def save_preset(path: str, config: RunConfig, description: str) -> None:
    """Write the preset file; an existing file is not overwritten (it may be someone's work)."""
    from bpmon.presets import to_toml

    try:
        with open(path, "x", encoding="utf-8") as f:
            f.write(to_toml(config, description))
    except FileExistsError:
        raise BpmonError(f"--save-preset {path}: the file exists; give a new name") from None
    except OSError as exc:
        raise BpmonError(f"--save-preset {path}: {reason(exc)}") from None


def run_monitor(
    config: RunConfig,
    preset: Preset,
    args: argparse.Namespace,
    data: Dataset | None = None,
    compare: Sequence[tuple[RunConfig, Preset]] = (),
) -> int:
    """The live monitor, recording the run file too with ``--record``. A record line that
    cannot be written stops training with the reason on screen (the trainer's error state).
    With ``compare``, a trainer for each beside the first (never recorded)."""
    from bpmon.runfile import Recorder, RunWriter
    from bpmon.tui import run_app
    from bpmon.tui.app import SNAPSHOT_INTERVAL

    record = RecordFile(args.record) if args.record else None
    recorder = None if record is None else Recorder(RunWriter(record, args.record))
    pace = math.inf if args.speed is None else args.speed
    others: list[Trainer] = []
    try:
        trainer = build_trainer(
            config,
            preset,
            interval=SNAPSHOT_INTERVAL,
            on_snapshot=recorder,
            overrides=overrides_given(args),
            data=data,
            pace=pace,
        )
        # Every run at the same pace, as the overrides apply to every run.
        others = [
            build_trainer(
                *each, interval=SNAPSHOT_INTERVAL, overrides=overrides_given(args), pace=pace
            )
            for each in compare
        ]
        status = run_app(trainer, *others)
    finally:
        _close_record(record, recorder)
    if any(each.alive for each in (trainer, *others)):
        # A step still in flight (seconds, on a huge network) would hold up the interpreter's
        # exit until it ends. Everything of ours is written: the terminal is restored and the
        # run file closed (the recorder ignores the step's late snapshot). Leave now.
        flush_stdout()
        os._exit(status)
    return status


def diagnosed() -> Callable[[Snapshot], Snapshot]:
    """A trainer's stage that adds the standing findings (one :class:`~bpmon.diagnosis.Diagnosis`,
    with its hysteresis) to each snapshot it is handed, in the order it is handed them."""
    from bpmon.diagnosis import Diagnosis

    diagnosis = Diagnosis()

    def stage(snapshot: Snapshot) -> Snapshot:
        return replace(snapshot, findings=diagnosis.add(snapshot))

    return stage


def live_trainer(config: RunConfig, preset: str = "", **options: Any) -> Trainer:
    """A :class:`~bpmon.trainer.Trainer` (``options`` are its own) whose published snapshots
    carry the findings: what the app, the headless report and ``--record`` read."""
    from bpmon.trainer import Trainer

    return Trainer(config, preset, stage=diagnosed(), **options)


def build_trainer(
    config: RunConfig,
    preset: Preset,
    interval: float,
    on_snapshot: Callable[[Snapshot], None] | None = None,
    overrides: str = "",
    data: Dataset | None = None,
    pace: float = math.inf,
) -> Trainer:
    """A trainer for ``config``; a network the data set cannot feed (a softmax output on a
    binary task, say) or that memory cannot hold is bad input, reported as one line naming the
    preset file and the ``overrides`` that shaped the network (``"--depth 12 --width 9999"``)."""
    try:
        return live_trainer(
            config, preset.name, interval=interval, on_snapshot=on_snapshot, data=data, pace=pace
        )
    except BpmonError as exc:
        message = str(exc)
        if message.startswith(str(preset.path)):
            raise
        source = f"{preset.path} with {overrides}" if overrides else str(preset.path)
        raise BpmonError(f"{source}: {message}") from None


class RecordFile:
    """The ``--record`` file: one JSON line per snapshot, each written whole and at once, so that
    a reader (``tail -f``, a killed run) never sees half a line."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            # Unbuffered bytes: each line is one write(2) of our own, and a failed one is
            # reported here, not at close or interpreter exit.
            self._file = open(path, "ab", buffering=0)  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise BpmonError(f"--record {path}: {reason(exc)}") from None
        try:
            st = os.fstat(self._file.fileno())
            self._regular = stat.S_ISREG(st.st_mode)
        except OSError:
            self._regular = False
        if self._regular and st.st_size > 0:
            # A run file holds one run (its header is line 1); appending a second would hide it,
            # and overwriting would lose the first.
            self._file.close()
            raise BpmonError(
                f"--record {path}: the file exists and is not empty; a run file holds one run, "
                "so give a new name (or remove the old file)"
            )

    def write(self, text: str) -> None:
        """Write ``text`` (whole lines) in full, or raise :class:`OutputError`."""
        data = memoryview(text.encode("utf-8"))
        fd = self._file.fileno()
        start = os.fstat(fd).st_size if self._regular else 0
        try:
            while data:
                data = data[self._file.write(data) :]
        except OSError as exc:
            if self._regular:
                # A full disk can take part of a line; take it back so that every line in the
                # file is whole JSON.
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, start)
            raise OutputError(f"--record {self.path}", exc) from None

    def flush(self) -> None:
        """Nothing to do: every write went straight to the file."""

    @property
    def closed(self) -> bool:
        return self._file.closed

    def close(self) -> None:
        # Nothing is buffered (every line was written or reported already): a failing close
        # has nothing left to lose.
        with contextlib.suppress(OSError):
            self._file.close()


def _close_record(
    record: RecordFile | None, recorder: Recorder | None, interrupted: bool = False
) -> None:
    """The run file's end line, then the file. Called again after an interruption, it does
    nothing more: the end line is written once and a closed file stays closed."""
    if record is None or recorder is None or record.closed:
        return
    with contextlib.suppress(OutputError):
        recorder.close(interrupted=interrupted)
    record.close()


def run_headless(
    config: RunConfig,
    preset: Preset,
    args: argparse.Namespace,
    data: Dataset | None = None,
    compare: Sequence[tuple[RunConfig, Preset]] = (),
) -> int:
    """Train to the end, printing progress and then the summary; with ``compare``, each run
    after the one before, each under a heading, and ``--json`` gives ``{"runs": [a, b, ...]}``
    of the single-run objects. The status is the worst of the runs': 1 if any diverged."""
    from bpmon import report

    out = Stdout()
    if out.stream is None:
        # Refuse before training rather than after minutes of it.
        raise OutputError("stdout", closed_error())
    bar = _ProgressBar(out) if out.isatty() and not args.json else None
    runs = [(config, preset, data), *((c, p, None) for c, p in compare)]
    ended: list[tuple[Snapshot, float]] = []
    for index, (run_config, run_preset, run_data) in enumerate(runs):
        if compare:
            if index:
                out.line()
            out.line(f"== run {RUN_LETTERS[index]}: {run_preset.name} ==")
        snap, rate = _train_headless(run_config, run_preset, args, run_data, out, bar)
        ended.append((snap, rate))
        out.line()
        for line in report.prediction_table(snap):
            out.line(line)
        out.line(f"\nFinal loss: {snap.loss:.6f}")
        for line in report.score_lines(snap):
            out.line(line)
        out.line()
        # On a terminal a finding wraps at its width; in a pipe or a log each stays one line.
        width = bar.columns() - 1 if bar is not None else None
        for line in report.findings_lines(snap):
            for part in textwrap.wrap(line, width, subsequent_indent="    ") if width else [line]:
                out.line(part)
    if args.json:
        summaries = [report.summary(snap, rate) for snap, rate in ended]
        out.line(json.dumps({"runs": summaries} if compare else summaries[0]))
    # Everything reaches stdout before the verdict reaches stderr.
    out.flush()
    status = EXIT_OK
    for index, (snap, _) in enumerate(ended):
        if snap.state == "diverged":
            who = f"run {RUN_LETTERS[index]} ({snap.preset}) " if compare else ""
            say(
                f"bpmon: {who}diverged at step {snap.diverged_step} in {snap.diverged_layer} "
                f"(loss {snap.loss}); try a lower --lr"
            )
            status = EXIT_DIVERGED
    return status


def _train_headless(
    config: RunConfig,
    preset: Preset,
    args: argparse.Namespace,
    data: Dataset | None,
    out: Stdout,
    bar: _ProgressBar | None,
) -> tuple[Snapshot, float]:
    """One run trained to its end with a progress line every ``--every`` epochs (and the run
    file written with ``--record``); its last snapshot and its steps per second."""
    from bpmon import report
    from bpmon.runfile import Recorder, RunWriter

    record = RecordFile(args.record) if args.record else None
    recorder = None if record is None else Recorder(RunWriter(record, args.record))
    # An OutputError raised in on_snapshot is kept here too, so that it is reported even if the
    # trainer were to catch what its callback raises.
    faults: list[OutputError] = []

    def on_snapshot(snap: Snapshot) -> None:
        if faults:
            return
        try:
            if recorder is not None:
                recorder(snap)
            if bar is not None:
                bar.draw(snap)
        except OutputError as exc:
            faults.append(exc)
            raise

    stop = _StopOnSignal()
    try:
        trainer = build_trainer(
            config,
            preset,
            interval=0.1,
            on_snapshot=on_snapshot,
            overrides=overrides_given(args),
            data=data,
        )
        stop.install(trainer)
        for note in trainer.latest().notes:
            out.line(f"data: {note}")
        epochs = config.train.epochs
        every = args.every or max(1, epochs // 10)
        steps_per_epoch = trainer.steps_per_epoch
        trained = 0.0
        snap = trainer.latest()
        while True:
            target = min(snap.epoch + every - snap.epoch % every, epochs) * steps_per_epoch
            t0 = time.perf_counter()
            snap = trainer.run(max_steps=target)
            trained += time.perf_counter() - t0
            if faults:
                raise faults[0]
            if bar is not None:
                bar.clear()
            out.line(report.progress_line(snap), flush=True)
            if snap.state != "paused":
                break
    except KeyboardInterrupt:
        _close_record(record, recorder, interrupted=True)
        raise
    finally:
        stop.restore()
        _close_record(record, recorder)
    if stop.received is not None:
        raise Signalled(stop.received)
    return snap, (snap.step / trained if trained > 0 else 0.0)


class _StopOnSignal:
    """SIGTERM and SIGHUP during a headless run stop the trainer between two steps, as ``q``
    stops the monitor's, so that the run file gets its end line. The handler only hands the
    stop command to a new thread: the trainer's queue takes a lock that the interrupted main
    thread may be holding, and a handler that waited for it would wait forever."""

    SIGNALS = (signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self, trainer: Trainer) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may set handlers (a test calling main() on another)

        def handle(signum: int, frame: object) -> None:
            from bpmon.trainer import Command

            self.received = signum
            threading.Thread(target=trainer.send, args=(Command("stop"),), daemon=True).start()

        for signum in self.SIGNALS:
            self._previous[signum] = signal.signal(signum, handle)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()


class _ProgressBar:
    """A one-line bar on a terminal, redrawn in place; cleared before each progress line.

    The terminal's width is asked on every draw (a window can be resized during a run), and the
    line is kept to ``columns - 1``: a line that reaches the last column wraps on many
    terminals, and ``\\r`` then returns only to the start of the wrapped part, leaving a trail
    of old bars behind.
    """

    BAR = 30
    MIN_BAR = 10

    def __init__(self, out: Stdout) -> None:
        self.out = out
        self.drawn = False

    def columns(self) -> int:
        fd = self.out.fileno()
        if fd is not None:
            try:
                return os.get_terminal_size(fd).columns
            except OSError:
                pass
        return shutil.get_terminal_size().columns

    def line(self, snap: Snapshot, columns: int) -> str:
        """The bar as it fits in ``columns``: the bar shrinks first, then goes, then the text
        is cut."""
        room = max(0, columns - 1)
        done = min(1.0, snap.epoch / max(1, snap.epochs or 1))
        text = (
            f"{done:4.0%} epoch {snap.epoch}/{snap.epochs} "
            f"loss {snap.loss:.4g} {snap.steps_per_second:,.0f} steps/s"
        )
        width = min(self.BAR, room - len(text) - 3)  # "[", "] " around the bar
        if width >= self.MIN_BAR:
            filled = int(done * width)
            text = f"[{'#' * filled}{'.' * (width - filled)}] {text}"
        return text[:room]

    def draw(self, snap: Snapshot) -> None:
        # "\033[K" after the text: erase what a longer earlier draw left to the right.
        self.out.write(f"\r{self.line(snap, self.columns())}\033[K", flush=True)
        self.drawn = True

    def clear(self) -> None:
        if self.drawn:
            self.out.write("\r\033[K", flush=True)
            self.drawn = False
