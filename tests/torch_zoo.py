"""Small models of the kinds people train, shared by the PyTorch bridge's tests: each builds in
milliseconds and takes a batch from :func:`batch_for`."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from benchmarks.gpt import GPT

__all__ = ["GPT", "ZOO", "batch_for", "loss_of"]


class LSTMModel(nn.Module):
    def __init__(self, rnn: type[nn.RNNBase] = nn.LSTM, bidirectional: bool = False) -> None:
        super().__init__()
        self.encoder = nn.Embedding(20, 8)
        self.rnn = rnn(8, 12, num_layers=2, batch_first=True, bidirectional=bidirectional)
        self.decoder = nn.Linear(12 * (2 if bidirectional else 1), 20)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.encoder(idx))
        return self.decoder(out)  # type: ignore[no-any-return]


class Raw(nn.Module):
    """Raw Parameters held by a module that also has children."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(6, 8) * 0.3)
        self.scale = nn.Parameter(torch.ones(8))
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(x @ self.w) * self.scale)  # type: ignore[no-any-return]


class Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(20, 16)
        layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(16, 20)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.emb(idx)))  # type: ignore[no-any-return]


def cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10)
    )


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))


ZOO: dict[str, Callable[[], nn.Module]] = {
    "mlp": mlp,
    "cnn": cnn,
    "lstm": LSTMModel,
    "gru": lambda: LSTMModel(nn.GRU, bidirectional=True),
    "transformer": Encoder,
    "gpt": GPT,
    "raw": Raw,
}


def batch_for(name: str, n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """An input batch and class targets for the model ``name`` of :data:`ZOO`."""
    g = torch.Generator().manual_seed(0)
    if name == "mlp":
        return torch.randn(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g)
    if name == "raw":
        return torch.randn(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g)
    if name == "cnn":
        return torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)
    vocab = 32 if name == "gpt" else 20
    idx = torch.randint(0, vocab, (n, 8), generator=g)
    return idx, torch.randint(0, vocab, (n, 8), generator=g)


def loss_of(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    out = model(x)
    return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
