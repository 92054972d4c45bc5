"""The PyTorch bridge on the cases that made it untrustworthy (issue 16): the gradient before
clipping, the lr each group used, a second optimiser, torch.compile, hand-written loops, values
that must not stop training, a second watch() on one path, thresholds, and how a run ends."""

from __future__ import annotations

import gc
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bpmon.config import Thresholds
from bpmon.errors import BpmonError

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from bpmon.torch import watch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BPMON = str(ROOT / "bpmon")


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def snapshots(path: Path) -> list[dict[str, Any]]:
    return [r for r in lines(path)[1:] if "event" not in r]


def mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 2))


def data(n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 6, generator=g) * 3, torch.randn(n, 2, generator=g) * 3


def weight_grad_norms(model: nn.Module) -> list[float]:
    return [float(m.weight.grad.norm()) for m in model if isinstance(m, nn.Linear)]


# -- clipping ------------------------------------------------------------------------------------


@pytest.mark.parametrize("as_generator", [True, False])
def test_the_norms_are_those_before_clip_grad_norm(tmp_path: Path, as_generator: bool) -> None:
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    X, y = data()
    pre: dict[int, list[float]] = {}
    totals: dict[int, float] = {}
    original = torch.nn.utils.clip_grad_norm_
    with watch(model, tmp_path / "c.jsonl", every=2) as mon:
        for n in range(1, 5):
            loss = F.mse_loss(model(X), y)
            opt.zero_grad()
            loss.backward()
            pre[n] = weight_grad_norms(model)
            params = model.parameters() if as_generator else list(model.parameters())
            totals[n] = float(torch.nn.utils.clip_grad_norm_(params, 0.05))
            # The clipping still happened (a generator is read once, by the wrapper).
            norms = [p.grad.norm() for p in model.parameters()]
            after = torch.linalg.vector_norm(torch.stack(norms))
            assert float(after) == pytest.approx(0.05, rel=1e-4)
            opt.step()
            mon.log(loss=loss)
    assert torch.nn.utils.clip_grad_norm_ is original  # put back when the monitor closed
    snaps = snapshots(tmp_path / "c.jsonl")
    assert [s["step"] for s in snaps] == [1, 2, 4]
    for s in snaps:
        n = s["step"]
        assert [x["grad_norm"] for x in s["layers"]] == pytest.approx(pre[n], rel=1e-5)
        assert totals[n] > 0.2  # well above max_norm: before the fix the rows added up to 0.05
        assert s["grad_norm_total"] == pytest.approx(totals[n], rel=1e-5)
        assert s["clip_max"] == pytest.approx(0.05)
        assert s["clip_factor"] == pytest.approx(0.05 / (totals[n] + 1e-6), rel=1e-5)
        assert s["clipped_share"] == 1.0


def test_clip_grad_value_is_recorded_with_the_gradient_before_it(tmp_path: Path) -> None:
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    X, y = data()
    with watch(model, tmp_path / "v.jsonl", every=1) as mon:
        loss = F.mse_loss(model(X), y)
        loss.backward()
        pre = weight_grad_norms(model)
        torch.nn.utils.clip_grad.clip_grad_value_(model.parameters(), 1e-3)
        opt.step()
        mon.log(loss=loss)
    (snap,) = snapshots(tmp_path / "v.jsonl")
    assert [x["grad_norm"] for x in snap["layers"]] == pytest.approx(pre, rel=1e-5)
    assert snap["clip_max"] == pytest.approx(1e-3)
    assert 0 < snap["clip_factor"] < 0.5 and snap["clipped_share"] == 1.0


def test_without_clipping_the_clip_fields_are_null(tmp_path: Path) -> None:
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    X, y = data()
    with watch(model, tmp_path / "n.jsonl", every=1) as mon:
        loss = F.mse_loss(model(X), y)
        loss.backward()
        pre = weight_grad_norms(model)
        opt.step()
        mon.log(loss=loss)
    (snap,) = snapshots(tmp_path / "n.jsonl")
    assert snap["clip_max"] is None and snap["clip_factor"] is None
    assert snap["clipped_share"] is None
    biases = [x["bias_grad_norm"] for x in snap["layers"]]
    expected = math.sqrt(sum(g * g for g in pre) + sum(b * b for b in biases))
    assert snap["grad_norm_total"] == pytest.approx(expected, rel=1e-5)


READS = ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__", "__index__")


@pytest.fixture
def bpmon_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Counts the calls, made from bpmon's own code, of the tensor methods that read a tensor
    back to the host. What it proves: no such call from bpmon between due updates; what it does
    not: that no kernel bpmon launches synchronises by itself (on CPU nothing does)."""
    counts: Counter[str] = Counter()

    def counting(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if sys._getframe(1).f_code.co_filename.startswith(BPMON):
                counts[name] += 1
            return original(*args, **kwargs)

        return wrapper

    for name in READS:
        monkeypatch.setattr(torch.Tensor, name, counting(name, getattr(torch.Tensor, name)))
    yield counts


def test_updates_that_are_not_due_read_nothing_back_under_clipping(
    tmp_path: Path, bpmon_reads: Counter[str]
) -> None:
    model = mlp()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 5))
    X, y = data()
    every = 4
    with watch(model, tmp_path / "s.jsonl", every=every) as mon:
        for n in range(1, 11):
            bpmon_reads.clear()
            loss = F.mse_loss(model(X), y)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            opt.step()
            sched.step()
            mon.log(loss=loss, val_loss=loss * 2)
            due = n == 1 or n % every == 0
            if not due and n != 2:  # update 2's iteration still writes update 1's line
                assert not +bpmon_reads, (n, dict(bpmon_reads))
    # 10, not due, is the last update: its line is written at the end (with mon.__exit__).
    assert [s["step"] for s in snapshots(tmp_path / "s.jsonl")] == [1, 4, 8, 10]


# -- learning rates and optimisers ----------------------------------------------------------------


def test_lrs_are_each_groups_before_the_step(tmp_path: Path) -> None:
    model = mlp()
    opt = torch.optim.SGD(
        [
            {"params": model[0].parameters(), "lr": 0.1},
            {"params": [*model[2].parameters(), *model[4].parameters()], "lr": 0.01},
        ]
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (s + 1))
    X, y = data()
    used: dict[int, list[float]] = {}
    with watch(model, tmp_path / "l.jsonl", every=2) as mon:
        for n in range(1, 5):
            loss = F.mse_loss(model(X), y)
            opt.zero_grad()
            loss.backward()
            used[n] = [g["lr"] for g in opt.param_groups]
            opt.step()
            sched.step()
            mon.log(loss=loss)
    for s in snapshots(tmp_path / "l.jsonl"):
        assert s["lrs"] == pytest.approx(used[s["step"]])
        assert s["lr"] == pytest.approx(used[s["step"]][0])


def test_a_second_optimiser_is_hooked_and_an_unstepped_row_is_unknown(tmp_path: Path) -> None:
    model = mlp()
    first = torch.optim.SGD(model[0].parameters(), lr=0.1)
    second = torch.optim.Adam(model[2].parameters(), lr=0.01)
    # model[4] gets gradients but no optimiser steps it: its update ratio is unknown, not 0.
    X, y = data()
    with watch(model, tmp_path / "o.jsonl", every=1) as mon:
        for _ in range(2):
            loss = F.mse_loss(model(X), y)
            model.zero_grad()
            loss.backward()
            before = [m.weight.detach().clone() for m in (model[0], model[2])]
            first.step()
            second.step()
            mon.log(loss=loss)
    assert mon.steps == 2
    last = snapshots(tmp_path / "o.jsonl")[-1]["layers"]
    for row, w0, m in zip(last[:2], before, (model[0], model[2]), strict=True):
        w1 = m.weight.detach()
        assert row["update_ratio"] == pytest.approx(float((w0 - w1).norm() / w1.norm()), rel=1e-5)
    assert last[2]["update_ratio"] is None


# -- torch.compile --------------------------------------------------------------------------------


def train_compiled(
    compiled: Callable[[torch.Tensor], torch.Tensor],
    opt: torch.optim.Optimizer,
    mon: Any,
    X: torch.Tensor,
    y: torch.Tensor,
) -> None:
    """Six updates of ``compiled``; after each, no torch function mode is left on the stack."""
    for _ in range(6):
        loss = F.mse_loss(compiled(X), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        mon.log(loss=loss)
        assert torch._C._len_torch_function_stack() == 0


def test_under_compile_a_missing_activation_says_why(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    compiled = torch.compile(model, backend="eager")
    X, y = data()
    with watch(compiled, tmp_path / "k.jsonl", every=2) as mon:
        train_compiled(compiled, opt, mon, X, y)
    for s in snapshots(tmp_path / "k.jsonl"):
        row = s["layers"][0]
        measured = row["health_label"] == "dead"
        assert measured or "torch.compile" in row["note"], (s["step"], row)


class CallsRelu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(6, 8), nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(x)))


def test_a_model_compiled_after_watch_trains_without_the_function_mode(tmp_path: Path) -> None:
    """nanoGPT's order: the model, watch(), then ``torch.compile``. While dynamo traces the
    forward the mode is left out (traced, it cost nanoGPT 8 recompiles): the activation called
    as a function is not measured, and no mode is left on torch's stack."""
    torch.manual_seed(0)
    model = CallsRelu()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    X, y = data()
    with watch(model, tmp_path / "c.jsonl", every=2) as mon:
        compiled = torch.compile(model, backend="eager")
        train_compiled(compiled, opt, mon, X, y)
    snaps = snapshots(tmp_path / "c.jsonl")
    assert [s["step"] for s in snaps] == [1, 2, 4, 6]
    for s in snaps:
        row = s["layers"][0]
        assert (row["activation"], row["health_label"]) == (None, ""), (s["step"], row)


# -- loops without an optimiser -------------------------------------------------------------------


def test_a_hand_written_loop_records_without_step(tmp_path: Path) -> None:
    """pytorch/examples regression/main.py: no optimiser, ``p.data.add_(-lr * p.grad)``."""
    torch.manual_seed(0)
    fc = nn.Linear(4, 1)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 4, generator=g), torch.randn(32, 1, generator=g)
    expected: dict[int, tuple[float, float]] = {}
    with watch(fc, tmp_path / "r.jsonl", every=5) as mon:
        for n in range(1, 11):
            fc.zero_grad()
            output = F.smooth_l1_loss(fc(x), y)
            output.item()
            output.backward()
            w0 = fc.weight.detach().clone()
            gn = float(fc.weight.grad.norm())
            for param in fc.parameters():
                param.data.add_(-0.1 * param.grad)
            w1 = fc.weight.detach()
            expected[n] = (gn, float((w0 - w1).norm() / w1.norm()))
    assert mon.steps == 10
    snaps = snapshots(tmp_path / "r.jsonl")
    assert [s["step"] for s in snaps] == [1, 5, 10]
    for s in snaps:
        (row,) = s["layers"]
        assert (row["grad_norm"], row["update_ratio"]) == pytest.approx(expected[s["step"]])


def test_gradient_accumulation_with_an_optimiser_counts_optimiser_steps(tmp_path: Path) -> None:
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    X, y = data()
    with watch(model, tmp_path / "a.jsonl", every=1) as mon:
        for _ in range(3):
            for half in (X[:8], X[8:]):
                F.mse_loss(model(half), y[: len(half)]).backward()
            opt.step()
            opt.zero_grad()
    assert mon.steps == 3
    assert [s["step"] for s in snapshots(tmp_path / "a.jsonl")] == [1, 2, 3]


# -- values that must not stop training -----------------------------------------------------------


def test_log_takes_numpy_and_records_the_unusable_as_null(tmp_path: Path) -> None:
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    X, y = data()
    with watch(model, tmp_path / "g.jsonl", every=1) as mon:
        loss = F.mse_loss(model(X), y)
        loss.backward()
        opt.step()
        with pytest.warns(RuntimeWarning) as caught:
            mon.log(
                loss=np.float32(0.5), accuracy=np.array(0.25), epoch=np.int64(2),
                test_accuracy=10**400, val_loss=np.float64(1.5), note="a string",
            )  # fmt: skip
            mon.log(test_accuracy=10**400)  # one warning per name
    assert len(caught) == 2
    (snap,) = snapshots(tmp_path / "g.jsonl")
    assert (snap["loss"], snap["accuracy"], snap["epoch"]) == (0.5, 0.25, 2)
    assert snap["test_accuracy"] is None
    assert snap["metrics"] == [["val_loss", 1.5], ["note", None]]


def test_watch_twice_on_one_path_closes_the_first(tmp_path: Path) -> None:
    from torch.optim import optimizer as optim_module

    hooks = len(optim_module._global_optimizer_pre_hooks)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    X, y = data()
    path = tmp_path / "twice.jsonl"
    first = watch(model, path, every=1)
    second = watch(model, path, every=1)  # a notebook cell run again
    assert first._closed
    for _ in range(2):
        loss = F.mse_loss(model(X), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        second.log(loss=loss)
    second.close()
    records = lines(path)
    assert [r.get("format") for r in records].count("bpmon-run") == 1
    assert [r.get("event") for r in records].count("end") == 1
    assert [r["step"] for r in records if "step" in r] == [1, 2]  # each update once
    assert len(optim_module._global_optimizer_pre_hooks) == hooks


@pytest.mark.parametrize("loop", ["optimiser", "hand-written", "nan_trace"])
def test_a_forgotten_monitor_lets_its_model_go_and_ends_its_file(tmp_path: Path, loop: str) -> None:
    """A notebook's ``del model, opt, mon``: nothing of bpmon's keeps the model (and its memory)
    alive, whichever hooks the loop left in place, and the file gets its end line as the
    monitor goes: ``finished``, whatever the process did before (a ``sys.exit(2)`` that the
    notebook caught is not this run's end)."""
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    X, y = data()
    path = tmp_path / "forgotten.jsonl"
    mon = watch(model, path, every=1, nan_trace=loop == "nan_trace")
    for _ in range(2):
        loss = F.mse_loss(model(X), y)
        opt.zero_grad()
        loss.backward()
        if loop == "hand-written":  # the backward passes are the updates
            with torch.no_grad():
                for p in model.parameters():
                    p -= 0.1 * p.grad
        else:
            opt.step()
        mon.log(loss=loss)
    with pytest.raises(SystemExit):
        sys.exit(2)
    gone = weakref.ref(model)
    del model, opt, mon, loss
    gc.collect()
    assert gone() is None, "the model outlived every reference its user held"
    assert lines(path)[-1] == {"event": "end", "state": "finished"}


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"explode_abs": math.inf}, "thresholds.explode_abs = inf"),
        ({"vanish_rel": 2.0}, "thresholds.vanish_rel = 2"),
        ({"vanish_abs": 1e3}, "thresholds.vanish_abs"),
    ],
)
def test_thresholds_go_through_the_presets_validation(
    tmp_path: Path, kwargs: dict[str, float], key: str
) -> None:
    with pytest.raises(BpmonError, match=key.replace(".", r"\.")):
        watch(mlp(), tmp_path / "t.jsonl", thresholds=Thresholds(**kwargs))
    assert not (tmp_path / "t.jsonl").exists()


# -- how a run ends --------------------------------------------------------------------------------

SCRIPT = """
import os, signal, sys, torch
from torch import nn
from bpmon.torch import watch
{before}
model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
mon = watch(model, sys.argv[1], every=1)
for _ in range(2):
    loss = model(torch.ones(2, 3)).pow(2).mean()
    opt.zero_grad(); loss.backward(); opt.step(); mon.log(loss=loss)
{ending}
"""


@pytest.mark.parametrize(
    ("before", "ending", "rc", "state"),
    [
        ("", "os.kill(os.getpid(), signal.SIGTERM)", -signal.SIGTERM, "interrupted"),
        (
            "signal.signal(signal.SIGTERM, lambda s, f: sys.exit(7))",
            "os.kill(os.getpid(), signal.SIGTERM)",
            7,
            "interrupted",
        ),
        ("", "sys.exit(3)", 3, "error"),
        ("", "sys.exit(0)", 0, "finished"),
        ("", "exit(3)", 3, "error"),
        ("", "quit('a message')", 1, "error"),
        ("", "exit()", 0, "finished"),
    ],
)
def test_the_end_line_says_how_the_process_ended(
    tmp_path: Path, before: str, ending: str, rc: int, state: str
) -> None:
    path = tmp_path / "end.jsonl"
    script = SCRIPT.format(before=before, ending=ending)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), str(path)], env=env, timeout=120
    )
    assert done.returncode == rc
    records = lines(path)
    assert records[-1] == {"event": "end", "state": state}
    assert [r["step"] for r in records if "step" in r] == [1, 2]
