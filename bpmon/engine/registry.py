"""Name registries: one dict per kind of name (activation, output, loss, initialiser,
optimiser), keyed by the names that :mod:`bpmon.config` lists.

The names are defined once, in :mod:`bpmon.config`, because the CLI's ``--help`` and the config
validator need them without importing NumPy. Each engine module keeps its implementations in a
dict keyed by those names and calls :func:`check_names` at import, so a name added on one side
and not the other fails on the first import instead of at the first run that uses it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TypeVar

T = TypeVar("T")


class RegistryMismatchError(RuntimeError):
    """An engine registry and the names :mod:`bpmon.config` lists for it have drifted apart."""


def check_names(kind: str, registry: Mapping[str, object], names: Collection[str]) -> None:
    """Raise :class:`RegistryMismatchError` unless ``registry``'s keys are exactly ``names``."""
    missing = [n for n in names if n not in registry]
    extra = [n for n in registry if n not in names]
    if missing or extra:
        raise RegistryMismatchError(
            f"the engine's {kind} registry and bpmon.config's {kind} names differ: "
            f"not implemented: {missing or 'none'}; not listed in bpmon.config: {extra or 'none'}"
        )


def lookup(kind: str, registry: Mapping[str, T], name: str) -> T:
    """``registry[name]``, or a ValueError that lists the known names."""
    try:
        return registry[name]
    except KeyError:
        known = ", ".join(registry)
        raise ValueError(f"unknown {kind} {name!r}; expected one of {known}") from None
