"""The benchmarks in ``--quick`` mode: every contender runs and every figure comes out as a finite
number in the JSON (or, for the PyTorch figures on a machine without PyTorch, an explicit skip).
No timing is asserted: this is a smoke test, CI machines are too noisy for more."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
# One worker runs every test here, so that they share the one benchmark run (quick_run).
pytestmark = pytest.mark.xdist_group("benchmarks")

# The README's performance table, one key per row.
FIGURES = (
    "xor_trainer_vs_numpy",
    "xor_trainer_vs_torch",
    "mlp_engine_vs_torch",
    "mlp_trainer_vs_torch",
    "tui_vs_headless",
    "tui_heatmap_vs_headless",
    "tui_fps",
    "tui_frame_cost_growth",
    "memory_growth_mb",
    "cli_help_s",
    "cli_list_presets_s",
    "first_frame_s",
    "terminal_bytes_per_s",
    "quit_s",
    "quit_during_long_step_s",
    "bridge_every50_vs_torch",
    "bridge_every1_vs_torch",
    "bridge_gpt_every50_vs_torch",
    "bridge_gpt_nan_trace_vs_torch",
    "bridge_every50_loss_only_vs_torch",
    "watch_first_frame_s",
    "watch_rss_mb",
    "watch_append_s",
    "watch_waiting_cpu_pct",
    "csv_load_s",
    "csv_load_peak_mb",
    "csv_first_frame_s",
    "csv_training_vs_unmonitored",
    "boundary_vs_headless_80x24",
    "boundary_vs_headless_160x48",
    "boundary_fps_80x24",
    "boundary_fps_160x48",
)
TORCH_FIGURES = {
    "xor_trainer_vs_torch",
    "mlp_engine_vs_torch",
    "mlp_trainer_vs_torch",
    "bridge_every50_vs_torch",
    "bridge_every1_vs_torch",
    "bridge_gpt_every50_vs_torch",
    "bridge_gpt_nan_trace_vs_torch",
    "bridge_every50_loss_only_vs_torch",
}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    # From the repository root, as CI runs it: `benchmarks` is importable from there, and bpmon
    # is whatever this Python has (installed, or the checkout).
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(out.read_text(encoding="utf-8")), proc.stdout


def test_every_figure_is_a_finite_number_or_an_explained_skip(
    quick_run: tuple[dict[str, Any], str],
) -> None:
    doc, _ = quick_run
    assert doc["mode"] == "quick"
    assert doc["errors"] == {}
    figures = doc["figures"]
    assert set(FIGURES) <= set(figures), set(FIGURES) - set(figures)
    for key in FIGURES:
        fig = figures[key]
        if fig["skipped"]:
            assert key in TORCH_FIGURES, f"{key} skipped: {fig['note']}"
            assert "torch" in fig["note"].lower(), fig["note"]
            assert importlib.util.find_spec("torch") is None, f"{key} skipped with torch here"
            continue
        for field in ("value", "bpmon"):
            assert isinstance(fig[field], int | float), (key, field, fig[field])
            assert math.isfinite(fig[field]), (key, field, fig[field])
        if fig["ratio"] is not None or fig["contender"] is not None:
            assert math.isfinite(fig["ratio"] if fig["ratio"] is not None else fig["contender"])
        assert fig["target"]["op"] in (">=", "<=")
        assert isinstance(fig["met"], bool)


def test_the_machine_section_names_what_was_measured_on(
    quick_run: tuple[dict[str, Any], str],
) -> None:
    machine = quick_run[0]["machine"]
    assert machine["cpu_count"] >= 1
    for key in ("python", "numpy", "textual", "blas_env"):
        assert machine[key], key
    # Recorded as the environment has them, set or not.
    assert {"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"} <= set(machine["blas_env"])


def test_the_table_is_markdown_with_a_row_per_figure(
    quick_run: tuple[dict[str, Any], str],
) -> None:
    doc, stdout = quick_run
    rows = [line for line in stdout.splitlines() if line.startswith("|")]
    assert rows[0] == "| figure | bpmon | contender | ratio | target | met? |"
    assert set(rows[1].strip("|").split("|")) == {"---"}
    assert len(rows) == 2 + len(doc["figures"])
