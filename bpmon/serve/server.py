"""textual-serve's server as ``bpmon serve`` needs it: its own start line, the exit status of the
signal that stopped it, every page's monitor ended when it stops, a page whose session ends with
its monitor (even one that never started), and a page that works from the address the browser
used. Written against textual-serve 1.1 (the serve extra pins that minor release)."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from aiohttp import web
from aiohttp.web_runner import GracefulExit
from textual_serve.app_service import AppService
from textual_serve.server import Server, log, to_int


class MonitorServer(Server):
    """Serves ``command`` (one process per browser connection) until ctrl+c or SIGTERM."""

    stopped_by: int | None = None
    """128 + the number of the signal that stopped the server; None while it serves."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sessions: set[asyncio.Task[Any]] = set()

    async def on_startup(self, app: web.Application) -> None:
        # In place of textual-serve's banner: one line, and the signals that stop the server
        # told apart (its own handler treats SIGINT and SIGTERM alike).
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._stop, 128 + signum)
        print(f"bpmon serve: the monitor on {self.public_url} (ctrl+c stops)", flush=True)

    def _stop(self, status: int) -> None:
        self.stopped_by = status
        # aiohttp's run_app ends on this exception: it closes every connection (each app
        # process is told to quit) and returns.
        raise GracefulExit()

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """One browser connection, one app process: textual-serve's handler, with the session
        kept (so that shutdown can end it) and run by :class:`_AppService`."""
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        websocket = web.WebSocketResponse(heartbeat=15)
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        app_service: AppService | None = None

        async def close() -> None:
            await websocket.close()

        try:
            await websocket.prepare(request)
            app_service = _AppService(
                self.command,
                write_bytes=websocket.send_bytes,
                write_str=websocket.send_str,
                close=close,
                download_manager=self.download_manager,
                debug=self.debug,
            )
            await app_service.start(width, height)
            try:
                await self._process_messages(websocket, app_service)
            finally:
                # Before the websocket's close below, which waits on the browser.
                await app_service.stop()
        except asyncio.CancelledError:
            await websocket.close()
        except Exception as error:
            log.exception(error)
        finally:
            if app_service is not None:
                await app_service.stop()
            self._sessions.discard(task)
        return websocket

    async def on_shutdown(self, app: web.Application) -> None:
        # aiohttp waits for open connections before it stops, and a page's websocket stays
        # open while its monitor runs. Cancelled, textual-serve's handler tells its app process
        # to quit (the monitor closes its run file as after q) and closes the page's session.
        for task in self._sessions:
            task.cancel()
        await asyncio.gather(*self._sessions, return_exceptions=True)

    async def handle_index(self, request: web.Request) -> Any:
        # textual-serve writes its public URL into the page, for the websocket and the static
        # files. Listening on 0.0.0.0, that URL is one no other machine can open; the address
        # this browser used is one it can. (The page is rendered without yielding to the
        # loop in between, so no other request sees this request's address.)
        self.public_url = f"{request.scheme}://{request.host}"
        return await super().handle_index(request)


class _AppService(AppService):
    """textual-serve's app process, whose page's session ends when the process does."""

    async def run(self) -> None:
        await super().run()
        # After q, textual-serve has closed the session already (closing again does nothing).
        # A monitor that never started (a --record file that already holds a run, say; its
        # reason is in serve's output) would otherwise leave its page on the start screen for
        # good; closed, the page says "Session ended" and offers a restart.
        await self.remote_close()
