"""The optional extras (``bpmon[hf]``, ``bpmon[lightning]``): a module that needs one imports
its packages through :func:`require`, which turns a missing package into one line naming the
extra to install."""

from __future__ import annotations

import importlib

from bpmon.errors import BpmonError


class ExtraMissing(ImportError, BpmonError):
    """A package of an optional extra is not installed. An ``ImportError`` for code that
    guards imports, and a :class:`~bpmon.errors.BpmonError` so that it reads as one line."""


def require(what: str, extra: str, *modules: str) -> None:
    """Import ``modules`` or raise :class:`ExtraMissing`: ``"<what> needs a, b and c: pip
    install 'bpmon[<extra>]'"``."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            names = ", ".join(modules[:-1]) + " and " + modules[-1] if len(modules) > 1 else module
            raise ExtraMissing(f"{what} needs {names}: pip install 'bpmon[{extra}]'") from exc
