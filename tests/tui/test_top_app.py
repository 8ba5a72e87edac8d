"""`caxton top`: its rows as pure functions, its keys with Pilot against a live server
subprocess, and its layout as a snapshot (reviewed by eye)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Static, TabbedContent

from caxton.shell.cli.messages import trace_text
from caxton.shell.client import CaxtonClient
from caxton.shell.operations import (
    AgentDebug,
    AgentFigures,
    ConversationFigures,
    RestartInfo,
    Setting,
    TopSnapshot,
    TrapInfo,
)
from tests.e2e.conftest import ServerProcess, caxton, write_component
from tests.support import free_port
from tui.top import TopApp, TraceScreen, agent_rows, conversation_rows, detail_lines, snapshot_text

SIZE = (130, 30)
AT = 1_764_000_000_000


def figures(name: str, **values: Any) -> AgentFigures:
    defaults: dict[str, Any] = {
        "running": 1,
        "replicas": 1,
        "state": "running",
        "messages_per_second": 0.0,
        "p99_handling_ms": 0.0,
        "mailbox_depth": 0,
        "mailbox_size": 1024,
        "memory_limit_bytes": 64 << 20,
        "cpu_ms_per_second": 0.0,
        "restarts": 0,
        "traps": 0,
        "handled": 0,
        "tool_calls_per_second": 0.0,
        "tool_p99_ms": 0.0,
        "node": "node-a",
    }
    return AgentFigures(name=name, **{**defaults, **values})


SNAPSHOT = TopSnapshot(
    at_ms=AT,
    position=1234,
    agents=(
        figures("order-desk", messages_per_second=12.4, p99_handling_ms=3.2, handled=620),
        figures(
            "inventory",
            state="degraded",
            running=2,
            replicas=3,
            messages_per_second=3.2,
            p99_handling_ms=152.0,
            mailbox_depth=1523,
            mailbox_size=3072,
            p99_queue_wait_ms=10_002.0,
            tool_p99_ms=5_005.0,
            restarts=4,
            traps=5,
            cpu_ms_per_second=480.0,
            node="node-b",
        ),
        figures("pricer", messages_per_second=40.0, p99_handling_ms=0.4, handled=9000),
    ),
    conversations=(
        ConversationFigures(
            id="9f2c41d0e6b54a8f",
            protocol="fipa-request",
            state="stalled",
            messages=4,
            participants=("client:7a1b", "inventory", "order-desk"),
            reply_by_ms=AT - 3_000,
            last_at_ms=AT - 2_500,
            detail="no answer from order-desk, 3.0s past reply-by; inventory#0 trapped: timeout",
        ),
        ConversationFigures(
            id="77aa01",
            protocol="fipa-contract-net",
            state="violated",
            messages=9,
            participants=("bidder-b", "manager"),
            reply_by_ms=0,
            last_at_ms=AT - 60_000,
            detail="accept-proposal sent twice to bidder-b",
        ),
    ),
)
DEBUG = AgentDebug(
    agent=SNAPSHOT.agents[1],
    traps=(TrapInfo(AT - 2_600, 0, "timeout", "timed out after 150 ms", "m1", "9f2c41d0e6b54a8f"),),
    restarts=(RestartInfo(AT - 2_400, 0, 1, 100),),
    conversations=(SNAPSHOT.conversations[0],),
    settings=(Setting("timeout", "150ms", "deploy"),),
)


async def fixed_top() -> TopSnapshot:
    return SNAPSHOT


async def fixed_debug(name: str) -> AgentDebug:
    return DEBUG


TRACES = {
    "77aa01": [
        '[03:23:45.123] agent="manager" message="cfp" status="sent" to="bidder-b"',
        '[03:23:45.140] agent="bidder-b" message="cfp" status="handled"',
    ]
}


async def fixed_trace(conversation_id: str) -> list[str]:
    return TRACES.get(conversation_id, [])


def test_agents_sort_by_any_column_either_way() -> None:
    assert [r[0] for r in agent_rows(SNAPSHOT)] == ["inventory", "order-desk", "pricer"]
    by_rate = agent_rows(SNAPSHOT, "rate", descending=True)
    assert [r[0] for r in by_rate] == ["pricer", "order-desk", "inventory"]
    by_queue = agent_rows(SNAPSHOT, "queue", descending=True)
    assert by_queue[0][:3] == ("inventory", "2/3", "degraded") and by_queue[0][4] == "1523/3072"
    by_node = agent_rows(SNAPSHOT, "node", descending=True)
    assert (by_node[0][0], by_node[0][-1]) == ("inventory", "node-b")


def test_conversations_and_detail_say_what_is_wrong() -> None:
    (stalled, violated) = conversation_rows(SNAPSHOT)
    assert stalled[2] == "stalled" and "past reply-by" in stalled[6]
    assert violated[2] == "violated"
    lines = detail_lines(DEBUG)
    assert "queue 1523/3072" in lines[1]
    assert "p99 wait 10.0s, handling 152.0ms, tool 5.0s" in lines[1]
    assert any("timeout: timed out after 150 ms" in line for line in lines)
    assert any("attempt 1 after 100 ms" in line for line in lines)
    assert snapshot_text(SNAPSHOT)[0].split() == [
        "AGENT", "INST", "STATE", "MSG/S", "QUEUE", "WAIT", "P99", "HANDLE", "P99", "TOOL",
        "P99", "MEM", "LIMIT", "CPU", "MS/S", "RESTARTS", "TRAPS", "NODE",
    ]  # fmt: skip


async def test_keys_sort_switch_tabs_and_open_an_agent() -> None:
    app = TopApp(fixed_top, fixed_debug, fixed_trace, where="127.0.0.1:50051")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        table = app.query_one("#agent-table", DataTable)
        assert table.get_row_at(0)[0] == "inventory"
        await pilot.press("s", "s", "s", "r")  # name → instances → state → rate, reversed
        assert app.sort == "rate" and app.descending
        assert table.get_row_at(0)[0] == "pricer"
        await pilot.press("c")
        assert app.query_one(TabbedContent).active == "conversations"
        await pilot.press("a", "enter")
        await pilot.pause()
        detail = str(app.screen.query_one("#agent-detail", Static).render())
        assert detail.startswith("pricer") or detail.startswith("inventory")
        await pilot.press("escape")
        assert app.query_one("#status", Static) is not None


async def test_enter_on_a_conversation_opens_its_trace() -> None:
    app = TopApp(fixed_top, fixed_debug, fixed_trace, where="127.0.0.1:50051")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("c", "down")  # the stalled one, then the violated one
        await app.workers.wait_for_complete()
        app.refresh_snapshot()  # a refresh keeps the cursor on the row it was on
        await app.workers.wait_for_complete()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, TraceScreen)
        await app.screen.workers.wait_for_complete()
        trace = str(app.screen.query_one("#trace", Static).render())
        assert trace.splitlines() == TRACES["77aa01"]
        hint = str(app.screen.query_one("#trace-hint", Static).render())
        assert hint == "step through it: caxton replay --conversation 77aa01"
        await pilot.press("s")  # the tables' keys wait for the tables to be in front
        assert app.sort == "name"
        await pilot.press("escape")
        assert app.query_one(TabbedContent).active == "conversations"


def test_the_top_screen_snapshot(snap_compare: Any) -> None:
    assert snap_compare(
        TopApp(fixed_top, fixed_debug, fixed_trace, where="127.0.0.1:50051"), terminal_size=SIZE
    )


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[ServerProcess]:
    running = ServerProcess(tmp_path / "data", f"127.0.0.1:{free_port()}").start()
    try:
        yield running
    finally:
        if running.process is not None and running.process.poll() is None:
            running.kill()


@pytest.mark.slow
async def test_top_against_a_live_server(live_server: ServerProcess, tmp_path: Path) -> None:
    address = live_server.address
    reply = write_component(tmp_path, "reply")
    trap = write_component(tmp_path, "trap")
    caxton("agent", "deploy", str(reply), "--name", "echo", "--replicas", "2", server=address)
    caxton("agent", "deploy", str(trap), "--name", "crashy", server=address)
    caxton("send", "--to", "echo", "--content", "{}", "--wait", "5s", server=address)
    caxton("send", "--to", "crashy", "--content", "{}", "--wait", "5s", server=address, check=False)

    async with CaxtonClient(address) as client:
        app = TopApp(
            client.top, client.debug_agent, functools.partial(trace_text, client), where=address
        )
        async with app.run_test(size=SIZE) as pilot:
            table = app.query_one("#agent-table", DataTable)
            while not table.row_count:  # the first refresh comes from the server
                await pilot.pause(0.05)
            assert [table.get_row_at(i)[0] for i in range(table.row_count)] == ["crashy", "echo"]
            assert table.get_row_at(1)[1] == "2/2"
            await pilot.press("enter")  # crashy
            for _ in range(100):
                await pilot.pause(0.05)
                detail = str(app.screen.query_one("#agent-detail", Static).render())
                if "Recent traps" in detail:
                    break
            assert "trap: unreachable" in detail
            await pilot.press("escape")
            await pilot.press("q")


HOSTILE = "init-error: [/x] [bold]loud"


async def test_what_agents_said_is_shown_as_it_is_not_as_markup() -> None:
    trap = dataclasses.replace(DEBUG.traps[0], reason=HOSTILE)
    debug = dataclasses.replace(DEBUG, traps=[trap, *DEBUG.traps[1:]])
    stalled = dataclasses.replace(SNAPSHOT.conversations[0], detail=HOSTILE)
    snapshot = dataclasses.replace(SNAPSHOT, conversations=(stalled, *SNAPSHOT.conversations[1:]))

    async def top() -> TopSnapshot:
        return snapshot

    async def agent(name: str) -> AgentDebug:
        return debug

    app = TopApp(top, agent, fixed_trace, where="127.0.0.1:50051")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("c")
        table = app.query_one("#conversation-table", DataTable)
        assert str(table.get_row_at(0)[6]) == HOSTILE
        await pilot.press("a", "enter")
        await pilot.pause()
        detail = str(app.screen.query_one("#agent-detail", Static).render())
        assert HOSTILE in detail
