"""The house: bpmon's modules in layers, each importing only from its own layer or below, and no
import circle anywhere (the README's "Where things are" draws the same layers).

Read from the source, not by importing it: every ``import`` counts, at the top of a module, inside
a function (the lazy imports that keep ``--help`` fast) and under ``TYPE_CHECKING``, because each is
a dependency that a change on the other side can break.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "bpmon"

# Bottom first. A module belongs to the layer of the longest prefix that names it ("bpmon", the
# package's own __init__, names only itself).
HOUSE: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "plain data and rules",
        (
            "bpmon.errors",
            "bpmon.text",
            "bpmon.config",
            "bpmon.memory",
            "bpmon.runmodel",
            "bpmon.finding",
            "bpmon.actions",
            "bpmon.lines",
            "bpmon.liveness",
        ),
    ),
    (
        "numbers: the engine, the data sets, the presets; the run model's codec",
        ("bpmon", "bpmon.engine", "bpmon.data", "bpmon.presets", "bpmon.codec"),
    ),
    ("measurements of a network", ("bpmon.telemetry",)),
    ("training: the run, its loop, its snapshots", ("bpmon.trainer",)),
    (
        "reading snapshots: findings, the report, the run file",
        (
            "bpmon.diagnosis",
            "bpmon.report",
            "bpmon.runfile",
            "bpmon.readback",
            "bpmon.metrichistory",
            "bpmon.curvepoints",
        ),
    ),
    (
        "sources of snapshots, and the PyTorch writers",
        (
            "bpmon.sources",
            "bpmon.filesource",
            "bpmon.cursor",
            "bpmon.torch",
            "bpmon.hf",
            "bpmon.lightning",
            "bpmon.callbacks",
            "bpmon.extras",
        ),
    ),
    ("the monitor", ("bpmon.tui",)),
    ("the launcher", ("bpmon.launch",)),
    ("the command line", ("bpmon.arguments", "bpmon.cli", "bpmon.serve", "bpmon.__main__")),
)

# Optional extras that the rest of bpmon never imports (the user's process imports them).
EXTRAS = ("bpmon.torch", "bpmon.hf", "bpmon.lightning", "bpmon.callbacks")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, known: set[str]) -> set[str]:
    """The bpmon modules ``path`` imports: ``from bpmon import report`` is bpmon.report."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "bpmon")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "bpmon":
                continue
            subs = {f"{node.module}.{a.name}" for a in node.names} & known
            # Names that are not submodules come from the module itself.
            if len(subs) < len(node.names):
                found.add(node.module)
            found.update(subs)
    return found & known


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, set(known)) - {name} for name, path in known.items()}


def layer(name: str) -> int:
    best = -1, -1
    for index, (_, prefixes) in enumerate(HOUSE):
        for prefix in prefixes:
            inside = name.startswith(prefix + ".") and prefix != "bpmon"
            if (name == prefix or inside) and len(prefix) > best[0]:
                best = len(prefix), index
    if best[1] < 0:
        raise AssertionError(f"{name} is in no layer of the house; add it to HOUSE")
    return best[1]


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import circle in ``edges`` (as a path that ends where it starts), or None."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(node: str) -> list[str] | None:
        path.append(node)
        on_path.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt in on_path:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in done:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        on_path.discard(node)
        done.add(node)
        return None

    for start in sorted(edges):
        if start not in done:
            found = visit(start)
            if found:
                return found
    return None


def arrows_up(edges: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{a} ({HOUSE[layer(a)][0]}) imports {b} ({HOUSE[layer(b)][0]})"
        for a, targets in edges.items()
        for b in targets
        if layer(b) > layer(a)
    )


# A package's __init__ importing its own submodules, and those importing names back through
# the package, is how a package is put together, not a circle between two jobs: a circle counts
# when it leaves the package.
def between_packages(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    return {
        a: {b for b in targets if not (b.startswith(a + ".") or a.startswith(b + "."))}
        for a, targets in edges.items()
    }


def test_every_module_has_a_layer() -> None:
    for name in modules():
        layer(name)


def test_no_module_imports_one_above_it() -> None:
    assert arrows_up(graph()) == []


def test_no_import_circle() -> None:
    assert cycle(between_packages(graph())) is None


def test_the_extras_are_imported_by_nothing_else() -> None:
    for a, targets in graph().items():
        if any(a == extra or a.startswith(extra + ".") for extra in EXTRAS):
            continue  # an integration builds on the bridge
        for extra in EXTRAS:
            if not (a == extra or a.startswith(extra + ".")):
                assert not any(b == extra or b.startswith(extra + ".") for b in targets), (a, extra)


# Issue 17: classes by job, none longer than this many lines (its docstring included).
CLASS_LINES = 300


def long_classes(source: str, most: int = CLASS_LINES) -> list[str]:
    """The classes defined in ``source`` (at any depth) longer than ``most`` lines."""
    return [
        f"{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ClassDef) and node.end_lineno is not None
        if node.end_lineno - node.lineno + 1 > most
    ]


def test_no_class_is_longer_than_300_lines() -> None:
    found = {
        str(path.relative_to(PACKAGE)): long
        for path in sorted(PACKAGE.rglob("*.py"))
        if (long := long_classes(path.read_text(encoding="utf-8")))
    }
    assert found == {}


def test_a_long_class_is_found() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(CLASS_LINES))
    assert long_classes(f"class Long:\n{body}\n") == [f"Long: {CLASS_LINES + 1} lines"]
    assert long_classes("class Short:\n    pass\n") == []


# The checks themselves, on made-up graphs: each must be able to fail.


def test_an_arrow_up_is_found() -> None:
    edges = {"bpmon.trainer.loop": {"bpmon.diagnosis"}, "bpmon.diagnosis": set()}
    assert arrows_up(edges) == [
        "bpmon.trainer.loop (training: the run, its loop, its snapshots) imports bpmon.diagnosis "
        "(reading snapshots: findings, the report, the run file)"
    ]


def test_a_circle_is_found() -> None:
    edges = {"bpmon.cli": {"bpmon.serve"}, "bpmon.serve": {"bpmon.cli"}}
    assert cycle(edges) == ["bpmon.cli", "bpmon.serve", "bpmon.cli"]
    assert cycle({"bpmon.cli": {"bpmon.serve"}, "bpmon.serve": set()}) is None


def test_a_module_outside_the_house_is_named() -> None:
    with pytest.raises(AssertionError, match=r"bpmon\.newthing is in no layer"):
        layer("bpmon.newthing")


def test_lazy_and_type_only_imports_count(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from bpmon.trainer.snapshot import Snapshot\n"
        "def f():\n    from bpmon import report, Network\n    import bpmon.tui.app\n"
    )
    known = {"bpmon", "bpmon.trainer.snapshot", "bpmon.report", "bpmon.tui.app"}
    assert imports(source, known) == known
