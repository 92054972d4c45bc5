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
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bpmon.config import DataConfig, ModelConfig, RunConfig, Thresholds, TrainConfig
from bpmon.errors import BpmonError

_TABLES: dict[str, type[Any]] = {
    "data": DataConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "thresholds": Thresholds,
}


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
    if name_or_path.endswith(".toml") or path.parent != Path("."):
        if not path.is_file():
            raise BpmonError(f"preset file not found: {name_or_path}")
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
    except (OSError, UnicodeDecodeError) as exc:
        raise BpmonError(f"{path}: cannot read preset: {exc}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message already ends with "(at line N, column M)".
        raise BpmonError(f"{path}: invalid TOML: {exc}") from None
    return parse(doc, path)


def parse(doc: dict[str, Any], path: Path) -> Preset:
    known = {"name", "description", *_TABLES}
    for key in doc:
        if key not in known:
            raise BpmonError(
                f"{path}: unknown key {key!r}; expected one of {', '.join(sorted(known))}"
            )
    description = doc.get("description", "")
    if not isinstance(description, str):
        raise BpmonError(f"{path}: 'description' must be a string")
    name = doc.get("name", path.stem)
    if not isinstance(name, str):
        raise BpmonError(f"{path}: 'name' must be a string")
    parts = {}
    for table, cls in _TABLES.items():
        value = doc.get(table, {})
        if not isinstance(value, dict):
            raise BpmonError(f"{path}: [{table}] must be a table")
        parts[table] = _build(cls, value, f"{path}: [{table}]")
    data = parts["data"]
    if data.path is not None and not Path(data.path).is_absolute():
        # A CSV named in a preset is relative to the preset file, not to the working directory.
        parts["data"] = dataclasses.replace(data, path=str(path.parent / data.path))
    config = RunConfig(**parts)
    check(config, str(path))
    return Preset(name=name, description=description, config=config, path=path)


def _build(cls: type[Any], values: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            expected = ", ".join(sorted(fields))
            raise BpmonError(f"{where} unknown key {key!r}; expected one of {expected}")
        kwargs[key] = _coerce(value, hints[key], f"{where} {key}")
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against a field's type; ints are accepted where floats are expected."""
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            options = ", ".join(repr(c) for c in choices)
            raise BpmonError(f"{where} = {value!r}: expected one of {options}")
        return value
    if origin in (types.UnionType, typing.Union):
        # Only "X | None" occurs in the config; TOML has no null, so the value is an X.
        (inner,) = (a for a in typing.get_args(hint) if a is not type(None))
        return _coerce(value, inner, where)
    if origin is tuple:
        (item,) = typing.get_args(hint)[:1]
        if not isinstance(value, list):
            raise BpmonError(f"{where} = {value!r}: expected a list of {item.__name__}")
        return tuple(_coerce(v, item, where) for v in value)
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, hint)
    if not ok:
        raise BpmonError(f"{where} = {value!r}: expected {hint.__name__}")
    return value


def check(config: RunConfig, where: str) -> None:
    """Value checks that types alone cannot express; ``where`` names the source in messages."""
    m, t, d = config.model, config.train, config.data
    problems = []
    if not m.hidden or any(w < 1 for w in m.hidden):
        problems.append("model.hidden must list at least one positive width")
    if len(m.hidden) > 12:
        problems.append("model.hidden has more than 12 layers")
    if m.loss == "bce" and m.output != "sigmoid":
        problems.append("model.loss = 'bce' needs model.output = 'sigmoid'")
    if m.loss == "cross_entropy" and m.output != "softmax":
        problems.append("model.loss = 'cross_entropy' needs model.output = 'softmax'")
    if m.init_std <= 0 or m.bn_eps <= 0 or not 0 < m.bn_momentum <= 1:
        problems.append("model.init_std and model.bn_eps must be > 0, model.bn_momentum in (0, 1]")
    if t.lr <= 0 or t.epochs < 1 or t.batch_size < 0:
        problems.append("train.lr must be > 0, train.epochs >= 1, train.batch_size >= 0")
    if m.batchnorm and t.batch_size == 1:
        problems.append("batch-norm needs train.batch_size of at least 2 (or 0 for full batch)")
    if not 0 <= d.test_fraction < 1:
        problems.append("data.test_fraction must be in [0, 1)")
    if d.name == "csv" and not d.path:
        problems.append("data.name = 'csv' needs data.path")
    if problems:
        raise BpmonError(f"{where}: " + "; ".join(problems))
