"""Activation health from forward hooks that exist only during a due update's forward passes:
registered after the update before a due one, removed after the due one, so an update that is
not due runs the model with no hook of ours.

Under ``torch.compile`` a compiled forward does not call hooks registered after it was
compiled, and the hooks come and go. A due update whose training forward did not run a watched
layer's hook while the layer received a gradient is reported, row by row, as "activation not
measured" with the reason, never as a silent gap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from bpmon.torch.layers import Layer
from bpmon.torch.measure import health

NOT_MEASURED = "activation not measured: its forward hooks did not run (torch.compile?)"


class Activations:
    """The forward hooks of the watched rows and what they saw during one update."""

    def __init__(self, layers: Sequence[Layer], on_training_forward: Callable[[], None]) -> None:
        self.layers = layers
        self.on_training_forward = on_training_forward
        self.handles: list[RemovableHandle] = []
        self.health: list[torch.Tensor | None] = [None] * len(layers)
        self.ran = [False] * len(layers)
        self.last: int | None = None  # the row whose forward ran last

    def arm(self, due_next: bool) -> None:
        if self.handles or due_next:  # else nothing was recorded since the last reset
            self.health = [None] * len(self.layers)
            self.ran = [False] * len(self.layers)
        self.last = None
        if due_next and not self.handles:
            self.handles = self._register()
        elif not due_next and self.handles:
            self.remove()

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []

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

    def _layer_hook(self, i: int) -> Callable[[nn.Module, Any, Any], None]:
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            self.last = i
            if torch.is_grad_enabled():
                self.ran[i] = True
                self.on_training_forward()

        return hook

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
