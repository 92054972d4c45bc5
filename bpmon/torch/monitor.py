"""The monitor :func:`bpmon.torch.watch` returns: optimiser hooks that count updates, the
measurement of a due update, and the run file it writes (see :mod:`bpmon.torch` for the
conventions, :mod:`bpmon.runfile` for the format).

Why the measurement sits where it does:

- **Gradients in the optimiser's step pre-hook** (or in :meth:`Monitor.step`), never in
  backward hooks: the gradient the optimiser applies is the accumulated one, once per update
  however many backward passes made it, and under DistributedDataParallel it is the reduced
  one. A prototype that read ``.grad`` inside post-accumulate-grad hooks under DDP (gloo, two
  ranks) aborted the process; reading in the step pre-hook worked (shared/design.md).
- **The weight copy just before the update** (the pre-hook), subtracted in place after it (the
  post-hook): ``W_before - W_after`` is the update bpmon's engine calls ``update``, whatever the
  optimiser did, and the copy lives for one update out of ``every``. A hand-written loop has no
  "just before": there the copy is taken right after the previous update (or at ``watch()``),
  which holds the same values as long as nothing else writes to the weights in between.
- **Activations from forward hooks that exist only during a due update's forward passes**:
  the hooks are registered after the update before a due one and removed after the due one, so
  an update that is not due runs the model with no hook of ours at all.
- **One transfer**: every figure of a due update (norms, health, the logged loss, a tensor
  learning rate) is stacked into one tensor on the model's device and read back with one
  ``tolist()``; an update that is not due reads nothing back.

Why no parameter version counters for hand-written loops: a counter says *that* a weight
changed, only when polled (at the next forward), when the gradients are often zeroed already
and the weights from before the update are gone; :meth:`Monitor.step` after the update is one
line and exact.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
import warnings
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from bpmon.codec import encode_fields, to_record
from bpmon.config import Thresholds
from bpmon.engine.activations import SIGMOID_SATURATION, TANH_SATURATION
from bpmon.errors import BpmonError
from bpmon.runfile import RunWriter, header
from bpmon.runmodel import Snapshot
from bpmon.telemetry import LayerStats, classify
from bpmon.torch import distributed
from bpmon.torch.layers import Layer, architecture, find_layers, switches, unwrap

EndState = Literal["finished", "interrupted", "error"]
LOGGED = ("loss", "accuracy", "test_accuracy", "lr")
LogValue = float | int | torch.Tensor | None

_LOW_PRECISION = (torch.float16, torch.bfloat16)


# -- how the process ended, for the end line written at exit -----------------------------------

_uncaught: list[type[BaseException]] = []


def _install_excepthook() -> None:
    """Remember the type of an exception that ends the program, then report it as before: the
    end line written at exit says ``interrupted`` after ctrl+c, ``error`` after a traceback."""
    previous = sys.excepthook
    if getattr(previous, "_bpmon_torch", False):
        return

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        _uncaught.append(exc_type)
        previous(exc_type, exc, tb)

    hook._bpmon_torch = True  # type: ignore[attr-defined]
    sys.excepthook = hook


def _exit_state() -> EndState:
    if not _uncaught:
        return "finished"
    return "interrupted" if issubclass(_uncaught[-1], KeyboardInterrupt) else "error"


class _Output:
    """The run file and the line that may be waiting for its loss. Kept apart from the
    :class:`Monitor` so that the finaliser that writes the end line at exit holds no reference
    to the monitor (which would keep it alive forever)."""

    def __init__(self, stream: IO[str], name: str, owns: bool) -> None:
        self.writer = RunWriter(stream, name)
        self.stream = stream
        self.owns = owns
        self.pending: dict[str, Any] | None = None
        self.failed = False
        self.done = False

    def write(self, record: dict[str, Any]) -> None:
        if self.failed or self.done:
            return
        try:
            self.writer.write(record)
        except (OSError, ValueError) as exc:
            # A full disk must not stop the training it watches: say so once, stop writing.
            self.failed = True
            warnings.warn(
                f"bpmon: cannot write {self.writer.name}: {exc}; the run file stops here",
                RuntimeWarning,
                stacklevel=3,
            )

    def flush_pending(self) -> None:
        if self.pending is not None:
            record, self.pending = self.pending, None
            self.write(record)

    def finish(self, state: str) -> None:
        if self.done:
            return
        self.flush_pending()
        if not self.failed:
            with contextlib.suppress(OSError, ValueError):
                self.writer.end(state)
        self.done = True
        if self.owns:
            with contextlib.suppress(OSError):
                self.stream.close()


def _finish_at_exit(output: _Output) -> None:
    output.finish(_exit_state())


def _rank() -> int:
    """This process's rank: torch.distributed's when initialised, else torchrun's ``RANK``."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return int(dist.get_rank())
    try:
        return int(os.environ.get("RANK", "0") or 0)
    except ValueError:
        return 0


def _open(path: str | os.PathLike[str] | IO[str]) -> tuple[IO[str], str, bool]:
    if isinstance(path, str | os.PathLike):
        p = Path(path)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            stream = open(p, "w", encoding="utf-8")  # noqa: SIM115 - closed by _Output.finish
        except OSError as exc:
            raise BpmonError(f"{p}: cannot write the run file: {exc.strerror or exc}") from None
        return stream, str(p), True
    return path, str(getattr(path, "name", "<stream>")), False


def _norms(tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The 2-norm of each tensor, on its device, without reading anything back. Half-precision
    tensors are summed in float32: a norm above 65504 is ordinary for a large layer's
    gradient and would be inf in float16. Sparse gradients (``Embedding(sparse=True)``) are
    normed over their stored values."""
    if not tensors:
        return []
    out: list[torch.Tensor | None] = [None] * len(tensors)
    plain = [
        i
        for i, t in enumerate(tensors)
        if t.dtype not in _LOW_PRECISION and t.layout == torch.strided
    ]
    if plain:
        for i, n in zip(plain, torch._foreach_norm([tensors[i] for i in plain]), strict=True):
            out[i] = n
    for i, t in enumerate(tensors):
        if out[i] is None:
            values = t.coalesce().values() if t.is_sparse else t
            dtype = torch.float32 if values.dtype in _LOW_PRECISION else None
            out[i] = torch.linalg.vector_norm(values, dtype=dtype)
    return [n for n in out if n is not None]


def _health(kind: str, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor | None:
    """The activation's health as a 0-d tensor, by bpmon's definitions
    (:meth:`bpmon.engine.activations.Activation.health`): sigmoid and tanh, the fraction of
    saturated entries; the ReLU family (and GELU), the fraction of units at ``z <= 0`` for every
    sample of the batch (axis 0). The tests use signs only, so an ``inplace=True`` ReLU, whose
    input tensor has become its output, gives the same answer."""
    # The fraction in float64 for a float64 model (exact parity with the engine's NumPy), in
    # float32 otherwise (half precision cannot count past 2048 exactly).
    dtype = torch.float64 if z.dtype == torch.float64 else torch.float32
    if kind == "sigmoid":
        lo, hi = SIGMOID_SATURATION, 1.0 - SIGMOID_SATURATION
        return ((a < lo) | (a > hi)).to(dtype).mean()
    if kind == "tanh":
        return (a.abs() > TANH_SATURATION).to(dtype).mean()
    if kind in ("relu", "leaky_relu", "gelu"):
        off = z <= 0
        return (off.all(dim=0) if off.dim() >= 2 else off).to(dtype).mean()
    return None


class Monitor:
    """Watches one model; made by :func:`bpmon.torch.watch` (see there for the arguments).

    ``steps`` is the number of updates seen so far; ``layer_names`` the watched layers, input
    side first; ``active`` is False on a rank other than 0 of a distributed run, where every
    method does nothing, unless the parameters are sharded (FSDP2's DTensors): then every rank
    measures, for the all-reduce of :mod:`bpmon.torch.distributed`, and only rank 0 writes.
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
    ) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise BpmonError(f"every = {every!r}: expected an integer >= 1")
        if not isinstance(model, nn.Module):
            raise BpmonError(f"watch: expected a torch.nn.Module, got {type(model).__name__}")
        self.every = every
        self.thresholds = thresholds if thresholds is not None else Thresholds()
        self.steps = 0
        self.rank = _rank()
        # Sharded parameters (FSDP2): every rank measures, for the all-reduce; rank 0 writes.
        self.active = self.rank == 0 or distributed.has_shards(list(model.parameters()))
        self.layer_names: tuple[str, ...] = ()
        self._closed = not self.active
        if not self.active:
            return
        self.model = unwrap(model)
        self._layers: list[Layer] = find_layers(self.model, include, exclude)
        if not self._layers:
            raise BpmonError(
                "watch: no layer to watch: the model has no trainable leaf module with a weight "
                "of 2 or more dimensions"
                + ("" if include is None and exclude is None else " matching include/exclude")
            )
        self.layer_names = tuple(layer.name for layer in self._layers)
        self._weight_ids = {id(layer.weight) for layer in self._layers}
        self._device = self._layers[0].weight.device
        self._dtype = (
            torch.float64
            if any(layer.weight.dtype == torch.float64 for layer in self._layers)
            else torch.float32
        )
        self._shards = distributed.shards(self._layers)  # None unless parameters are DTensors

        # The file first: a path that cannot be written is refused before any hook is in place.
        stream, path_name, owns = (
            _open(path) if self.rank == 0 else (distributed.discard(), "", True)
        )
        self._out = _Output(stream, path_name, owns)

        # Update detection. "optimizer": the optimiser's hooks count updates; "manual":
        # step() does; None: not known yet (the first of the two to happen decides).
        self._mode: Literal["optimizer", "manual"] | None = None
        self._opt: torch.optim.Optimizer | None = None
        self._not_ours: weakref.WeakSet[torch.optim.Optimizer] = weakref.WeakSet()
        self._handles: list[RemovableHandle] = []
        self._stepping = False  # set by the pre-hook, for the scaler's skipped steps
        self._scaler = scaler
        if optimizer is not None:
            self._adopt(optimizer)
            self._handles += [
                optimizer.register_step_pre_hook(self._pre_hook),
                optimizer.register_step_post_hook(self._post_hook),
            ]
        else:
            from torch.optim.optimizer import (
                register_optimizer_step_post_hook,
                register_optimizer_step_pre_hook,
            )

            self._handles += [
                register_optimizer_step_pre_hook(self._pre_hook),
                register_optimizer_step_post_hook(self._post_hook),
            ]
        if scaler is not None:
            self._wrap_scaler(scaler)

        # What a due update collects before it is written.
        self._grad_norms: torch.Tensor | None = None  # weight then bias norms, on the device
        self._before: list[torch.Tensor] | None = None  # buffers for the weights' copy
        self._copied = False  # whether they hold the weights from just before this update
        self._health: list[torch.Tensor | None] = [None] * len(self._layers)
        self._forward_handles: list[RemovableHandle] = []
        self._last_layer: int | None = None  # the weight layer whose forward ran last
        self._logged: dict[str, LogValue] = {}
        self._epoch: int | None = None
        self._logged_since_update = False

        run_name = name or (Path(path_name).stem if owns else type(self.model).__name__)
        self._out.write(
            header(
                source="torch",
                name=run_name,
                layers=[layer.description() for layer in self._layers],
                thresholds=self.thresholds,
                architecture=architecture(self._layers),
                switches=switches(self.model, self._layers),
                epochs=None,
                config=None,
                started=self._out.writer.started,
            )
        )
        _install_excepthook()
        self._finalizer = weakref.finalize(self, _finish_at_exit, self._out)
        self._arm(self._due(1))

    # -- public ---------------------------------------------------------------------------------

    def log(
        self,
        *,
        loss: LogValue = None,
        accuracy: LogValue = None,
        test_accuracy: LogValue = None,
        lr: LogValue = None,
        epoch: int | None = None,
    ) -> None:
        """Give the loss panel its figures; call it at any step, with any of them. A tensor is
        kept (detached), not read: it is read on the next due update only. Values left out keep
        their last logged value; ``lr`` defaults to the optimiser's first group's."""
        if self._closed:
            return
        for key, value in (
            ("loss", loss),
            ("accuracy", accuracy),
            ("test_accuracy", test_accuracy),
            ("lr", lr),
        ):
            if value is None:
                continue
            if isinstance(value, torch.Tensor):
                if value.numel() != 1:
                    raise BpmonError(
                        f"log: {key} is a tensor of shape {tuple(value.shape)}: expected one number"
                    )
                self._logged[key] = value.detach()
            elif isinstance(value, int | float) and not isinstance(value, bool):
                self._logged[key] = float(value)
            else:
                raise BpmonError(f"log: {key} = {value!r}: expected a number or a 1-element tensor")
        if epoch is not None:
            if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
                raise BpmonError(f"log: epoch = {epoch!r}: expected an integer >= 0")
            self._epoch = epoch
        self._logged_since_update = True
        if self._out.pending is not None:
            # The due update's line waited for this (a loop that logs after its update): its
            # values are read now, still in the due update's iteration.
            self._fill(self._out.pending)

    def step(self) -> None:
        """One update of a hand-written loop (no ``torch.optim`` optimiser): call it right
        after the update, before the gradients are zeroed. Not for a loop with an optimiser,
        whose steps are counted already."""
        if self._closed:
            return
        if self._mode == "optimizer":
            raise BpmonError(
                f"step(): this monitor counts the steps of {type(self._opt).__name__} already; "
                "step() is for hand-written updates without an optimizer"
            )
        self._mode = "manual"
        self._out.flush_pending()
        n = self.steps + 1
        if self._due(n):
            self._grad_norms = self._measure_grads(scaled=False)
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

    # -- update detection -----------------------------------------------------------------------

    def _due(self, n: int) -> bool:
        return n == 1 or n % self.every == 0

    def _owns(self, optimizer: torch.optim.Optimizer) -> bool:
        """Whether ``optimizer`` steps any watched weight; decided once per optimiser."""
        if optimizer is self._opt:
            return True
        if self._opt is not None or self._mode == "manual" or optimizer in self._not_ours:
            return False
        if any(id(p) in self._weight_ids for g in optimizer.param_groups for p in g["params"]):
            self._adopt(optimizer)
            return True
        self._not_ours.add(optimizer)
        return False

    def _adopt(self, optimizer: torch.optim.Optimizer) -> None:
        self._opt = optimizer
        self._mode = "optimizer"

    def _pre_hook(
        self, optimizer: torch.optim.Optimizer, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        if self._closed or not self._owns(optimizer):
            return
        self._stepping = True
        self._out.flush_pending()
        if self._due(self.steps + 1):
            self._grad_norms = self._measure_grads(scaled=self._scaled(optimizer))
            self._copy_weights()

    def _post_hook(
        self, optimizer: torch.optim.Optimizer, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        if self._closed or optimizer is not self._opt:
            return
        self._complete(skipped=False)

    def _wrap_scaler(self, scaler: torch.amp.GradScaler) -> None:
        """Wrap this scaler's ``step`` (on the instance; :meth:`close` restores it): a call
        that returns without the optimiser's pre-hook having run is a step the scaler skipped
        for inf/NaN gradients, still an update of the user's loop."""
        original: Callable[..., Any] = scaler.step

        def step(optimizer: torch.optim.Optimizer, *args: Any, **kwargs: Any) -> Any:
            self._stepping = False
            result = original(optimizer, *args, **kwargs)
            if not self._closed and not self._stepping and self._owns(optimizer):
                self._out.flush_pending()
                if self._due(self.steps + 1):
                    # Skipped: scaler.step unscaled the gradients before finding the inf.
                    self._grad_norms = self._measure_grads(scaled=False)
                self._complete(skipped=True)
            self._stepping = False
            return result

        setattr(scaler, "step", step)  # noqa: B010 - mypy refuses assigning to a method

    def _scaled(self, optimizer: torch.optim.Optimizer) -> bool:
        """Whether the gradients the optimiser is about to apply are still multiplied by the
        scaler's scale. ``scaler.step`` unscales them before calling ``optimizer.step`` (state
        UNSCALED), as does an earlier ``scaler.unscale_``; they are still scaled when the
        optimiser unscales them itself (fused optimisers get ``grad_scale``) or when
        ``optimizer.step()`` is called without the scaler. GradScaler's per-optimiser state is
        private API, read defensively: without it the gradients are taken as unscaled."""
        scaler = self._scaler
        if scaler is None or not scaler.is_enabled() or scaler._get_scale_async() is None:
            return False
        try:
            from torch.amp.grad_scaler import OptState

            state = scaler._per_optimizer_states.get(id(optimizer))
        except (ImportError, AttributeError):
            return False
        return state is None or state.get("stage") is OptState.READY

    # -- measuring ------------------------------------------------------------------------------

    def _measure_grads(self, scaled: bool) -> torch.Tensor:
        """The weight-gradient norms then the bias-gradient norms of every watched layer, one
        stacked tensor on the device; nothing is read back (the constants are made on the
        device, not copied from the host). A gradient that is None (the layer got none this
        update) is 0; a layer without a bias has NaN for it, as in bpmon."""
        layers = self._layers
        grads = distributed.local(
            [layer.weight.grad for layer in layers]
            + [None if layer.bias is None else layer.bias.grad for layer in layers]
        )
        present = [g for g in grads if g is not None]
        norms = iter(_norms(present))
        zero = torch.zeros((), dtype=self._dtype, device=self._device)
        nan = torch.full((), math.nan, dtype=self._dtype, device=self._device)
        slots = []
        for k, g in enumerate(grads):
            if g is not None:
                slots.append(next(norms).to(self._device, self._dtype))
            elif k >= len(layers) and layers[k - len(layers)].bias is None:
                slots.append(nan)
            else:
                slots.append(zero)
        out = torch.stack(slots)
        if scaled and self._scaler is not None:
            scale = self._scaler._get_scale_async()
            if scale is not None:
                out = out / scale.to(self._device, self._dtype)
        return out

    def _copy_weights(self) -> None:
        """The weights as they are now into the copy buffers (made on first use)."""
        weights = distributed.local([layer.weight.detach() for layer in self._layers])
        if self._before is None:
            self._before = [w.clone() for w in weights]
        else:
            torch._foreach_copy_(self._before, weights)
        self._copied = True

    def _complete(self, skipped: bool) -> None:
        """After update ``steps + 1``: count it, measure it when due, arm the next one."""
        n = self.steps + 1
        self.steps = n
        if self._due(n):
            self._measure_update(n, skipped)
        self._logged_since_update = False
        self._arm(self._due(n + 1))

    def _measure_update(self, n: int, skipped: bool) -> None:
        grad_stack = self._grad_norms
        self._grad_norms = None
        weights = distributed.local([layer.weight.detach() for layer in self._layers])
        L = len(weights)
        dev, dt = self._device, self._dtype
        before = self._before if self._copied and not skipped else None
        self._copied = False
        if before is not None:
            torch._foreach_sub_(before, weights)  # W_before - W_after: bpmon's "update"
        # One pass of norms over the weights and the updates together.
        norms = _norms([*weights, *(before or [])])
        w_norms = torch.stack([t.to(dev, dt) for t in norms[:L]])
        if before is not None:
            d_norms = torch.stack([t.to(dev, dt) for t in norms[L:]])
        elif skipped:
            d_norms = torch.zeros(L, dtype=dt, device=dev)  # the weights did not move
        else:
            d_norms = torch.full((L,), math.nan, dtype=dt, device=dev)
        if not self._due(n + 1):
            # The copy exists for due updates only; with every=1 the buffers are kept and
            # refilled instead of being allocated again on every update.
            self._before = None
        if grad_stack is None:
            grad_stack = torch.full((2 * L,), math.nan, dtype=dt, device=dev)
        nan = torch.full((), math.nan, dtype=dt, device=dev)
        health = torch.stack([nan if h is None else h.to(dev, dt) for h in self._health])
        self._health = [None] * L
        read_keys, reads = self._reads()
        parts = [grad_stack, w_norms, d_norms, health, *reads]
        if self._shards is not None:
            parts[:3] = [self._shards.whole(torch.cat(parts[:3]))]
        values: list[float] = torch.cat(parts).tolist()  # the one read-back of this update

        g, gb = values[:L], values[L : 2 * L]
        wn, dn, hl = values[2 * L : 3 * L], values[3 * L : 4 * L], values[4 * L : 5 * L]
        statuses = classify(g, self.thresholds)
        stats = []
        for i, layer in enumerate(self._layers):
            has_health = layer.activation is not None and math.isfinite(hl[i])
            stats.append(
                LayerStats(
                    name=layer.name,
                    fan_in=layer.fan_in,
                    fan_out=layer.fan_out,
                    grad_norm=g[i],
                    bias_grad_norm=gb[i],
                    weight_norm=wn[i],
                    # As bpmon.telemetry: ||update|| / ||W||, NaN when W is zero or unknown.
                    update_ratio=dn[i] / wn[i] if wn[i] > 0 else math.nan,
                    delta_norm=math.nan,
                    health=hl[i] if has_health else 0.0,
                    health_label=_LABELS.get(layer.activation or "", "") if has_health else "",
                    status=statuses[i],
                    activation=layer.activation,
                )
            )
        # The bridge runs no diagnosis: its lines leave the findings out, and a reader
        # diagnoses them in file order (bpmon.readback).
        line = Snapshot(
            step=n, elapsed=round(time.time() - self._out.writer.started, 4), layers=tuple(stats)
        )
        record = to_record(line, omit=("findings",))
        self._put_logged(record, dict(zip(read_keys, values[5 * L :], strict=True)))
        if self._logged_since_update:
            self._out.write(record)
        else:
            # Nothing logged since the last update: the loop logs after its update (or not at
            # all). The line waits for the next log(), at most until the next update.
            self._out.pending = record

    def _reads(self) -> tuple[list[str], list[torch.Tensor]]:
        """The figures still held as tensors (logged ones; the optimiser's learning rate when it
        is a tensor and none was logged), each as a 1-element tensor ready to stack."""
        keys, tensors = [], []
        for key, value in self._logged.items():
            if isinstance(value, torch.Tensor):
                keys.append(key)
                tensors.append(value.reshape(1).to(self._device, self._dtype))
        opt_lr = self._optimizer_lr()
        if "lr" not in self._logged and isinstance(opt_lr, torch.Tensor):
            keys.append("lr")
            tensors.append(opt_lr.detach().reshape(1).to(self._device, self._dtype))
        return keys, tensors

    def _optimizer_lr(self) -> object:
        if self._opt is None or not self._opt.param_groups:
            return None
        return self._opt.param_groups[0].get("lr")

    def _put_logged(self, record: dict[str, Any], read: dict[str, float]) -> None:
        """Fill ``record``'s logged figures from the values just ``read`` back and the floats
        logged; the tensors read are replaced by their floats so that they are never read twice
        (and their memory is let go)."""
        figures: dict[str, float] = {}
        for key in LOGGED:
            value: object = read.get(key, self._logged.get(key))
            if key == "lr" and value is None:
                value = self._optimizer_lr()
            if isinstance(value, int | float) and not isinstance(value, bool):
                figures[key] = float(value)
        record.update(encode_fields(Snapshot, epoch=self._epoch, **figures))
        self._logged = {k: read.get(k, v) for k, v in self._logged.items()}

    def _fill(self, record: dict[str, Any]) -> None:
        """Put the logged values into a waiting line: tensors read with one ``tolist()``."""
        keys, tensors = self._reads()
        values: list[float] = torch.cat(tensors).tolist() if tensors else []
        self._put_logged(record, dict(zip(keys, values, strict=True)))

    # -- forward hooks for the activations --------------------------------------------------------

    def _arm(self, due_next: bool) -> None:
        """Get ready for the next update: forward hooks on while it is due, off otherwise; in a
        loop without (yet) an optimiser, the weight copy for its update ratio."""
        self._health = [None] * len(self._layers)
        self._last_layer = None
        if due_next and not self._forward_handles:
            self._forward_handles = self._register_forward_hooks()
        elif not due_next and self._forward_handles:
            for handle in self._forward_handles:
                handle.remove()
            self._forward_handles = []
        if due_next and self._mode != "optimizer":
            self._copy_weights()

    def _register_forward_hooks(self) -> list[RemovableHandle]:
        handles = []
        by_act: dict[nn.Module, list[int]] = {}
        for i, layer in enumerate(self._layers):
            handles.append(layer.module.register_forward_hook(self._layer_hook(i)))
            if layer.act_module is not None:
                by_act.setdefault(layer.act_module, []).append(i)
        for module, indices in by_act.items():
            handles.append(module.register_forward_hook(self._act_hook(indices)))
        return handles

    def _layer_hook(self, i: int) -> Callable[[nn.Module, Any, Any], None]:
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            self._last_layer = i
            if torch.is_grad_enabled():
                # A training forward of the due update: what was logged before it belongs to
                # the previous iteration (a loop that logs after its update).
                self._logged_since_update = False

        return hook

    def _act_hook(self, indices: list[int]) -> Callable[[nn.Module, Any, Any], None]:
        """Health from this activation's call, credited to the watched layer that ran just
        before it, if that layer is one this activation follows (a module shared by several
        layers is called once after each). Eval-mode and no-grad forwards (validation) are
        not the update's and are ignored; with several forwards before one update (gradient
        accumulation) the last one counts."""

        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            i = self._last_layer
            if i is None or i not in indices or not module.training:
                return
            if not torch.is_grad_enabled():
                return
            z = inputs[0] if isinstance(inputs, tuple) and inputs else None
            if not isinstance(z, torch.Tensor) or not isinstance(output, torch.Tensor):
                return
            with torch.no_grad():
                self._health[i] = _health(self._layers[i].activation or "", z, output)
            self._last_layer = None

        return hook

    # -- ending ---------------------------------------------------------------------------------

    def _close(self, state: EndState) -> None:
        if self._closed:
            return
        self._closed = True
        for handle in [*self._handles, *self._forward_handles]:
            handle.remove()
        self._handles, self._forward_handles = [], []
        if self._scaler is not None and "step" in vars(self._scaler):
            delattr(self._scaler, "step")
        self._before, self._copied = None, False
        self._finalizer.detach()
        self._out.finish(state)


_LABELS = {
    "sigmoid": "saturated",
    "tanh": "saturated",
    "relu": "dead",
    "leaky_relu": "dead",
    "gelu": "dead",
}
