"""Findings: each rule raised by a snapshot stream made to show it and quiet on a healthy one, no
flicker, and what every shipped preset raises early and at its end."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpmon.actions import ACTIONS, WHERE, Where, advice, where_of
from bpmon.config import Thresholds
from bpmon.diagnosis import CLEAR_AFTER, RAISE_AFTER, RULE_ACTIONS, RULES, Diagnosis, evaluate
from bpmon.launch import live_trainer
from bpmon.presets import list_presets, load_preset
from bpmon.runmodel import NonFinite, Spike
from bpmon.telemetry import LayerStats, classify
from bpmon.trainer import Snapshot


def layer(
    i: int,
    grad: float,
    *,
    activation: str | None = "relu",
    health: float = 0.0,
    update: float = 1e-3,
    delta: float = 1.0,
) -> LayerStats:
    label = {"relu": "dead", "sigmoid": "saturated", "tanh": "saturated"}.get(activation or "", "")
    return LayerStats(
        name=f"layer{i}",
        fan_in=8,
        fan_out=8,
        grad_norm=grad,
        bias_grad_norm=grad,
        weight_norm=1.0,
        update_ratio=update,
        delta_norm=delta,
        health=health,
        health_label=label,
        status="healthy",
        activation=activation,
    )


def snapshot(
    layers: Sequence[LayerStats],
    losses: Sequence[float] = (1.0, 0.5, 0.25),
    *,
    step: int = 1,
    state: str = "running",
    accuracy: float | None = None,
    test_accuracy: float | None = None,
) -> Snapshot:
    statuses = classify([x.grad_norm for x in layers], Thresholds())
    layers = tuple(replace(x, status=s) for x, s in zip(layers, statuses, strict=True))
    return Snapshot(
        run_id=0,
        preset="made",
        config=None,
        architecture="8-8-8-1",
        switches="8-8-8-1",
        state=state,  # type: ignore[arg-type]
        step=step,
        epoch=step,
        epochs=None,
        loss=losses[-1],
        loss_steps=tuple(range(1, len(losses) + 1)),
        loss_values=tuple(losses),
        previous_loss_steps=(),
        previous_loss_values=(),
        layers=layers,
        initial_layers=(),
        accuracy=accuracy,
        test_accuracy=test_accuracy,
        predictions=(),
        classes=(),
        steps_per_second=0.0,
        lr=0.1,
        elapsed=0.0,
        thresholds=Thresholds(),
        diverged_step=step if state == "diverged" else None,
        diverged_layer="layer2" if state == "diverged" else None,
    )


def healthy() -> Snapshot:
    return snapshot([layer(0, 0.1), layer(1, 0.2), layer(2, 0.3, activation=None)])


def rules_of(window: Sequence[Snapshot]) -> set[str]:
    return {f.rule for f in evaluate(window)}


def test_a_healthy_run_raises_nothing() -> None:
    assert rules_of([healthy()] * 5) == set()


MADE: dict[str, list[Snapshot]] = {
    "vanishing": [
        snapshot(
            [
                layer(0, 1e-6, activation="sigmoid", health=0.9),
                layer(1, 1e-3, activation="sigmoid"),
                layer(2, 0.3, activation=None),
            ]
        )
    ],
    "exploding": [
        snapshot(
            [
                layer(0, 1.0, delta=1e5),
                layer(1, 1.0, delta=1e3),
                layer(2, 1.0, activation=None, delta=1.0),
            ]
        )
    ],
    "dead ReLUs": [
        snapshot([layer(0, 0.1, health=0.8), layer(1, 0.1), layer(2, 0.1, activation=None)])
    ],
    "saturation": [
        snapshot(
            [
                layer(0, 0.1, activation="tanh", health=0.9),
                layer(1, 0.1, activation="tanh"),
                layer(2, 0.1, activation=None),
            ]
        )
    ],
    # SGD-sized steps (lr x the gradient) of a tenth of the weights, the loss above its start.
    "update ratio": [
        snapshot(
            [
                layer(0, 0.1, update=0.05),
                layer(1, 0.1, update=0.1),
                layer(2, 0.1, activation=None),
            ],
            losses=(1.0, 1.5, 2.0),
        )
    ],
    "plateau": [
        snapshot(
            [layer(0, 1e-4), layer(1, 1e-4), layer(2, 1e-4, activation=None)],
            losses=[0.13] + [0.125] * 30,
        )
    ],
    "oscillation": [
        snapshot(
            [layer(0, 0.1), layer(1, 0.1), layer(2, 0.1, activation=None)],
            losses=[1.0 + (-1) ** i * 0.01 * i for i in range(24)],
        )
    ],
    "divergence": [
        snapshot(
            [layer(0, math.nan), layer(1, math.nan), layer(2, math.nan, activation=None)],
            losses=[1.0, math.nan],
            state="diverged",
        )
    ],
    # A PyTorch run goes on past its first NaN, the origin recorded on its lines.
    "non-finite": [
        replace(
            snapshot([layer(0, math.nan), layer(1, math.nan), layer(2, math.nan, activation=None)]),
            nonfinite=NonFinite(step=150, gradient="2.weight", module="1", forward_checked=True),
        )
    ],
    # A spike the PyTorch bridge recorded (bpmon.torch.spikes), in layer 1.
    "spike": [
        replace(
            healthy(),
            spikes=(Spike(74, "grad_norm", 180.0, 0.4, 860.0, "layer1", 74, 920.0, True),),
        )
    ],
    "overfitting": [
        snapshot([layer(0, 0.1), layer(1, 0.1), layer(2, 0.1, activation=None)], accuracy=0.8),
        snapshot(
            [layer(0, 0.1), layer(1, 0.1), layer(2, 0.1, activation=None)],
            accuracy=0.99,
            test_accuracy=0.7,
        ),
    ],
}


def test_every_rule_has_a_stream_that_raises_it() -> None:
    assert set(MADE) == set(RULES)


@pytest.mark.parametrize("rule", sorted(RULES))
def test_each_rule_raises_on_its_stream_with_evidence_and_actions(rule: str) -> None:
    findings = {f.rule: f for f in evaluate(MADE[rule])}
    assert rule in findings
    finding = findings[rule]
    assert finding.evidence and finding.advice
    assert any(ch.isdigit() for ch in finding.evidence), finding.evidence
    # Actions, not key letters: each is a row of the table and can be rendered anywhere.
    assert finding.actions and set(finding.actions) <= RULE_ACTIONS[rule] <= ACTIONS.keys()
    for where in WHERE:
        assert advice(finding.actions, where, dict(finding.facts))
    # On bpmon's own run the advice shows the keys that apply its actions.
    keys = [ACTIONS[a].key for a in finding.actions if ACTIONS[a].key]
    assert keys and all(f"({key})" in finding.advice for key in keys)
    assert finding.key == ACTIONS[finding.actions[0]].key


@settings(max_examples=200, deadline=None)
@given(
    grads=st.lists(st.floats(0.02, 1.0), min_size=2, max_size=12),
    health=st.floats(0.0, 0.4),
    update=st.floats(1e-4, 1e-2),
    losses=st.lists(st.floats(0.01, 1.0), min_size=3, max_size=10).map(
        lambda xs: sorted(xs, reverse=True)
    ),
)
def test_generated_healthy_runs_raise_nothing(
    grads: list[float], health: float, update: float, losses: list[float]
) -> None:
    # Gradients within 1.7 decades (inside the telemetry's 100x), few dead units, updates near
    # 1e-3, a falling loss.
    layers = [layer(i, g, health=health, update=update) for i, g in enumerate(grads[:-1])]
    layers.append(layer(len(grads) - 1, grads[-1], activation=None, update=update))
    assert rules_of([snapshot(layers, losses)] * 3) == set()


# -- what the calibration on real models changed (benchmarks/calibration.py) ---------------------


def test_large_sgd_steps_on_a_falling_loss_are_not_a_finding() -> None:
    # An MLP with momentum 0.9 at lr 0.05 steps 10^-1.7 early on, and learns.
    sgd = [layer(0, 0.1, update=0.02), layer(1, 0.1, update=0.02), layer(2, 0.1, activation=None)]
    assert rules_of([snapshot(sgd, losses=(2.3, 2.0, 1.5))]) == set()


def test_adam_steps_are_judged_by_their_own_scale() -> None:
    # Adam's step is about lr per weight: ||update|| / (lr ||g||) in the hundreds.
    def adam(update: float) -> list[LayerStats]:
        return [
            layer(0, 1e-3, update=update),
            layer(1, 1e-3, update=update),
            layer(2, 1e-3, activation=None, update=update),
        ]

    healthy = snapshot(adam(10**-1.5), losses=(3.4, 3.0, 2.8))
    assert rules_of([healthy]) == set()
    fast = evaluate([snapshot(adam(10**-0.6), losses=(3.4, 3.0, 2.8))])
    assert [(f.rule, f.actions[0]) for f in fast] == [("update ratio", "lr_down")]
    assert dict(fast[0].facts)["adaptive"] == 1.0


def test_sampled_mini_batch_noise_is_not_oscillation() -> None:
    # Independent noise turns at 2/3 of the points: the old rule's 60% fired on it.
    rng = np.random.default_rng(0)
    diagnosis = Diagnosis()
    losses: list[float] = []
    for i in range(400):
        losses.append(2.0 * math.exp(-i / 300) + 0.2 * float(rng.standard_normal()))
        snap = replace(healthy(), step=i + 1, loss_values=tuple(losses), loss=losses[-1])
        assert "oscillation" not in {f.rule for f in diagnosis.add(snap)}, i


def test_only_relu_units_can_be_dead() -> None:
    def net(act: str) -> Snapshot:
        return snapshot(
            [
                layer(0, 0.1, activation=act, health=0.8),
                layer(1, 0.1),
                layer(2, 0.1, activation=None),
            ]
        )

    assert "dead ReLUs" in rules_of([net("relu")])
    for smooth in ("gelu", "silu"):
        gelu = net(smooth)
        gelu = replace(
            gelu, layers=(replace(gelu.layers[0], health_label="dead"), *gelu.layers[1:])
        )
        assert rules_of([gelu]) == set(), smooth


def test_a_small_layer_inside_a_residual_stack_is_not_vanishing() -> None:
    # A transformer's MLP can get 1/100 of the head's gradient beside its skip connection; the
    # layers before it learn, so the gradient is not dying on its way back.
    layers = [layer(0, 0.3), layer(1, 1e-4), layer(2, 0.3), layer(3, 0.3, activation=None)]
    assert rules_of([snapshot(layers)]) == set()
    deep = [layer(0, 1e-6), layer(1, 1e-5), layer(2, 0.3), layer(3, 0.3, activation=None)]
    assert rules_of([snapshot(deep)]) == {"vanishing"}


def test_what_is_there_at_the_first_update_is_the_initialisations() -> None:
    blown = snapshot(
        [
            layer(0, 1.0, activation="tanh", delta=1e5),
            layer(1, 1.0, activation="tanh", delta=1e3),
            layer(2, 1.0, activation=None, delta=1.0),
        ],
    )
    later = evaluate([blown])
    assert [(f.rule, f.actions[0]) for f in later] == [("exploding", "lr_down")]
    at_start = evaluate([replace(blown, initial_layers=blown.layers)])
    assert [(f.rule, f.actions[0]) for f in at_start] == [("exploding", "init")]
    assert "as at the first update" in at_start[0].evidence
    dead = MADE["dead ReLUs"][0]
    born = evaluate([replace(dead, initial_layers=dead.layers)])
    assert [(f.rule, f.actions[0]) for f in born] == [("dead ReLUs", "init")]


def test_a_finding_needs_several_snapshots_and_leaves_after_several() -> None:
    diagnosis = Diagnosis()
    sick, well = MADE["dead ReLUs"][0], healthy()
    for i in range(RAISE_AFTER - 1):
        assert diagnosis.add(replace(sick, step=i + 1)) == ()
    assert [f.rule for f in diagnosis.add(replace(sick, step=RAISE_AFTER))] == ["dead ReLUs"]
    for i in range(CLEAR_AFTER - 1):
        assert diagnosis.add(replace(well, step=100 + i))
    assert diagnosis.add(replace(well, step=200)) == ()


def test_a_condition_that_flickers_raises_nothing() -> None:
    diagnosis = Diagnosis()
    for i in range(50):
        snap = MADE["dead ReLUs"][0] if i % 2 else healthy()
        assert diagnosis.add(replace(snap, step=i + 1)) == ()


# -- the shipped presets ---------------------------------------------------------------------------

QUIET_AT_THE_END = {"relu-bn", "digits-relu-bn", "spiral", "xor"}
RAISED_AT_THE_END = {
    "sigmoid-vanishing": {"vanishing"},
    "exploding": {"divergence"},
    "dying-relu": {"dead ReLUs"},
}


# The diagnosis sees each preset's run at this many evenly spaced steps. A count of steps, not a
# time (the monitor's 0.02 s): the result is the same on every machine, and a busy machine does
# not turn the test into a snapshot, and a diagnosis, at every step.
SNAPSHOTS = 100


@pytest.mark.parametrize("name", [p.name for p in list_presets()])
def test_what_each_preset_raises(name: str) -> None:
    config = load_preset(name).config
    trainer = live_trainer(config, name, interval=math.inf)
    total = config.train.epochs * trainer.steps_per_epoch
    every = max(1, total // SNAPSHOTS)
    early: set[str] | None = None
    snap = trainer.latest()
    while snap.state in ("running", "paused") and snap.step < total:
        snap = trainer.run(max_steps=min(snap.step + every, total))
        if early is None and snap.step >= max(1, total // 10):
            early = {f.rule for f in snap.findings}
    end = {f.rule for f in trainer.run().findings}
    early = end if early is None else early  # ended (diverged) before a tenth of its steps
    if name in QUIET_AT_THE_END:
        assert end == set(), (name, end)
    if name in RAISED_AT_THE_END:
        assert RAISED_AT_THE_END[name] <= end, (name, end)
    if name == "sigmoid-vanishing":
        assert "vanishing" in early
    print(f"{name}: early {sorted(early)}, end {sorted(end)}")


def test_every_key_an_action_shows_is_bound_to_what_it_says() -> None:
    """The advice on bpmon's own run names keys: each must be the first binding of its key that
    a live run takes (not the catch-all that says a key does not apply), and send the command
    the advice means."""
    from textual.binding import Binding

    from bpmon.tui.app import BpmonApp

    first: dict[str, str] = {}
    for binding in Binding.make_bindings(BpmonApp.BINDINGS):
        for key in binding.key.split(","):
            first.setdefault(key, binding.action)
    expected = {
        "lr_down": ("lr", 0.5),
        "lr_up": ("lr", 2.0),
        "activation": ("activation", 1),
        "leaky_relu": ("activation", 1),
        "batchnorm": ("batchnorm", 0),
        "depth_down": ("depth", -1),
        "init": ("cycle", 1),
        "restart": ("restart", 0),
    }
    keyed = {a.id for a in ACTIONS.values() if a.key is not None}
    assert keyed == set(expected)
    for action in keyed:
        row = ACTIONS[ACTIONS[action].via or action]
        assert row.keys and "live" in row.sources, action
        assert (row.command, row.amount) == expected[action], action
        for key in row.keys:
            assert first[key] == row.action(key), (action, key, first[key])


# -- advice for where the run is (bpmon/actions.py) ------------------------------------------------


def test_advice_on_a_pytorch_run_quotes_the_run_s_numbers() -> None:
    assert (
        advice(("lr_down",), "torch", {"lr": 0.1, "adaptive": 1.0})
        == "the optimiser's lr is 0.1 — AdamW at 1e-3 is usual here"
    )
    assert advice(("lr_down",), "torch", {"lr": 0.5, "adaptive": 0.0}).endswith("try 0.05")
    clipped = advice(("lr_down",), "torch", {"lr": 20.0, "clipped_share": 0.92, "clip_over": 20.0})
    assert clipped.startswith(
        "clip_grad_norm_ scaled 92% of recent updates: the pre-clip norm is 20x max_norm"
    )
    init = {"init_std": 1.0, "fan_in": 64.0, "fan_out": 64.0, "activation": "tanh"}
    assert advice(("init",), "torch", init) == (
        "weights start with std 1 for fan-in 64: nn.init.xavier_uniform_ with gain 5/3 gives 0.21"
    )
    relu = init | {"activation": "relu"}
    assert "nn.init.kaiming_normal_ gives 0.18" in advice(("init",), "torch", relu)


def test_keys_are_shown_only_where_they_apply() -> None:
    actions = ("lr_down", "batchnorm", "clip")
    assert advice(actions, "live", {}) == "lower the learning rate ([) or try batch-norm (b)"
    assert advice(actions, "file", {}) == "lower the learning rate or try batch-norm"
    torch_advice = advice(actions, "torch", {"lr": 0.1})
    assert not re.search(r"\(\S\)", torch_advice), torch_advice
    assert "clip_grad_norm_" in torch_advice  # clipping is a PyTorch script's option only
    assert where_of(None, "3 layers relu +bn torch") == "torch"
    assert where_of(None, "2-8-8-4-1 relu") == "file"
    assert where_of(load_preset("xor").config, "2-8-8-4-1 relu") == "live"


@settings(max_examples=200, deadline=None)
@given(
    facts=st.dictionaries(
        st.sampled_from(
            [
                *("lr", "adaptive", "level", "clipped_share", "clip_over", "init_std"),
                *("fan_in", "fan_out", "activation", "cause", "layer"),
            ]
        ),
        st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12),
    ),
    where=st.sampled_from(WHERE),
)
def test_every_action_renders_any_facts_as_one_line(
    facts: dict[str, float | str], where: Where
) -> None:
    # Every action a finding can name (the table's other rows are keys, with no advice wording).
    for name in sorted({a for named in RULE_ACTIONS.values() for a in named}):
        text = ACTIONS[name].render(where, facts)
        assert text and "\n" not in text and text.isprintable()


def test_a_network_that_normalises_is_not_told_to_try_batch_norm() -> None:
    # Issue 16: a transformer with LayerNorm was told "try batch-norm". A PyTorch run's switches
    # say +bn for any norm layer (torch's or a custom 1-D-weight one); bpmon's own for its switch.
    stream = MADE["vanishing"]
    starving = [replace(s, switches="8-8-8-1 relu") for s in stream]
    assert any("batchnorm" in f.actions for f in evaluate(starving))
    for switches in ("8-8-8-1 relu +bn", "8-8-8-1 +bn torch"):
        found = evaluate([replace(s, switches=switches) for s in stream])
        vanishing = next(f for f in found if f.rule == "vanishing")
        assert "batchnorm" not in vanishing.actions and vanishing.actions
        assert "batch-norm" not in vanishing.advice and "(b)" not in vanishing.advice
        assert vanishing.key == ACTIONS[vanishing.actions[0]].key
