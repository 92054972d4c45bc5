"""A read-only, per-layer view of a network: what the telemetry needs to know about one Dense
layer after a training step, and nothing about how the engine stores it.

:meth:`bpmon.engine.network.Network.layer_views` produces these from its own buffers; anything
else that trains a multi-layer perceptron (a bridge from another framework, say, with its tensors
converted to NumPy arrays) can build them from plain arrays, and :mod:`bpmon.telemetry` computes
the same figures from either. Activations are named, not passed as objects: the names are those
of :data:`bpmon.config.ACTIVATIONS`, and the telemetry looks up what it needs by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bpmon.engine.activations import Array


@dataclass(frozen=True, eq=False)
class LayerView:
    """One Dense layer ``x @ W + b`` and the activation that follows it.

    Shapes follow the engine: ``W`` is ``(fan_in, fan_out)``; ``dW`` has ``W``'s shape, ``db``
    is ``(fan_out,)``; ``delta``, ``z`` and ``a`` are ``(batch, fan_out)``. None means "not
    known" (no backward pass yet, no optimiser, no hidden activation). The arrays may be live
    views of the engine's buffers, not copies: a view is only good until the next training step,
    and its reader must not write to it.

    - ``update``: the last optimiser step applied to ``W``, ``W_new = W_old - update``;
    - ``delta``: ``dL/d(x @ W + b)``, the error signal that arrived at the Dense layer's own
      output in the last backward pass (with batch-norm: after batch-norm's backward, so it can
      differ from the gradient at the activation's input ``z``);
    - ``activation``: the name of the hidden activation after the layer (None for the output
      layer, whose activation is fused with the loss);
    - ``z``, ``a``: that activation's input and output in the last training forward (``z`` is
      batch-norm's output when the layer has batch-norm, else ``x @ W + b``);
    - ``params``: every trainable parameter of the layer, keyed by the network's parameter name
      (``W`` and the bias, and batch-norm's ``gamma``/``beta`` when the layer has it), for
      checks that look at all of them; may be empty when the producer does not list them.

    Equality is identity (``eq=False``): comparing arrays element-wise is not what ``==`` on a
    view should mean.
    """

    name: str
    W: Array
    dW: Array | None = None
    db: Array | None = None
    update: Array | None = None
    delta: Array | None = None
    activation: str | None = None
    z: Array | None = None
    a: Array | None = None
    params: Mapping[str, Array] = field(default_factory=dict)

    @property
    def fan_in(self) -> int:
        return int(self.W.shape[0])

    @property
    def fan_out(self) -> int:
        return int(self.W.shape[1])
