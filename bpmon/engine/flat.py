"""Arrays laid end to end in one 1-D buffer, so that an element-wise update of all of them is
one ufunc call instead of one per array.

Why: for the story's 2-4-1 network a training step costs what its NumPy calls cost (about half
a microsecond each), not what its arithmetic costs. SGD over the four parameter arrays one by one
is eight calls; over one flat buffer it is two. The network packs its parameters and its
gradients this way (:func:`pack`), and an optimiser that finds its arrays packed (:func:`joined`)
updates the whole buffer at once. Element-wise arithmetic gives the same bits either way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bpmon.engine.activations import Array


def pack(arrays: Sequence[Array]) -> list[Array]:
    """Copies of ``arrays`` (same shapes, dtypes and values) that are consecutive views of one
    new 1-D buffer, in order; plain copies when the dtypes differ, since one buffer has one."""
    if len({a.dtype for a in arrays}) != 1:
        return [a.copy() for a in arrays]
    flat = np.empty(sum(a.size for a in arrays), dtype=arrays[0].dtype)
    views = []
    start = 0
    for a in arrays:
        view = flat[start : start + a.size].reshape(a.shape)
        view[...] = a
        views.append(view)
        start += a.size
    return views


def _address(a: Array) -> int:
    return int(a.__array_interface__["data"][0])


def joined(arrays: Sequence[Array]) -> Array | None:
    """The 1-D array that ``arrays`` tile exactly, in order (as :func:`pack` lays them out), or
    None when they are not laid out that way (separately allocated arrays, say)."""
    if not arrays:
        return None
    base = arrays[0].base
    if not isinstance(base, np.ndarray) or base.ndim != 1 or not base.flags.c_contiguous:
        return None
    itemsize = base.itemsize
    start = (_address(arrays[0]) - _address(base)) // itemsize
    end = start
    for a in arrays:
        if (
            a.base is not base
            or a.dtype != base.dtype
            or not a.flags.c_contiguous
            or _address(a) != _address(base) + end * itemsize
        ):
            return None
        end += a.size
    joined_view: Array = base[start:end]
    return joined_view
