"""The ``bpmon`` command: the live monitor by default, ``--headless`` for text and JSON.

Exit codes:

- 0: the run finished (and ``--help``, ``--list-presets``);
- 1: the run diverged (one line on stderr naming the step and the layer); with ``--compare``,
  any run did (the worst of the runs' statuses; a line for each run that diverged);
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

This module is the entry point only: the flags are :mod:`bpmon.arguments`, and turning them into
a run and starting it is :mod:`bpmon.launch` (which ``bpmon serve`` uses too). Neither imports
the app (Textual, plotext) or the trainer before a run starts, so that ``--help`` and
``--list-presets`` stay fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from bpmon.arguments import RUN_FILE_COMMANDS, run_file_parser
from bpmon.arguments import parser as _parser
from bpmon.errors import BpmonError
from bpmon.launch import (
    EXIT_BROKEN_PIPE,
    EXIT_DIVERGED,
    EXIT_INTERRUPTED,
    EXIT_IOERR,
    EXIT_OK,
    EXIT_USAGE,
    OutputError,
    Signalled,
    Stdout,
    flush_stdout,
    launch,
    run_file_main,
    say,
)

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_DIVERGED",
    "EXIT_INTERRUPTED",
    "EXIT_IOERR",
    "EXIT_OK",
    "EXIT_USAGE",
    "main",
]


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
                run_file_args = run_file_parser(command).parse_args(argv[1:])
                return _finish(
                    run_file_main(command, run_file_args.path, run_file_args.compare or ())
                )
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
        say(f"bpmon: {exc}")
        return EXIT_USAGE
    except OutputError as exc:
        return _output_failed(exc)
    except Signalled as exc:
        say(f"bpmon: stopped by {exc}")
        return 128 + exc.signum
    except KeyboardInterrupt:
        say("bpmon: interrupted")
        return EXIT_INTERRUPTED


def _finish(status: int) -> int:
    flush_stdout()
    return status


def _output_failed(exc: OutputError) -> int:
    if exc.name == "stdout":
        # Whatever is still buffered for stdout would fail again at interpreter exit and print
        # "Exception ignored ... BrokenPipeError"; send it to /dev/null instead.
        _silence_stdout()
        if isinstance(exc.error, BrokenPipeError):
            return EXIT_BROKEN_PIPE
    say(f"bpmon: {exc}")
    return EXIT_IOERR


def _silence_stdout() -> None:
    fd = Stdout().fileno()
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
        out = Stdout()
        for preset in presets:
            out.line(f"{preset.name:<{width}}  {preset.description}")
        return EXIT_OK
    return launch(args)
