"""Watch real PyTorch training: ``watch(model, "runs/exp1.jsonl")`` writes a bpmon run file.

```python
from bpmon.torch import watch
mon = watch(model, "runs/exp1.jsonl", every=50)   # the only required line
...
mon.log(loss=loss)        # optional, any step: loss, accuracy, test_accuracy, lr, epoch, ...
```

``bpmon watch runs/exp1.jsonl`` (or ``bpmon replay``) then shows the same panels as bpmon's own
runs. This package imports without PyTorch; :func:`watch` imports it and, when it is missing,
raises :class:`TorchMissing` (an ``ImportError`` and a :class:`~bpmon.errors.BpmonError`) with
``bpmon.torch needs PyTorch: pip install 'bpmon[torch]'``.

Conventions (why, in the modules that implement them; docs/torch-bridge.md has the whole story):

- **What is watched** (:mod:`bpmon.torch.layers`): every trainable parameter, in exactly one
  row: weight layers (weight and bias), recurrent layers (one row per layer and direction),
  attention's input projection, normalisation layers recognised by what they are (vector rows,
  left out of the statuses' profile), raw Parameters by their path, a tied parameter once,
  named by both owners, at the place of the last (the head). ``include=``/``exclude=`` are
  fnmatch patterns on row names; the parameters of rows left out are the header's
  ``excluded``. A model wrapped in ``DistributedDataParallel``/``DataParallel`` (or
  ``torch.compile``) is unwrapped, so names do not start with ``module.``.
- **What is measured** (:mod:`bpmon.torch.measure`, :mod:`bpmon.torch.clipping`), per row on
  each due update: the gradient norms before any ``clip_grad_norm_``/``clip_grad_value_``
  (unscaled under a GradScaler; a gradient that is None counts as 0), the weight norm after the
  update, the update ratio ``||W_after - W_before|| / ||W_after||`` (NaN where no hooked
  optimiser stepped the row), the status by :func:`bpmon.telemetry.classify`, and the health
  of an ``nn.Sigmoid``/``Tanh``/``ReLU``/``LeakyReLU``/``GELU`` after the layer, or of the same
  activation called as a function on the layer's output (:mod:`bpmon.torch.forward`,
  :mod:`bpmon.torch.functional`; a ``note`` says when its hooks did not run, as under
  ``torch.compile``). Per update: the global pre-clip norm, the clipping's limit and factor,
  the share of recent updates it scaled, and every param group's lr read before the step.
  ``delta_norm`` is not measured (null).
- **When** (:mod:`bpmon.torch.updates`): an *update* is one step of the first optimiser that
  steps watched parameters (or ``optimizer=``); without an optimiser, one backward pass
  (confirmed by the weights changing before the next forward), or one :meth:`Monitor.step`
  call. Update ``n`` (from 1) is *due* when ``n == 1`` or ``n % every == 0``. Its line carries
  the loss of its own iteration, whether the loop logs before or after its step. The last
  update, due or not, has a line: one that was not due gets it when the monitor closes (on
  close, at the ``with`` block's end, at exit), with its gradient norms from the series, the
  weights as they are then and the logged values, its activations and update ratio unknown
  (not with ``update_norms=False``, which keeps no gradient norm of it).
- **Where the first NaN came from** (:mod:`bpmon.torch.nonfinite`): on due updates (every
  update with ``nan_trace=True``), the first parameter in backward order whose gradient is not
  finite and the first module whose output is not finite while its inputs are, recorded from
  the first such update on (the line's ``nonfinite``).
- **Every update** (:mod:`bpmon.torch.series`, :mod:`bpmon.torch.spikes`): the logged loss and
  the global gradient norm before clipping, kept on the device and carried by the next line
  (``update_start``, ``update_losses``, ``update_grad_norms``); spikes in them (7 sigma over the
  last 1,000 updates) scored at each line, the K updates after one measured in full, and its
  record naming the row whose norm left its own range first.
- **Cost.** On an update that is not due: a few Python calls (the optimisers' hooks, the
  clipping wrapper keeping the returned norm tensor), one norm of the gradients on their device
  (``update_norms=False`` leaves it out), no host-device synchronisation (no
  ``.item()``, ``.cpu()``, ``float(tensor)``); :meth:`Monitor.log` keeps a detached reference
  to a tensor and reads it only on a due update. On a due update: one copy of the watched
  weights, norms on the tensors' device, forward hooks during that update's forward passes,
  and one transfer of all the scalars.
- **Ends** (:mod:`bpmon.torch.ending`): the end line on close, at exit, on SIGTERM and
  ``sys.exit(n)``; a second ``watch()`` on one path closes the first.
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
    nan_trace: bool = False,
    spike_sigmas: float = 7.0,
    spike_window: int = 1000,
    spike_context: int = 8,
    update_norms: bool = True,
) -> Monitor:
    """Watch ``model``'s training and write a run file to ``path`` (created with its folders,
    truncated if it exists; or an open text stream).

    ``every``: measure every ``every``-th update (and the first). ``optimizer``: the optimiser
    whose steps are the updates (default: the first one that steps these parameters).
    ``scaler``: the ``torch.amp.GradScaler`` in use, so that scaled gradients are divided by its
    scale and skipped steps are recorded. ``include``/``exclude``: fnmatch patterns on row
    names (``"encoder.*"``). ``name``: the run's name (default: the file's stem).
    ``thresholds``: for the statuses (default :class:`~bpmon.config.Thresholds`), validated as
    a preset's are: each finite and in range, so "no limit" is a large finite number.
    ``watch()`` on a path this process already watches closes the earlier monitor first.
    ``nan_trace``: look for the first non-finite gradient and forward output on every update,
    not only on due ones (:mod:`bpmon.torch.nonfinite`; it reads a few flags back every
    update: its cost is in ``python -m benchmarks --only bridge``).
    ``spike_sigmas``, ``spike_window``: a spike is a loss or global gradient norm at least this
    many standard deviations above the mean of this many updates before it (OLMo 2's 7 and
    1,000); ``spike_context``: the K updates whose rows' norms a spike's record holds before it,
    and that are measured in full after it (:mod:`bpmon.torch.spikes`). ``update_norms``: norm
    the gradients on every update (one pass over them, on their device) for the per-update
    series and the spikes' context; False leaves only the loss series (see
    docs/torch-bridge.md, "What it costs", for when that pass matters).

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
        nan_trace=nan_trace,
        spike_sigmas=spike_sigmas,
        spike_window=spike_window,
        spike_context=spike_context,
        update_norms=update_norms,
    )


def __getattr__(attr: str) -> Any:
    # Monitor lives in a module that imports torch; it is loaded only when asked for.
    if attr == "Monitor":
        require_torch()
        from bpmon.torch.monitor import Monitor

        return Monitor
    raise AttributeError(f"module 'bpmon.torch' has no attribute {attr!r}")
