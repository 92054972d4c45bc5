"""The decision boundary: the grid's conventions against its formula, that computing it leaves
training exactly as it was, the trainer's ``boundary`` command, and the ``v`` key in the app."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_tui import SIZE, drive, make_app, press, screen_text, wait_for, wait_screen, wait_shows
from test_tui_runfiles import RUN_V1, run_file_app
from textual.pilot import Pilot

from bpmon.config import DataConfig, validate
from bpmon.data import Dataset
from bpmon.engine.network import Network
from bpmon.launch import live_trainer
from bpmon.presets import csv_preset, load_preset
from bpmon.trainer import Command
from bpmon.trainer.boundary import (
    MARGIN,
    MAX_POINTS,
    RESOLUTION,
    UNKNOWN,
    Boundary,
    BoundaryFeed,
    Plane,
    Point,
    unavailable,
)
from bpmon.trainer.run import Run
from bpmon.tui.app import BpmonApp
from bpmon.tui.boundary import HALF_BLOCK, MONO_MARKS, TEST_MARK, TRAIN_MARK


def dataset(X: np.ndarray, labels: np.ndarray, classes: int = 2) -> Dataset:
    if classes == 2:
        y = labels.reshape(-1, 1).astype(float)
        task = "binary"
    else:
        y = np.eye(classes)[labels]
        task = "multiclass"
    return Dataset("plane", X, y, None, None, task, tuple(map(str, range(classes))), ("u", "v"))


def linear_net(W: list[list[float]], b: list[float], output: str) -> Network:
    """A network with no hidden layer whose weights are set by hand."""
    loss = "bce" if output == "sigmoid" else "cross_entropy"
    net = Network((2, len(b)), output=output, loss=loss)
    net.params["layer0.W"][...] = W
    net.params["layer0.b"][...] = b
    return net


def centre(plane: Plane, row: int, col: int) -> tuple[float, float]:
    """The module doc's formula for a pixel's centre."""
    span = plane.x1[1] - plane.x1[0]
    return (
        plane.x1[0] + (col + 0.5) * span / RESOLUTION,
        plane.x2[1] - (row + 0.5) * span / RESOLUTION,
    )


# -- the grid's conventions ---------------------------------------------------------------------


def test_extent_is_square_with_a_margin_around_every_point() -> None:
    X = np.array([[0.0, 10.0], [4.0, 11.0], [2.0, 12.0]])
    plane = Plane(dataset(X, np.array([0, 1, 0])), np.dtype(np.float64))
    span = 4.0 * (1 + 2 * MARGIN)
    assert plane.x1 == pytest.approx((2.0 - span / 2, 2.0 + span / 2))
    assert plane.x2 == pytest.approx((11.0 - span / 2, 11.0 + span / 2))


def test_row_zero_is_the_top_and_each_pixel_is_the_net_at_its_centre() -> None:
    X = np.array([[-1.0, -2.0], [1.0, 2.0]])
    plane = Plane(dataset(X, np.array([0, 1])), np.dtype(np.float64))
    # p(class 1) = sigmoid(3 x2 - x1): class 1 above the line x2 = x1 / 3.
    net = linear_net([[-1.0], [3.0]], [0.0], "sigmoid")
    b = plane.boundary(net, step=7)
    assert (b.step, b.size, b.axes, b.n_classes) == (7, RESOLUTION, ("u", "v"), 2)
    assert b.classes[0] == 1 and b.classes[-1] == 0  # top left above, bottom right below
    for row, col in [(0, 0), (5, 40), (31, 31), (32, 32), (63, 0), (63, 63), (20, 50)]:
        x1, x2 = centre(plane, row, col)
        p = 1 / (1 + math.exp(-(3 * x2 - x1)))
        i = row * RESOLUTION + col
        assert b.classes[i] == int(p > 0.5)
        assert b.confidence[i] == round(abs(2 * p - 1) * 255)


def test_multiclass_pixels_take_the_argmax_and_the_margin_over_chance() -> None:
    X = np.array([[-1.0, -1.0], [1.0, 1.0], [0.0, 1.0]])
    plane = Plane(dataset(X, np.array([0, 1, 2]), classes=3), np.dtype(np.float64))
    net = linear_net([[1.0, -1.0, 0.0], [0.0, 0.5, 2.0]], [0.0, 0.1, -0.3], "softmax")
    b = plane.boundary(net, step=1)
    for row, col in [(0, 0), (10, 60), (40, 3), (63, 63)]:
        x = np.array(centre(plane, row, col))
        z = x @ np.array([[1.0, -1.0, 0.0], [0.0, 0.5, 2.0]]) + [0.0, 0.1, -0.3]
        p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        i = row * RESOLUTION + col
        assert b.classes[i] == int(np.argmax(p))
        assert b.confidence[i] == round((p.max() - 1 / 3) / (2 / 3) * 255)


def test_a_pixel_whose_output_is_not_finite_is_unknown() -> None:
    X = np.array([[-1.0, -1.0], [1.0, 1.0]])
    plane = Plane(dataset(X, np.array([0, 1])), np.dtype(np.float64))
    net = linear_net([[math.nan], [1.0]], [0.0], "sigmoid")
    b = plane.boundary(net, step=1)
    assert set(b.classes) == {UNKNOWN}
    assert set(b.confidence) == {0}


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(-1e300, 1e300), st.floats(-1e6, 1e6), st.integers(0, 2)),
        min_size=1,
        max_size=2 * MAX_POINTS + 50,
    )
)
def test_every_point_lies_inside_the_plane_with_its_class(
    rows: list[tuple[float, float, int]],
) -> None:
    X = np.array([[a, b] for a, b, _ in rows])
    labels = np.array([k for _, _, k in rows])
    plane = Plane(dataset(X, labels, classes=3), np.dtype(np.float64))
    b = plane.boundary(linear_net([[0.0] * 3, [0.0] * 3], [0.0] * 3, "softmax"), 0)
    assert 0 < len(b.train) <= MAX_POINTS
    assert len(b.train) == len(rows) or len(rows) > MAX_POINTS
    stride = math.ceil(len(rows) / MAX_POINTS)
    for j, point in enumerate(b.train):
        assert point == Point(*rows[j * stride])
        u, v = b.locate(point)
        assert 0 < u < 1 and 0 < v < 1
    assert all(math.isfinite(x) for x in (*b.x1, *b.x2))
    assert set(b.classes) <= {0, 1, 2}


def test_unavailable_names_what_is_not_2d() -> None:
    digits = Run.build(validate(load_preset("digits-relu-bn").config, "digits")).data
    assert "digits has 64" in unavailable(digits)
    data_dir = Path(__file__).resolve().parent / "data"
    _, co2 = csv_preset(DataConfig(name="csv", path=str(data_dir / "co2.csv")))
    assert "regression" in unavailable(co2)
    spiral = Run.build(validate(load_preset("spiral").config, "spiral")).data
    assert unavailable(spiral) == ""


# -- it does not disturb training ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["spiral", "relu-bn"])
def test_computing_the_boundary_between_steps_leaves_training_bit_for_bit_the_same(
    name: str,
) -> None:
    # relu-bn has batch-norm: the eval pass reads its running statistics and must not move
    # them, nor overwrite the activations the next backward reads.
    config = validate(load_preset(name).config, name)
    plain, watched = Run.build(config), Run.build(config)
    plane = Plane(watched.data, watched.net.dtype)
    for _ in range(30):
        plain.train_step()
        plane.boundary(watched.net, watched.step)
        watched.train_step()
    assert plain.history.values == watched.history.values
    for key, value in plain.net.params.items():
        assert np.array_equal(value, watched.net.params[key]), key
    for a, b in zip(plain.net.blocks, watched.net.blocks, strict=True):
        if a.bn is not None and b.bn is not None:
            assert np.array_equal(a.bn.running_mean, b.bn.running_mean)
            assert np.array_equal(a.bn.running_var, b.bn.running_var)


# -- the cadence -----------------------------------------------------------------------------


def test_the_feed_computes_only_when_asked_and_at_its_cadence() -> None:
    run = Run.build(validate(load_preset("spiral").config, "spiral"))
    feed = BoundaryFeed(interval=0.25)
    assert feed.of(run.net, run.data, 0, now=0.0, running=True) is None
    assert feed.ask(True, run.data) == ""
    first = feed.of(run.net, run.data, 0, now=0.0, running=True)
    assert isinstance(first, Boundary)
    run.train_step()
    # While training, the same boundary until the interval is up...
    assert feed.of(run.net, run.data, 1, now=0.2, running=True) is first
    later = feed.of(run.net, run.data, 1, now=0.3, running=True)
    assert later is not first and later is not None and later.step == 1
    run.train_step()
    # ...and at once when the run is not training (a step with n).
    paused = feed.of(run.net, run.data, 2, now=0.31, running=False)
    assert paused is not None and paused.step == 2
    assert feed.of(run.net, run.data, 2, now=0.32, running=False) is paused
    feed.ask(False, run.data)
    assert feed.of(run.net, run.data, 2, now=1.0, running=True) is None


# -- the trainer ------------------------------------------------------------------------------


def test_the_trainer_publishes_a_boundary_only_while_asked() -> None:
    trainer = live_trainer(load_preset("xor").config, preset="xor", start_paused=True)
    assert trainer.latest().boundary is None
    trainer.send(Command("boundary", 1.0))
    trainer.run(max_steps=5)
    boundary = trainer.latest().boundary
    assert boundary is not None and boundary.step == 5
    assert [p.label for p in boundary.train] == [0, 1, 1, 0]
    trainer.send(Command("boundary", 0.0))
    assert trainer.run(max_steps=6).boundary is None


def test_the_trainer_says_why_on_data_that_is_not_2d() -> None:
    trainer = live_trainer(load_preset("digits-relu-bn").config, preset="digits", start_paused=True)
    trainer.send(Command("boundary", 1.0))
    snapshot = trainer.run(max_steps=1)
    assert snapshot.boundary is None
    assert "2 input features" in snapshot.notice and "digits has 64" in snapshot.notice


# -- the key ----------------------------------------------------------------------------------


def panel_shown(screen: str) -> bool:
    """The panel in the table's place, painted (its legend counts the training points)."""
    return "decision boundary" in screen and "train (" in screen and "predictions" not in screen


def test_v_on_xor_shows_the_panel_which_follows_training_and_v_hides_it() -> None:
    trainer, app = make_app("xor", steps=None)

    async def body(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "RUNNING", "predictions")
        await press(pilot, "v")
        screen = await wait_screen(pilot, panel_shown, "the boundary panel")
        assert HALF_BLOCK in screen and TRAIN_MARK in screen
        first = app.snapshot.boundary if app.snapshot else None
        assert first is not None

        def moved() -> bool:
            now = app.snapshot.boundary if app.snapshot else None
            return (
                now is not None
                and now.step > first.step
                and (now.classes, now.confidence) != (first.classes, first.confidence)
            )

        await wait_for(pilot, moved, "a new grid as the network learns")
        await press(pilot, "v")
        await wait_screen(
            pilot, lambda s: "predictions" in s and "decision boundary" not in s, "hidden"
        )
        assert trainer.latest().boundary is None

    drive(app, body)


@pytest.mark.parametrize("size", [SIZE, (160, 48)], ids=["80x24", "160x48"])
def test_test_points_are_marked_apart_from_training_points(size: tuple[int, int]) -> None:
    _trainer, app = make_app("spiral", steps=200)

    async def body(pilot: Pilot[Any]) -> None:
        await press(pilot, "v")
        screen = await wait_screen(pilot, panel_shown, "the boundary panel")
        assert TRAIN_MARK in screen and TEST_MARK in screen
        assert "train (240)" in screen and "test (60)" in screen

    drive(app, body, size=size)


def test_v_on_digits_says_why() -> None:
    trainer, app = make_app("digits-relu-bn", steps=2)

    async def body(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "PAUSED", "predictions")
        await press(pilot, "v")
        screen = await wait_shows(pilot, "2 input features", "digits has 64")
        # The table stays: no panel took its place.
        assert "predictions" in screen
        assert trainer.latest().boundary is None

    drive(app, body)


def test_v_on_a_replay_says_why() -> None:
    app = run_file_app(RUN_V1)

    async def body(pilot: Pilot[Any]) -> None:
        await wait_shows(pilot, "snapshot 11/11")
        await press(pilot, "v")
        screen = await wait_shows(pilot, "run file has no network")
        assert "predictions" in screen

    drive(app, body)


def test_without_colour_the_classes_are_different_characters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Textual reads NO_COLOR when the app is made, and then paints every colour away.
    monkeypatch.setenv("NO_COLOR", "1")
    _trainer, app = make_app("spiral", steps=2000)
    assert app.no_color

    async def body(pilot: Pilot[Any]) -> None:
        await press(pilot, "v")
        screen = await wait_screen(pilot, panel_shown, "the boundary panel")
        # The panel is the right-hand 42 columns (the loss plot has half blocks of its own).
        panel = "\n".join(line[SIZE[0] - 42 :] for line in screen.splitlines())
        assert HALF_BLOCK not in panel
        for mark in MONO_MARKS[:3]:
            assert mark in panel, mark
        assert "train (240)" in panel

    drive(app, body)


def test_v_is_in_the_help_of_a_live_run() -> None:
    _trainer, app = make_app("xor")

    async def body(pilot: Pilot[Any]) -> None:
        await press(pilot, "question_mark")
        await wait_shows(pilot, "bpmon keys", "Decision boundary")

    drive(app, body, size=(100, 30))


def test_a_two_feature_csv_draws_its_boundary_on_its_columns(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    lines = ["height,weight,kind"] + [
        f"{a:.4f},{b:.4f},{'big' if a + b > 0 else 'small'}" for a, b in X
    ]
    path = tmp_path / "two.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    preset, data = csv_preset(DataConfig(name="csv", path=str(path)))
    trainer = live_trainer(preset.config.with_epochs(10**9), preset=preset.name, data=data)
    trainer.run(max_steps=50)
    app = BpmonApp(trainer)

    async def body(pilot: Pilot[Any]) -> None:
        await press(pilot, "v")
        screen = await wait_screen(pilot, panel_shown, "the boundary panel")
        assert "height" in screen and "weight" in screen and "big" in screen
        assert screen_text(app).count(TEST_MARK) >= 1

    drive(app, body)
