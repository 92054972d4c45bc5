"""bpmon without PyTorch: ``import bpmon.torch`` works, ``watch`` names the extra to install,
and every command still runs. Needs no torch itself (a child Python blocks the import), so it
runs whether torch is installed or not."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bpmon_torch_imports_without_torch_and_names_the_extra() -> None:
    """A child Python where ``import torch`` fails, as it does where torch is not installed."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["torch"] = None  # every `import torch` now raises ImportError
        import bpmon, bpmon.torch
        from bpmon.errors import BpmonError
        for call in (lambda: bpmon.torch.watch(object(), "x.jsonl"), lambda: bpmon.torch.Monitor):
            try:
                call()
            except ImportError as exc:
                assert isinstance(exc, BpmonError), type(exc)
                print("refused:", exc)
        from bpmon.cli import main
        try:
            main(["--help"])
        except SystemExit as exit:
            assert exit.code == 0, exit.code
        assert main(["--list-presets"]) == 0
        assert main(["--preset", "xor", "--headless", "--json", "--epochs", "3"]) == 0
        assert "torch" not in [m for m in sys.modules if sys.modules[m] is not None]
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    refusals = [line for line in proc.stdout.splitlines() if line.startswith("refused:")]
    assert refusals == ["refused: bpmon.torch needs PyTorch: pip install 'bpmon[torch]'"] * 2
