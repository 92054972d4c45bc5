"""Where the first NaN came from (issue 18 item 6): a NaN put into one known module's forward
output, or into one known parameter's gradient, at a known update of a small model, is named in
the run file (``nonfinite``), by the finding, and by the banner at 80x24; bpmon's own engine
names the first layer of a run that overflows; a healthy run records nothing."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from test_tui import drive, wait_shows  # noqa: E402
from test_tui_runfiles import run_file_app  # noqa: E402
from textual.pilot import Pilot  # noqa: E402
from torch_zoo import ZOO, batch_for, loss_of  # noqa: E402

from bpmon.actions import advice  # noqa: E402
from bpmon.codec import from_record  # noqa: E402
from bpmon.diagnosis import Diagnosis  # noqa: E402
from bpmon.engine.network import Network  # noqa: E402
from bpmon.presets import load_preset  # noqa: E402
from bpmon.runmodel import NonFinite, Snapshot  # noqa: E402
from bpmon.telemetry import gradients_finite, nonfinite_origin  # noqa: E402
from bpmon.torch import watch  # noqa: E402
from bpmon.trainer import Trainer  # noqa: E402

NEVER = math.inf
NAN = float("nan")


def train(
    path: Path,
    *,
    name: str = "gpt",
    forward_nan: str | None = None,
    grad_nan: str | None = None,
    at: int = 3,
    updates: int = 8,
    every: int = 5,
    nan_trace: bool = False,
) -> list[dict[str, Any]]:
    """``updates`` updates of a zoo model with clipping, a NaN put at update ``at`` into the
    forward output of module ``forward_nan`` or the gradient of parameter ``grad_nan``; the run
    file's snapshot lines."""
    torch.manual_seed(0)
    model = ZOO[name]()
    update = {"n": 0}

    def output_nan(module: Any, inputs: Any, output: Any) -> Any:
        if update["n"] == at - 1 and torch.is_grad_enabled():
            return output * NAN
        return None

    def gradient_nan(grad: Any) -> Any:
        return grad * NAN if update["n"] == at - 1 else None

    if forward_nan is not None:
        dict(model.named_modules())[forward_nan].register_forward_hook(output_nan)
    if grad_nan is not None:
        dict(model.named_parameters())[grad_nan].register_hook(gradient_nan)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = batch_for(name)
    with watch(model, path, every=every, nan_trace=nan_trace) as mon:
        for _ in range(updates):
            loss = loss_of(model, x, y)
            opt.zero_grad()
            loss.backward()
            # A NaN total makes clip_grad_norm_ put NaN into every gradient: the origin must be
            # taken before it.
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            mon.log(loss=loss)
            update["n"] += 1
    return [r for r in map(json.loads, path.read_text().splitlines()) if "step" in r]


def origins(lines: list[dict[str, Any]]) -> list[tuple[int, NonFinite | None]]:
    return [
        (r["step"], None if r.get("nonfinite") is None else from_record(NonFinite, r["nonfinite"]))
        for r in lines
    ]


def test_a_forward_nan_names_its_module_on_the_update_it_happened(tmp_path: Path) -> None:
    target = "transformer.h.1.c_fc"
    lines = train(tmp_path / "run.jsonl", forward_nan=target, at=3, nan_trace=True)
    found = origins(lines)
    assert found[0] == (1, None)  # update 1, before the NaN
    origin = found[1][1]
    assert found[1][0] == 5 and origin is not None
    assert origin.step == 3 and origin.module == target
    assert not origin.weights and origin.forward_checked
    # Backward order: the output side first; the NaN loss reached every gradient, and the first
    # produced is the final LayerNorm's (the head's weight is tied to the embedding, whose
    # gradient is complete only at the end).
    assert origin.gradient == "transformer.ln_f.weight"
    assert origin.line == f"first non-finite: {target}, forward output, update 3"
    assert all(o == origin for _, o in found[1:])  # every later line carries it


def test_without_nan_trace_a_due_update_is_checked(tmp_path: Path) -> None:
    target = "transformer.h.1.c_fc"
    # every=1: each update is due, and checked.
    lines = train(tmp_path / "due.jsonl", forward_nan=target, at=3, every=1, updates=4)
    origin = origins(lines)[2][1]
    assert origin is not None and (origin.step, origin.module) == (3, target)
    # every=5: update 3 is not checked; at update 5 the NaN is in the weights already, and the
    # record says so instead of blaming the first layer's forward.
    lines = train(tmp_path / "late.jsonl", forward_nan=target, at=3, every=5, updates=5)
    late = origins(lines)[-1][1]
    assert late is not None and late.step == 5 and late.weights
    assert late.line == f"first non-finite: {late.module}, weights, update 5"


def test_a_gradient_only_nan_names_its_parameter(tmp_path: Path) -> None:
    param = "2.weight"  # the middle Linear of the MLP
    lines = train(tmp_path / "grad.jsonl", name="mlp", grad_nan=param, at=2, every=2, updates=4)
    origin = origins(lines)[1][1]
    assert origin is not None
    assert (origin.step, origin.gradient, origin.module) == (2, param, "")
    assert not origin.loss  # the forward and the loss were finite
    assert origin.line == f"first non-finite: {param}, gradient, update 2"


def test_a_healthy_run_records_nothing(tmp_path: Path) -> None:
    lines = train(tmp_path / "ok.jsonl", name="mlp", updates=6, every=1, nan_trace=True)
    assert [o for _, o in origins(lines)] == [None] * 6


def test_the_finding_and_the_banner_say_it(tmp_path: Path) -> None:
    path = tmp_path / "late.jsonl"
    lines = train(path, forward_nan="transformer.h.1.c_fc", at=3, every=5, updates=10)
    diagnosis = Diagnosis()
    snaps = [from_record(Snapshot, r) for r in lines]
    snaps = [replace(s, findings=diagnosis.add(s)) for s in snaps]
    assert not any(f.rule == "non-finite" for f in snaps[0].findings)
    finding = next(f for f in snaps[1].findings if f.rule == "non-finite")  # at once
    assert finding.severity == "error"
    origin = snaps[-1].nonfinite
    assert origin is not None and finding.evidence == origin.line.removeprefix("first non-finite: ")
    assert finding.layers == (origin.module,)
    said = advice(finding.actions, "torch", dict(finding.facts))
    # The update named was not the first non-finite one: the advice says how to find that,
    # with the run's own numbers, and names no key.
    assert said.startswith("update 5 was the first checked: watch(..., nan_trace=True)")

    async def body(pilot: Pilot[Any]) -> None:
        # The replay opens at the last snapshot: the banner's one line, whole, at 80x24.
        await wait_shows(pilot, origin.line)

    drive(run_file_app(path), body, size=(80, 24))


# -- bpmon's own engine ----------------------------------------------------------------------------


def test_the_engine_names_the_layer_whose_output_overflowed() -> None:
    net = Network([3, 4, 4, 2], activation="relu", output="identity", loss="mse", dtype="float32")
    net.blocks[0].dense.W[...] = 1.0
    net.blocks[1].dense.W[...] = 1e38  # finite weights whose products overflow float32
    X = np.ones((5, 3), dtype=np.float32)
    with np.errstate(all="ignore"):
        loss = net.forward_backward(X, np.zeros((5, 2), dtype=np.float32))
        assert not math.isfinite(loss) and not gradients_finite(net)
        origin = nonfinite_origin(net, 7, loss)
    assert origin is not None
    assert (origin.step, origin.module, origin.weights) == (7, "layer1", False)
    # The output layer's gradients come first in backward order.
    assert origin.gradient.startswith("layer2.")


def test_a_diverging_preset_records_where_and_a_healthy_one_nothing() -> None:
    config = load_preset("exploding").config
    config = replace(config, model=replace(config.model, dtype="float32"))
    with np.errstate(all="ignore"):
        snap = Trainer(config, "exploding", interval=NEVER).run()
    assert snap.state == "diverged" and snap.nonfinite is not None
    assert snap.nonfinite.step == snap.diverged_step
    assert snap.nonfinite.module.startswith("layer") and snap.nonfinite.gradient
    xor = Trainer(load_preset("xor").config, "xor", interval=NEVER).run(max_steps=50)
    assert xor.nonfinite is None
