"""A stand-in server's life: an aiohttp application on a free loopback port, in its own thread.

Every stand-in (the Graph API, the TradeIndia/ExportersIndia APIs, the hostile vendor of the
secrets test) runs the same way; this is that way, once.
"""

from __future__ import annotations

import asyncio
import socket
import threading

from aiohttp import web


class LoopbackServer:
    """Serves one :class:`aiohttp.web.Application` on 127.0.0.1 until :meth:`stop`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self, app: web.Application) -> int:
        """Serve ``app``; returns the port once it accepts connections."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5, access_log=None)
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.SockSite(runner, sock).start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name=self.name, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"the {self.name} server did not start")
        return self.port

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
