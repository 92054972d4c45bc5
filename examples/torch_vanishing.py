"""The debugging night in PyTorch: a deep sigmoid MLP whose first layers starve.

    python examples/torch_vanishing.py runs/torch_vanishing.jsonl [--steps 2000]
    bpmon watch runs/torch_vanishing.jsonl          # in another terminal, while it runs

64-32x6-10 with sigmoid hidden layers on bpmon's bundled 8x8 digits (standardised, 20% held
out), initialised like the story's code (weights ``randn * 0.1``, zero biases), softmax +
cross-entropy, plain SGD at lr 0.5 on mini-batches of 64: the network of bpmon's
``sigmoid-vanishing`` preset. On the way back every sigmoid multiplies the error signal by at
most 0.25 and every small weight matrix shrinks it again, so the first layers receive almost
nothing: the run file's lines show layers 0-3 ``vanishing`` while the loss sits near ln 10.
"""

from __future__ import annotations

import argparse
import math

import torch
from torch import nn

from bpmon.config import DataConfig
from bpmon.data import load_dataset
from bpmon.torch import watch

HIDDEN = (32,) * 6


def build(n_in: int, n_out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    sizes = (n_in, *HIDDEN, n_out)
    for i in range(len(sizes) - 1):
        linear = nn.Linear(sizes[i], sizes[i + 1])
        with torch.no_grad():
            linear.weight.normal_(0.0, 0.1)  # the story's randn * 0.1
            linear.bias.zero_()
        layers.append(linear)
        if i < len(sizes) - 2:
            layers.append(nn.Sigmoid())
    return nn.Sequential(*layers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default="runs/torch_vanishing.jsonl")
    parser.add_argument("--steps", type=int, default=2000, help="SGD updates (default 2000)")
    parser.add_argument("--every", type=int, default=50, help="measure every N updates")
    args = parser.parse_args()

    # Layers of 32 units are too small to split across threads: handing each product to a
    # thread pool costs more than it saves (10x slower on a busy 2-core machine).
    torch.set_num_threads(1)
    torch.manual_seed(0)
    data = load_dataset(DataConfig(name="digits", standardize=True, test_fraction=0.2))
    X = torch.tensor(data.X_train, dtype=torch.float32)
    y = torch.tensor(data.y_train.argmax(axis=1))
    assert data.X_test is not None and data.y_test is not None
    X_test = torch.tensor(data.X_test, dtype=torch.float32)
    y_test = torch.tensor(data.y_test.argmax(axis=1))

    model = build(X.shape[1], data.n_outputs)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    loss_fn = nn.CrossEntropyLoss()
    batches = math.ceil(len(X) / 64)

    with watch(model, args.path, every=args.every) as mon:
        for step in range(args.steps):
            epoch, b = divmod(step, batches)
            if b == 0:
                order = torch.randperm(len(X))
            idx = order[b * 64 : (b + 1) * 64]
            logits = model(X[idx])
            loss = loss_fn(logits, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            # Tensors: read by the monitor on the steps it measures, never on the others.
            accuracy = (logits.argmax(dim=1) == y[idx]).float().mean()
            mon.log(loss=loss, accuracy=accuracy, epoch=epoch)
            if (step + 1) % 500 == 0:
                with torch.no_grad():
                    test = (model(X_test).argmax(dim=1) == y_test).float().mean()
                mon.log(test_accuracy=test)
    print(f"wrote {args.path}: {args.steps} steps; bpmon replay {args.path}")


if __name__ == "__main__":
    main()
