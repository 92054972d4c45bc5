"""Backward passes as the updates of a loop without an optimiser (pytorch/examples'
``regression/main.py``: ``p.data.add_(-lr * p.grad)``, no ``torch.optim``).

The end of a backward pass is found with a callback queued from a gradient hook (autograd runs
queued callbacks once the pass is done, as DistributedDataParallel's reducer does); the update
after it is over by the next forward pass of the model, found with a one-shot forward pre-hook.
The hooks exist only until the monitor knows how the loop updates: an optimiser step or a
:meth:`~bpmon.torch.monitor.Monitor.step` call removes them.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

T = TypeVar("T")


def weak_grad_hook(
    param: torch.Tensor, owner: T, call: Callable[[T, torch.Tensor], None]
) -> RemovableHandle:
    """``call(owner, param)`` after each accumulation of ``param``'s gradient, for as long as
    ``owner`` lives. A parameter's hooks are held on autograd's C++ side, where Python's
    collector does not look: a hook holding its owner (which holds the monitor, which holds
    the model, which holds the parameter) would keep the model alive after the user let go of
    it, so the hook holds the owner weakly, and ``call`` must not hold it at all."""
    ref = weakref.ref(owner)

    def hook(p: torch.Tensor) -> None:
        alive = ref()
        if alive is not None:
            call(alive, p)

    handle: RemovableHandle = param.register_post_accumulate_grad_hook(hook)  # type: ignore[no-untyped-call]
    return handle


class BackwardPasses:
    def __init__(
        self,
        params: Iterable[nn.Parameter],
        model: nn.Module,
        on_end: Callable[[], None],
        on_next_forward: Callable[[], None],
    ) -> None:
        self._model = model
        self._on_end = on_end
        self._on_next_forward = on_next_forward
        self._handles: list[RemovableHandle] = [
            weak_grad_hook(p, self, BackwardPasses._grad_hook) for p in params
        ]
        self._queued = False
        self._forward: RemovableHandle | None = None
        self.pending = False  # a backward pass ended; the update after it is not counted yet

    @property
    def on(self) -> bool:
        return bool(self._handles)

    def _grad_hook(self, param: torch.Tensor) -> None:
        if self._queued or not self._handles:
            return
        self._queued = True
        torch.autograd.Variable._execution_engine.queue_callback(self._ended)

    def _ended(self) -> None:
        self._queued = False
        if self._handles:
            self._on_end()

    def wait_for_forward(self) -> None:
        """Call ``on_next_forward`` at the model's next forward pass (once)."""
        self.pending = True
        if self._forward is None:
            self._forward = self._model.register_forward_pre_hook(self._next_forward)

    def _next_forward(self, module: nn.Module, args: Any) -> None:
        if self._forward is not None:
            self._forward.remove()
            self._forward = None
        self._on_next_forward()

    def remove(self) -> None:
        for handle in [*self._handles, *([self._forward] if self._forward else [])]:
            handle.remove()
        self._handles, self._forward = [], None
        self.pending = False
