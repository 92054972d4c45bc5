"""Which parameters of a PyTorch model make which row, what each row is called, and which
activation follows it: everything the bridge decides once, at :func:`~bpmon.torch.watch` time.

Every trainable parameter belongs to exactly one row, or to the header's ``excluded`` list when
``include=``/``exclude=`` leave its row out. A row is built from the module that holds the
parameters directly (``module._parameters``), by what that module is:

- **A weight layer**: a module with a ``weight`` of two or more dimensions (``Linear``,
  convolutions, ``Embedding``, anything built like them): one row named by the module's path,
  ``weight`` as the row's weight, ``bias`` as its bias.
- **A recurrent layer** (``nn.RNN``/``LSTM``/``GRU``): one row per layer and direction,
  ``"lstm.l0"``, ``"lstm.l0_reverse"``, with the input and hidden weights together
  (``weight_ih_l0``, ``weight_hh_l0``, ``weight_hr_l0``) and both biases: the two matrices are
  one cell's, updated together, and their separate norms would double the rows for no reading
  anyone makes.
- **Attention's input projection** (``nn.MultiheadAttention``): the packed ``in_proj_weight``
  or the separate ``q/k/v_proj_weight`` make one row ``"<path>.in_proj"`` (with ``in_proj_bias``
  and ``bias_k``/``bias_v``); ``out_proj`` is a ``Linear`` and a weight layer of its own.
- **A normalisation layer**: a module whose parameters are a one-dimensional ``weight`` (and
  ``bias``) — torch's norm classes and any module built the same way (nanoGPT's own
  ``LayerNorm``, an ``RMSNorm`` written by hand). Its row has ``vector=True``: a per-feature
  scale's gradient norm is not comparable with a weight matrix's, so the profile of
  :func:`bpmon.telemetry.classify` is taken over the matrix rows only.
- **Anything else**: each raw parameter is a row of its own, named by its path
  (``"blocks.0.gamma"``); a one-dimensional one is a vector row.

A parameter held by two modules (GPT's ``transformer.wte.weight`` and ``lm_head.weight``, one
tensor) is one row named by both owners (``"transformer.wte=lm_head"``, registration order) and
placed where its last owner is: the head, which is then the last row, the output layer the
rules compare the others with.

Rows come in registration order, except embeddings registered after every other row, which
come first (:func:`_inputs_first`): the panel reads "input layer first", and the rules take the
last row as the output layer.

The activation pairing walks ``model.named_modules(remove_duplicate=False)``: registration
order, which is the order an ``nn.Sequential`` runs in and the order most ``__init__`` methods
list their layers in. Norm layers, dropout and ``Identity`` between a weight layer and an
activation are skipped over; one activation object listed at several places follows each
layer listed before it; at run time the monitor credits a call only when that layer's forward
ran just before it (see :mod:`bpmon.torch.forward`).
"""

from __future__ import annotations

import fnmatch
import itertools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

# The names are bpmon's activation names (bpmon.config.ACTIVATIONS), plus "gelu".
ACTIVATION_TYPES: tuple[tuple[type[nn.Module], str], ...] = (
    (nn.Sigmoid, "sigmoid"),
    (nn.Tanh, "tanh"),
    (nn.LeakyReLU, "leaky_relu"),
    (nn.ReLU, "relu"),
    (nn.GELU, "gelu"),
)

_NORMS: tuple[type[nn.Module], ...] = tuple(
    t
    for t in (
        nn.modules.batchnorm._NormBase,  # BatchNorm*, SyncBatchNorm, InstanceNorm*
        nn.LayerNorm,
        nn.GroupNorm,
        nn.LocalResponseNorm,
        getattr(nn, "RMSNorm", None),  # torch >= 2.4
    )
    if isinstance(t, type)
)
_RNN_PARAM = re.compile(r"(weight|bias)_(ih|hh|hr)_l(\d+)(_reverse)?$")
_MHA_WEIGHTS = ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight")


@dataclass(eq=False)
class Layer:
    """One row: the parameters measured together.

    ``weights``' gradients make the row's ``grad_norm`` (the norm of all of them together),
    ``biases``' its ``bias_grad_norm`` (NaN when there are none), ``weights`` alone its weight
    norm and update ratio. ``module`` is the module whose forward hooks find the row's
    activation (None for a row of raw parameters). ``fan_in``/``fan_out`` follow bpmon's
    ``(inputs, outputs)`` reading: ``Linear`` ``(in_features, out_features)``, convolutions
    ``(in_channels, out_channels)``, ``Embedding`` ``(num_embeddings, embedding_dim)``, a
    recurrent layer ``(input size, hidden size)``, anything else ``(numel / shape[0], shape[0])``.
    """

    name: str
    module: nn.Module | None
    weights: list[nn.Parameter]
    biases: list[nn.Parameter]
    kind: str
    shape: tuple[int, ...]
    fan_in: int
    fan_out: int
    vector: bool = False
    activation: str | None = None
    act_module: nn.Module | None = None
    tied: tuple[str, ...] = ()
    owners: list[str] = field(default_factory=list)
    order: int = 0
    names: list[str] = field(default_factory=list)  # the parameters' paths

    @property
    def params(self) -> int:
        return sum(p.numel() for p in (*self.weights, *self.biases))

    @property
    def weight(self) -> nn.Parameter:
        return self.weights[0]

    def description(self) -> dict[str, Any]:
        """The header's entry for this row (see :mod:`bpmon.runfile`)."""
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "shape": list(self.shape),
            "fan_in": self.fan_in,
            "fan_out": self.fan_out,
            "activation": self.activation,
            "params": self.params,
        }
        if self.tied:
            out["tied"] = list(self.tied)
        return out


@dataclass
class Rows:
    """What :func:`find_layers` decides: the rows, and the trainable parameters left out by
    ``include``/``exclude`` (their paths)."""

    layers: list[Layer]
    excluded: list[str]


def unwrap(model: nn.Module) -> nn.Module:
    """The module under DistributedDataParallel / DataParallel / torch.compile wrappers, whose
    parameters are the wrapper's: watching it sees the same tensors under unprefixed names."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel | nn.DataParallel):
            model = model.module
            continue
        inner = getattr(model, "_orig_mod", None)  # torch.compile's OptimizedModule
        if isinstance(inner, nn.Module) and inner is not model:
            model = inner
            continue
        return model


def activation_name(module: nn.Module) -> str | None:
    for cls, name in ACTIVATION_TYPES:
        if isinstance(module, cls):
            return name
    return None


def _own(module: nn.Module) -> dict[str, nn.Parameter]:
    return {k: p for k, p in module._parameters.items() if isinstance(p, nn.Parameter)}


def is_norm(module: nn.Module) -> bool:
    """A normalisation layer by what it is: one of torch's, or a module normalising with a
    one-dimensional ``weight`` (and maybe ``bias``) and no other parameter of its own."""
    if isinstance(module, _NORMS):
        return True
    own = _own(module)
    weight = own.get("weight")
    return (
        weight is not None
        and weight.dim() == 1
        and set(own) <= {"weight", "bias"}
        and next(module.children(), None) is None
        and activation_name(module) is None
        and not isinstance(module, nn.PReLU)
    )


def is_weight_layer(module: nn.Module) -> bool:
    weight = getattr(module, "weight", None)
    return (
        isinstance(weight, nn.Parameter)
        and weight.dim() >= 2
        and not isinstance(module, (*_NORMS, nn.RNNBase, nn.MultiheadAttention))
        and next(module.children(), None) is None
    )


def _fans(module: nn.Module, weight: torch.Tensor) -> tuple[int, int]:
    shape = tuple(weight.shape)
    if isinstance(module, nn.modules.conv._ConvNd):
        return int(module.in_channels), int(module.out_channels)
    if isinstance(module, nn.Embedding | nn.EmbeddingBag):
        return int(shape[0]), int(shape[1])
    if weight.dim() == 0:
        return 1, 1
    return math.prod(shape[1:]), int(shape[0])


def _patterns(spec: str | Sequence[str] | None) -> tuple[str, ...] | None:
    if spec is None:
        return None
    return (spec,) if isinstance(spec, str) else tuple(spec)


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def pair_activations(model: nn.Module) -> dict[nn.Module, tuple[str, nn.Module]]:
    """For each weight layer followed by a known activation module (norm layers, dropout and
    ``Identity`` in between are skipped), that activation's name and module."""
    walk = [m for _, m in model.named_modules(remove_duplicate=False)]
    pairs: dict[nn.Module, tuple[str, nn.Module]] = {}
    for i, module in enumerate(walk):
        if not is_weight_layer(module) or module in pairs:
            continue
        for nxt in walk[i + 1 :]:
            if next(nxt.children(), None) is not None:
                continue  # a container: its children come next in the walk
            if is_norm(nxt) or isinstance(nxt, nn.modules.dropout._DropoutNd | nn.Identity):
                continue
            name = activation_name(nxt)
            if name is not None:
                pairs[module] = (name, nxt)
            break
    return pairs


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _rows_of(path: str, module: nn.Module, own: dict[str, nn.Parameter]) -> list[Layer]:
    """The rows made of ``module``'s own parameters (see the module docstring)."""
    kind = type(module).__name__
    label = path or kind
    rows: list[Layer] = []
    taken: set[str] = set()
    if isinstance(module, nn.RNNBase):
        cells: dict[str, Layer] = {}
        for pname, p in own.items():
            m = _RNN_PARAM.match(pname)
            if m is None:
                continue
            cell = f"l{m.group(3)}{m.group(4) or ''}"
            row = cells.get(cell)
            if row is None:
                layer = int(m.group(3))
                dirs = 2 if module.bidirectional else 1
                fan_in = int(module.input_size) if layer == 0 else int(module.hidden_size) * dirs
                row = cells[cell] = Layer(
                    _join(label, cell), None, [], [], kind, (), fan_in, int(module.hidden_size)
                )
            (row.weights if m.group(1) == "weight" else row.biases).append(p)
            row.names.append(_join(path, pname))
            if m.group(2) == "ih":
                row.shape = tuple(int(s) for s in p.shape) if m.group(1) == "weight" else row.shape
            taken.add(pname)
        rows += list(cells.values())
    elif isinstance(module, nn.MultiheadAttention):
        weights = [k for k in _MHA_WEIGHTS if k in own]
        if weights:
            biases = [k for k in ("in_proj_bias", "bias_k", "bias_v") if k in own]
            e = int(module.embed_dim)
            row = Layer(
                _join(label, "in_proj"),
                None,
                [own[k] for k in weights],
                [own[k] for k in biases],
                kind,
                (3 * e, e),
                e,
                3 * e,
            )
            row.names = [_join(path, k) for k in (*weights, *biases)]
            rows.append(row)
            taken.update(weights, biases)
    elif is_weight_layer(module) or is_norm(module):
        weight = own.get("weight")
        bias = own.get("bias")
        if weight is not None:
            fan_in, fan_out = _fans(module, weight)
            row = Layer(
                label,
                module,
                [weight],
                [bias] if bias is not None else [],
                kind,
                tuple(int(s) for s in weight.shape),
                fan_in,
                fan_out,
                vector=weight.dim() < 2,
            )
            row.names = [_join(path, k) for k in ("weight", "bias") if own.get(k) is not None]
            rows.append(row)
            taken.update({"weight", "bias"} & set(own))
    for pname, p in own.items():
        if pname in taken:
            continue
        fan_in, fan_out = _fans(nn.Module(), p)
        row = Layer(
            _join(path, pname),
            None,
            [p],
            [],
            "Parameter",
            tuple(int(s) for s in p.shape),
            fan_in,
            fan_out,
            vector=p.dim() < 2,
        )
        row.names = [_join(path, pname)]
        rows.append(row)
    return rows


def find_layers(
    model: nn.Module,
    include: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
) -> Rows:
    """The rows of ``model`` (see the module docstring) in registration order, each tied
    parameter once; rows named by ``include`` (default: all) and not by ``exclude`` (fnmatch
    patterns on row names) are watched, the others' parameters are listed as excluded.
    Frozen parameters (``requires_grad=False``) receive no gradient and are in no row."""
    inc, exc = _patterns(include), _patterns(exclude)
    pairs = pair_activations(model)
    rows: list[Layer] = []
    for order, (path, module) in enumerate(model.named_modules(remove_duplicate=False)):
        own = {k: p for k, p in _own(module).items() if p.requires_grad}
        if not own:
            continue
        for row in _rows_of(path, module, own):
            row.order, row.owners = order, [row.name]
            if row.module is not None and row.module in pairs:
                row.activation, row.act_module = pairs[row.module]
            rows.append(row)
    rows = _inputs_first(_merge_shared(rows))
    layers, excluded = [], []
    for row in rows:
        if (inc is not None and not _matches(row.name, inc)) or (
            exc is not None and _matches(row.name, exc)
        ):
            excluded += row.names
        else:
            layers.append(row)
    return Rows(layers, excluded)


def _merge_shared(rows: list[Layer]) -> list[Layer]:
    """Rows that share a parameter (tied weights; a module registered under two paths) made
    one, named by every owner, at the place of the last; the last owner's module and
    description are kept, as the head is the layer whose output the rules start from."""
    merged: list[Layer] = []
    by_param: dict[int, Layer] = {}
    for row in rows:
        into = next(
            (by_param[id(p)] for p in (*row.weights, *row.biases) if id(p) in by_param), None
        )
        if into is None:
            merged.append(row)
            for p in (*row.weights, *row.biases):
                by_param[id(p)] = row
            continue
        seen = {id(p) for p in (*into.weights, *into.biases)}
        into.weights += [p for p in row.weights if id(p) not in seen]
        into.biases += [p for p in row.biases if id(p) not in seen]
        into.names += [n for n in row.names if n not in into.names]
        if row.name not in into.owners:
            into.owners.append(row.name)
        into.order = row.order
        if row.module is not None:
            into.module, into.kind = row.module, row.kind
            into.fan_in, into.fan_out, into.shape = row.fan_in, row.fan_out, row.shape
            into.activation, into.act_module = row.activation, row.act_module
        for p in (*into.weights, *into.biases):
            by_param[id(p)] = into
    for row in merged:
        if len(row.owners) > 1:
            row.name = "=".join(row.owners)
            row.tied = tuple(row.owners)
    merged.sort(key=lambda r: r.order)
    return merged


def _inputs_first(rows: list[Layer]) -> list[Layer]:
    """Embeddings registered after every other row moved to the front, in their order:
    pytorch/examples' ``TransformerModel`` registers its ``input_emb`` after the encoder and
    the output layer. A lookup table is where the input comes in, never the output layer that
    the rules compare the others with; an embedding tied to the head is the head's row and
    stays; a model of nothing but embeddings keeps its order."""
    trailing = 0
    for row in reversed(rows):
        if row.tied or not isinstance(row.module, nn.Embedding | nn.EmbeddingBag):
            break
        trailing += 1
    if trailing in (0, len(rows)):
        return rows
    return rows[-trailing:] + rows[:-trailing]


def architecture(layers: Sequence[Layer]) -> str:
    """``"784-512-512-10"`` for a chain of ``Linear`` layers whose widths meet, else
    ``"N layers"``."""
    layers = [layer for layer in layers if not layer.vector]
    chain = all(layer.kind == "Linear" for layer in layers) and all(
        a.fan_out == b.fan_in for a, b in itertools.pairwise(layers)
    )
    if layers and chain:
        return "-".join(str(s) for s in [layers[0].fan_in, *(layer.fan_out for layer in layers)])
    return f"{len(layers)} layer" + ("" if len(layers) == 1 else "s")


def switches(model: nn.Module, layers: Sequence[Layer]) -> str:
    """The header's ``switches``, in the form of bpmon's own (``"2-8-8-4-1 relu +bn"``), ending
    in ``torch``: the hidden activation when the hidden layers share one, ``+bn`` when the model
    has normalisation layers (recognised by :func:`is_norm`, so a hand-written LayerNorm
    counts)."""
    parts = [architecture(layers)]
    layers = [layer for layer in layers if not layer.vector]
    hidden = {layer.activation for layer in layers[:-1]}
    if len(layers) > 1 and len(hidden) == 1 and None not in hidden:
        parts.append(str(hidden.pop()))
    if any(is_norm(m) for m in model.modules()):
        parts.append("+bn")
    parts.append("torch")
    return " ".join(parts)
