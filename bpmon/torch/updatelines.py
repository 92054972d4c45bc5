"""The line of an update: a due update's figures, read back in one transfer and written (or
held for the loss a loop logs after its update), and at the end the line of a last update that
was not due, from what is still known of it (see :mod:`bpmon.torch.monitor` for when each
figure is taken).

:class:`UpdateLines` holds no state of its own: :class:`~bpmon.torch.monitor.Monitor` sets every
attribute declared here in its ``__init__``.
"""

from __future__ import annotations

import math

import torch

from bpmon.codec import encode_fields
from bpmon.config import Thresholds
from bpmon.runmodel import Snapshot
from bpmon.torch import distributed
from bpmon.torch.forward import Activations
from bpmon.torch.logspikes import LoggedAndSpikes
from bpmon.torch.measure import weight_norms
from bpmon.torch.record import build, lr_tensors


class UpdateLines(LoggedAndSpikes):
    thresholds: Thresholds
    _acts: Activations
    _shards: distributed.Shards | None  # how the rows are sharded (FSDP2), else None
    _after: bool  # the loop logs after its update (seen at each due update)

    def _measure_update(self, n: int, skipped: bool, last: bool = False) -> None:
        """Update ``n``'s line. ``last``: the run ends after this update, which was not due
        (:meth:`_write_last`): no activation, no update ratio, written at once."""
        L, dev, dt = len(self._layers), self._rn.device, self._dtype
        grads = self._grad_norms
        self._grad_norms = None
        if grads is None:
            grads = torch.full((2 * L + 1,), math.nan, dtype=dt, device=dev)
        nan = torch.full((), math.nan, dtype=dt, device=dev)
        health = [nan if h is None or last else h.to(dev, dt) for h in self._acts.health]
        weights = weight_norms(self._rn)
        if last:
            deltas = torch.full((L,), math.nan, dtype=dt, device=dev)
        else:
            deltas = self._copies.take_deltas(keep_buffers=self._due(n + 1))
        if self._shards is not None:
            grads, weights, deltas = distributed.whole_norms(
                self._shards, len(self._layers), grads, weights, deltas
            )
        parts = {
            "grads": grads,
            "weights": weights,
            "deltas": deltas,
            "health": torch.stack(health),
            "clip": torch.cat(self._clip.figures(grads[-1:], dt)),
            "lrs": torch.cat(lr_tensors(self._lrs, dev, dt) or [grads[:0]]),
        }
        # The updates since the previous line: their global norms and losses, in the same read.
        # Whether the loop logs after its update is seen on a due update; a last line keeps
        # what the lines before it found.
        after = self._after if last else not self._logged_since_update
        self._after = after
        first, self._series.written = self._series.written + 1, n
        losses, where, tensors = self._series.loss_slots(first, n, after)
        parts["series_g"] = self._series.grad_norms(first, n)
        if tensors:
            parts["series_l"] = torch.cat([t.reshape(1).to(dev, dt) for t in tensors])
        extra: dict[str, list[float]] = {}
        record = build(
            n,
            self._layers,
            self.thresholds,
            self._out.writer.started,
            parts,
            [""] * L if last else self._acts.notes(),
            self._acts.activations(),
            self._logged,
            self._clip.limit is not None,
            extra,
        )
        for i, x in zip(where, extra.get("series_l", ()), strict=True):
            losses[i] = x
        norms = extra["series_g"]
        record.update(encode_fields(Snapshot, update_start=first, update_grad_norms=tuple(norms)))
        if after or any(x == x for x in losses):  # a loop that logs no loss writes none
            record.update(encode_fields(Snapshot, update_losses=tuple(losses)))
        self._lrs = []
        self._score_unscored(record)  # a line that went out without its loss
        if last:
            self._score(record, first, losses, norms)
            self._put_spikes(record, self._scorer.complete(final=True))
            self._out.write(record)
        elif not after:
            self._score(record, first, losses, norms)
            self._out.write(record)
        else:
            # Nothing logged since the last update: the loop logs after its update (or not at
            # all). The line waits for the next log(), at most until the next update; its
            # last loss, and so its spikes, with it.
            self._unscored = (record, first, losses, norms)
            self._out.pending = record

    def _write_last(self) -> None:
        """At the end, a line for the last update when it was not due, so that the updates
        after the last due one are not lost (a run shorter than ``every`` would be one line):
        its gradients' norms from the series' ring, the weights as they are now, and every
        update's loss and gradient norm since the previous line. Its activations and update
        ratio are taken only on a due update and are unknown here."""
        n = self.steps
        if n <= self._series.written or self._out.pending is not None:
            return
        per = next((t for m, t in reversed(self._series.ring) if m == n), None)
        if per is None:
            # Not kept (update_norms=False, sharded parameters): the gradients may be zeroed
            # by now, and a line of unknown norms would read as non-finite.
            return
        self._grad_norms = self._rn.rows_from(per)
        self._clip.limit, self._clip.total = self._clip.previous
        self._measure_update(n, skipped=False, last=True)
