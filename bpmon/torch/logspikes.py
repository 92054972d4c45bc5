"""What a run file's line gets besides its due update's figures: the numbers the script logs
(:meth:`LoggedAndSpikes.log`, and a line that waited for them, filled), and the spikes scored
in the line's series of every update (:mod:`bpmon.torch.spikes`).

:class:`LoggedAndSpikes` holds no state of its own: :class:`~bpmon.torch.monitor.Monitor` sets
every attribute declared here in its ``__init__``.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from bpmon.codec import encode_fields
from bpmon.runmodel import Snapshot
from bpmon.torch.logged import PANEL, Logged
from bpmon.torch.record import put_logged
from bpmon.torch.series import Series
from bpmon.torch.spikes import RANGE, Scorer, spike_record
from bpmon.torch.updates import Updates


class LoggedAndSpikes(Updates):
    _logged: Logged
    _series: Series
    _scorer: Scorer
    _burst_until: int
    _dtype: torch.dtype
    _tensor_rows: list[int]
    layer_names: tuple[str, ...]
    # A line that went out (or waits) before its series was scored: the line, its first
    # update, its losses and gradient norms.
    _unscored: tuple[dict[str, Any], int, list[float], list[float]] | None

    def log(
        self,
        *,
        loss: object = None,
        accuracy: object = None,
        test_accuracy: object = None,
        lr: object = None,
        epoch: object = None,
        **metrics: object,
    ) -> None:
        """Give the loss panel its figures, and any other number by name (``val_loss=``,
        ``tokens_per_s=``: the line's ``metrics``); call it at any step, with any of them. A
        tensor is kept (detached), not read: it is read on the next due update only. Values left
        out keep their last logged value; ``lr`` defaults to the first param group's. A value
        that is not a number is recorded as null, with one warning: never an exception."""
        if self._closed:
            return
        for key, value in zip(PANEL, (loss, accuracy, test_accuracy, lr), strict=True):
            self._logged.put(key, value)
        for key, value in metrics.items():
            self._logged.put(key, value)
        self._logged.put_epoch(epoch)
        if loss is not None:
            self._series.log(self.steps, self._logged.values["loss"])
        self._logged_since_update = True
        if self._out.pending is not None:
            # The due update's line waited for this (a loop that logs after its update).
            self._fill(self._out.pending)

    def _score_unscored(self, into: dict[str, Any]) -> None:
        if self._unscored is not None:
            _, first, losses, norms = self._unscored
            self._unscored = None
            self._score(into, first, losses, norms)

    def _score(
        self, record: dict[str, Any], first: int, losses: list[float], norms: list[float]
    ) -> None:
        """Score the series of updates ``first`` on (:mod:`bpmon.torch.spikes`); a spike makes
        every update due until ``K`` after it; a spike whose ``K`` after have been scored goes
        into ``record``."""
        burst = self._burst_until
        for i, (loss, norm) in enumerate(zip(losses, norms, strict=True)):
            opened = self._scorer.feed(first + i, loss, norm)
            if opened is not None:
                self._burst_until = max(self._burst_until, opened.until)
        self._put_spikes(record, self._scorer.complete())
        if self._burst_until != burst and not self._closed:
            self._arm(self._due(self.steps + 1))

    def _put_spikes(self, record: dict[str, Any], done: list[Any]) -> None:
        """The spikes ``done`` into ``record``, each with its rows' norms around it (read back
        here: one transfer, only on a line that carries a spike)."""
        if not done:
            return
        K, L = self._scorer.context, len(self._layers)
        spikes = []
        for spike in done:
            got = self._series.norms_of(spike.step - K - RANGE, spike.step)
            start, rows = spike.step, []
            if got is not None:
                start, tensor = got
                for per in tensor.tolist():
                    sq = [0.0] * L
                    for r, x in zip(self._tensor_rows, per, strict=True):
                        sq[r] += x * x
                    rows.append([math.sqrt(v) for v in sq])
            spikes.append(
                spike_record(spike, self.layer_names, rows, start, K, self._scorer.sigmas)
            )
        earlier = tuple(record.get("spikes") or ())
        record["spikes"] = [*earlier, *encode_fields(Snapshot, spikes=tuple(spikes))["spikes"]]

    def _fill(self, record: dict[str, Any]) -> None:
        """Put the logged values into a waiting line: tensors read with one ``tolist()``."""
        keys, tensors = self._logged.tensors()
        if tensors:
            flat = torch.cat([t.reshape(1).to(self._rn.device, self._dtype) for t in tensors])
            self._logged.settle(dict(zip(keys, flat.tolist(), strict=True)))
        put_logged(record, self._logged)
        if self._unscored is not None and self._unscored[0] is record:
            # The loss of the line's own update, logged after it: the series is complete.
            _, first, losses, _ = self._unscored
            held = self._series.losses.pop(first + len(losses) - 1, None)
            if held is not None:
                value = self._logged.values.get("loss", math.nan)
                losses[-1] = value if isinstance(value, float) else math.nan
                record.update(encode_fields(Snapshot, update_losses=tuple(losses)))
                self._score_unscored(record)
