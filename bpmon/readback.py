"""What the lines of a run file mean, read back: each line decoded into the run model, what each
run of the file is (its header or restart event), and the findings of a file that does not
record them.

The bytes (lines, their limits, following a growing file) are :mod:`bpmon.sources`' business;
this module starts from a parsed JSON object and never raises anything but
:class:`~bpmon.codec.DecodeError` for a line that does not fit the model, which the reader
counts as a corrupt line.

Findings: a version 2 file from bpmon records on every snapshot line the findings the live
diagnosis held then, and the reader shows those. A file without them (version 1, another
writer, the PyTorch bridge) gets one :class:`FindingsPass`: the live :class:`Diagnosis`, with
its hysteresis, fed the snapshots in file order as they are read, so that each snapshot shows
what a live monitor would have raised by then; never the rules applied afresh at the cursor with
the whole run's curve.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from bpmon.codec import DecodeError, field_reader, from_record
from bpmon.config import RunConfig, Thresholds
from bpmon.diagnosis import Diagnosis
from bpmon.runmodel import End, Finding, Header, LayerStats, LossHistory, Restart, Snapshot

Line = Snapshot | Restart | End


def decode_line(record: dict[str, Any]) -> Line | None:
    """One parsed line after the header: a snapshot, a restart or an end event; None for an
    event a later version added (not for this reader). :class:`DecodeError` when a value does
    not fit its field."""
    event = record.get("event")
    if event is None:
        if "format" in record:
            raise DecodeError("", "a second run's header inside the file")
        return from_record(Snapshot, record)
    if event == "end":
        return from_record(End, record)
    if event == "restart":
        return from_record(Restart, record)
    if not isinstance(event, str):
        raise DecodeError("event", "expected a string")
    return None


class Peek(NamedTuple):
    """What a scan over a long file needs of a snapshot line: its place on the loss curve."""

    run_id: int
    step: int
    loss: float


_RUN_ID = field_reader(Snapshot, "run_id")
_STEP = field_reader(Snapshot, "step")
_LOSS = field_reader(Snapshot, "loss")


def peek_line(record: dict[str, Any]) -> Line | Peek | None:
    """:func:`decode_line`, but of a snapshot line only its :class:`Peek` (checked as fully);
    the rest is decoded when the line is shown or diagnosed."""
    if "event" in record or "format" in record:
        return decode_line(record)
    return Peek(
        _RUN_ID(record.get("run_id", 0)), _STEP(record.get("step", 0)), _LOSS(record.get("loss"))
    )


@dataclass(frozen=True)
class RunInfo:
    """What one run of a file is, from the header (the first run) or its restart event: the
    fields of a snapshot that its lines do not repeat."""

    name: str = ""
    architecture: str = ""
    switches: str = ""
    epochs: int | None = None
    classes: tuple[str, ...] = ()
    thresholds: Thresholds = field(default_factory=Thresholds)
    config: RunConfig | None = None
    notes: tuple[str, ...] = ()
    # Each layer's kind by name ("Linear"), from the header's or the restart's descriptions.
    kinds: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of_header(cls, head: Header, fallback_name: str) -> RunInfo:
        architecture = head.architecture
        if not architecture and head.layers:
            sizes = [head.layers[0].fan_in, *(x.fan_out for x in head.layers)]
            architecture = "-".join(str(s) for s in sizes)
        return cls(
            name=head.name or fallback_name,
            architecture=architecture,
            switches=head.switches or architecture,
            epochs=head.epochs,
            classes=head.classes,
            thresholds=head.thresholds,
            config=head.config,
            notes=head.notes,
            kinds={x.name: x.kind for x in head.layers if x.kind},
        )

    def after(self, restart: Restart) -> RunInfo:
        """The next run's: what the restart says, the rest as before (a version 1 restart
        carries no classes)."""
        return replace(
            self,
            architecture=restart.architecture or self.architecture,
            switches=restart.switches or restart.architecture or self.switches,
            epochs=restart.epochs,
            classes=restart.classes or self.classes,
            config=restart.config if restart.config is not None else self.config,
            notes=restart.notes or self.notes,
            kinds={x.name: x.kind for x in restart.layers if x.kind} or self.kinds,
        )

    def kinded(self, layers: tuple[LayerStats, ...]) -> tuple[LayerStats, ...]:
        """``layers`` with the kind the header says for each."""
        kinds = self.kinds
        if not kinds:
            return layers
        return tuple(replace(x, kind=kinds.get(x.name, x.kind)) for x in layers)

    def context(self) -> dict[str, Any]:
        """The snapshot fields this run's lines leave out, for :func:`bpmon.codec.from_record`
        or :func:`dataclasses.replace`."""
        return {
            "preset": self.name,
            "architecture": self.architecture,
            "switches": self.switches,
            "epochs": self.epochs,
            "classes": self.classes,
            "thresholds": self.thresholds,
            "config": self.config,
            "notes": self.notes,
        }


def change(before: RunInfo, after: RunInfo) -> str:
    """What a restart changed, in a few words: ``"activation relu → tanh"``; the settings that
    differ when both runs carry their configuration, else the switches."""
    if before.config is not None and after.config is not None:
        old, new = _flat(dataclasses.asdict(before.config)), _flat(dataclasses.asdict(after.config))
        parts = [
            f"{key} {_word(old.get(key))} → {_word(new.get(key))}"
            for key in new
            if old.get(key) != new.get(key)
        ]
        if parts:
            return ", ".join(parts[:3]) + (" …" if len(parts) > 3 else "")
    if before.switches != after.switches:
        return f"{before.switches} → {after.switches}"
    return "the same settings"


def _flat(tables: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for table in tables.values():
        if isinstance(table, dict):
            for key, value in table.items():
                out.setdefault(key, value)
    return out


def _word(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "-".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


class FindingsPass:
    """The live diagnosis run once over a file's snapshots in file order (see the module
    docstring). Each snapshot's findings are kept as an index into :attr:`sets`, the distinct
    sets seen, so that a file of millions of lines costs four bytes a line."""

    def __init__(self) -> None:
        self._diagnosis = Diagnosis()
        self._history = LossHistory()
        self._run: int | None = None
        self.sets: list[tuple[Finding, ...]] = [()]
        self._index: dict[tuple[Finding, ...], int] = {(): 0}
        self._last = 0

    def add(self, snap: Snapshot) -> int:
        """Feed the next snapshot of the file; the index of the findings standing after it."""
        return self._diagnose(replace(snap, **self._curve(snap.run_id, snap.step, snap.loss)))

    def add_record(self, record: dict[str, Any]) -> int:
        """:meth:`add` of a snapshot line not decoded yet: decoded once, with the curve, which
        a file of many lines must not copy the snapshot for. A line that does not decode
        leaves the findings as they stand (its line is counted corrupt where it is shown)."""
        try:
            peek = peek_line(record)
            if not isinstance(peek, Peek):
                return self._last
            curve = self._curve(peek.run_id, peek.step, peek.loss)
            snap = from_record(Snapshot, record, curve)
        except DecodeError:
            return self._last
        return self._diagnose(snap)

    def _curve(self, run_id: int, step: int, loss: float) -> dict[str, Any]:
        if run_id != self._run:
            self._run = run_id
            self._history = LossHistory()
        self._history.add(step, loss)
        # The rules read the run's loss curve as the live trainer keeps it: bounded, thinned.
        return {
            "loss_steps": tuple(self._history.steps),
            "loss_values": tuple(self._history.values),
        }

    def _diagnose(self, snap: Snapshot) -> int:
        found = self._diagnosis.add(snap)
        index = self._index.get(found)
        if index is None:
            index = self._index[found] = len(self.sets)
            self.sets.append(found)
        self._last = index
        return index
