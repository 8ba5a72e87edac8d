"""One MCP server over the official SDK: started on first use, restarted after it dies.

The SDK's `Client` is an async context manager built on anyio task groups, which must
be entered and left by the same task; so each connection has an owner task that
enters it, hands the connected client over, and leaves it when told to stop (which,
for a stdio server, closes its stdin and then terminates its process tree).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from typing import Any, Literal

import mcp_types
from mcp import Client, MCPDeprecationWarning, MCPError, StdioServerParameters

from caxton.shell.tools.settings import ToolServerConfig

logger = logging.getLogger("caxton.tools")

START_TIMEOUT_S = 30.0
"""How long a server may take to start and answer `initialize` (not part of a call's timeout)."""

WATCH_INTERVAL_S = 5.0
"""How often a running server is pinged, so that one that died is restarted before a call
finds out."""

ConnectionState = Literal["idle", "starting", "running", "failed", "stopped"]
_CLOSED = mcp_types.CONNECTION_CLOSED
# JSON-RPC errors that are about the request, not the server's health
_REQUEST_ERRORS = frozenset({mcp_types.INVALID_PARAMS, mcp_types.METHOD_NOT_FOUND})


class ToolServerError(Exception):
    """The server could not be reached, died, or broke the protocol; counts for the breaker."""


class ToolRequestError(Exception):
    """The server refused the request itself (unknown tool, bad arguments)."""


class ServerConnection:
    """The client side of one configured MCP server."""

    def __init__(self, config: ToolServerConfig) -> None:
        self.config = config
        self.state: ConnectionState = "idle"
        self.last_error = ""
        self.starts = 0
        self.tools: list[mcp_types.Tool] | None = None
        self._client: Client | None = None
        self._owner: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self._revival: asyncio.Task[None] | None = None

    async def call(
        self, tool: str, arguments: dict[str, Any], timeout_s: float
    ) -> mcp_types.CallToolResult:
        """Calls a tool within `timeout_s` (raises TimeoutError), starting the server first
        if needed (bounded apart, by START_TIMEOUT_S). Raises ToolServerError or
        ToolRequestError."""
        client = await self._connected()
        try:
            async with asyncio.timeout(timeout_s):
                return await client.call_tool(tool, arguments)
        except MCPError as exc:
            if exc.code in _REQUEST_ERRORS:
                raise ToolRequestError(exc.message) from None
            if exc.code == _CLOSED:
                why = "the connection closed (the server exited?); it restarts on the next call"
                await self._lost(why)
                raise ToolServerError(why) from None
            raise ToolServerError(exc.message) from None
        except (asyncio.CancelledError, TimeoutError):
            raise
        except Exception as exc:  # a transport or validation failure: the session is suspect
            why = _describe(exc)
            await self._lost(why)
            raise ToolServerError(why) from None

    async def list_tools(self) -> list[mcp_types.Tool]:
        """The server's tools (starting it if needed), remembered for `caxton tools list`."""
        client = await self._connected()
        try:
            listed = await client.list_tools()
        except MCPError as exc:
            if exc.code == _CLOSED:
                await self._lost("connection closed")
            raise ToolServerError(exc.message) from None
        self.tools = list(listed.tools)
        return self.tools

    async def close(self) -> None:
        """Stops the server (if running) and waits for its owner task."""
        self.state = "stopped"
        if self._revival is not None:
            self._revival.cancel()
            with contextlib.suppress(BaseException):
                await self._revival
        await self._shut()

    async def _connected(self) -> Client:
        if self._client is not None and self.state == "running":
            return self._client
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._client is not None and self.state == "running":
                return self._client
            if self.state == "stopped":
                raise ToolServerError(f"tool server {self.config.name} is stopped")
            await self._shut()
            return await self._start()

    async def _start(self) -> Client:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[Client] = loop.create_future()
        self._stop = asyncio.Event()
        self.state = "starting"
        self.starts += 1
        if self.starts > 1:
            logger.warning("restarting tool server %s (%s)", self.config.name, self.last_error)
        self._owner = loop.create_task(self._own(ready, self._stop), name=f"mcp:{self.config.name}")
        try:
            return await asyncio.wait_for(asyncio.shield(ready), START_TIMEOUT_S)
        except TimeoutError:
            why = f"did not finish starting within {START_TIMEOUT_S:g}s"
            self._stop.set()
            self.state, self.last_error = "failed", why
            raise ToolServerError(why) from None

    async def _own(self, ready: asyncio.Future[Client], stop: asyncio.Event) -> None:
        try:
            async with self._new_client() as client:
                self._client = client
                self.state = "running"
                self.last_error = ""
                if not ready.done():
                    ready.set_result(client)
                logger.info("tool server %s running (%s)", self.config.name, self.config.where)
                await self._watch(client, stop)
        except asyncio.CancelledError:
            pass
        except BaseException as exc:
            why = _describe(exc)
            if self.state != "stopped":
                self.state, self.last_error = "failed", why
            logger.warning("tool server %s failed: %s", self.config.name, why)
            if not ready.done():
                ready.set_exception(ToolServerError(f"cannot start: {why}"))
        finally:
            self._client = None
            if not ready.done():
                ready.set_exception(ToolServerError("stopped before it was ready"))

    async def _watch(self, client: Client, stop: asyncio.Event) -> None:
        """Until told to stop, pings the server when WATCH_INTERVAL_S passes; one whose
        connection closed (its process died) is restarted at once, not at the next call."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), WATCH_INTERVAL_S)
                return
            with warnings.catch_warnings():  # deprecated for the 2026 protocol; we speak legacy
                warnings.simplefilter("ignore", MCPDeprecationWarning)
                ping = client.send_ping()
            try:
                await asyncio.wait_for(ping, WATCH_INTERVAL_S)
                continue
            except TimeoutError:
                continue  # busy, perhaps hung: calls' timeouts and the breaker deal with that
            except MCPError as exc:
                if exc.code != _CLOSED:
                    continue
                why = "the connection closed (the server exited?)"
            except Exception as exc:
                why = _describe(exc)
            self.state, self.last_error = "failed", why
            self._client = None
            logger.warning("tool server %s died (%s); restarting it", self.config.name, why)
            self._revival = asyncio.get_running_loop().create_task(self._revive())
            return

    async def _revive(self) -> None:
        with contextlib.suppress(ToolServerError):
            await self._connected()

    def _new_client(self) -> Client:
        config = self.config
        if config.url:
            return Client(config.url, mode="legacy", cache=None)
        params = StdioServerParameters(
            command=config.command, args=list(config.args), env=dict(config.env) or None
        )
        return Client(params, mode="legacy", cache=None)

    async def _lost(self, why: str) -> None:
        """The session broke: forget it, so the next call starts the server again."""
        if self.state == "stopped":
            return
        self.state, self.last_error = "failed", why
        logger.warning("tool server %s lost: %s", self.config.name, why)
        await self._shut()

    async def _shut(self) -> None:
        owner, stop = self._owner, self._stop
        self._owner = None
        self._client = None
        if owner is None or stop is None:
            return
        stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(owner), timeout=10)
        except TimeoutError:
            owner.cancel()
            with contextlib.suppress(BaseException):
                await owner


def _describe(exc: BaseException) -> str:
    """One line for a failure, looking inside anyio's exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
