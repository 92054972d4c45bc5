"""One rank of the FSDP2 test (tests/test_fsdp.py): ``python tests/_fsdp_worker.py RANK WORLD DIR``.

Trains a small MLP sharded with ``fully_shard`` over ``WORLD`` gloo processes (the ranks meet
through a file store in DIR), each on its half of one fixed batch, watched by bpmon
(``every=2``). Rank 0's run file is DIR/run.jsonl. Each rank writes DIR/done-RANK after training
and ``close()``, before the process group is torn down: the test judges the training by these,
because a teardown abort after them is a known gloo/FSDP2 exit-time fault, not bpmon's.

With ``--time N`` it instead times N updates with and without the monitor and N calls of the
all-reduce alone, and rank 0 prints them as JSON (the cost reported in the README/notes).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

STEPS = 5
EVERY = 2  # due updates 1, 2, 4: the weight copy both kept (1 -> 2) and made afresh (4)
BATCH = 16


def build() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """The model (same initial weights in every process) and the whole batch."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(8, 16),
        nn.ReLU(),
        nn.Linear(16, 16, bias=False),
        nn.LayerNorm(16),
        nn.Tanh(),
        nn.Linear(16, 5),  # 5 output rows: uneven shards over 2 ranks
    )
    x = torch.randn(BATCH, 8)
    y = torch.randn(BATCH, 5)
    return model, x, y


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, path: Path | None) -> None:
    """STEPS Adam updates on (x, y), watched when ``path`` is given, the loss logged."""
    from bpmon.torch import watch

    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    mon = watch(model, path, every=EVERY, optimizer=opt) if path is not None else None
    for _ in range(STEPS):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        if mon is not None:
            mon.log(loss=loss)
    if mon is not None:
        mon.close()


def shard(model: nn.Module) -> None:
    from torch.distributed.fsdp import fully_shard

    for module in model:
        if isinstance(module, nn.Linear):
            fully_shard(module)
    fully_shard(model)


def timing(rank: int, world: int, n: int) -> None:
    """Seconds per update without and with the monitor (every=1: every update pays the
    all-reduce), and per call of the all-reduce alone."""
    from bpmon.torch import watch

    model, x, y = build()
    shard(model)
    part = x.chunk(world)[rank], y.chunk(world)[rank]
    opt = torch.optim.Adam(model.parameters(), lr=0.001)

    def run(k: int) -> float:
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(k):
            opt.zero_grad()
            nn.functional.mse_loss(model(part[0]), part[1]).backward()
            opt.step()
        dist.barrier()
        return (time.perf_counter() - t0) / k

    run(5)
    plain = run(n)
    mon = watch(model, Path(sys.argv[3]) / "timing.jsonl", every=1, optimizer=opt)
    watched = run(n)
    shards = mon._shards
    assert shards is not None
    vec = torch.rand(4 * 3)
    dist.barrier()
    t0 = time.perf_counter()
    for _ in range(n):
        shards.whole(vec)
    reduce = (time.perf_counter() - t0) / n
    mon.close()
    if rank == 0:
        print(json.dumps({"plain_s": plain, "watched_every1_s": watched, "allreduce_s": reduce}))


def main() -> None:
    rank, world, out = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    torch.set_num_threads(1)  # two processes on a shared machine: one thread each
    dist.init_process_group(
        "gloo", init_method=f"file://{out / 'store'}", rank=rank, world_size=world
    )
    if "--time" in sys.argv:
        timing(rank, world, int(sys.argv[sys.argv.index("--time") + 1]))
    else:
        model, x, y = build()
        shard(model)
        train(model, x.chunk(world)[rank], y.chunk(world)[rank], out / "run.jsonl")
    (out / f"done-{rank}").write_text("ok", encoding="utf-8")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
