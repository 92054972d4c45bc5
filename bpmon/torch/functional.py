"""Activations called as functions (``F.relu(self.conv1(x))``, ``x.tanh()``), as pytorch/examples'
mnist CNN and many hand-written models do: no module follows the layer, so no forward hook can
see them. During a due update's training forward only, a :class:`~torch.overrides.TorchFunctionMode`
sees every torch function the model calls and hands the activations among them to
:class:`~bpmon.torch.forward.Activations`, which credits each to the watched layer that ran just
before it.

Why a mode, and why only then: a mode is the one public way to see a function call without
replacing it, and it costs a Python call per torch function while it is on; it is entered by a
forward pre-hook on the watched model and left by its forward hook (``always_call``, so an
exception in the forward does not leave it on), hooks that exist only while a due update is
armed. An update that is not due runs with no mode and no hook.

Under ``torch.compile`` the mode is never entered, and an activation called as a function is
not measured: a model compiled before :func:`~bpmon.torch.watch` (or with ``.compile()``) gets
no mode hooks, and in one compiled after it the hooks leave the mode out while dynamo traces
the forward. Traced with the mode, nanoGPT (``model = torch.compile(model)`` after the README's
line) had dynamo compile the mode's ``__torch_function__`` as a frame of its own once per
argument shape: 8 recompiles, the cache's limit, against none with the mode left out (the 2
of its forward are the forward hooks' that come and go).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils.hooks import RemovableHandle

# The activation functions by the name bpmon's health definitions use (bpmon.torch.measure.health):
# torch's functions, their in-place forms and the Tensor methods. A module (nn.ReLU) calls these
# too; the call is credited only to a row that has no activation module.
FUNCTIONS: dict[Callable[..., Any], str] = {
    F.relu: "relu",
    F.relu_: "relu",
    torch.relu: "relu",
    torch.relu_: "relu",
    torch.Tensor.relu: "relu",
    torch.Tensor.relu_: "relu",
    F.leaky_relu: "leaky_relu",
    F.leaky_relu_: "leaky_relu",
    F.gelu: "gelu",
    F.sigmoid: "sigmoid",
    torch.sigmoid: "sigmoid",
    torch.sigmoid_: "sigmoid",
    torch.Tensor.sigmoid: "sigmoid",
    torch.Tensor.sigmoid_: "sigmoid",
    F.tanh: "tanh",
    torch.tanh: "tanh",
    torch.tanh_: "tanh",
    torch.Tensor.tanh: "tanh",
    torch.Tensor.tanh_: "tanh",
}

Seen = Callable[[str, torch.Tensor, torch.Tensor], None]


class _Calls(TorchFunctionMode):
    """Calls ``seen(kind, input, output)`` after each activation function with a tensor input.
    Torch turns the mode off while ``__torch_function__`` runs, so ``seen``'s own torch calls
    are not seen again."""

    def __init__(self, seen: Seen) -> None:
        super().__init__()
        self.seen = seen

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        out = func(*args, **(kwargs or {}))
        kind = FUNCTIONS.get(func)
        z = args[0] if args else None
        if kind is not None and isinstance(z, torch.Tensor) and isinstance(out, torch.Tensor):
            self.seen(kind, z, out)
        return out


def compiled(model: nn.Module) -> bool:
    """Whether ``model`` or a module in it was given to ``torch.compile`` (or ``.compile()``)."""
    return any(
        hasattr(m, "_orig_mod") or getattr(m, "_compiled_call_impl", None) is not None
        for m in model.modules()
    )


class CallWatch:
    """The mode on for each of ``model``'s forward passes (a nested call of ``model`` keeps the
    one mode): entered by a forward pre-hook, left by a forward hook that runs even when the
    forward raises.

    :meth:`remove` during a forward (an update completed by a pre-hook, as a loop without an
    optimiser does at its next forward) leaves the mode at that forward's end: removing the
    exit hook then would leave the mode on torch's stack for good, every later torch call
    going through it and its callback keeping the model alive."""

    def __init__(self, model: nn.Module, seen: Seen) -> None:
        self.mode = _Calls(seen)
        self.depth = 0
        self.closing = False
        self.handles: list[RemovableHandle] = [
            model.register_forward_pre_hook(self._before),
            model.register_forward_hook(self._after, always_call=True),
        ]

    def _before(self, module: nn.Module, inputs: Any) -> None:
        # Not while dynamo traces the forward (a model compiled after watch()): in the graph,
        # the mode made dynamo compile its __torch_function__ as a frame of its own, once
        # per shape (nanoGPT: 8 recompiles, the cache limit).
        if (self.depth == 0 and self.closing) or torch.compiler.is_compiling():
            return
        self.depth += 1
        if self.depth == 1:
            self.mode.__enter__()  # type: ignore[no-untyped-call]

    def _after(self, module: nn.Module, inputs: Any, output: Any) -> None:
        if self.depth == 0 or torch.compiler.is_compiling():
            return
        self.depth -= 1
        if self.depth == 0:
            self.mode.__exit__(None, None, None)  # type: ignore[no-untyped-call]
            if self.closing:
                self._drop()

    def remove(self) -> None:
        self.closing = True
        if self.depth == 0:
            self._drop()

    def _drop(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []
