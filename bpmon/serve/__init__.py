"""``bpmon serve [--host H] [--port P] [bpmon arguments]``: the monitor as a web page.

textual-serve runs ``python -m bpmon <bpmon arguments>`` once for each browser connection, with
Textual's web driver in place of a terminal, and draws that process's screen in the page. The
arguments are checked here first, as ``bpmon <arguments>`` would check them, so that a bad preset
is one line and status 2 now, not a page that never draws.

The page has no authentication: whoever reaches the address runs the monitor (and what it
trains, a CSV file included) as the user who started ``bpmon serve``. So it listens on
127.0.0.1 unless ``--host`` says otherwise, and then says so.

This package imports textual-serve (an optional extra, ``bpmon[serve]``) only when it serves.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import shlex
import socket
import sys
from collections.abc import Sequence
from typing import NoReturn

from bpmon import launch
from bpmon.arguments import RUN_FILE_COMMANDS, Parser, checked, parser, run_file_parser
from bpmon.config import Rule
from bpmon.errors import BpmonError
from bpmon.text import printable

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
EXTRA_MISSING = "serve needs the serve extra: pip install 'bpmon[serve]'"

# Flags of bpmon that make no sense behind a page: each connection would print text instead of
# drawing the monitor (--headless and its companions), or write the same preset file again.
_NOT_SERVED = {
    "headless": "the page shows the monitor; run bpmon --headless without serve",
    "json": "headless only; run bpmon --headless --json without serve",
    "every": "headless only; run bpmon --headless --every N without serve",
    "list_presets": "run bpmon --list-presets without serve",
    "save_preset": "run bpmon --save-preset FILE once without serve, then serve --preset FILE",
}


class _ServeParser(Parser):
    def error(self, message: str) -> NoReturn:
        self.exit(
            launch.EXIT_USAGE,
            f"bpmon serve: error: {printable(message)} (see bpmon serve --help)\n",
        )


def _parser() -> argparse.ArgumentParser:
    # allow_abbrev=False: "--h" or "--po" must reach the monitor's parser (and its error), not
    # be taken for --host or --port.
    p = _ServeParser(
        prog="bpmon serve",
        description=(
            "Serve the monitor as a web page (textual-serve): every browser connection runs "
            "its own `bpmon ARGUMENTS`. The page has no authentication."
        ),
        usage="bpmon serve [--host HOST] [--port PORT] [bpmon arguments]",
        epilog="Every other argument is for bpmon (see bpmon --help), checked before serving.",
        allow_abbrev=False,
    )
    p.add_argument(
        "--host",
        help=(
            f"the address to listen on (default {DEFAULT_HOST}, this machine only); any other "
            "lets whoever reaches it drive the monitor"
        ),
    )
    p.add_argument(
        "--port",
        type=checked(Rule("int", low=1, high=65535)),
        default=DEFAULT_PORT,
        help=f"the port (default {DEFAULT_PORT})",
    )
    return p


def main(argv: Sequence[str]) -> int:
    """``bpmon serve``; returns the exit status (130 after ctrl+c, 143 after SIGTERM)."""
    own, monitor_argv = _parser().parse_known_args(argv)
    check_monitor_args(monitor_argv)
    try:
        from bpmon.serve.server import MonitorServer
    except ImportError as exc:
        if exc.name is not None and exc.name.split(".")[0] not in ("textual_serve", "aiohttp"):
            raise
        raise BpmonError(EXTRA_MISSING) from None
    host = own.host or DEFAULT_HOST
    if not _is_loopback(host):
        launch.say(
            f"bpmon serve: warning: the page on {host}:{own.port} has no authentication; anyone "
            "who reaches it can drive the monitor and what it runs"
        )
    _check_address(host, own.port)
    command = shlex.join([sys.executable, "-m", "bpmon", *monitor_argv])
    # The address as a URL writes it (an IPv6 address in brackets), for the start line.
    url = f"http://[{host}]:{own.port}" if ":" in host else f"http://{host}:{own.port}"
    server = MonitorServer(command, host=host, port=own.port, title="bpmon", public_url=url)
    try:
        server.serve()
    except OSError as exc:
        # The address was free a moment ago (checked above) and was taken since.
        raise BpmonError(_address_error(host, own.port, exc)) from None
    if server.stopped_by is not None:
        launch.say(
            "bpmon serve: interrupted" if server.stopped_by == 130 else "bpmon serve: stopped"
        )
        return server.stopped_by
    return launch.EXIT_OK


def check_monitor_args(argv: Sequence[str]) -> None:
    """Check ``bpmon <argv>`` as the monitor would before it opens: the flags, the preset, the
    overrides, the CSV file, the network (its shape and its memory), the ``--record`` file.
    Raises :class:`BpmonError` (or exits 2 through argparse) with the one-line message."""
    if argv and argv[0] in RUN_FILE_COMMANDS:
        _check_run_file_args(argv[0], argv[1:])
        return
    args = parser().parse_args(list(argv))
    for name, why in _NOT_SERVED.items():
        if getattr(args, name):
            flag = "--" + name.replace("_", "-")
            raise BpmonError(f"serve {flag}: {why}")
    preset, data = launch.preset_and_data(args)
    config = launch.apply_overrides(preset.config, args)
    # Built and dropped, never started: its constructor refuses a network the data cannot feed
    # or memory cannot hold, the way the monitor would; so are the runs of --compare.
    launch.build_trainer(
        config, preset, interval=1.0, overrides=launch.overrides_given(args), data=data
    )
    for each in launch.compared(args):
        launch.build_trainer(*each, interval=1.0, overrides=launch.overrides_given(args))
    if args.record:
        # Opening it checks the directory and refuses a file that already holds a run; an absent
        # file is created empty, which the first connection's monitor accepts.
        launch.RecordFile(args.record).close()


def _check_run_file_args(command: str, argv: Sequence[str]) -> None:
    """``bpmon replay RUN.jsonl`` / ``bpmon watch RUN.jsonl|DIR`` (with their ``--compare``
    files), checked as they check themselves before the monitor opens: a file that is not a
    run is one line now."""
    args = run_file_parser(command).parse_args(list(argv))
    compare = args.compare or ()
    launch.check_compares(compare)
    for path in (args.path, *compare):
        launch.open_run_file(command, path)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_address(host: str, port: int) -> None:
    """Bind ``host:port`` once and let it go, so that a port in use (or a host that is not this
    machine's) is one line before the server prints anything."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, kind, proto, _, address in infos:
            with socket.socket(family, kind, proto) as sock:
                # The same option aiohttp sets, so that a port in TIME_WAIT is not called in use.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(address)
    except OSError as exc:
        raise BpmonError(_address_error(host, port, exc)) from None


def _address_error(host: str, port: int, exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    if isinstance(exc, socket.gaierror):
        return f"serve --host {host}: {reason}"
    if exc.errno == errno.EADDRINUSE:
        return f"serve --port {port}: address already in use; choose another port"
    return f"serve --host {host} --port {port}: {reason}"
