"""Which modules of a PyTorch model are watched, what each is called, and which activation
follows it: everything the bridge decides once, at :func:`~bpmon.torch.watch` time.

A *weight layer* is a leaf module with a ``weight`` parameter of two or more dimensions
(``Linear``, convolutions, ``Embedding``, and anything built like them). One-dimensional
weights are left out on purpose: they are per-feature scales (norm layers, ``PReLU``), whose
gradient norm is not comparable with a weight matrix's and is not what "this layer learns" means.

Norm layers are not rows of their own. They are grouped with the weight layer before them, as
bpmon's engine groups batch-norm with its Dense layer: the row's figures are the weight layer's,
and an activation after the norm layer (``Linear -> BatchNorm1d -> ReLU``) is the row's
activation. Dropout and ``Identity`` are skipped over the same way; any other leaf module
between a weight layer and an activation means the activation is not the layer's.

The pairing walks ``model.named_modules(remove_duplicate=False)``: registration order, which
is the order an ``nn.Sequential`` runs in and the order most ``__init__`` methods list their
layers in. One activation object listed at several places (``Sequential(l1, relu, l2, relu)``)
follows each layer listed before it. One registered once (``self.act``) but called after
several layers in ``forward`` follows only the layer registered just before it; at run time the
monitor credits a call only when that layer's forward ran just before it (see
:mod:`bpmon.torch.monitor`), so the other calls cannot pass for it.
"""

from __future__ import annotations

import fnmatch
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

# The names are bpmon's activation names (bpmon.config.ACTIVATIONS), plus "gelu".
# LeakyReLU is not a subclass of ReLU, so the order here does not matter; it is kept explicit.
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
# Shape-preserving modules that sit between a layer and its activation without changing whose
# activation it is.
_TRANSPARENT: tuple[type[nn.Module], ...] = (*_NORMS, nn.modules.dropout._DropoutNd, nn.Identity)


@dataclass(frozen=True, eq=False)
class Layer:
    """One watched weight layer.

    ``fan_in``/``fan_out`` follow bpmon's ``(fan_in, fan_out)`` reading of a layer, inputs then
    outputs: ``Linear`` ``(in_features, out_features)`` (torch stores the weight as
    ``(out, in)``), convolutions ``(in_channels, out_channels)``, ``Embedding``
    ``(num_embeddings, embedding_dim)``, anything else ``(numel / shape[0], shape[0])``.
    ``shape`` is the weight's shape as torch stores it.
    """

    name: str
    module: nn.Module
    weight: nn.Parameter
    bias: nn.Parameter | None
    kind: str
    shape: tuple[int, ...]
    fan_in: int
    fan_out: int
    activation: str | None
    act_module: nn.Module | None

    def description(self) -> dict[str, Any]:
        """The header's entry for this layer (see :mod:`bpmon.runfile`)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "shape": list(self.shape),
            "fan_in": self.fan_in,
            "fan_out": self.fan_out,
            "activation": self.activation,
        }


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


def is_weight_layer(module: nn.Module) -> bool:
    weight = getattr(module, "weight", None)
    return (
        isinstance(weight, nn.Parameter)
        and weight.dim() >= 2
        and not isinstance(module, _NORMS)
        and next(module.children(), None) is None
    )


def is_norm(module: nn.Module) -> bool:
    return isinstance(module, _NORMS)


def _fans(module: nn.Module, weight: torch.Tensor) -> tuple[int, int]:
    shape = tuple(weight.shape)
    if isinstance(module, nn.modules.conv._ConvNd):
        return int(module.in_channels), int(module.out_channels)
    if isinstance(module, nn.Embedding | nn.EmbeddingBag):
        return int(shape[0]), int(shape[1])
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
            if isinstance(nxt, _TRANSPARENT):
                continue
            name = activation_name(nxt)
            if name is not None:
                pairs[module] = (name, nxt)
            break
    return pairs


def find_layers(
    model: nn.Module,
    include: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
) -> list[Layer]:
    """The watched layers of ``model`` in ``named_modules()`` order: weight layers whose weight
    requires a gradient (frozen layers receive none), matched by ``include`` (default: all)
    and not by ``exclude``. A module reachable under two names is watched once."""
    inc, exc = _patterns(include), _patterns(exclude)
    pairs = pair_activations(model)
    layers = []
    for name, module in model.named_modules():
        if not is_weight_layer(module):
            continue
        weight = module.weight
        assert isinstance(weight, nn.Parameter)  # is_weight_layer checked it
        if not weight.requires_grad:
            continue
        if inc is not None and not _matches(name, inc):
            continue
        if exc is not None and _matches(name, exc):
            continue
        bias = getattr(module, "bias", None)
        act, act_module = pairs.get(module, (None, None))
        fan_in, fan_out = _fans(module, weight)
        layers.append(
            Layer(
                name=name or type(module).__name__,
                module=module,
                weight=weight,
                bias=bias if isinstance(bias, nn.Parameter) and bias.requires_grad else None,
                kind=type(module).__name__,
                shape=tuple(int(s) for s in weight.shape),
                fan_in=fan_in,
                fan_out=fan_out,
                activation=act,
                act_module=act_module,
            )
        )
    return layers


def architecture(layers: Sequence[Layer]) -> str:
    """``"784-512-512-10"`` for a chain of ``Linear`` layers whose widths meet, else
    ``"N layers"``."""
    chain = all(layer.kind == "Linear" for layer in layers) and all(
        a.fan_out == b.fan_in for a, b in itertools.pairwise(layers)
    )
    if layers and chain:
        return "-".join(str(s) for s in [layers[0].fan_in, *(layer.fan_out for layer in layers)])
    return f"{len(layers)} layer" + ("" if len(layers) == 1 else "s")


def switches(model: nn.Module, layers: Sequence[Layer]) -> str:
    """The header's ``switches``, in the form of bpmon's own (``"2-8-8-4-1 relu +bn"``), ending
    in ``torch``: the hidden activation when the hidden layers share one, ``+bn`` when the model
    has norm layers."""
    parts = [architecture(layers)]
    hidden = {layer.activation for layer in layers[:-1]}
    if len(layers) > 1 and len(hidden) == 1 and None not in hidden:
        parts.append(str(hidden.pop()))
    if any(is_norm(m) for m in model.modules()):
        parts.append("+bn")
    parts.append("torch")
    return " ".join(parts)
