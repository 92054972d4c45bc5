"""``s``: the run on screen written as a preset file that ``bpmon --preset FILE`` runs again."""

from __future__ import annotations

import re
from pathlib import Path

from bpmon.config import RunConfig
from bpmon.presets import to_toml

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
