"""A small HTTP/1.1 server on the event loop for `/metrics`, `/health` and `/ready`.

Plain asyncio: a scrape builds its text on the loop (about a millisecond for a few
hundred series), which keeps every gauge read on the thread that changes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from collections.abc import Callable

from caxton.shell.config import parse_host_port

Response = tuple[int, str, bytes]
Route = Callable[[], Response]

_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}
_MAX_HEAD = 8192
_READ_TIMEOUT_S = 10


class EndpointUnavailable(Exception):
    """An HTTP endpoint's address cannot be bound; the message says which and what to do."""


class HttpEndpoints:
    """Serves GET (and HEAD) on a few fixed paths."""

    def __init__(self, name: str, flag: str, routes: dict[str, Route]) -> None:
        self.name = name
        self.flag = flag
        self.routes = routes
        self.address = ""
        self._server: asyncio.Server | None = None

    async def start(self, address: str, *, tls: ssl.SSLContext | None = None) -> None:
        """Binds `HOST:PORT` (port 0: any free port; `address` then names the real one),
        serving TLS with `tls`."""
        host, port = parse_host_port(address) if not address.endswith(":0") else (address[:-2], 0)
        try:
            if tls is None:
                self._server = await asyncio.start_server(self._serve, host, port)
            else:
                self._server = await asyncio.start_server(
                    self._serve, host, port, ssl=tls, ssl_handshake_timeout=_READ_TIMEOUT_S
                )
        except OSError as exc:
            reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
            raise EndpointUnavailable(
                f"cannot serve {self.name} on {host}:{port} ({reason}); "
                f"choose another address with {self.flag} HOST:PORT, or {self.flag} off"
            ) from None
        bound = self._server.sockets[0].getsockname()
        self.address = f"{bound[0]}:{bound[1]}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _READ_TIMEOUT_S)
            method, path = _request_line(head)
            status, content_type, body = self._answer(method, path)
            writer.write(
                f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
                f"Content-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            if method != "HEAD":
                writer.write(body)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _answer(self, method: str, path: str) -> Response:
        route = self.routes.get(path.split("?", 1)[0])
        if route is None:
            known = " ".join(sorted(self.routes))
            return 404, "text/plain; charset=utf-8", f"not found; try {known}\n".encode()
        if method not in ("GET", "HEAD"):
            return 405, "text/plain; charset=utf-8", b"only GET\n"
        return route()


def _request_line(head: bytes) -> tuple[str, str]:
    line = head[:_MAX_HEAD].split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split(" ")
    if len(parts) != 3:
        return "", ""
    return parts[0], parts[1]
