"""One due update's line: the figures measured on the device read back with one transfer and
put in the run file's form (see :mod:`bpmon.runfile`)."""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from bpmon.codec import encode_fields, to_record
from bpmon.config import Thresholds
from bpmon.runmodel import LayerStats, Snapshot
from bpmon.telemetry import classify
from bpmon.torch.layers import Layer
from bpmon.torch.logged import PANEL, Logged, as_float

# Clipping's share is taken over this many of the most recent updates that clipped.
RECENT_CLIPS = 50
_LABELS = {
    "sigmoid": "saturated",
    "tanh": "saturated",
    "relu": "dead",
    "leaky_relu": "dead",
    "gelu": "dead",
}


@dataclass
class Clipping:
    """What ``clip_grad_norm_``/``clip_grad_value_`` did: on this update (the limit, and the
    returned pre-clip total of ``clip_grad_norm_`` or, on a due update, the norm after
    ``clip_grad_value_``), and on recent ones (tensors, read at the next due update)."""

    limit: float | None = None
    total: torch.Tensor | None = None  # clip_grad_norm_'s returned pre-clip norm
    after: torch.Tensor | None = None  # clip_grad_value_: the global norm after it (due only)
    recent: collections.deque[torch.Tensor | tuple[torch.Tensor, float]] = field(
        default_factory=lambda: collections.deque(maxlen=RECENT_CLIPS)
    )

    # The previous update's limit and returned total, for a last line written after it.
    previous: tuple[float | None, torch.Tensor | None] = (None, None)

    def reset(self) -> None:
        self.previous = (self.limit, self.total)
        self.limit, self.total, self.after = None, None, None

    def figures(self, pre_total: torch.Tensor, dt: torch.dtype) -> list[torch.Tensor]:
        """``[clip_max, clip_factor, clipped_share]`` as 1-element tensors (NaN: none)."""
        dev = pre_total.device
        nan = torch.full((1,), math.nan, dtype=dt, device=dev)
        if self.limit is None:
            factor, limit = nan, nan
        else:
            limit = torch.full((1,), float(self.limit), dtype=dt, device=dev)
            if self.total is not None:
                total = self.total.detach().reshape(1).to(dev, dt)
                factor = torch.clamp(limit / (total + 1e-6), max=1.0)
            elif self.after is not None:
                after = self.after.reshape(1).to(dev, dt)
                factor = torch.where(pre_total > 0, after / pre_total, torch.ones_like(after))
            else:
                factor = nan
        if not self.recent:
            return [limit, factor, nan]
        scaled = []
        for entry in self.recent:
            if isinstance(entry, tuple):
                t, m = entry
                scaled.append((m / (t.detach().reshape(()).to(dev, dt) + 1e-6)) < 1)
            else:
                scaled.append(entry.reshape(()).to(dev) < 1)
        share = torch.stack(scaled).to(dt).mean().reshape(1)
        return [limit, factor, share]


def lr_tensors(lrs: Sequence[object], dev: torch.device, dt: torch.dtype) -> list[torch.Tensor]:
    out = []
    for lr in lrs:
        if isinstance(lr, torch.Tensor):
            out.append(lr.detach().reshape(1).to(dev, dt))
        else:
            x = as_float(lr)
            out.append(torch.full((1,), math.nan if x is None else x, dtype=dt, device=dev))
    return out


def build(
    n: int,
    layers: Sequence[Layer],
    thresholds: Thresholds,
    started: float,
    parts: dict[str, torch.Tensor],
    notes: Sequence[str],
    activations: Sequence[str | None],
    logged: Logged,
    clipped: bool,
    extra: dict[str, list[float]] | None = None,
) -> dict[str, Any]:
    """The line of update ``n`` from ``parts`` (each a 1-D tensor on one device: ``grads``
    ``2L + 1``, ``weights``, ``deltas``, ``health`` ``L``; ``clip`` 3; ``lrs``; ``logged``),
    ``activations`` each row's (its module's, or the function found after it),
    read back with one ``tolist()``. Any other part (the per-update series) is read in the same
    transfer and its values put in ``extra`` under its name."""
    L = len(layers)
    keys, tensors = logged.tensors()
    order = ["grads", "weights", "deltas", "health", "clip", "lrs"]
    order += [k for k in parts if k not in order]
    flat = torch.cat([parts[k] for k in order] + [t.reshape(1).to(parts["grads"]) for t in tensors])
    values: list[float] = flat.tolist()  # the one read-back of this update
    at = 0
    got: dict[str, list[float]] = {}
    for k in order:
        got[k] = values[at : at + parts[k].numel()]
        at += parts[k].numel()
    if extra is not None:
        extra.update((k, got[k]) for k in order[6:])
    logged.settle(dict(zip(keys, values[at:], strict=True)))
    g, gb, total = got["grads"][:L], got["grads"][L : 2 * L], got["grads"][2 * L]
    wn, dn, hl = got["weights"], got["deltas"], got["health"]
    matrix = [i for i, row in enumerate(layers) if not row.vector]
    profile = classify([g[i] for i in matrix], thresholds)
    statuses: list[str] = ["nonfinite" if not math.isfinite(x) else "healthy" for x in g]
    for i, s in zip(matrix, profile, strict=True):
        statuses[i] = s
    stats = []
    for i, row in enumerate(layers):
        act = activations[i]
        has_health = act is not None and math.isfinite(hl[i])
        stats.append(
            LayerStats(
                name=row.name,
                fan_in=row.fan_in,
                fan_out=row.fan_out,
                grad_norm=g[i],
                bias_grad_norm=gb[i],
                weight_norm=wn[i],
                # As bpmon.telemetry: ||update|| / ||W||, NaN when W is zero or unknown.
                update_ratio=dn[i] / wn[i] if wn[i] > 0 else math.nan,
                delta_norm=math.nan,
                health=hl[i] if has_health else 0.0,
                health_label=_LABELS.get(act or "", "") if has_health else "",
                status=statuses[i],  # type: ignore[arg-type]
                activation=act,
                params=row.params,
                note=notes[i],
            )
        )
    clip_max, clip_factor, share = got["clip"]
    line = Snapshot(
        step=n,
        elapsed=round(time.time() - started, 4),
        layers=tuple(stats),
        lrs=tuple(got["lrs"]),
        grad_norm_total=total,
        clip_max=clip_max if clipped else None,
        clip_factor=clip_factor if clipped else None,
        clipped_share=share,
    )
    # The bridge runs no diagnosis: its lines leave the findings out, and a reader diagnoses
    # them in file order (bpmon.readback).
    record = to_record(line, omit=("findings",))
    put_logged(record, logged)
    return record


def put_logged(record: dict[str, Any], logged: Logged) -> None:
    """The logged floats into ``record`` through the codec: the panel's figures as their
    fields (``lr`` defaults to the first param group's, read before the step), every other
    name under ``metrics``."""
    panel: dict[str, float] = {}
    metrics: list[tuple[str, float]] = []
    for key, value in logged.values.items():
        x = as_float(value)
        if x is None:
            continue
        if key in PANEL:
            panel[key] = x
        else:
            metrics.append((key, x))
    if "lr" not in panel and record.get("lrs"):
        first = record["lrs"][0]
        panel["lr"] = math.nan if first is None else first
    record.update(encode_fields(Snapshot, epoch=logged.epoch, metrics=tuple(metrics), **panel))
