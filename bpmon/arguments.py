"""bpmon's command line: its flags, what each accepts, and a usage error as one line.

Shared by ``bpmon`` (:mod:`bpmon.cli`) and ``bpmon serve`` (:mod:`bpmon.serve`), which checks its
monitor's arguments with the same parser before serving. A flag that sets a configuration key
accepts exactly what that key accepts in a preset file (:func:`bpmon.config.rule`).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from bpmon.config import (
    HIDDEN_ACTIVATIONS,
    LR_MAX,
    LR_MIN,
    MAX_DEPTH,
    MIN_DEPTH,
    MISSING,
    OPTIMIZERS,
    Rule,
    rule,
    show_value,
)
from bpmon.launch import EXIT_USAGE, OutputError, closed_error
from bpmon.text import printable

if TYPE_CHECKING:
    from _typeshed import SupportsWrite


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse prints the whole usage block; one line is easier to read in a log.
        # printable: "unrecognized arguments" quotes the arguments raw, newlines and all.
        self.exit(EXIT_USAGE, f"bpmon: error: {printable(message)} (see bpmon --help)\n")

    def print_help(self, file: SupportsWrite[str] | None = None) -> None:
        # argparse swallows a failed write of the help; a closed stdout is an output error.
        if file is None and sys.stdout is None:
            raise OutputError("stdout", closed_error())
        super().print_help(file)


def checked(field_rule: Rule) -> Callable[[str], Any]:
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
    return checked(rule(key))


def parser() -> argparse.ArgumentParser:
    p = Parser(
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
        action="append",
        help="train another preset (name or .toml) beside --preset and show the runs side by "
        "side (tab moves the keys from one to the next); repeat for up to 3 (runs B, C, D); the "
        "overrides and --speed apply to every run; headless, each run's summary, and --json "
        'gives {"runs": [a, b, ...]}; not with --record or a CSV file',
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
        type=checked(Rule("int", low=1)),
        metavar="N",
        help="headless: progress every N epochs",
    )
    g = p.add_argument_group("overrides")
    g.add_argument("--epochs", type=_flag("train.epochs"))
    g.add_argument("--seed", type=_flag("train.seed"), help="initialisation seed")
    g.add_argument("--activation", choices=HIDDEN_ACTIVATIONS)
    g.add_argument(
        "--depth",
        type=checked(Rule("int", low=MIN_DEPTH, high=MAX_DEPTH)),
        help=f"hidden layers, {MIN_DEPTH} to {MAX_DEPTH}",
    )
    # No upper bound here: what fits depends on the depth and the machine; the trainer's memory
    # estimate refuses a network that would not fit, naming these flags.
    g.add_argument("--width", type=checked(Rule("int", low=1)), help="units in every hidden layer")
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


RUN_FILE_COMMANDS = ("replay", "watch")


def run_file_parser(command: str) -> argparse.ArgumentParser:
    what = {
        "replay": "Replay a run file: left/right one snapshot, home/end, space plays, < > speed.",
        "watch": "Follow a run file as its writer appends to it (a DIR: its newest *.jsonl).",
    }[command]
    p = Parser(prog=f"bpmon {command}", description=what)
    metavar = "RUN.jsonl" if command == "replay" else "RUN.jsonl|DIR"
    p.add_argument("path", metavar=metavar)
    p.add_argument(
        "--compare",
        metavar=metavar,
        action="append",
        help="another run file, side by side with the first (tab moves the keys from one to "
        "the next); repeat for up to 3",
    )
    return p
