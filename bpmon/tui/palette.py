"""The command palette's bpmon commands (ctrl+p): presets, settings and every action, by name.

Textual's command palette asks each :class:`~textual.command.Provider` in ``App.COMMANDS`` for
hits: :meth:`PaletteCommands.discover` lists every entry before anything is typed, and
:meth:`PaletteCommands.search` fuzzy-matches what is typed. Choosing an entry sends the same
command a key sends, so the trainer validates it the same way:

- a preset restarts the run from that preset's configuration (``Command("restart", config=...)``);
- a setting's value (:data:`SETTINGS`) sets that configuration key and restarts
  (``Command("set", key=..., value=...)``, through :func:`bpmon.trainer.commands.apply_intent`);
- a pace sets the live run's steps per second;
- an action (a row of :data:`bpmon.actions.ACTIONS` with a key) runs as its key would, so
  only those that apply to the source in view.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider

from bpmon.config import HIDDEN_ACTIVATIONS, INITS, OPTIMIZERS
from bpmon.errors import BpmonError
from bpmon.presets import available, load_file
from bpmon.text import printable
from bpmon.trainer.commands import (
    BATCH_SIZES,
    PACES,
    PLAYGROUND_DATASETS,
    Command,
    format_pace,
)

from .keys import shown_rows

if TYPE_CHECKING:
    from .app import BpmonApp


def _plain(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _init(name: str) -> str:
    return "normal (randn * init_std, the story's 0.1)" if name == "normal" else name


@dataclass(frozen=True)
class Setting:
    """A configuration key the palette sets, and the values it offers for it (one entry each)."""

    label: str
    key: str
    values: tuple[Any, ...]
    show: Callable[[Any], str] = _plain


# Every setting the palette offers: a new configuration field is one line here.
SETTINGS: tuple[Setting, ...] = (
    Setting("Data set", "data.name", PLAYGROUND_DATASETS),
    Setting("Activation", "model.activation", HIDDEN_ACTIVATIONS),
    Setting("Initialisation", "model.init", INITS, _init),
    Setting("Optimiser", "train.optimizer", OPTIMIZERS),
    Setting("Mini-batch", "train.batch_size", BATCH_SIZES, lambda b: str(b) if b else "full"),
    Setting("Weight decay (L2)", "train.weight_decay", (0.0, 1e-4, 1e-3, 1e-2)),
    Setting("Dropout", "model.dropout", (0.0, 0.1, 0.25, 0.5)),
    Setting("Input noise", "data.noise", (0.0, 0.1, 0.25, 0.5)),
    Setting("Test fraction", "data.test_fraction", (0.1, 0.2, 0.3, 0.5)),
)


@dataclass(frozen=True)
class Entry:
    text: str
    help: str
    run: Callable[[], object]


class PaletteCommands(Provider):
    """bpmon's entries in Textual's command palette; built when the palette opens."""

    async def startup(self) -> None:
        self.entries = entries(cast("BpmonApp", self.app))

    async def discover(self) -> Hits:
        for entry in self.entries:
            yield DiscoveryHit(entry.text, entry.run, help=entry.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for entry in self.entries:
            score = matcher.match(entry.text)
            if score > 0:
                yield Hit(score, matcher.highlight(entry.text), entry.run, help=entry.help)


def entries(app: BpmonApp) -> list[Entry]:
    """The palette's entries for ``app``'s source: what does not apply to it is left out."""
    found: list[Entry] = []
    if app.source.supports("set"):
        found += _preset_entries(app)
        for setting in SETTINGS:
            for value in setting.values:
                found.append(
                    Entry(
                        f"{setting.label}: {setting.show(value)}",
                        f"{setting.key} = {_plain(value)} (restarts)",
                        partial(app.send, Command("set", key=setting.key, value=value)),
                    )
                )
    if app.source.supports("pace"):
        for pace in reversed(PACES):
            found.append(
                Entry(f"Pace: {format_pace(pace)}", "keys < >", partial(app.set_pace, pace))
            )
    for row in shown_rows():
        if row.keys and row.footer and app.applies(row):
            binding = Binding(row.keys[0], row.action(row.keys[0]))
            key = app.get_key_display(binding)
            found.append(Entry(row.help, f"key {key}", partial(app.run_action, binding.action)))
    return found


def _preset_entries(app: BpmonApp) -> list[Entry]:
    found = []
    for path in available().values():
        try:
            preset = load_file(path)
        except BpmonError:
            continue  # a broken preset file is for `bpmon --preset` to report, not the palette
        found.append(
            Entry(
                # A preset file may come from elsewhere: its text is shown, never sent.
                f"Preset: {printable(preset.name)}",
                printable(preset.description),
                partial(app.send, Command("restart", config=preset.config, value=preset.name)),
            )
        )
    return found
