"""Snapshots as plain text and JSON, for the headless CLI and scripts (``--json``); the run
file's lines are :mod:`bpmon.runfile`'s."""

from __future__ import annotations

import math
from typing import Any

from bpmon.codec import to_record
from bpmon.runmodel import Prediction, Snapshot


def _num(x: float | None) -> float | None:
    """JSON has no NaN or Infinity: non-finite numbers become null."""
    return None if x is None or not math.isfinite(x) else x


def _output(p: Prediction) -> float | list[float | None] | None:
    return _num(p.output[0]) if len(p.output) == 1 else [_num(v) for v in p.output]


def summary(snap: Snapshot, steps_per_second: float) -> dict[str, Any]:
    """The ``--json`` object: what a run ended with, and how its gradients started and ended."""
    initial = {layer.name: layer for layer in snap.initial_layers}
    layers = []
    for layer in snap.layers:
        first = initial.get(layer.name)
        layers.append(
            {
                "name": layer.name,
                "grad_norm_initial": _num(first.grad_norm) if first else None,
                "grad_norm_final": _num(layer.grad_norm),
                "status_initial": first.status if first else None,
                "status_final": layer.status,
            }
        )
    config = snap.config
    return {
        "preset": snap.preset,
        "seed": None if config is None else config.train.seed,
        "epochs": snap.epoch,
        "architecture": snap.architecture,
        "activation": None if config is None else config.model.activation_text,
        "batchnorm": None if config is None else config.model.batchnorm,
        "final_loss": _num(snap.loss),
        "accuracy": _num(snap.accuracy),
        "test_accuracy": _num(snap.test_accuracy),
        "r2": _num(snap.r2),
        "test_r2": _num(snap.test_r2),
        "notes": list(snap.notes),
        "diverged": snap.state == "diverged",
        "diverged_step": snap.diverged_step,
        "diverged_layer": snap.diverged_layer,
        "steps_per_second": round(steps_per_second, 1),
        "layers": layers,
        "predictions": [
            {
                "input": list(p.inputs),
                "target": p.target if p.target_value is None else _num(p.target_value),
                "output": _output(p),
            }
            for p in snap.predictions
        ],
        "findings": [to_record(f) for f in snap.findings],
    }


def score_lines(snap: Snapshot) -> list[str]:
    """How well the run does: accuracy for classification, R² for regression."""
    lines = []
    if snap.accuracy is not None:
        test = "" if snap.test_accuracy is None else f", test accuracy: {snap.test_accuracy:.2%}"
        lines.append(f"Accuracy: {snap.accuracy:.2%}{test}")
    if snap.r2 is not None:
        test = "" if snap.test_r2 is None else f", test R²: {snap.test_r2:.4f}"
        lines.append(f"R²: {snap.r2:.4f}{test}")
    return lines


def findings_lines(snap: Snapshot) -> list[str]:
    """The findings standing at the end, one line each, or a line that says there are none."""
    if not snap.findings:
        return ["Findings: none"]
    return ["Findings:"] + [f"  {f.severity}: {f.line}" for f in snap.findings]


def progress_line(snap: Snapshot) -> str:
    """The story's progress print: epoch and loss, then every layer's gradient norm (in
    scientific notation: the story's six decimals print a starving layer's 1e-7 as 0.000000)."""
    norms = ", ".join(f"{layer.name}: {layer.grad_norm:.3e}" for layer in snap.layers)
    head = f"Epoch {snap.epoch}, Loss: {snap.loss:.6f}"
    if snap.accuracy is not None:
        head += f", Accuracy: {snap.accuracy:.2%}"
    if snap.r2 is not None:
        head += f", R²: {snap.r2:.4f}"
    return f"{head}\n  grad norms - {norms}" if norms else head


def prediction_table(snap: Snapshot) -> list[str]:
    lines = []
    for p in snap.predictions:
        inputs = " ".join(f"{v:g}" for v in p.inputs[:4])
        if len(p.inputs) > 4:
            inputs += " ..."
        if p.target_value is not None:
            error = p.output[0] - p.target_value
            lines.append(
                f"input: [{inputs}], target: {p.target_value:.4g}, "
                f"prediction: {p.output[0]:.4g}, error: {error:+.3g}"
            )
            continue
        if len(p.output) == 1:
            output = f"{p.output[0]:.4f}"
        else:
            output = f"class {p.predicted} ({p.output[p.predicted]:.2f})"
        mark = "ok" if p.correct else "WRONG"
        lines.append(f"input: [{inputs}], target: {p.target}, output: {output}  {mark}")
    return lines
