"""The one exception type that reaches the user as a message instead of a traceback."""

from __future__ import annotations


class BpmonError(Exception):
    """Bad input from the user: a preset, a TOML file, a CSV file, a command-line value.

    The CLI prints ``str(error)`` on one line and exits with status 2; the message must name what
    was wrong and where (file, line, key) so that it can be fixed without reading code.
    """
