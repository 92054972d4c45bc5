"""A user's CSV file from the command line: the task guessed, the network chosen for it, the flags,
the saved preset that reproduces the run, and every misuse as one line with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bpmon.presets import load_preset

DATA = Path(__file__).resolve().parent / "data"


def bpmon(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bpmon", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def summary(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    return result


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("bpmon: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_a_multiclass_file_trains_with_softmax(tmp_path: Path) -> None:
    result = summary(bpmon(str(DATA / "iris.csv"), "--headless", "--json", cwd=tmp_path))
    assert result["architecture"] == "4-16-16-3"
    assert result["test_accuracy"] >= 0.85
    assert result["r2"] is None


def test_a_regression_reports_r2_in_the_targets_units(tmp_path: Path) -> None:
    proc = bpmon(str(DATA / "co2.csv"), "--headless", "--json", cwd=tmp_path)
    result = summary(proc)
    assert result["accuracy"] is None and result["test_accuracy"] is None
    assert result["test_r2"] > 0.9
    assert any("regression" in note for note in result["notes"])
    assert any("dropped" in note for note in result["notes"])
    # Targets and predictions in ppm, not standardised units.
    targets = [row["target"] for row in result["predictions"]]
    assert all(300 < t < 400 for t in targets)
    assert "R²:" in proc.stdout and "data: " in proc.stdout


def test_flags_choose_the_label_and_the_features(tmp_path: Path) -> None:
    args = [str(DATA / "grunfeld.csv"), "--label", "invest", "--headless", "--json"]
    result = summary(bpmon(*args, "--features", "value,capital", "--epochs", "20", cwd=tmp_path))
    assert result["architecture"].startswith("2-")
    assert result["r2"] is not None
    # A label of 215 distinct numbers cannot be classified; the years (20 of them) can.
    assert "--task regress" in one_line_error(bpmon(*args, "--task", "classify", cwd=tmp_path))
    year = [str(DATA / "grunfeld.csv"), "--label", "year", "--task", "classify", "--epochs", "5"]
    result = summary(bpmon(*year, "--headless", "--json", cwd=tmp_path))
    assert result["r2"] is None and result["accuracy"] is not None
    assert result["architecture"].endswith("-20")


def test_the_saved_preset_reproduces_the_run(tmp_path: Path) -> None:
    saved = tmp_path / "iris-run.toml"
    first = bpmon(
        "--csv", str(DATA / "iris.csv"), "--depth", "3", "--lr", "0.02", "--epochs", "30",
        "--headless", "--json", "--save-preset", str(saved), cwd=tmp_path,
    )  # fmt: skip
    again = bpmon("--preset", str(saved), "--headless", "--json", cwd=tmp_path)
    assert summary(first)["final_loss"] == summary(again)["final_loss"]
    config = load_preset(str(saved)).config
    assert config.model.hidden == (16, 16, 16) and config.train.lr == 0.02
    assert config.data.name == "csv" and config.data.path == str(DATA / "iris.csv")
    # An existing file is not overwritten.
    proc = bpmon(str(DATA / "iris.csv"), "--headless", "--save-preset", str(saved), cwd=tmp_path)
    assert "exists" in one_line_error(proc)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--label", "x", "--headless"], "only with a CSV file"),
        (["--preset", "xor", "DATA", "--headless"], "not both"),
        (["DATA", "--label", "nope", "--headless"], "nope"),
        (["DATA", "--features", "a,,b", "--headless"], "--features"),
        (["DATA", "--features", "a,a", "--headless"], "--features"),
        (["DATA", "--missing", "error", "--headless"], "co2"),
        (["missing.csv", "--headless"], "missing.csv"),
        (["DATA", "--csv", "other.csv", "--headless"], "one CSV file"),
    ],
)
def test_misuse_is_one_line_and_exit_2(tmp_path: Path, args: list[str], words: str) -> None:
    args = [str(DATA / "co2.csv") if a == "DATA" else a for a in args]
    assert words in one_line_error(bpmon(*args, cwd=tmp_path))


def test_a_text_label_cannot_be_regressed(tmp_path: Path) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("a,b,kind\n1,2,x\n3,4,y\n5,6,x\n7,8,y\n9,1,x\n")
    line = one_line_error(bpmon(str(csv), "--task", "regress", "--headless", cwd=tmp_path))
    assert "t.csv" in line
