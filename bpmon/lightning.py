"""bpmon for Lightning: one callback writes a bpmon run file.

```python
from bpmon.lightning import BpmonCallback
trainer = lightning.Trainer(..., callbacks=[BpmonCallback("runs/x.jsonl", every=50)])
```

Needs ``lightning`` (``pip install 'bpmon[lightning]'``); importing this module without it
raises :class:`~bpmon.extras.ExtraMissing` with that line.

What it does, and why there:

- **Watching starts in** ``on_fit_start``, when the optimisers exist: :func:`bpmon.torch.watch`
  on the LightningModule with its optimiser (the first, when there are several; with manual
  optimisation and several optimisers, the first that steps the model) and, under a mixed
  precision plugin with a ``GradScaler`` (``"16-mixed"``), that scaler, so that scaled
  gradients are unscaled and skipped steps recorded. An *update* is one optimiser step: one per
  ``accumulate_grad_batches`` batches, measuring the accumulated gradient.
- **The closure first.** Lightning runs forward and backward in a closure it passes to
  ``optimizer.step(closure)``; the optimiser's step hooks, where the bridge reads the
  gradients, run before it, when the gradients are the previous update's. While watching, the
  callback wraps the optimiser's ``step`` (on the instance, undone at the end) to run the
  closure first and hand the optimiser its result, which is what Lightning's own mixed
  precision plugin does. Not for ``LBFGS``, which calls its closure several times: there the
  gradient norms are the previous evaluation's.
- **Clipping.** ``gradient_clip_val`` clips inside the closure, after
  ``on_before_optimizer_step``, with ``torch.nn.utils.clip_grad_norm_``/``clip_grad_value_``:
  the norms are before clipping exactly when the bridge sees those calls (see
  :mod:`bpmon.torch`).
- **Numbers.** After each due update the training step's loss (``outputs["loss"]``, times
  ``accumulate_grad_batches``, which Lightning divided it by) and every
  number of ``trainer.callback_metrics`` go to :meth:`~bpmon.torch.monitor.Monitor.log`
  (:mod:`bpmon.callbacks`), and again after each validation (not the sanity check). Reading
  ``callback_metrics`` makes Lightning compute its logged metrics, so it is done on due updates
  only.
- **Processes.** Under DDP only rank 0 writes; under FSDP2 every rank measures and rank 0
  writes (:mod:`bpmon.torch.distributed`).
- ``teardown`` (and ``on_exception``) closes the file with its end line.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, Any

from bpmon.extras import require

require("bpmon.lightning", "lightning", "lightning", "torch")

import lightning.pytorch as pl  # noqa: E402 - after the check that names the extra
import torch  # noqa: E402

from bpmon.callbacks import WatchOptions, accepts_metrics, feed  # noqa: E402
from bpmon.errors import BpmonError  # noqa: E402

if TYPE_CHECKING:
    from bpmon.config import Thresholds
    from bpmon.torch.monitor import Monitor

__all__ = ["BpmonCallback"]


def _closure_first(optimizer: torch.optim.Optimizer) -> Callable[[], None]:
    """Wrap ``optimizer.step`` on the instance to run a closure before the step's hooks;
    returns what undoes it."""
    original = optimizer.step

    def step(closure: Callable[[], Any] | None = None, **kwargs: Any) -> Any:
        if closure is None:
            return original(**kwargs)
        with torch.enable_grad():
            result = closure()
        return original(closure=lambda: result, **kwargs)

    optimizer.step = step  # type: ignore[method-assign]

    def undo() -> None:
        if vars(optimizer).get("step") is step:
            del optimizer.step

    return undo


class BpmonCallback(pl.Callback):
    """Write a bpmon run file of a Lightning ``Trainer``'s fit to ``path``.

    The arguments are :func:`bpmon.torch.watch`'s: ``every`` (measure the first and every
    ``every``-th optimiser update), ``include``/``exclude`` (fnmatch patterns on module names),
    ``name`` (default: the file's stem), ``thresholds``. ``monitor`` is the
    :class:`~bpmon.torch.monitor.Monitor` once fitting has begun.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | IO[str],
        *,
        every: int = 50,
        include: str | Sequence[str] | None = None,
        exclude: str | Sequence[str] | None = None,
        name: str | None = None,
        thresholds: Thresholds | None = None,
    ) -> None:
        self.options = WatchOptions(path, every, include, exclude, name, thresholds)
        self.monitor: Monitor | None = None
        self._metrics = False
        self._fed = 0  # the update whose numbers were fed last
        self._undo: Callable[[], None] | None = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.monitor is not None:
            raise BpmonError(
                "BpmonCallback: this callback has watched a fit() already; give each fit() "
                "its own BpmonCallback and file (the first run's file is kept)"
            )
        optimizers = list(trainer.optimizers)
        optimizer = optimizers[0] if len(optimizers) == 1 else None
        self.monitor = self.options.watch(
            pl_module,
            optimizer=optimizer,
            scaler=getattr(trainer.precision_plugin, "scaler", None),
        )
        self._metrics = accepts_metrics(self.monitor)
        if (
            self.monitor.active
            and optimizer is not None
            and pl_module.automatic_optimization
            and not isinstance(optimizer, torch.optim.LBFGS)
        ):
            self._undo = _closure_first(optimizer)

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        mon = self.monitor
        if mon is None or not mon.active:
            return
        n = mon.steps
        if n == self._fed or not (n == 1 or n % mon.every == 0):
            return  # not right after a due update: nothing read, nothing computed
        self._fed = n
        logged: dict[str, Any] = dict(trainer.callback_metrics)
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor):
            # Lightning hands back the loss divided by accumulate_grad_batches (what backward
            # got); the run file's loss is the training step's own.
            logged["loss"] = loss.detach() * trainer.accumulate_grad_batches
        feed(mon, logged, metrics=self._metrics, epoch=float(trainer.current_epoch))

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        mon = self.monitor
        if mon is None or not mon.active or trainer.sanity_checking:
            return
        # The training loss was fed after its update; only the validation's numbers are new.
        logged = {k: v for k, v in trainer.callback_metrics.items() if k != "loss"}
        feed(mon, logged, metrics=self._metrics, epoch=float(trainer.current_epoch))

    def _close(self, exception: BaseException | None = None) -> None:
        if self._undo is not None:
            self._undo()
            self._undo = None
        if self.monitor is not None:
            # The monitor's context-manager exit: "interrupted" after ctrl+c, "error" after an
            # exception, "finished" otherwise (a second close does nothing).
            kind = None if exception is None else type(exception)
            self.monitor.__exit__(kind, exception, None)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._close(exception)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            self._close()
