"""Presets: TOML files that describe a run, loaded by name (``xor``) or by path (``./mine.toml``).

A preset has a top-level ``description`` and the tables ``[data]``, ``[model]``, ``[train]`` and
``[thresholds]``, whose keys are the fields of the dataclasses in :mod:`bpmon.config`; anything
left out keeps its default. Every mistake is reported as one :class:`BpmonError` naming the file,
the key and what was expected; a TOML syntax error names the line.

The presets shipped with bpmon live in ``presets/`` at the top of the repository; a wheel carries
a copy inside the package (``bpmon/presets``), which is looked at first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bpmon.config import (
    TABLES,
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    rule,
    show_value,
    validate,
)
from bpmon.errors import BpmonError

if TYPE_CHECKING:
    from bpmon.data import Dataset

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
        # tomllib parses nested arrays and inline tables by recursion and gives up a few
        # hundred levels down; no key takes nested values, so this is a bad value like another.
        raise BpmonError(_too_deep(path, text)) from None
    except ValueError as exc:
        # int() behind tomllib refuses integers of more than 4,300 digits with a ValueError.
        raise BpmonError(f"{path}: invalid TOML: {_one_line(str(exc))}") from None
    return parse(doc, path)


def _too_deep(path: Path, text: str) -> str:
    """The message for a value nested too deeply: the line where the nesting is deepest, and
    the key it belongs to (the last ``key =`` and ``[table]`` seen outside brackets)."""
    depth = deepest = 0
    line_at, key_at, table, key = 1, "", "", ""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if depth == 0 and stripped.startswith("[") and "=" not in stripped:
            table = stripped.strip("[] ")
            continue
        if depth == 0 and "=" in line:
            key = line.split("=", 1)[0].strip()
        for char in line:
            depth += char in "[{"
            depth -= char in "]}"
            if depth > deepest:
                deepest, line_at, key_at = depth, number, f"{table}.{key}" if table else key
    expected = ""
    if key_at.count(".") == 1 and key_at.split(".")[0] in TABLES:
        with contextlib.suppress(KeyError):
            expected = f": expected {rule(key_at).expected()}"
    return f"{path}:{line_at}: {key_at} = [[[...: values nested {deepest} deep{expected}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


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
    tables = {table: doc[table] for table in TABLES if table in doc}
    config = parse_tables(tables, str(path), base=path.parent)
    return Preset(name=name, description=description, config=config, path=path)


def parse_tables(doc: Mapping[str, Any], source: str, base: Path | None = None) -> RunConfig:
    """A :class:`RunConfig` from its tables (``{"data": {...}, "model": {...}, ...}``, as a
    preset file or a run file's header holds them), each value checked by its field's rule and
    the whole by :func:`validate`; ``source`` starts every message. A relative ``data.path``
    is taken relative to ``base`` (a preset's folder) when given."""
    parts = {}
    for table, cls in TABLES.items():
        value = doc.get(table, {})
        if not isinstance(value, dict):
            raise BpmonError(f"{source}: [{table}] = {_show(value)}: expected a table")
        parts[table] = _build(cls, table, value, source)
    data = parts["data"]
    if base is not None and data.path is not None and not Path(data.path).is_absolute():
        # A CSV named in a preset is relative to the preset file, not to the working directory.
        parts["data"] = dataclasses.replace(data, path=str(base / data.path))
    return validate(RunConfig(**parts), source)


def _build(cls: type[Any], table: str, values: dict[str, Any], path: str) -> Any:
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


# -- a CSV file as a preset ------------------------------------------------------------------------

# The network bpmon puts on a user's file: two ReLU layers of 16 (He init) trained by Adam, which
# learns most small tabular problems without tuning; mini-batches of 64 once the training split is
# larger than FULL_BATCH_MAX rows, where a full-batch step would take long enough to slow the
# monitor down to a few steps a second.
CSV_HIDDEN = (16, 16)
CSV_LR = 0.01
CSV_EPOCHS = 200
CSV_BATCH = 64
FULL_BATCH_MAX = 4096


def csv_preset(data: DataConfig) -> tuple[Preset, Dataset]:
    """A preset for the user's CSV file ``data.path`` (``data.name`` is ``csv``), and the loaded
    data set (so that the file is read once). The output and the loss follow the task the data
    module found: sigmoid + bce for two classes, softmax + cross-entropy for more, identity +
    mse for regression."""
    from bpmon.data import OUTPUT_LOSS, load_dataset

    assert data.path is not None
    dataset = load_dataset(data)
    output, loss = OUTPUT_LOSS[dataset.task]
    config = RunConfig(
        data=data,
        model=ModelConfig(
            hidden=CSV_HIDDEN, activation="relu", output=output, loss=loss, init="he"
        ),
        train=TrainConfig(
            optimizer="adam",
            lr=CSV_LR,
            epochs=CSV_EPOCHS,
            batch_size=CSV_BATCH if dataset.n_train > FULL_BATCH_MAX else 0,
        ),
    )
    path = Path(data.path)
    description = f"{path.name}: {dataset.task}, {dataset.n_inputs} inputs"
    preset = Preset(path.stem, description, validate(config, data.path), path)
    return preset, dataset


def to_toml(config: RunConfig, description: str) -> str:
    """The preset file that reproduces ``config``: every table written out in full (a value
    left at its default too, so that the file does not change meaning when a default does);
    keys whose value is None (meaning "the default") are left out, as TOML has no null."""
    lines = [f"description = {_toml(description)}"]
    for table in TABLES:
        lines += ["", f"[{table}]"]
        part = getattr(config, table)
        for f in dataclasses.fields(part):
            value = getattr(part, f.name)
            if value is not None:
                lines.append(f"{f.name} = {_toml(value)}")
    return "\n".join(lines) + "\n"


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # a float's repr reads back as the same float, in TOML too
    if isinstance(value, str):
        # A JSON string is a TOML basic string, escapes and all.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")
