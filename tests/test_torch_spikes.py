"""Every update's loss and gradient norm, and spikes with the layer that moved first (issue 18
items 4 and 5): the bridge's per-update series in the run file, the reader's loss curve from
them, the spike score, and a spike injected into one known layer of a small GPT."""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpmon.codec import to_record
from bpmon.curvepoints import (
    MAX_SERIES,
    envelope,
    points_of,
    points_of_raw,
    points_of_record,
)
from bpmon.diagnosis import Diagnosis
from bpmon.readback import decode_line
from bpmon.runmodel import Snapshot

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402 - after the skip: needs torch

from bpmon.errors import BpmonError  # noqa: E402
from bpmon.sources import RunFileSource  # noqa: E402
from bpmon.torch import watch  # noqa: E402
from bpmon.torch.spikes import Scorer, first_to_leave  # noqa: E402
from tests.torch_zoo import GPT  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """These models are tiny: at two intra-op threads on a machine shared with other jobs a
    step took 50x longer than at one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def records(path: Path) -> list[dict[str, Any]]:
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()[1:]]
    return [r for r in lines if "step" in r]


def train_gpt(
    path: Path,
    updates: int,
    every: int,
    *,
    inject: tuple[str, int] | None = None,
    log_after: bool = False,
    clip: float | None = 1.0,
) -> list[float]:
    """A small GPT (tests.torch_zoo) trained with AdamW; ``inject``: the parameter whose
    gradient a hook scales by 1000 on that one update. The losses, as floats."""
    torch.manual_seed(0)
    model = GPT()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1)
    data = torch.randint(0, 32, (updates, 4, 9), generator=g)
    losses = []
    state = {"update": 0}
    if inject is not None:
        name, at = inject
        param = dict(model.named_parameters())[name]
        param.register_hook(lambda grad: grad * 1000 if state["update"] == at else grad)
    with watch(model, path, every=every, optimizer=opt) as mon:
        for i in range(updates):
            state["update"] = i + 1
            x = data[i]
            logits = model(x[:, :-1])
            loss = nn.functional.cross_entropy(logits.reshape(-1, 32), x[:, 1:].reshape(-1))
            if not log_after:
                mon.log(loss=loss)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            if log_after:
                mon.log(loss=loss)
            losses.append(float(loss.detach()))
    return losses


@pytest.mark.parametrize("log_after", [False, True])
def test_every_update_has_its_loss_and_norm_in_the_file(tmp_path: Path, log_after: bool) -> None:
    path = tmp_path / "s.jsonl"
    losses = train_gpt(path, 23, 10, log_after=log_after)
    lines = records(path)
    # 23 was not due: the last update's line, written at the end.
    assert [r["step"] for r in lines] == [1, 10, 20, 23]
    steps = [r["update_start"] + i for r in lines for i in range(len(r["update_losses"]))]
    assert steps == list(range(1, 24))
    got = [x for r in lines for x in r["update_losses"]]
    assert got == pytest.approx(losses, rel=1e-6)
    norms = [x for r in lines for x in r["update_grad_norms"]]
    assert len(norms) == 23 and all(x is not None and x > 0 for x in norms)
    # An update's own global norm is the one its line reports, before clipping.
    for r in lines:
        assert r["update_grad_norms"][-1] == pytest.approx(r["grad_norm_total"], rel=1e-6)


def test_a_long_gap_between_lines_keeps_every_norm(tmp_path: Path) -> None:
    """Lines 150 updates apart: the series is reduced in chunks of 64 on the way."""
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    path = tmp_path / "g.jsonl"
    with watch(model, path, every=150) as mon:
        for _ in range(300):
            loss = model(torch.randn(4, 3)).pow(2).mean()
            mon.log(loss=loss)
            opt.zero_grad()
            loss.backward()
            opt.step()
    lines = records(path)
    assert [(r["step"], r["update_start"]) for r in lines] == [(1, 1), (150, 2), (300, 151)]
    norms = [x for r in lines for x in r["update_grad_norms"]]
    assert len(norms) == 300 and all(x is not None and x > 0 for x in norms)
    for r in lines:
        assert r["update_grad_norms"][-1] == pytest.approx(r["grad_norm_total"], rel=1e-6)


def test_the_reader_draws_every_update_and_keeps_a_spike(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    train_gpt(path, 40, 20)
    lines = path.read_text(encoding="utf-8").splitlines()
    # A loss of 50 at update 7, between two measured updates.
    first = json.loads(lines[2])
    assert first["update_start"] == 2
    first["update_losses"][5] = 50.0
    lines[2] = json.dumps(first, separators=(",", ":"))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    source = RunFileSource(str(path), "replay")
    source.open_now()
    source.start()
    try:
        deadline = time.monotonic() + 30
        while not source.latest().loss_steps and time.monotonic() < deadline:
            time.sleep(0.01)
        snap = source.latest()
    finally:
        source.stop()
    assert snap.loss_steps == tuple(range(1, 41))
    assert snap.loss_values[6] == 50.0


def test_a_spike_injected_into_one_layer_is_named(tmp_path: Path) -> None:
    path = tmp_path / "spike.jsonl"
    layer = "transformer.h.0.c_fc"
    train_gpt(path, 90, 10, inject=(layer + ".weight", 74))
    lines = records(path)
    steps = [r["step"] for r in lines]
    # Found at update 80's line; every update until K = 8 after it is measured in full.
    assert steps == [1, 10, 20, 30, 40, 50, 60, 70, 80, 81, 82, 90]
    spikes = [(r["step"], s) for r in lines for s in r.get("spikes", [])]
    assert len(spikes) == 1
    at, spike = spikes[0]
    assert at == 82  # the line whose series reaches 8 updates after it
    assert (spike["step"], spike["series"], spike["layer"]) == (74, "grad_norm", layer)
    assert spike["layer_step"] == 74 and spike["factor"] > 100
    assert spike["loss_followed"] in (True, False)
    assert spike["norms_start"] == 66 and len(spike["norms"]) == 9
    assert len(spike["norms"][0]) == len(lines[0]["layers"])
    # The finding, as a reader diagnoses the file, names the layer at once.
    diagnosis = Diagnosis()
    found = []
    for r in lines:
        line = decode_line(r)
        assert isinstance(line, Snapshot)
        found.append([f for f in diagnosis.add(line) if f.rule == "spike"])
    assert [bool(f) for f in found] == [s >= 82 for s in steps]
    finding = found[-1][0]
    assert finding.layers == (layer,)
    assert "update 74" in finding.evidence and layer in finding.evidence


def test_a_healthy_run_has_no_spike(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    train_gpt(path, 100, 10, clip=None)
    assert not [s for r in records(path) for s in r.get("spikes", [])]


def test_spike_options_are_checked_in_one_line(tmp_path: Path) -> None:
    model = nn.Linear(2, 2)
    bad: list[dict[str, Any]] = [
        {"spike_sigmas": 0},
        {"spike_sigmas": math.nan},
        {"spike_sigmas": "7"},
        {"spike_window": 1},
        {"spike_window": 2.5},
        {"spike_context": 0},
        {"spike_context": True},
        {"update_norms": "yes"},
    ]
    for options in bad:
        with pytest.raises(BpmonError, match=r"^watch: (spike_\w+|update_norms) = .*: expected"):
            watch(model, tmp_path / "x.jsonl", **options)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_each_updates_norm_is_its_gradients_norm_due_or_not(
    tmp_path: Path, dtype: torch.dtype
) -> None:
    """Every update's value, due or not, is the global norm of the gradients the optimiser
    stepped with (against float64 here); a float32 norm past float32's range for its square
    (about 1.8e19, where torch's own norm overflows) is null, not a number nobody measured."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(40, 30), nn.Tanh(), nn.Linear(30, 5)).to(dtype)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    expected: list[float | None] = []
    path = tmp_path / "n.jsonl"
    with watch(model, path, every=7, optimizer=opt) as mon:
        for i in range(21):
            scale = 1e10 if i == 10 else 1.0  # update 11, not due: a huge but finite norm
            loss = (model(torch.randn(16, 40, dtype=dtype)) * scale).pow(2).mean()
            mon.log(loss=loss)
            opt.zero_grad()
            loss.backward()
            grads = [p.grad.reshape(-1) for p in model.parameters()]
            norm = float(torch.linalg.vector_norm(torch.cat(grads).double()))
            huge = dtype == torch.float32 and norm > 1.8e19 and (i + 1) % 7 != 0
            expected.append(None if huge or not math.isfinite(norm) else norm)
            opt.param_groups[0]["lr"] = 0.0 if i == 10 else 1e-3  # no NaN after the huge one
            opt.step()
    assert expected[10] is None if dtype == torch.float32 else expected[10] > 1e19
    got = [x for r in records(path) for x in r["update_grad_norms"]]
    assert len(got) == 21
    assert [x is None for x in got] == [x is None for x in expected]
    assert [x for x in got if x is not None] == pytest.approx(
        [x for x in expected if x is not None], rel=1e-5
    )


def test_without_update_norms_the_loss_series_stays(tmp_path: Path) -> None:
    model = nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    path = tmp_path / "n.jsonl"
    with watch(model, path, every=5, update_norms=False) as mon:
        for i in range(12):
            loss = model(torch.ones(2, 3) * i).pow(2).mean()
            mon.log(loss=loss)
            opt.zero_grad()
            loss.backward()
            opt.step()
    lines = records(path)
    # Update 12, the last, was not due: without its norms it gets no line of its own.
    assert [r["step"] for r in lines] == [1, 5, 10]
    assert [x for r in lines for x in r["update_grad_norms"]] == [None] * 10
    assert None not in [x for r in lines for x in r["update_losses"]]
    # The due updates' own rows are measured as ever.
    assert all(r["layers"][0]["grad_norm"] is not None for r in lines)


# -- the score --------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    base=st.floats(0.01, 1e4),
    # Within 1%: the standard deviation is at least 1% of the mean, so no such point is 3
    # of them above the mean even after a flat stretch (with 5%, 59 equal points and then
    # a 3% rise is, rightly, a spike at sigmas=3: hypothesis found it).
    noise=st.lists(st.floats(-0.01, 0.01), min_size=60, max_size=200),
    at=st.integers(30, 59),
    sigmas=st.floats(3, 10),
)
def test_a_point_far_above_the_rolling_mean_is_a_spike(
    base: float, noise: list[float], at: int, sigmas: float
) -> None:
    """A noisy flat series never spikes; one point ``sigmas + 1`` standard deviations (and
    10% or more) above the mean of those before it does, at its own update."""
    values = [base * (1 + n) for n in noise]
    before = values[:at]
    mean = sum(before) / len(before)
    sd = math.sqrt(sum((v - mean) ** 2 for v in before) / len(before))
    values[at] = mean + max((sigmas + 1) * max(sd, 0.01 * mean), 0.1 * mean)
    scorer = Scorer(sigmas=sigmas, window=1000, context=4)
    opened = [s.step for i, v in enumerate(values) if (s := scorer.feed(i + 1, math.nan, v))]
    assert opened == [at + 1]


@settings(max_examples=60, deadline=None)
@given(
    base=st.floats(0.01, 1e4),
    noise=st.floats(0.1, 0.3),
    factor=st.floats(1.03, 1.15),
    seed=st.integers(0, 2**16),
)
def test_a_climb_is_not_a_spike(base: float, noise: float, factor: float, seed: int) -> None:
    """A network leaving its first plateau (the calibration set's ``cnn F.relu healthy``): the
    gradient norm climbs by a few percent an update for 30 updates, up to tens of times its
    start, as noisy as the stretch before it and each step smaller than that noise. No point
    is a sudden rise over the one before it, so none is a spike. Scored against the rolling
    mean alone, which lags far behind such a climb, about one climb in six had one."""
    rng = random.Random(seed)
    values = [base * (1 + rng.uniform(-noise, noise)) for _ in range(40)]
    values += [base * factor**k * (1 + rng.uniform(-noise, noise)) for k in range(1, 31)]
    scorer = Scorer(sigmas=7.0, window=1000, context=4)
    assert [s.step for i, v in enumerate(values) if (s := scorer.feed(i + 1, math.nan, v))] == []


def test_the_row_that_left_its_range_first_is_named() -> None:
    rows = [[1.0 + 0.01 * (k % 3), 2.0, 3.0] for k in range(30)]
    rows[26][2] = 30.0  # row 2 leaves at update 27 (start 1)
    rows[28][0] = 500.0  # row 0 later, by more
    assert first_to_leave(rows, 1, 29, 8, 7.0) == (2, 27, pytest.approx(10.0))
    assert first_to_leave(rows[:3], 1, 3, 8, 7.0) is None  # no range before the K


# -- the reader's points --------------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=60, deadline=None)
@given(
    step=st.integers(1, 10**6),
    losses=st.lists(st.one_of(finite, st.just(math.nan)), min_size=0, max_size=30),
)
def test_the_fast_scan_reads_the_series_as_the_decoder_does(step: int, losses: list[float]) -> None:
    start = step - len(losses) + 1 if losses and step - len(losses) + 1 >= 0 else None
    snap = Snapshot(
        step=step,
        loss=losses[-1] if losses else 1.0,
        update_start=start,
        update_losses=tuple(losses) if start is not None else (),
    )
    record = to_record(snap)
    raw = json.dumps(record, separators=(",", ":")).encode() + b"\n"
    decoded = decode_line(json.loads(raw))
    assert isinstance(decoded, Snapshot)
    want = points_of(decoded.step, decoded.loss, decoded.update_start, decoded.update_losses)
    fast = points_of_raw(raw, decoded.step, decoded.loss)
    slow = points_of_record(json.loads(raw), decoded.step, decoded.loss)
    for got in (fast, slow):
        assert got is not None
        assert [x for x, _ in got] == [x for x, _ in want]
        assert [repr(y) for _, y in got] == [repr(y) for _, y in want]


def test_a_series_that_does_not_fit_its_line_is_one_point() -> None:
    assert points_of(10, 2.0, 5, (1.0, 2.0)) == [(10, 2.0)]  # ends at 6, not 10
    assert points_of(10, 2.0, None, (1.0,)) == [(10, 2.0)]
    long = (1.0,) * (MAX_SERIES + 1)
    assert points_of(MAX_SERIES + 1, 1.0, 1, long) == [(MAX_SERIES + 1, 1.0)]


@settings(max_examples=100, deadline=None)
@given(tail=st.binary(max_size=60))
def test_a_hostile_series_never_raises(tail: bytes) -> None:
    raw = b'{"step":5,"loss":1.0,"update_start":' + tail + b"}\n"
    got = points_of_raw(raw, 5, 1.0)
    assert got is None or all(isinstance(x, int) for x, _ in got)


@settings(max_examples=40, deadline=None)
@given(
    ys=st.lists(st.floats(-1e6, 1e6), min_size=0, max_size=400),
    spike=st.integers(0, 399),
    points=st.integers(4, 64),
)
def test_thinning_keeps_the_highest_point(ys: list[float], spike: int, points: int) -> None:
    xs = list(range(len(ys)))
    if ys:
        ys[spike % len(ys)] = 1e300
    tx, ty = envelope(xs, ys, points)
    assert len(tx) <= points or tx == xs
    assert tx == sorted(tx) and len(set(tx)) == len(tx)
    if ys:
        assert 1e300 in ty and tx[0] == 0 and tx[-1] == len(ys) - 1
