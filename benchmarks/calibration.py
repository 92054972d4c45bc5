"""The findings' calibration set: small real PyTorch models, healthy and broken, watched by
:func:`bpmon.torch.watch` into run files and diagnosed in file order with the diagnosis's
hysteresis, exactly as ``bpmon watch`` would.

``python -m benchmarks.calibration`` trains every case (CPU, one thread, about half a minute)
and prints the table rule x run the README shows; ``tests/test_calibration.py`` checks its two
targets: no finding of warning or error severity at any snapshot of a healthy run, and on a
broken run the rule that names its cause standing within the first 20% of its updates.

The models are small versions of what people train (a pre-LayerNorm GPT with tied embeddings
in nanoGPT's style, a CNN with batch-norm, pytorch/examples' 2-layer LSTM language model with
hand-written SGD and clipping, an MLP); every case is seeded, so a run file is the same on every
machine up to floating-point reduction order.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bpmon.codec import field_reader, from_record
from bpmon.diagnosis import Diagnosis
from bpmon.finding import Finding
from bpmon.runfile import check_header, denum, layer_from_record, parse_line
from bpmon.runmodel import NonFinite
from bpmon.telemetry import LayerStats
from bpmon.trainer import Snapshot

if TYPE_CHECKING:
    import torch
    from torch import nn

# Measured every EVERY-th update: 60 snapshots over a run of UPDATES.
UPDATES = 240
EVERY = 4
# The broken runs' target: the rule that names the cause stands within this share of the run.
EARLY = 0.2
SERIOUS = ("warning", "error")


@dataclass(frozen=True)
class Case:
    """One calibration run. ``rules``: the findings that name the cause of a broken run (any
    one of them counts), and ``action``: the action id such a finding must offer first, the
    fix for that cause; both empty for a healthy run."""

    name: str
    family: str
    broken: str
    train: Callable[[Path], None]
    rules: frozenset[str] = frozenset()
    action: str = ""

    @property
    def healthy(self) -> bool:
        return not self.rules


@dataclass(frozen=True)
class Outcome:
    """What the diagnosis said on one case's run file, snapshot by snapshot."""

    case: Case
    path: Path
    updates: int
    steps: tuple[int, ...]
    findings: tuple[tuple[Finding, ...], ...]

    def first(self, rule: str) -> int | None:
        """The first update at which ``rule`` stood, or None."""
        for step, found in zip(self.steps, self.findings, strict=True):
            if any(f.rule == rule for f in found):
                return step
        return None

    def serious(self) -> list[tuple[int, Finding]]:
        """Every (update, finding) of warning or error severity."""
        return [
            (step, f)
            for step, found in zip(self.steps, self.findings, strict=True)
            for f in found
            if f.severity in SERIOUS
        ]

    def caught(self) -> tuple[int, Finding] | None:
        """The first (update, finding) that names the cause: one of the case's rules offering
        its action first, within the first :data:`EARLY` of the updates."""
        for step, found in zip(self.steps, self.findings, strict=True):
            if step > EARLY * self.updates:
                return None
            for f in found:
                if f.rule in self.case.rules and f.actions[:1] == (self.case.action,):
                    return step, f
        return None


# -- reading a run file back -----------------------------------------------------------------------

_OPTIONAL = ("lrs", "grad_norm_total", "clip_max", "clip_factor", "clipped_share")
_SPIKES = field_reader(Snapshot, "spikes")


def snapshots(path: Path) -> list[Snapshot]:
    """The snapshot lines of a run file as :class:`Snapshot` objects, in file order, each with
    the loss curve up to its own line (as a replay's cursor shows it)."""
    lines = path.read_bytes().splitlines(keepends=True)
    head = check_header(parse_line(lines[0]), str(path))
    fields = {f.name for f in dataclasses.fields(Snapshot)}
    out: list[Snapshot] = []
    first: tuple[LayerStats, ...] | None = None
    steps: list[int] = []
    losses: list[float] = []
    for raw in lines[1:]:
        record = parse_line(raw)
        if record is None or "event" in record:
            continue
        step = int(record.get("step") or 0)
        loss = denum(record.get("loss"))
        steps.append(step)
        losses.append(loss)
        layers = tuple(layer_from_record(x) for x in record.get("layers") or ())
        # As the replay's reader: the first line's layers are the run's initial ones.
        first = layers if first is None else first
        extra: dict[str, Any] = {
            k: record[k] for k in _OPTIONAL if k in fields and record.get(k) is not None
        }
        if "lrs" in extra:
            extra["lrs"] = tuple(denum(v) for v in extra["lrs"])
        if isinstance(record.get("nonfinite"), dict):
            extra["nonfinite"] = from_record(NonFinite, record["nonfinite"])
        if record.get("spikes"):
            extra["spikes"] = _SPIKES(record["spikes"])  # the bridge's, as a reader decodes them
        out.append(
            Snapshot(
                run_id=int(record.get("run_id") or 0),
                preset=str(head.get("name") or path.stem),
                config=None,
                architecture=str(head.get("architecture") or ""),
                switches=str(head.get("switches") or ""),
                state=record.get("state") or "running",
                step=step,
                epoch=int(record.get("epoch") or 0),
                epochs=None,
                loss=loss,
                loss_steps=tuple(steps),
                loss_values=tuple(losses),
                previous_loss_steps=(),
                previous_loss_values=(),
                layers=layers,
                initial_layers=first,
                accuracy=None,
                test_accuracy=None,
                predictions=(),
                classes=(),
                steps_per_second=0.0,
                lr=denum(record.get("lr")),
                elapsed=denum(record.get("time")),
                thresholds=_thresholds(head),
                **extra,
            )
        )
    return out


def _thresholds(head: dict[str, Any]) -> Any:
    from bpmon.config import Thresholds

    th = head.get("thresholds")
    if not isinstance(th, dict):
        return Thresholds()
    return Thresholds(
        **{k: float(v) for k, v in th.items() if k in Thresholds.__dataclass_fields__}
    )


def diagnose(case: Case, folder: Path) -> Outcome:
    """Train ``case`` into ``folder`` and run the diagnosis over its snapshots in file order."""
    path = folder / f"{case.name.replace(' ', '-').replace('x', 'x')}.jsonl"
    case.train(path)
    diagnosis = Diagnosis()
    steps, found = [], []
    snaps = snapshots(path)
    for snap in snaps:
        steps.append(snap.step)
        found.append(diagnosis.add(snap))
    updates = max(steps, default=0)
    return Outcome(case, path, updates, tuple(steps), tuple(found))


# -- the models ------------------------------------------------------------------------------------


def _torch() -> Any:
    import torch

    torch.set_num_threads(1)
    return torch


def _digits(torch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    from bpmon.data.digits import digits

    X, y = digits()
    return torch.tensor(X, dtype=torch.float32), torch.tensor(y, dtype=torch.long)


def _batches(n: int, size: int, updates: int, torch: Any) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return [torch.randint(0, n, (size,), generator=g) for _ in range(updates)]


def _mlp_run(
    path: Path,
    *,
    widths: Sequence[int] = (64, 64, 64, 10),
    act: str = "relu",
    lr: float = 0.05,
    init_std: float | None = None,
    dead_bias: float | None = None,
) -> None:
    torch = _torch()
    from torch import nn

    from bpmon.torch import watch

    torch.manual_seed(0)
    acts: dict[str, Callable[[], nn.Module]] = {
        "relu": nn.ReLU,
        "tanh": nn.Tanh,
        "sigmoid": nn.Sigmoid,
    }
    mods: list[nn.Module] = []
    linears = []
    for a, b in itertools.pairwise(widths):
        lin = nn.Linear(a, b)
        linears.append(lin)
        mods.append(lin)
        mods.append(acts[act]())
    mods.pop()  # no activation after the output layer
    model = nn.Sequential(*mods)
    with torch.no_grad():
        if init_std is not None:
            for lin in linears:
                lin.weight.normal_(0.0, init_std)
        if dead_bias is not None:
            linears[1].bias.fill_(dead_bias)
    X, y = _digits(torch)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    with watch(model, path, every=EVERY) as mon:
        for idx in _batches(len(X), 32, UPDATES, torch):
            loss = loss_fn(model(X[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            mon.log(loss=loss)


class _CNN:
    @staticmethod
    def build() -> nn.Module:
        from torch import nn

        return nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(16 * 4 * 4, 10),
        )


def _mnist_cnn(dead_bias: float | None) -> nn.Module:
    """pytorch/examples' mnist ``Net`` in small, its ReLUs called as ``F.relu`` after each
    layer (no module follows a layer; no batch-norm): conv, conv, pool, fc, head. ``dead_bias``
    starts fc's units there."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
            self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
            self.fc1 = nn.Linear(16 * 4 * 4, 64)
            self.fc2 = nn.Linear(64, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = F.relu(self.conv1(x))
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            x = F.relu(self.fc1(torch.flatten(x, 1)))
            return self.fc2(x)  # type: ignore[no-any-return]

    net = Net()
    if dead_bias is not None:
        with torch.no_grad():
            net.fc1.bias.fill_(dead_bias)
    return net


def _cnn_run(
    path: Path, *, lr: float = 0.05, functional: bool = False, dead_bias: float | None = None
) -> None:
    torch = _torch()
    from torch import nn

    from bpmon.torch import watch

    torch.manual_seed(0)
    model = _mnist_cnn(dead_bias) if functional else _CNN.build()
    X, y = _digits(torch)
    X = X.reshape(-1, 1, 8, 8)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    with watch(model, path, every=EVERY) as mon:
        for idx in _batches(len(X), 32, UPDATES, torch):
            loss = loss_fn(model(X[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            mon.log(loss=loss)


def _sequences(vocab: int, length: int, torch: Any) -> torch.Tensor:
    """A long token stream from a fixed random bigram table with a few likely successors per
    token: learnable, and its loss falls well below log(vocab)."""
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(vocab, vocab, generator=g) * 3.0
    probs = torch.softmax(logits, dim=1)
    tokens = [0]
    for _ in range(length - 1):
        tokens.append(int(torch.multinomial(probs[tokens[-1]], 1, generator=g)))
    return torch.tensor(tokens)


def _gpt_model(vocab: int, block: int, d: int, layers: int, heads: int) -> nn.Module:
    import torch
    from torch import nn
    from torch.nn import functional as F

    class LayerNorm(nn.Module):
        """nanoGPT's own LayerNorm: parameters held directly, no torch norm class."""

        def __init__(self, n: int) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.ones(n))
            self.bias = nn.Parameter(torch.zeros(n))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)

    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c_attn = nn.Linear(d, 3 * d)
            self.c_proj = nn.Linear(d, d)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            B, T, C = x.shape
            q, k, v = self.c_attn(x).split(d, dim=2)
            q, k, v = (t.view(B, T, heads, C // heads).transpose(1, 2) for t in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))  # type: ignore[no-any-return]

    class MLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c_fc = nn.Linear(d, 4 * d)
            self.gelu = nn.GELU()
            self.c_proj = nn.Linear(4 * d, d)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.c_proj(self.gelu(self.c_fc(x)))  # type: ignore[no-any-return]

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln_1 = LayerNorm(d)
            self.attn = Attention()
            self.ln_2 = LayerNorm(d)
            self.mlp = MLP()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))  # type: ignore[no-any-return]

    class GPT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = nn.ModuleDict(
                {
                    "wte": nn.Embedding(vocab, d),
                    "wpe": nn.Embedding(block, d),
                    "h": nn.ModuleList(Block() for _ in range(layers)),
                    "ln_f": LayerNorm(d),
                }
            )
            self.lm_head = nn.Linear(d, vocab, bias=False)
            self.transformer.wte.weight = self.lm_head.weight  # tied, as nanoGPT
            self.apply(self._init)
            for name, p in self.named_parameters():
                if name.endswith("c_proj.weight"):
                    nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * layers))

        @staticmethod
        def _init(m: nn.Module) -> None:
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, 0.0, 0.02)

        def forward(self, idx: torch.Tensor) -> torch.Tensor:
            t = self.transformer
            pos = torch.arange(idx.shape[1])
            x = t.wte(idx) + t.wpe(pos)
            for blk in t.h:
                x = blk(x)
            return self.lm_head(t.ln_f(x))  # type: ignore[no-any-return]

    return GPT()


def _gpt_run(path: Path, *, lr: float = 1e-3, clip: float | None = 1.0) -> None:
    torch = _torch()
    from torch.nn import functional as F

    from bpmon.torch import watch

    torch.manual_seed(0)
    vocab, block = 32, 16
    model = _gpt_model(vocab, block, d=32, layers=2, heads=2)
    data = _sequences(vocab, 20_000, torch)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr,
        betas=(0.9, 0.95),
    )
    warmup = UPDATES // 10

    def schedule(it: int) -> float:
        if it < warmup:
            return (it + 1) / warmup
        progress = (it - warmup) / max(1, UPDATES - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    g = torch.Generator().manual_seed(3)
    with watch(model, path, every=EVERY) as mon:
        for _ in range(UPDATES):
            start = torch.randint(0, len(data) - block - 1, (16,), generator=g)
            x = torch.stack([data[s : s + block] for s in start])
            y = torch.stack([data[s + 1 : s + 1 + block] for s in start])
            logits = model(x)
            loss = F.cross_entropy(logits.view(-1, vocab), y.view(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            sched.step()
            mon.log(loss=loss)


def _lstm_run(path: Path, *, lr: float = 20.0, clip: float | None = 0.25) -> None:
    """pytorch/examples word_language_model at a small size: Embedding, 2-layer LSTM, Linear
    decoder, truncated BPTT of 16, SGD written by hand (lr 20), ``clip_grad_norm_`` 0.25."""
    torch = _torch()
    from torch import nn
    from torch.nn import functional as F

    from bpmon.torch import watch

    torch.manual_seed(0)
    vocab, d, bptt, batch = 32, 32, 16, 16

    class RNNModel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.Embedding(vocab, d)
            self.rnn = nn.LSTM(d, d, 2)
            self.decoder = nn.Linear(d, vocab)
            nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
            nn.init.zeros_(self.decoder.bias)
            nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

        def forward(
            self, x: torch.Tensor, hidden: tuple[torch.Tensor, torch.Tensor]
        ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
            out, hidden = self.rnn(self.encoder(x), hidden)
            return self.decoder(out), hidden

    model = RNNModel()
    data = _sequences(vocab, batch * (UPDATES * bptt // 4 + 1), torch)
    cols = len(data) // batch
    data = data[: cols * batch].view(batch, cols).t().contiguous()
    hidden = (torch.zeros(2, batch, d), torch.zeros(2, batch, d))
    i = 0
    with watch(model, path, every=EVERY) as mon:
        for _ in range(UPDATES):
            if i + bptt + 1 > len(data):
                i = 0
            x, y = data[i : i + bptt], data[i + 1 : i + 1 + bptt]
            i += bptt
            hidden = (hidden[0].detach(), hidden[1].detach())
            model.zero_grad()
            out, hidden = model(x, hidden)
            loss = F.cross_entropy(out.view(-1, vocab), y.reshape(-1))
            loss.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(p.grad, alpha=-lr)
            mon.step()
            mon.log(loss=loss, lr=lr)


# -- the set -----------------------------------------------------------------------------------

LR_RULES = frozenset({"update ratio", "exploding", "divergence", "oscillation"})

CASES: tuple[Case, ...] = (
    Case("gpt healthy", "gpt", "", lambda p: _gpt_run(p)),
    Case("gpt lrx100", "gpt", "lr x100", lambda p: _gpt_run(p, lr=0.1), LR_RULES, "lr_down"),
    Case(
        "gpt lrx100 no clip",
        "gpt",
        "lr x100, no clipping",
        lambda p: _gpt_run(p, lr=0.1, clip=None),
        LR_RULES,
        "lr_down",
    ),
    Case("cnn healthy", "cnn", "", lambda p: _cnn_run(p)),
    Case("cnn lrx100", "cnn", "lr x100", lambda p: _cnn_run(p, lr=5.0), LR_RULES, "lr_down"),
    Case("cnn F.relu healthy", "cnn", "", lambda p: _cnn_run(p, functional=True)),
    Case(
        "cnn F.relu dead layer",
        "cnn",
        "F.relu after fc, whose bias starts at -10",
        lambda p: _cnn_run(p, functional=True, dead_bias=-10.0),
        frozenset({"dead ReLUs"}),
        "init",
    ),
    Case("lstm healthy", "lstm", "", lambda p: _lstm_run(p)),
    Case("lstm lrx100", "lstm", "lr x100", lambda p: _lstm_run(p, lr=2000.0), LR_RULES, "lr_down"),
    Case(
        "lstm lrx100 no clip",
        "lstm",
        "lr x100, no clipping",
        lambda p: _lstm_run(p, lr=2000.0, clip=None),
        LR_RULES,
        "lr_down",
    ),
    Case("mlp healthy", "mlp", "", lambda p: _mlp_run(p)),
    Case("mlp lrx100", "mlp", "lr x100", lambda p: _mlp_run(p, lr=5.0), LR_RULES, "lr_down"),
    Case(
        "mlp std-1 init",
        "mlp",
        "tanh, weights std 1",
        lambda p: _mlp_run(p, widths=(64, 64, 64, 64, 64, 10), act="tanh", init_std=1.0, lr=0.01),
        frozenset({"exploding", "saturation"}),
        "init",
    ),
    Case(
        "mlp deep sigmoid",
        "mlp",
        "8 sigmoid layers",
        lambda p: _mlp_run(p, widths=(64, *[32] * 8, 10), act="sigmoid", lr=0.05),
        frozenset({"vanishing"}),
        "activation",
    ),
    Case(
        "mlp dead layer",
        "mlp",
        "ReLU layer with bias -10",
        lambda p: _mlp_run(p, dead_bias=-10.0),
        frozenset({"dead ReLUs"}),
        "init",
    ),
)


def table(outcomes: Sequence[Outcome]) -> str:
    """The README's table: one row per rule, one column per run; a cell is the first update at
    which the rule stood (with its severity's first letter), ``·`` where it never did. The last
    rows say whether each run met its target."""
    from bpmon.diagnosis import RULES

    names = [o.case.name for o in outcomes]
    head = "| rule | " + " | ".join(names) + " |"
    rows = [head, "|---|" + "---|" * len(names)]
    for rule in RULES:
        cells = []
        for o in outcomes:
            step = o.first(rule)
            if step is None:
                cells.append("·")
                continue
            severity = next(f.severity for found in o.findings for f in found if f.rule == rule)
            cells.append(f"{step} ({severity[0]})")
        rows.append(f"| {rule} | " + " | ".join(cells) + " |")
    rows.append("| updates | " + " | ".join(str(o.updates) for o in outcomes) + " |")
    verdicts = []
    for o in outcomes:
        if o.case.healthy:
            verdicts.append("quiet ✓" if not o.serious() else "ALARM ✗")
        else:
            caught = o.caught()
            verdicts.append(f"caught at {caught[0]} ✓" if caught else "MISSED ✗")
    rows.append("| target | " + " | ".join(verdicts) + " |")
    return "\n".join(rows)


def main(argv: Sequence[str] = ()) -> int:
    import tempfile

    wanted = set(argv)
    cases = [c for c in CASES if not wanted or c.name in wanted or c.family in wanted]
    with tempfile.TemporaryDirectory() as folder:
        outcomes = [diagnose(c, Path(folder)) for c in cases]
    print(
        f"bpmon findings calibration: {UPDATES} updates a run, measured every {EVERY}; "
        f"cell = first update at which the rule stood (e/w/i: severity)"
    )
    print(table(outcomes))
    for o in outcomes:
        for step, f in (o.serious() if o.case.healthy else [])[:3]:
            print(f"  {o.case.name} at {step}: {f.line}")
        if not o.case.healthy and o.caught() is None:
            shown = {f.line for found in o.findings for f in found}
            print(f"  {o.case.name}: {sorted(shown)[:4]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
