"""What the numbers were measured on: cores, versions, BLAS threading and its environment.

``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` are recorded as the environment has them and never
changed here: on some machines they are set because older OpenBLAS builds misbehave without
them, and they pick (possibly slower) kernels, so a reader of the numbers needs to know.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from typing import Any

import numpy as np

import bpmon

BLAS_VARIABLES = (
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
)


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _blas_threads() -> list[dict[str, Any]]:
    """NumPy's BLAS library, its kernel (architecture) and thread count, via threadpoolctl when
    it is installed."""
    try:
        from threadpoolctl import threadpool_info  # type: ignore[import-untyped]
    except ImportError:
        return []
    keys = ("internal_api", "version", "architecture", "num_threads", "threading_layer")
    return [{k: info.get(k) for k in keys} for info in threadpool_info()]


def _torch() -> dict[str, Any] | None:
    try:
        import torch
    except ImportError:
        return None
    return {"version": torch.__version__, "threads": torch.get_num_threads()}


def describe() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "textual": _version("textual"),
        "plotext": _version("plotext"),
        "torch": _torch(),
        "bpmon": bpmon.__version__,
        "blas_env": {name: os.environ.get(name) for name in BLAS_VARIABLES},
        "blas": _blas_threads(),
    }
