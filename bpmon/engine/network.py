"""A multi-layer perceptron built from the layers, activations and losses of this package.

Layout: every hidden block is ``Dense -> [BatchNorm] -> activation -> [Dropout]``; the output
block is ``Dense -> output activation``, fused with the loss (see :mod:`bpmon.engine.losses`).
Batch-norm and dropout never follow the output layer. Each hidden block may have its own
activation. Dropout is active in training-mode passes only; ``loss`` (eval mode) and
``predict`` run without it. Its masks come from ``dropout_rng``, a generator seeded from the
network's seed on a stream of its own, so a run is reproducible and turning dropout on changes
neither the initial weights nor anything else drawn from the seed.

Weight decay is the optimiser's (see :mod:`bpmon.engine.optimizers`); :attr:`Network.decayed`
names the parameters it applies to: the weight matrices, not the biases nor batch-norm's.

Parameters are named ``layer{i}.W``, ``layer{i}.b`` and, with batch-norm, ``layer{i}.gamma`` and
``layer{i}.beta``, where ``i`` counts Dense layers from 0 (the input side). This module is the
only place that knows that naming: readers get per-layer :class:`~bpmon.engine.view.LayerView`
objects from :meth:`Network.layer_views`.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from bpmon.config import DTYPES
from bpmon.engine.activations import Activation, Array, get_activation
from bpmon.engine.flat import joined, pack
from bpmon.engine.initializers import init_weights
from bpmon.engine.layers import BatchNorm, BufferPool, Dense, Dropout
from bpmon.engine.losses import Loss
from bpmon.engine.view import LayerView

# The dropout masks' random stream, apart from the initial weights' (both start from the seed).
_DROPOUT_STREAM = 2


@dataclass
class Block:
    """One Dense layer with what follows it; ``act`` is None for the output block."""

    dense: Dense
    bn: BatchNorm | None
    act: Activation | None
    pool: BufferPool
    drop: Dropout | None = None
    z: Array | None = None  # activation input of the last training forward
    a: Array | None = None  # activation output of the last training forward


class Network:
    """An MLP with explicit forward/backward passes.

    ``loss_and_grads`` runs a training-mode forward and backward and returns copies of the
    gradients; ``forward_backward`` does the same into the network's own gradient buffers
    (``grads``) without copying, for the training loop.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str | Sequence[str] = "sigmoid",
        output: str = "sigmoid",
        batchnorm: bool = False,
        init: str = "normal",
        loss: str = "mse",
        seed: int = 0,
        init_std: float = 0.1,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
        dtype: str = "float64",
        dropout: float = 0.0,
    ) -> None:
        """``activation``: one name for every hidden layer or one per hidden layer;
        ``dropout``: the drop probability after each hidden activation (0: no dropout layer)."""
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"sizes must list at least 2 positive layer widths, got {sizes}")
        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
        if output == "softmax" and sizes[-1] < 2:
            raise ValueError("a softmax output needs at least 2 output units")
        n_hidden = len(sizes) - 2
        names = [activation] * n_hidden if isinstance(activation, str) else list(activation)
        if len(names) != n_hidden:
            raise ValueError(f"{len(names)} activations for {n_hidden} hidden layers")
        for name in names or [activation if isinstance(activation, str) else "identity"]:
            get_activation(name)  # fail on a bad name even when there is no hidden layer
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.sizes = tuple(sizes)
        self.activation = activation
        self.batchnorm = batchnorm
        self.dtype = np.dtype(dtype)
        self.loss_fn = Loss(loss, output, self.dtype)
        rng = np.random.default_rng(seed)
        self.dropout = dropout
        self.dropout_rng = np.random.default_rng([seed, _DROPOUT_STREAM])

        self.blocks: list[Block] = []
        self.params: dict[str, Array] = {}
        self.grads: dict[str, Array] = {}
        self._layer_params: list[Mapping[str, Array]] = []  # params, split by Dense layer
        n_layers = len(sizes) - 1
        for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
            hidden = i < n_layers - 1
            W = init_weights(rng, init, fan_in, fan_out, init_std, self.dtype)
            dense = Dense(W, np.zeros(fan_out, dtype=self.dtype))
            bn = None
            if hidden and batchnorm:
                ones = np.ones(fan_out, dtype=self.dtype)
                bn = BatchNorm(ones, np.zeros_like(ones), bn_eps, bn_momentum)
            act = get_activation(names[i]) if hidden else None
            # No layer at all for p = 0: the default path does no extra work.
            drop = Dropout(dropout, self.dropout_rng, self.dtype) if hidden and dropout else None
            self.blocks.append(Block(dense, bn, act, BufferPool(self.dtype), drop))
        self._pack_parameters()

    def _pack_parameters(self) -> None:
        """Move every parameter into one flat buffer and every gradient into another (see
        :mod:`bpmon.engine.flat`), rebinding the layers' attributes to the views, and fill
        ``params``/``grads``. The optimiser then updates the whole network in one pass."""
        slots: list[tuple[str, Dense | BatchNorm, str, str]] = []
        for i, block in enumerate(self.blocks):
            slots += [
                (f"layer{i}.W", block.dense, "W", "dW"),
                (f"layer{i}.b", block.dense, "b", "db"),
            ]
            if block.bn is not None:
                slots += [
                    (f"layer{i}.gamma", block.bn, "gamma", "dgamma"),
                    (f"layer{i}.beta", block.bn, "beta", "dbeta"),
                ]
        params = pack([getattr(layer, p) for _, layer, p, _ in slots])
        grads = pack([getattr(layer, g) for _, layer, _, g in slots])
        for (name, layer, p_attr, g_attr), param, grad in zip(slots, params, grads, strict=True):
            setattr(layer, p_attr, param)
            setattr(layer, g_attr, grad)
            self.params[name], self.grads[name] = param, grad
        self._layer_params = [
            MappingProxyType({k: p for k, p in self.params.items() if k.startswith(f"layer{i}.")})
            for i in range(len(self.blocks))
        ]
        self.decayed: tuple[str, ...] = tuple(f"layer{i}.W" for i in range(len(self.blocks)))
        # Every gradient as one 1-D view (None when the dtypes differ): a check of all of them
        # is one NumPy call (bpmon.telemetry.gradients_finite).
        self.flat_grads: Array | None = joined(list(self.grads.values()))

    def layer_views(self, updates: Mapping[str, Array] | None = None) -> tuple[LayerView, ...]:
        """One :class:`LayerView` per Dense layer, input side first, of the last training pass.

        ``updates`` is an optimiser's ``steps`` (keyed like ``params``), for each view's
        ``update``; without it ``update`` is None. The views share the network's buffers, so
        they are cheap to make and valid until the next training step.
        """
        steps = updates if updates is not None else {}
        views = []
        for i, block in enumerate(self.blocks):
            dense = block.dense
            views.append(
                LayerView(
                    name=f"layer{i}",
                    W=dense.W,
                    dW=dense.dW,
                    db=dense.db,
                    update=steps.get(f"layer{i}.W"),
                    delta=dense.delta,
                    activation=block.act.name if block.act is not None else None,
                    z=block.z,
                    a=block.a,
                    params=self._layer_params[i],
                )
            )
        return tuple(views)

    @property
    def output(self) -> str:
        return self.loss_fn.output

    def _forward(self, X: Array, training: bool) -> Array:
        """The output layer's logits; in training mode every block caches what backward needs.

        Per block: ``z = a_prev @ W + b``, ``z <- batchnorm(z)`` when present, ``a = f(z)``,
        then in training mode ``a <- dropout(a)`` when present (the block keeps ``a`` before
        dropout: that is the activation's output the telemetry measures); the output block
        stops at its logits ``z``, which the loss takes.
        """
        a = X
        for block in self.blocks:
            z = block.dense.forward(a, training)
            if block.bn is not None:
                z = block.bn.forward(z, training)
            if block.act is None:
                return z
            if training:
                a = block.act.forward(z, block.pool.get("a", z.shape))
                block.z, block.a = z, a
                if block.drop is not None:
                    a = block.drop.forward(a)
            else:
                a = block.act.forward(z, np.empty_like(z))
        return a  # unreachable: the last block is the output block

    def forward_backward(self, X: Array, y: Array) -> float:
        """Training-mode forward and backward; fills ``self.grads`` in place, returns the loss.

        Backward per block, output side first: through dropout when present
        (``da <- da * mask / (1 - p)``), ``dz = f'(z) * da``, through batch-norm when present,
        then the Dense layer's ``dW = x^T dz``, ``db = 1^T dz`` and ``da_prev = dz W^T`` (skipped
        for the first layer, whose input is the data).
        """
        z = self._forward(X, training=True)
        loss, _, dz = self.loss_fn.value_and_grad(z, y)
        last = len(self.blocks) - 1
        for i in range(last, -1, -1):
            block = self.blocks[i]
            if block.act is not None:
                assert block.a is not None and block.z is not None
                if block.drop is not None:
                    dz = block.drop.backward(dz)
                dz = block.act.backward(block.a, block.z, dz, block.pool.get("dz", dz.shape))
            if block.bn is not None:
                dz = block.bn.backward(dz)
            dx = block.dense.backward(dz, need_dx=i > 0)
            if dx is not None:
                dz = dx
        return loss

    def loss_and_grads(self, X: Array, y: Array) -> tuple[float, dict[str, Array]]:
        """Training-mode loss and gradients (copies, keyed like ``params``); no update."""
        loss = self.forward_backward(self._as_input(X), self._as_input(y))
        return loss, {k: g.copy() for k, g in self.grads.items()}

    def loss(self, X: Array, y: Array, training: bool = False) -> float:
        """The loss without a backward pass. In training mode batch-norm uses batch statistics
        (and updates its running statistics, as any training-mode forward does)."""
        z = self._forward(self._as_input(X), training)
        return self.loss_fn.value(z, self._as_input(y))

    def predict(self, X: Array) -> Array:
        """Eval-mode forward: the output activations, in a fresh array."""
        return self.loss_fn.predict(self._forward(self._as_input(X), training=False))

    def _as_input(self, X: Array) -> Array:
        return np.asarray(X, dtype=self.dtype)

    @property
    def architecture(self) -> str:
        return "-".join(str(s) for s in self.sizes)
