"""Rows grouped by module path, for display only (no Textual here, no arithmetic on gradients).

A PyTorch model's rows are named by module path: ``transformer.h.3.attn.c_attn``. What a user
scans for is the numbered structure in those paths: the *blocks* of a transformer
(``transformer.h.3``) and the *stages* of a ResNet (``layer2``, which holds the blocks
``layer2.0`` and ``layer2.1``). So a group is:

- a **block**: a path whose last part is a number and that holds at least two rows
  (``transformer.h.3``; a numbered leaf such as ``net.0`` is a row, not a block), or
- a **stack**: a path holding at least two blocks (``transformer.h``, ``layer2``).

Nothing else groups: a plain ``nn.Sequential`` of layers (``net.0``, ``net.2``) and bpmon's own
``layer0``... stay the flat list they always were. A group keeps the rows' order (input layer
first): it is formed only where its rows are contiguous in that order, and only once per path
(a path whose rows come in two separate runs is not grouped).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "Group",
    "Node",
    "Shown",
    "default_open",
    "flatten",
    "group_rows",
    "groups_of",
    "is_number",
    "visible",
]


def is_number(part: str) -> bool:
    """Whether a path part is an index (``"3"``), as ``nn.Sequential``/``ModuleList`` name them."""
    return part.isascii() and part.isdigit()


@dataclass(frozen=True)
class Group:
    """The rows under ``path``: ``rows`` are their indices in the snapshot's order, ``children``
    the groups and rows directly under it."""

    path: str
    rows: tuple[int, ...]
    children: tuple[Node, ...]

    @property
    def is_block(self) -> bool:
        return is_number(self.path.rsplit(".", 1)[-1])

    @property
    def blocks(self) -> int:
        """How many blocks sit directly under this group."""
        return sum(1 for c in self.children if isinstance(c, Group) and c.is_block)


Node = Group | int
"""A group, or one row by its index."""


def group_rows(names: Sequence[str]) -> tuple[Node, ...]:
    """The rows named ``names`` as groups and rows (see the module doc); every index appears
    exactly once, and :func:`flatten` gives ``0 .. len(names) - 1`` back in order."""
    parts = [name.split(".") for name in names]
    under: dict[str, list[int]] = {}
    for i, p in enumerate(parts):
        for depth in range(1, len(p)):
            under.setdefault(".".join(p[:depth]), []).append(i)
    # A path whose rows are not one contiguous run is never a group.
    split = {path for path, rows in under.items() if rows[-1] - rows[0] + 1 != len(rows)}
    return tuple(_build(parts, list(range(len(names))), 0, split))


def _build(parts: list[list[str]], indices: list[int], depth: int, split: set[str]) -> list[Node]:
    # ``indices`` are contiguous in the snapshot's order: consecutive rows that go on below the
    # same part at this depth make one run (None: a row that ends here).
    runs: list[tuple[str | None, list[int]]] = []
    for i in indices:
        key = parts[i][depth] if len(parts[i]) > depth + 1 else None
        if key is not None and runs and runs[-1][0] == key:
            runs[-1][1].append(i)
        else:
            runs.append((key, [i]))
    nodes: list[Node] = []
    for key, run in runs:
        if key is None:
            nodes.append(run[0])
            continue
        children = _build(parts, run, depth + 1, split)
        group = Group(".".join(parts[run[0]][: depth + 1]), tuple(run), tuple(children))
        if group.path not in split and ((group.is_block and len(run) >= 2) or group.blocks >= 2):
            nodes.append(group)
        else:
            nodes.extend(children)
    return nodes


def flatten(nodes: Iterable[Node]) -> list[int]:
    """Every row index under ``nodes``, in order."""
    out: list[int] = []
    for node in nodes:
        out.extend(node.rows if isinstance(node, Group) else (node,))
    return out


def groups_of(nodes: Iterable[Node]) -> list[Group]:
    """Every group under ``nodes``, outer ones first (depth first, in row order)."""
    out: list[Group] = []
    for node in nodes:
        if isinstance(node, Group):
            out.append(node)
            out.extend(groups_of(node.children))
    return out


@dataclass(frozen=True)
class Shown:
    """One line of the panel: a row or a group, how deep it sits, and (a group) whether it is
    open."""

    node: Node
    depth: int
    open: bool = False


def visible(nodes: Sequence[Node], opened: Mapping[str, bool]) -> list[Shown]:
    """The lines shown when the groups whose path maps to True in ``opened`` are open (a group
    not in ``opened`` is closed): a closed group is one line, an open one its line and then its
    children one level deeper."""
    out: list[Shown] = []
    _visible(nodes, opened, 0, out)
    return out


def _visible(
    nodes: Sequence[Node], opened: Mapping[str, bool], depth: int, out: list[Shown]
) -> None:
    for node in nodes:
        if isinstance(node, Group):
            is_open = opened.get(node.path, False)
            out.append(Shown(node, depth, is_open))
            if is_open:
                _visible(node.children, opened, depth + 1, out)
        else:
            out.append(Shown(node, depth))


def default_open(nodes: Sequence[Node], room: int, chosen: Mapping[str, bool]) -> dict[str, bool]:
    """Which groups are open: those the user opened or closed (``chosen``) as they chose; the
    others a level at a time, outer level first, as long as every line then still fits in
    ``room`` lines, so that a small model shows all its rows and a 12-block GPT its blocks or
    its stack, whichever fits. One level more opens although it does not fit where what
    shows would otherwise fill less than half the room: blocks to scroll through say more
    than one line over an empty panel."""
    opened = {g.path: chosen.get(g.path, False) for g in groups_of(nodes)}
    level: list[Group] = [n for n in nodes if isinstance(n, Group)]
    while level:
        trial = {**opened, **{g.path: True for g in level if g.path not in chosen}}
        if len(visible(nodes, trial)) > room:
            if 2 * len(visible(nodes, opened)) < room:
                opened = trial
            break
        opened = trial
        level = [c for g in level for c in g.children if isinstance(c, Group)]
    return opened
