"""bpmon.hf: the Hugging Face Trainer callback writes the run file a plain loop with the bridge
writes, once per optimiser update across gradient accumulation, with the Trainer's logged
numbers.

A tiny GPT-2 built from a config (2 layers, 32 wide, random init, nothing downloaded) learns a
small text tokenised here by bytes: 60 updates of 2 accumulated micro-batches, clipping at 1.0,
evaluated every 30 updates. The same model, data order and optimiser trained by a plain loop
watched by :func:`bpmon.torch.watch` is the reference.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers", reason="bpmon[hf] is not installed")
pytest.importorskip("accelerate", reason="bpmon[hf] is not installed")

from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments  # noqa: E402

from bpmon.hf import BpmonCallback  # noqa: E402
from bpmon.torch import watch  # noqa: E402
from bpmon.torch.spikes import CONTEXT  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "bpmon" / "schema" / "run-v2.schema.json"
UPDATES, ACCUMULATE, BATCH, SEQ, EVERY, CLIP, LR = 60, 2, 4, 16, 10, 1.0, 3e-3

TEXT = (
    "Backpropagation sends the error of the output back through the layers; each weight "
    "moves against its gradient, scaled by the learning rate. A gradient that vanishes "
    "leaves the early layers still; one that explodes throws them far. "
) * 8


def tokens() -> torch.Tensor:
    """The text as bytes, cut into sequences of SEQ tokens (vocabulary: 256 byte values)."""
    ids = torch.tensor(list(TEXT.encode("utf-8")), dtype=torch.long)
    n = len(ids) // SEQ
    return ids[: n * SEQ].reshape(n, SEQ)


def gpt2() -> GPT2LMHeadModel:
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=256,
        n_positions=SEQ,
        n_embd=32,
        n_layer=2,
        n_head=2,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    model = GPT2LMHeadModel(config)
    # Built from a config, the model does not name its loss; the Trainer then counts the label
    # tokens before the causal shift (128, not 120, per accumulated batch here) and scales the
    # loss by 15/16. Named, it counts what the loss averages over: the plain loop's mean.
    model.loss_type = "ForCausalLM"
    return model


class Rows(torch.utils.data.Dataset):  # type: ignore[misc]
    def __init__(self, ids: torch.Tensor) -> None:
        self.ids = ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def micro_batches(ids: torch.Tensor) -> list[torch.Tensor]:
    """The training batches in the order both runs see them: sequential, wrapping around."""
    need = UPDATES * ACCUMULATE
    order = [i % len(ids) for i in range(need * BATCH)]
    return [ids[order[k * BATCH : (k + 1) * BATCH]] for k in range(need)]


class SequentialTrainer(Trainer):  # type: ignore[misc]
    """The Trainer with its data in order, so that the plain loop can see the same batches."""

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        return torch.utils.data.SequentialSampler(train_dataset or self.train_dataset)


def run_trainer(tmp: Path, path: Path) -> dict[str, Any]:
    ids = tokens()
    train_ids, eval_ids = ids, ids[:8]
    # Enough copies of the data for UPDATES updates in one epoch, in the order micro_batches uses.
    reps = math.ceil(UPDATES * ACCUMULATE * BATCH / len(train_ids))
    train = Rows(train_ids.repeat(reps, 1)[: UPDATES * ACCUMULATE * BATCH])
    args = TrainingArguments(
        output_dir=str(tmp / "out"),
        per_device_train_batch_size=BATCH,
        per_device_eval_batch_size=BATCH,
        gradient_accumulation_steps=ACCUMULATE,
        max_steps=UPDATES,
        max_grad_norm=CLIP,
        learning_rate=LR,
        lr_scheduler_type="constant",
        weight_decay=0.0,
        logging_steps=EVERY,
        eval_strategy="steps",
        eval_steps=30,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    trainer = SequentialTrainer(
        model=gpt2(),
        args=args,
        train_dataset=train,
        eval_dataset=Rows(eval_ids),
        callbacks=[BpmonCallback(path, every=EVERY)],
    )
    trainer.train()
    return {"logs": trainer.state.log_history}


def run_plain(path: Path) -> tuple[list[list[float]], list[float]]:
    """The same training as a plain loop watched by the bridge. Returns, for each due update,
    each watched layer's weight-gradient norm measured by hand before clipping, and the total
    norm that clipping scaled down to CLIP."""
    model = gpt2()
    model.train()
    # The Trainer's default optimiser on CPU (optim="adamw_torch_fused"): the foreach
    # implementation rounds differently, enough to part after 30 updates of this tiny model.
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0, fused=True)
    mon = watch(model, path, every=EVERY, optimizer=opt)
    # A tied row ("transformer.wte=lm_head") is named by both owners of its one weight.
    layers = [model.get_submodule(name.split("=")[0]) for name in mon.layer_names]
    before_clip, totals = [], []
    batches = micro_batches(tokens())
    for n in range(1, UPDATES + 1):
        for ids in batches[(n - 1) * ACCUMULATE : n * ACCUMULATE]:
            out = model(input_ids=ids, labels=ids)
            (out.loss / ACCUMULATE).backward()
        if n == 1 or n % EVERY == 0:
            before_clip.append([float(torch.linalg.vector_norm(m.weight.grad)) for m in layers])
        total = torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        if n == 1 or n % EVERY == 0:
            totals.append(float(total))
        opt.step()
        mon.log(loss=out.loss)
        opt.zero_grad()
    mon.close()
    return before_clip, totals


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("hf")
    # One thread: on a shared 2-core machine torch's second thread made an update 25x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        trainer = run_trainer(tmp, tmp / "trainer.jsonl")
        before_clip, totals = run_plain(tmp / "plain.jsonl")
    finally:
        torch.set_num_threads(threads)
    read = {
        key: [json.loads(x) for x in (tmp / f"{key}.jsonl").read_text("utf-8").splitlines()]
        for key in ("trainer", "plain")
    }
    return {**read, "logs": trainer["logs"], "before_clip": before_clip, "totals": totals}


def snaps(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records[1:] if "event" not in r]


def due(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The lines of due updates (1 and every EVERY-th), without a spike's burst after it."""
    return [r for r in snaps(records) if r["step"] == 1 or r["step"] % EVERY == 0]


@pytest.fixture(scope="module")
def validator() -> Callable[[dict[str, Any]], None]:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema).validate  # type: ignore[no-any-return]


def test_the_file_is_valid_with_one_line_per_due_update(
    runs: dict[str, Any], validator: Callable[[dict[str, Any]], None]
) -> None:
    records = runs["trainer"]
    for record in records:
        validator(record)
    assert records[0]["source"] == "torch" and records[0]["name"] == "trainer"
    assert records[-1] == {"event": "end", "state": "finished"}
    # Once per optimiser update, not per micro-batch: 60 updates, due at 1, 10, ..., 60; and
    # after a spike, every update until CONTEXT after it (bpmon.torch.spikes).
    assert [s["step"] for s in due(records)] == [1, 10, 20, 30, 40, 50, 60]
    bursts = {
        step
        for s in snaps(records)
        for spike in s.get("spikes", ())
        for step in range(spike["step"] + 1, spike["step"] + CONTEXT + 1)
    }
    extra = {s["step"] for s in snaps(records)} - {s["step"] for s in due(records)}
    assert extra <= bursts, (sorted(extra), sorted(bursts))
    names = [layer["name"] for layer in records[0]["layers"]]
    # lm_head shares its weight with the embedding: one row, named by both owners.
    assert "transformer.h.1.mlp.c_fc" in names and "transformer.wte=lm_head" in names


def test_the_norms_equal_a_plain_loop_with_the_bridge(runs: dict[str, Any]) -> None:
    got, want = snaps(runs["trainer"]), snaps(runs["plain"])
    assert [s["step"] for s in got] == [s["step"] for s in want]
    for g, w in zip(got, want, strict=True):
        for a, b in zip(g["layers"], w["layers"], strict=True):
            assert a["name"] == b["name"]
            for key in ("grad_norm", "bias_grad_norm", "weight_norm", "update_ratio"):
                if b[key] is None:
                    assert a[key] is None
                    continue
                assert math.isclose(a[key], b[key], rel_tol=1e-5, abs_tol=1e-8), (
                    g["step"],
                    a["name"],
                    key,
                    a[key],
                    b[key],
                )


def test_the_training_loss_is_the_trainers_logged_loss(runs: dict[str, Any]) -> None:
    logged = {e["step"]: e["loss"] for e in runs["logs"] if "loss" in e}
    rows = {s["step"]: s["loss"] for s in snaps(runs["trainer"])}
    # The Trainer logs at updates 10, 20, ... (after the update): each due line carries it.
    for step in (10, 20, 30, 40, 50, 60):
        assert rows[step] == pytest.approx(logged[step], rel=1e-6), step
    assert all(s["lr"] == pytest.approx(LR) for s in snaps(runs["trainer"]))


def _metric(record: dict[str, Any], name: str) -> float | None:
    """A named metric of a line, whether the codec writes them as an object or as pairs."""
    metrics = record.get("metrics")
    if isinstance(metrics, dict):
        value = metrics.get(name)
    elif isinstance(metrics, list):
        value = next((v for k, v in metrics if k == name), None)
    else:
        value = None
    return value if isinstance(value, int | float) else None


def test_the_eval_loss_is_in_the_file(runs: dict[str, Any]) -> None:
    evals = {e["step"]: e["eval_loss"] for e in runs["logs"] if "eval_loss" in e}
    assert sorted(evals) == [30, 60]
    rows = {s["step"]: s for s in snaps(runs["trainer"])}
    for step, value in evals.items():
        assert _metric(rows[step], "eval_loss") == pytest.approx(value, rel=1e-6)


def test_clipping_was_in_effect(runs: dict[str, Any]) -> None:
    """Without it the next test could not tell a norm before clipping from one after."""
    assert sum(total > 1.1 * CLIP for total in runs["totals"]) >= 2, runs["totals"]


def test_the_norms_are_before_the_trainers_clipping(runs: dict[str, Any]) -> None:
    for snap, row in zip(due(runs["trainer"]), runs["before_clip"], strict=True):
        got = [layer["grad_norm"] for layer in snap["layers"]]
        assert got == pytest.approx(row, rel=1e-5), snap["step"]


def test_the_rows_cover_every_trainable_parameter(runs: dict[str, Any]) -> None:
    trainable = sum(p.numel() for p in gpt2().parameters() if p.requires_grad)  # tied once
    assert sum(layer.get("params", 0) for layer in runs["trainer"][0]["layers"]) == trainable


def test_one_callback_watches_one_train_and_refuses_a_second(tmp_path: Path) -> None:
    """A second train() would truncate the first run's file: refused in one line, file kept."""
    from bpmon.errors import BpmonError

    model = torch.nn.Sequential(torch.nn.Linear(3, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    callback = BpmonCallback(tmp_path / "x.jsonl", every=1)
    callback.on_train_begin(None, None, None, model=model, optimizer=opt)
    callback.on_train_end(None, None, None)
    kept = (tmp_path / "x.jsonl").read_text("utf-8")
    with pytest.raises(BpmonError, match="has watched a train\\(\\) already"):
        callback.on_train_begin(None, None, None, model=model, optimizer=opt)
    assert (tmp_path / "x.jsonl").read_text("utf-8") == kept
    with pytest.raises(BpmonError, match="every = 0: expected an integer >= 1"):
        BpmonCallback(tmp_path / "y.jsonl", every=0)
