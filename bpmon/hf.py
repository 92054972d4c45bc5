"""bpmon for the Hugging Face ``Trainer``: one callback writes a bpmon run file.

```python
from bpmon.hf import BpmonCallback
trainer = Trainer(model=model, args=args, ..., callbacks=[BpmonCallback("runs/x.jsonl", every=50)])
```

Needs ``transformers`` and ``accelerate`` (``pip install 'bpmon[hf]'``); importing this module
without them raises :class:`~bpmon.extras.ExtraMissing` with that line.

What it does, and why there:

- **Watching starts in** ``on_train_begin``, which is given the model and the optimiser the
  Trainer built (an ``accelerate`` ``AcceleratedOptimizer`` is unwrapped to the torch optimiser
  inside it, whose step hooks fire). It is :func:`bpmon.torch.watch` with that optimiser, so an
  *update* is one optimiser step: one per ``gradient_accumulation_steps`` micro-batches, the
  gradient measured being the accumulated one.
- **Clipping.** The Trainer clips (``max_grad_norm``) before ``on_pre_optimizer_step`` through
  ``accelerate``, which (1.16) calls ``torch.nn.utils.get_total_norm`` and
  ``torch.nn.utils.clip_grads_with_norm_``, not ``clip_grad_norm_``: the gradient norms are
  before clipping exactly when the bridge sees those calls (see :mod:`bpmon.torch`).
- **Numbers.** Every number of the Trainer's logs (``on_log``: the training loss averaged over
  ``logging_steps``, ``eval_loss`` and the other eval metrics, ``grad_norm``,
  ``learning_rate``, ...) goes to :meth:`~bpmon.torch.monitor.Monitor.log` as in
  :mod:`bpmon.callbacks`; the run file's ``lr`` is the optimiser's, read at the update.
- **Processes.** Under DDP only rank 0 writes; under FSDP2 every rank measures (the all-reduce
  of :mod:`bpmon.torch.distributed`) and rank 0 writes.
- ``on_train_end`` closes the file (the end line); a run that dies writes ``error`` at exit.
  One callback watches one ``train()``: a second call is refused with one line, since it
  would truncate the first run's file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

from bpmon.extras import require

require("bpmon.hf", "hf", "transformers", "accelerate", "torch")

import torch  # noqa: E402 - after the check that names the extra
from transformers import TrainerCallback  # noqa: E402

from bpmon.callbacks import WatchOptions, accepts_metrics, feed  # noqa: E402
from bpmon.errors import BpmonError  # noqa: E402

if TYPE_CHECKING:
    from bpmon.config import Thresholds
    from bpmon.torch.monitor import Monitor

__all__ = ["BpmonCallback"]


def torch_optimizer(optimizer: object) -> torch.optim.Optimizer:
    """The torch optimiser inside ``accelerate``'s (or any) wrapper that keeps it as
    ``.optimizer``: its step hooks are the ones that fire."""
    seen = 0
    while not _is_plain(optimizer) and seen < 8:
        inner = getattr(optimizer, "optimizer", None)
        if inner is None:
            break
        optimizer, seen = inner, seen + 1
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise BpmonError(
            f"BpmonCallback: the Trainer's optimizer is a {type(optimizer).__name__}, "
            "not a torch.optim.Optimizer: nothing to watch"
        )
    return optimizer


def _is_plain(optimizer: object) -> bool:
    return isinstance(optimizer, torch.optim.Optimizer) and not hasattr(optimizer, "optimizer")


class BpmonCallback(TrainerCallback):
    """Write a bpmon run file of a Hugging Face ``Trainer``'s training to ``path``.

    The arguments are :func:`bpmon.torch.watch`'s: ``every`` (measure the first and every
    ``every``-th optimiser update), ``include``/``exclude`` (fnmatch patterns on module names),
    ``name`` (default: the file's stem), ``thresholds``. ``monitor`` is the
    :class:`~bpmon.torch.monitor.Monitor` once training has begun.
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

    def on_train_begin(
        self,
        args: Any,
        state: Any,
        control: Any,
        model: torch.nn.Module | None = None,
        optimizer: object = None,
        **kwargs: Any,
    ) -> None:
        if self.monitor is not None:
            raise BpmonError(
                "BpmonCallback: this callback has watched a train() already; give each "
                "train() its own BpmonCallback and file (the first run's file is kept)"
            )
        if model is None or optimizer is None:
            raise BpmonError("BpmonCallback: the Trainer passed no model or optimizer")
        self.monitor = self.options.watch(
            model,
            optimizer=torch_optimizer(optimizer),
        )
        self._metrics = accepts_metrics(self.monitor)

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if self.monitor is None or not logs:
            return
        epoch = logs.get("epoch", getattr(state, "epoch", None))
        feed(
            self.monitor,
            logs,
            metrics=self._metrics,
            epoch=float(epoch) if isinstance(epoch, int | float) else None,
        )

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.monitor is not None:
            self.monitor.close()
