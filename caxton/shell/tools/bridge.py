"""The tool bridge: agents' `call-tool` imports answered by MCP servers, bounded and breakered.

Guest code is synchronous and the MCP SDK is asyncio: an agent with tool grants runs
on the worker pool, and its `call-tool` waits there (`call_blocking`) for a coroutine
that runs on the server's event loop (docs/adr/0006-tool-bridge.md). Each call is
bounded by its timeout (waiting for a concurrency slot and starting the server
included), goes through a circuit breaker (`caxton.domain.tools`), and never raises:
it ends as a `ToolAnswer`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import mcp_types

from caxton.domain.events import BreakerClosed, BreakerHalfOpened, BreakerOpened, Event
from caxton.domain.tools import (
    CLOSED,
    Breaker,
    BreakerKey,
    admit,
    bounded_result,
    settle,
)
from caxton.shell.tools.calls import ToolAnswer, ToolCall
from caxton.shell.tools.connection import (
    ServerConnection,
    ToolRequestError,
    ToolServerError,
)
from caxton.shell.tools.settings import ToolServerConfig

logger = logging.getLogger("caxton.tools")

_MAX_REASON = 4096
# extra time a worker waits beyond the call's own timeout before it gives up on the loop
_BLOCKING_MARGIN_S = 5.0


@dataclass(frozen=True, slots=True)
class ServerView:
    """A server as `caxton tools list` shows it."""

    name: str
    transport: str
    where: str
    state: str
    detail: str
    breakers: tuple[tuple[str, Breaker], ...]
    tools: tuple[mcp_types.Tool, ...]


class ToolBridge:
    """The configured MCP servers of one Caxton server, and the breakers in front of them."""

    def __init__(self, configs: tuple[ToolServerConfig, ...], *, clock_ms: Any = None) -> None:
        self._configs = {c.name: c for c in configs}
        self._connections = {c.name: ServerConnection(c) for c in configs}
        self._breakers: dict[BreakerKey, Breaker] = {}
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._now_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._closed = False

    @property
    def servers(self) -> Mapping[str, ToolServerConfig]:
        return self._configs

    def bind(self) -> None:
        """Remembers the running loop, which `call_blocking` hands calls to."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()

    async def close(self) -> None:
        """Stops every tool server process; later calls fail with `server-error`."""
        self._closed = True
        await asyncio.gather(*(c.close() for c in self._connections.values()))

    # --- calls ------------------------------------------------------------

    def call_blocking(self, call: ToolCall) -> ToolAnswer:
        loop = self._loop
        if loop is None or loop.is_closed():
            return ToolAnswer(kind="server-error", reason="the tool bridge is not running")
        if threading.get_ident() == self._loop_thread:
            # would wait for itself: the runtime runs agents with grants on the worker pool
            return ToolAnswer(
                kind="refused", reason="tool calls cannot be made from the event loop thread"
            )
        future = asyncio.run_coroutine_threadsafe(self.call(call), loop)
        try:
            return future.result(call.policy.timeout_ms / 1000 + _BLOCKING_MARGIN_S)
        except concurrent.futures.TimeoutError:
            future.cancel()
            return ToolAnswer(kind="timeout", reason="the event loop did not answer in time")
        except (concurrent.futures.CancelledError, RuntimeError):
            return ToolAnswer(kind="server-error", reason="the server is stopping")

    async def call(self, call: ToolCall) -> ToolAnswer:
        started = time.perf_counter_ns()
        key = BreakerKey(server=call.server, agent=call.policy.breaker_agent)
        admission = admit(
            self._breakers.get(key, CLOSED),
            key=key,
            policy=call.policy,
            now=self._now_ms(),
            conversation_id=call.conversation_id,
        )
        self._breakers[key] = admission.breaker
        if not admission.allowed:
            return ToolAnswer(kind="breaker-open", reason=admission.reason)
        try:
            answer = await self._call(call)
        except asyncio.CancelledError:
            # a trial that never ended must not leave the breaker half-open for good
            if self._breakers.get(key, CLOSED).state == "half-open":
                self._breakers[key], _ = settle(
                    self._breakers[key],
                    key=key,
                    policy=call.policy,
                    now=self._now_ms(),
                    failure_kind="server-error",
                    reason="the trial call was cancelled",
                )
            raise
        breaker, after = settle(
            self._breakers.get(key, CLOSED),
            key=key,
            policy=call.policy,
            now=self._now_ms(),
            failure_kind=answer.kind,
            reason=f"{answer.kind}: {answer.reason}" if answer.kind else "",
            conversation_id=call.conversation_id,
        )
        self._breakers[key] = breaker
        for event in (*admission.events, *after):
            _log_breaker(event)
        return ToolAnswer(
            result=answer.result,
            kind=answer.kind,
            reason=answer.reason,
            duration_us=(time.perf_counter_ns() - started) // 1000,
            truncated=answer.truncated,
            size=answer.size,
            before=admission.events,
            after=after,
        )

    async def _call(self, call: ToolCall) -> ToolAnswer:
        config = self._configs.get(call.server)
        connection = self._connections.get(call.server)
        if config is None or connection is None:
            return ToolAnswer(kind="refused", reason=f"no tool server named {call.server!r}")
        if self._closed:
            return ToolAnswer(kind="server-error", reason="the server is stopping")
        timeout_s = call.policy.timeout_ms / 1000
        slots = self._slots.setdefault(call.server, asyncio.Semaphore(config.max_concurrency))
        try:
            await asyncio.wait_for(slots.acquire(), timeout_s)
        except TimeoutError:
            return ToolAnswer(
                kind="timeout",
                reason=f"{call.server} was busy for {_seconds(call.policy.timeout_ms)} "
                f"(max_concurrency = {config.max_concurrency})",
            )
        try:
            result = await connection.call(call.tool, call.arguments, timeout_s)
        except TimeoutError:
            return ToolAnswer(
                kind="timeout",
                reason=f"{call.server}.{call.tool} did not answer within "
                f"{_seconds(call.policy.timeout_ms)}",
            )
        except ToolRequestError as exc:
            return ToolAnswer(kind="tool-error", reason=_cut(str(exc)))
        except ToolServerError as exc:
            return ToolAnswer(kind="server-error", reason=_cut(f"{call.server}: {exc}"))
        finally:
            slots.release()
        return _answer_of(result, config.max_result_bytes)

    # --- for `caxton tools list` --------------------------------------------

    def starts(self, server: str) -> int:
        """How many times the server's process was started (restarts included)."""
        return self._connections[server].starts

    async def describe(self, *, refresh: bool = True, timeout_s: float = 10.0) -> list[ServerView]:
        """Every server with its state and tools; `refresh` starts servers to list their tools."""
        views = []
        for name, connection in sorted(self._connections.items()):
            detail = connection.last_error
            if refresh and not self._closed:
                try:
                    async with asyncio.timeout(timeout_s):
                        await connection.list_tools()
                except TimeoutError:
                    detail = f"did not list its tools within {timeout_s:g}s"
                except ToolServerError as exc:
                    detail = str(exc)
            breakers = tuple(
                (key.agent, breaker)
                for key, breaker in sorted(self._breakers.items(), key=lambda i: i[0].agent)
                if key.server == name
            )
            views.append(
                ServerView(
                    name=name,
                    transport=connection.config.transport,
                    where=connection.config.where,
                    state=connection.state,
                    detail=detail or connection.last_error,
                    breakers=breakers,
                    tools=tuple(connection.tools or ()),
                )
            )
        return views


def _log_breaker(event: Event) -> None:
    if not isinstance(event, BreakerOpened | BreakerHalfOpened | BreakerClosed):
        return
    whose = f" (calls by {event.agent})" if event.agent else ""
    match event:
        case BreakerOpened():
            logger.warning(
                "circuit breaker open for %s%s after %d failures (%s); trial in %d ms",
                event.server,
                whose,
                event.failures,
                event.reason,
                event.reset_ms,
            )
        case BreakerHalfOpened():
            logger.info("circuit breaker half-open for %s%s: a trial call", event.server, whose)
        case BreakerClosed():
            logger.warning("circuit breaker closed for %s%s: calls go through", event.server, whose)


def _answer_of(result: mcp_types.CallToolResult, max_bytes: int) -> ToolAnswer:
    text = "\n".join(
        block.text for block in result.content if isinstance(block, mcp_types.TextContent)
    )
    if result.is_error:
        return ToolAnswer(kind="tool-error", reason=_cut(text or "the tool reported an error"))
    whole = json.dumps(
        result.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"result_type"}),
        ensure_ascii=False,
    )
    bounded = bounded_result(whole, text, max_bytes)
    return ToolAnswer(result=bounded.text, truncated=bounded.truncated, size=bounded.size)


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_REASON else text[:_MAX_REASON] + "…"


def _seconds(ms: int) -> str:
    return f"{ms / 1000:g}s" if ms >= 1000 else f"{ms}ms"
