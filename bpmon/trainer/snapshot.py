"""What a run looks like at one moment: the immutable :class:`Snapshot` every consumer reads.

A snapshot holds only tuples, floats, ints, strings and bytes (and frozen dataclasses of them),
so a reader on another thread can never see an array the training loop is writing into. The
panels, the headless report and the ``--record`` lines are all drawn from snapshots and nothing
else.

:func:`snapshot_of` is the one place that turns the state of a run into a snapshot: telemetry,
accuracy and predictions are computed here, only when a snapshot is due, never on every step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bpmon.config import RunConfig
from bpmon.engine.activations import Array
from bpmon.runmodel import PREDICTION_ROWS, Boundary, Prediction, Snapshot
from bpmon.telemetry import collect
from bpmon.trainer.run import Run
from bpmon.trainer.states import State

__all__ = ["ENDED", "LoopFacts", "Prediction", "Snapshot", "accuracy", "snapshot_of"]

# The states after which a run does not train on: its snapshot measures every row.
ENDED: frozenset[State] = frozenset({"finished", "diverged", "stopped", "error"})


@dataclass(frozen=True)
class LoopFacts:
    """What the loop, not the run, knows at publishing time."""

    run_id: int
    preset: str
    state: State
    previous: tuple[tuple[int, ...], tuple[float, ...]]
    steps_per_second: float
    elapsed: float
    message: str
    notice: str
    notice_id: int
    boundary: Boundary | None = None


def correct_rows(output: Array, y: Array) -> Array:
    """Per row, whether the prediction is right: threshold 0.5 for a single output, argmax for
    one-hot targets. A row with a non-finite output is wrong: NaN > 0.5 is False, which would
    otherwise score a NaN as a correct "class 0", and argmax of a NaN row is arbitrary."""
    finite = np.isfinite(output).all(axis=1)
    if y.shape[1] == 1:
        right = (output[:, 0] > 0.5) == (y[:, 0] > 0.5)
    else:
        right = np.argmax(output, axis=1) == np.argmax(y, axis=1)
    ok: Array = right & finite
    return ok


def accuracy(output: Array, y: Array) -> float:
    """Fraction of rows :func:`correct_rows` counts right."""
    return float(np.mean(correct_rows(output, y)))


def switches(config: RunConfig, architecture: str) -> str:
    bn = " +bn" if config.model.batchnorm else ""
    return f"{architecture} {config.model.activation_label}{bn}"


def r_squared(output: Array, y: Array) -> float:
    """``1 - SS_res / SS_tot``: the share of the target's variance the predictions explain (1 is
    perfect, 0 is no better than the mean, below 0 worse). The same on the standardised scale
    the network trains on as in the target's own units. Non-finite outputs give NaN."""
    total = float(np.sum((y - y.mean()) ** 2))
    residual = float(np.sum((y - output) ** 2))
    return 1.0 - residual / total if total > 0 else math.nan


def snapshot_of(run: Run, facts: LoopFacts) -> Snapshot:
    """The snapshot of ``run`` as it is now. While the run goes on, the accuracy (or R²) of a
    large split is measured on its fixed sample (:data:`bpmon.trainer.run.EVAL_ROWS`); once the
    run has ended, on every row."""
    layers = collect(run.net, run.opt, run.config.thresholds) if run.step > 0 else ()
    X, y, X_test, y_test = run.measured(full=facts.state in ENDED)
    out = run.net.predict(X)
    regression = run.data.task == "regression"
    metric = r_squared if regression else accuracy
    test_value = None
    if X_test is not None and y_test is not None:
        test_value = metric(run.net.predict(X_test), y_test)
    train_value = metric(out, y)
    rows = (
        _regression_rows(X, y, out, run.data.y_mean, run.data.y_std)
        if regression
        else _predictions(X, y, out)
    )
    architecture = run.net.architecture
    return Snapshot(
        run_id=facts.run_id,
        preset=facts.preset,
        config=run.config,
        architecture=architecture,
        switches=switches(run.config, architecture),
        state=facts.state,
        step=run.step,
        epoch=run.epoch,
        epochs=run.config.train.epochs,
        loss=run.loss,
        loss_steps=tuple(run.history.steps),
        loss_values=tuple(run.history.values),
        previous_loss_steps=facts.previous[0],
        previous_loss_values=facts.previous[1],
        layers=layers,
        initial_layers=run.initial_layers,
        accuracy=None if regression else train_value,
        test_accuracy=None if regression else test_value,
        predictions=rows,
        classes=run.data.classes,
        steps_per_second=facts.steps_per_second,
        lr=run.opt.lr,
        elapsed=facts.elapsed,
        thresholds=run.config.thresholds,
        diverged_step=run.diverged_step,
        diverged_layer=run.diverged_layer,
        nonfinite=run.nonfinite,
        message=facts.message,
        notice=facts.notice,
        notice_id=facts.notice_id,
        r2=train_value if regression else None,
        test_r2=test_value if regression else None,
        notes=run.data.notes,
        boundary=facts.boundary,
    )


def _predictions(X: Array, y: Array, out: Array) -> tuple[Prediction, ...]:
    rows = min(PREDICTION_ROWS, X.shape[0])
    right = correct_rows(out[:rows], y[:rows])
    predictions = []
    for i in range(rows):
        if y.shape[1] == 1:
            target, predicted = int(y[i, 0] > 0.5), int(out[i, 0] > 0.5)
        else:
            target, predicted = int(np.argmax(y[i])), int(np.argmax(out[i]))
        predictions.append(
            Prediction(
                inputs=tuple(float(v) for v in X[i]),
                target=target,
                output=tuple(float(v) for v in out[i]),
                predicted=predicted,
                correct=bool(right[i]),
            )
        )
    return tuple(predictions)


def _regression_rows(
    X: Array, y: Array, out: Array, y_mean: float, y_std: float
) -> tuple[Prediction, ...]:
    """Prediction rows of a regression, target and output back in the target's own units."""
    rows = []
    for i in range(min(PREDICTION_ROWS, X.shape[0])):
        prediction = float(out[i, 0]) * y_std + y_mean
        rows.append(
            Prediction(
                inputs=tuple(float(v) for v in X[i]),
                target=0,
                output=(prediction,),
                predicted=0,
                correct=math.isfinite(prediction),
                target_value=float(y[i, 0]) * y_std + y_mean,
            )
        )
    return tuple(rows)
