"""The bridge against real MCP server processes: concurrency, restarts, HTTP, errors."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal

import pytest

from caxton.domain.tools import CallPolicy
from caxton.shell.tools import ToolCall
from caxton.shell.tools import connection as connection_module
from caxton.shell.tools.bridge import ToolBridge
from caxton.shell.tools.settings import ToolServerConfig
from tests.tools.conftest import registry_server, toybox

pytestmark = pytest.mark.timeout(120)


def call(
    tool: str,
    server: str = "toy",
    timeout_ms: int = 5_000,
    threshold: int = 5,
    reset_ms: int = 30_000,
    **arguments: object,
) -> ToolCall:
    policy = CallPolicy(
        timeout_ms=timeout_ms, breaker_threshold=threshold, breaker_reset_ms=reset_ms
    )
    return ToolCall(server=server, tool=tool, arguments=arguments, policy=policy)


async def test_calls_beyond_the_concurrency_limit_wait_for_a_slot_within_their_timeout() -> None:
    bridge = ToolBridge((toybox(max_concurrency=1),))
    bridge.bind()
    try:
        await bridge.call(call("pid"))  # started
        holding = asyncio.ensure_future(bridge.call(call("hang", seconds=1.0)))
        await asyncio.sleep(0.1)  # the hang holds the only slot (nothing to await inside it)
        waiting = await bridge.call(call("echo", timeout_ms=300, text="x"))
        held = await holding
    finally:
        await bridge.close()

    assert held.result is not None and "woke up" in held.result
    assert waiting.kind == "timeout"
    assert waiting.reason == "toy was busy for 300ms (max_concurrency = 1)"


async def test_a_server_that_dies_while_idle_is_restarted_before_the_next_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(connection_module, "WATCH_INTERVAL_S", 0.1)
    bridge = ToolBridge((toybox(),))
    bridge.bind()
    try:
        first = await bridge.call(call("pid"))
        assert first.result is not None
        old = json.loads(first.result)["structuredContent"]["result"]
        os.kill(old, signal.SIGKILL)
        async with asyncio.timeout(30):
            while True:  # the watcher notices within an interval, then starts a new process
                (view,) = await bridge.describe(refresh=False)
                if view.state == "running" and bridge.starts("toy") == 2:
                    break
                await asyncio.sleep(0.02)
        after = await bridge.call(call("pid"))
    finally:
        await bridge.close()

    assert after.kind == ""
    assert json.loads(after.result)["structuredContent"]["result"] != old


async def test_a_tool_error_and_an_unknown_tool_do_not_count_against_the_breaker() -> None:
    bridge = ToolBridge((toybox(),))
    bridge.bind()
    try:
        failed = await bridge.call(call("fail", threshold=1, reason="nope"))
        unknown = await bridge.call(call("no_such_tool", threshold=1))
        fine = await bridge.call(call("add", a=1, b=2))
    finally:
        await bridge.close()

    assert (failed.kind, failed.reason) == ("tool-error", "Error executing tool fail: nope")
    assert unknown.kind == "tool-error" and "no_such_tool" in unknown.reason
    assert fine.result is not None and json.loads(fine.result)["structuredContent"] == {"result": 3}
    assert failed.after == unknown.after == ()


async def test_streamable_http_and_registry_servers_over_stdio(http_toybox: str) -> None:
    bridge = ToolBridge(
        (
            ToolServerConfig(name="web", url=http_toybox),
            ToolServerConfig(name="time", command=str(registry_server("time"))),
        )
    )
    bridge.bind()
    try:
        echoed = await bridge.call(call("echo", server="web", text="over http"))
        now = await bridge.call(call("get_current_time", server="time", timezone="Europe/Paris"))
        views = await bridge.describe()
    finally:
        await bridge.close()

    assert echoed.result is not None
    assert json.loads(echoed.result)["structuredContent"] == {"text": "over http"}
    assert now.result is not None
    assert json.loads(now.result)["structuredContent"]["timezone"] == "Europe/Paris"
    assert {v.name: v.transport for v in views} == {"time": "stdio", "web": "http"}
    assert "convert_time" in {t.name for v in views for t in v.tools}


async def test_a_server_that_cannot_start_is_a_server_error_that_counts() -> None:
    missing = ToolServerConfig(name="gone", command="/nonexistent/mcp-server")
    bridge = ToolBridge((missing,))
    bridge.bind()
    try:
        failed = await bridge.call(call("x", server="gone", threshold=1))
        fast = await bridge.call(call("x", server="gone", threshold=1))
        (view,) = await bridge.describe(refresh=False)
    finally:
        await bridge.close()

    assert failed.kind == "server-error" and "cannot start" in failed.reason
    assert [type(e).__name__ for e in failed.after] == ["BreakerOpened"]
    assert fast.kind == "breaker-open"
    assert view.state == "failed"


async def test_a_cancelled_trial_does_not_leave_the_breaker_half_open() -> None:
    bridge = ToolBridge((toybox(),))
    bridge.bind()
    bounds = {"threshold": 1, "reset_ms": 200}
    try:
        opened = await bridge.call(call("hang", timeout_ms=300, seconds=30, **bounds))
        await asyncio.sleep(0.25)  # the reset time passes (a rule about time)
        trial = asyncio.ensure_future(bridge.call(call("hang", seconds=30, **bounds)))
        await asyncio.sleep(0.1)
        trial.cancel()  # as when the server stops, or a worker gives up on the loop
        with contextlib.suppress(asyncio.CancelledError):
            await trial
        await asyncio.sleep(0.25)
        after = await bridge.call(call("echo", text="x", **bounds))
    finally:
        await bridge.close()

    assert opened.kind == "timeout"
    assert [type(e).__name__ for e in after.before] == ["BreakerHalfOpened"]
    assert after.result is not None
    assert [type(e).__name__ for e in after.after] == ["BreakerClosed"]
