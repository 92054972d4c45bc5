"""The ``bpmon`` command: headless output, the JSON summary, overrides, ``--record`` files, and
exit codes with one-line messages.

Most tests run ``python -m bpmon`` in a subprocess from a temporary directory, so that they
exercise the installed package (CI installs it without ``-e``) and its exit status, and never
pick the repository up from the working directory.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bpmon import cli
from bpmon.presets import list_presets
from bpmon.telemetry import STATUSES
from bpmon.trainer.run import RUNAWAY_FACTOR

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 60

SUMMARY_KEYS = {
    "preset",
    "findings",
    "r2",
    "test_r2",
    "notes",
    "seed",
    "epochs",
    "architecture",
    "activation",
    "batchnorm",
    "final_loss",
    "accuracy",
    "test_accuracy",
    "diverged",
    "diverged_step",
    "diverged_layer",
    "steps_per_second",
    "layers",
    "predictions",
}
LAYER_KEYS = {"name", "grad_norm_initial", "grad_norm_final", "status_initial", "status_final"}
PREDICTION_KEYS = {"input", "target", "output"}


def bpmon(*args: str, cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    kwargs.setdefault("capture_output", "stdout" not in kwargs)
    return subprocess.run(
        [sys.executable, "-m", "bpmon", *args],
        cwd=cwd,
        text=True,
        timeout=TIMEOUT,
        check=False,
        **kwargs,
    )


def strict_json(line: str) -> Any:
    """Parse JSON the way other languages do: NaN and Infinity are not JSON."""

    def refuse(token: str) -> None:
        raise ValueError(f"not JSON: {token}")

    return json.loads(line, parse_constant=refuse)


def one_line_error(stderr: str) -> str:
    """The whole of stderr must be one line of message, without a traceback."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("bpmon:"), stderr
    return lines[0]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


DIVERGING_TOML = """\
description = "ReLU into an identity output at lr 100, the largest allowed: diverges at once"
[data]
name = "circle"
n = 100
seed = 1
[model]
hidden = [8, 8]
activation = "relu"
output = "identity"
loss = "mse"
init = "he"
[train]
lr = 100.0
epochs = 1000
"""

MINIBATCH_TOML = """\
description = "circle in mini-batches of 32"
[data]
name = "circle"
n = 100
seed = 1
[model]
hidden = [6]
activation = "tanh"
init = "xavier"
[train]
lr = 0.2
batch_size = 32
epochs = 6
"""


# --- help and presets --------------------------------------------------------------------------


def test_help(tmp_path: Path) -> None:
    proc = bpmon("--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for option in ("--preset", "--headless", "--json", "--record", "--list-presets", "--lr"):
        assert option in proc.stdout
    # The subcommands are found from the main help, each with its own.
    for command in ("replay", "watch", "serve"):
        assert f"bpmon {command} " in proc.stdout
        sub = bpmon(command, "--help", cwd=tmp_path)
        assert sub.returncode == 0 and f"usage: bpmon {command}" in sub.stdout, sub.stderr
    assert proc.stderr == ""


def test_list_presets(tmp_path: Path) -> None:
    proc = bpmon("--list-presets", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    presets = {p.name: p.description for p in list_presets()}
    assert {"xor-story", "relu-bn"} <= set(presets)
    for name, description in presets.items():
        assert description
        assert any(
            line.split()[0] == name and line.rstrip().endswith(description) for line in lines
        ), (name, proc.stdout)


# --- the JSON summary --------------------------------------------------------------------------


def test_xor_story_json(tmp_path: Path) -> None:
    proc = bpmon("--preset", "xor-story", "--headless", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    summary = strict_json(proc.stdout.splitlines()[-1])
    assert isinstance(summary, dict)
    assert set(summary) == SUMMARY_KEYS
    assert summary["preset"] == "xor-story"
    assert summary["seed"] == 0
    assert summary["epochs"] == 2000
    assert summary["architecture"] == "2-4-1"
    assert summary["activation"] == "sigmoid"
    assert summary["batchnorm"] is False
    assert summary["final_loss"] == pytest.approx(0.125, abs=1e-3)
    assert 0.0 <= summary["accuracy"] <= 1.0
    assert summary["test_accuracy"] is None
    assert summary["diverged"] is False
    assert summary["diverged_step"] is None and summary["diverged_layer"] is None
    assert summary["steps_per_second"] > 0

    assert [layer["name"] for layer in summary["layers"]] == ["layer0", "layer1"]
    for layer in summary["layers"]:
        assert set(layer) == LAYER_KEYS
        assert layer["grad_norm_initial"] > 0 and layer["grad_norm_final"] > 0
        assert layer["status_initial"] in STATUSES and layer["status_final"] in STATUSES

    predictions = summary["predictions"]
    assert len(predictions) == 4
    for p in predictions:
        assert set(p) == PREDICTION_KEYS
        assert 0.0 < p["output"] < 1.0
    assert [p["input"] for p in predictions] == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert [p["target"] for p in predictions] == [0, 1, 1, 0]


def test_json_predictions_are_capped_at_sixteen(tmp_path: Path) -> None:
    proc = bpmon("--preset", "relu-bn", "--headless", "--json", "--epochs", "3", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = strict_json(proc.stdout.splitlines()[-1])
    assert set(summary) == SUMMARY_KEYS
    assert summary["architecture"] == "2-8-8-4-1"
    assert summary["batchnorm"] is True
    assert len(summary["predictions"]) == 16
    assert all(set(p) == PREDICTION_KEYS for p in summary["predictions"])
    assert len(summary["layers"]) == 4


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``bpmon.cli.main`` in this process: (exit status, stdout, stderr)."""
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse exits itself
        code = exc.code if isinstance(exc.code, int) else 2
    out, err = capsys.readouterr()
    return code, out, err


def test_overrides_reach_the_summary(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--preset", "xor-story", "--headless", "--json", "--epochs", "50", "--seed", "3"]
    argv += ["--activation", "tanh", "--depth", "3", "--width", "5", "--batchnorm"]
    argv += ["--lr", "0.1", "--optimizer", "adam"]
    code, out, err = run_main(argv, capsys)
    assert code == 0, err
    summary = strict_json(out.splitlines()[-1])
    assert set(summary) == SUMMARY_KEYS
    assert summary["architecture"] == "2-5-5-5-1"
    assert summary["activation"] == "tanh"
    assert summary["batchnorm"] is True
    assert summary["epochs"] == 50
    assert summary["seed"] == 3
    assert len(summary["layers"]) == 4


def test_no_batchnorm_override(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--preset", "relu-bn", "--headless", "--json", "--epochs", "5", "--no-batchnorm"]
    code, out, err = run_main(argv, capsys)
    assert code == 0, err
    summary = strict_json(out.splitlines()[-1])
    assert summary["batchnorm"] is False
    assert summary["architecture"] == "2-8-8-4-1"
    assert summary["activation"] == "relu"
    assert summary["epochs"] == 5


def test_a_seed_changes_the_numbers_and_repeats_them(capsys: pytest.CaptureFixture[str]) -> None:
    def final(seed: str) -> float:
        argv = ["--preset", "relu-bn", "--headless", "--json", "--epochs", "5", "--seed", seed]
        code, out, err = run_main(argv, capsys)
        assert code == 0, err
        return float(strict_json(out.splitlines()[-1])["final_loss"])

    assert final("1") == final("1") != final("2")


# --- progress lines ----------------------------------------------------------------------------

EPOCH_LINE = re.compile(r"^Epoch (\d+), Loss: ")


def progress_epochs(stdout: str) -> list[int]:
    return [int(m.group(1)) for m in map(EPOCH_LINE.match, stdout.splitlines()) if m]


def test_progress_lines_every_n_epochs(tmp_path: Path) -> None:
    proc = bpmon(
        "--preset", "xor-story", "--headless", "--epochs", "50", "--every", "10", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert progress_epochs(proc.stdout) == [10, 20, 30, 40, 50]
    norms = [line for line in proc.stdout.splitlines() if "grad norms" in line]
    assert len(norms) == 5
    assert "layer0" in norms[0] and "layer1" in norms[0]
    # Not a terminal: plain lines, no carriage returns or escape codes anywhere.
    assert "\r" not in proc.stdout and "\r" not in proc.stderr
    assert "\x1b" not in proc.stdout and "\x1b" not in proc.stderr
    assert "Final loss:" in proc.stdout


def test_progress_defaults_to_a_tenth_of_the_epochs(tmp_path: Path) -> None:
    proc = bpmon("--preset", "xor-story", "--headless", "--epochs", "50", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert progress_epochs(proc.stdout) == list(range(5, 51, 5))


def test_progress_with_mini_batches(tmp_path: Path) -> None:
    preset = write(tmp_path / "mini.toml", MINIBATCH_TOML)
    proc = bpmon("--preset", str(preset), "--headless", "--every", "2", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert progress_epochs(proc.stdout) == [2, 4, 6]
    summary = strict_json(proc.stdout.splitlines()[-1])
    assert summary["epochs"] == 6
    assert summary["preset"] == "mini"


# --- --record ----------------------------------------------------------------------------------


def read_records(path: Path) -> list[Any]:
    return [strict_json(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_record_writes_a_run_file(tmp_path: Path) -> None:
    record = tmp_path / "run.jsonl"
    proc = bpmon(
        "--preset", "xor-story", "--headless", "--epochs", "300", "--record", str(record),
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    header, *lines, end = read_records(record)
    assert header["format"] == "bpmon-run" and header["version"] == 2
    assert header["source"] == "bpmon" and header["name"] == "xor-story"
    assert header["config"]["train"]["epochs"] == 300
    assert [layer["name"] for layer in header["layers"]] == ["layer0", "layer1"]
    assert end == {"event": "end", "state": "finished"}
    assert len(lines) >= 10  # at least one per progress line
    steps = [line["step"] for line in lines]
    assert steps == sorted(steps)
    assert steps[-1] == 300
    assert lines[-1]["state"] == "finished"
    for line in lines:
        assert {"step", "epoch", "loss", "state", "layers", "time", "lr"} <= set(line)


@pytest.mark.parametrize("old", ["{}\n", "not a run\n", "x"])
def test_record_refuses_a_file_that_is_not_empty(tmp_path: Path, old: str) -> None:
    record = write(tmp_path / "run.jsonl", old)
    args = ("--preset", "xor-story", "--headless", "--epochs", "20", "--record", str(record))
    proc = bpmon(*args, cwd=tmp_path)
    assert proc.returncode == 2
    assert "run.jsonl" in one_line_error(proc.stderr)
    assert record.read_text(encoding="utf-8") == old


def test_record_into_an_empty_file_is_fine(tmp_path: Path) -> None:
    record = write(tmp_path / "run.jsonl", "")
    args = ("--preset", "xor-story", "--headless", "--epochs", "20", "--record", str(record))
    assert bpmon(*args, cwd=tmp_path).returncode == 0
    assert read_records(record)[0]["format"] == "bpmon-run"


def test_record_into_a_missing_folder_is_a_usage_error(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "dir" / "run.jsonl"
    proc = bpmon("--preset", "xor-story", "--headless", "--record", str(target), cwd=tmp_path)
    assert proc.returncode == 2
    assert "run.jsonl" in one_line_error(proc.stderr)


# --- errors: exit status 2 and one line ------------------------------------------------------


def test_unknown_preset(tmp_path: Path) -> None:
    proc = bpmon("--preset", "no-such-preset", "--headless", cwd=tmp_path)
    assert proc.returncode == 2
    message = one_line_error(proc.stderr)
    assert "no-such-preset" in message
    assert "xor-story" in message and "relu-bn" in message  # lists what there is
    assert proc.stdout == ""


def test_missing_preset_file(tmp_path: Path) -> None:
    proc = bpmon("--preset", str(tmp_path / "absent.toml"), "--headless", cwd=tmp_path)
    assert proc.returncode == 2
    assert "absent.toml" in one_line_error(proc.stderr)


def test_malformed_toml_names_file_and_line(tmp_path: Path) -> None:
    preset = write(tmp_path / "broken.toml", 'description = "x"\n[model\nhidden = [4]\n')
    proc = bpmon("--preset", str(preset), "--headless", cwd=tmp_path)
    assert proc.returncode == 2
    message = one_line_error(proc.stderr)
    assert "broken.toml" in message
    assert "line 2" in message


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('[model]\nactivation = "swish"\n', "activation"),
        ('[train]\nlr = "fast"\n', "lr"),
        ("[train]\nepochs = 1.5\n", "epochs"),
        ("[model]\nhidden = [4, 0]\n", "hidden"),
        ("[train]\nlearning_rate = 0.1\n", "learning_rate"),
        ("[train]\nlr = -1.0\n", "lr"),
    ],
)
def test_bad_value_in_toml_names_the_key(tmp_path: Path, toml: str, key: str) -> None:
    preset = write(tmp_path / "bad.toml", 'description = "bad"\n' + toml)
    proc = bpmon("--preset", str(preset), "--headless", cwd=tmp_path)
    assert proc.returncode == 2
    message = one_line_error(proc.stderr)
    assert key in message and "bad.toml" in message


def test_a_network_the_data_cannot_feed_is_bad_input(tmp_path: Path) -> None:
    # Valid TOML and valid values, but a softmax output on XOR's single target column.
    toml = '[data]\nname = "xor"\n[model]\noutput = "softmax"\nloss = "cross_entropy"\n'
    preset = write(tmp_path / "soft.toml", 'description = "softmax on xor"\n' + toml)
    proc = bpmon("--preset", str(preset), "--headless", cwd=tmp_path)
    assert proc.returncode == 2
    message = one_line_error(proc.stderr)
    assert "soft.toml" in message and "softmax" in message


def test_missing_csv_in_a_preset_names_the_csv(tmp_path: Path) -> None:
    toml = '[data]\nname = "csv"\npath = "points.csv"\n'
    preset = write(tmp_path / "mine.toml", 'description = "csv"\n' + toml)
    proc = bpmon("--preset", str(preset), "--headless", cwd=tmp_path)
    assert proc.returncode == 2
    assert "points.csv" in one_line_error(proc.stderr)


def test_a_csv_preset_trains(tmp_path: Path) -> None:
    rows = ["x1,x2,label"] + [f"{i % 5},{i % 3},{'a' if i % 2 else 'b'}" for i in range(20)]
    write(tmp_path / "points.csv", "\n".join(rows) + "\n")
    toml = '[data]\nname = "csv"\npath = "points.csv"\n[train]\nepochs = 5\n'
    sub = tmp_path / "elsewhere"
    sub.mkdir()
    preset = write(tmp_path / "mine.toml", 'description = "csv"\n' + toml)
    # The CSV is found next to the preset, not in the working directory.
    proc = bpmon("--preset", str(preset), "--headless", "--json", cwd=sub)
    assert proc.returncode == 0, proc.stderr
    assert strict_json(proc.stdout.splitlines()[-1])["architecture"] == "2-4-1"


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (["--lr", "-1"], "--lr"),
        (["--lr", "0"], "--lr"),
        (["--depth", "13"], "--depth"),
        (["--epochs", "0"], "--epochs"),
        (["--activation", "swish"], "--activation"),
        (["--optimizer", "rmsprop"], "--optimizer"),
        (["--width", "0"], "--width"),
        (["--no-such-flag"], "--no-such-flag"),
    ],
)
def test_bad_command_line_values(tmp_path: Path, args: list[str], word: str) -> None:
    proc = bpmon("--preset", "xor-story", "--headless", *args, cwd=tmp_path)
    assert proc.returncode == 2
    assert word in one_line_error(proc.stderr)
    assert proc.stdout == ""


def test_the_monitor_needs_a_terminal(tmp_path: Path) -> None:
    proc = bpmon("--preset", "xor-story", cwd=tmp_path)
    assert proc.returncode == 2
    assert "use --headless" in one_line_error(proc.stderr)


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_the_monitor_needs_stdin_to_be_a_terminal_too(tmp_path: Path) -> None:
    # stdout is a terminal here; only stdin is not, which alone must be enough to refuse.
    leader, follower = os.openpty()
    try:
        proc = bpmon("--preset", "xor-story", cwd=tmp_path, stdout=follower, stderr=subprocess.PIPE)
    finally:
        os.close(follower)
        os.close(leader)
    assert proc.returncode == 2
    assert "use --headless" in one_line_error(proc.stderr)


# --- a diverging run: exit status 1 ----------------------------------------------------------


def test_a_diverging_run_exits_1_naming_step_and_layer(tmp_path: Path) -> None:
    preset = write(tmp_path / "blowup.toml", DIVERGING_TOML)
    proc = bpmon("--preset", str(preset), "--headless", cwd=tmp_path)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    message = proc.stderr.strip().splitlines()[-1]
    assert re.search(r"\bstep \d+", message), message
    assert re.search(r"\blayer\d+\b", message), message
    # numpy's overflow RuntimeWarnings must not reach the user either: one line, as for exit 2.
    one_line_error(proc.stderr)


def test_a_diverging_run_reports_it_in_the_json(tmp_path: Path) -> None:
    preset = write(tmp_path / "blowup.toml", DIVERGING_TOML)
    record = tmp_path / "blowup.jsonl"
    proc = bpmon(
        "--preset", str(preset), "--headless", "--json", "--record", str(record), cwd=tmp_path
    )
    assert proc.returncode == 1
    last = proc.stdout.splitlines()[-1]
    summary = json.loads(last)
    assert set(summary) == SUMMARY_KEYS
    assert summary["diverged"] is True
    assert isinstance(summary["diverged_step"], int) and summary["diverged_step"] >= 1
    assert re.fullmatch(r"layer\d+", summary["diverged_layer"])
    # JSON has no NaN (null), or the loss ran away past RUNAWAY_FACTOR times its start.
    assert summary["final_loss"] is None or summary["final_loss"] > RUNAWAY_FACTOR
    assert f"step {summary['diverged_step']}" in proc.stderr
    assert summary["diverged_layer"] in proc.stderr
    for line in read_records(record):
        assert isinstance(line, dict)
    # The summary must be strict JSON too (no NaN/Infinity tokens), even when outputs blew up.
    strict_json(last)


# --- the README and CI -------------------------------------------------------------------------


def readme_commands(text: str) -> list[str]:
    """The lines of the README's fenced code blocks that run pytest, without a ``$`` prompt."""
    commands, fenced = [], False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            fenced = not fenced
        elif fenced and "pytest" in stripped:
            commands.append(stripped.removeprefix("$").strip())
    return commands


def test_the_readme_test_command_is_what_ci_runs() -> None:
    readme, ci = REPO / "README.md", REPO / ".ci" / "run"
    if not (readme.is_file() and ci.is_file()):
        pytest.skip("README.md or .ci/run is not there yet")
    commands = readme_commands(readme.read_text(encoding="utf-8"))
    assert commands, "README.md shows no pytest command in a code block"
    ci_lines = [
        line
        for line in ci.read_text(encoding="utf-8").splitlines()
        if not line.lstrip().startswith("#")
    ]
    # The README's test command, word for word, is what CI runs.
    found = [c for c in commands if any(c in line for line in ci_lines)]
    assert found, f"none of the README's test commands {commands} is run verbatim by .ci/run"


# --- one line, whatever the input ----------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["x\ny"],  # argparse quotes unrecognized arguments raw
        ["--headless", "--record", "/no/such/folder/a\nb.jsonl"],
        ["--headless", "--preset", "/no/such/folder/a\nb.toml"],
        ["--headless", "--preset", "a\nb"],
        ["--headless", "--activation", "a\nb"],
        ["--headless", "--lr", "1\n2"],
        ["--headless", "--record", "/no/such/folder/\x1b[31mred"],
    ],
)
def test_a_newline_or_escape_in_an_argument_stays_on_one_line(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_main(args, capsys)
    assert code == 2
    assert out == ""
    line = one_line_error(err)
    assert "\x1b" not in line


def test_a_pasted_megabyte_is_echoed_cut_short(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(["--headless", "--seed", "7" * 1_000_000], capsys)
    assert code == 2
    line = one_line_error(err)
    assert "--seed" in line and "expected an integer >= 0" in line
    assert len(line) < 200


def test_help_is_returned_not_raised(capsys: pytest.CaptureFixture[str]) -> None:
    # main() returns its status (the console script passes it to sys.exit), --help included.
    assert cli.main(["--help"]) == 0
    assert "--headless" in capsys.readouterr().out
