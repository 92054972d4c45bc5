"""How a watched run's file ends: the end line whatever ends the process, and one monitor per
path in a process.

- **A traceback** (``sys.excepthook``) ends the run as ``error``, ctrl+c as ``interrupted``.
- **``sys.exit(n)``** (or the builtins ``exit(n)``/``quit(n)``) with a non-zero ``n`` (or a
  message) is an ``error``; ``sys.exit()`` and ``sys.exit(0)`` are ``finished``. ``SystemExit``
  never reaches ``sys.excepthook`` and its code is gone by the time the exit's finalisers run,
  so the code is taken from wrappers of ``sys.exit`` and of the builtins. A bare
  ``raise SystemExit(3)`` is not seen and ends as ``finished``. Replacing
  ``builtins.SystemExit`` by a subclass that notes its code was tried and dropped: ``except
  SystemExit`` then names the subclass and no longer catches the ``SystemExit`` that C code
  raises (``sys.exit`` itself, argparse's exits: bpmon's own CLI tests caught it), and Python
  3.11 has no cheap hook on a raise (3.12's ``sys.monitoring`` has only a global one, called
  on every exception of the process).
- **SIGTERM** (a job scheduler, ``kill``, a container stopping) writes the end line
  ``interrupted`` for every open monitor, then does what the previous handler would: the
  default handler is put back and the signal raised again, so the process still ends with
  the signal's status; a Python handler is called; an ignored signal stays ignored (and the
  run goes on, so nothing is written).
- **The interpreter's exit** (``atexit``): every monitor still open is closed with the state
  above: the line of its last update if that was not due, then the end line.
- **A monitor collected before then** (its model and the user's last reference gone, as a
  notebook's ``del``; ``weakref.finalize``): ``finished``, with no line for a last update that
  was not due (what it needs went with the monitor), as after SIGTERM, which may come in the
  middle of an update. The state above is the process's,
  and the process goes on (an earlier ``sys.exit(2)`` that a notebook caught must not make
  this run an error).
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import os
import signal
import sys
import threading
import warnings
import weakref
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any, Literal

from bpmon.errors import BpmonError
from bpmon.runfile import RunWriter

EndState = Literal["finished", "interrupted", "error"]

_uncaught: list[type[BaseException]] = []
_exit_codes: list[object] = []
# Open outputs, so that SIGTERM can end each one; an output leaves the set when it finishes.
_open_outputs: weakref.WeakSet[Output] = weakref.WeakSet()
# The monitor that writes each path in this process (a notebook cell run twice).
_by_path: dict[str, Callable[[], None]] = {}
_at_exit = False  # the atexit hook is registered


class Output:
    """The run file and the line that may be waiting for its loss. Kept apart from the monitor
    so that the finaliser that writes the end line when the monitor is collected holds no
    reference to it (which would keep it, and its model, alive until the process ends); the
    ``inspect`` callback reaches the monitor through a weak reference for the same reason."""

    def __init__(self, stream: IO[str], name: str, owns: bool) -> None:
        self.writer = RunWriter(stream, name)
        self.stream = stream
        self.owns = owns
        self.pending: dict[str, Any] | None = None
        self.failed = False
        self.done = False
        # Sees each snapshot line just before it is written (the monitor's NaN origin).
        self.inspect: Callable[[dict[str, Any]], None] | None = None
        # Ends the monitor that writes here (its last line, then this output's end line);
        # through a weak reference, as ``inspect``.
        self.close_owner: Callable[[EndState], None] | None = None
        _open_outputs.add(self)

    def write(self, record: dict[str, Any]) -> None:
        if self.failed or self.done:
            return
        if self.inspect is not None and "step" in record:
            self.inspect(record)
        try:
            self.writer.write(record)
        except (OSError, ValueError) as exc:
            # A full disk must not stop the training it watches: say so once, stop writing.
            self.failed = True
            warnings.warn(
                f"bpmon: cannot write {self.writer.name}: {exc}; the run file stops here",
                RuntimeWarning,
                stacklevel=3,
            )

    def flush_pending(self) -> None:
        if self.pending is not None:
            record, self.pending = self.pending, None
            self.write(record)

    def finish(self, state: str) -> None:
        if self.done:
            return
        self.flush_pending()
        if not self.failed:
            with contextlib.suppress(OSError, ValueError):
                self.writer.end(state)
        self.done = True
        _open_outputs.discard(self)
        if self.owns:
            with contextlib.suppress(OSError):
                self.stream.close()


def open_output(path: str | os.PathLike[str] | IO[str]) -> tuple[Output, str]:
    """The output for ``path`` (a file created with its folders, or an open text stream)."""
    if isinstance(path, str | os.PathLike):
        p = Path(path)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            stream = open(p, "w", encoding="utf-8")  # noqa: SIM115 - closed by Output.finish
        except OSError as exc:
            raise BpmonError(f"{p}: cannot write the run file: {exc.strerror or exc}") from None
        return Output(stream, str(p), True), str(p)
    return Output(path, str(getattr(path, "name", "<stream>")), False), ""


def claim_path(path: str, close: Callable[[], None]) -> None:
    """Record that ``close`` ends the monitor now writing ``path``, closing the one that wrote
    it before in this process first (its end line written, its hooks removed), so that two
    monitors never write one file."""
    key = os.path.realpath(path)
    earlier = _by_path.pop(key, None)
    if earlier is not None:
        earlier()
    _by_path[key] = close


def release_path(path: str, close: Callable[[], None]) -> None:
    key = os.path.realpath(path)
    if _by_path.get(key) is close:
        del _by_path[key]


def exit_state() -> EndState:
    if _uncaught:
        return "interrupted" if issubclass(_uncaught[-1], KeyboardInterrupt) else "error"
    if _exit_codes and _exit_codes[-1] not in (None, 0):
        return "error"
    return "finished"


def finish_collected(output: Output) -> None:
    output.finish("finished")


def _finish_at_exit() -> None:
    state = exit_state()
    for output in list(_open_outputs):
        if output.close_owner is not None:
            try:
                output.close_owner(state)
            except Exception as exc:  # the end line must still be written
                warnings.warn(
                    f"bpmon: {output.writer.name}: the last update's line was not written: {exc}",
                    RuntimeWarning,
                    stacklevel=1,
                )
        output.finish(state)


def install() -> None:
    """The hooks above, once per process."""
    global _at_exit
    _install_excepthook()
    _install_exit()
    _install_sigterm()
    if not _at_exit:
        _at_exit = True
        atexit.register(_finish_at_exit)


def _install_excepthook() -> None:
    previous = sys.excepthook
    if getattr(previous, "_bpmon_torch", False):
        return

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        _uncaught.append(exc_type)
        previous(exc_type, exc, tb)

    hook._bpmon_torch = True  # type: ignore[attr-defined]
    sys.excepthook = hook


class _Quitter:
    """The builtins ``exit``/``quit`` (site's, which raise ``SystemExit`` themselves rather
    than call ``sys.exit``), noting the code first; shown as the original in a REPL."""

    _bpmon_torch = True

    def __init__(self, original: Callable[..., Any]) -> None:
        self.original = original

    def __call__(self, code: object = None) -> Any:
        _exit_codes.append(code)
        return self.original(code)

    def __repr__(self) -> str:
        return repr(self.original)


def _install_exit() -> None:
    for name in ("exit", "quit"):  # absent under python -S
        original = getattr(builtins, name, None)
        if callable(original) and not getattr(original, "_bpmon_torch", False):
            setattr(builtins, name, _Quitter(original))
    previous = sys.exit
    if getattr(previous, "_bpmon_torch", False):
        return

    def exit(status: object = None, /) -> Any:
        _exit_codes.append(status)
        return previous(status)  # type: ignore[arg-type]

    exit._bpmon_torch = True  # type: ignore[attr-defined]
    sys.exit = exit


def _install_sigterm() -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may set handlers; the exit finaliser still writes
    previous = signal.getsignal(signal.SIGTERM)
    if getattr(previous, "_bpmon_torch", False) or previous == signal.SIG_IGN:
        return

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        for output in list(_open_outputs):
            output.finish("interrupted")
        if callable(previous):
            previous(signum, frame)
            return
        # The default action: end with the signal's status, as if no handler had been set.
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    on_sigterm._bpmon_torch = True  # type: ignore[attr-defined]
    with contextlib.suppress(ValueError, OSError):
        signal.signal(signal.SIGTERM, on_sigterm)
