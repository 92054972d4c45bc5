"""A small GPT as nanoGPT writes it (pre-LayerNorm blocks, its own LayerNorm class with raw
Parameters, ``wte`` tied to ``lm_head``), for the bridge's benchmark and tests. PyTorch is
imported by the caller: this module needs it."""

from __future__ import annotations

import math

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
    """``layers`` blocks of width ``d`` over a ``vocab``-token alphabet, context ``block``."""

    def __init__(
        self, vocab: int = 32, d: int = 16, layers: int = 2, block: int = 8, heads: int = 2
    ) -> None:
        super().__init__()
        self.transformer = nn.ModuleDict(
            {
                "wte": nn.Embedding(vocab, d),
                "wpe": nn.Embedding(block, d),
                "h": nn.ModuleList(Block(d, heads) for _ in range(layers)),
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
