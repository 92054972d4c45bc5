"""Two processes, one run file: DistributedDataParallel (gloo, CPU) watched by bpmon.

    torchrun --nproc-per-node 2 examples/torch_ddp.py runs/ddp.jsonl [--steps 300]
    bpmon watch runs/ddp.jsonl                      # in another terminal, while it runs

Each rank trains on its half of every mini-batch of bpmon's bundled digits; DDP averages the
gradients across the ranks during ``backward()``. Every rank calls ``watch()``: rank 0 writes
the file, the others get a monitor that does nothing. The gradients rank 0 measures (in the
optimiser's step pre-hook) are the averaged ones, equal to those of one process on the whole
batch. The loss logged is rank 0's, on its half of the batch. Without torchrun the script runs
as one process.
"""

from __future__ import annotations

import argparse
import gc
import os

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from bpmon.config import DataConfig
from bpmon.data import load_dataset
from bpmon.torch import watch

BATCH = 128  # the global batch; each rank takes BATCH / world of it


def train(path: str, steps: int, every: int, rank: int, world: int) -> None:
    data = load_dataset(DataConfig(name="digits", standardize=True))
    X = torch.tensor(data.X_train, dtype=torch.float32)
    y = torch.tensor(data.y_train.argmax(axis=1))
    torch.manual_seed(0)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    model = nn.Sequential(
        nn.Linear(X.shape[1], 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)
    )
    net = DistributedDataParallel(model) if world > 1 else model
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(1)  # the same batches on every rank
    share = BATCH // world

    with watch(net, path, every=every) as mon:
        for step in range(steps):
            batch = torch.randint(0, len(X), (BATCH,), generator=generator)
            mine = batch[rank * share : (rank + 1) * share]
            loss = loss_fn(net(X[mine]), y[mine])
            opt.zero_grad()
            loss.backward()  # DDP averages the gradients across the ranks here
            opt.step()
            mon.log(loss=loss, epoch=step * BATCH // len(X))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default="runs/ddp.jsonl")
    parser.add_argument("--steps", type=int, default=300, help="SGD updates (default 300)")
    parser.add_argument("--every", type=int, default=20, help="measure every N updates")
    args = parser.parse_args()

    distributed = "WORLD_SIZE" in os.environ
    if distributed:
        dist.init_process_group("gloo")
    rank = dist.get_rank() if distributed else 0
    world = dist.get_world_size() if distributed else 1
    # Two processes share two cores: one thread each, or they fight over them.
    torch.set_num_threads(1)
    train(args.path, args.steps, args.every, rank, world)
    if distributed:
        # The DDP wrapper must be gone before its process group: left to the interpreter's
        # exit, torch 2.13's teardown aborted one run in about seven (SIGABRT, "terminate called
        # without an active exception") on a loaded 2-core machine; never once freed here.
        gc.collect()
        dist.destroy_process_group()
    if rank == 0:
        print(f"wrote {args.path}: {args.steps} steps on {world} process(es)")


if __name__ == "__main__":
    main()
