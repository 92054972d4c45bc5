"""bpmon.torch: the PyTorch bridge writes run files whose figures mean what bpmon's own mean.

Skipped without PyTorch; tests/test_torch_missing.py checks the bridge without it.
"""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import bpmon
from bpmon.config import Thresholds
from bpmon.engine.activations import ACTIVATIONS_BY_NAME
from bpmon.engine.optimizers import make_optimizer
from bpmon.errors import BpmonError
from bpmon.telemetry import classify, collect

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "bpmon" / "schema" / "run-v2.schema.json"


torch = pytest.importorskip("torch")
nn = torch.nn

from bpmon.torch import watch  # noqa: E402 - after the skip: needs torch
from bpmon.torch.measure import health as _health  # noqa: E402

# -- helpers -------------------------------------------------------------------------------------


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def snapshots(path: Path) -> list[dict[str, Any]]:
    return [r for r in lines(path)[1:] if "event" not in r]


@pytest.fixture(scope="module")
def validator() -> Callable[[dict[str, Any]], None]:
    jsonschema = pytest.importorskip("jsonschema")
    if not SCHEMA.exists():
        pytest.skip(f"{SCHEMA.relative_to(ROOT)} does not exist yet: no schema to validate against")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    checker = jsonschema.Draft202012Validator(schema)
    return checker.validate  # type: ignore[no-any-return]


def mlp(sizes: tuple[int, ...], act: type[nn.Module] = nn.ReLU, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def batch(n: int, d: int, out: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randn(n, out, generator=g)


def train(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    steps: int,
    mon: Any = None,
    X: torch.Tensor | None = None,
    y: torch.Tensor | None = None,
) -> None:
    """``steps`` updates of mse on one fixed batch, logging the loss after each update."""
    if X is None or y is None:
        first = next(m for m in model.modules() if isinstance(m, nn.Linear))
        last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
        X, y = batch(16, first.in_features, last.out_features)
    for _ in range(steps):
        loss = nn.functional.mse_loss(model(X), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if mon is not None:
            mon.log(loss=loss)


def run_script(script: str, path: Path) -> subprocess.CompletedProcess[str]:
    """``script`` in a fresh Python with the run file's ``path`` as its argument, so that its
    exit (and the monitor's end at exit) is the script's own."""
    return subprocess.run(
        [sys.executable, "-c", script, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def grad_norms(model: nn.Module) -> list[float]:
    return [
        float(torch.linalg.vector_norm(m.weight.grad))
        for m in model.modules()
        if isinstance(m, nn.Linear) and m.weight.grad is not None
    ]


# -- the file ------------------------------------------------------------------------------------


def test_the_run_file_has_a_header_a_line_per_due_update_and_an_end(
    tmp_path: Path, validator: Callable[[dict[str, Any]], None]
) -> None:
    model = mlp((6, 5, 4, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    path = tmp_path / "runs" / "exp1.jsonl"  # the folder does not exist yet
    mon = watch(model, path, every=4)
    train(model, opt, 9, mon)
    mon.log(accuracy=0.5, test_accuracy=torch.tensor(0.25), epoch=3, lr=0.05)
    mon.close()
    mon.close()  # a second close does nothing
    records = lines(path)
    for record in records:
        validator(record)
    head = records[0]
    assert head["format"] == "bpmon-run" and head["version"] == 2 and head["source"] == "torch"
    assert head["name"] == "exp1"
    described = ("name", "kind", "shape", "fan_in", "fan_out", "activation", "params")
    assert [{k: x[k] for k in described} for x in head["layers"]] == [
        {"name": "0", "kind": "Linear", "shape": [5, 6], "fan_in": 6, "fan_out": 5,
         "activation": "relu", "params": 35},
        {"name": "2", "kind": "Linear", "shape": [4, 5], "fan_in": 5, "fan_out": 4,
         "activation": "relu", "params": 24},
        {"name": "4", "kind": "Linear", "shape": [3, 4], "fan_in": 4, "fan_out": 3,
         "activation": None, "params": 15},
    ]  # fmt: skip
    assert head["thresholds"] == {
        "vanish_rel": 0.01, "vanish_abs": 1e-8, "explode_rel": 100.0, "explode_abs": 100.0
    }  # fmt: skip
    assert head["architecture"] == "6-5-4-3"
    assert head["switches"] == "6-5-4-3 relu torch"
    assert head["epochs"] is None and head["config"] is None
    *due, last = records[1:-1]
    assert [s["step"] for s in due] == [1, 4, 8]
    for s in due:
        assert s["state"] == "running" and s["run_id"] == 0 and s["epoch"] is None
        assert s["lr"] == pytest.approx(0.1)
        assert isinstance(s["loss"], float) and s["accuracy"] is None
        assert [layer["name"] for layer in s["layers"]] == ["0", "2", "4"]
        assert [layer["activation"] for layer in s["layers"]] == ["relu", "relu", None]
        assert all(layer["delta_norm"] is None for layer in s["layers"])
        assert all(layer["update_ratio"] is not None for layer in s["layers"])
    # Update 9 was not due: close() writes its line, with what is known after it.
    assert last["step"] == 9 and last["update_start"] == 9
    assert (last["accuracy"], last["test_accuracy"], last["epoch"]) == (0.5, 0.25, 3)
    assert last["lr"] == pytest.approx(0.05)
    assert [x["grad_norm"] for x in last["layers"]] == pytest.approx(grad_norms(model), rel=1e-6)
    weights = [float(torch.linalg.vector_norm(model[i].weight.detach())) for i in (0, 2, 4)]
    assert [x["weight_norm"] for x in last["layers"]] == pytest.approx(weights, rel=1e-6)
    # Taken on due updates only: unknown here, and no note calls them unmeasured.
    assert all(x["update_ratio"] is None and x["health_label"] == "" for x in last["layers"])
    assert all(x["note"] == "" for x in last["layers"])
    assert records[-1] == {"event": "end", "state": "finished"}
    assert mon.steps == 9


def test_values_logged_after_the_last_due_update_reach_its_line(tmp_path: Path) -> None:
    model = mlp((3, 4, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with watch(model, tmp_path / "r.jsonl", every=1) as mon:
        train(model, opt, 1, mon)
        mon.log(accuracy=torch.tensor(0.75), test_accuracy=0.5, epoch=2, lr=torch.tensor(0.01))
    (snap,) = snapshots(tmp_path / "r.jsonl")
    assert (snap["accuracy"], snap["test_accuracy"], snap["epoch"]) == (0.75, 0.5, 2)
    assert snap["lr"] == pytest.approx(0.01)


def test_non_finite_figures_are_null_and_the_layer_nonfinite(
    tmp_path: Path, validator: Callable[[dict[str, Any]], None]
) -> None:
    model = mlp((3, 4, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    path = tmp_path / "nan.jsonl"
    with watch(model, path, every=1) as mon:
        X, y = batch(8, 3, 1)
        loss = nn.functional.mse_loss(model(X), y)
        loss.backward()
        model[0].weight.grad[0, 0] = math.inf
        mon.log(loss=math.nan)
        opt.step()
    records = lines(path)
    for record in records:
        validator(record)
    snap = records[1]
    assert snap["loss"] is None
    assert snap["layers"][0]["grad_norm"] is None
    assert snap["layers"][0]["status"] == "nonfinite"
    assert snap["layers"][0]["weight_norm"] is None  # the inf gradient made the weight inf


def test_bad_arguments_are_refused_in_one_line(tmp_path: Path) -> None:
    model = mlp((3, 4, 1))
    for every in (0, -1, 2.5, True):
        with pytest.raises(BpmonError, match="every"):
            watch(model, tmp_path / "x.jsonl", every=every)  # type: ignore[arg-type]
    with pytest.raises(BpmonError, match="no layer to watch"):
        watch(model, tmp_path / "x.jsonl", include="nothing*")
    with pytest.raises(BpmonError, match="no layer to watch"):
        watch(nn.Sequential(nn.ReLU()), tmp_path / "x.jsonl")
    with watch(model, tmp_path / "x.jsonl") as mon, pytest.warns(RuntimeWarning, match="a 1-elem"):
        mon.log(loss=torch.ones(3))  # monitoring never stops training: null and one warning


def test_a_path_that_cannot_be_written_is_refused_before_any_hook(tmp_path: Path) -> None:
    from torch.optim import optimizer as optim_module

    hooks = len(optim_module._global_optimizer_pre_hooks)
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(BpmonError, match="cannot write the run file"):
        watch(mlp((3, 4, 1)), tmp_path / "file" / "run.jsonl")
    assert len(optim_module._global_optimizer_pre_hooks) == hooks


def test_a_text_stream_can_take_the_lines(tmp_path: Path) -> None:
    import io

    stream = io.StringIO()
    model = mlp((3, 4, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with watch(model, stream, every=1, name="in-memory") as mon:
        train(model, opt, 2, mon)
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert records[0]["name"] == "in-memory"
    assert [r.get("step") for r in records[1:]] == [1, 2, None]
    assert not stream.closed  # the caller's stream stays open


# -- which modules -------------------------------------------------------------------------------


class Mixed(nn.Module):
    """An embedding, a convolution with batch-norm, a head with LayerNorm, GELU and dropout, a
    PReLU (1-D weight) and a frozen layer."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.conv = nn.Conv1d(4, 6, 3)
        self.bn = nn.BatchNorm1d(6)
        self.act = nn.ReLU()
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(18, 5), nn.LayerNorm(5), nn.GELU(), nn.Dropout(0.0),
            nn.Linear(5, 2),
        )  # fmt: skip
        self.prelu = nn.PReLU()
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.emb(tokens).transpose(1, 2)  # (N, 4, 5)
        x = self.act(self.bn(self.conv(x)))  # (N, 6, 3)
        return self.frozen(self.prelu(self.head(x)))


def test_watched_modules_kinds_fans_and_activations(tmp_path: Path) -> None:
    model = Mixed()
    with watch(model, tmp_path / "m.jsonl") as mon:
        assert mon.layer_names == (
            "emb", "conv", "bn", "head.1", "head.2", "head.5", "prelu.weight"
        )  # fmt: skip
    head = lines(tmp_path / "m.jsonl")[0]
    described = [
        (x["kind"], x["shape"], x["fan_in"], x["fan_out"], x["activation"]) for x in head["layers"]
    ]
    assert described == [
        ("Embedding", [10, 4], 10, 4, None),
        ("Conv1d", [6, 4, 3], 4, 6, "relu"),  # BatchNorm1d in between is skipped over
        ("BatchNorm1d", [6], 1, 6, None),  # a row of its own (a vector row)
        ("Linear", [5, 18], 18, 5, "gelu"),  # LayerNorm in between
        ("LayerNorm", [5], 1, 5, None),
        ("Linear", [2, 5], 5, 2, None),  # PReLU is not one of the known activations
        ("Parameter", [1], 1, 1, None),  # PReLU's weight, a raw parameter; frozen: no row
    ]  # fmt: skip
    assert head["architecture"] == "4 layers"
    assert head["switches"] == "4 layers +bn torch"


@pytest.mark.parametrize(
    ("include", "exclude", "names"),
    [
        ("head.*", None, ("head.1", "head.2", "head.5")),
        (None, ["emb", "head.5", "bn", "head.2", "prelu*"], ("conv", "head.1")),
        (["conv", "head.?"], "head.[25]", ("conv", "head.1")),
    ],
)
def test_include_and_exclude_are_fnmatch_patterns(
    tmp_path: Path, include: Any, exclude: Any, names: tuple[str, ...]
) -> None:
    with watch(Mixed(), tmp_path / "m.jsonl", include=include, exclude=exclude) as mon:
        assert mon.layer_names == names


def test_a_ddp_wrapper_is_unwrapped(tmp_path: Path) -> None:
    model = mlp((3, 4, 1))
    with watch(nn.DataParallel(model), tmp_path / "w.jsonl") as mon:
        assert mon.layer_names == ("0", "2")


def test_the_conv_layers_health_comes_from_its_activation(tmp_path: Path) -> None:
    model = Mixed()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    tokens = torch.randint(0, 10, (8, 5), generator=torch.Generator().manual_seed(0))
    z_seen: list[torch.Tensor] = []
    model.act.register_forward_hook(lambda m, i, o: z_seen.append(i[0].detach().clone()))
    with watch(model, tmp_path / "m.jsonl", every=1) as mon:
        model(tokens).sum().backward()
        opt.step()
        mon.log(loss=0.0)
    layers = snapshots(tmp_path / "m.jsonl")[0]["layers"]
    expected = float((z_seen[-1] <= 0).all(dim=0).float().mean())
    assert layers[1]["health"] == pytest.approx(expected)
    assert layers[1]["health_label"] == "dead"
    assert layers[0]["health_label"] == "" and layers[0]["health"] == 0.0


# -- activation health ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "leaky_relu"])
def test_health_uses_the_engines_definitions(name: str) -> None:
    rng = np.random.default_rng(0)
    z = rng.standard_normal((16, 12)) * 3.0
    z[:, :3] = -np.abs(z[:, :3])  # three units off for the whole batch
    act = ACTIVATIONS_BY_NAME[name]()
    a = act.forward(z, np.empty_like(z))
    mine = _health(name, torch.from_numpy(z), torch.from_numpy(a))
    assert mine is not None
    assert float(mine) == pytest.approx(act.health(a, z), abs=1e-12)
    if name in ("relu", "leaky_relu"):
        assert float(mine) >= 3 / 12


def test_gelu_health_is_the_relu_test() -> None:
    z = torch.randn(16, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    z[:, :5] = -z[:, :5].abs()
    relu = _health("relu", z, torch.relu(z))
    gelu = _health("gelu", z, nn.functional.gelu(z))
    assert gelu is not None and relu is not None
    assert float(gelu) == float(relu) >= 5 / 12


class SharedAct(nn.Module):
    """One ReLU module, registered once, called after two layers."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(3, 4)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(4, 4)
        self.fc3 = nn.Linear(4, 1)
        with torch.no_grad():
            self.fc1.bias[:2] = -100.0  # units 0 and 1 of fc1 are off for every input
            self.fc2.bias[:] = 100.0  # fc2's units are never off

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(self.act(self.fc2(self.act(self.fc1(x)))))


def test_a_shared_activation_is_credited_to_the_layer_it_follows(tmp_path: Path) -> None:
    model = SharedAct()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    X, y = batch(16, 3, 1)
    with watch(model, tmp_path / "s.jsonl", every=1) as mon:
        loss = nn.functional.mse_loss(model(X), y)
        loss.backward()
        with torch.no_grad():  # a validation forward before the update: not the update's
            model(X * 0 - 1e3)
        opt.step()
        mon.log(loss=loss)
    head = lines(tmp_path / "s.jsonl")[0]
    assert [x["activation"] for x in head["layers"]] == ["relu", None, None]
    layers = snapshots(tmp_path / "s.jsonl")[0]["layers"]
    assert layers[0]["health"] == 0.5  # from the call after fc1, not the one after fc2


def test_a_module_repeated_in_a_sequential_follows_each_layer(tmp_path: Path) -> None:
    relu = nn.ReLU()
    model = nn.Sequential(nn.Linear(3, 4), relu, nn.Linear(4, 4), relu, nn.Linear(4, 1))
    with torch.no_grad():
        model[0].bias[:1] = -100.0  # at least a quarter of layer 0 off
        model[2].bias[:3] = -100.0  # at least three quarters of layer 2 off
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    X, y = batch(16, 3, 1)
    with torch.no_grad():
        z0 = model[0](X)
        z2 = model[2](torch.relu(z0))
    expected = [float((z <= 0).all(dim=0).float().mean()) for z in (z0, z2)]
    assert expected[0] >= 0.25 and expected[1] >= 0.75 and expected[0] != expected[1]
    with watch(model, tmp_path / "q.jsonl", every=1) as mon:
        train(model, opt, 1, mon, X, y)
    layers = snapshots(tmp_path / "q.jsonl")[0]["layers"]
    assert [x["health"] for x in layers] == [*expected, 0.0]


# Each spelling of an activation called as a function, and the module that does the same.
FUNCTIONAL: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], type[nn.Module]]] = {
    "F.relu": (nn.functional.relu, nn.ReLU),
    "torch.relu": (torch.relu, nn.ReLU),
    "x.relu()": (lambda x: x.relu(), nn.ReLU),
    "F.relu(inplace=True)": (lambda x: nn.functional.relu(x, inplace=True), nn.ReLU),
    "F.leaky_relu": (nn.functional.leaky_relu, nn.LeakyReLU),
    "F.gelu": (nn.functional.gelu, nn.GELU),
    "torch.tanh": (torch.tanh, nn.Tanh),
    "x.tanh()": (lambda x: x.tanh(), nn.Tanh),
    "torch.sigmoid": (torch.sigmoid, nn.Sigmoid),
}


class CallsActivation(nn.Module):
    """pytorch/examples' mnist CNN in small: conv and batch-norm, the activation called as a
    function, pooling, a fully connected layer and the function again, the head; with
    ``module`` the same network with activation modules."""

    def __init__(self, act: Callable[[torch.Tensor], torch.Tensor], module: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        # Registered in the order they run, as the module pairing expects.
        self.conv = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.first = FUNCTIONAL_MODULE[act]() if module else act
        self.fc = nn.Linear(16, 8)
        self.second = FUNCTIONAL_MODULE[act]() if module else act
        self.head = nn.Linear(8, 2)
        with torch.no_grad():
            self.fc.bias[:3] = -100.0  # three of fc's units never fire

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(self.first(self.bn(self.conv(x))), 2).flatten(1)
        return self.head(self.second(self.fc(x)))


FUNCTIONAL_MODULE = {act: module for act, module in FUNCTIONAL.values()}


@pytest.mark.parametrize("spelling", FUNCTIONAL)
def test_an_activation_called_as_a_function_is_measured_as_its_module(
    tmp_path: Path, spelling: str
) -> None:
    act, module = FUNCTIONAL[spelling]
    X = torch.randn(16, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    got = []
    for as_module in (False, True):
        model = CallsActivation(act, as_module)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        path = tmp_path / f"{as_module}.jsonl"
        with watch(model, path, every=1) as mon:
            loss = model(X).pow(2).mean()
            loss.backward()
            opt.step()
            mon.log(loss=loss)
        (snap,) = snapshots(path)
        got.append([(x["activation"], x["health_label"], x["health"]) for x in snap["layers"]])
    functional_rows, module_rows = got
    assert functional_rows == module_rows
    conv, bn, fc, head = functional_rows
    assert conv[0] == fc[0] is not None
    assert bn[0] is None and head == (None, "", 0.0)  # nothing after the head
    if module in (nn.ReLU, nn.LeakyReLU):
        assert fc[2] >= 3 / 8  # fc's three dead units


class NotItsActivation(nn.Module):
    """Activations that are not a layer's: one after an embedding, a tanh inside a GELU
    written out (as Hugging Face's ``NewGELUActivation``), a gate's sigmoid, and a ReLU in a
    validation forward."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.fc = nn.Linear(4, 4)
        self.out = nn.Linear(4, 4)
        self.gate = nn.Parameter(torch.zeros(4))

    def forward(self, tokens: torch.Tensor, validating: bool = False) -> torch.Tensor:
        x = torch.relu(self.emb(tokens))  # (N, 4)
        y = self.fc(x)
        y = 0.5 * y * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (y + 0.044715 * y**3)))
        y = self.out(y)
        if validating:
            y = torch.relu(y)
        return (y * torch.sigmoid(self.gate)).sum()


def test_an_activation_that_is_not_the_layers_is_not_credited(tmp_path: Path) -> None:
    model = NotItsActivation()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    tokens = torch.arange(8) % 10
    with watch(model, tmp_path / "n.jsonl", every=1) as mon:
        loss = model(tokens)
        loss.backward()
        with torch.no_grad():
            model(tokens, validating=True)  # fc's ReLU, but not in the update's forward
        opt.step()
        mon.log(loss=loss)
    (snap,) = snapshots(tmp_path / "n.jsonl")
    assert {x["name"]: x["activation"] for x in snap["layers"]} == {
        "emb": None, "fc": None, "out": None, "gate": None
    }  # fmt: skip


@pytest.mark.parametrize("calls_one", [True, False])
def test_functions_are_watched_on_due_forwards_only_and_left_after_an_exception(
    tmp_path: Path, calls_one: bool
) -> None:
    """The torch function mode that sees activation functions is on only during a due
    update's forward passes, and off again after a forward that raised; in a model that calls
    no activation function, only during the first."""
    modes: list[int] = []

    class Probe(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            modes.append(torch._C._len_torch_function_stack())
            if x.shape[0] == 1:
                raise ValueError("a bad batch")
            return x

    model = nn.Sequential(nn.Linear(3, 4), Probe(), nn.Linear(4, 1))
    forward = model.forward

    def calls_relu(x: torch.Tensor) -> torch.Tensor:
        return torch.relu(forward(x)) if calls_one else forward(x) * 2

    model.forward = calls_relu  # type: ignore[method-assign]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    X, y = batch(8, 3, 1)
    with watch(model, tmp_path / "d.jsonl", every=3) as mon:
        for n in range(1, 7):
            loss = nn.functional.mse_loss(model(X), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            mon.log(loss=loss)
            if n == 2:  # update 3 is due: its hooks are on
                with pytest.raises(ValueError, match="a bad batch"):
                    model(X[:1])
                assert torch._C._len_torch_function_stack() == 0
    # Due: 1, 3 and 6 (and the failed forward before 3); not due: 2, 4 and 5.
    assert modes == ([1, 0, 1, 1, 0, 0, 1] if calls_one else [1, 0, 0, 0, 0, 0, 0])


def test_a_loop_without_an_optimiser_leaves_no_function_mode_behind(tmp_path: Path) -> None:
    """Without an optimiser an update completes at the next forward's pre-hook, which may stop
    watching calls while that forward's own mode is on: it must still be left at its end."""
    model = mlp((3, 4, 1), act=nn.Tanh)
    X, y = batch(8, 3, 1)
    with watch(model, tmp_path / "h.jsonl", every=1):
        for _ in range(4):
            loss = nn.functional.mse_loss(model(X), y)
            model.zero_grad()
            loss.backward()
            with torch.no_grad():
                for p in model.parameters():
                    p -= 0.1 * p.grad
            assert torch._C._len_torch_function_stack() == 0


# -- parity with bpmon's engine ------------------------------------------------------------------


@pytest.mark.parametrize("batchnorm", [False, True])
def test_figures_equal_bpmons_own_on_the_same_network(
    tmp_path: Path, batchnorm: bool, validator: Callable[[dict[str, Any]], None]
) -> None:
    sizes = [2, 8, 8, 4, 1]
    net = bpmon.Network(
        sizes=sizes, activation="relu", output="identity", batchnorm=batchnorm, init="he",
        loss="mse", seed=0,
    )  # fmt: skip
    rng = np.random.default_rng(3)
    X = rng.standard_normal((32, 2))
    y = np.sin(X[:, :1] * 2.0) + X[:, 1:] ** 2

    modules: list[nn.Module] = []
    for block in net.blocks:
        fan_in, fan_out = block.dense.W.shape
        linear = nn.Linear(fan_in, fan_out, dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(block.dense.W.T.copy()))  # torch: (out, in)
            linear.bias.copy_(torch.from_numpy(block.dense.b.copy()))
        modules.append(linear)
        if block.bn is not None:
            bn = nn.BatchNorm1d(fan_out, eps=block.bn.eps, momentum=block.bn.momentum,
                                dtype=torch.float64)  # fmt: skip
            with torch.no_grad():
                bn.weight.copy_(torch.from_numpy(block.bn.gamma.copy()))
                bn.bias.copy_(torch.from_numpy(block.bn.beta.copy()))
            modules.append(bn)
        if block.act is not None:
            modules.append(nn.ReLU())
    model = nn.Sequential(*modules)
    lr = 0.1
    opt_t = torch.optim.SGD(model.parameters(), lr=lr)
    path = tmp_path / "parity.jsonl"
    with watch(model, path, every=1, optimizer=opt_t) as mon:
        out = model(torch.from_numpy(X))
        loss_t = 0.5 * ((torch.from_numpy(y) - out) ** 2).mean()  # bpmon's mse
        opt_t.zero_grad()
        loss_t.backward()
        opt_t.step()
        mon.log(loss=loss_t)

    opt = make_optimizer("sgd", net.params, net.grads, lr)
    loss = net.forward_backward(X, y)
    opt.step()
    expected = collect(net, opt, Thresholds())

    records = lines(path)
    for record in records:
        validator(record)
    assert records[0]["switches"] == "2-8-8-4-1 relu" + (" +bn" if batchnorm else "") + " torch"
    snap = records[1]
    assert snap["loss"] == pytest.approx(loss, abs=1e-12)
    # The batch-norm layers are rows of their own (vector rows); bpmon's rows are the Dense ones.
    kinds = [x["kind"] for x in records[0]["layers"]]
    assert kinds.count("BatchNorm1d") == (3 if batchnorm else 0)
    got = [row for row, kind in zip(snap["layers"], kinds, strict=True) if kind == "Linear"]
    assert len(got) == len(expected) == 4
    for mine, theirs in zip(got, expected, strict=True):
        for key in ("grad_norm", "bias_grad_norm", "weight_norm", "update_ratio", "health"):
            assert mine[key] == pytest.approx(getattr(theirs, key), rel=1e-6, abs=1e-6), key
        assert mine["status"] == theirs.status
        assert (mine["fan_in"], mine["fan_out"]) == (theirs.fan_in, theirs.fan_out)
        assert mine["activation"] == theirs.activation
        assert mine["health_label"] == theirs.health_label


def test_statuses_come_from_bpmons_classify(tmp_path: Path) -> None:
    """A vanishing profile: the deep sigmoid network's first layers, classified by classify()."""
    model = mlp((8, 16, 16, 16, 16, 16, 4), act=nn.Sigmoid, seed=1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                m.weight.normal_(0.0, 0.1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with watch(model, tmp_path / "v.jsonl", every=1) as mon:
        train(model, opt, 1, mon)
    layers = snapshots(tmp_path / "v.jsonl")[0]["layers"]
    norms = [x["grad_norm"] for x in layers]
    assert tuple(x["status"] for x in layers) == classify(norms, Thresholds())
    assert layers[0]["status"] == "vanishing" and layers[-1]["status"] == "healthy"
    custom = Thresholds(vanish_rel=1e-9)
    with watch(model, tmp_path / "c.jsonl", every=1, thresholds=custom) as mon:
        train(model, opt, 1, mon)
    assert lines(tmp_path / "c.jsonl")[0]["thresholds"]["vanish_rel"] == 1e-9
    assert snapshots(tmp_path / "c.jsonl")[0]["layers"][0]["status"] == "healthy"


# -- updates -------------------------------------------------------------------------------------


def test_accumulated_gradients_are_measured_once_per_update(tmp_path: Path) -> None:
    model = mlp((3, 5, 2), act=nn.Tanh)
    reference = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    X, y = batch(32, 3, 2)
    parts = list(zip(X.chunk(4), y.chunk(4), strict=True))
    with watch(model, tmp_path / "a.jsonl", every=1) as mon:
        for xb, yb in parts:
            (nn.functional.mse_loss(model(xb), yb) / 4).backward()
        opt.step()
    assert mon.steps == 1
    (snap,) = snapshots(tmp_path / "a.jsonl")
    total = sum(nn.functional.mse_loss(reference(xb), yb) / 4 for xb, yb in parts)
    total.backward()
    assert [x["grad_norm"] for x in snap["layers"]] == pytest.approx(grad_norms(reference))
    # The activation's health is from the last micro-batch's forward.
    last_a = torch.tanh(reference[0](parts[-1][0]))
    expected = float((last_a.abs() > 0.95).float().mean())
    assert snap["layers"][0]["health"] == pytest.approx(expected)


def test_update_ratio_is_the_weights_change_over_the_weights(tmp_path: Path) -> None:
    model = mlp((4, 6, 3))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    with watch(model, tmp_path / "u.jsonl", every=2) as mon:
        train(model, opt, 1, mon)
        before = [m.weight.detach().clone() for m in model if isinstance(m, nn.Linear)]
        train(model, opt, 1, mon)
    after = [m.weight.detach() for m in model if isinstance(m, nn.Linear)]
    snap = snapshots(tmp_path / "u.jsonl")[-1]
    assert snap["step"] == 2
    for layer, b, a in zip(snap["layers"], before, after, strict=True):
        assert layer["weight_norm"] == pytest.approx(float(a.norm()))
        assert layer["update_ratio"] == pytest.approx(float((b - a).norm() / a.norm()))


def test_the_optimizer_is_found_without_being_passed(tmp_path: Path) -> None:
    model = mlp((3, 4, 1))
    other = nn.Linear(2, 2)
    other_opt = torch.optim.SGD(other.parameters(), lr=0.1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with watch(model, tmp_path / "f.jsonl", every=1) as mon:
        other(torch.ones(1, 2)).sum().backward()
        other_opt.step()  # not the model's: not an update
        assert mon.steps == 0
        train(model, opt, 3, mon)
        other_opt.step()
    assert mon.steps == 3
    assert [s["step"] for s in snapshots(tmp_path / "f.jsonl")] == [1, 2, 3]


def test_a_hand_written_loop_calls_step(tmp_path: Path) -> None:
    model = mlp((3, 4, 1))
    reference = copy.deepcopy(model)
    X, y = batch(16, 3, 1)
    lr = 0.1
    with watch(model, tmp_path / "h.jsonl", every=2) as mon:
        for _ in range(4):
            loss = nn.functional.mse_loss(model(X), y)
            loss.backward()
            with torch.no_grad():
                for p in model.parameters():
                    p -= lr * p.grad
            mon.step()  # after the update, before zeroing
            mon.log(loss=loss)
            for p in model.parameters():
                p.grad = None
        # Once step() counts the updates, an optimiser over the same weights is not adopted.
        torch.optim.SGD(model.parameters(), lr=0.0).step()
    assert mon.steps == 4
    snaps = snapshots(tmp_path / "h.jsonl")
    assert [s["step"] for s in snaps] == [1, 2, 4]
    # Step 1 against the same update by hand.
    nn.functional.mse_loss(reference(X), y).backward()
    w0 = [m.weight.detach().clone() for m in reference if isinstance(m, nn.Linear)]
    g0 = grad_norms(reference)
    with torch.no_grad():
        for p in reference.parameters():
            p -= lr * p.grad
    w1 = [m.weight.detach() for m in reference if isinstance(m, nn.Linear)]
    first = snaps[0]["layers"]
    assert [x["grad_norm"] for x in first] == pytest.approx(g0)
    for layer, a, b in zip(first, w0, w1, strict=True):
        assert layer["update_ratio"] == pytest.approx(float((a - b).norm() / b.norm()))


def test_step_is_refused_when_an_optimizer_counts_the_updates(tmp_path: Path) -> None:
    model = mlp((3, 4, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with watch(model, tmp_path / "r.jsonl", optimizer=opt) as mon, pytest.raises(BpmonError):
        mon.step()


def test_close_removes_every_hook(tmp_path: Path) -> None:
    from torch.optim import optimizer as optim_module

    before = (
        len(optim_module._global_optimizer_pre_hooks),
        len(optim_module._global_optimizer_post_hooks),
    )
    model = mlp((3, 4, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    mon = watch(model, tmp_path / "c.jsonl", every=1)
    train(model, opt, 2, mon)
    mon.close()
    size = (tmp_path / "c.jsonl").stat().st_size
    train(model, opt, 2, mon)
    mon.step()
    assert (tmp_path / "c.jsonl").stat().st_size == size
    assert mon.steps == 2
    after = (
        len(optim_module._global_optimizer_pre_hooks),
        len(optim_module._global_optimizer_post_hooks),
    )
    assert after == before
    assert not model[1]._forward_hooks and not model[0]._forward_hooks


@pytest.mark.parametrize(
    ("exc", "state"),
    [(None, "finished"), (RuntimeError, "error"), (KeyboardInterrupt, "interrupted")],
)
def test_the_with_block_writes_the_end_state(
    tmp_path: Path, exc: type[BaseException] | None, state: str
) -> None:
    model = mlp((3, 4, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    path = tmp_path / "w.jsonl"
    try:
        with watch(model, path, every=1) as mon:
            train(model, opt, 2, mon)
            if exc is not None:
                raise exc("stop")
    except (RuntimeError, KeyboardInterrupt):
        pass
    assert lines(path)[-1] == {"event": "end", "state": state}
    assert len(snapshots(path)) == 2


@pytest.mark.parametrize(
    ("ending", "state"),
    [("", "finished"), ("raise KeyboardInterrupt", "interrupted"), ("1 / 0", "error")],
)
def test_the_end_line_is_written_at_exit(tmp_path: Path, ending: str, state: str) -> None:
    path = tmp_path / "exit.jsonl"
    script = textwrap.dedent(
        f"""
        import sys, torch
        from torch import nn
        from bpmon.torch import watch
        model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        mon = watch(model, sys.argv[1], every=2)
        for _ in range(3):
            loss = model(torch.ones(2, 3)).pow(2).mean()
            opt.zero_grad(); loss.backward(); opt.step()
            mon.log(loss=loss)
        {ending}
        """
    )
    proc = run_script(script, path)
    assert (proc.returncode == 0) == (state == "finished"), proc.stderr[-2000:]
    records = lines(path)
    # 3 was not due: the last update's line is written at the exit, before the end line.
    assert [r["step"] for r in records[1:-1]] == [1, 2, 3]
    assert records[1]["loss"] is not None  # logged after the update: the line waited for it
    assert records[3]["loss"] == records[3]["update_losses"][-1] is not None
    assert records[-1] == {"event": "end", "state": state}


@pytest.mark.parametrize("loop", ["optimizer", "hand-written"])
def test_a_run_shorter_than_every_keeps_every_update(tmp_path: Path, loop: str) -> None:
    """As pytorch/examples' word_language_model on a small corpus: 30 updates at every=50,
    clipped, with an optimiser or a hand-written SGD step; the script never closes the
    monitor. The file still has every update's loss and pre-clip gradient norm."""
    path = tmp_path / "short.jsonl"
    script = textwrap.dedent(
        f"""
        import json, sys, torch
        from torch import nn
        from bpmon.torch import watch
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
        opt = torch.optim.SGD(model.parameters(), lr=0.1) if {loop == "optimizer"} else None
        mon = watch(model, sys.argv[1], every=50)
        X, y = torch.randn(16, 3), torch.randn(16, 1)
        losses, totals = [], []
        for _ in range(30):
            model.zero_grad()
            loss = nn.functional.mse_loss(model(X), y)
            loss.backward()
            totals.append(float(nn.utils.clip_grad_norm_(model.parameters(), 0.1)))
            if opt is None:
                with torch.no_grad():
                    for p in model.parameters():
                        p.add_(p.grad, alpha=-0.1)
            else:
                opt.step()
            mon.log(loss=loss)
            losses.append(float(loss))
        print(json.dumps([losses, totals]))
        """
    )
    proc = run_script(script, path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    losses, totals = json.loads(proc.stdout)
    records = lines(path)
    snaps = records[1:-1]
    assert [s["step"] for s in snaps] == [1, 30]
    assert [s["update_start"] for s in snaps] == [1, 2]
    assert [x for s in snaps for x in s["update_losses"]] == pytest.approx(losses, rel=1e-6)
    norms = [x for s in snaps for x in s["update_grad_norms"]]
    assert norms == pytest.approx(totals, rel=1e-5)
    assert snaps[1]["grad_norm_total"] == pytest.approx(totals[-1], rel=1e-5)
    assert snaps[1]["clip_max"] == pytest.approx(0.1)  # the last update's clipping, too
    if loop == "optimizer":  # and the lr it used (a hand-written step has no optimiser's lr)
        assert snaps[1]["lrs"] == pytest.approx([0.1])
    assert snaps[1]["clip_factor"] == pytest.approx(min(1.0, 0.1 / totals[-1]), rel=1e-4)
    assert records[-1] == {"event": "end", "state": "finished"}


def test_only_rank_zero_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "1")
    model = mlp((3, 4, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with watch(model, tmp_path / "rank1.jsonl", every=1) as mon:
        train(model, opt, 2, mon)
        mon.step()
    assert not mon.active and mon.steps == 0
    assert not (tmp_path / "rank1.jsonl").exists()


# -- where the loss of a line comes from -----------------------------------------------------------


@pytest.mark.parametrize("log_after_update", [True, False])
def test_a_line_carries_the_loss_of_its_own_iteration(
    tmp_path: Path, log_after_update: bool
) -> None:
    model = mlp((3, 4, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    X, y = batch(16, 3, 1)
    losses = []
    with watch(model, tmp_path / "l.jsonl", every=3) as mon:
        for i in range(7):
            loss = nn.functional.mse_loss(model(X), y)
            losses.append(float(loss.detach()))
            if not log_after_update:
                mon.log(loss=loss, epoch=i)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if log_after_update:
                mon.log(loss=loss, epoch=i)
    snaps = snapshots(tmp_path / "l.jsonl")
    # 7 is not due; as the last update it has a line, written at the end, whose loss the
    # loop's convention (seen at the due updates) places as the due lines' are.
    assert [s["step"] for s in snaps] == [1, 3, 6, 7]
    assert [s["loss"] for s in snaps] == pytest.approx([losses[i] for i in (0, 2, 5, 6)])
    assert [s["epoch"] for s in snaps] == [0, 2, 5, 6]
    series = [x for s in snaps for x in s["update_losses"]]
    assert series == pytest.approx(losses)


# -- cost: no host-device synchronisation on updates that are not due ---------------------------

COUNTED = ("item", "tolist", "cpu", "numpy", "to", "clone", "__float__", "__int__", "__bool__")


@pytest.fixture
def count_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Counts calls of the tensor methods that read a tensor back to the host (or copy it), and
    of the norm kernels, while the test runs."""
    counts: Counter[str] = Counter()

    def counting(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return original(*args, **kwargs)

        return wrapper

    for name in COUNTED:
        monkeypatch.setattr(torch.Tensor, name, counting(name, getattr(torch.Tensor, name)))
    for name in ("_foreach_norm", "stack", "cat"):
        monkeypatch.setattr(torch, name, counting(name, getattr(torch, name)))
    yield counts


@pytest.mark.parametrize("log_after_update", [True, False])
def test_updates_that_are_not_due_read_nothing_back(
    tmp_path: Path, count_calls: Counter[str], log_after_update: bool
) -> None:
    X, y = batch(16, 6, 2)
    every, steps = 4, 10

    def per_iteration(watching: bool) -> list[Counter[str]]:
        model = mlp((6, 8, 8, 2))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        mon = watch(model, tmp_path / "c.jsonl", every=every) if watching else None
        counts = []
        for _ in range(steps):
            count_calls.clear()
            loss = nn.functional.mse_loss(model(X), y)
            if mon is not None and not log_after_update:
                mon.log(loss=loss)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if mon is not None and log_after_update:
                mon.log(loss=loss)
            counts.append(Counter(count_calls))
        if mon is not None:
            mon.close()
        return counts

    bare = per_iteration(False)
    watched = per_iteration(True)
    for n, (b, w) in enumerate(zip(bare, watched, strict=True), start=1):
        extra = w - b
        due = n == 1 or n % every == 0
        if not due:
            # Every update's gradient norms for the per-update series (issue 18 item 4): one
            # norm kernel over all the gradients and one stack, on the device; nothing else.
            kept = Counter({"_foreach_norm": 1, "stack": 1})
            assert extra == kept, f"update {n} is not due, yet the bridge called {dict(extra)}"
        else:
            # One read-back of the figures; a loss logged after the update adds one.
            assert extra["tolist"] == (2 if log_after_update else 1), (n, dict(extra))
            assert extra["item"] == extra["cpu"] == extra["numpy"] == extra["__float__"] == 0
    # Updates 1, 4 and 8, and at close() the last one, 10.
    assert [r["step"] for r in snapshots(tmp_path / "c.jsonl")] == [1, 4, 8, 10]


def test_log_keeps_a_tensor_without_reading_it(tmp_path: Path, count_calls: Counter[str]) -> None:
    model = mlp((3, 4, 1))
    with watch(model, tmp_path / "k.jsonl", every=100) as mon:
        loss = model(torch.ones(2, 3)).sum()
        count_calls.clear()
        mon.log(loss=loss, accuracy=torch.tensor(0.5))
        assert not +count_calls, dict(count_calls)
        assert not mon._logged.values["loss"].requires_grad  # detached: the graph can be freed


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@needs_cuda
def test_on_cuda_updates_that_are_not_due_never_synchronise(tmp_path: Path) -> None:
    """CUDA's own detector: any synchronising call raises while the mode is "error"."""
    dev = torch.device("cuda")
    model = mlp((64, 128, 128, 10)).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    X, y = (t.to(dev) for t in batch(32, 64, 10))
    every = 5
    with watch(model, tmp_path / "cuda.jsonl", every=every) as mon:
        for n in range(1, 13):
            due = n == 1 or n % every == 0
            torch.cuda.set_sync_debug_mode(0 if due else "error")
            try:
                loss = nn.functional.mse_loss(model(X), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                mon.log(loss=loss)
            finally:
                torch.cuda.set_sync_debug_mode(0)
    snaps = snapshots(tmp_path / "cuda.jsonl")
    assert [s["step"] for s in snaps] == [1, 5, 10]
    assert all(s["loss"] is not None for s in snaps)


# -- AMP -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("usage", ["scaler.step", "unscale_ first", "fused", "optimizer.step"])
def test_grad_scaler_gradients_are_reported_unscaled(tmp_path: Path, usage: str) -> None:
    model = mlp((4, 8, 2))
    reference = copy.deepcopy(model)
    fused = usage == "fused"
    opt = torch.optim.SGD(model.parameters(), lr=0.1, fused=fused)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12)
    X, y = batch(16, 4, 2)
    with watch(model, tmp_path / "amp.jsonl", every=1, scaler=scaler) as mon:
        loss = nn.functional.mse_loss(model(X), y)
        scaler.scale(loss).backward()
        if usage == "unscale_ first":
            scaler.unscale_(opt)
        if usage == "optimizer.step":
            opt.step()  # past the scaler: the gradients are still scaled
        else:
            scaler.step(opt)
            scaler.update()
        mon.log(loss=loss)
    assert mon.steps == 1
    nn.functional.mse_loss(reference(X), y).backward()
    (snap,) = snapshots(tmp_path / "amp.jsonl")
    assert [x["grad_norm"] for x in snap["layers"]] == pytest.approx(
        grad_norms(reference), rel=1e-5
    )
    assert "step" not in vars(scaler)  # close() put the scaler's own method back


def test_a_step_the_scaler_skips_is_recorded_as_nonfinite(
    tmp_path: Path, validator: Callable[[dict[str, Any]], None]
) -> None:
    model = mlp((4, 8, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12)
    X, y = batch(16, 4, 2)
    path = tmp_path / "skip.jsonl"
    with watch(model, path, every=1, scaler=scaler) as mon:
        for i in range(3):
            loss = nn.functional.mse_loss(model(X), y)
            opt.zero_grad()
            scaler.scale(loss).backward()
            if i == 1:
                model[0].weight.grad[0, 0] = math.inf  # an overflow in layer 0
                w_before = model[0].weight.detach().clone()
            scaler.step(opt)
            scaler.update()
            if i == 1:
                assert torch.equal(model[0].weight, w_before)  # the scaler skipped the step
            mon.log(loss=loss)
    assert mon.steps == 3
    records = lines(path)
    for record in records:
        validator(record)
    snaps = snapshots(path)
    assert [s["step"] for s in snaps] == [1, 2, 3]
    skipped = snaps[1]
    assert skipped["state"] == "running"
    assert skipped["layers"][0]["status"] == "nonfinite"
    assert skipped["layers"][0]["grad_norm"] is None
    assert [x["update_ratio"] for x in skipped["layers"]] == [0.0, 0.0]
    assert all(x["status"] != "nonfinite" for s in (snaps[0], snaps[2]) for x in s["layers"])


@needs_cuda
def test_on_cuda_autocast_gradients_are_reported_unscaled(tmp_path: Path) -> None:
    dev = torch.device("cuda")
    model = mlp((64, 128, 10)).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cuda")
    X, y = (t.to(dev) for t in batch(32, 64, 10))
    with watch(model, tmp_path / "amp.jsonl", every=1, scaler=scaler) as mon:
        with torch.autocast("cuda", dtype=torch.float16):
            loss = nn.functional.mse_loss(model(X).float(), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        expected = grad_norms(model)  # scaler.step unscaled them in place
        scaler.update()
        mon.log(loss=loss)
    (snap,) = snapshots(tmp_path / "amp.jsonl")
    assert [x["grad_norm"] for x in snap["layers"]] == pytest.approx(expected, rel=1e-5)
    assert snap["layers"][0]["health_label"] == "dead"


# -- DistributedDataParallel ---------------------------------------------------------------------


def _ddp_worker(
    rank: int, world: int, init_file: str, path: str, X: Any, y: Any, state: Any
) -> None:
    import gc

    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        _ddp_train(rank, world, path, X, y, state)
        gc.collect()  # the DDP wrapper gone before its process group (examples/torch_ddp.py)
    finally:
        dist.destroy_process_group()


def _ddp_train(rank: int, world: int, path: str, X: Any, y: Any, state: Any) -> None:
    model = _ddp_model()
    model.load_state_dict(state)
    ddp = nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
    share = X.shape[0] // world
    mine = slice(rank * share, (rank + 1) * share)
    with watch(ddp, path, every=1) as mon:
        for _ in range(2):
            loss = nn.functional.mse_loss(ddp(X[mine]), y[mine])
            opt.zero_grad()
            loss.backward()
            opt.step()
            mon.log(loss=loss)


def _ddp_model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(5, 8, dtype=torch.float64), nn.Tanh(), nn.Linear(8, 3, dtype=torch.float64)
    )


def test_under_ddp_rank_zero_writes_the_reduced_gradients(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    X, y = (t.double() for t in batch(32, 5, 3))
    state = _ddp_model().state_dict()
    path = tmp_path / "ddp.jsonl"
    mp.spawn(
        _ddp_worker,
        args=(2, str(tmp_path / "store"), str(path), X, y, state),
        nprocs=2,
        join=True,
    )
    # One process, the whole batch.
    model = _ddp_model()
    model.load_state_dict(state)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with watch(model, tmp_path / "one.jsonl", every=1) as mon:
        train(model, opt, 2, mon, X, y)
    records = lines(path)
    assert sum(1 for r in records if "format" in r) == 1  # one header: only rank 0 wrote
    assert records[-1] == {"event": "end", "state": "finished"}
    two, one = snapshots(path), snapshots(tmp_path / "one.jsonl")
    assert [s["step"] for s in two] == [1, 2]
    for a, b in zip(two, one, strict=True):
        for la, lb in zip(a["layers"], b["layers"], strict=True):
            for key in ("grad_norm", "bias_grad_norm", "weight_norm", "update_ratio"):
                assert la[key] == pytest.approx(lb[key], abs=1e-5), key


# -- the examples and the benchmark ----------------------------------------------------------------


def test_the_vanishing_example_shows_the_first_layers_starving(
    tmp_path: Path, validator: Callable[[dict[str, Any]], None]
) -> None:
    path = tmp_path / "torch_vanishing.jsonl"
    proc = subprocess.run(
        [sys.executable, "examples/torch_vanishing.py", str(path), "--steps", "200"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = lines(path)
    for record in records:
        validator(record)
    last = records[-2]["layers"]
    assert [x["status"] for x in last[:3]] == ["vanishing"] * 3
    assert last[-1]["status"] == "healthy"
    assert last[-1]["grad_norm"] > 1000 * last[0]["grad_norm"]


def test_the_ddp_example_runs_under_torchrun(
    tmp_path: Path, validator: Callable[[dict[str, Any]], None]
) -> None:
    path = tmp_path / "ddp.jsonl"
    proc = subprocess.run(
        [
            sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
            "examples/torch_ddp.py", str(path), "--steps", "20", "--every", "10",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    # The ranks' own messages come first, torchrun's summary last: show both ends.
    assert proc.returncode == 0, proc.stderr[:4000] + "\n...\n" + proc.stderr[-1500:]
    records = lines(path)
    for record in records:
        validator(record)
    assert [r.get("step") for r in records[1:-1]] == [1, 10, 20]
    assert records[-1] == {"event": "end", "state": "finished"}
