"""Watch real PyTorch training: ``watch(model, "runs/exp1.jsonl")`` writes a bpmon run file.

```python
from bpmon.torch import watch
mon = watch(model, "runs/exp1.jsonl", every=50)   # the only required line
...
mon.log(loss=loss)        # optional, any step: loss, accuracy, test_accuracy, lr, epoch
```

``bpmon watch runs/exp1.jsonl`` (or ``bpmon replay``) then shows the same panels as bpmon's own
runs. This package imports without PyTorch; :func:`watch` imports it and, when it is missing,
raises :class:`TorchMissing` (an ``ImportError`` and a :class:`~bpmon.errors.BpmonError`) with
``bpmon.torch needs PyTorch: pip install 'bpmon[torch]'``.

Conventions (why, in the modules that implement them: :mod:`bpmon.torch.layers`,
:mod:`bpmon.torch.monitor`):

- **What is watched.** Every leaf module with a trainable ``weight`` of two or more dimensions
  (``Linear``, ``Conv1d/2d/3d``, ``ConvTranspose``, ``Embedding``, anything shaped like them),
  in ``model.named_modules()`` order, filtered by ``include=`` / ``exclude=`` (fnmatch patterns
  on the module names). Norm layers (BatchNorm, LayerNorm, GroupNorm, InstanceNorm, RMSNorm)
  are never rows of their own: they belong to the weight layer before them, as batch-norm
  belongs to its Dense layer in bpmon's engine (its row's ``grad_norm`` is of the Dense ``W``
  alone), and an activation after the norm layer is that weight layer's activation.
  A model wrapped in ``DistributedDataParallel``/``DataParallel`` (or ``torch.compile``) is
  unwrapped, so names do not start with ``module.``.
- **What is measured**, per watched layer, on each due update: the norms of the weight's and
  the bias's gradient (the accumulated gradient the optimiser is about to apply; a gradient
  that is None counts as 0), the weight norm after the update, the update ratio
  ``||W_after - W_before|| / ||W_after||``, the status by :func:`bpmon.telemetry.classify` with
  the run's :class:`~bpmon.config.Thresholds` (the last watched layer is the output layer), and,
  where the module after the layer is an ``nn.Sigmoid``/``Tanh``/``ReLU``/``LeakyReLU``/``GELU``,
  that activation's health with the engine's definitions (sigmoid saturated outside
  [0.05, 0.95], tanh ``|a| > 0.95``; ReLU and leaky ReLU "dead": ``z <= 0`` for every sample of
  the batch; GELU gets the ReLU test too, a unit that never leaves the negative side, where
  GELU's derivative is below 0.5 and falls to 0, so read its figure as "mostly off", not
  "dead") from the last training-mode forward before the update. ``delta_norm`` (the error
  signal at the layer's output) is not measured: it would need a backward hook on every module
  (it is null in the file).
- **When.** An *update* is one optimiser step: hooks on the optimiser (``optimizer=``, or the
  first optimiser that steps the model's parameters, found by a global step hook), or one call
  of :meth:`Monitor.step` in a hand-written loop without an optimiser. Update ``n`` (from 1) is
  *due* when ``n == 1`` or ``n % every == 0``. Its line carries the loss of its own iteration:
  it is written right after the update when something was logged after the update's forward
  pass (a loop that logs before ``step()``), else it takes the values of the :meth:`Monitor.log`
  calls that follow the update (a loop that logs after ``step()``) and is written at the next
  update or at :meth:`Monitor.close`. With a
  ``torch.amp.GradScaler`` passed as ``scaler=``, a step the scaler skips (inf/NaN gradients)
  is an update too, recorded with its non-finite gradients (status ``nonfinite``) and no change
  of the weights. Under ``torch.distributed`` only rank 0 writes (the others get an inert
  monitor); the gradients it reads are the reduced ones.
- **Cost.** On an update that is not due: two Python calls of a few attribute reads, no tensor
  operation, no host-device synchronisation (no ``.item()``, ``.cpu()``, ``float(tensor)``);
  :meth:`Monitor.log` keeps a detached reference to a tensor and reads it only on a due update.
  On a due update: one copy of the watched weights (held from just before the update to just
  after it), norms computed on the tensors' device (``torch._foreach_norm``), forward hooks on
  the watched layers and their activations during that update's forward passes only, and one
  transfer of all the scalars (one ``tolist()`` of one stacked tensor; a loss logged after the
  update adds one more).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

from bpmon.errors import BpmonError

if TYPE_CHECKING:
    import torch

    from bpmon.config import Thresholds
    from bpmon.torch.monitor import Monitor

__all__ = ["NEEDS_TORCH", "Monitor", "TorchMissing", "watch"]

NEEDS_TORCH = "bpmon.torch needs PyTorch: pip install 'bpmon[torch]'"


class TorchMissing(ImportError, BpmonError):
    """PyTorch is not installed. An ``ImportError`` for code that guards imports, and a
    :class:`~bpmon.errors.BpmonError` so that bpmon's own commands print one line."""


def require_torch() -> None:
    """Import PyTorch or raise :class:`TorchMissing` naming the extra to install."""
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise TorchMissing(NEEDS_TORCH) from exc


def watch(
    model: torch.nn.Module,
    path: str | os.PathLike[str] | IO[str],
    *,
    every: int = 50,
    optimizer: torch.optim.Optimizer | None = None,
    scaler: torch.amp.GradScaler | None = None,
    include: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
    name: str | None = None,
    thresholds: Thresholds | None = None,
) -> Monitor:
    """Watch ``model``'s training and write a run file to ``path`` (created with its folders,
    truncated if it exists; or an open text stream).

    ``every``: measure every ``every``-th update (and the first). ``optimizer``: the optimiser
    whose steps are the updates (default: the first one that steps these parameters).
    ``scaler``: the ``torch.amp.GradScaler`` in use, so that scaled gradients are divided by its
    scale and skipped steps are recorded. ``include``/``exclude``: fnmatch patterns on module
    names (``"encoder.*"``). ``name``: the run's name (default: the file's stem).
    ``thresholds``: for the statuses (default :class:`~bpmon.config.Thresholds`).

    Returns the :class:`~bpmon.torch.monitor.Monitor`; close it with :meth:`close` or use it as
    a context manager (the end line is also written at interpreter exit).
    """
    require_torch()
    from bpmon.torch.monitor import Monitor

    return Monitor(
        model,
        path,
        every=every,
        optimizer=optimizer,
        scaler=scaler,
        include=include,
        exclude=exclude,
        name=name,
        thresholds=thresholds,
    )


def __getattr__(attr: str) -> Any:
    # Monitor lives in a module that imports torch; it is loaded only when asked for.
    if attr == "Monitor":
        require_torch()
        from bpmon.torch.monitor import Monitor

        return Monitor
    raise AttributeError(f"module 'bpmon.torch' has no attribute {attr!r}")
