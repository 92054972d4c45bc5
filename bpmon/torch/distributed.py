"""Norms of the whole parameter when each process holds a shard of it (FSDP2's ``fully_shard``,
any parameter that is a ``DTensor`` sharded over a device mesh).

A norm taken on a shard under-reports by about the square root of the number of shards, and
DTensor's own ``full_tensor()`` would gather every parameter to every rank (and per tensor, one
collective each). What the monitor needs is only ``sqrt(sum over shards of ||shard||^2)``: each
rank computes the norms of its local shards (``DTensor.to_local()``, plain tensors, so the
weight copy and the ``W_before - W_after`` subtraction also work, which DTensor refuses for
``_foreach_copy_``), and one all-reduce of the stacked squares per due update gives the whole
parameters' norms to every rank. Every rank must therefore take part in each due update's
measurement: under sharding the monitor is active on every rank and only rank 0 writes.

Conventions:

- **Which dimensions are summed.** The squares are summed over the mesh dimensions on which the
  parameters are ``Shard``-ed; a ``Replicate`` dimension (HSDP's replicas) holds equal copies
  and is not summed. Every sharded watched parameter must use the same mesh and the same
  sharded dimensions (what ``fully_shard`` does), else :class:`~bpmon.errors.BpmonError`.
- **Plain tensors beside DTensors** (a module left out of ``fully_shard``, a bias that is not
  sharded) are the same on every rank: they enter the sum from the group's first rank only,
  so they are not counted once per rank.
- **What stays per-rank.** Activation health is of this rank's own batch (rank 0 writes
  rank 0's), and a logged loss is rank 0's unless the script reduces it first.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import IO, Any

import torch
import torch.distributed as dist

from bpmon.errors import BpmonError


def _dtensor_type() -> type[Any] | None:
    if not dist.is_available():
        return None
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # torch < 2.4 keeps it private; such builds have no FSDP2 either
        return None
    return DTensor


def is_sharded(tensor: object) -> bool:
    """Whether ``tensor`` is a DTensor (a parameter or gradient held in shards)."""
    dtensor = _dtensor_type()
    return dtensor is not None and isinstance(tensor, dtensor)


def has_shards(params: Sequence[torch.Tensor]) -> bool:
    """Whether any of ``params`` is a DTensor: the monitor must then run on every rank."""
    return any(is_sharded(p) for p in params)


def local(tensors: Sequence[torch.Tensor | None]) -> list[Any]:
    """Each tensor's local shard (``to_local()``) for a DTensor, the tensor itself otherwise
    (``None`` stays ``None``)."""
    return [t.to_local() if is_sharded(t) else t for t in tensors]  # type: ignore[union-attr]


def discard() -> IO[str]:
    """Where a rank other than 0 writes: nowhere (it measures, for the collective, but only
    rank 0's file exists)."""
    return open(os.devnull, "w", encoding="utf-8")


def shards(layers: Sequence[Any]) -> Shards | None:
    """The reduction for these watched rows (:class:`bpmon.torch.layers.Layer`), or None
    when none of their parameters is a DTensor."""
    # A row stands for its tensors: its first weight and first bias say how it is placed.
    weights = [layer.weights[0] for layer in layers]
    biases = [layer.biases[0] if layer.biases else None for layer in layers]
    if not has_shards([*weights, *(b for b in biases if b is not None)]):
        return None
    return Shards(weights, biases)


class Shards:
    """The reduction of one monitor's norms across the ranks that hold the shards.

    ``sharded`` says, per watched weight, whether it is a DTensor; the same for biases (None:
    no bias). :meth:`whole` turns a stacked tensor of local norms (the layout the monitor
    reads back: weight-gradient, bias-gradient, weight and update norms, one per layer each)
    into the whole parameters' norms with one all-reduce.
    """

    def __init__(self, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor | None]):
        dtensor = _dtensor_type()
        sharded: list[Any] = [p for p in [*weights, *biases] if p is not None and is_sharded(p)]
        if dtensor is None or not sharded:
            raise BpmonError("internal: Shards made for a model without DTensor parameters")
        # fully_shard called per module without a mesh makes an equal mesh each time: compare
        # what the meshes hold, not which objects they are.
        meshes = {
            (str(p.device_mesh.device_type), str(p.device_mesh.mesh.tolist())) for p in sharded
        }
        layouts = {self._summed_dims(p) for p in sharded}
        if len(meshes) != 1 or len(layouts) != 1:
            raise BpmonError(
                "watch: the watched parameters are sharded over different device meshes or "
                "placements; bpmon supports one mesh with the same sharded dimensions for all "
                "(as fully_shard makes)"
            )
        mesh = sharded[0].device_mesh
        dims = layouts.pop()
        self.groups = [mesh.get_group(d) for d in dims]
        # The rank that contributes replicated values: the first of every summed group.
        self.first = all(dist.get_rank(g) == 0 for g in self.groups)
        w = [is_sharded(t) for t in weights]
        b = [t is not None and is_sharded(t) for t in biases]
        self.mask = torch.tensor(w + b + w + w, dtype=torch.bool)

    @staticmethod
    def _summed_dims(p: Any) -> tuple[int, ...]:
        from torch.distributed.tensor import Replicate, Shard

        dims = []
        for d, placement in enumerate(p.placements):
            if isinstance(placement, Shard):
                dims.append(d)
            elif not isinstance(placement, Replicate):
                raise BpmonError(
                    f"watch: a watched parameter has placement {placement} on mesh dimension "
                    f"{d}; bpmon sums norms over Shard and ignores Replicate dimensions only"
                )
        return tuple(dims)

    def whole(self, local_norms: torch.Tensor) -> torch.Tensor:
        """The whole parameters' norms from this rank's ``local_norms`` (same layout as
        :attr:`mask`): squares summed over the shards with one all-reduce per summed mesh
        dimension (one for FSDP2), then the square root. NaN (no bias) stays NaN."""
        mask = self.mask.to(local_norms.device)
        squares = local_norms * local_norms
        if not self.first:
            squares = torch.where(mask, squares, torch.zeros_like(squares))
        for group in self.groups:
            dist.all_reduce(squares, op=dist.ReduceOp.SUM, group=group)
        return squares.sqrt()


def whole_norms(
    shards: Shards, rows: int, grads: torch.Tensor, weights: torch.Tensor, deltas: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The whole parameters' norms from this rank's shards (``rows`` rows: a weight and a bias
    gradient norm each, then the global norm; one all-reduce of the squares,
    :meth:`Shards.whole`); the global norm is summed again from the whole rows, since a norm of
    local shards cannot be."""
    whole = shards.whole(torch.cat([grads[: 2 * rows], weights, deltas]))
    g, w, d = whole[: 2 * rows], whole[2 * rows : 3 * rows], whole[3 * rows :]
    total = (g * g).nansum().sqrt().reshape(1)
    return torch.cat([g, total]), w, d
