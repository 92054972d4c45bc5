"""Per-layer gradient telemetry: the facts the monitor shows, computed from a network's buffers.

For each Dense layer: the Frobenius norms of ``dL/dW``, ``dL/db`` and ``W``, the update ratio
``||step|| / ||W||`` of the last optimiser step, the norm of the error signal ``delta = dL/dz``
that arrived at the layer's output, and the health of the activation that follows it (the
fraction of saturated entries for sigmoid/tanh, of dead units for the ReLU family). Each layer
then gets a status from :func:`classify`.

This module reads engine arrays and returns plain immutable values; it is called from the
trainer's thread only, at snapshot time, never on every step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from bpmon.config import Thresholds
from bpmon.engine.activations import Array
from bpmon.engine.network import Network
from bpmon.engine.optimizers import Optimizer

Status = Literal["vanishing", "healthy", "exploding", "nonfinite"]
STATUSES: tuple[Status, ...] = ("vanishing", "healthy", "exploding", "nonfinite")


@dataclass(frozen=True)
class LayerStats:
    """One Dense layer at one snapshot. ``health_label`` says what ``health`` counts
    ("saturated" or "dead"; empty for the output layer, which has no hidden activation)."""

    name: str
    fan_in: int
    fan_out: int
    grad_norm: float
    bias_grad_norm: float
    weight_norm: float
    update_ratio: float
    delta_norm: float
    health: float
    health_label: str
    status: Status


def _norm(a: Array | None) -> float:
    if a is None:
        return math.nan
    # vdot on the raveled array is one BLAS call, and stays exact to the Frobenius definition.
    return math.sqrt(float(np.vdot(a, a)))


def classify(grad_norms: Sequence[float], th: Thresholds) -> tuple[Status, ...]:
    """The status of each layer from its weight-gradient norm; the last entry is the output layer.

    Why relative tests with absolute floors, not one absolute number: the overall gradient scale
    moves with the loss (mse on a 0/1 target vs cross-entropy over 10 classes) and shrinks as a
    run converges, so "1e-4 is small" is true on one run and false on the next. What identifies
    the failure is the *profile* across layers. The error signal enters at the output layer; a
    layer whose gradient grew ``explode_rel`` times on the way back from it is exploding, and a
    layer that receives ``vanish_rel`` or less of the largest healthy layer's gradient is starving
    while the others learn (the story: 1e-4 against 1e-1). The absolute floors catch what no
    ratio can: gradients so large (``explode_abs``) that a unit learning rate is already a blow-up,
    and gradients so small (``vanish_abs``) that they are below float rounding of the weights.
    """
    statuses: list[Status] = []
    finite = [g for g in grad_norms if math.isfinite(g)]
    out = grad_norms[-1] if grad_norms else math.nan
    exploding = [
        math.isfinite(g)
        and (g >= th.explode_abs or (math.isfinite(out) and out > 0 and g >= th.explode_rel * out))
        for g in grad_norms
    ]
    calm = [g for g, e in zip(grad_norms, exploding, strict=True) if math.isfinite(g) and not e]
    g_max = max(calm) if calm else (max(finite) if finite else math.nan)
    for g, e in zip(grad_norms, exploding, strict=True):
        if not math.isfinite(g):
            statuses.append("nonfinite")
        elif e:
            statuses.append("exploding")
        elif g < th.vanish_abs or g <= th.vanish_rel * g_max:
            statuses.append("vanishing")
        else:
            statuses.append("healthy")
    return tuple(statuses)


def collect(net: Network, optimizer: Optimizer | None, th: Thresholds) -> tuple[LayerStats, ...]:
    """Telemetry of every Dense layer from the network's last training step."""
    steps = optimizer.steps if optimizer is not None else {}
    raw = []
    for i, block in enumerate(net.blocks):
        dense = block.dense
        w_norm = _norm(dense.W)
        step = steps.get(f"layer{i}.W")
        ratio = _norm(step) / w_norm if step is not None and w_norm > 0 else math.nan
        if block.act is not None and block.a is not None and block.z is not None:
            health = block.act.health(block.a, block.z)
            label = block.act.health_label
        else:
            health, label = 0.0, ""
        raw.append(
            (
                f"layer{i}",
                dense.W.shape[0],
                dense.W.shape[1],
                _norm(dense.dW),
                _norm(dense.db),
                w_norm,
                ratio,
                _norm(dense.delta),
                health,
                label,
            )
        )
    statuses = classify([r[3] for r in raw], th)
    return tuple(LayerStats(*r, status=s) for r, s in zip(raw, statuses, strict=True))


def first_nonfinite_layer(net: Network) -> str:
    """Where a non-finite loss came from: the first layer, input side first, whose parameters or
    forward signals are not finite. Gradients are not looked at: once the loss is NaN, backward
    spreads it to every layer, so they cannot tell where it started. When every hidden signal is
    finite, the blow-up happened in the output layer (its logits or the loss itself)."""
    for i, block in enumerate(net.blocks):
        arrays = [block.dense.W, block.dense.b, block.z, block.a]
        if block.bn is not None:
            arrays += [block.bn.gamma, block.bn.beta]
        if any(a is not None and not np.isfinite(a).all() for a in arrays):
            return f"layer{i}"
    return f"layer{len(net.blocks) - 1}"
