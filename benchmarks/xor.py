"""The story's network on XOR: bpmon's trainer, telemetry on, against a bare NumPy loop doing the
same math and against PyTorch.

The network is tiny (2-4-1 on four samples), so a step is a few dozen NumPy calls on 4x4 arrays
and costs what the calls cost, not the arithmetic. The bare loop is what a person would write for
the story's SimpleNet: local variables, ``1 / (1 + exp(-z))``, no classes, no buffers; it is the
floor for Python + NumPy. bpmon's trainer additionally checks the loss, records the loss curve
and publishes telemetry snapshots every 0.1 s.

PyTorch runs at one intra-op thread and at its default; the table compares with the faster of
the two (a net this small gains nothing from threads, and the comparison should flatter the
contender, not bpmon).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from benchmarks import torchnet
from benchmarks.harness import Figure, Settings, comparison, interleave, median, skipped_comparison
from bpmon.config import RunConfig
from bpmon.data import load_dataset
from bpmon.engine.activations import Array
from bpmon.launch import live_trainer
from bpmon.presets import load_preset
from bpmon.trainer import Run, Trainer

FOREVER = 10**12  # epochs: a run that never finishes inside a measurement


def xor_config() -> tuple[str, RunConfig]:
    """The xor preset, made endless."""
    return "xor", load_preset("xor").config.with_epochs(FOREVER)


def numpy_loop(X: Array, y: Array, params: list[Array], lr: float, steps: int) -> float:
    """The story's SimpleNet, 2-4-1 sigmoid with mse and full-batch SGD, as one plain loop;
    updates ``params`` (W1, b1, W2, b2) in place and returns the last loss.

    The loss is ``0.5 * mean((out - y)**2)`` over all elements and is computed on every step, as
    bpmon computes it; its gradient through the output is ``(out - y) * out * (1 - out) / n``.
    """
    W1, b1, W2, b2 = params
    n = y.size
    loss = float("nan")
    for _ in range(steps):
        a1 = 1.0 / (1.0 + np.exp(-(X @ W1 + b1)))
        out = 1.0 / (1.0 + np.exp(-(a1 @ W2 + b2)))
        err = out - y
        loss = 0.5 * float(np.mean(err**2))
        d2 = err * out * (1.0 - out) / n
        d1 = (d2 @ W2.T) * a1 * (1.0 - a1)
        W2 -= lr * (a1.T @ d2)
        b2 -= lr * d2.sum(axis=0)
        W1 -= lr * (X.T @ d1)
        b1 -= lr * d1.sum(axis=0)
    return loss


def run(settings: Settings) -> list[Figure]:
    preset, config = xor_config()
    data = load_dataset(config.data)
    X = np.ascontiguousarray(data.X_train, dtype=np.float64)
    y = np.ascontiguousarray(data.y_train, dtype=np.float64)
    net0 = Run.build(config, data).net  # the initial weights every contender starts from
    start = [net0.params[k].copy() for k in ("layer0.W", "layer0.b", "layer1.W", "layer1.b")]
    lr = config.train.lr
    steps = settings.scale(20_000, 300)
    have_torch = torchnet.available()

    # Same math, same start: after the same number of steps every contender has the same loss.
    check_steps = 200
    losses = {
        "bpmon": Trainer(config, preset).run(max_steps=check_steps).loss,
        "numpy": numpy_loop(X, y, [p.copy() for p in start], lr, check_steps),
    }
    if have_torch:
        losses["torch"] = torchnet.sigmoid_mse_trainer(net0, X, y, lr)(check_steps)[1]

    def bpmon_trainer() -> float:
        trainer = live_trainer(config, preset, interval=0.1)
        t0 = time.perf_counter()
        trainer.run(max_steps=steps)
        return steps / (time.perf_counter() - t0)

    def bare_numpy() -> float:
        params = [p.copy() for p in start]
        t0 = time.perf_counter()
        numpy_loop(X, y, params, lr, steps)
        return steps / (time.perf_counter() - t0)

    contenders: dict[str, Callable[[], float]] = {"bpmon": bpmon_trainer, "numpy": bare_numpy}
    torch_threads = torchnet.default_threads() if have_torch else 0
    if have_torch:
        # PyTorch costs ~10x more per step here; a fifth of the steps keeps the rounds short.
        torch_steps = max(1, steps // 5)
        for n_threads in sorted({1, torch_threads}):

            def torch_run(n_threads: int = n_threads) -> float:
                step_loop = torchnet.sigmoid_mse_trainer(net0, X, y, lr)
                with torchnet.threads(n_threads):
                    return step_loop(torch_steps)[0]

            contenders[f"torch-{n_threads}t"] = torch_run

    samples = interleave(contenders, settings.rounds, settings.warmup)
    figures = [
        comparison(
            "xor_trainer_vs_numpy",
            f"xor trainer ({preset} preset, telemetry on) vs bare NumPy loop",
            "steps/s",
            samples,
            "bpmon",
            "numpy",
            0.9,
            contender_name="bare NumPy loop",
        )
    ]
    figures[0].details = {
        "preset": preset,
        "steps_per_round": steps,
        f"loss_after_{check_steps}_steps": losses,
    }
    title = "xor trainer vs PyTorch CPU (autograd + optim.SGD)"
    if not have_torch:
        figures.append(
            skipped_comparison("xor_trainer_vs_torch", title, "steps/s", 4.0, torchnet.NO_TORCH)
        )
        return figures
    torch_names = [name for name in samples if name.startswith("torch-")]
    best = max(torch_names, key=lambda name: median(samples[name]))
    fig = comparison(
        "xor_trainer_vs_torch",
        title,
        "steps/s",
        samples,
        "bpmon",
        best,
        4.0,
        contender_name=f"PyTorch, {best.removeprefix('torch-').removesuffix('t')} thread(s)",
        note="vs the faster of PyTorch at 1 thread and at its default "
        f"({torch_threads}); float64 like bpmon; loss.item() every step like the trainer",
    )
    fig.samples.update({name: samples[name] for name in torch_names})
    fig.details = {
        "torch_steps_per_round": max(1, steps // 5),
        "torch_default_threads": torch_threads,
    }
    figures.append(fig)
    return figures
