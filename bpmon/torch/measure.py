"""The figures of a due update, computed on the tensors' device and never read back here: the
rows' gradient norms (and the global one), the weights' copy and the update's norms, and an
activation's health. :mod:`bpmon.torch.monitor` stacks them and reads them with one transfer.

A row's norm over several tensors (a recurrent layer's input and hidden weights, a tied
parameter's one tensor) is the 2-norm of all of them together, ``sqrt(sum of squares)``, as if
they were one vector: the figure ``clip_grad_norm_`` would see for them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from bpmon.engine.activations import SIGMOID_SATURATION, TANH_SATURATION
from bpmon.torch.distributed import local
from bpmon.torch.layers import Layer

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def norms(tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The 2-norm of each tensor, on its device, without reading anything back. Half-precision
    tensors are summed in float32: a norm above 65504 is ordinary for a large layer's
    gradient and would be inf in float16. Sparse gradients (``Embedding(sparse=True)``) are
    normed over their stored values."""
    if not tensors:
        return []
    out: list[torch.Tensor | None] = [None] * len(tensors)
    plain = [
        i
        for i, t in enumerate(tensors)
        if t.dtype not in _LOW_PRECISION and t.layout == torch.strided
    ]
    if plain:
        for i, n in zip(plain, torch._foreach_norm([tensors[i] for i in plain]), strict=True):
            out[i] = n
    for i, t in enumerate(tensors):
        if out[i] is None:
            values = t.coalesce().values() if t.is_sparse else t
            dtype = torch.float32 if values.dtype in _LOW_PRECISION else None
            out[i] = torch.linalg.vector_norm(values, dtype=dtype)
    return [n for n in out if n is not None]


class RowNorms:
    """Per-row norms over a fixed layout of tensors: each row's weights, then its biases."""

    def __init__(self, layers: Sequence[Layer], device: torch.device, dtype: torch.dtype) -> None:
        self.layers = layers
        self.device, self.dtype = device, dtype
        L = len(layers)
        self.w_row = torch.tensor(
            [i for i, row in enumerate(layers) for _ in row.weights], dtype=torch.long
        ).to(device)
        self.b_row = torch.tensor(
            [i for i, row in enumerate(layers) for _ in row.biases], dtype=torch.long
        ).to(device)
        no_bias = torch.tensor([not row.biases for row in layers], dtype=torch.bool)
        self.no_bias = no_bias.to(device)
        self.rows = L
        self._index: dict[tuple[int, ...], torch.Tensor] = {}

    def _per_tensor(self, tensors: Sequence[torch.Tensor | None]) -> torch.Tensor:
        present = [t for t in tensors if t is not None]
        found = iter(norms(present))
        zero = torch.zeros((), dtype=self.dtype, device=self.device)
        slots = [zero if t is None else next(found).to(self.device, self.dtype) for t in tensors]
        return torch.stack(slots) if slots else torch.zeros(0, dtype=self.dtype, device=self.device)

    def _sum_rows(self, per: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        sq = torch.zeros(self.rows, dtype=self.dtype, device=self.device)
        return sq.index_add_(0, index, per * per)

    def grads(self, scale: torch.Tensor | None) -> torch.Tensor:
        """``2L + 1`` values: each row's weight-gradient norm, each row's bias-gradient norm
        (NaN for a row without biases, as in bpmon), and the global norm of all of them. A
        gradient that is None (the row got none this update) counts as 0. ``scale``: the
        GradScaler's scale the gradients are still multiplied by."""
        # Under FSDP2 each rank norms its own shards; the monitor sums the squares across ranks.
        ws = local([p.grad for row in self.layers for p in row.weights])
        both = self._per_tensor(ws + local([p.grad for row in self.layers for p in row.biases]))
        out = self.rows_from(both)
        if scale is not None:
            out = out / scale.to(self.device, self.dtype)
        return out

    def rows_from(self, per: torch.Tensor) -> torch.Tensor:
        """:meth:`grads` from the gradients' per-tensor norms, every row's weights then every
        row's biases (:class:`bpmon.torch.series.Series` takes them on every update)."""
        nw = self.w_row.numel()
        w, b = per[:nw], per[nw:]
        w_sq, b_sq = self._sum_rows(w, self.w_row), self._sum_rows(b, self.b_row)
        total = (w_sq.sum() + b_sq.sum()).sqrt().reshape(1)
        b_norm = b_sq.sqrt().masked_fill(self.no_bias, math.nan)
        return torch.cat([w_sq.sqrt(), b_norm, total])

    def tensor_rows(self) -> list[int]:
        """The row of each tensor in :meth:`rows_from`'s order."""
        return [*self.w_row.tolist(), *self.b_row.tolist()]

    def combine(self, per_tensor: Sequence[torch.Tensor], rows: Sequence[int]) -> torch.Tensor:
        """Norms of whole rows from the norms of their weight tensors, in ``rows``' order."""
        key = tuple(rows)
        index = self._index.get(key)
        if index is None:
            flat = [k for k, i in enumerate(rows) for _ in self.layers[i].weights]
            index = self._index[key] = torch.tensor(flat, dtype=torch.long).to(self.device)
        per = torch.stack([t.to(self.device, self.dtype) for t in per_tensor])
        sq = torch.zeros(len(rows), dtype=self.dtype, device=self.device)
        return sq.index_add_(0, index, per * per).sqrt()


class Copies:
    """The weights of some rows from just before an update, subtracted in place after it:
    ``W_before - W_after`` is the update bpmon's engine calls ``update``, whatever the
    optimiser did. The buffers are kept while consecutive updates are due (``every=1``)."""

    def __init__(self, row_norms: RowNorms) -> None:
        self.rn = row_norms
        self.buffers: dict[int, list[torch.Tensor]] = {}
        self.holding: set[int] = set()  # rows whose buffers hold a copy now
        self.deltas: dict[int, torch.Tensor] = {}  # rows measured this update: ||update||

    def take(self, rows: Sequence[int]) -> None:
        todo = [i for i in rows if i not in self.holding and i not in self.deltas]
        if not todo:
            return
        into, source = [], []
        for i in todo:
            weights = local([p.detach() for p in self.rn.layers[i].weights])
            buf = self.buffers.get(i)
            if buf is None:
                self.buffers[i] = [w.clone() for w in weights]
            else:
                into += buf
                source += weights
        if into:
            torch._foreach_copy_(into, source)  # one call for every row kept from before
        self.holding.update(todo)

    def changed(self) -> bool:
        """Whether any copied weight differs from the weight now (reads back: for deciding
        once how a loop updates, never on the way of an update)."""
        for i in self.holding:
            weights = local([p.detach() for p in self.rn.layers[i].weights])
            for c, w in zip(self.buffers[i], weights, strict=True):
                if not torch.equal(c, w):
                    return True
        return False

    def settle(self, rows: Sequence[int]) -> None:
        """The update's norm for each of ``rows`` that holds a copy."""
        if not self.holding:
            return
        todo = [i for i in rows if i in self.holding]
        if not todo:
            return
        before = [t for i in todo for t in self.buffers[i]]
        after = local([p.detach() for i in todo for p in self.rn.layers[i].weights])
        torch._foreach_sub_(before, after)
        for i, n in zip(todo, self.rn.combine(norms(before), todo), strict=True):
            self.deltas[i] = n
        self.holding.difference_update(todo)

    def still(self, rows: Sequence[int]) -> None:
        """``rows`` did not move (a step the scaler skipped)."""
        for i in rows:
            self.deltas[i] = torch.zeros((), dtype=self.rn.dtype, device=self.rn.device)
        self.holding.difference_update(rows)

    def take_deltas(self, keep_buffers: bool) -> torch.Tensor:
        """Each row's update norm (NaN where none was measured), and a fresh start."""
        nan = torch.full((), math.nan, dtype=self.rn.dtype, device=self.rn.device)
        out = torch.stack([self.deltas.get(i, nan) for i in range(self.rn.rows)])
        self.deltas = {}
        self.holding.clear()
        if not keep_buffers:
            self.buffers = {}
        return out

    def clear(self) -> None:
        self.buffers, self.deltas = {}, {}
        self.holding.clear()


def weight_norms(row_norms: RowNorms) -> torch.Tensor:
    layers = row_norms.layers
    per = norms(local([p.detach() for row in layers for p in row.weights]))
    return row_norms.combine(per, list(range(len(layers))))


def health(kind: str, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor | None:
    """The activation's health as a 0-d tensor, by bpmon's definitions
    (:meth:`bpmon.engine.activations.Activation.health`): sigmoid and tanh, the fraction of
    saturated entries; the ReLU family (and GELU), the fraction of units at ``z <= 0`` for every
    sample of the batch (axis 0). The tests use signs only, so an ``inplace=True`` ReLU, whose
    input tensor has become its output, gives the same answer."""
    # The fraction in float64 for a float64 model (exact parity with the engine's NumPy), in
    # float32 otherwise (half precision cannot count past 2048 exactly).
    dtype = torch.float64 if z.dtype == torch.float64 else torch.float32
    if kind == "sigmoid":
        lo, hi = SIGMOID_SATURATION, 1.0 - SIGMOID_SATURATION
        return ((a < lo) | (a > hi)).to(dtype).mean()
    if kind == "tanh":
        return (a.abs() > TANH_SATURATION).to(dtype).mean()
    if kind in ("relu", "leaky_relu", "gelu"):
        if z.dim() >= 2 and z.shape[0] > 0:
            # "z <= 0 for every sample" is "the largest z <= 0": one reduction, no mask.
            return (z.amax(dim=0) <= 0).to(dtype).mean()
        return (z <= 0).to(dtype).mean()
    return None
