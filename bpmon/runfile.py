"""The run file: the one format between processes and machines (format ``bpmon-run``, version 1).

JSON Lines, UTF-8, one object a line, each line flushed as it is written, so that a reader
following the file (``bpmon watch``) or a run killed halfway leaves a file whose every complete
line is readable. Numbers that are not finite are written as ``null`` (JSON has no NaN).

- Line 1, the header: ``{"format": "bpmon-run", "version": 1, "source": "bpmon" | "torch",
  "name", "started" (ISO 8601, UTC), "host", "pid", "layers": [{"name", "kind", "shape",
  "fan_in", "fan_out", "activation"}], "thresholds": {...}, "architecture", "switches",
  "epochs", "classes", "config"}``; ``config`` (bpmon's own runs only) is the whole run
  configuration, so a recorded run can be run again.
- Then one line per snapshot: ``{"step", "epoch", "time" (seconds since "started"), "loss",
  "accuracy", "test_accuracy", "lr", "state", "run_id", "layers": [{per-layer telemetry,
  "status"}], "predictions": [...] (optional), "diverged_step", "diverged_layer"}``.
- A restart inside the same file (a key in the monitor) is an event line ``{"event": "restart",
  "run_id", "architecture", "switches", "layers", "config"}``; the snapshot lines after it
  belong to the new run.
- When the writer ends on purpose, a last line ``{"event": "end", "state": "finished" |
  "diverged" | "interrupted" | "stopped" | "error"}``.

The JSON Schema of every line is ``bpmon/schema/run-v1.schema.json``; the tests validate each
writer's output against it. Version 1 files must keep loading: readers accept any version up to
:data:`VERSION` and refuse newer ones with one clear line.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import json
import math
import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Protocol

from bpmon.config import RunConfig, Thresholds
from bpmon.errors import BpmonError
from bpmon.telemetry import LayerStats

if TYPE_CHECKING:
    from bpmon.trainer import Snapshot


class TextSink(Protocol):
    def write(self, text: str, /) -> object: ...

    def flush(self) -> object: ...


FORMAT = "bpmon-run"
VERSION = 1
END_STATES = ("finished", "diverged", "interrupted", "stopped", "error")


def num(x: float | None) -> float | None:
    """JSON has no NaN or Infinity: non-finite numbers become null."""
    return None if x is None or not math.isfinite(x) else float(x)


def denum(x: Any) -> float:
    """The inverse of :func:`num`: null (or anything not a number) reads back as NaN."""
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else math.nan


def layer_record(layer: LayerStats) -> dict[str, Any]:
    """One layer of a snapshot line: every :class:`LayerStats` field, NaN as null, but its
    ``kind``, which the header's layer descriptions say once."""
    return {
        k: (num(v) if isinstance(v, float) else v)
        for k, v in dataclasses.asdict(layer).items()
        if k != "kind"
    }


def layer_from_record(record: Mapping[str, Any]) -> LayerStats:
    """A :class:`LayerStats` back from :func:`layer_record`'s dict; missing figures are NaN."""
    status = record.get("status", "healthy")
    return LayerStats(
        name=str(record.get("name", "?")),
        fan_in=int(record.get("fan_in") or 0),
        fan_out=int(record.get("fan_out") or 0),
        grad_norm=denum(record.get("grad_norm")),
        bias_grad_norm=denum(record.get("bias_grad_norm")),
        weight_norm=denum(record.get("weight_norm")),
        update_ratio=denum(record.get("update_ratio")),
        delta_norm=denum(record.get("delta_norm")),
        health=denum(record.get("health")) if record.get("health") is not None else 0.0,
        health_label=str(record.get("health_label") or ""),
        status=status
        if status in ("vanishing", "healthy", "exploding", "nonfinite")
        else "healthy",
        activation=record.get("activation"),
    )


def header(
    *,
    source: str,
    name: str,
    layers: list[dict[str, Any]],
    thresholds: Thresholds,
    architecture: str,
    switches: str,
    epochs: int | None = None,
    classes: tuple[str, ...] = (),
    config: RunConfig | None = None,
    started: float | None = None,
) -> dict[str, Any]:
    """The first line of a run file."""
    started = time.time() if started is None else started
    return {
        "format": FORMAT,
        "version": VERSION,
        "source": source,
        "name": name,
        "started": datetime.datetime.fromtimestamp(started, datetime.UTC).isoformat(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "layers": layers,
        "thresholds": dataclasses.asdict(thresholds),
        "architecture": architecture,
        "switches": switches,
        "epochs": epochs,
        "classes": list(classes),
        "config": None if config is None else config_record(config),
    }


def config_record(config: RunConfig) -> dict[str, Any]:
    """A :class:`RunConfig` as the preset tables it came from (tuples as lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))  # type: ignore[no-any-return]


def config_from_record(record: Mapping[str, Any], source: str) -> RunConfig:
    """The :class:`RunConfig` of a header's ``config``, through the one validation."""
    from bpmon.presets import parse_tables

    return parse_tables(record, source)


class RunWriter:
    """Writes a run file line by line, each line flushed as it is written.

    Any failure to write is an :class:`OSError` (or whatever ``stream`` raises) the caller
    reports, naming the file; lines already written stay whole, since each is one ``write`` of
    a complete line followed by a flush. ``stream`` is anything with ``write(str)`` and
    ``flush()``: a file opened for appending, a pipe, the CLI's ``--record`` file.
    """

    def __init__(self, stream: TextSink, name: str) -> None:
        self.stream = stream
        self.name = name
        self.started = time.time()
        self._header_written = False
        self._ended = False

    def write(self, record: Mapping[str, Any]) -> None:
        self.stream.write(json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n")
        self.stream.flush()

    def write_header(self, record: Mapping[str, Any]) -> None:
        self.write(record)
        self._header_written = True

    def end(self, state: str) -> None:
        """The end line; written once."""
        if self._ended:
            return
        self._ended = True
        self.write({"event": "end", "state": state})


# -- reading --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One complete line of a run file: its 1-based number and its parsed object, or None when
    it is not valid JSON (a corrupt line, counted and skipped by readers)."""

    number: int
    record: dict[str, Any] | None


def check_header(record: Any, path: str) -> dict[str, Any]:
    """``record`` if it is a run-file header this version of bpmon can read; else one clear
    :class:`BpmonError`."""
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise BpmonError(
            f'{path}:1: not a bpmon run file (its first line has no "format": "{FORMAT}")'
        )
    version = record.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BpmonError(f"{path}:1: version = {version!r}: expected a positive integer")
    if version > VERSION:
        raise BpmonError(
            f"{path}:1: run file version {version} is newer than this bpmon reads "
            f"(up to {VERSION}); upgrade bpmon"
        )
    return record


def parse_line(text: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


def iter_lines(stream: IO[bytes], first_number: int = 1) -> Iterator[Line]:
    """The complete lines of ``stream`` from its position; a last line without its newline is
    not complete (its writer is still writing it) and is not returned."""
    number = first_number
    for raw in stream:
        if not raw.endswith(b"\n"):
            return
        yield Line(number, parse_line(raw))
        number += 1


# -- bpmon's own runs ------------------------------------------------------------------------------


def snapshot_record(snap: Snapshot, started: float, predictions: bool = True) -> dict[str, Any]:
    """One snapshot line for a snapshot of bpmon's trainer."""
    record: dict[str, Any] = {
        "step": snap.step,
        "epoch": snap.epoch,
        "time": round(time.time() - started, 4),
        "loss": num(snap.loss),
        "accuracy": num(snap.accuracy),
        "test_accuracy": num(snap.test_accuracy),
        "lr": num(snap.lr),
        "state": snap.state,
        "run_id": snap.run_id,
        "layers": [layer_record(layer) for layer in snap.layers],
        "diverged_step": snap.diverged_step,
        "diverged_layer": snap.diverged_layer,
    }
    if predictions and snap.predictions:
        record["predictions"] = [
            {
                "input": [num(v) for v in p.inputs],
                "target": p.target,
                "output": [num(v) for v in p.output],
                "predicted": p.predicted,
                "correct": p.correct,
            }
            for p in snap.predictions
        ]
    return record


def layer_descriptions(snap: Snapshot) -> list[dict[str, Any]]:
    """The header's ``layers`` for a snapshot of bpmon's trainer: its Dense layers."""
    config = snap.config
    sizes = [int(s) for s in snap.architecture.split("-")]
    activations = () if config is None else config.model.activations
    return [
        {
            "name": f"layer{i}",
            "kind": "Dense",
            "shape": [fan_in, fan_out],
            "fan_in": fan_in,
            "fan_out": fan_out,
            "activation": activations[i] if i < min(len(sizes) - 2, len(activations)) else None,
        }
        for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes))
    ]


class Recorder:
    """Turns the snapshots of bpmon's trainer into run-file lines: the header before the
    first, a restart event when the run changes, one line per snapshot, the end line at
    :meth:`close`. Call it with each snapshot (it is the trainer's ``on_snapshot``)."""

    def __init__(self, writer: RunWriter) -> None:
        self.writer = writer
        self._run_id: int | None = None
        self._last_state = "running"
        # The trainer's thread writes snapshots while the consumer's closes the file: a snapshot
        # that arrives after the end line is dropped, never written after it.
        self._lock = threading.Lock()
        self._closed = False

    def __call__(self, snap: Snapshot) -> None:
        with self._lock:
            if not self._closed:
                self._write(snap)

    def _write(self, snap: Snapshot) -> None:
        if self._run_id is None:
            self.writer.write_header(
                header(
                    source="bpmon",
                    name=snap.preset,
                    layers=layer_descriptions(snap),
                    thresholds=snap.thresholds,
                    architecture=snap.architecture,
                    switches=snap.switches,
                    epochs=snap.epochs,
                    classes=snap.classes,
                    config=snap.config,
                    started=self.writer.started,
                )
            )
        elif snap.run_id != self._run_id:
            self.writer.write(
                {
                    "event": "restart",
                    "run_id": snap.run_id,
                    "architecture": snap.architecture,
                    "switches": snap.switches,
                    "epochs": snap.epochs,
                    "layers": layer_descriptions(snap),
                    "config": None if snap.config is None else config_record(snap.config),
                }
            )
        self._run_id = snap.run_id
        self._last_state = snap.state
        self.writer.write(snapshot_record(snap, self.writer.started))

    def close(self, interrupted: bool = False) -> None:
        """Write the end line: the run's last state, or ``interrupted``."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._run_id is not None:
                self._end(interrupted)

    def _end(self, interrupted: bool) -> None:
        state = self._last_state
        if interrupted:
            state = "interrupted"
        elif state in ("running", "paused"):
            state = "stopped"
        self.writer.end(state)
