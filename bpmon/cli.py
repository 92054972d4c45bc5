"""The ``bpmon`` command: the live monitor by default, ``--headless`` for text and JSON.

Exit codes:

- 0: the run finished (and ``--help``, ``--list-presets``);
- 1: the run diverged (one line on stderr naming the step and the layer); with ``--compare``,
  either run did (the worse of the two runs' statuses; a line for each run that diverged);
- 2: bad usage or bad input: a flag, a preset, a TOML value, a CSV file, a ``--record`` file
  that cannot be opened, a network that memory cannot hold. Always one line on stderr starting
  with ``bpmon:``, never a traceback;
- 74: an output error (``EX_IOERR`` from sysexits.h): stdout or the ``--record`` file could not
  be written (a full disk, a closed descriptor, a ``--record`` pipe whose reader left). One line
  on stderr naming ``stdout`` or ``--record FILE`` and the system's reason; every record line
  written before the fault is whole (in a regular file, a line cut short by the fault is taken
  back);
- 130: interrupted (ctrl+c);
- 143, 129: a headless run ended by SIGTERM (what schedulers send) or SIGHUP: 128 + N. The run is
  stopped between two steps, so the ``--record`` file ends with ``{"event": "end", "state":
  "stopped"}``, as the monitor's does;
- 141: stdout's reader went away (``bpmon --headless | head -1``): 128 + SIGPIPE, the status a
  shell reports for a C tool killed by SIGPIPE, so ``set -o pipefail`` scripts see the usual
  thing. Nothing is printed: the reader left on purpose.

This module imports the app (Textual, plotext) and the trainer only when a run starts, so that
``--help`` and ``--list-presets`` stay fast.
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
from typing import IO, TYPE_CHECKING, Any, NoReturn

from bpmon.config import (
    HIDDEN_ACTIVATIONS,
    LR_MAX,
    LR_MIN,
    MAX_DEPTH,
    MIN_DEPTH,
    MISSING,
    OPTIMIZERS,
    DataConfig,
    Rule,
    RunConfig,
    rule,
    show_value,
    validate,
    validate_data,
)
from bpmon.errors import BpmonError
from bpmon.text import printable

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

    from bpmon.data import Dataset
    from bpmon.presets import Preset
    from bpmon.runfile import Recorder
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
        super().__init__(f"{name}: cannot write: {_reason(error)}")
        self.name = name
        self.error = error


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


def _closed() -> OSError:
    return OSError(errno.EBADF, os.strerror(errno.EBADF))


class _Stdout:
    """``sys.stdout`` with every failure turned into an :class:`OutputError` naming "stdout".

    ``sys.stdout`` is None when the command started with descriptor 1 closed (``bpmon >&-``);
    that is reported at the first write like any other failure, not as an AttributeError.
    """

    def __init__(self) -> None:
        self.stream: IO[str] | None = sys.stdout

    def write(self, text: str, flush: bool = False) -> None:
        if self.stream is None:
            raise OutputError("stdout", _closed())
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


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse prints the whole usage block; one line is easier to read in a log.
        # printable: "unrecognized arguments" quotes the arguments raw, newlines and all.
        self.exit(EXIT_USAGE, f"bpmon: error: {printable(message)} (see bpmon --help)\n")

    def print_help(self, file: SupportsWrite[str] | None = None) -> None:
        # argparse swallows a failed write of the help; a closed stdout is an output error.
        if file is None and sys.stdout is None:
            raise OutputError("stdout", _closed())
        super().print_help(file)


def _checked(field_rule: Rule) -> Callable[[str], Any]:
    """An argparse ``type`` that parses and checks a flag's text by ``field_rule``. It raises
    ArgumentTypeError (for any ValueError, too) so that argparse prints our message, not
    "invalid parse value"."""

    def parse(text: str) -> Any:
        try:
            return field_rule.parse(text)
        except (ValueError, OverflowError):
            # OverflowError: an integer of hundreds of digits compared with a float bound.
            # show_value cuts the echo short: a pasted megabyte must not become the message.
            expected = field_rule.expected()
            raise argparse.ArgumentTypeError(f"{show_value(text)}: expected {expected}") from None

    return parse


def _flag(key: str) -> Callable[[str], Any]:
    """The ``type`` of a flag that sets config field ``key``: ``--lr`` accepts exactly what
    ``lr =`` in a preset accepts, and says so in the same words."""
    return _checked(rule(key))


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="bpmon",
        description="Watch backpropagation: live loss, per-layer gradient norms and predictions.",
        epilog="other commands (each has its own --help):\n"
        "  bpmon replay RUN.jsonl         the monitor over a recorded run file\n"
        "  bpmon watch RUN.jsonl|DIR      follow a run file as its writer appends to it\n"
        "  bpmon serve [bpmon arguments]  the monitor as a web page (the serve extra)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "data", nargs="?", metavar="DATA.csv", help="train on your own CSV file (see the CSV flags)"
    )
    p.add_argument("--preset", help="preset name or path to a .toml (default: xor)")
    p.add_argument(
        "--compare",
        metavar="PRESET",
        help="train a second preset (name or .toml) beside --preset and show both side by side "
        "(tab moves the keys between them); the overrides and --speed apply to both runs; "
        'headless, both summaries, and --json gives {"runs": [a, b]}; '
        "not with --record or a CSV file",
    )
    p.add_argument("--list-presets", action="store_true", help="list presets and exit")
    p.add_argument("--headless", action="store_true", help="print text instead of opening the app")
    p.add_argument("--json", action="store_true", help="headless: end with one JSON line")
    p.add_argument("--record", metavar="FILE", help="write the run file: a JSON line per snapshot")
    p.add_argument(
        "--speed",
        type=_speed,
        metavar="N",
        help="the monitor: start at N training steps per second, or 'full' (the default); "
        "< and > change it",
    )
    p.add_argument(
        "--every",
        type=_checked(Rule("int", low=1)),
        metavar="N",
        help="headless: progress every N epochs",
    )
    g = p.add_argument_group("overrides")
    g.add_argument("--epochs", type=_flag("train.epochs"))
    g.add_argument("--seed", type=_flag("train.seed"), help="initialisation seed")
    g.add_argument("--activation", choices=HIDDEN_ACTIVATIONS)
    g.add_argument(
        "--depth",
        type=_checked(Rule("int", low=MIN_DEPTH, high=MAX_DEPTH)),
        help=f"hidden layers, {MIN_DEPTH} to {MAX_DEPTH}",
    )
    # No upper bound here: what fits depends on the depth and the machine; the trainer's memory
    # estimate refuses a network that would not fit, naming these flags.
    g.add_argument("--width", type=_checked(Rule("int", low=1)), help="units in every hidden layer")
    g.add_argument("--batchnorm", action=argparse.BooleanOptionalAction, default=None)
    g.add_argument("--lr", type=_flag("train.lr"), help=f"learning rate, {LR_MIN:g} to {LR_MAX:g}")
    g.add_argument("--optimizer", choices=OPTIMIZERS)
    g.add_argument(
        "--weight-decay",
        type=_flag("train.weight_decay"),
        metavar="WD",
        help="L2 weight decay of the weight matrices (0: none)",
    )
    g.add_argument(
        "--dropout",
        type=_flag("model.dropout"),
        metavar="P",
        help="inverted dropout after each hidden activation, training only (0: none)",
    )
    g.add_argument(
        "--noise", type=_flag("data.noise"), help="noise of the 2-D data sets (xor ... blobs)"
    )
    g.add_argument(
        "--test-fraction",
        type=_flag("data.test_fraction"),
        metavar="F",
        help="share of the points held out for the test accuracy (0: none)",
    )
    c = p.add_argument_group("your own CSV file (bpmon DATA.csv or --csv DATA.csv)")
    c.add_argument("--csv", metavar="DATA.csv", help="the CSV file (the same as DATA.csv)")
    c.add_argument("--label", metavar="COL", help="the label column (default: the last)")
    c.add_argument(
        "--features",
        type=_names,
        metavar="A,B,C",
        help="the feature columns (default: all but the label)",
    )
    c.add_argument(
        "--task",
        choices=("classify", "regress"),
        help="classification or regression (default: guessed from the label column)",
    )
    c.add_argument(
        "--header",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="whether the first row names the columns (default: detected)",
    )
    c.add_argument(
        "--missing",
        choices=MISSING,
        help="a row with a missing value: drop it (default) or stop with an error",
    )
    c.add_argument(
        "--save-preset",
        metavar="FILE",
        help="write the preset file that reproduces this run, then run it",
    )
    return p


def _speed(text: str) -> float:
    """``--speed``: ``full`` (inf) or a number of steps per second > 0."""
    if text.strip().lower() == "full":
        return math.inf
    try:
        value: float = Rule("float", low=0, low_open=True).parse(text)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(
            f"{show_value(text)}: expected 'full' or a number of steps per second > 0"
        ) from None
    return value


def _names(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(","))
    try:
        result: tuple[str, ...] = rule("data.features").accept(names)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: expected {exc}, separated by commas") from None
    return result


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


def _overrides_given(args: argparse.Namespace) -> str:
    """The override flags on the command line, as typed: ``"--depth 12 --width 100000"``."""
    given = []
    for name, _ in _OVERRIDES:
        value = getattr(args, name)
        if isinstance(value, bool):
            given.append(_flag_name(name) if value else f"--no-{name}")
        elif value is not None:
            given.append(f"{_flag_name(name)} {value}")
    return " ".join(given)


RUN_FILE_COMMANDS = ("replay", "watch")


def _run_file_parser(command: str) -> argparse.ArgumentParser:
    what = {
        "replay": "Replay a run file: left/right one snapshot, home/end, space plays, < > speed.",
        "watch": "Follow a run file as its writer appends to it (a DIR: its newest *.jsonl).",
    }[command]
    p = _Parser(prog=f"bpmon {command}", description=what)
    p.add_argument("path", metavar="RUN.jsonl" if command == "replay" else "RUN.jsonl|DIR")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        try:
            if argv and argv[0] == "serve":
                # bpmon.serve imports textual-serve (an optional extra) only when it serves.
                from bpmon import serve

                return _finish(serve.main(argv[1:]))
            if argv and argv[0] in RUN_FILE_COMMANDS:
                # Subcommands by hand, not argparse subparsers: every existing flag keeps
                # working without one (`bpmon --preset xor`).
                command = argv[0]
                run_file_args = _run_file_parser(command).parse_args(argv[1:])
                return _finish(_run_file_main(command, run_file_args.path))
            args = _parser().parse_args(argv)
        except SystemExit as exc:
            # --help (0) or a usage error (2, already on stderr). Returned, not raised, so that
            # the help text is flushed below, where a failure can still be reported.
            code = EXIT_OK if exc.code is None else exc.code
            status = code if isinstance(code, int) else EXIT_USAGE
        else:
            status = _main(args)
        return _finish(status)
    except BpmonError as exc:
        _say(f"bpmon: {exc}")
        return EXIT_USAGE
    except OutputError as exc:
        return _output_failed(exc)
    except Signalled as exc:
        _say(f"bpmon: stopped by {exc}")
        return 128 + exc.signum
    except KeyboardInterrupt:
        _say("bpmon: interrupted")
        return EXIT_INTERRUPTED


def _finish(status: int) -> int:
    # Flush here: at interpreter exit a failed flush is only "Exception ignored" and status
    # 120, after the status chosen here has been thrown away.
    if sys.stdout is not None:
        _Stdout().flush()
    return status


def _needs_terminal() -> None:
    if os.environ.get("TEXTUAL_DRIVER") == "textual.drivers.web_driver:WebDriver":
        # bpmon serve: textual-serve runs each page's monitor with Textual's web driver, which
        # talks to the page through pipes, not a terminal.
        return
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise BpmonError("the monitor needs a terminal; use --headless for text output")


def _run_file_main(command: str, path: str) -> int:
    """``bpmon replay`` / ``bpmon watch``: the monitor over a run file."""
    from bpmon.sources import RunFileSource

    if command == "replay" and os.path.isdir(path):
        raise BpmonError(f"{path}: is a directory; replay takes a run file (.jsonl)")
    source = RunFileSource(path, "replay" if command == "replay" else "watch")
    # A file that is not a run, or of a newer version, is one line before the monitor opens.
    source.open_now()
    _needs_terminal()
    from bpmon.tui import run_app

    return run_app(source)


def _say(line: str) -> None:
    """One line on stderr; when stderr itself is gone there is nobody left to tell."""
    if sys.stderr is not None:
        with contextlib.suppress(OSError):
            print(printable(line), file=sys.stderr, flush=True)


def _output_failed(exc: OutputError) -> int:
    if exc.name == "stdout":
        # Whatever is still buffered for stdout would fail again at interpreter exit and print
        # "Exception ignored ... BrokenPipeError"; send it to /dev/null instead.
        _silence_stdout()
        if isinstance(exc.error, BrokenPipeError):
            return EXIT_BROKEN_PIPE
    _say(f"bpmon: {exc}")
    return EXIT_IOERR


def _silence_stdout() -> None:
    fd = _Stdout().fileno()
    if fd is None:
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def _main(args: argparse.Namespace) -> int:
    from bpmon.presets import list_presets

    if args.list_presets:
        presets = list_presets()
        width = max(len(p.name) for p in presets)
        out = _Stdout()
        for preset in presets:
            out.line(f"{preset.name:<{width}}  {preset.description}")
        return EXIT_OK
    preset, data = _preset_and_data(args)
    config = apply_overrides(preset.config, args)
    if config.data != preset.config.data:
        data = None  # --noise or --test-fraction: the set loaded with the preset is another
    compare = _compared(args)
    if args.save_preset:
        _save_preset(args.save_preset, config, preset.description)
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
        _needs_terminal()
        return run_monitor(config, preset, args, data, compare)
    return run_headless(config, preset, args, data, compare)


def _compared(args: argparse.Namespace) -> tuple[RunConfig, Preset] | None:
    """The second run of ``--compare``: its preset, loaded and checked as ``--preset``'s is, with
    the same overrides applied (they apply to both runs). What cannot go with two runs is
    refused here, before either trains."""
    if args.compare is None:
        return None
    from bpmon.presets import load_preset

    if args.csv or args.data:
        raise BpmonError(f"--compare {args.compare}: compares two presets, not a CSV file")
    for flag, value in (("--record", args.record), ("--save-preset", args.save_preset)):
        if value:
            raise BpmonError(
                f"{flag} {value}: one run only; --compare trains two (run each on its own)"
            )
    try:
        preset = load_preset(args.compare)
    except BpmonError as exc:
        # "unknown preset 'x'" does not say which flag named it; a file's error names the file.
        message = str(exc)
        raise BpmonError(
            message if message.startswith(args.compare) else f"--compare: {message}"
        ) from None
    return apply_overrides(preset.config, args), preset


def _preset_and_data(args: argparse.Namespace) -> tuple[Preset, Dataset | None]:
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


def _save_preset(path: str, config: RunConfig, description: str) -> None:
    """Write the preset file; an existing file is not overwritten (it may be someone's work)."""
    from bpmon.presets import to_toml

    try:
        with open(path, "x", encoding="utf-8") as f:
            f.write(to_toml(config, description))
    except FileExistsError:
        raise BpmonError(f"--save-preset {path}: the file exists; give a new name") from None
    except OSError as exc:
        raise BpmonError(f"--save-preset {path}: {_reason(exc)}") from None


def run_monitor(
    config: RunConfig,
    preset: Preset,
    args: argparse.Namespace,
    data: Dataset | None = None,
    compare: tuple[RunConfig, Preset] | None = None,
) -> int:
    """The live monitor, recording the run file too with ``--record``. A record line that
    cannot be written stops training with the reason on screen (the trainer's error state).
    With ``compare``, a second trainer beside the first (never recorded)."""
    from bpmon.runfile import Recorder, RunWriter
    from bpmon.tui import run_app
    from bpmon.tui.app import SNAPSHOT_INTERVAL

    record = _Record(args.record) if args.record else None
    recorder = None if record is None else Recorder(RunWriter(record, args.record))
    pace = math.inf if args.speed is None else args.speed
    other = None
    try:
        trainer = build_trainer(
            config,
            preset,
            interval=SNAPSHOT_INTERVAL,
            on_snapshot=recorder,
            overrides=_overrides_given(args),
            data=data,
            pace=pace,
        )
        if compare is not None:
            # Both runs at the same pace, as the overrides apply to both.
            other = build_trainer(
                *compare, interval=SNAPSHOT_INTERVAL, overrides=_overrides_given(args), pace=pace
            )
        status = run_app(trainer, other)
    finally:
        _close_record(record, recorder)
    if trainer.alive or (other is not None and other.alive):
        # A step still in flight (seconds, on a huge network) would hold up the interpreter's
        # exit until it ends. Everything of ours is written: the terminal is restored and the
        # run file closed (the recorder ignores the step's late snapshot). Leave now.
        _finish(status)
        os._exit(status)
    return status


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
    from bpmon.trainer import Trainer

    try:
        return Trainer(
            config, preset.name, interval=interval, on_snapshot=on_snapshot, data=data, pace=pace
        )
    except BpmonError as exc:
        message = str(exc)
        if message.startswith(str(preset.path)):
            raise
        source = f"{preset.path} with {overrides}" if overrides else str(preset.path)
        raise BpmonError(f"{source}: {message}") from None


class _Record:
    """The ``--record`` file: one JSON line per snapshot, each written whole and at once, so that
    a reader (``tail -f``, a killed run) never sees half a line."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            # Unbuffered bytes: each line is one write(2) of our own, and a failed one is
            # reported here, not at close or interpreter exit.
            self._file = open(path, "ab", buffering=0)  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise BpmonError(f"--record {path}: {_reason(exc)}") from None
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
    record: _Record | None, recorder: Recorder | None, interrupted: bool = False
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
    compare: tuple[RunConfig, Preset] | None = None,
) -> int:
    """Train to the end, printing progress and then the summary; with ``compare``, the second
    run after the first, each under a heading, and ``--json`` gives ``{"runs": [a, b]}`` of
    the single-run objects. The status is the worse of the runs': 1 if either diverged."""
    from bpmon import report

    out = _Stdout()
    if out.stream is None:
        # Refuse before training rather than after minutes of it.
        raise OutputError("stdout", _closed())
    bar = _ProgressBar(out) if out.isatty() and not args.json else None
    runs = [(config, preset, data)]
    if compare is not None:
        runs.append((*compare, None))
    ended: list[tuple[Snapshot, float]] = []
    for index, (run_config, run_preset, run_data) in enumerate(runs):
        if compare is not None:
            if index:
                out.line()
            out.line(f"== run {'AB'[index]}: {run_preset.name} ==")
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
        out.line(json.dumps(summaries[0] if compare is None else {"runs": summaries}))
    # Everything reaches stdout before the verdict reaches stderr.
    out.flush()
    status = EXIT_OK
    for index, (snap, _) in enumerate(ended):
        if snap.state == "diverged":
            who = "" if compare is None else f"run {'AB'[index]} ({snap.preset}) "
            _say(
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
    out: _Stdout,
    bar: _ProgressBar | None,
) -> tuple[Snapshot, float]:
    """One run trained to its end with a progress line every ``--every`` epochs (and the run
    file written with ``--record``); its last snapshot and its steps per second."""
    from bpmon import report
    from bpmon.runfile import Recorder, RunWriter

    record = _Record(args.record) if args.record else None
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
            overrides=_overrides_given(args),
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

    def __init__(self, out: _Stdout) -> None:
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
