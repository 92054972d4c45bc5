"""The monitor's keys, built from the action table (:data:`bpmon.actions.ACTIONS`): the
bindings, which of them act on the source in view, and the help screen's rows.

Every row's first key is bound in the table's order, then the other keys (aliases), then, for a
key that only a live run takes, a hidden binding that says why it does nothing here. Textual
tries a key's bindings in that order and runs the first whose ``check_action`` lets it act, so
space pauses a live run and plays a replay, enter opens the gradient group under the cursor and
else the findings, and a training key on a run file says, once, that it does not apply. Every
binding is a priority binding: no widget here wants these keys, and they must keep working
under the help screen, which as a modal would otherwise cut the app's bindings off.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from textual.binding import Binding

from bpmon.actions import ACTIONS, Action, CommandKind, SourceKind

Supports = Callable[[CommandKind], bool]

# The footer's groups, one object each: it draws consecutive keys of one group together.
_GROUPS = {
    name: Binding.Group(name, compact=True)
    for name in dict.fromkeys(a.group for a in ACTIONS.values() if a.group)
}


def _binding(row: Action, key: str, primary: bool) -> Binding:
    described = primary and bool(row.footer)
    return Binding(
        key,
        row.action(key),
        row.footer if described else "",
        show=row.show,
        priority=True,
        tooltip=row.help if described else "",
        group=_GROUPS.get(row.group) if described else None,
    )


def bindings() -> list[Binding]:
    """The app's bindings, from the table (see the module's docstring for their order)."""
    rows = list(ACTIONS.values())
    found = [_binding(row, row.keys[0], True) for row in rows if row.keys]
    found += [_binding(row, key, False) for row in rows for key in row.keys[1:]]
    found += [
        Binding(key, f"refuse({row.id!r})", "", priority=True)
        for row in rows
        if row.sources == {"live"}
        for key in row.keys
    ]
    return found


def row_of(action: str, parameters: Sequence[object]) -> Action | None:
    """The table's row behind a binding's action (``send('lr_down')``, ``rows('up')``)."""
    if action in ("send", "refuse"):
        return ACTIONS.get(str(parameters[0])) if parameters else None
    return _BY_RUN.get(action)


_BY_RUN = {a.run.partition("(")[0]: a for a in reversed(ACTIONS.values()) if a.run}


def source_kind(supports: Supports) -> SourceKind:
    """What a source is, from what it takes: a live run steps, a replay seeks."""
    if supports("step"):
        return "live"
    return "replay" if supports("seek") else "watch"


def acts(row: Action, columns: int, supports: Supports) -> bool:
    """Whether ``row`` acts on the source whose ``supports`` says which command kinds it
    takes, in an app of ``columns`` run columns; the view's own conditions are the app's."""
    if (row.columns == "one" and columns != 1) or (row.columns == "many" and columns < 2):
        return False
    if source_kind(supports) not in row.sources:
        return False
    return row.command is None or supports(row.command)


def shown_rows() -> list[Action]:
    """The rows the help screen and the palette may list, in the table's order."""
    return [a for a in ACTIONS.values() if a.help and (a.footer or a.display)]
