"""Run files of a 12-block GPT written by hand, for the monitor's tests and the README's
gradient-flow pictures (docs/heatmaps.py): the rows a PyTorch GPT-2 gives the bridge, gradient
norms shaped like three well-known failures, and statuses from bpmon's own classifier.

- ``healthy``: every row between 1e-3 and 1e-1, a little noise;
- ``vanishing``: the norm falls by six decades from the output back to the input;
- ``explosion``: healthy, then from the middle of the run the norms grow, fastest at the input;
- ``spike``: healthy, but at one update block 5's rows are 1,000 times their size.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from pathlib import Path

from bpmon.config import Thresholds
from bpmon.runfile import header, layer_record
from bpmon.telemetry import LayerStats, classify

BLOCK_ROWS = ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")
PATTERNS = ("healthy", "vanishing", "explosion", "spike")


def gpt_names(blocks: int = 12) -> list[str]:
    names = ["transformer.wte", "transformer.wpe"]
    for i in range(blocks):
        names += [f"transformer.h.{i}.{row}" for row in BLOCK_ROWS]
    return [*names, "lm_head"]


def kind_of(name: str) -> str:
    return "Embedding" if name.endswith(("wte", "wpe")) else "Linear"


def log_norm(pattern: str, depth: float, step: int, steps: int, rng: random.Random) -> float:
    """log10 of a row's norm: ``depth`` 0 at the input, 1 at the output."""
    noise = rng.uniform(-0.15, 0.15)
    if pattern == "vanishing":
        return -1.5 - 6.0 * (1.0 - depth) + noise
    if pattern == "explosion":
        late = max(0, step - steps // 2) / max(1, steps // 2)
        return -2.0 + 0.5 * depth + late * 6.0 * (1.2 - depth) + noise
    return -2.0 + 0.8 * depth + noise


def gpt_layers(pattern: str, step: int, steps: int, seed: int = 0) -> list[LayerStats]:
    names = gpt_names()
    rng = random.Random(seed * 100_003 + step)
    norms = []
    for i, name in enumerate(names):
        value = 10 ** log_norm(pattern, i / (len(names) - 1), step, steps, rng)
        if pattern == "spike" and step == steps * 2 // 3 and name.startswith("transformer.h.5."):
            value *= 1000
        norms.append(value)
    statuses = classify(norms, Thresholds())
    return [
        LayerStats(
            name=name,
            fan_in=768,
            fan_out=3072 if name.endswith("c_fc") else 768,
            grad_norm=norm,
            bias_grad_norm=norm / 10,
            weight_norm=30.0,
            update_ratio=1e-3,
            delta_norm=norm,
            health=0.0,
            health_label="",
            status=status,
            activation="gelu" if name.endswith("c_fc") else None,
            kind=kind_of(name),
        )
        for name, norm, status in zip(names, norms, statuses, strict=True)
    ]


def header_line(name: str) -> str:
    names = gpt_names()
    record = header(
        source="torch",
        name=name,
        layers=[
            {
                "name": x,
                "kind": kind_of(x),
                "shape": [768, 768],
                "fan_in": 768,
                "fan_out": 3072 if x.endswith("c_fc") else 768,
                "activation": "gelu" if x.endswith("c_fc") else None,
            }
            for x in names
        ],
        thresholds=Thresholds(),
        architecture=f"{len(names)} layers",
        switches=f"{len(names)} layers torch",
        started=0.0,
    )
    return json.dumps(record) + "\n"


def snapshot_line(layers: Sequence[LayerStats], step: int, loss: float) -> str:
    record = {
        "step": step,
        "epoch": None,
        "time": step / 10,
        "loss": loss if math.isfinite(loss) else None,
        "accuracy": None,
        "test_accuracy": None,
        "lr": 6e-4,
        "state": "running",
        "run_id": 0,
        "layers": [layer_record(x) for x in layers],
        "diverged_step": None,
        "diverged_layer": None,
    }
    return json.dumps(record) + "\n"


def write_gpt_run(path: Path, pattern: str = "healthy", snapshots: int = 120) -> Path:
    """A run file of ``snapshots`` snapshots, one every 10 updates."""
    lines = [header_line(f"gpt-12-{pattern}")]
    for i in range(snapshots):
        step = 10 * (i + 1)
        layers = gpt_layers(pattern, i, snapshots)
        loss = 4.0 / math.sqrt(1 + i / 10)
        if pattern == "spike" and i == snapshots * 2 // 3 + 1:
            loss *= 2.5
        if pattern == "explosion" and i > snapshots // 2:
            loss *= 10 ** (3 * (i - snapshots // 2) / snapshots)
        lines.append(snapshot_line(layers, step, loss))
    path.write_text("".join(lines))
    return path
