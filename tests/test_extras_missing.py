"""Without an integration's extra, importing it is one line naming the extra to install, and
the rest of bpmon never imports the trainers. Children Pythons block the imports, so this runs
whether the extras are installed or not."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("module", "blocked", "line"),
    [
        (
            "bpmon.hf",
            "transformers",
            "bpmon.hf needs transformers, accelerate and torch: pip install 'bpmon[hf]'",
        ),
        (
            "bpmon.hf",
            "accelerate",
            "bpmon.hf needs transformers, accelerate and torch: pip install 'bpmon[hf]'",
        ),
        (
            "bpmon.lightning",
            "lightning",
            "bpmon.lightning needs lightning and torch: pip install 'bpmon[lightning]'",
        ),
    ],
)
def test_a_missing_extra_is_one_line_naming_it(module: str, blocked: str, line: str) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules[{blocked!r}] = None  # every `import {blocked}` now raises ImportError
        from bpmon.errors import BpmonError
        try:
            import {module}
        except ImportError as exc:
            assert isinstance(exc, BpmonError), type(exc)
            print("refused:", exc)
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
    assert proc.stdout.splitlines() == [f"refused: {line}"]


def test_bpmon_and_its_cli_never_import_the_trainers() -> None:
    script = textwrap.dedent(
        """
        import sys
        import bpmon, bpmon.cli, bpmon.torch, bpmon.callbacks, bpmon.extras
        loaded = {m.split(".")[0] for m in sys.modules if sys.modules[m] is not None}
        print(sorted(loaded & {"transformers", "accelerate", "lightning", "pytorch_lightning"}))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "[]"
