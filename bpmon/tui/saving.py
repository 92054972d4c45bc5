"""``s``: the run on screen written as a preset file that ``bpmon --preset FILE`` runs again."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from textual.app import App

from bpmon.config import RunConfig
from bpmon.presets import to_toml
from bpmon.trainer import Snapshot

from .status import knobs

# A saved file's name is "bpmon-<preset>-<n>.toml"; saving a run loaded from one starts from
# the preset's own name again rather than growing "bpmon-bpmon-xor-1-1".
_SAVED = re.compile(r"^bpmon-(.+)-\d+$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def file_stem(preset: str) -> str:
    """``"xor"`` -> ``"bpmon-xor"``: the preset's name, kept to characters safe in a file name."""
    name = _SAVED.sub(r"\1", preset)
    name = _UNSAFE.sub("-", name).strip("-.") or "run"
    return f"bpmon-{name}"


def save_preset(config: RunConfig, description: str, preset: str, directory: Path) -> Path:
    """Write ``config`` as a preset file in ``directory`` under the first free name
    ``bpmon-<preset>-<n>.toml`` (n = 1, 2, ...) and return its path. An existing file is never
    overwritten: the name is taken with an exclusive create. Raises OSError when the
    directory cannot be written; a file cut short by a failed write is removed."""
    text = to_toml(config, description)
    stem = file_stem(preset)
    n = 0
    while True:
        n += 1
        path = directory / f"{stem}-{n}.toml"
        try:
            f = path.open("x", encoding="utf-8")
        except FileExistsError:
            continue
        try:
            with f:
                f.write(text)
        except OSError:
            path.unlink(missing_ok=True)
            raise
        return path


def save_run(app: App[Any], snapshot: Snapshot) -> None:
    """``s``: write the run of ``snapshot`` (its configuration, every key's change included) as
    a preset file in the working directory, and say where."""
    config = snapshot.config
    if config is None:
        app.notify("This run has no configuration to save.", severity="warning")
        return
    lr = f"lr {config.train.lr:g}"
    summary = ", ".join((snapshot.switches, knobs(config, ""), lr))
    description = f"Saved by bpmon from {snapshot.preset or 'a run'}: {summary}"
    try:
        path = save_preset(config, description, snapshot.preset, Path.cwd())
    except OSError as exc:
        reason = exc.strerror or str(exc)
        app.notify(
            f"Cannot save the run in the working directory: {reason}",
            title="not saved",
            severity="error",
            markup=False,
        )
        return
    app.notify(
        f"Saved {path.name}: bpmon --preset {path.name} runs it again.",
        title="saved",
        markup=False,
    )
