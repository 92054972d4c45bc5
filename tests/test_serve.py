"""``bpmon serve``: the monitor in a real browser, and the command's refusals.

The browser test starts ``bpmon serve`` and headless Chromium (Debian's ``chromium`` package,
driven by Playwright), loads the page and presses keys in it. The page draws the terminal on a
canvas, so there is no text in the DOM to read; the test checks what it can observe instead: the
canvas's pixels (drawn at all, changed by ``?``, back again after escape), the run file the
served monitor writes with ``--record`` (``b`` restarts it with batch-norm), and the process
that ``q`` ends.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page

REPO = Path(__file__).resolve().parent.parent
# A recorded run, for the refusals of a replay's --compare.
RUN_FILE = str(REPO / "tests" / "data" / "run-v1.jsonl")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TIMEOUT = 30.0

T = TypeVar("T")


def wait_for(condition: Callable[[], T], what: str, timeout: float = TIMEOUT) -> T:
    """Poll ``condition`` until it returns something true; return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run_bpmon(*args: str, cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bpmon", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
        **kwargs,
    )


def records(path: Path) -> list[dict[str, Any]]:
    """The run file's whole lines so far (the writer may be in the middle of one)."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").split("\n")[:-1]
    return [json.loads(line) for line in lines]


class Served:
    """A ``bpmon serve`` process, its output in files (a pipe nobody reads would fill up)."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.port = free_port()
        self.out = tmp_path / "serve.out"
        self.err = tmp_path / "serve.err"
        with self.out.open("w") as out, self.err.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bpmon", "serve", "--port", str(self.port), *args],
                cwd=tmp_path,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
        wait_for(self.listening, f"bpmon serve to listen on port {self.port}")

    def listening(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"bpmon serve exited {self.proc.returncode}: {self.output()}")
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def output(self) -> str:
        return self.out.read_text() + self.err.read_text()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=TIMEOUT)


@pytest.fixture
def page() -> Iterator[Page]:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright is not installed: pip install '.[test]'"
    )
    pytest.importorskip(
        "textual_serve", reason="textual-serve is not installed: pip install '.[serve]'"
    )
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"Chromium is not installed ({CHROMIUM}): apt-get install chromium")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        # The page asks Google for a font; nothing outside this machine is needed, or reachable
        # on every test machine, so such a request fails at once instead of timing out.
        page.route(
            "**/*",
            lambda route: (
                route.continue_()
                if route.request.url.startswith("http://127.0.0.1")
                else route.abort()
            ),
        )
        yield page
        browser.close()


def canvas(page: Page) -> str:
    """The terminal's text layer (every character and colour the app drew), as a PNG data URL."""
    url: str = page.evaluate("document.querySelector('canvas.xterm-text-layer').toDataURL()")
    return url


def colours(page: Page) -> int:
    """How many distinct colours the terminal's text layer holds: 1 or 0 before it is drawn."""
    count: int = page.evaluate(
        """() => {
            const c = document.querySelector('canvas.xterm-text-layer');
            if (!c || !c.width) return 0;
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            const seen = new Set();
            for (let i = 0; i < d.length; i += 4) {
                seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
            }
            return seen.size;
        }"""
    )
    return count


def settled(page: Page) -> str | None:
    """The canvas, once five looks over a second see the same picture. Two looks 0.2 s apart
    were not enough on a busy machine: the page stood for longer than that at the size it had
    before the browser's terminal size arrived (no footer, the narrow layout), and that
    picture was taken for the monitor's."""
    first = canvas(page)
    for _ in range(4):
        time.sleep(0.25)
        if canvas(page) != first:
            return None
    return first


def test_the_monitor_in_a_browser(tmp_path: Path, page: Page) -> None:
    run = tmp_path / "run.jsonl"
    # A short run: once finished, the screen stands still and pictures can be compared.
    served = Served(tmp_path, "--preset", "xor", "--epochs", "300", "--record", str(run))
    try:
        page.goto(f"http://127.0.0.1:{served.port}/")
        header = wait_for(lambda: records(run)[:1], "the served monitor's run file")[0]
        pid = header["pid"]
        assert header["name"] == "xor"
        assert header["config"]["model"]["batchnorm"] is False
        # Many colours: the panels, bars and the loss plot, not the blank canvas of the intro.
        wait_for(lambda: colours(page) > 8, "the monitor drawn on the page's canvas")
        wait_for(
            lambda: any(r.get("state") == "finished" for r in records(run)), "the run to finish"
        )
        page.focus("textarea.xterm-helper-textarea")
        monitor = wait_for(lambda: settled(page), "the finished monitor to stand still")

        page.keyboard.press("?")
        help_screen = wait_for(
            lambda: (picture := settled(page)) != monitor and picture, "? to open the help"
        )
        assert colours(page) > 8
        page.keyboard.press("Escape")
        wait_for(lambda: settled(page) == monitor, "escape to close the help, the monitor again")
        assert help_screen != monitor

        page.keyboard.press("b")
        restart = wait_for(
            lambda: next((r for r in records(run) if r.get("event") == "restart"), None),
            "b to restart the run with batch-norm",
        )
        assert restart["config"]["model"]["batchnorm"] is True
        assert "+bn" in restart["switches"]

        page.keyboard.press("q")
        wait_for(lambda: records(run)[-1:] and records(run)[-1].get("event") == "end", "q")
        wait_for(lambda: not process_exists(pid), f"the connection's bpmon (pid {pid}) to end")
        # textual-serve closes the page's session when its app ends: "Session ended".
        page.wait_for_selector("body.-closed", timeout=TIMEOUT * 1000)

        # A second tab: its monitor refuses the run file, which holds the first tab's run; its
        # page says its session ended instead of waiting on the start screen for good.
        page.reload()
        page.wait_for_selector("body.-closed", timeout=TIMEOUT * 1000)
        assert "the file exists and is not empty" in served.output()
        assert records(run)[0] == header
    finally:
        status = served.stop()
    assert status == 130, served.output()
    assert "bpmon serve: interrupted" in served.output()
    assert "Traceback" not in served.output()


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_stopping_the_server_ends_every_page_cleanly(tmp_path: Path, page: Page) -> None:
    """ctrl+c with a page open: each connection's monitor quits as after q (its run file
    ends), the page says its session ended, and the server exits 130 at once."""
    run = tmp_path / "run.jsonl"
    served = Served(tmp_path, "--preset", "xor", "--record", str(run))
    try:
        page.goto(f"http://127.0.0.1:{served.port}/")
        pid = wait_for(lambda: records(run)[:1], "the served monitor's run file")[0]["pid"]
        wait_for(lambda: colours(page) > 8, "the monitor drawn on the page's canvas")
    finally:
        status = served.stop()
    assert status == 130, served.output()
    assert not process_exists(pid)
    assert records(run)[-1] == {"event": "end", "state": "stopped"}
    page.wait_for_selector("body.-closed", timeout=TIMEOUT * 1000)
    assert "Traceback" not in served.output()


def test_a_replay_in_a_browser(tmp_path: Path, page: Page) -> None:
    """``bpmon serve replay RUN.jsonl``: any bpmon command line, not only a live run."""
    run = tmp_path / "run.jsonl"
    recorded = run_bpmon(
        "--preset", "xor", "--epochs", "200", "--headless", "--record", "run.jsonl", cwd=tmp_path
    )
    assert recorded.returncode == 0, recorded.stderr
    served = Served(tmp_path, "replay", str(run))
    try:
        page.goto(f"http://127.0.0.1:{served.port}/")
        wait_for(lambda: colours(page) > 8, "the replay drawn on the page's canvas")
        page.focus("textarea.xterm-helper-textarea")
        page.keyboard.press("q")
        page.wait_for_selector("body.-closed", timeout=TIMEOUT * 1000)
    finally:
        status = served.stop()
    assert status == 130, served.output()


# --- refusals: one line, status 2, before anything is served ------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--preset", "nope"], "bpmon: unknown preset 'nope'"),
        (["--depth", "99"], "bpmon: error: argument --depth: '99': expected an integer >= 1"),
        (["--headless"], "bpmon: serve --headless: the page shows the monitor"),
        (["--preset", "xor", "--json"], "bpmon: serve --json: headless only"),
        (["--save-preset", "x.toml"], "bpmon: serve --save-preset: run bpmon --save-preset"),
        (["--port", "0"], "bpmon serve: error: argument --port: '0': expected an integer >= 1"),
        (["--port", "http"], "bpmon serve: error: argument --port: 'http': expected an integer"),
        (["--host", "nosuch.invalid"], "bpmon: serve --host nosuch.invalid: "),
        (["replay", "missing.jsonl"], "bpmon: missing.jsonl: no such file"),
        (["replay", "."], "bpmon: .: is a directory; replay takes a run file"),
        (["--preset", "xor", "--compare", "nope"], "bpmon: --compare: unknown preset 'nope'"),
        (
            ["--compare", "xor", "--compare", "xor", "--compare", "xor", "--compare", "relu-bn"],
            "bpmon: --compare relu-bn: at most 3 runs beside the first (A to D)",
        ),
        (["replay", RUN_FILE, "--compare", "missing.jsonl"], "bpmon: missing.jsonl: no such file"),
    ],
)
def test_bad_arguments_are_one_line_before_serving(
    tmp_path: Path, args: list[str], message: str
) -> None:
    pytest.importorskip("textual_serve", reason="textual-serve is not installed")
    proc = run_bpmon("serve", "--port", str(free_port()), *args, cwd=tmp_path)
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2, proc.stderr
    assert lines[-1].startswith(message), proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    assert not (tmp_path / "x.toml").exists()


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    pytest.importorskip("textual_serve", reason="textual-serve is not installed")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run_bpmon("serve", "--port", str(port), "--host", "localhost", cwd=tmp_path)
    assert proc.returncode == 2
    # localhost is this machine only: no warning, just the reason.
    expected = f"bpmon: serve --port {port}: address already in use; choose another port\n"
    assert proc.stderr == expected


def test_another_host_is_warned_about(tmp_path: Path) -> None:
    """Any address but loopback gets the warning. 192.0.2.1 (TEST-NET-1, never this machine's)
    cannot be bound, so the warning is seen without opening a port to anyone."""
    pytest.importorskip("textual_serve", reason="textual-serve is not installed")
    proc = run_bpmon("serve", "--host", "192.0.2.1", "--port", str(free_port()), cwd=tmp_path)
    warning, error = proc.stderr.splitlines()
    assert warning.startswith("bpmon serve: warning: the page on 192.0.2.1:")
    assert "no authentication" in warning
    assert error.startswith("bpmon: serve --host 192.0.2.1 --port ")
    assert proc.returncode == 2


def test_without_the_serve_extra_the_command_names_it(tmp_path: Path) -> None:
    """A child Python where ``import textual_serve`` fails, as it does without the extra."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["textual_serve"] = None  # every `import textual_serve` now raises ImportError
        from bpmon.cli import main
        sys.exit(main(["serve", "--preset", "xor"]))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr == "bpmon: serve needs the serve extra: pip install 'bpmon[serve]'\n"
