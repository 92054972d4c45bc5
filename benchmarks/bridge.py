"""What watching a PyTorch training costs: ``bpmon.torch.watch`` on a CPU MLP against the same
loop unwatched.

784-512-512-10 with ReLU, cross-entropy on batches of 128 random inputs, ``optim.SGD``. Three
contenders run the same loop, each on its own copy of the same initial weights:

- ``torch``: the loop as a user writes it;
- ``watch every=50``: the same loop with ``mon = watch(model, ..., every=50)`` before it and
  ``mon.log(loss=loss)`` in it, the two lines the bridge asks for; the monitor lives across the
  rounds, so each round of 50 steps holds 1 measured update, the steady-state share;
- ``watch every=1``: every update measured (a weight copy, the norms, the forward hooks and one
  read-back per step): the price of the finest setting, target 0.85x;
- ``watch every=50, update_norms=False``: the same as ``every=50`` without the pass over the
  gradients that every update makes for the per-update gradient-norm series and the spikes'
  context (the loss series stays): what that pass costs on this MLP, whose 2.7 MB of gradients
  are large against its 5 ms of compute.

Every watched contender has the per-update series and the spike score on (the defaults).

And a small GPT as nanoGPT writes it (:mod:`benchmarks.gpt`: 4 blocks of width 64, context 64,
tied head, its own LayerNorm), AdamW with ``clip_grad_norm_(1.0)`` looked up at call time as
nanoGPT does, unwatched against ``watch(every=50)``, target 0.97x. While any monitor is open
the clipping function is bpmon's wrapper for every caller, the unwatched GPT too (it finds no
watched parameter and calls the original): that cost is on both sides and not in the ratio.

How it is timed, and why: PyTorch runs at one intra-op thread, so that a step's whole work
(forward, autograd's CPU backward, the optimiser, the bridge's hooks) runs on the calling
thread, and each round's rate is steps per second of that thread's CPU time
(``time.thread_time``). The figure is the CPU the bridge adds to a step. Wall-clock rates on
the 2-core machine these were developed on, shared with other jobs, moved by 20-40% from round
to round (PyTorch's two-thread pool: 2-10x), far more than the 1-3% being measured; the
wall-clock ratios are kept in the JSON's details for comparison.

The target for ``every=50`` is 0.97x: an update that is not due costs a few Python calls (the
optimiser's hooks; the clipping wrapper), and a due one a few passes over the weights, spread
over 50.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks import torchnet
from benchmarks.harness import (
    Figure,
    Settings,
    comparison,
    interleave,
    median,
    paired_ratio,
    skipped_comparison,
)

if TYPE_CHECKING:
    import torch

SIZES = (784, 512, 512, 10)
BATCH = 128
LR = 0.01
TITLE_50 = "torch MLP 784-512-512-10, batch 128, SGD: watch(every=50) vs unwatched"
TITLE_1 = "torch MLP 784-512-512-10, batch 128, SGD: watch(every=1) vs unwatched"
TITLE_LOSS = (
    "torch MLP 784-512-512-10, batch 128, SGD: watch(every=50, update_norms=False) vs unwatched"
)


def _model() -> torch.nn.Sequential:
    import torch
    from torch import nn

    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for i in range(len(SIZES) - 1):
        layers.append(nn.Linear(SIZES[i], SIZES[i + 1]))
        if i < len(SIZES) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


GPT_TITLE_50 = (
    "torch GPT 4x64 (nanoGPT-style, tied head), batch 8x64, AdamW + clip 1.0: "
    "watch(every=50) vs unwatched"
)
GPT_TITLE_TRACE = (
    "torch GPT 4x64, batch 8x64, AdamW + clip 1.0: watch(every=50, nan_trace=True) vs unwatched"
)
_NAMES = (
    "bridge_every50_vs_torch",
    "bridge_every1_vs_torch",
    "bridge_gpt_every50_vs_torch",
    "bridge_gpt_nan_trace_vs_torch",
    "bridge_every50_loss_only_vs_torch",
)


def _gpt() -> torch.nn.Module:
    import torch

    from benchmarks.gpt import GPT

    torch.manual_seed(0)
    return GPT(vocab=65, d=64, layers=4, block=64, heads=4)


def run(settings: Settings) -> list[Figure]:
    if not torchnet.available():
        return [
            skipped_comparison(_NAMES[0], TITLE_50, "steps/CPU-s", 0.97, torchnet.NO_TORCH),
            skipped_comparison(_NAMES[1], TITLE_1, "steps/CPU-s", 0.85, torchnet.NO_TORCH),
            skipped_comparison(_NAMES[2], GPT_TITLE_50, "steps/CPU-s", 0.97, torchnet.NO_TORCH),
            skipped_comparison(_NAMES[3], GPT_TITLE_TRACE, "steps/CPU-s", 0.5, torchnet.NO_TORCH),
            skipped_comparison(_NAMES[4], TITLE_LOSS, "steps/CPU-s", 0.97, torchnet.NO_TORCH),
        ]
    import torch
    from torch import nn

    from bpmon.torch import watch

    steps = settings.scale(50, 4)
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(BATCH, SIZES[0], generator=generator)
    y = torch.randint(0, SIZES[-1], (BATCH,), generator=generator)
    tokens = torch.randint(0, 65, (8, 65), generator=generator)
    loss_fn = nn.CrossEntropyLoss()
    # Per contender: the wall-clock rate of each round, and every step's CPU time (ns).
    wall: dict[str, list[float]] = {}
    step_ns: dict[str, list[int]] = {}

    def mlp_step(model: nn.Module, opt: torch.optim.Optimizer) -> torch.Tensor:
        loss = loss_fn(model(X), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    def gpt_step(model: nn.Module, opt: torch.optim.Optimizer) -> torch.Tensor:
        logits = model(tokens[:, :-1])
        loss = loss_fn(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # as nanoGPT: looked up here
        opt.step()
        return loss

    with tempfile.TemporaryDirectory(prefix="bpmon-bridge-") as tmp:
        monitors = []

        def contender(
            name: str,
            every: int | None,
            gpt: bool = False,
            nan_trace: bool = False,
            norms: bool = True,
        ) -> Callable[[], float]:
            wall[name], step_ns[name] = [], []
            model = _gpt() if gpt else _model()
            opt: torch.optim.Optimizer = (
                torch.optim.AdamW(model.parameters(), lr=1e-3)
                if gpt
                else torch.optim.SGD(model.parameters(), lr=LR)
            )
            one_step = gpt_step if gpt else mlp_step
            mon = None
            if every is not None:
                path = Path(tmp) / f"{name}.jsonl"
                mon = watch(
                    model,
                    path,
                    every=every,
                    optimizer=opt,
                    nan_trace=nan_trace,
                    update_norms=norms,
                )
                monitors.append((name, mon))

            def one_round() -> float:
                t0, cpu = time.perf_counter(), 0
                for _ in range(steps):
                    c0 = time.thread_time_ns()
                    loss = one_step(model, opt)
                    if mon is not None:
                        mon.log(loss=loss)
                    took = time.thread_time_ns() - c0
                    step_ns[name].append(took)
                    cpu += took
                wall[name].append(steps / (time.perf_counter() - t0))
                return steps / (cpu / 1e9)

            return one_round

        contenders = {
            "torch": contender("torch", None),
            "watch-every50": contender("watch-every50", 50),
            "watch-every1": contender("watch-every1", 1),
            "watch-every50-loss": contender("watch-every50-loss", 50, norms=False),
            "torch-gpt": contender("torch-gpt", None, gpt=True),
            "watch-gpt-every50": contender("watch-gpt-every50", 50, gpt=True),
            # nan_trace: every update checked for the first NaN (bpmon.torch.nonfinite); no
            # target, its cost is documented (docs/torch-bridge.md).
            "watch-gpt-nan-trace": contender("watch-gpt-nan-trace", 50, gpt=True, nan_trace=True),
        }
        with torchnet.threads(1):
            samples = interleave(contenders, settings.scale(41, 1), settings.warmup)
        lines = {}
        for name, mon in monitors:
            mon.close()
            text = (Path(tmp) / f"{name}.jsonl").read_text(encoding="utf-8")
            lines[name] = len(text.splitlines())

    note = (
        f"steps per second of the training thread's CPU time, PyTorch at 1 thread; rounds of "
        f"{steps} steps, interleaved in one run, median of per-round ratios"
    )
    cases = (
        (_NAMES[0], TITLE_50, "watch-every50", "torch", 0.97, 50),
        (_NAMES[1], TITLE_1, "watch-every1", "torch", 0.85, 1),
        (_NAMES[2], GPT_TITLE_50, "watch-gpt-every50", "torch-gpt", 0.97, 50),
        (_NAMES[3], GPT_TITLE_TRACE, "watch-gpt-nan-trace", "torch-gpt", 0.5, 50),
        (_NAMES[4], TITLE_LOSS, "watch-every50-loss", "torch", 0.97, 50),
    )
    figures = []
    for key, title, mine, base, target, every in cases:
        fig = comparison(key, title, "steps/CPU-s", samples, mine, base, target, "unwatched", note)
        fig.details = {
            "sizes": list(SIZES) if base == "torch" else "GPT vocab 65, d 64, 4 blocks, T 64",
            "batch": BATCH if base == "torch" else 8,
            "steps_per_round": steps,
            "run_file_lines": lines,
            "wall_clock_ratio": paired_ratio(wall[mine], wall[base]),
            "wall_clock_steps_per_s": {mine: wall[mine], base: wall[base]},
            **_per_step(step_ns[base], step_ns[mine], every),
        }
        if mine == "watch-gpt-nan-trace":
            fig.details["ratio_vs_watch_every50"] = paired_ratio(
                samples[mine], samples["watch-gpt-every50"]
            )
        figures.append(fig)
    return figures


def _per_step(bare: list[int], watched: list[int], every: int) -> dict[str, float]:
    """A second estimate, from medians of single steps (robust to the bursts of load that move
    whole rounds): the CPU time of an unwatched step, of a watched step that is not due and of
    a due one, and the ratio they imply, ``bare / (not_due + (due - not_due) / every)``."""
    # Step k of the watched loop (from 1) is due when k == 1 or k % every == 0; the warm-up
    # round's steps are in the lists too, so the count runs over all of them.
    due = [t for k, t in enumerate(watched, start=1) if k == 1 or k % every == 0]
    rest = [t for k, t in enumerate(watched, start=1) if not (k == 1 or k % every == 0)]
    ms = 1e-6
    bare_ms = median(bare) * ms
    due_ms = median(due) * ms
    rest_ms = median(rest) * ms if rest else due_ms
    return {
        "median_step_ms_unwatched": bare_ms,
        "median_step_ms_not_due": rest_ms,
        "median_step_ms_due": due_ms,
        "ratio_from_step_medians": bare_ms / (rest_ms + (due_ms - rest_ms) / every),
    }
