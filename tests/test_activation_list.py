"""One activation per hidden layer: ``activation = ["tanh", "relu", "relu"]`` in a preset.

The list is checked by the one validation (each name by the activations' registry, its length
against the depth), the network gets each layer's own activation, the keys do what the
commands module says (``a``: one activation for all, stepped from the first layer's; ``+``
repeats the last layer's, ``-`` drops it), the status line's label stays short, the gradient
panel names each layer's activation at 80 columns, and the run file and the headless JSON stay
format v1.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpmon import cli
from bpmon.config import (
    ACTIVATION_LABEL_MAX,
    HIDDEN_ACTIVATIONS,
    MAX_DEPTH,
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    validate,
)
from bpmon.engine.network import Network
from bpmon.errors import BpmonError
from bpmon.launch import live_trainer
from bpmon.presets import load_preset
from bpmon.trainer import Command
from bpmon.trainer.commands import apply_intent
from bpmon.trainer.run import Run
from bpmon.tui.app import BpmonApp
from bpmon.tui.gradients import GradientPanel

MIXED = RunConfig(
    data=DataConfig(name="circle", n=60),
    model=ModelConfig(
        hidden=(4, 4, 4), activation=("tanh", "relu", "relu"), output="sigmoid", loss="bce"
    ),
    train=TrainConfig(optimizer="adam", lr=0.01, epochs=10**9),
)


def write(tmp_path: Path, model: str) -> Path:
    path = tmp_path / "mixed.toml"
    path.write_text(f'description = "mixed"\n[model]\n{model}\n', encoding="utf-8")
    return path


def test_a_preset_gives_each_hidden_layer_its_activation(tmp_path: Path) -> None:
    path = write(tmp_path, 'hidden = [3, 4, 5]\nactivation = ["tanh", "relu", "leaky_relu"]')
    config = load_preset(str(path)).config
    assert config.model.activation == ("tanh", "relu", "leaky_relu")
    run = Run.build(config)
    run.train_step()
    views = run.net.layer_views()
    assert [v.activation for v in views] == ["tanh", "relu", "leaky_relu", None]


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ('hidden = [4, 4, 4]\nactivation = ["tanh", "relu"]', "expected 3 activations"),
        ('hidden = [4]\nactivation = ["tanh", "relu"]', "expected 1 activation,"),
    ],
)
def test_a_list_of_the_wrong_length_is_one_clear_error(
    tmp_path: Path, model: str, expected: str
) -> None:
    path = write(tmp_path, model)
    with pytest.raises(BpmonError) as caught:
        load_preset(str(path))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: model.activation = ['tanh', 'relu']: {expected}")
    assert "one per hidden layer (model.hidden = [" in message


def test_each_name_in_the_list_is_checked_by_the_registry(tmp_path: Path) -> None:
    path = write(tmp_path, 'hidden = [4, 4]\nactivation = ["tanh", "swish"]')
    with pytest.raises(BpmonError) as caught:
        load_preset(str(path))
    message = str(caught.value)
    assert message.startswith(f"{path}: model.activation = ['tanh', 'swish']: expected one of")
    assert "or a list of them, one per hidden layer" in message
    with pytest.raises(ValueError, match="swish"):
        Network([2, 4, 4, 1], activation=["tanh", "swish"])


def test_the_a_key_gives_every_layer_the_activation_after_the_first_layers() -> None:
    config, _ = apply_intent(MIXED, Command("activation", 1))
    following = HIDDEN_ACTIVATIONS[(HIDDEN_ACTIVATIONS.index("tanh") + 1) % 4]
    assert config.model.activation == following
    assert config.model.activations == (following,) * 3
    back, _ = apply_intent(MIXED, Command("activation", -1))
    assert back.model.activation == HIDDEN_ACTIVATIONS[HIDDEN_ACTIVATIONS.index("tanh") - 1]


def test_plus_repeats_the_last_layers_activation_and_minus_drops_it() -> None:
    more, _ = apply_intent(MIXED, Command("depth", 1))
    assert more.model.hidden == (4, 4, 4, 4)
    assert more.model.activation == ("tanh", "relu", "relu", "relu")
    fewer, _ = apply_intent(MIXED, Command("depth", -1))
    assert fewer.model.activation == ("tanh", "relu")
    one, _ = apply_intent(fewer, Command("depth", -1))
    assert one.model.activation == ("tanh",)
    with pytest.raises(BpmonError, match=r"model\.hidden"):
        apply_intent(one, Command("depth", -1))


@settings(max_examples=80, deadline=None)
@given(names=st.lists(st.sampled_from(HIDDEN_ACTIVATIONS), min_size=1, max_size=MAX_DEPTH))
def test_the_status_label_stays_short_and_names_a_uniform_list_once(names: list[str]) -> None:
    model = ModelConfig(hidden=(4,) * len(names), activation=tuple(names))  # type: ignore[arg-type]
    label = model.activation_label
    assert 1 <= len(label) <= ACTIVATION_LABEL_MAX
    if len(set(names)) == 1:
        assert label == names[0]
    else:
        assert label.startswith(names[0][: ACTIVATION_LABEL_MAX - 1])
    assert model.activation_text.split(",") == names


def test_the_label_counts_runs() -> None:
    assert MIXED.model.activation_label == "tanh,relu*2"


def test_the_gradient_panel_names_each_layers_activation_at_80_columns() -> None:
    trainer = live_trainer(MIXED, preset="mixed")
    trainer.run(max_steps=3)
    app = BpmonApp(trainer)
    seen: list[str] = []

    async def main() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            panel = app.query_one(GradientPanel)
            deadline = time.monotonic() + 10
            while True:
                header, body = panel.header.text.plain, panel.body.text.plain
                if "act" in header and body.count("layer") == 4:
                    break
                assert time.monotonic() < deadline, (header, body)
                await pilot.pause(0.05)
            col = header.index(" act ") + 1
            seen.extend(row[col : col + 4].strip() for row in body.splitlines())
            assert panel.size.width <= 80

    asyncio.run(main())
    assert seen == ["tanh", "relu", "relu", "—"]


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


MIXED_TOML = """description = "mixed"
[data]
name = "circle"
n = 60
[model]
hidden = [4, 4, 4]
activation = ["tanh", "relu", "relu"]
output = "sigmoid"
loss = "bce"
[train]
optimizer = "adam"
lr = 0.01
epochs = 20
"""


def test_the_run_file_and_the_json_stay_format_1(tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema_path = Path(__file__).resolve().parent.parent / "bpmon" / "schema" / "run-v2.schema.json"
    validator = jsonschema.Draft202012Validator(json.loads(schema_path.read_text()))
    preset = tmp_path / "mixed.toml"
    preset.write_text(MIXED_TOML, encoding="utf-8")
    record = tmp_path / "run.jsonl"
    code, out, err = run_cli(
        ["--preset", str(preset), "--headless", "--json", "--record", str(record)]
    )
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["activation"] == "tanh,relu,relu"  # a string, as format 1 has it
    lines = [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]
    for line in lines:
        errors = list(validator.iter_errors(line))
        assert not errors, errors[0].message
    header = lines[0]
    assert [layer["activation"] for layer in header["layers"]] == ["tanh", "relu", "relu", None]
    assert "tanh,relu*2" in header["switches"]
    snapshot = next(line for line in lines if "step" in line)
    assert [layer["activation"] for layer in snapshot["layers"]] == ["tanh", "relu", "relu", None]
    # The header's config reads back as the same run.
    from bpmon.runfile import config_from_record

    again = config_from_record(header["config"], "header")
    assert again.model.activation == ("tanh", "relu", "relu")


def test_a_validated_list_is_kept_as_a_tuple() -> None:
    assert validate(MIXED, "test") is MIXED
    assert MIXED.model.activations == ("tanh", "relu", "relu")
