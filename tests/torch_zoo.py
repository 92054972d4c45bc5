"""Small models of the kinds people train, shared by the PyTorch bridge's tests: each builds in
milliseconds and takes a batch from :func:`batch_for`."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F


class LayerNorm(nn.Module):
    """nanoGPT's own LayerNorm: raw Parameters, an optional bias, not torch's class."""

    def __init__(self, ndim: int, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class Block(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln_1 = LayerNorm(d)
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)
        self.ln_2 = LayerNorm(d, bias=False)
        self.c_fc = nn.Linear(d, 4 * d)
        self.gelu = nn.GELU()
        self.mlp_proj = nn.Linear(4 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.c_proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.mlp_proj(self.gelu(self.c_fc(self.ln_2(x))))


class GPT(nn.Module):
    """A pre-LayerNorm GPT as nanoGPT writes it, with ``wte`` and ``lm_head`` tied."""

    def __init__(self, vocab: int = 32, d: int = 16, layers: int = 2, block: int = 8) -> None:
        super().__init__()
        self.transformer = nn.ModuleDict(
            {
                "wte": nn.Embedding(vocab, d),
                "wpe": nn.Embedding(block, d),
                "h": nn.ModuleList(Block(d, 2) for _ in range(layers)),
                "ln_f": LayerNorm(d),
            }
        )
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.transformer["wte"].weight = self.lm_head.weight  # tied, as nanoGPT does
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * layers))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = self.transformer
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = t["wte"](idx) + t["wpe"](pos)
        for block in t["h"]:
            x = block(x)
        return self.lm_head(t["ln_f"](x))  # type: ignore[no-any-return]


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
