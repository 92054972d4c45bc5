"""The configuration of one training run, as plain frozen dataclasses.

A preset file is parsed into a :class:`RunConfig`; the CLI's overrides and the TUI's keys make new
ones with :func:`dataclasses.replace` (or the ``with_*`` helpers below), so a run's configuration
is a value that can be handed between threads and compared, never a mutable object.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

ActivationName = Literal["sigmoid", "tanh", "relu", "leaky_relu", "identity"]
OutputName = Literal["identity", "sigmoid", "softmax"]
LossName = Literal["mse", "bce", "cross_entropy"]
InitName = Literal["normal", "xavier", "he"]
OptimizerName = Literal["sgd", "momentum", "adam"]
DTypeName = Literal["float64", "float32"]

HIDDEN_ACTIVATIONS: tuple[ActivationName, ...] = ("sigmoid", "tanh", "relu", "leaky_relu")
ACTIVATIONS: tuple[ActivationName, ...] = (*HIDDEN_ACTIVATIONS, "identity")
OUTPUTS: tuple[OutputName, ...] = ("identity", "sigmoid", "softmax")
LOSSES: tuple[LossName, ...] = ("mse", "bce", "cross_entropy")
INITS: tuple[InitName, ...] = ("normal", "xavier", "he")
OPTIMIZERS: tuple[OptimizerName, ...] = ("sgd", "momentum", "adam")
DTYPES: tuple[DTypeName, ...] = ("float64", "float32")
DATASETS: tuple[str, ...] = ("xor", "circle", "moons", "spiral", "blobs", "digits", "csv")

MIN_DEPTH = 1
MAX_DEPTH = 12


@dataclass(frozen=True)
class DataConfig:
    """Which data set to build and how; every synthetic set is deterministic given ``seed``.

    ``n`` is the number of points for the synthetic sets (ignored by xor, digits and csv),
    ``noise`` their noise level, ``classes`` the number of classes for spiral and blobs.
    ``test_fraction`` of the points (after a seeded shuffle) is held out for test accuracy;
    0 means no split. ``path`` and ``label`` are for ``csv`` only (``label`` None = last column).
    ``standardize`` rescales each feature to zero mean and unit variance using the training
    split's statistics (digits and csv benefit; the story's sets are used raw).
    """

    name: str = "xor"
    n: int = 200
    noise: float = 0.1
    classes: int = 3
    seed: int = 0
    test_fraction: float = 0.0
    standardize: bool = False
    path: str | None = None
    label: str | None = None


@dataclass(frozen=True)
class ModelConfig:
    """The network's shape and numerics; input and output sizes come from the data set."""

    hidden: tuple[int, ...] = (4,)
    activation: ActivationName = "sigmoid"
    output: OutputName = "sigmoid"
    loss: LossName = "mse"
    batchnorm: bool = False
    init: InitName = "normal"
    init_std: float = 0.1
    bn_eps: float = 1e-5
    bn_momentum: float = 0.1
    dtype: DTypeName = "float64"

    @property
    def depth(self) -> int:
        return len(self.hidden)


@dataclass(frozen=True)
class TrainConfig:
    """The loop: optimiser, step size, batch size (0 = full batch), epochs and the init seed."""

    optimizer: OptimizerName = "sgd"
    lr: float = 0.5
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    adam_eps: float = 1e-8
    batch_size: int = 0
    epochs: int = 2000
    seed: int = 0


@dataclass(frozen=True)
class Thresholds:
    """When a layer's weight-gradient norm counts as vanishing or exploding.

    A layer is ``exploding`` when its gradient norm is at least ``explode_abs`` or at least
    ``explode_rel`` times the output layer's (the error signal grew that much on its way back),
    and ``vanishing`` when it is at most ``vanish_rel`` times the largest non-exploding layer's,
    or below ``vanish_abs``. See :func:`bpmon.telemetry.classify` for why both kinds of test.
    """

    vanish_rel: float = 1e-2
    vanish_abs: float = 1e-8
    explode_rel: float = 1e2
    explode_abs: float = 1e2


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run; two runs with equal configs compute the same numbers."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    thresholds: Thresholds = field(default_factory=Thresholds)

    def with_activation(self, activation: ActivationName) -> RunConfig:
        return replace(self, model=replace(self.model, activation=activation))

    def with_depth(self, depth: int) -> RunConfig:
        """``depth`` hidden layers; new ones repeat the last hidden width, cuts drop the last."""
        depth = max(MIN_DEPTH, min(MAX_DEPTH, depth))
        hidden = self.model.hidden or (8,)
        if depth <= len(hidden):
            new = hidden[:depth]
        else:
            new = hidden + (hidden[-1],) * (depth - len(hidden))
        return replace(self, model=replace(self.model, hidden=new))

    def with_width(self, width: int) -> RunConfig:
        return replace(self, model=replace(self.model, hidden=(width,) * max(1, self.model.depth)))

    def with_batchnorm(self, batchnorm: bool) -> RunConfig:
        return replace(self, model=replace(self.model, batchnorm=batchnorm))

    def with_lr(self, lr: float) -> RunConfig:
        return replace(self, train=replace(self.train, lr=lr))

    def with_seed(self, seed: int) -> RunConfig:
        return replace(self, train=replace(self.train, seed=seed))

    def with_epochs(self, epochs: int) -> RunConfig:
        return replace(self, train=replace(self.train, epochs=epochs))

    def with_optimizer(self, optimizer: OptimizerName) -> RunConfig:
        return replace(self, train=replace(self.train, optimizer=optimizer))


def architecture(sizes: tuple[int, ...] | list[int]) -> str:
    """``[2, 8, 8, 4, 1]`` -> ``"2-8-8-4-1"``, the form the CLI and the status line print."""
    return "-".join(str(s) for s in sizes)
