"""The state of one training run, and its step.

A :class:`Run` owns the network, the optimiser, the data arrays, the batch order and the loss
history of one configuration; :meth:`Run.step` is the hot path: one forward/backward, one
optimiser step, a finiteness check of the scalar loss. It lives on the training thread only and
knows nothing of threads, commands or snapshots.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from bpmon.config import RunConfig, show_value
from bpmon.data import Dataset, load_dataset
from bpmon.engine.activations import Array
from bpmon.engine.network import Network
from bpmon.engine.optimizers import Optimizer, make_optimizer
from bpmon.errors import BpmonError
from bpmon.memory import ensure_fits
from bpmon.runmodel import PREDICTION_ROWS, LossHistory, NonFinite
from bpmon.telemetry import (
    LayerStats,
    collect,
    first_nonfinite_layer,
    gradients_finite,
    nonfinite_origin,
)

# A snapshot's accuracy (or R²) is measured on at most this many rows of each split while a run
# goes on: on a split of 800,000 rows the full forward pass took 0.3 s, so snapshots every
# 0.05 s held training to 0.28x of its speed. A fixed sample (chosen once per run from its
# seed) estimates it within about 1 point; the run's last snapshot (finished, diverged,
# stopped) is measured on every row. The sample always starts with the rows the prediction
# table shows.
EVAL_ROWS = 8192
# A finite loss this many times its first value is a divergence too: --lr 1e200 drove a loss to
# 4e200 without ever producing inf, and "finished" was a wrong result. The factor is far above
# what a run that still ends somewhere goes through: the dying-relu preset's worst spike (a
# cross-entropy grows linearly with the logits) is 1.3e25 times its first loss on one BLAS build
# and 1,400 times on another, and it then settles at ln 2 with its units dead.
RUNAWAY_FACTOR = 1e30
# Work arrays a training step keeps per hidden unit and sample (z, a, dz, dx, batch-norm's
# xhat, y, tmp, dz; dropout adds its mask, output and dx), and per parameter (the parameter,
# its gradient, the optimiser's step, and up to two moments for adam; weight decay adds the
# decayed gradient): the memory estimate counts these.
_ARRAYS_PER_ACTIVATION = 8
_ARRAYS_PER_PARAMETER = 5
_DROPOUT_ARRAYS = 3

Outcome = Literal["finish", "diverge"] | None


def eval_rows(
    n: int, seed: int, rows: int = EVAL_ROWS, first: int = PREDICTION_ROWS
) -> NDArray[np.intp] | None:
    """A fixed sample of ``rows`` row indices of ``n`` (None when ``n`` is not more), ascending,
    always holding the ``first`` rows (the prediction table's). Its own generator: the sample
    does not move the training's random stream."""
    if n <= rows:
        return None
    rng = np.random.default_rng([seed, 0xE7A1])
    rest = rng.choice(np.arange(first, n), size=rows - first, replace=False)
    return np.concatenate([np.arange(first), np.sort(rest)]).astype(np.intp)


def batch_bounds(n: int, batch_size: int, min_batch: int) -> tuple[tuple[int, int], ...]:
    """The (start, stop) of each mini-batch of one epoch over ``n`` shuffled samples.

    ``batch_size`` 0 (or at least ``n``) is one full batch. A last batch smaller than
    ``min_batch`` joins the one before it: batch-norm cannot normalise a batch of one sample
    (PyTorch raises "Expected more than 1 value per channel"), and dropping the sample instead
    would silently train on less data than the user gave.
    """
    if not 0 < batch_size < n:
        return ((0, n),)
    bounds = [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < min_batch:
        last = bounds.pop()
        bounds[-1] = (bounds[-1][0], last[1])
    return tuple(bounds)


def estimate_bytes(config: RunConfig, n_train: int, n_inputs: int, n_outputs: int) -> int:
    """An upper bound on the memory a network for ``config`` takes on top of its data set:
    parameters with their gradients and optimiser state, a training step's work arrays, and the
    eval forward over the whole training set that every snapshot makes."""
    m = config.model
    sizes = (n_inputs, *m.hidden, n_outputs)
    itemsize = np.dtype(m.dtype).itemsize
    params = sum((a + 1) * b for a, b in itertools.pairwise(sizes))
    batch = config.train.batch_size if 0 < config.train.batch_size < n_train else n_train
    units = sum(sizes[1:])
    per_parameter = _ARRAYS_PER_PARAMETER + (config.train.weight_decay > 0)
    per_activation = _ARRAYS_PER_ACTIVATION + _DROPOUT_ARRAYS * (m.dropout > 0)
    return itemsize * (
        per_parameter * params + per_activation * batch * units + 3 * n_train * max(sizes)
    )


@dataclass
class Run:
    """The mutable state of one run; lives on the training thread only."""

    config: RunConfig
    data: Dataset
    net: Network
    opt: Optimizer
    X: Array
    y: Array
    X_test: Array | None
    y_test: Array | None
    rng: np.random.Generator
    batches: tuple[tuple[int, int], ...]
    history: LossHistory = field(default_factory=LossHistory)
    step: int = 0
    epoch: int = 0
    loss: float = math.nan
    first_loss: float = math.nan
    initial_layers: tuple[LayerStats, ...] = ()
    diverged_step: int | None = None
    diverged_layer: str | None = None
    nonfinite: NonFinite | None = None  # where the first non-finite value came from
    order: NDArray[np.intp] | None = None  # this epoch's sample order, for mini-batches
    # The rows a snapshot measures while the run goes on (see EVAL_ROWS); None: every row.
    eval_train: NDArray[np.intp] | None = None
    eval_test: NDArray[np.intp] | None = None

    @classmethod
    def build(cls, config: RunConfig, data: Dataset | None = None) -> Run:
        """A fresh run from ``config`` (a valid one: see :func:`bpmon.config.validate`).
        ``data`` reuses a loaded data set (a restart that keeps the data); a network the data
        cannot feed, or that would not fit in memory, is a :class:`BpmonError`."""
        data = data or load_dataset(config.data)
        m = config.model
        n_train = int(data.X_train.shape[0])
        if m.batchnorm and n_train < 2:
            raise BpmonError(
                f"model.batchnorm = true: batch-norm needs at least 2 training samples, "
                f"and the data set leaves {n_train} for training"
            )
        ensure_fits(
            estimate_bytes(config, n_train, data.n_inputs, data.n_outputs),
            f"model.hidden = {show_value(m.hidden)}",
        )
        try:
            net = Network(
                (data.n_inputs, *m.hidden, data.n_outputs),
                activation=m.activations,
                output=m.output,
                batchnorm=m.batchnorm,
                init=m.init,
                loss=m.loss,
                seed=config.train.seed,
                init_std=m.init_std,
                bn_eps=m.bn_eps,
                bn_momentum=m.bn_momentum,
                dtype=m.dtype,
                dropout=m.dropout,
            )
        except ValueError as exc:  # e.g. a softmax output on a binary data set
            raise BpmonError(f"model: {exc}") from None
        t = config.train
        opt = make_optimizer(
            t.optimizer,
            net.params,
            net.grads,
            t.lr,
            t.momentum,
            t.beta1,
            t.beta2,
            t.adam_eps,
            weight_decay=t.weight_decay,
            decay=net.decayed,
        )
        dtype = net.dtype
        return cls(
            config=config,
            data=data,
            net=net,
            opt=opt,
            X=np.ascontiguousarray(data.X_train, dtype=dtype),
            y=np.ascontiguousarray(data.y_train, dtype=dtype),
            X_test=None if data.X_test is None else data.X_test.astype(dtype),
            y_test=None if data.y_test is None else data.y_test.astype(dtype),
            rng=np.random.default_rng(t.seed),
            batches=batch_bounds(n_train, t.batch_size, 2 if m.batchnorm else 1),
            eval_train=eval_rows(n_train, t.seed),
            eval_test=None if data.X_test is None else eval_rows(len(data.X_test), t.seed + 1),
        )

    def measured(self, full: bool) -> tuple[Array, Array, Array | None, Array | None]:
        """``(X, y, X_test, y_test)`` a snapshot measures: the fixed samples, or with ``full``
        every row."""
        X, y, X_test, y_test = self.X, self.y, self.X_test, self.y_test
        if not full and self.eval_train is not None:
            X, y = X[self.eval_train], y[self.eval_train]
        if not full and self.eval_test is not None and X_test is not None and y_test is not None:
            X_test, y_test = X_test[self.eval_test], y_test[self.eval_test]
        return X, y, X_test, y_test

    @property
    def steps_per_epoch(self) -> int:
        return len(self.batches)

    def train_step(self) -> Outcome:
        """One optimiser step (one epoch for full batch); says when the run ends."""
        batches = self.batches
        if len(batches) > 1:
            pos = self.step % len(batches)
            if pos == 0 or self.order is None:
                self.order = self.rng.permutation(self.X.shape[0])
            start, stop = batches[pos]
            idx = self.order[start:stop]
            loss = self.net.forward_backward(self.X[idx], self.y[idx])
            epoch_done = pos == len(batches) - 1
        else:
            loss = self.net.forward_backward(self.X, self.y)
            epoch_done = True
        # math.isfinite on a Python float is the cheapest check there is; the runaway test
        # compares with a number fixed at step 1.
        # A non-finite gradient with a finite loss (an overflow in backward) would put NaN
        # into every weight at this step: it diverges here, where its origin can be seen.
        if (
            not math.isfinite(loss)
            or loss > self.first_loss * RUNAWAY_FACTOR
            or not gradients_finite(self.net)
        ):
            self.loss = loss
            self.diverged_step = self.step + 1
            self.diverged_layer = first_nonfinite_layer(self.net)
            self.nonfinite = nonfinite_origin(self.net, self.step + 1, loss)
            return "diverge"
        self.opt.step()
        self.step += 1
        self.loss = loss
        self.history.add(self.step, loss)
        if epoch_done:
            self.epoch += 1
        if self.step == 1:
            # A loss of exactly 0 at step 1 must not make every later loss a runaway.
            self.first_loss = max(loss, np.finfo(np.float64).tiny)
            self.initial_layers = collect(self.net, self.opt, self.config.thresholds)
        if self.epoch >= self.config.train.epochs:
            return "finish"
        return None
