"""Every update's loss and global gradient norm, kept on the device until the next line reads
them (issue 18 item 4), and the per-tensor norms of recent updates for a spike's context.

On every update the gradients' per-tensor norms are taken once (one ``torch._foreach_norm``
and one ``torch.stack``, on the gradients' device, before any clipping) and the 1-D tensor is
kept in a ring of the last ``min(every, RING) + 2K + RANGE`` updates (a spike's context); every
:data:`CHUNK` updates those not yet read are reduced to their global norms, so the series holds
a few bytes per update whatever ``every`` is. A due update's per-row gradient norms are summed
from the same tensor, so it is not normed twice. The logged loss is kept as what
:meth:`~bpmon.torch.monitor.Monitor.log` was given (a detached tensor or a float), by the number
of updates done when it was logged. Nothing is read back on an update that is not due: a line
reads the global norms of every update since the previous line (one norm over the stacked
ring, in the line's one transfer) and their losses.

A loop logs either before its update (the loss logged while ``c`` updates are done belongs to
update ``c + 1``) or after it (to update ``c``); the monitor knows which from its due updates
(:mod:`bpmon.torch.updates`) and says so with ``after``.

Under FSDP2 (sharded parameters) the per-update norms would be the local shards' and are not
kept (NaN); the loss series is.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

import torch

from bpmon.torch.logged import Held
from bpmon.torch.measure import norms

_LOW_PRECISION = (torch.float16, torch.bfloat16)
# Every CHUNK updates the per-tensor norms kept for the series are reduced to their global
# norms (one stack and one norm, on the device): the series costs a few bytes an update
# however large ``every`` is. The ring of per-tensor norms, a spike's context, is bounded apart.
CHUNK = 64
# The ring of per-tensor norms reaches back at most this many updates past a spike's context:
# with a larger ``every``, a spike found later than that has no per-row context.
RING = 1024


class Series:
    def __init__(
        self,
        params: Sequence[torch.Tensor],
        device: torch.device,
        dtype: torch.dtype,
        keep: int,
        enabled: bool = True,
    ) -> None:
        self.params = list(params)
        self.device, self.dtype = device, dtype
        self.enabled = enabled
        # One _foreach_norm over all the gradients when they are plain dense tensors of one
        # device; else measure.norms, tensor by tensor.
        self._fast = all(
            p.dtype not in _LOW_PRECISION and p.device == device and p.dtype == dtype
            for p in self.params
        )
        self.now: torch.Tensor | None = None  # this update's per-tensor norms
        self.ring: deque[tuple[int, torch.Tensor | None]] = deque(maxlen=max(keep, 1))
        self._open: list[tuple[int, torch.Tensor | None]] = []  # not reduced yet
        self._chunks: list[tuple[int, torch.Tensor]] = []  # (first update, global norms)
        self.losses: dict[int, Held] = {}
        self.written = 0  # the last update whose figures a line has carried

    def measure(self, scale: torch.Tensor | None) -> torch.Tensor | None:
        """This update's per-tensor gradient norms (once per update; None when disabled).
        ``scale``: the GradScaler's scale the gradients are still multiplied by."""
        if self.now is not None or not self.enabled:
            return self.now
        grads = [p.grad for p in self.params]
        per = None
        if self._fast:
            try:
                per = torch.stack(torch._foreach_norm(grads))  # type: ignore[arg-type]
            except (TypeError, RuntimeError):  # a None or a sparse gradient
                per = None
        if per is None:
            per = self._slow(grads)
        if scale is not None:
            per = per / scale.to(self.device, self.dtype)
        self.now = per
        return per

    def _slow(self, grads: Sequence[torch.Tensor | None]) -> torch.Tensor:
        present = [g for g in grads if g is not None]
        found = iter(norms(present))
        zero = torch.zeros((), dtype=self.dtype, device=self.device)
        slots = [zero if g is None else next(found).to(self.device, self.dtype) for g in grads]
        return torch.stack(slots) if slots else torch.zeros(0, dtype=self.dtype)

    def done(self, n: int) -> None:
        """Update ``n`` is over: keep its norms (if measured) in the ring and the series."""
        if self.enabled:
            self.ring.append((n, self.now))
            self._open.append((n, self.now))
            if len(self._open) >= CHUNK:
                self._reduce()
        self.now = None

    def _reduce(self) -> None:
        """The open updates' global norms, as one tensor (NaN where not measured)."""
        if not self._open:
            return
        first = self._open[0][0]
        pers = [t for _, t in self._open]
        if all(t is not None for t in pers):
            stacked = torch.stack(pers)  # type: ignore[arg-type]
            out: torch.Tensor = torch.linalg.vector_norm(stacked, dim=1)
        else:
            out = torch.full((len(pers),), math.nan, dtype=self.dtype, device=self.device)
            for i, t in enumerate(pers):
                if t is not None:
                    out[i] = torch.linalg.vector_norm(t)
        self._chunks.append((first, out))
        self._open = []

    def log(self, done: int, loss: Held) -> None:
        """A loss logged while ``done`` updates were done (the last one logged counts)."""
        self.losses[done] = loss

    # -- a line's read ----------------------------------------------------------------------

    def grad_norms(self, first: int, last: int) -> torch.Tensor:
        """The global norm of each update ``first`` .. ``last`` (NaN where not measured), one
        1-D tensor on the device."""
        self._reduce()
        pieces, at = [], first
        for start, norms_ in self._chunks:
            end = start + norms_.numel() - 1
            if end < at or start > last:
                continue
            if start > at:
                pieces.append(self._nan(start - at))
            pieces.append(norms_[max(at - start, 0) : min(last, end) - start + 1])
            at = min(last, end) + 1
        if at <= last:
            pieces.append(self._nan(last - at + 1))
        self._chunks = [(s, t) for s, t in self._chunks if s + t.numel() - 1 > last]
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces)

    def _nan(self, m: int) -> torch.Tensor:
        return torch.full((m,), math.nan, dtype=self.dtype, device=self.device)

    def loss_slots(
        self, first: int, last: int, after: bool
    ) -> tuple[list[float], list[int], list[torch.Tensor]]:
        """The losses of updates ``first`` .. ``last``: floats (NaN where none was logged or
        a tensor stands), and the positions and tensors still to read; the losses of earlier
        updates are let go."""
        shift = 0 if after else -1
        values = [math.nan] * (last - first + 1)
        where, tensors = [], []
        for i, n in enumerate(range(first, last + 1)):
            held = self.losses.get(n + shift)
            if isinstance(held, torch.Tensor):
                where.append(i)
                tensors.append(held)
            elif held is not None:
                values[i] = held
        for key in [k for k in self.losses if k <= last + shift]:
            del self.losses[key]
        return values, where, tensors

    def norms_of(self, first: int, last: int) -> tuple[int, torch.Tensor] | None:
        """``(start, tensor)``: the per-tensor norms of the kept updates from ``first`` (or
        the oldest kept) to ``last``, stacked (updates x tensors); None when none is kept."""
        kept = [(n, t) for n, t in self.ring if first <= n <= last and t is not None]
        # Only a run of consecutive updates ending at ``last`` is context.
        run: list[tuple[int, torch.Tensor]] = []
        for n, t in reversed(kept):
            if run and n != run[-1][0] - 1:
                break
            if not run and n != last:
                return None
            run.append((n, t))
        if not run:
            return None
        run.reverse()
        return run[0][0], torch.stack([t for _, t in run])
