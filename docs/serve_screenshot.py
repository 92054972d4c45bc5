"""Regenerate the README's picture of ``bpmon serve``: ``python docs/serve_screenshot.py`` writes
docs/serve.png (needs ``pip install '.[test]'`` and Chromium at /usr/bin/chromium).

It serves the xor preset, opens the page in headless Chromium and takes the picture once the run
has finished and the page stands still, so that it shows the whole plateau and drop.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

VIEWPORT = {"width": 1280, "height": 720}


def finished(run: Path) -> bool:
    lines = run.read_text(encoding="utf-8").split("\n")[:-1] if run.exists() else []
    return any(json.loads(line).get("state") == "finished" for line in lines)


def main(out: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run.jsonl"
        args = ["serve", "--port", str(port), "--preset", "xor", "--record", str(run)]
        server = subprocess.Popen([sys.executable, "-m", "bpmon", *args], stdout=subprocess.DEVNULL)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
                page = browser.new_page(viewport=VIEWPORT)
                # Only the page's own files: its web-font request would wait on the network.
                page.route(
                    "**/*",
                    lambda route: (
                        route.continue_()
                        if route.request.url.startswith("http://127.0.0.1")
                        else route.abort()
                    ),
                )
                for _ in range(100):
                    try:
                        page.goto(f"http://127.0.0.1:{port}/")
                        break
                    except Exception:  # not listening yet
                        time.sleep(0.1)
                while not finished(run):
                    time.sleep(0.1)
                before = b""
                while (picture := page.screenshot()) != before:
                    before = picture
                    time.sleep(0.3)
                out.write_bytes(picture)
                browser.close()
        finally:
            server.send_signal(signal.SIGINT)
            server.wait()


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("serve.png")
    main(target)
    print(target, target.stat().st_size, "bytes")
