"""Per-layer gradient telemetry: the facts the monitor shows, computed from a network's buffers.

For each Dense layer: the Frobenius norms of ``dL/dW``, ``dL/db`` and ``W``, the update ratio
``||step|| / ||W||`` of the last optimiser step, the norm of the error signal ``delta = dL/dz``
that arrived at the layer's output, and the health of the activation that follows it (the
fraction of saturated entries for sigmoid/tanh, of dead units for the ReLU family). Each layer
then gets a status from :func:`classify`.

Every figure is computed from :class:`~bpmon.engine.view.LayerView` objects only
(:func:`layer_stats`): a network hands them out through its public ``layer_views``, and anything
else that can express its layers as arrays and activation names gets the same figures. This
module returns plain immutable values; it is called from the trainer's thread only, at snapshot
time, never on every step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from bpmon.config import Thresholds
from bpmon.engine.activations import ACTIVATIONS_BY_NAME, Array
from bpmon.engine.network import Network
from bpmon.engine.optimizers import Optimizer
from bpmon.engine.view import LayerView

Status = Literal["vanishing", "healthy", "exploding", "nonfinite"]
STATUSES: tuple[Status, ...] = ("vanishing", "healthy", "exploding", "nonfinite")


@dataclass(frozen=True)
class LayerStats:
    """One Dense layer at one snapshot. ``health_label`` says what ``health`` counts
    ("saturated" or "dead"; empty for the output layer, which has no hidden activation).
    ``activation`` names the hidden activation after the layer (None for the output layer).
    ``kind`` is the layer's type where a run file's header says it (``"Linear"``; empty when
    unknown): the panels name a numbered row ``164 (Linear)``."""

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
    activation: str | None = None
    kind: str = ""


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


def layer_stats(views: Sequence[LayerView], th: Thresholds) -> tuple[LayerStats, ...]:
    """The telemetry of each layer, computed from its view alone.

    ``views`` come from :meth:`bpmon.engine.network.Network.layer_views` or from anything else
    that builds :class:`LayerView` objects (plain arrays and activation names are enough). A
    figure whose input is missing from a view (None) is NaN; an activation named but not
    implemented here, or without ``z``/``a``, has health 0 and no label.
    """
    grad_norms = [_norm(v.dW) for v in views]
    statuses = classify(grad_norms, th)
    return tuple(_stats(v, g, s) for v, g, s in zip(views, grad_norms, statuses, strict=True))


def _stats(view: LayerView, grad_norm: float, status: Status) -> LayerStats:
    w_norm = _norm(view.W)
    update = view.update
    ratio = _norm(update) / w_norm if update is not None and w_norm > 0 else math.nan
    health, label = _health(view)
    return LayerStats(
        name=view.name,
        fan_in=view.fan_in,
        fan_out=view.fan_out,
        grad_norm=grad_norm,
        bias_grad_norm=_norm(view.db),
        weight_norm=w_norm,
        update_ratio=ratio,
        delta_norm=_norm(view.delta),
        health=health,
        health_label=label,
        status=status,
        activation=view.activation,
    )


def _health(view: LayerView) -> tuple[float, str]:
    """``(health, health_label)`` of the activation the view names, from its ``a`` and ``z``."""
    act_cls = ACTIVATIONS_BY_NAME.get(view.activation) if view.activation is not None else None
    if act_cls is None or view.a is None or view.z is None:
        return 0.0, ""
    return act_cls().health(view.a, view.z), act_cls.health_label


def collect(net: Network, optimizer: Optimizer | None, th: Thresholds) -> tuple[LayerStats, ...]:
    """Telemetry of every Dense layer from the network's last training step."""
    return layer_stats(net.layer_views(optimizer.steps if optimizer is not None else None), th)


def first_nonfinite(views: Sequence[LayerView]) -> str:
    """Where a non-finite loss came from: the name of the first view, input side first, whose
    parameters (``W`` and ``params``) or forward signals (``z``, ``a``) are not finite, else the
    last view's (the blow-up happened in the output layer: its logits or the loss itself).
    Gradients are not looked at: once the loss is NaN, backward spreads it to every layer, so
    they cannot tell where it started."""
    if not views:
        raise ValueError("first_nonfinite needs at least one layer view")
    for view in views:
        arrays = [view.W, *view.params.values(), view.z, view.a]
        if any(a is not None and not np.isfinite(a).all() for a in arrays):
            return view.name
    return views[-1].name


def first_nonfinite_layer(net: Network) -> str:
    """:func:`first_nonfinite` of ``net``'s layers, batch-norm parameters included."""
    return first_nonfinite(net.layer_views())
