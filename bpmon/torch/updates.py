"""What counts as an update, and when a due update's figures are taken: the part of the monitor
that the optimisers' hooks, the clipping wrapper, a GradScaler and backward passes call (see
:mod:`bpmon.torch.monitor` for why each figure is taken where it is).

:class:`Updates` holds no state of its own: :class:`~bpmon.torch.monitor.Monitor` sets every
attribute declared here in its ``__init__`` and implements the two methods it leaves open.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from bpmon.torch.backward import BackwardPasses
from bpmon.torch.ending import Output
from bpmon.torch.layers import Layer
from bpmon.torch.measure import Copies, RowNorms
from bpmon.torch.optimisers import Optimisers
from bpmon.torch.record import Clipping
from bpmon.torch.series import Series

Mode = Literal["optimizer", "manual", "backward"]


class Updates:
    every: int
    steps: int
    _closed: bool
    _layers: list[Layer]
    _rn: RowNorms
    _copies: Copies
    _opts: Optimisers
    _clip: Clipping
    _bw: BackwardPasses
    _out: Output
    _scaler: torch.amp.GradScaler | None
    # "optimizer": optimiser steps are the updates; "manual": step() calls are; "backward":
    # backward passes are; None: not known yet.
    _mode: Mode | None
    _grad_norms: torch.Tensor | None  # this update's, on the device
    _pre_clip: bool  # the gradients were measured before clipping this update
    _lrs: list[object]
    _deferred: tuple[int, bool] | None  # a due update waiting for a secondary optimiser
    _logged_since_update: bool
    _series: Series
    _burst_until: int  # updates up to this one are due: the K after a spike

    def _measure_update(self, n: int, skipped: bool) -> None:
        raise NotImplementedError

    def _arm(self, due_next: bool) -> None:
        raise NotImplementedError

    def _ended(self, n: int, skipped: bool) -> None:
        raise NotImplementedError

    # -- updates --------------------------------------------------------------------------------

    def _due(self, n: int) -> bool:
        return n == 1 or n % self.every == 0 or n <= self._burst_until

    def _norms(self, scale: torch.Tensor | None, due: bool) -> None:
        """Every update: the gradients' norms for the series (before any clipping, once per
        update); on a due update, the rows' norms from them too."""
        per = self._series.measure(scale)
        if due:
            self._grad_norms = self._rn.grads(scale) if per is None else self._rn.rows_from(per)

    def _set_mode(self, mode: Literal["optimizer", "manual", "backward"]) -> None:
        if self._mode == mode:
            return
        if mode == "optimizer":
            self._copies.clear()  # the pre-hooks copy from now on
        self._mode = mode
        if mode != "backward":
            self._bw.remove()

    def before_step(
        self, opt: torch.optim.Optimizer, rows: Sequence[int], primary: bool, late: bool
    ) -> None:
        """A hooked optimiser is about to step ``rows`` (from :class:`Optimisers`)."""
        if self._closed or self._mode in ("manual", "backward"):
            return
        self._set_mode("optimizer")
        if primary:
            self._finish_deferred()
            self._out.flush_pending()
            due = self._due(self.steps + 1)
            if not self._pre_clip:
                # Measured afresh: an end of backward seen before the optimiser was known
                # measured gradients that the script may have changed since.
                self._series.now = None
                self._norms(self._scale(self._opts.scaled(self._scaler, opt)), due)
            # On every update, not only due ones: the last update's line, written at the end
            # when it was not due, shows the lr it used (reading the groups is a few Python
            # lookups; a tensor lr is copied on its device, never read back here).
            self._lrs = self._opts.lrs()
        # A secondary that steps after the primary belongs to the update the primary just made.
        if self._deferred is not None if late else self._due(self.steps + 1):
            self._copies.take(rows)

    def after_step(self, rows: Sequence[int], primary: bool, skipped: bool) -> None:
        if self._closed or self._mode in ("manual", "backward"):
            return
        if skipped:
            self._copies.still(rows)
        else:
            self._copies.settle(rows)
        if primary:
            self._complete(skipped, wait=True)
        elif self._deferred is not None and self._opts.all_stepped():
            self._finish_deferred()

    def _complete(self, skipped: bool, wait: bool = False) -> None:
        """After update ``steps + 1``: count it, measure it when due, arm the next one."""
        n = self.steps = self.steps + 1
        self._ended(n, skipped)
        self._series.done(n)
        if self._due(n):
            self._deferred = (n, skipped)
            if not (wait and not self._opts.all_stepped()):
                self._finish_deferred()
        self._pre_clip = False
        self._clip.reset()
        self._logged_since_update = False
        self._arm(self._due(n + 1))

    def _finish_deferred(self) -> None:
        if self._deferred is None:
            return
        n, skipped = self._deferred
        self._deferred = None
        self._measure_update(n, skipped)

    def _scale(self, scaled: bool) -> torch.Tensor | None:
        if not scaled or self._scaler is None:
            return None
        return self._scaler._get_scale_async()

    # -- loops without an optimiser: backward passes --------------------------------------------

    def _backward_done(self) -> None:
        if self._closed or self._mode not in (None, "backward"):
            return
        self._resolve_backward()
        self._out.flush_pending()
        self._series.now = None  # a backward pass that was no update left its norms behind
        self._norms(self._scale(self._scaler is not None), self._due(self.steps + 1))
        self._bw.wait_for_forward()

    def _resolve_backward(self) -> None:
        """The backward pass before this moment was an update when the weights have moved
        since (deciding: read back once), or, decided, always."""
        if self._closed or not self._bw.pending:
            return
        self._bw.pending = False
        if self._mode is None:
            if not self._copies.holding or not self._copies.changed():
                return  # gradient accumulation, or no update yet: wait for an optimiser
            self._mode = "backward"
        self._copies.settle(list(range(len(self._layers))))
        self._complete(skipped=False)

    # -- clipping (called by bpmon.torch.clipping) ------------------------------------------------

    def clip_concerns(self, params: Sequence[torch.Tensor]) -> bool:
        return not self._closed and self._opts.watches(params)

    def before_clip(self) -> None:
        if not self._pre_clip:
            self._norms(self._scale(self._opts.scaled(self._scaler)), self._due(self.steps + 1))
            self._pre_clip = True

    def after_clip(self, name: str, total: object, limit: object) -> None:
        try:
            self._clip.limit = float(limit)  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError):
            return
        if name == "clip_grad_norm_" and isinstance(total, torch.Tensor):
            self._clip.total = total
            self._clip.recent.append((total, self._clip.limit))
        elif self._due(self.steps + 1):
            self._clip.after = self._rn.grads(None)[-1]
            if self._grad_norms is not None:
                factor = self._clip.after / self._grad_norms[-1].clamp_min(1e-30)
                self._clip.recent.append(factor)

    def _skipped(self, optimizer: torch.optim.Optimizer) -> None:
        """The scaler skipped this step (inf/NaN gradients): still an update of the loop."""
        if self._closed:
            return
        self._out.flush_pending()
        if not self._pre_clip:
            # scaler.step unscaled the gradients before finding the inf.
            self._norms(None, self._due(self.steps + 1))
        self._copies.still(self._opts.rows_of(optimizer))
        self._complete(skipped=True)
