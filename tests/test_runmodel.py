"""The run model stands alone: what a replay needs imports neither NumPy nor the training code,
and the old import paths of its classes still work."""

from __future__ import annotations

import subprocess
import sys


def test_a_replay_imports_no_numpy_engine_or_training_loop() -> None:
    # What `bpmon replay FILE` imports before it shows the file: the CLI, the file source, the
    # monitor's app and the run model with its codec.
    code = (
        "import sys\n"
        "import bpmon.cli, bpmon.sources, bpmon.tui, bpmon.tui.app, bpmon.runmodel\n"
        "import bpmon.codec, bpmon.readback, bpmon.diagnosis, bpmon.runfile\n"
        "heavy = ('numpy', 'torch', 'bpmon.engine', 'bpmon.trainer.loop', 'bpmon.trainer.run',\n"
        "         'bpmon.trainer.snapshot', 'bpmon.telemetry', 'bpmon.data')\n"
        "print(sorted(m for m in sys.modules if m == 'numpy' or m.startswith(heavy)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout


def test_the_old_import_paths_name_the_same_classes() -> None:
    from bpmon import runmodel
    from bpmon.finding import Finding
    from bpmon.telemetry import STATUSES, LayerStats
    from bpmon.trainer import Prediction, Snapshot
    from bpmon.trainer.boundary import Boundary, Point
    from bpmon.trainer.states import STATES

    assert Snapshot is runmodel.Snapshot and Prediction is runmodel.Prediction
    assert LayerStats is runmodel.LayerStats and Finding is runmodel.Finding
    assert Boundary is runmodel.Boundary and Point is runmodel.Point
    assert STATES == runmodel.STATES and STATUSES == runmodel.STATUSES
