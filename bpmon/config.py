"""The configuration of one training run, as plain frozen dataclasses.

A preset file is parsed into a :class:`RunConfig`; the CLI's overrides and the TUI's keys make new
ones with :func:`dataclasses.replace` (or the ``with_*`` helpers below), so a run's configuration
is a value that can be handed between threads and compared, never a mutable object.

This module is also where each rule about a configuration lives, once: every field carries a
:class:`Rule` (its type and range) in its metadata, the names of every kind of component
(activations, losses, initialisers, optimisers, data sets) are the tuples below, which the
implementations are keyed by, and :func:`validate` is the one check of a whole configuration.
It imports nothing heavy, so that ``bpmon --help`` can build its choices from it quickly.
"""

from __future__ import annotations

import itertools
import math
import sys
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from bpmon.errors import BpmonError

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
TaskName = Literal["auto", "classify", "regress"]
TASKS: tuple[TaskName, ...] = ("auto", "classify", "regress")
MissingName = Literal["drop", "error"]
MISSING: tuple[MissingName, ...] = ("drop", "error")

MIN_DEPTH = 1
MAX_DEPTH = 12
# The learning rate a run may have, from a preset, a flag or the ] / [ keys. Below 1e-6 no
# network here moves within a session; above 100 every preset's first step overshoots by orders
# of magnitude. The keys stop at the bounds (and say so) instead of reaching 0 or inf, from
# where halving or doubling could never bring a run back.
LR_MIN = 1e-6
LR_MAX = 100.0
# More classes than this is not a classification task a monitor of small networks can show
# (the prediction table, the softmax); a label column of measurements is the usual cause.
MAX_CLASSES = 100
SEED_MAX = 2**32 - 1
# The most cells ModelConfig.activation_label takes: the status line also holds the state, the
# architecture, the step, the loss and the learning rate within 80 columns.
ACTIVATION_LABEL_MAX = 20


@dataclass(frozen=True)
class Rule:
    """What one configuration field accepts: its type and, for numbers, its range.

    This is the one description of a valid value. The preset loader checks a TOML value with
    :meth:`accept`, the command line parses a flag's text with :meth:`parse`, and
    :func:`validate` checks a whole :class:`RunConfig` (which the keys' intents produce too), so
    every way of setting a value reaches the same range and the same message. Bounds are
    inclusive unless ``*_open``; every float must be finite.
    """

    kind: Literal["int", "float", "bool", "str", "choice", "choices", "widths", "path", "names"]
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()
    optional: bool = False

    def expected(self) -> str:
        """What the field takes, in words: ``"a number > 0 and <= 100"``."""
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind == "choices":
            names = ", ".join(repr(c) for c in self.choices)
            return f"one of {names}, or a list of them, one per hidden layer"
        if self.kind == "bool":
            return "true or false"
        if self.kind in ("str", "path"):
            return "a string"
        if self.kind == "names":
            return "a list of distinct, non-empty column names"
        if self.kind == "widths":
            return f"a list of {MIN_DEPTH} to {MAX_DEPTH} hidden-layer widths, each an integer >= 1"
        noun = "an integer" if self.kind == "int" else "a finite number"
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {_bound(self.low)}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {_bound(self.high)}")
        return f"{noun} {' and '.join(parts)}" if parts else noun

    def accept(self, value: object) -> Any:
        """``value`` as the field stores it (an int is taken where a float is expected, a list
        as a tuple of widths); raises ValueError with :meth:`expected` otherwise."""
        if value is None and self.optional:
            return None
        ok: bool
        if self.kind == "choice":
            ok = isinstance(value, str) and value in self.choices
        elif self.kind == "choices":
            # One name for every layer, or a list of names; the list's length is checked
            # against the depth by validate(), which sees both fields.
            if isinstance(value, list | tuple):
                ok = MIN_DEPTH <= len(value) <= MAX_DEPTH and all(
                    isinstance(v, str) and v in self.choices for v in value
                )
                if ok:
                    return tuple(value)
            else:
                ok = isinstance(value, str) and value in self.choices
        elif self.kind == "bool":
            ok = isinstance(value, bool)
        elif self.kind in ("str", "path"):
            ok = isinstance(value, str) and "\x00" not in value
        elif self.kind == "names":
            ok = (
                isinstance(value, list | tuple)
                and len(value) >= 1
                and all(isinstance(v, str) and v and "\x00" not in v for v in value)
                and len(set(value)) == len(value)
            )
            if ok:
                return tuple(value)  # type: ignore[arg-type]
        elif self.kind == "widths":
            ok = (
                isinstance(value, list | tuple)
                and MIN_DEPTH <= len(value) <= MAX_DEPTH
                and all(type(w) is int and w >= 1 for w in value)
            )
            if ok:
                return tuple(value)  # type: ignore[arg-type]
        elif self.kind == "int":
            ok = type(value) is int and self._in_range(value)
        else:
            ok = type(value) in (int, float) and self._in_range(value)  # type: ignore[arg-type]
            if ok:
                return float(value)  # type: ignore[arg-type]
        if not ok:
            raise ValueError(self.expected())
        return value

    def parse(self, text: str) -> Any:
        """A command-line flag's text, parsed and checked like a preset's value."""
        value: object = text
        if self.kind == "int":
            try:
                value = int(text)
            except ValueError:
                raise ValueError(self.expected()) from None
        elif self.kind == "float":
            try:
                value = float(text)
            except ValueError:
                raise ValueError(self.expected()) from None
        return self.accept(value)

    def _in_range(self, x: float) -> bool:
        # Written so that NaN fails every comparison and is refused. Python compares an int of
        # any size with a float exactly, but cannot turn one past 1.8e308 into a float: such an
        # int is in range only for an int field without the bound it passes.
        if isinstance(x, int):
            if self.kind == "float" and abs(x) > _FLOAT_MAX_INT:
                return False
        elif not math.isfinite(x):
            return False
        if self.low is not None and not (x > self.low if self.low_open else x >= self.low):
            return False
        return self.high is None or (x < self.high if self.high_open else x <= self.high)


_FLOAT_MAX_INT = int(sys.float_info.max)


def _bound(x: float) -> str:
    if x == SEED_MAX:
        return "2**32 - 1"
    return f"{x:g}"


def _field(default: Any, kind: str, **rule: Any) -> Any:
    """A dataclass field that carries its :class:`Rule` in its metadata."""
    return field(default=default, metadata={"rule": Rule(kind, **rule)})  # type: ignore[arg-type]


@dataclass(frozen=True)
class DataConfig:
    """Which data set to build and how; every synthetic set is deterministic given ``seed``.

    ``n`` is the number of points for the synthetic sets (ignored by xor, digits and csv),
    ``noise`` the standard deviation of the gaussian noise of the 2-D sets (None: the set's
    default, 0.1 for moons, spiral and blobs and 0 for xor and circle, whose clean points are
    the story's; what it moves differs by set, see :mod:`bpmon.data.synthetic`; digits and csv
    ignore it), ``classes`` the number of classes for spiral and blobs.
    ``test_fraction`` of the points (after a seeded shuffle) is held out for test accuracy;
    0 means no split (xor's four points are never split: they are the whole problem).
    ``standardize`` rescales each feature to zero mean and unit variance using the training
    split's statistics (digits and csv benefit; the story's sets are used raw).
    Left out (None), each takes the data set's own default: a 20% split and standardised
    features for ``csv``, neither for the others.

    For ``csv`` only: ``path`` the file; ``label`` the label column (None: the last);
    ``features`` the feature columns (None: all the others); ``task`` classify, regress or
    ``auto`` (guessed from the label column); ``header`` whether the first row names the columns
    (None: detected); ``missing`` what a row with a missing value does: ``drop`` it (and count
    it) or is an ``error``.
    """

    name: str = _field("xor", "choice", choices=DATASETS)
    n: int = _field(200, "int", low=4)
    noise: float | None = _field(None, "float", low=0, optional=True)
    classes: int = _field(3, "int", low=2, high=MAX_CLASSES)
    seed: int = _field(0, "int", low=0, high=SEED_MAX)
    test_fraction: float | None = _field(
        None, "float", low=0, high=1, high_open=True, optional=True
    )
    standardize: bool | None = _field(None, "bool", optional=True)
    path: str | None = _field(None, "path", optional=True)
    label: str | None = _field(None, "str", optional=True)
    features: tuple[str, ...] | None = _field(None, "names", optional=True)
    task: TaskName = _field("auto", "choice", choices=TASKS)
    header: bool | None = _field(None, "bool", optional=True)
    missing: MissingName = _field("drop", "choice", choices=MISSING)


@dataclass(frozen=True)
class ModelConfig:
    """The network's shape and numerics; input and output sizes come from the data set.

    ``activation`` is one name for every hidden layer, or a tuple of names, one per hidden
    layer (input side first; its length must be the depth). ``dropout`` is the probability
    ``p`` that inverted dropout zeroes a hidden unit's output in a training step (0: none);
    evaluation never drops.
    """

    hidden: tuple[int, ...] = _field((4,), "widths")
    activation: ActivationName | tuple[ActivationName, ...] = _field(
        "sigmoid", "choices", choices=ACTIVATIONS
    )
    output: OutputName = _field("sigmoid", "choice", choices=OUTPUTS)
    loss: LossName = _field("mse", "choice", choices=LOSSES)
    batchnorm: bool = _field(False, "bool")
    init: InitName = _field("normal", "choice", choices=INITS)
    init_std: float = _field(0.1, "float", low=0, low_open=True, high=1e3)
    bn_eps: float = _field(1e-5, "float", low=0, low_open=True, high=1)
    bn_momentum: float = _field(0.1, "float", low=0, low_open=True, high=1)
    dtype: DTypeName = _field("float64", "choice", choices=DTYPES)
    dropout: float = _field(0.0, "float", low=0, high=1, high_open=True)

    @property
    def depth(self) -> int:
        return len(self.hidden)

    @property
    def activations(self) -> tuple[ActivationName, ...]:
        """The activation of each hidden layer, input side first."""
        if isinstance(self.activation, tuple):
            return self.activation
        return (self.activation,) * self.depth

    @property
    def activation_text(self) -> str:
        """The activations as one string, in full: ``"relu"``, or ``"tanh,relu,relu"`` with one
        per layer (the form the headless JSON gives, where format v1 has a string)."""
        if isinstance(self.activation, tuple):
            return ",".join(self.activation)
        return self.activation

    @property
    def activation_label(self) -> str:
        """The activations in a few words for the status line and reports: ``"relu"`` when
        every layer has the same, else each layer's (runs counted, ``"tanh,relu*3"``), cut to
        :data:`ACTIVATION_LABEL_MAX` cells so that the status line stays within 80 columns."""
        names = self.activations
        if not isinstance(self.activation, tuple) or len(set(names)) <= 1:
            return names[0] if names else str(self.activation)
        runs = [(name, len(list(group))) for name, group in itertools.groupby(names)]
        text = ",".join(name if count == 1 else f"{name}*{count}" for name, count in runs)
        if len(text) > ACTIVATION_LABEL_MAX:
            text = text[: ACTIVATION_LABEL_MAX - 1] + "…"
        return text


@dataclass(frozen=True)
class TrainConfig:
    """The loop: optimiser, step size, batch size (0 = full batch), epochs and the init seed.

    ``momentum``, ``beta1`` and ``beta2`` are in [0, 1): at 1 a running average never forgets,
    and Adam's bias correction ``1 - beta**t`` divides by zero.

    ``weight_decay`` is L2 regularisation as PyTorch's optimisers take it: ``wd * W`` is added
    to each weight matrix's gradient inside the optimiser step (for adam too: Adam's L2 form,
    not AdamW), which is gradient descent on ``loss + wd/2 * sum ||W||^2``. Biases and
    batch-norm's gamma and beta are not decayed. The gradients the telemetry shows stay the
    data loss's, as ``.grad`` does in PyTorch.
    """

    optimizer: OptimizerName = _field("sgd", "choice", choices=OPTIMIZERS)
    lr: float = _field(0.5, "float", low=LR_MIN, high=LR_MAX)
    momentum: float = _field(0.9, "float", low=0, high=1, high_open=True)
    beta1: float = _field(0.9, "float", low=0, high=1, high_open=True)
    beta2: float = _field(0.999, "float", low=0, high=1, high_open=True)
    adam_eps: float = _field(1e-8, "float", low=0, low_open=True, high=1)
    batch_size: int = _field(0, "int", low=0)
    epochs: int = _field(2000, "int", low=1, high=10**12)
    seed: int = _field(0, "int", low=0, high=SEED_MAX)
    weight_decay: float = _field(0.0, "float", low=0)


@dataclass(frozen=True)
class Thresholds:
    """When a layer's weight-gradient norm counts as vanishing or exploding.

    A layer is ``exploding`` when its gradient norm is at least ``explode_abs`` or at least
    ``explode_rel`` times the output layer's (the error signal grew that much on its way back),
    and ``vanishing`` when it is at most ``vanish_rel`` times the largest non-exploding layer's,
    or below ``vanish_abs``. See :func:`bpmon.telemetry.classify` for why both kinds of test.
    A relative vanishing ratio must be below 1 and an exploding one above 1, or every layer
    would be flagged; ``vanish_abs`` must be below ``explode_abs``.
    """

    vanish_rel: float = _field(1e-2, "float", low=0, low_open=True, high=1, high_open=True)
    vanish_abs: float = _field(1e-8, "float", low=0)
    explode_rel: float = _field(1e2, "float", low=1, low_open=True)
    explode_abs: float = _field(1e2, "float", low=0, low_open=True)


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run; two runs with equal configs compute the same numbers."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    thresholds: Thresholds = field(default_factory=Thresholds)

    def with_activation(self, activation: ActivationName | tuple[ActivationName, ...]) -> RunConfig:
        """One activation for every hidden layer, or a tuple of them, one per layer."""
        return replace(self, model=replace(self.model, activation=activation))

    def with_depth(self, depth: int) -> RunConfig:
        """``depth`` hidden layers; new ones repeat the last hidden width (and, with one
        activation per layer, the last layer's activation), cuts drop the last layers (and their
        activations). Not clamped: :func:`validate` says when the depth is out of range."""
        hidden = self.model.hidden or (8,)
        activation = self.model.activation
        if depth <= len(hidden):
            new = hidden[: max(0, depth)]
            if isinstance(activation, tuple):
                activation = activation[: max(0, depth)]
        else:
            new = hidden + (hidden[-1],) * (depth - len(hidden))
            if isinstance(activation, tuple) and activation:
                activation = activation + (activation[-1],) * (depth - len(activation))
        return replace(self, model=replace(self.model, hidden=new, activation=activation))

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

    def with_weight_decay(self, weight_decay: float) -> RunConfig:
        return replace(self, train=replace(self.train, weight_decay=weight_decay))

    def with_dropout(self, dropout: float) -> RunConfig:
        return replace(self, model=replace(self.model, dropout=dropout))

    def with_noise(self, noise: float) -> RunConfig:
        return replace(self, data=replace(self.data, noise=noise))

    def with_test_fraction(self, test_fraction: float) -> RunConfig:
        return replace(self, data=replace(self.data, test_fraction=test_fraction))


TABLES: dict[str, type[Any]] = {
    "data": DataConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "thresholds": Thresholds,
}


def rule(key: str) -> Rule:
    """The rule of a dotted key such as ``"train.lr"``."""
    table, name = key.split(".")
    for f in fields(TABLES[table]):
        if f.name == name:
            found: Rule = f.metadata["rule"]
            return found
    raise KeyError(key)


def validate(config: RunConfig, source: str) -> RunConfig:
    """Check every field of ``config`` against its :class:`Rule`, then the rules that tie
    fields together; return ``config`` or raise :class:`BpmonError` naming ``source`` (a file,
    ``"--lr 0.5"``, ``"key +"``), the key, the value and what was expected.

    This is the one validation of a run's configuration: the preset loader, the command-line
    overrides and the monitor's keys all end here (and the data loader checks its own table
    with :func:`validate_data`).
    """
    for table in TABLES:
        _check_fields(table, getattr(config, table), source)
    for key, value, problem in _data_problems(config.data) + _model_problems(config):
        raise BpmonError(f"{source}: {key} = {show_value(value)}: {problem}")
    return config


def validate_data(data: DataConfig, source: str = "") -> DataConfig:
    """:func:`validate` for the ``[data]`` table alone (its messages start with the key when
    no ``source`` is given)."""
    _check_fields("data", data, source)
    for key, value, problem in _data_problems(data):
        raise BpmonError(f"{_where(source)}{key} = {show_value(value)}: {problem}")
    return data


def _where(source: str) -> str:
    return f"{source}: " if source else ""


def _check_fields(table: str, part: object, source: str) -> None:
    for f in fields(TABLES[table]):
        value = getattr(part, f.name)
        try:
            f.metadata["rule"].accept(list(value) if isinstance(value, tuple) else value)
        except ValueError as exc:
            raise BpmonError(
                f"{_where(source)}{table}.{f.name} = {show_value(value)}: expected {exc}"
            ) from None


Problems = list[tuple[str, object, str]]


def _data_problems(d: DataConfig) -> Problems:
    problems: Problems = []
    if d.name == "csv" and not d.path:
        problems.append(("data.path", d.path, "expected a file name: data set 'csv' reads one"))
    if d.name in ("spiral", "blobs") and d.classes > d.n:
        problems.append(
            (
                "data.classes",
                d.classes,
                f"expected at most data.n ({d.n}): every class needs a point",
            )
        )
    return problems


def _model_problems(config: RunConfig) -> Problems:
    m, t, th = config.model, config.train, config.thresholds
    problems: Problems = []
    if isinstance(m.activation, tuple) and len(m.activation) != m.depth:
        problems.append(
            (
                "model.activation",
                m.activation,
                f"expected {m.depth} activation{'s' if m.depth != 1 else ''}, one per hidden "
                f"layer (model.hidden = {show_value(m.hidden)}), or one name for all",
            )
        )
    if m.loss == "bce" and m.output != "sigmoid":
        problems.append(("model.output", m.output, "loss 'bce' needs output 'sigmoid'"))
    if m.loss == "cross_entropy" and m.output != "softmax":
        problems.append(("model.output", m.output, "loss 'cross_entropy' needs output 'softmax'"))
    if m.batchnorm and t.batch_size == 1:
        problems.append(
            ("train.batch_size", 1, "batch-norm needs at least 2 samples a batch (0 = full batch)")
        )
    if th.vanish_abs >= th.explode_abs:
        problems.append(
            (
                "thresholds.vanish_abs",
                th.vanish_abs,
                f"expected below thresholds.explode_abs ({th.explode_abs:g})",
            )
        )
    return problems


def show_value(value: object) -> str:
    """A value as a TOML-ish literal, cut short: a pathological value must not flood a line."""
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float) and not math.isfinite(value):
        text = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    else:
        try:
            text = repr(value)
        except RecursionError:
            text = "[[[..."
    return text if len(text) <= 60 else text[:57] + "..."


def architecture(sizes: tuple[int, ...] | list[int]) -> str:
    """``[2, 8, 8, 4, 1]`` -> ``"2-8-8-4-1"``, the form the CLI and the status line print."""
    return "-".join(str(s) for s in sizes)
