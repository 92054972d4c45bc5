"""The Lightning model and data of tests/test_lightning.py, and its DDP run as a script:
``python tests/_lightning_case.py DIR`` fits with ``strategy="ddp"`` on 2 CPU processes (gloo;
Lightning starts rank 1 by running this script again) and each rank writes DIR/rank-R.json
saying whether its monitor was active, after the fit and before the process ends.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn

BATCH = 8


def data(n: int = 256) -> torch.utils.data.TensorDataset:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 6, generator=g)
    y = (x[:, :1] * x[:, 1:2] + torch.sin(x[:, 2:3])).repeat(1, 2)
    return torch.utils.data.TensorDataset(x, y)


def net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 2)
    )


class Regressor(pl.LightningModule):  # type: ignore[misc]
    def __init__(self, lr: float = 0.05) -> None:
        super().__init__()
        self.net = net()
        self.lr = lr

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # type: ignore[no-any-return]

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)


def loader(shuffle: bool = False) -> torch.utils.data.DataLoader[Any]:
    return torch.utils.data.DataLoader(data(), batch_size=BATCH, shuffle=shuffle)


def trainer(**kwargs: Any) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,
    )


def ddp(out: Path) -> None:
    from bpmon.lightning import BpmonCallback

    torch.set_num_threads(1)
    callback = BpmonCallback(out / "run.jsonl", every=2)
    fit = trainer(
        strategy="ddp", devices=2, max_steps=6, num_sanity_val_steps=0, callbacks=[callback]
    )
    fit.fit(Regressor(), loader(), loader())
    rank = fit.global_rank
    active = callback.monitor is not None and callback.monitor.active
    (out / f"rank-{rank}.json").write_text(json.dumps({"rank": rank, "active": active}))


if __name__ == "__main__":
    ddp(Path(sys.argv[1]))
