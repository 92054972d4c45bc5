"""Text from outside (run files, CSV cells, module names, file names) made safe to show.

A run file or a CSV file may come from another machine; a name in it is data, never a command to
the user's terminal. :func:`printable` is the one place that turns such text into something a
widget, a log line or an error message may show: every character that is not printable (C0
controls such as ESC and BEL, DEL, the C1 controls U+0080-U+009F that some terminals read as
CSI/OSC, line and paragraph separators, unassigned or private-use code points) is shown as its
Python escape (``\\x1b``, ``\\x07``, ``\\u2028``), so ``\\x1b]2;TITLE\\x07`` reads as that text and
sets no title, and a newline cannot break a one-line message.
"""

from __future__ import annotations


def printable(text: str) -> str:
    """``text`` with every unprintable character escaped (see the module's docstring)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
