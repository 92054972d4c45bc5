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

import numpy as np

from bpmon.config import Thresholds
from bpmon.engine.activations import ACTIVATIONS_BY_NAME, Array
from bpmon.engine.network import Network
from bpmon.engine.optimizers import Optimizer
from bpmon.engine.view import LayerView
from bpmon.runmodel import STATUSES, LayerStats, NonFinite, Status

__all__ = [
    "STATUSES",
    "LayerStats",
    "Status",
    "classify",
    "collect",
    "gradients_finite",
    "layer_stats",
    "nonfinite_origin",
]


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


# -- where the first non-finite value came from (issue 18 item 6) --------------------------------


def _all_finite(a: Array | None) -> bool:
    # A dot product is one BLAS pass with no temporary, and the cheapest NumPy call on the
    # story's tiny arrays (np.sum costs three times more there); only a result that is not
    # finite (a NaN, an infinity, or finite values whose squares overflow) is looked at
    # element by element.
    if a is None:
        return True
    square = a @ a if a.ndim == 1 else np.vdot(a, a)
    return math.isfinite(float(square)) or bool(np.isfinite(a).all())


def gradients_finite(net: Network) -> bool:
    """Whether every gradient of ``net``'s last backward pass is finite: one dot product over
    the flat gradient buffer (:attr:`Network.flat_grads`), so that the check costs one NumPy
    call per step."""
    flat = net.flat_grads
    if flat is not None:
        return math.isfinite(float(flat @ flat)) or bool(np.isfinite(flat).all())
    return all(_all_finite(g) for g in net.grads.values())


def nonfinite_origin(net: Network, step: int, loss: float) -> NonFinite | None:
    """Where update ``step``'s non-finite loss or gradient came from, in ``net``'s buffers of
    that update's training pass (None when both are finite: a runaway loss is not this).

    The engine's conventions for :class:`~bpmon.runmodel.NonFinite`: a *module* is a layer
    ``layer{i}`` (its Dense transform, batch-norm and activation together), its input the
    Dense layer's input and its output the activation's output (the logits for the output
    layer), so the layer named is the first whose output is not finite while its input is;
    ``weights`` says its parameters were already not finite. The *backward order* is the
    engine's: the output layer first, and within a layer batch-norm's ``gamma``, ``beta``
    before the Dense layer's ``W``, ``b`` (the order :meth:`Network.forward_backward`
    computes them), named as ``net.params`` names them."""
    loss_bad = not math.isfinite(loss)
    gradient = ""
    for i in range(len(net.blocks) - 1, -1, -1):
        for part in ("gamma", "beta", "W", "b"):
            g = net.grads.get(f"layer{i}.{part}")
            if g is not None and not bool(np.isfinite(g).all()):
                gradient = f"layer{i}.{part}"
                break
        if gradient:
            break
    if not gradient and not loss_bad:
        return None
    module, weights, inputs = "", False, False
    for i, block in enumerate(net.blocks):
        x = getattr(block.dense, "_x", None)
        if x is None or not bool(np.isfinite(x).all()):
            inputs = i == 0 and x is not None  # else an earlier layer's output, said above
            break
        if block.act is not None:
            out = block.a
        else:
            with np.errstate(all="ignore"):
                out = x @ block.dense.W + block.dense.b
        if out is not None and not bool(np.isfinite(out).all()):
            module = f"layer{i}"
            weights = any(
                not bool(np.isfinite(p).all()) for p in net.layer_views()[i].params.values()
            )
            break
    return NonFinite(
        step=step,
        gradient=gradient,
        module=module,
        weights=weights,
        forward_checked=True,
        loss=loss_bad,
        inputs=inputs,
    )
