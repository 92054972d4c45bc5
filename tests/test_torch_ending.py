"""How a watched script's file ends when the script raises ``SystemExit`` itself (issue 16,
item 7): ``raise SystemExit(3)`` at the top or inside a function, ``exit(4)``, a message, and a
bare ``raise SystemExit``, each in its own process, as a user's script would end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import sys, torch
from torch import nn
from bpmon.torch import watch
model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
mon = watch(model, sys.argv[1], every=1)
for _ in range(2):
    loss = model(torch.ones(2, 3)).pow(2).mean()
    opt.zero_grad(); loss.backward(); opt.step(); mon.log(loss=loss)
def main():
    {ending}
main()
"""


@pytest.mark.parametrize(
    ("ending", "rc", "state"),
    [
        ("raise SystemExit(3)", 3, "error"),
        ("exit(4)", 4, "error"),
        ("raise SystemExit('no data')", 1, "error"),
        ("raise SystemExit", 0, "finished"),
    ],
)
def test_a_raised_system_exit_is_the_end_state(
    tmp_path: Path, ending: str, rc: int, state: str
) -> None:
    path = tmp_path / "end.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCRIPT.format(ending=ending)), str(path)],
        env=env,
        timeout=120,
        capture_output=True,
    )
    assert done.returncode == rc, done.stderr
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert records[-1] == {"event": "end", "state": state}
    assert [r["step"] for r in records if "step" in r] == [1, 2]


def test_the_noted_exit_is_still_a_system_exit() -> None:
    from bpmon.torch import ending

    ending.install()
    import builtins

    with pytest.raises(SystemExit) as caught:
        raise builtins.SystemExit(5)
    assert caught.value.code == 5 and type(caught.value).__name__ == "SystemExit"
    assert ending._exit_codes[-1] == 5
    ending._exit_codes.pop()  # this process goes on: its code was noted, not used
