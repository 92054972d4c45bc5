"""bpmon.lightning: the Lightning callback writes the run file a plain loop with the bridge
writes (accumulation, clipping, bf16 precision), with the logged numbers, and under DDP only
rank 0 writes. The model and data are in tests/_lightning_case.py."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lightning", reason="bpmon[lightning] is not installed")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _lightning_case as case  # noqa: E402

from bpmon.lightning import BpmonCallback  # noqa: E402
from bpmon.torch import watch  # noqa: E402

HERE = Path(__file__).resolve().parent
STEPS, ACCUMULATE, EVERY, CLIP = 12, 2, 3, 0.5


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """On a shared 2-core machine torch's second thread makes small steps many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def rows(path: Path) -> list[dict[str, Any]]:
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    assert lines[0]["source"] == "torch" and lines[-1].get("event") == "end", path
    return [r for r in lines[1:] if "event" not in r]


def fit(path: Path, precision: str = "32-true") -> None:
    callback = BpmonCallback(path, every=EVERY)
    trainer = case.trainer(
        max_steps=STEPS,
        accumulate_grad_batches=ACCUMULATE,
        gradient_clip_val=CLIP,
        precision=precision,
        val_check_interval=2 * ACCUMULATE * EVERY,  # in batches: after updates 6 and 12
        num_sanity_val_steps=2,
        callbacks=[callback],
    )
    trainer.fit(case.Regressor(), case.loader(), case.loader())
    assert callback.monitor is not None


def plain(path: Path, precision: str = "32-true") -> tuple[list[list[float]], list[float]]:
    """The same training by hand. Returns, per due update, each layer's weight-gradient norm
    before clipping and the total norm clipping scaled to CLIP; the loss of the update's last
    batch is logged after the update, as the callback does."""
    model = case.Regressor()
    opt = model.configure_optimizers()
    mon = watch(model, path, every=EVERY, optimizer=opt)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    batches = iter(case.loader())
    before, totals = [], []
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16-mixed")
    for n in range(1, STEPS + 1):
        for _ in range(ACCUMULATE):
            x, y = next(batches)
            with autocast:
                loss = torch.nn.functional.mse_loss(model(x), y)
            (loss / ACCUMULATE).backward()
        due = n == 1 or n % EVERY == 0
        if due:
            before.append([float(torch.linalg.vector_norm(m.weight.grad)) for m in linears])
        total = torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        if due:
            totals.append(float(total))
        opt.step()
        opt.zero_grad()
        mon.log(loss=loss)
    mon.close()
    return before, totals


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("lightning")
    fit(tmp / "fit.jsonl")
    before, totals = plain(tmp / "plain.jsonl")
    return {
        "fit": rows(tmp / "fit.jsonl"),
        "plain": rows(tmp / "plain.jsonl"),
        "before": before,
        "totals": totals,
    }


def same_norms(got: list[dict[str, Any]], want: list[dict[str, Any]], rel: float) -> None:
    assert [s["step"] for s in got] == [s["step"] for s in want]
    for g, w in zip(got, want, strict=True):
        for a, b in zip(g["layers"], w["layers"], strict=True):
            assert a["name"] == b["name"]
            for key in ("grad_norm", "bias_grad_norm", "weight_norm", "update_ratio"):
                assert math.isclose(a[key], b[key], rel_tol=rel, abs_tol=1e-8), (
                    g["step"],
                    a["name"],
                    key,
                    a[key],
                    b[key],
                )


def test_one_line_per_optimiser_update_equal_to_a_plain_loop(runs: dict[str, Any]) -> None:
    # 12 updates of 2 batches each: due at 1, 3, 6, 9, 12 (not per batch).
    assert [s["step"] for s in runs["fit"]] == [1, 3, 6, 9, 12]
    same_norms(runs["fit"], runs["plain"], rel=1e-5)
    # The training step's loss, the last batch of each due update.
    for g, w in zip(runs["fit"], runs["plain"], strict=True):
        assert g["loss"] == pytest.approx(w["loss"], rel=1e-6)


def test_clipping_was_in_effect(runs: dict[str, Any]) -> None:
    """Without it the next test could not tell a norm before clipping from one after."""
    assert sum(total > 1.1 * CLIP for total in runs["totals"]) >= 2, runs["totals"]


def test_the_norms_are_before_lightnings_clipping(runs: dict[str, Any]) -> None:
    for snap, row in zip(runs["fit"], runs["before"], strict=True):
        got = [layer["grad_norm"] for layer in snap["layers"]]
        assert got == pytest.approx(row, rel=1e-5), snap["step"]


def test_the_logged_metrics_are_in_the_file(runs: dict[str, Any]) -> None:
    def metric(record: dict[str, Any], name: str) -> Any:
        metrics = record.get("metrics")
        if isinstance(metrics, list):
            return next((v for k, v in metrics if k == name), None)
        return metrics.get(name) if isinstance(metrics, dict) else None

    assert all(metric(s, "train_loss") is not None for s in runs["fit"])
    assert metric(runs["fit"][-1], "val_loss") is not None


def test_bf16_mixed_precision_equals_the_same_plain_loop(tmp_path: Path) -> None:
    fit(tmp_path / "fit.jsonl", precision="bf16-mixed")
    plain(tmp_path / "plain.jsonl", precision="bf16-mixed")
    got, want = rows(tmp_path / "fit.jsonl"), rows(tmp_path / "plain.jsonl")
    assert all(math.isfinite(layer["grad_norm"]) for s in got for layer in s["layers"])
    same_norms(got, want, rel=1e-5)


def test_under_ddp_only_rank_0_writes(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    proc = subprocess.run(
        [sys.executable, str(HERE / "_lightning_case.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = {p.name: json.loads(p.read_text()) for p in tmp_path.glob("rank-*.json")}
    assert ranks == {
        "rank-0.json": {"rank": 0, "active": True},
        "rank-1.json": {"rank": 1, "active": False},
    }
    # One header and updates 1, 2, 4, 6 of the 6: rank 1 neither truncated nor interleaved.
    lines = [json.loads(x) for x in (tmp_path / "run.jsonl").read_text().splitlines()]
    assert sum("format" in line for line in lines) == 1
    assert [s["step"] for s in rows(tmp_path / "run.jsonl")] == [1, 2, 4, 6]
