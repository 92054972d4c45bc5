"""The gradient before clipping, and the clipping itself.

``torch.nn.utils.clip_grad_norm_`` scales every gradient by one factor,
``min(1, max_norm / (total + 1e-6))``, and returns the pre-clip total norm; ``clip_grad_value_``
clamps each entry. Either way the gradient the optimiser's step pre-hook sees is the clipped
one. Scripts and trainers (nanoGPT, HF accelerate, Lightning) look both functions up at call
time as ``torch.nn.utils.clip_grad_norm_`` (or ``torch.nn.utils.clip_grad.clip_grad_norm_``);
accelerate (and so the Hugging Face Trainer) instead calls ``torch.nn.utils.get_total_norm``
then ``torch.nn.utils.clip_grads_with_norm_(parameters, max_norm, total_norm)``, the two halves
of ``clip_grad_norm_`` (which itself calls the private ``_clip_grads_with_norm_``, so the two
wrappers never nest). While a monitor is open all three are wrapped here: on a due update the
monitor measures the gradients before the call; on any other update the wrapper keeps the
pre-clip total-norm tensor and ``max_norm`` (no read-back), from which the share of recent
updates that clipping scaled is computed at the next due update. The originals are put back
when the last monitor closes.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import torch
import torch.nn.utils as nn_utils
import torch.nn.utils.clip_grad as clip_grad


class Clipped(Protocol):
    """What the wrappers tell an open monitor (:class:`bpmon.torch.updates.Updates` has it):
    a protocol here, so that this module needs nothing of the monitor's."""

    def clip_concerns(self, params: Sequence[torch.Tensor]) -> bool: ...

    def before_clip(self) -> None: ...

    def after_clip(self, name: str, total: object, limit: object) -> None: ...


_NAMES = ("clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_")
# The pre-clip total norm: returned by clip_grad_norm_, an argument of clip_grads_with_norm_.
_TOTAL_AT = {"clip_grad_norm_": None, "clip_grads_with_norm_": 1}
_active: weakref.WeakSet[Clipped] = weakref.WeakSet()
_originals: dict[str, Callable[..., Any]] = {}


def _params(parameters: torch.Tensor | Iterable[torch.Tensor]) -> list[torch.Tensor]:
    if isinstance(parameters, torch.Tensor):
        return [parameters]
    return list(parameters)


def _wrap(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def wrapper(parameters: Any, *args: Any, **kwargs: Any) -> Any:
        params = _params(parameters)  # a generator is read once: hand the list on
        concerned = [m for m in list(_active) if m.clip_concerns(params)]
        for monitor in concerned:
            monitor.before_clip()
        result = original(params, *args, **kwargs)
        limit = args[0] if args else kwargs.get("max_norm", kwargs.get("clip_value"))
        total = None
        if name in _TOTAL_AT:
            at = _TOTAL_AT[name]
            total = (
                result if at is None else (args[at] if len(args) > at else kwargs.get("total_norm"))
            )
        for monitor in concerned:
            monitor.after_clip("clip_grad_norm_" if total is not None else name, total, limit)
        return result

    wrapper._bpmon_torch = True  # type: ignore[attr-defined]
    return wrapper


def activate(monitor: Clipped) -> None:
    """Wrap the clipping functions (once) while ``monitor`` is open."""
    _active.add(monitor)
    if _originals:
        return
    for name in _NAMES:
        original = getattr(clip_grad, name, None) or getattr(nn_utils, name, None)
        if original is None:  # clip_grads_with_norm_ is newer than torch 2.2
            continue
        _originals[name] = original
        wrapped = _wrap(name, original)
        for module in (clip_grad, nn_utils):
            if getattr(module, name, None) is original:
                setattr(module, name, wrapped)


def deactivate(monitor: Clipped) -> None:
    """Put the originals back when no monitor is open (unless someone wrapped ours since)."""
    _active.discard(monitor)
    if len(_active) or not _originals:
        return
    for name, original in _originals.items():
        for module in (clip_grad, nn_utils):
            if getattr(getattr(module, name, None), "_bpmon_torch", False):
                setattr(module, name, original)
    _originals.clear()
