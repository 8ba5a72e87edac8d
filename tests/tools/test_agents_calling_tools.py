"""Agents calling real MCP servers through a real node: grants, timeouts, breakers, restarts.

The agent is `tool-caller.wat` (one call-tool per message, configured at init); the MCP
server is tests/tools/toybox.py as a subprocess, over stdio or streamable HTTP.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import TypeVar

import pytest

from caxton.domain.acl import AclMessage, Performative
from caxton.domain.errors import InvalidAgentSpec
from caxton.domain.events import (
    AgentReconfigured,
    AgentTrapped,
    BreakerClosed,
    BreakerHalfOpened,
    BreakerOpened,
    Event,
    Limits,
    MessageDeadLettered,
    MessageHandled,
    Recorded,
    ToolCalled,
    ToolFailed,
    ToolReturned,
)
from caxton.domain.tools import read_journal_value
from caxton.shell.runtime.node import DeploySpec, Node
from tests.support import wat
from tests.tools.conftest import close_node, make_node, toybox

pytestmark = pytest.mark.timeout(120)

E = TypeVar("E")


async def deploy_caller(
    node: Node, name: str, tool: str, args: object, *, grants: tuple[str, ...], timeout_ms: int
) -> None:
    await node.deploy(
        DeploySpec(
            name=name,
            component=wat("tool-caller"),
            limits=Limits(timeout_ms=timeout_ms),
            config=json.dumps(["toy", tool, args]),
            tools=grants,
        )
    )


async def handle_one(node: Node, agent: str) -> list[Event]:
    """Sends one request to `agent`; returns its conversation's events once it is handled."""
    message = AclMessage(
        id="", performative=Performative.REQUEST, sender="", receivers=(agent,), content="{}"
    )
    result = await node.send(message)
    seen: list[Recorded] = []
    async with asyncio.timeout(60):
        async for recorded in node.log.follow(conversation_id=result.conversation_id):
            seen.append(recorded)
            if isinstance(recorded.event, MessageHandled | MessageDeadLettered):
                break
    await asyncio.sleep(0)  # let the handling's batch (committed together) be read whole
    history = await node.log.read(conversation_id=result.conversation_id)
    return [r.event for r in history]


def of_type(events: list[Event], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


async def test_a_granted_call_is_answered_recorded_and_journaled(tmp_path: Path) -> None:
    node, bridge = await make_node(tmp_path, toybox())
    try:
        # a 10 ms budget: the agent runs on the worker pool and waits for the tool far longer
        await deploy_caller(
            node, "asker", "echo", {"text": "héllo"}, grants=("toy.*",), timeout_ms=10
        )
        events = await handle_one(node, "asker")
    finally:
        await close_node(node, bridge)

    (handled,) = of_type(events, MessageHandled)
    assert handled.error == ""
    (called,) = of_type(events, ToolCalled)
    (returned,) = of_type(events, ToolReturned)
    assert (called.server, called.tool, called.agent) == ("toy", "echo", "asker")
    assert json.loads(called.arguments) == {"text": "héllo"}
    assert returned.call_id == called.call_id
    assert json.loads(returned.result)["structuredContent"] == {"text": "héllo"}
    (entry,) = [j for j in handled.journal if j.kind == "call-tool"]
    journaled = read_journal_value(entry.value)
    assert (journaled.server, journaled.tool, journaled.ok) == ("toy", "echo", returned.result)
    assert json.loads(journaled.args) == {"text": "héllo"}


async def test_a_call_outside_the_grant_is_refused_recorded_and_an_error_value(
    tmp_path: Path,
) -> None:
    node, bridge = await make_node(tmp_path, toybox())
    try:
        await deploy_caller(
            node, "nosy", "echo", {"text": "x"}, grants=("toy.add",), timeout_ms=1_000
        )
        events = await handle_one(node, "nosy")
        assert node.actors["nosy#0"].started.is_set()
        assert node.world.agents["nosy"].instances[0].lifecycle == "running"  # no trap
    finally:
        await close_node(node, bridge)

    (failed,) = of_type(events, ToolFailed)
    assert failed.kind == "refused"
    assert failed.reason == (
        "refused: toy.echo is not granted to nosy (grant it with --tools toy.echo or --tools toy.*)"
    )
    (handled,) = of_type(events, MessageHandled)
    assert handled.error == failed.reason  # the agent got the error value and returned it
    (entry,) = handled.journal
    assert read_journal_value(entry.value).error == failed.reason


async def test_grants_naming_unknown_servers_are_refused_at_deploy(tmp_path: Path) -> None:
    node, bridge = await make_node(tmp_path, toybox())
    try:
        with pytest.raises(InvalidAgentSpec, match=r"'db\.x' names no tool server"):
            await deploy_caller(node, "a", "echo", {}, grants=("db.x",), timeout_ms=1_000)
        with pytest.raises(InvalidAgentSpec, match="not SERVER"):
            await deploy_caller(node, "a", "echo", {}, grants=("toy",), timeout_ms=1_000)
    finally:
        await close_node(node, bridge)


async def test_a_hanging_server_times_out_opens_the_breaker_and_a_trial_closes_it(
    tmp_path: Path,
) -> None:
    config = toybox(timeout_ms=300, breaker_threshold=2, breaker_reset_ms=2_000)
    node, bridge = await make_node(tmp_path, config)
    try:
        await deploy_caller(node, "slow", "hang", {"seconds": 30}, grants=("toy.*",), timeout_ms=50)
        await deploy_caller(node, "quick", "echo", {"text": "ok"}, grants=("toy.*",), timeout_ms=50)
        first = await handle_one(node, "slow")
        second = await handle_one(node, "slow")
        fast_fail = await handle_one(node, "quick")  # the breaker is the server's: shared
        await asyncio.sleep(2.0)  # the breaker's reset time (a time rule, nothing to await)
        trial = await handle_one(node, "quick")
    finally:
        await close_node(node, bridge)

    assert [f.kind for f in of_type(first, ToolFailed)] == ["timeout"]
    assert "toy.hang did not answer within 300ms" in of_type(first, ToolFailed)[0].reason
    assert of_type(first, BreakerOpened) == []
    (opened,) = of_type(second, BreakerOpened)
    assert (opened.server, opened.failures, opened.reset_ms) == ("toy", 2, 2_000)
    (refused,) = of_type(fast_fail, ToolFailed)
    assert refused.kind == "breaker-open"
    assert "circuit breaker open for toy after 2 failures" in refused.reason
    assert refused.duration_us < 50_000  # failed fast
    assert [
        type(e) for e in trial if type(e) in (BreakerHalfOpened, ToolReturned, BreakerClosed)
    ] == [
        BreakerHalfOpened,
        ToolReturned,
        BreakerClosed,
    ]


async def test_a_server_killed_mid_call_fails_the_call_and_is_restarted(tmp_path: Path) -> None:
    pid_file = tmp_path / "toy.pid"
    node, bridge = await make_node(tmp_path, toybox(timeout_ms=20_000))
    try:
        await deploy_caller(
            node,
            "victim",
            "hang",
            {"seconds": 60, "pid_file": str(pid_file)},
            grants=("toy.*",),
            timeout_ms=1_000,
        )
        await deploy_caller(node, "after", "pid", {}, grants=("toy.*",), timeout_ms=1_000)
        handling = asyncio.ensure_future(handle_one(node, "victim"))
        async with asyncio.timeout(30):
            while not pid_file.exists():  # the server writes it inside the call
                await asyncio.sleep(0.02)
        killed = int(pid_file.read_text())
        os.kill(killed, signal.SIGKILL)
        during = await handling
        after = await handle_one(node, "after")
    finally:
        await close_node(node, bridge)

    (failed,) = of_type(during, ToolFailed)
    assert failed.kind == "server-error"
    assert failed.reason == (
        "server-error: toy: the connection closed (the server exited?); "
        "it restarts on the next call"
    )
    (returned,) = of_type(after, ToolReturned)
    new_pid = json.loads(returned.result)["structuredContent"]["result"]
    assert new_pid != killed
    assert node.world.agents["victim"].instances[0].traps == 0


async def test_config_set_grants_tools_and_gives_the_agent_its_own_breaker_live(
    tmp_path: Path,
) -> None:
    node, bridge = await make_node(tmp_path, toybox(timeout_ms=5_000, breaker_threshold=5))
    try:
        await deploy_caller(node, "late", "hang", {"seconds": 30}, grants=(), timeout_ms=10)
        before = await handle_one(node, "late")
        await node.reconfigure(
            AgentReconfigured(
                agent="late", tools=("toy.hang",), breaker_timeout_ms=200, breaker_threshold=1
            )
        )
        after = await handle_one(node, "late")  # granted now, with its own timeout and breaker
        again = await handle_one(node, "late")
    finally:
        await close_node(node, bridge)

    assert [f.kind for f in of_type(before, ToolFailed)] == ["refused"]
    (timed_out,) = of_type(after, ToolFailed)
    assert timed_out.reason == "timeout: toy.hang did not answer within 200ms"
    (opened,) = of_type(after, BreakerOpened)
    assert (opened.agent, opened.failures) == ("late", 1)  # its own, not the server's (5)
    (fast,) = of_type(again, ToolFailed)
    assert fast.kind == "breaker-open"
    assert "circuit breaker open for toy (calls by late) after 1 failures" in fast.reason


async def test_a_result_over_the_limit_is_cut_to_fit_and_the_cut_recorded(tmp_path: Path) -> None:
    node, bridge = await make_node(tmp_path, toybox(max_result_bytes=2048))
    try:
        await deploy_caller(
            node, "hoarder", "big", {"size": 10_000}, grants=("toy.big",), timeout_ms=1_000
        )
        events = await handle_one(node, "hoarder")
    finally:
        await close_node(node, bridge)

    (returned,) = of_type(events, ToolReturned)
    assert returned.truncated and returned.size > 10_000
    assert len(returned.result.encode()) <= 2048
    data = json.loads(returned.result)
    assert data["truncated"] is True and data["content"][0]["text"].startswith("xxxx")
    (handled,) = of_type(events, MessageHandled)
    assert read_journal_value(handled.journal[0].value).ok == returned.result


async def test_an_agent_calling_tools_in_an_endless_loop_is_stopped(tmp_path: Path) -> None:
    node, bridge = await make_node(tmp_path, toybox())
    try:
        await node.deploy(
            DeploySpec(
                name="looper",
                component=wat("tool-loop"),
                limits=Limits(timeout_ms=2_000),
                config=json.dumps(["toy", "pid", {}]),
                tools=("toy.echo",),  # pid is refused: each call answers at once
            )
        )
        events = await handle_one(node, "looper")
        everything = [r.event for r in await node.log.read()]
    finally:
        await close_node(node, bridge)

    (trapped,) = of_type(everything, AgentTrapped)
    assert trapped.kind == "host-error"
    assert "more than 1000 tool calls while handling one message" in trapped.reason
    assert len(of_type(events, ToolFailed)) == 1000
