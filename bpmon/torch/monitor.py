"""The monitor :func:`bpmon.torch.watch` returns: what counts as an update, and when each
figure of a due update is taken (see :mod:`bpmon.torch` for the conventions, the modules named
below for each job: :mod:`~bpmon.torch.layers` the rows, :mod:`~bpmon.torch.measure` the norms
and the weights' copy, :mod:`~bpmon.torch.forward` the activations, :mod:`~bpmon.torch.clipping`
the gradient before clipping, :mod:`~bpmon.torch.record` the line's fields,
:mod:`~bpmon.torch.updatelines` a due update's line and the last update's,
:mod:`~bpmon.torch.ending` the end line, :mod:`~bpmon.torch.series` every update's loss and
gradient norm, :mod:`~bpmon.torch.spikes` the spikes in them, :mod:`~bpmon.torch.logspikes` what
a line gets besides its figures: the logged numbers and the spikes).

Why the measurement sits where it does:

- **Gradients in the optimiser's step pre-hook**, never in backward hooks, unless clipping came
  first (then just before the clipping call): the gradient the optimiser applies is the
  accumulated one, once per update however many backward passes made it, and under
  DistributedDataParallel it is the reduced one (a prototype that read ``.grad`` inside
  post-accumulate-grad hooks under DDP aborted; shared/design.md).
- **The weight copy just before the update** (each hooked optimiser's pre-hook copies the rows
  it steps), subtracted after it (its post-hook). Rows no hooked optimiser steps have no copy:
  their update ratio is unknown (NaN), never 0.
- **A loop without an optimiser**: until an optimiser step or :meth:`Monitor.step` is seen,
  the end of each backward pass (a callback queued from a gradient hook) is a candidate
  update, confirmed at the next forward pass when the weights have changed since (read back
  once, while deciding); from then on every backward pass is an update, measured at its end
  (the gradient before any clipping or hand-written step) and completed at the next forward.
"""

from __future__ import annotations

import functools
import math
import os
import weakref
from collections.abc import Sequence
from types import TracebackType
from typing import IO, Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from bpmon.config import RunConfig, Thresholds, validate
from bpmon.errors import BpmonError
from bpmon.runfile import header
from bpmon.torch import clipping, distributed, ending
from bpmon.torch.backward import BackwardPasses
from bpmon.torch.forward import Activations
from bpmon.torch.functional import compiled
from bpmon.torch.layers import architecture, find_layers, switches, unwrap
from bpmon.torch.logged import Logged, as_float
from bpmon.torch.measure import Copies, RowNorms
from bpmon.torch.nonfinite import NanTrace
from bpmon.torch.optimisers import Optimisers, wrap_scaler
from bpmon.torch.record import Clipping
from bpmon.torch.series import RING, Series
from bpmon.torch.spikes import CONTEXT, RANGE, SIGMAS, WINDOW, Scorer
from bpmon.torch.updatelines import UpdateLines


def _rank() -> int:
    """This process's rank: torch.distributed's when initialised, else torchrun's ``RANK``."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return int(dist.get_rank())
    try:
        return int(os.environ.get("RANK", "0") or 0)
    except ValueError:
        return 0


def check_thresholds(thresholds: object) -> Thresholds:
    """``thresholds`` through the one validation a preset's go through. No threshold is
    infinite: a large finite number (``explode_abs=1e300``) is how to say "no limit"."""
    if thresholds is None:
        return Thresholds()
    if not isinstance(thresholds, Thresholds):
        raise BpmonError(f"watch: thresholds = {thresholds!r}: expected bpmon.config.Thresholds")
    try:
        validate(RunConfig(thresholds=thresholds), "watch(thresholds=...)")
    except BpmonError as exc:
        raise BpmonError(f"{exc} (for no limit, use a large finite number such as 1e300)") from None
    return thresholds


def check_spikes(sigmas: object, window: object, context: object) -> tuple[float, int, int]:
    """``watch``'s spike options, each one clear line when unusable."""
    if isinstance(sigmas, bool) or not isinstance(sigmas, int | float):
        raise BpmonError(f"watch: spike_sigmas = {sigmas!r}: expected a number > 0")
    if not (math.isfinite(sigmas) and sigmas > 0):
        raise BpmonError(f"watch: spike_sigmas = {sigmas!r}: expected a finite number > 0")
    for name, value, low in (("spike_window", window, 2), ("spike_context", context, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise BpmonError(f"watch: {name} = {value!r}: expected an integer >= {low}")
    return float(sigmas), int(window), int(context)  # type: ignore[call-overload]


def _close_ref(ref: weakref.ref[Monitor]) -> None:
    monitor = ref()
    if monitor is not None:
        monitor.close()


def _end_ref(ref: weakref.ref[Monitor], state: ending.EndState) -> None:
    monitor = ref()
    if monitor is not None:
        monitor._close(state)


def _inspect_ref(ref: weakref.ref[Monitor], record: dict[str, Any]) -> None:
    monitor = ref()
    if monitor is not None:
        monitor._inspect_line(record)


class Monitor(UpdateLines):
    """Watches one model; made by :func:`bpmon.torch.watch` (see there for the arguments).

    ``steps`` is the number of updates seen so far; ``layer_names`` the watched rows, input
    side first; ``active`` is False on a rank other than 0 of a distributed run, where every
    method does nothing.
    """

    def __init__(
        self,
        model: nn.Module,
        path: str | os.PathLike[str] | IO[str],
        *,
        every: int = 50,
        optimizer: torch.optim.Optimizer | None = None,
        scaler: torch.amp.GradScaler | None = None,
        include: str | Sequence[str] | None = None,
        exclude: str | Sequence[str] | None = None,
        name: str | None = None,
        thresholds: Thresholds | None = None,
        nan_trace: bool = False,
        spike_sigmas: float = SIGMAS,
        spike_window: int = WINDOW,
        spike_context: int = CONTEXT,
        update_norms: bool = True,
    ) -> None:
        sigmas, window, context = check_spikes(spike_sigmas, spike_window, spike_context)
        if not isinstance(update_norms, bool):
            raise BpmonError(f"watch: update_norms = {update_norms!r}: expected True or False")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise BpmonError(f"every = {every!r}: expected an integer >= 1")
        if not isinstance(model, nn.Module):
            raise BpmonError(f"watch: expected a torch.nn.Module, got {type(model).__name__}")
        self.every = every
        self.thresholds = check_thresholds(thresholds)
        self.steps = 0
        self.rank = _rank()
        # Sharded parameters (FSDP2): every rank measures, for the all-reduce; rank 0 writes.
        self.active = self.rank == 0 or (
            isinstance(model, nn.Module) and distributed.has_shards(list(model.parameters()))
        )
        self.layer_names: tuple[str, ...] = ()
        self._closed = not self.active
        if not self.active:
            return
        self.model = unwrap(model)
        rows = find_layers(self.model, include, exclude)
        self._layers = rows.layers
        if not self._layers:
            raise BpmonError(
                "watch: no layer to watch: the model has no trainable parameter"
                + ("" if include is None and exclude is None else " matching include/exclude")
            )
        self.layer_names = tuple(layer.name for layer in self._layers)
        first = self._layers[0].weight
        self._dtype = (
            torch.float64
            if any(p.dtype == torch.float64 for row in self._layers for p in row.weights)
            else torch.float32
        )
        self._rn = RowNorms(self._layers, first.device, self._dtype)
        # None unless parameters are DTensors; one row stands for its tensors' placement.
        self._shards = distributed.shards(self._layers)
        self._copies = Copies(self._rn)
        self._opts = Optimisers(self._layers, optimizer)
        self._acts = Activations(
            self._layers, self._training_forward, None if compiled(model) else self.model
        )
        self._logged = Logged()
        self._clip = Clipping()
        self._scaler = scaler
        self._nan_trace = bool(nan_trace)
        self._nan = NanTrace(self.model, first.device)
        # Every update's figures (the series), and what a spike in them needs: the ring of
        # per-tensor norms reaches back over the updates since the last line, the K before a
        # spike and the range before those, and forward over the K after it.
        tensors = [p for row in self._layers for p in row.weights]
        tensors += [p for row in self._layers for p in row.biases]
        self._series = Series(
            tensors,
            first.device,
            self._dtype,
            # A spike found up to RING updates late still has its context.
            keep=min(every, RING) + 2 * context + RANGE + 2,
            enabled=self._shards is None and bool(update_norms),
        )
        self._tensor_rows = self._rn.tensor_rows()
        self._scorer = Scorer(sigmas, window, context)
        self._burst_until = 0
        self._unscored: tuple[dict[str, Any], int, list[float], list[float]] | None = None
        self._after = True  # the loop logs after its update (seen at each due update)

        # The file first: a path that cannot be written is refused before any hook is in place,
        # and a monitor this process has writing the same path is closed before it is opened.
        self._release = functools.partial(_close_ref, weakref.ref(self))
        if self.rank != 0:
            path = distributed.discard()  # it measures for the all-reduce; rank 0 writes
        if isinstance(path, str | os.PathLike):
            ending.claim_path(str(path), self._release)
        try:
            self._out, path_name = ending.open_output(path)
        except BpmonError:
            ending.release_path(str(path), self._release)
            raise
        self._path = str(path) if path_name else ""
        # Through a weak reference: the exit finaliser holds the output, and a bound method
        # there would keep the monitor, and with it the model, alive until the process ends.
        self._out.inspect = functools.partial(_inspect_ref, weakref.ref(self))
        self._out.close_owner = functools.partial(_end_ref, weakref.ref(self))

        self._mode = None if optimizer is None else "optimizer"
        self._grad_norms = None
        self._pre_clip = False
        self._lrs = []
        self._deferred = None
        self._logged_since_update = False
        self._handles: list[RemovableHandle] = list(self._opts.register(self))
        self._bw = BackwardPasses(
            [p for row in self._layers for p in (*row.weights, *row.biases)]
            if self._mode is None
            else [],
            self.model,
            self._backward_done,
            self._resolve_backward,
        )
        if scaler is not None:
            wrap_scaler(scaler, self._opts, self._skipped)

        run_name = name or (os.path.splitext(os.path.basename(path_name))[0] if path_name else "")
        record = header(
            source="torch",
            name=run_name or type(self.model).__name__,
            layers=[layer.description() for layer in self._layers],
            thresholds=self.thresholds,
            architecture=architecture(self._layers),
            switches=switches(self.model, self._layers),
            epochs=None,
            config=None,
            started=self._out.writer.started,
        )
        record["excluded"] = rows.excluded
        self._out.write(record)
        ending.install()
        clipping.activate(self)
        # Collected mid-process: its end line now (at the exit, ending's atexit hook writes it).
        self._finalizer = weakref.finalize(self, ending.finish_collected, self._out)
        self._finalizer.atexit = False
        self._arm(self._due(1))

    # -- public ---------------------------------------------------------------------------------

    def step(self) -> None:
        """One update of a hand-written loop, for exact control: call it right after the
        update, before the gradients are zeroed. Without it, a loop with no optimiser counts
        each backward pass as an update. Not for a loop with an optimiser."""
        if self._closed:
            return
        if self._mode == "optimizer":
            raise BpmonError(
                f"step(): this monitor counts the steps of {self._opts.primary_name()} already; "
                "step() is for hand-written updates without an optimizer"
            )
        self._set_mode("manual")
        self._out.flush_pending()
        if not self._pre_clip:
            self._norms(None, self._due(self.steps + 1))
        self._copies.settle(list(range(len(self._layers))))
        self._complete(skipped=False)

    def close(self) -> None:
        """Stop watching: remove every hook, write the line still waiting, then the end line
        ``{"event": "end", "state": "finished"}``. Called again, it does nothing."""
        self._close("finished")

    def __enter__(self) -> Monitor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self._close("finished")
        elif issubclass(exc_type, KeyboardInterrupt):
            self._close("interrupted")
        else:
            self._close("error")

    # -- the line of a due update -----------------------------------------------------------------

    def _training_forward(self) -> None:
        # A training forward of the due update: what was logged before it belongs to the
        # previous iteration (a loop that logs after its update).
        self._logged_since_update = False

    def _ended(self, n: int, skipped: bool) -> None:
        self._nan.end_update(n, skipped, read=self._nan_trace)

    def _inspect_line(self, record: dict[str, Any]) -> None:
        self._nan.on_line(record, as_float(self._logged.values.get("loss")))

    def _arm(self, due_next: bool) -> None:
        """Get ready for the next update: forward hooks on while it is due, off otherwise; in a
        loop without (yet) an optimiser, the weight copy for its update ratio."""
        self._acts.arm(due_next)
        self._nan.arm(due_next or self._nan_trace)
        if due_next and self._mode != "optimizer":
            self._copies.take(list(range(len(self._layers))))

    # -- ending ---------------------------------------------------------------------------------

    def _close(self, state: ending.EndState) -> None:
        if self._closed:
            return
        self._resolve_backward()
        self._finish_deferred()
        self._closed = True
        self._write_last()
        if self._out.pending is not None:
            # The spikes still open at the end go with the last line, if it has not gone yet.
            self._score_unscored(self._out.pending)
            self._put_spikes(self._out.pending, self._scorer.complete(final=True))
        for handle in self._handles:
            handle.remove()
        self._bw.remove()
        self._acts.remove()
        self._nan.remove()
        self._handles = []
        clipping.deactivate(self)
        if self._scaler is not None and "step" in vars(self._scaler):
            delattr(self._scaler, "step")
        self._copies.clear()
        self._finalizer.detach()
        if self._path:
            ending.release_path(self._path, self._release)
        self._out.finish(state)
