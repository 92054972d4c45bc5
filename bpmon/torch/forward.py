"""Activation health from forward hooks that exist only during a due update's forward passes:
registered after the update before a due one, removed after the due one, so an update that is
not due runs the model with no hook of ours.

An activation called as a function (``F.relu``, ``x.tanh()``) is seen by
:mod:`bpmon.torch.functional` during the same forward passes and credited to a weight layer
with no activation module when its input is that layer's output tensor itself, or what a
normalisation layer made of it (``F.relu(self.bn(self.conv(x)))``; an in-place residual sum
keeps the tensor). Anything computed from it first is not the layer's activation: a GELU
written out with ``torch.tanh`` (Hugging Face's ``NewGELUActivation``) is not a tanh layer.

Under ``torch.compile`` a compiled forward does not call hooks registered after it was
compiled, and the hooks come and go. A due update whose training forward did not run a watched
layer's hook while the layer received a gradient is reported, row by row, as "activation not
measured" with the reason, never as a silent gap.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from bpmon.torch import functional
from bpmon.torch.layers import Layer
from bpmon.torch.measure import health

NOT_MEASURED = "activation not measured: its forward hooks did not run (torch.compile?)"


class Activations:
    """The forward hooks of the watched rows and what they saw during one update."""

    def __init__(
        self,
        layers: Sequence[Layer],
        on_training_forward: Callable[[], None],
        model: nn.Module | None = None,
    ) -> None:
        """``model``: the watched model, whose forward passes :mod:`bpmon.torch.functional`
        watches for activations called as functions (None: not watched, as under compile)."""
        self.layers = layers
        self.on_training_forward = on_training_forward
        self.handles: list[RemovableHandle] = []
        self.health: list[torch.Tensor | None] = [None] * len(layers)
        self.ran = [False] * len(layers)
        self.last: int | None = None  # the row whose forward ran last
        # Its output, held weakly (the logits of a large vocabulary can be gigabytes).
        self.last_out: weakref.ref[torch.Tensor] | None = None
        # Rows whose activation can only be a function: weight layers with no activation
        # module (an embedding's output is looked up, not activated).
        self.bare = {
            i
            for i, row in enumerate(layers)
            if row.module is not None
            and not row.vector
            and row.act_module is None
            and row.activation is None
            and not isinstance(row.module, nn.Embedding)
        }
        self.model = model if self.bare else None
        # The activation function found after each bare row (kept from one due update to the
        # next: a row's activation does not change). The calls are watched until a due
        # update's training forward has run under the mode, and after that only if it found
        # one: a model without such activations (nanoGPT's) pays for the mode once.
        self.kinds: list[str | None] = [None] * len(layers)
        self.discovered = False
        self.calls: functional.CallWatch | None = None
        self.norm_handles: list[RemovableHandle] = []

    def arm(self, due_next: bool) -> None:
        if self.calls is not None and any(self.ran):
            self.discovered = True
        if self.handles or due_next:  # else nothing was recorded since the last reset
            self.health = [None] * len(self.layers)
            self.ran = [False] * len(self.layers)
        self.last, self.last_out = None, None
        if due_next and not self.handles:
            self.handles = self._register()
        elif not due_next and self.handles:
            self.remove()
        calls = (
            due_next
            and self.model is not None
            and (not self.discovered or any(k is not None for k in self.kinds))
        )
        if calls and self.calls is None and self.model is not None:
            self._watch_calls(self.model)
        elif not calls and self.calls is not None:
            self._unwatch_calls()

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []
        self._unwatch_calls()

    def activations(self) -> list[str | None]:
        """Each row's activation: its module's, or the function found after it."""
        return [row.activation or self.kinds[i] for i, row in enumerate(self.layers)]

    def notes(self) -> list[str]:
        """Per row, why its activation's health is missing this update ("" when it is not)."""
        return [
            NOT_MEASURED
            if row.act_module is not None and self.health[i] is None and not self.ran[i]
            else ""
            for i, row in enumerate(self.layers)
        ]

    def _register(self) -> list[RemovableHandle]:
        handles = []
        by_act: dict[nn.Module, list[int]] = {}
        for i, layer in enumerate(self.layers):
            if layer.module is None or layer.vector:
                continue  # a norm layer between a layer and its activation is not "last"
            handles.append(layer.module.register_forward_hook(self._layer_hook(i)))
            if layer.act_module is not None:
                by_act.setdefault(layer.act_module, []).append(i)
        for module, indices in by_act.items():
            handles.append(module.register_forward_hook(self._act_hook(indices)))
        return handles

    def _watch_calls(self, model: nn.Module) -> None:
        """The function mode for ``model``'s forward passes, and the norm layers' hooks that let
        an activation after a norm count as the layer's."""
        self.calls = functional.CallWatch(model, self._called)
        self.norm_handles = [
            layer.module.register_forward_hook(self._norm_hook)
            for layer in self.layers
            if layer.module is not None and layer.vector
        ]

    def _unwatch_calls(self) -> None:
        if self.calls is not None:
            self.calls.remove()  # at the end of the forward now running, if one is
            self.calls = None
        for handle in self.norm_handles:
            handle.remove()
        self.norm_handles = []

    def _layer_hook(self, i: int) -> Callable[[nn.Module, Any, Any], None]:
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            self.last = i
            self.last_out = weakref.ref(output) if isinstance(output, torch.Tensor) else None
            if torch.is_grad_enabled():
                self.ran[i] = True
                self.on_training_forward()

        return hook

    def _norm_hook(self, module: nn.Module, inputs: Any, output: Any) -> None:
        """A normalisation of the last layer's output stands for that output."""
        z = inputs[0] if isinstance(inputs, tuple) and inputs else None
        last = self.last_out() if self.last_out is not None else None
        if last is not None and last is z and isinstance(output, torch.Tensor):
            self.last_out = weakref.ref(output)

    def _called(self, kind: str, z: torch.Tensor, a: torch.Tensor) -> None:
        """An activation function ran (:mod:`bpmon.torch.functional`): credited to the bare row
        that ran last, if its input is that row's output, in a training forward."""
        i = self.last
        if i is None or i not in self.bare or self.last_out is None or self.last_out() is not z:
            return
        module = self.layers[i].module
        if module is None or not module.training or not torch.is_grad_enabled():
            return
        with torch.no_grad():
            self.health[i] = health(kind, z, a)
        self.kinds[i] = kind
        self.last = None

    def _act_hook(self, indices: list[int]) -> Callable[[nn.Module, Any, Any], None]:
        """Health from this activation's call, credited to the watched layer that ran just
        before it, if that layer is one this activation follows (a module shared by several
        layers is called once after each). Eval-mode and no-grad forwards (validation) are
        not the update's and are ignored; with several forwards before one update (gradient
        accumulation) the last one counts."""

        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            i = self.last
            if i is None or i not in indices or not module.training:
                return
            if not torch.is_grad_enabled():
                return
            z = inputs[0] if isinstance(inputs, tuple) and inputs else None
            if not isinstance(z, torch.Tensor) or not isinstance(output, torch.Tensor):
                return
            with torch.no_grad():
                self.health[i] = health(self.layers[i].activation or "", z, output)
            self.last = None

        return hook
