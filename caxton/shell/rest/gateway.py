"""Serves the REST gateway with uvicorn on the server's own event loop, beside gRPC.

The socket is bound first, by the server's start (an address in use fails the start at
once, as for /metrics and /health); uvicorn serves on it from a task. uvicorn's own
signal handling is left out: the server's SIGINT/SIGTERM handler stops everything, the
gateway first."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

from caxton.shell.config import parse_host_port
from caxton.shell.telemetry.http import EndpointUnavailable

logger = logging.getLogger("caxton.rest")
STOP_GRACE_S = 5.0
"""How long requests still running at a stop may take to finish before they are cancelled
(event streams end at once)."""


class _InLoop(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the server's own handler stops it


class RestGateway:
    def __init__(self) -> None:
        self.address = ""
        self._socket: socket.socket | None = None
        self._server: _InLoop | None = None
        self._serving: asyncio.Task[None] | None = None
        self.stopping = asyncio.Event()

    def bind(self, address: str) -> None:
        """Binds `HOST:PORT` (port 0: any free one; `address` then names it); raises
        EndpointUnavailable."""
        host, port = parse_host_port(address) if not address.endswith(":0") else (address[:-2], 0)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            self._socket = socket.create_server((host, port), family=family)
        except OSError as exc:
            reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
            raise EndpointUnavailable(
                f"cannot serve the REST gateway on {host}:{port} ({reason}); "
                "choose another address with --rest HOST:PORT, or --rest off"
            ) from None
        bound = self._socket.getsockname()
        self.address = (
            f"{bound[0]}:{bound[1]}" if family == socket.AF_INET else (f"[{bound[0]}]:{bound[1]}")
        )

    def start(self, app: ASGIApp, *, tls: ssl.SSLContext | None = None) -> None:
        """Serves `app` on the bound socket, with TLS when `tls` is given."""
        assert self._socket is not None, "bind first"
        config = uvicorn.Config(
            app,
            http="h11",
            ws="none",
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            date_header=False,
            timeout_graceful_shutdown=int(STOP_GRACE_S),
        )
        config.load()
        config.ssl = tls  # the server's own context (uvicorn would build one from files)
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)  # not its start or stop
        self._server = _InLoop(config)
        self._serving = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        self._serving.add_done_callback(_report)

    async def close(self) -> None:
        """Ends the event streams, lets other requests finish (for a while), stops."""
        self.stopping.set()
        if self._server is None or self._serving is None:
            if self._socket is not None:
                self._socket.close()
            return
        self._server.should_exit = True
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self._serving), STOP_GRACE_S * 2)
        self._serving.cancel()


def _report(serving: asyncio.Task[None]) -> None:
    if not serving.cancelled() and serving.exception() is not None:
        logger.error("the REST gateway stopped serving: %r", serving.exception())
