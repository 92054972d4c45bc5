"""Presets: TOML files that describe a run, loaded by name (``xor``) or by path (``./mine.toml``).

A preset has a top-level ``description`` and the tables ``[data]``, ``[model]``, ``[train]`` and
``[thresholds]``, whose keys are the fields of the dataclasses in :mod:`bpmon.config`; anything
left out keeps its default. Every mistake is reported as one :class:`BpmonError` naming the file,
the key and what was expected; a TOML syntax error names the line.

The presets shipped with bpmon live in ``presets/`` at the top of the repository; a wheel carries
a copy inside the package (``bpmon/presets``), which is looked at first.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bpmon.config import TABLES, RunConfig, show_value, validate
from bpmon.errors import BpmonError

_show = show_value


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    config: RunConfig
    path: Path


def preset_dirs() -> list[Path]:
    """Where named presets are looked up: the packaged copy, then the repository's folder."""
    here = Path(__file__).resolve().parent
    return [d for d in (here / "presets", here.parent / "presets") if d.is_dir()]


def available() -> dict[str, Path]:
    """Every named preset, name -> file; a packaged copy wins over the repository's."""
    found: dict[str, Path] = {}
    for d in reversed(preset_dirs()):
        for path in sorted(d.glob("*.toml")):
            found[path.stem] = path
    return dict(sorted(found.items()))


def load_preset(name_or_path: str) -> Preset:
    path = Path(name_or_path)
    if name_or_path.endswith(".toml") or path.parent != Path(".") or path.is_dir():
        if path.is_dir():
            raise BpmonError(f"{name_or_path}: is a directory; expected a preset .toml file")
        if not path.exists():
            raise BpmonError(f"{name_or_path}: preset file not found")
        return load_file(path)
    presets = available()
    if name_or_path not in presets:
        known = ", ".join(presets) or "(none found)"
        raise BpmonError(f"unknown preset {name_or_path!r}; available: {known}")
    return load_file(presets[name_or_path])


def list_presets() -> list[Preset]:
    return [load_file(path) for path in available().values()]


def load_file(path: Path) -> Preset:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise BpmonError(f"{path}:{line}: the preset is not UTF-8 text") from None
    except OSError as exc:
        raise BpmonError(f"{path}: cannot read the preset: {exc.strerror or exc}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message already ends with "(at line N, column M)".
        raise BpmonError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:
        # tomllib parses nested arrays and inline tables by recursion; no preset nests deeply.
        raise BpmonError(f"{path}: invalid TOML: values nested too deeply") from None
    return parse(doc, path)


def parse(doc: dict[str, Any], path: Path) -> Preset:
    known = {"name", "description", *TABLES}
    for key in doc:
        if key not in known:
            raise BpmonError(
                f"{path}: unknown key {key!r}; expected one of {', '.join(sorted(known))}"
            )
    description = doc.get("description", "")
    if not isinstance(description, str):
        raise BpmonError(f"{path}: description = {_show(description)}: expected a string")
    name = doc.get("name", path.stem)
    if not isinstance(name, str):
        raise BpmonError(f"{path}: name = {_show(name)}: expected a string")
    parts = {}
    for table, cls in TABLES.items():
        value = doc.get(table, {})
        if not isinstance(value, dict):
            raise BpmonError(f"{path}: [{table}] = {_show(value)}: expected a table")
        parts[table] = _build(cls, table, value, path)
    data = parts["data"]
    if data.path is not None and not Path(data.path).is_absolute():
        # A CSV named in a preset is relative to the preset file, not to the working directory.
        parts["data"] = dataclasses.replace(data, path=str(path.parent / data.path))
    config = validate(RunConfig(**parts), str(path))
    return Preset(name=name, description=description, config=config, path=path)


def _build(cls: type[Any], table: str, values: dict[str, Any], path: Path) -> Any:
    """One table's dataclass; each value is checked by its field's :class:`Rule`."""
    rules = {f.name: f.metadata["rule"] for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in rules:
            expected = ", ".join(sorted(rules))
            raise BpmonError(f"{path}: [{table}] unknown key {key!r}; expected one of {expected}")
        try:
            kwargs[key] = rules[key].accept(value)
        except ValueError as exc:
            raise BpmonError(f"{path}: {table}.{key} = {_show(value)}: expected {exc}") from None
    return cls(**kwargs)
