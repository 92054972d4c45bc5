"""The PyTorch contenders, built to do exactly the work of bpmon's loops.

PyTorch is optional: :func:`available` says whether it can be imported, and the groups skip
their PyTorch figures with a note when it cannot. Every model here starts from bpmon's own
initial weights (copied across), so both sides compute the same numbers, and every step reads
its loss back as a Python float, because bpmon's trainer does that on every step too (for the
divergence check and the loss curve).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np

from bpmon.engine.activations import Array
from bpmon.engine.network import Network

if TYPE_CHECKING:
    import torch

NO_TORCH = "skipped: PyTorch (torch) is not installed"
StepLoop = Callable[[int], tuple[float, float]]  # steps -> (steps per second, last loss)


def available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def default_threads() -> int:
    import torch

    return int(torch.get_num_threads())


@contextmanager
def threads(n: int) -> Iterator[None]:
    """PyTorch's intra-op thread count set to ``n`` for the block, then restored."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _model(net: Network) -> torch.nn.Sequential:
    """``net``'s architecture (sigmoid hidden layers, no batch-norm) with its current weights."""
    import torch

    layers: list[torch.nn.Module] = []
    n_dense = len(net.blocks)
    for i, block in enumerate(net.blocks):
        W, b = block.dense.W, block.dense.b
        linear = torch.nn.Linear(W.shape[0], W.shape[1], dtype=_dtype(net))
        with torch.no_grad():
            # torch keeps (out, in) where bpmon keeps (in, out).
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
            linear.bias.copy_(torch.from_numpy(b.copy()))
        layers.append(linear)
        if i < n_dense - 1:
            layers.append(torch.nn.Sigmoid())
    return torch.nn.Sequential(*layers)


def _dtype(net: Network) -> torch.dtype:
    import torch

    return torch.float32 if net.dtype == np.float32 else torch.float64


def sigmoid_mse_trainer(net: Network, X: Array, y: Array, lr: float) -> StepLoop:
    """A step loop for the story's net: sigmoid output, ``0.5 * mean((out - y)**2)``, SGD.
    Returns ``run(steps) -> (steps per second, last loss)``; the model lives on across calls."""
    import torch

    model = torch.nn.Sequential(*_model(net), torch.nn.Sigmoid())
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    Xt, yt = torch.from_numpy(X.copy()), torch.from_numpy(y.copy())
    mse = torch.nn.MSELoss()

    def step() -> float:
        opt.zero_grad()
        loss = 0.5 * mse(model(Xt), yt)
        loss.backward()
        opt.step()
        return float(loss.item())

    return _timed(step)


def softmax_ce_trainer(net: Network, X: Array, labels: Array, lr: float) -> StepLoop:
    """A step loop for a softmax classifier: logits into ``CrossEntropyLoss`` (the fused
    log-softmax + NLL PyTorch users write) with integer class labels, SGD."""
    import torch

    model = _model(net)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    Xt, yt = torch.from_numpy(X.copy()), torch.from_numpy(labels.astype(np.int64))
    ce = torch.nn.CrossEntropyLoss()

    def step() -> float:
        opt.zero_grad()
        loss = ce(model(Xt), yt)
        loss.backward()
        opt.step()
        return float(loss.item())

    return _timed(step)


def _timed(step: Callable[[], float]) -> StepLoop:
    def run(steps: int) -> tuple[float, float]:
        loss = float("nan")
        t0 = time.perf_counter()
        for _ in range(steps):
            loss = step()
        return steps / (time.perf_counter() - t0), loss

    return run
