"""Each stage of a handling at the time it really happened: a message waiting in the
mailbox behind a handling that waits on a tool shows a queue wait, the handling its
duration, the tool its wait, each separately, in the log, `caxton trace`'s lines, the
replay's rows and `top`'s figures.

Real wasmtime, a real node on SQLite, the real MCP toybox server as a subprocess. Only
orderings are asserted (what comes after what), never how long anything took.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from typing import TypeVar

import pytest
from textual.widgets import Static

from caxton.domain.acl import AclMessage, Performative
from caxton.domain.events import (
    Limits,
    MessageHandled,
    MessageSent,
    Recorded,
    ToolCalled,
    ToolReturned,
)
from caxton.domain.stages import ended_us, queue_wait_us
from caxton.replay.cursor import Timeline
from caxton.replay.recording import record
from caxton.replay.trace import format_line, trace_lines
from caxton.replay.views import clock, rows
from caxton.shell.client import CaxtonClient
from caxton.shell.runtime.node import DeploySpec, Node
from caxton.shell.telemetry.live import LiveStats
from tests.e2e.conftest import ServerProcess, caxton, free_port
from tests.support import wat
from tests.tools.conftest import ROOT, close_node, make_node, toybox
from tests.tools.test_cli_tools import deploy_caller
from tui.replay import ReplayApp

pytestmark = pytest.mark.timeout(120)

WAIT_S = 0.5
E = TypeVar("E")


async def send_two(node: Node, agent: str) -> tuple[str, str]:
    """Two requests sent one after the other: the second is delivered while the first
    is being handled. Returns their conversations once both are handled."""
    conversations = []
    for _ in range(2):
        message = AclMessage(
            id="", performative=Performative.REQUEST, sender="", receivers=(agent,), content="{}"
        )
        conversations.append((await node.send(message)).conversation_id)
    handled = 0
    async with asyncio.timeout(60):
        async for recorded in node.log.follow():
            if isinstance(recorded.event, MessageHandled) and recorded.event.agent == agent:
                handled += 1
                if handled == 2:
                    break
    return conversations[0], conversations[1]


def only(history: list[Recorded], kind: type[E]) -> tuple[E, Recorded]:
    """The one event of a type in a history, and its record."""
    (found,) = [(r.event, r) for r in history if isinstance(r.event, kind)]
    return found


async def test_the_queue_wait_the_handling_and_the_tool_wait_are_recorded_apart(
    tmp_path: Path,
) -> None:
    node, bridge = await make_node(tmp_path, toybox(timeout_ms=30_000))
    stats = LiveStats()
    node.observers.append(stats.observe)
    try:
        await node.deploy(
            DeploySpec(
                name="waiter",
                component=wat("tool-caller"),
                limits=Limits(timeout_ms=1_000),
                config=json.dumps(["toy", "hang", {"seconds": WAIT_S}]),
                tools=("toy.*",),
            )
        )
        first_id, second_id = await send_two(node, "waiter")
        first = await node.log.read(conversation_id=first_id)
        second = await node.log.read(conversation_id=second_id)
        rates = stats.rates("waiter", node.clock.now_ms())
    finally:
        await close_node(node, bridge)

    handled_first, _ = only(first, MessageHandled)
    handled, handled_at = only(second, MessageHandled)
    _, sent_at = only(second, MessageSent)
    called, _ = only(second, ToolCalled)
    returned, _ = only(second, ToolReturned)

    # the log: each moment in the order it happened, none of them the commit
    assert sent_at.at * 1000 <= handled.dequeued_us <= handled.started_us
    assert handled.started_us <= called.at_us < returned.at_us <= ended_us(handled)
    assert ended_us(handled) <= handled_at.at * 1000 + 1000
    # the second message waited in the mailbox while the first was handled
    assert handled.dequeued_us >= ended_us(handled_first)
    waited = queue_wait_us(sent_at.at, handled.dequeued_us)
    assert waited > 0 and handled.duration_us >= returned.duration_us > 0

    # caxton trace: received when it left the mailbox, then its tool call, in time order
    lines = trace_lines(second)
    assert [line.status for line in lines] == ["sent", "received", "tool-called", "tool-returned"]
    assert [line.at for line in lines] == sorted(line.at for line in lines)
    received = lines[1]
    assert received.waited_us == waited
    assert received.took_us == handled.duration_us
    assert received.tools_us == returned.duration_us
    text = format_line(received)
    assert ' waited="' in text and ' took="' in text and ' tools="' in text

    # the replay: each step at its moment, the handled one's detail says the three apart
    recording = record(second_id, second)
    shown = rows(Timeline(recording))
    assert [r.status for r in shown] == ["sent", "tool call", "tool result", "handled"]
    assert [r.time for r in shown] == sorted(r.time for r in shown)
    assert shown[1].time == clock(called.at_us // 1000)
    assert shown[3].time == clock(ended_us(handled) // 1000)
    assert shown[3].detail.startswith("waited ") and ", took " in shown[3].detail
    assert ", tools " in shown[3].detail
    app = ReplayApp(recording)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.press("end")
        message = str(app.query_one("#message", Static).render())
    assert message.startswith(f"handled by waiter#0: {shown[3].detail}")

    # top: the queue wait, the handling and the tool wait, each its own figure
    assert rates.p99_queue_wait_ms > 0
    assert rates.tool_p99_ms > 0
    assert rates.p99_handling_ms >= rates.tool_p99_ms


@pytest.mark.slow
async def test_trace_and_top_of_a_real_server_show_the_waits_apart(tmp_path: Path) -> None:
    config = tmp_path / "caxton.toml"
    config.write_text(
        f"""
[tools.toy]
command = "{sys.executable}"
args = ["-m", "tests.tools.toybox"]
env = {{ PYTHONPATH = "{ROOT}" }}
timeout = "30s"
"""
    )
    server = ServerProcess(tmp_path / "data", f"127.0.0.1:{free_port()}")
    server.start("--config", str(config))
    try:
        deploy_caller(server, tmp_path, "waiter", "hang", {"seconds": WAIT_S}, "toy.*")
        async with CaxtonClient(server.address) as client:
            sent = [await client.send("waiter", "request", "{}") for _ in range(2)]
            second = sent[1].conversation_id
            async with asyncio.timeout(60):
                async for recorded in client.events(conversation_id=second, follow=True):
                    if isinstance(recorded.event, MessageHandled):
                        break
        trace = caxton("trace", "--conversation-id", second, "--json", server=server.address)
        top = caxton("top", "--once", server=server.address).stdout
    finally:
        server.stop()

    steps = [json.loads(line) for line in trace.stdout.splitlines()]
    assert [s["status"] for s in steps] == ["sent", "received", "tool-called", "tool-returned"]
    received = steps[1]
    assert received["waited_us"] > 0 and received["tools_us"] > 0
    assert received["took_us"] >= received["tools_us"]
    assert [s["time"] for s in steps] == sorted(s["time"] for s in steps)

    header, *agents = [re.split(r"\s{2,}", line) for line in top.splitlines() if line][:2]
    (waiter,) = [dict(zip(header, row, strict=True)) for row in agents if row[0] == "waiter"]
    assert waiter["WAIT P99"] != "0.0ms" and waiter["TOOL P99"] != "0.0ms"
    assert waiter["HANDLE P99"] != "0.0ms"
