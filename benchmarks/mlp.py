"""A 64-128-128-10 MLP in float32: sigmoid hidden layers, softmax + cross-entropy, full batches of
1,024 samples, SGD. Here the arithmetic dominates (a step is ~35 MFLOP of matrix products), so
this measures how well the engine feeds BLAS and how few passes it makes over its buffers.

Three contenders on the same data and the same initial weights:

- ``bpmon-engine``: ``Network.forward_backward`` + ``optimizer.step()`` in a plain loop;
- ``bpmon-trainer``: the same network through :class:`~bpmon.trainer.Trainer` (full batch, with
  its loss checks and a telemetry snapshot every 0.1 s);
- ``torch``: ``nn.Sequential`` + ``CrossEntropyLoss`` + ``optim.SGD``, at PyTorch's default
  thread count, which on this machine equals NumPy's BLAS thread count (both use every core;
  recorded in the JSON).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from benchmarks import torchnet
from benchmarks.harness import Figure, Settings, comparison, interleave, skipped_comparison
from bpmon.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from bpmon.data import Dataset
from bpmon.engine.optimizers import make_optimizer
from bpmon.launch import live_trainer
from bpmon.trainer import Run, Trainer

SIZES = (64, 128, 128, 10)
BATCH = 1024
LR = 0.1
FOREVER = 10**12


def mlp_config() -> RunConfig:
    return RunConfig(
        data=DataConfig(name="blobs", classes=SIZES[-1]),  # not loaded: the data is passed in
        model=ModelConfig(
            hidden=SIZES[1:-1],
            activation="sigmoid",
            output="softmax",
            loss="cross_entropy",
            init="xavier",
            dtype="float32",
        ),
        train=TrainConfig(optimizer="sgd", lr=LR, batch_size=0, epochs=FOREVER),
    )


def random_data(seed: int = 0) -> tuple[Dataset, np.ndarray]:
    """1,024 samples of 64 Gaussian features with random labels; one-hot targets and labels."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((BATCH, SIZES[0]))
    labels = rng.integers(0, SIZES[-1], BATCH)
    y = np.eye(SIZES[-1])[labels]
    data = Dataset(
        name="random",
        X_train=X,
        y_train=y,
        X_test=None,
        y_test=None,
        task="multiclass",
        classes=tuple(str(k) for k in range(SIZES[-1])),
        feature_names=tuple(f"x{k}" for k in range(SIZES[0])),
    )
    return data, labels


def run(settings: Settings) -> list[Figure]:
    config = mlp_config()
    data, labels = random_data()
    X = data.X_train.astype(np.float32)
    y = data.y_train.astype(np.float32)
    steps = settings.scale(200, 3)

    def engine_loop(n: int) -> tuple[float, float]:
        """``n`` engine steps from the initial weights: (steps per second, last loss)."""
        net = Run.build(config, data).net
        opt = make_optimizer("sgd", net.params, net.grads, LR)
        loss = float("nan")
        t0 = time.perf_counter()
        for _ in range(n):
            loss = net.forward_backward(X, y)
            opt.step()
        return n / (time.perf_counter() - t0), loss

    def engine() -> float:
        return engine_loop(steps)[0]

    def trainer() -> float:
        t = live_trainer(config, "mlp", interval=0.1, data=data)
        t0 = time.perf_counter()
        t.run(max_steps=steps)
        return steps / (time.perf_counter() - t0)

    # Same math, same start: the loss after a few steps agrees (to float32 rounding).
    check_steps = 5
    losses = {
        "bpmon-engine": engine_loop(check_steps)[1],
        "bpmon-trainer": Trainer(config, "mlp", data=data).run(max_steps=check_steps).loss,
    }
    if torchnet.available():
        net = Run.build(config, data).net
        losses["torch"] = torchnet.softmax_ce_trainer(net, X, labels, LR)(check_steps)[1]

    contenders: dict[str, Callable[[], float]] = {"bpmon-engine": engine, "bpmon-trainer": trainer}
    if torchnet.available():

        def torch_run() -> float:
            step_loop = torchnet.softmax_ce_trainer(Run.build(config, data).net, X, labels, LR)
            return step_loop(steps)[0]

        contenders["torch"] = torch_run

    # Multi-threaded BLAS suffers most from other processes' load: more, shorter rounds.
    samples = interleave(contenders, settings.scale(11, 1), settings.warmup)
    engine_title = "MLP 64-128-128-10 f32, batch 1024: engine (forward_backward + step) vs PyTorch"
    trainer_title = "MLP 64-128-128-10 f32, batch 1024: Trainer vs PyTorch"
    if "torch" not in samples:
        return [
            skipped_comparison(
                "mlp_engine_vs_torch", engine_title, "steps/s", 1.2, torchnet.NO_TORCH
            ),
            skipped_comparison(
                "mlp_trainer_vs_torch", trainer_title, "steps/s", 1.2, torchnet.NO_TORCH
            ),
        ]
    note = f"PyTorch at its default {torchnet.default_threads()} thread(s), NumPy's BLAS likewise"
    figures = [
        comparison(
            "mlp_engine_vs_torch",
            engine_title,
            "steps/s",
            samples,
            "bpmon-engine",
            "torch",
            1.2,
            "PyTorch CPU",
            note,
        ),
        comparison(
            "mlp_trainer_vs_torch",
            trainer_title,
            "steps/s",
            samples,
            "bpmon-trainer",
            "torch",
            1.2,
            "PyTorch CPU",
            note,
        ),
    ]
    for fig in figures:
        fig.details = {
            "steps_per_round": steps,
            "batch": BATCH,
            "sizes": list(SIZES),
            f"loss_after_{check_steps}_steps": losses,
        }
    return figures
