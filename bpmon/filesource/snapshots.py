"""The snapshot a run file's source hands the monitor: the line at the cursor (or the last one),
with its run's curve, findings, mode, detail and message; built only when what it shows changed."""

from __future__ import annotations

import os
from dataclasses import replace

from bpmon.filesource.curve import PENDING, RECORDED
from bpmon.filesource.decode import LineDecoding
from bpmon.filesource.replay import ReplayPosition
from bpmon.metrichistory import Series
from bpmon.readback import change
from bpmon.runmodel import Finding, LayerStats, Snapshot


class SnapshotBuilding(ReplayPosition, LineDecoding):
    def _publish(self) -> None:
        """Build a new snapshot only when what it shows has changed, so that an idle replay
        hands the monitor the same object and nothing redraws."""
        with self._lock:
            quiet = int(self._clock() - self._last_arrival) if self.mode == "watch" else 0
            key = (
                self._offset,
                self._cursor.index,
                self._cursor.playing,
                self._cursor.speed,
                self._ended,
                self._corrupt,
                self._error,
                self._backfilled,
                quiet if quiet >= self._liveness.quiet_after() else 0,
                len(self._run_order),
            )
            if key == self._published_key:
                return
            self._published_key = key
            self._latest = self._build()

    def _build(self) -> Snapshot:
        located = self._locate()
        if located is None or self._last is None:
            return self._waiting_snapshot()
        run_id, curve, index = located
        snap = self._last
        if index is not None:
            snap = self._snapshot_at(curve.offsets[index]) or snap
        at = len(curve.findings) - 1 if index is None else index
        recorded = curve.findings[at] if at >= 0 else PENDING
        findings: tuple[Finding, ...] = ()
        if recorded == RECORDED:
            findings = snap.findings
        elif recorded >= 0:
            findings = self._pass.sets[recorded]
        steps, losses = curve.thinned()
        previous: tuple[tuple[int, ...], tuple[float, ...]] = ((), ())
        order = self._run_order.index(run_id)
        if order > 0:
            previous = self._curves[self._run_order[order - 1]].thinned()
        return replace(
            snap,
            **curve.info.context(),
            run_id=run_id,
            loss_steps=steps,
            loss_values=losses,
            previous_loss_steps=previous[0],
            previous_loss_values=previous[1],
            layers=curve.info.kinded(snap.layers),
            initial_layers=curve.info.kinded(curve.first_layers),
            findings=findings,
            message=self._message() or snap.message,
            mode=self._mode_word(),
            detail=self._detail(order, index),
            marker_step=None if index is None else curve.steps[index],
        )

    def layer_history(self, limit: int) -> list[tuple[int, tuple[LayerStats, ...]]]:
        """The shown run's layers at up to ``limit`` of its snapshots, evenly spread, up to
        the replay's cursor (to the last one read, when following), the cursor's own last:
        what the monitor's gradient-flow map shows. Lines once decoded are kept (as layers)."""
        with self._lock:
            located = self._locate()
            if located is None or limit <= 0:
                return []
            _, curve, index = located
            end = len(curve.offsets) if index is None else index + 1
            # A stride that changes only when the run doubles: most picks stay decoded.
            stride = 1
            while end > stride * limit:
                stride *= 2
            picks = [*range(0, end - 1, stride), end - 1] if end else []
            offsets = [curve.offsets[i] for i in picks]
        out = []
        for offset in offsets:
            item = self._decoded.get(offset)
            if item is None:
                snap = self._snapshot_at(offset)
                if snap is None:
                    continue
                item = (snap.step, curve.info.kinded(snap.layers))
                if len(self._decoded) > 4096:
                    self._decoded.clear()
                self._decoded[offset] = item
            out.append(item)
        return out

    def _mode_word(self) -> str:
        if self.mode == "replay":
            return "REPLAY"
        return "WATCHING" if self._ended is None else f"ENDED ({self._ended})"

    def _detail(self, order: int, index: int | None) -> str:
        parts = []
        if self.mode == "replay":
            total = self._snapshot_count()
            cursor = self._cursor.index
            at = total if cursor is None or index is None else cursor + 1
            parts.append(f"snapshot {at:,}/{total:,}")
        runs = len(self._run_order)
        if runs > 1:
            run = f"run {order + 1} of {runs}"
            if order > 0:
                before = self._curves[self._run_order[order - 1]].info
                run += f": {change(before, self._curves[self._run_order[order]].info)}"
            parts.append(run)
        if self.mode == "replay":
            playing = "playing" if self._cursor.playing else "paused"
            parts.append(f"{playing} at {self._cursor.speed}/s")
            if self._ended is not None:
                parts.append(f"the run ended {self._ended}")
        elif self._ended is None:
            quiet = self._clock() - self._last_arrival
            if quiet >= self._liveness.quiet_after():
                parts.append(f"writer quiet for {quiet:.0f} s")
        if not self._backfilled:
            parts.append("reading the earlier lines…")
        elif self._pass_running:
            parts.append("diagnosing the earlier lines…")
        return " · ".join(parts)

    def _message(self) -> str:
        if self._error:
            return self._error
        parts = []
        if self._corrupt:
            where = f" (line {self._first_corrupt})" if self._first_corrupt else ""
            noun = "line" if self._corrupt == 1 else "lines"
            why = f": {self._corrupt_why}" if self._corrupt_why else ""
            parts.append(f"{self._corrupt} corrupt {noun} skipped{where}{why}")
        if self._second_header is not None:
            where = f"line {self._second_header}: " if self._second_header else ""
            parts.append(f"{where}a second run's header (two files joined?)")
        return " · ".join(parts)

    def _waiting_snapshot(self) -> Snapshot:
        if self.folder is not None and self.path == self.folder:
            detail = f"waiting for a run file (*.jsonl) in {self.folder}"
        elif os.path.exists(self.path):
            detail = "waiting for the first snapshot"
        else:
            detail = f"waiting for {self.path} to appear"
        return Snapshot(
            **self._info.context(),
            state="paused",
            message=self._error,
            mode=self._mode_word(),
            detail=detail,
        )

    def metric_series(self, name: str) -> tuple[tuple[str, ...], Series]:
        """The names the shown run logged (``metrics``), and ``name``'s steps and values over
        the whole run (empty when it has none): what the monitor's "this run" panel plots."""
        with self._lock:
            located = self._locate()
            if located is None:
                return (), ((), ())
            metrics = located[1].metrics
            return metrics.names(), metrics.series(name)
