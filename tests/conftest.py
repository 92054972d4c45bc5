"""Settings for the whole suite, made before any test module imports NumPy or PyTorch.

One BLAS and one PyTorch thread per process. The suite already runs one pytest-xdist worker per
core, and many tests start subprocesses beside them; a BLAS that also starts a thread per core
in each of them oversubscribes the cores, and OpenBLAS's idle threads spin while they wait. On
the 2-core development machine, under load, training the sigmoid-vanishing preset for 300 steps
with a snapshot per step took 7.6 s of CPU with OpenBLAS's default threads and 0.7 s with one.
The variables reach the subprocesses too (the ``bpmon`` command, the examples, the benchmarks'
smoke run). A value already in the environment is kept.
"""

from __future__ import annotations

import os

# BLAS reads its thread count once, when NumPy loads; pytest imports this file before any test
# module (a plugin that imports NumPy earlier would leave this process at the default).
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
