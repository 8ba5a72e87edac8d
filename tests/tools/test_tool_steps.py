"""A real agent calls a real MCP server (`mcp-server-time`) and logs; the trace and the
replay TUI show each call as steps with its arguments, result and duration, the tool's
lane in the sequence diagram, and each handling's `now`/`random` answers and log lines.

The agent is `chatty-caller.wat` (logs, asks for now and random, calls one tool, logs the
answer); it runs in wasmtime on a real node over a real SQLite log.
"""

from __future__ import annotations

import json
import re

import pytest
import pytest_asyncio
from textual.widgets import DataTable, Static

from caxton.domain.events import Limits, MessageHandled, Recorded, ToolCalled, ToolFailed
from caxton.domain.journal import answers
from caxton.replay.cursor import Cursor
from caxton.replay.recording import record
from caxton.replay.trace import format_line, journal_text, trace_lines
from caxton.replay.views import mermaid, sequence
from caxton.shell.reexec import reexecute
from caxton.shell.runtime.node import DeploySpec, Node
from caxton.shell.tools import ToolServerConfig
from tests.support import wat
from tests.tools.conftest import close_node, make_node, registry_server
from tests.tools.test_agents_calling_tools import handle_one
from tui.replay import ReplayApp

pytestmark = pytest.mark.timeout(180)

ARGS = {"timezone": "UTC"}


async def teller(node: Node, name: str, tool: str, grants: tuple[str, ...]) -> None:
    await node.deploy(
        DeploySpec(
            name=name,
            component=wat("chatty-caller"),
            limits=Limits(timeout_ms=30_000),
            config=json.dumps(["time", tool, ARGS]),
            tools=grants,
        )
    )


async def conversation_of(node: Node, agent: str) -> tuple[str, list[Recorded]]:
    """Sends `agent` one request; its conversation id and the whole log once handled."""
    events = await handle_one(node, agent)
    (handled,) = [e for e in events if isinstance(e, MessageHandled)]
    return handled.conversation_id, await node.log.read()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def recorded(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[str, list[Recorded]]]:
    """Two conversations on one node: `teller` granted get_current_time (answered) and
    `nosy` not granted convert_time (refused)."""
    node, bridge = await make_node(
        tmp_path_factory.mktemp("tool-steps"),
        ToolServerConfig(name="time", command=str(registry_server("time"))),
    )
    try:
        await teller(node, "teller", "get_current_time", ("time.get_current_time",))
        await teller(node, "nosy", "convert_time", ("time.get_current_time",))
        return {
            "teller": await conversation_of(node, "teller"),
            "nosy": await conversation_of(node, "nosy"),
        }
    finally:
        await close_node(node, bridge)


async def test_a_tool_call_and_the_handlings_journal_read_as_steps_in_the_trace(
    recorded: dict[str, tuple[str, list[Recorded]]],
) -> None:
    conversation, history = recorded["teller"]
    own = [r for r in history if r.stream == f"conversation:{conversation}"]
    lines = trace_lines(own, verbose=True)
    text = "\n".join(part for line in lines for part in [format_line(line), *journal_text(line)])

    assert re.search(
        r'agent="teller" tool="time.get_current_time" status="tool-called" '
        r'args=\{"timezone": "UTC"\}',
        text,
    ), text
    returned = re.search(
        r'agent="teller" tool="time.get_current_time" status="tool-returned" '
        r'took="[\d.<]+ms" result=(\{.*\})$',
        text,
        re.M,
    )
    assert returned is not None, text
    assert json.loads(returned.group(1))["timezone"] == "UTC"  # structured content, whole
    # under the handling, in the order the agent got them: its log line, now, random,
    # the tool's answer, its second log line (the answer)
    journal = text.split('message="request" status="received"')[1].splitlines()[1:6]
    assert [entry.split()[0] for entry in journal] == ["log", "now", "random", "call-tool", "log"]
    assert journal[0] == "    log info   asking the tool"
    assert re.fullmatch(
        r"    now        \d{13} \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC\)", journal[1]
    )
    assert re.fullmatch(r"    random     \d+ \(0x[0-9a-f]{16}\)", journal[2])
    assert journal[3].startswith(
        '    call-tool  time.get_current_time {"timezone": "UTC"} → {"timezone": "UTC", '
    )
    assert journal[4].startswith("    log info   ") and '"datetime"' in journal[4]
    json_lines = [line.to_json() for line in lines]
    (called,) = [j for j in json_lines if j["status"] == "tool-called"]
    assert json.loads(called["arguments"]) == ARGS
    (handled,) = [j for j in json_lines if j["status"] == "received"]
    assert [j["kind"] for j in handled["journal"]] == ["log", "now", "random", "call-tool", "log"]


async def test_a_refused_call_reads_as_a_failure_with_its_kind_and_reason(
    recorded: dict[str, tuple[str, list[Recorded]]],
) -> None:
    conversation, history = recorded["nosy"]
    cursor = Cursor.open(record(conversation, history))
    lines = [format_line(line) for line in trace_lines(cursor.timeline.recording.events)]
    assert any(
        'agent="nosy" tool="time.convert_time" status="tool-failed" error="refused: '
        "time.convert_time is not granted to nosy" in line
        for line in lines
    ), lines
    diagram = "\n".join(line for _, line in sequence(cursor, width=16))
    assert "⚙ time" in diagram.splitlines()[0]
    assert "✗ refused" in diagram
    assert "--xp" in mermaid(cursor.timeline)  # the failed answer back to the agent
    step = next(
        i
        for i, r in enumerate(cursor.timeline.recording.events, start=1)
        if isinstance(r.event, ToolFailed)
    )
    app = ReplayApp(cursor.timeline.recording)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("g", *str(step), "enter")
        message = str(app.query_one("#message", Static).render())
        assert "tool call time.convert_time by nosy: failed (refused)" in message
        assert "kind            refused" in message
        assert "log warn   refused: time.convert_time is not granted" not in message


async def test_the_replay_tui_shows_the_call_its_lane_and_the_journal(
    recorded: dict[str, tuple[str, list[Recorded]]],
) -> None:
    conversation, history = recorded["teller"]
    recording = record(conversation, history)
    events = [r.event for r in recording.events]
    called = next(i for i, e in enumerate(events, start=1) if isinstance(e, ToolCalled))
    handled = next(i for i, e in enumerate(events, start=1) if isinstance(e, MessageHandled))
    app = ReplayApp(recording)
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.query_one("#timeline", DataTable)
        row = [str(cell) for cell in table.get_row_at(called - 1)]
        assert row[-1] == "tool call"
        assert "teller → ⚙ time.get_current_time" in " ".join(row[2].split("\n"))
        answer = [str(cell) for cell in table.get_row_at(called)]
        assert answer[-1] == "tool result"
        assert re.search(r"⚙ time.get_current_time → teller in [\d.<]+ms: \{", answer[2])

        diagram = str(app.query_one("#diagram", Static).render())
        header, *arrows = diagram.splitlines()
        assert header.split()[-3:] == ["teller", "⚙", "time"]
        assert any(re.search(r"┼─+ get_current_ti\S* ─*>", line) for line in arrows), diagram
        assert any(re.search(r"<─* [\d.<]+ms", line) for line in arrows), diagram

        await pilot.press("g", *str(called), "enter")
        message = str(app.query_one("#message", Static).render())
        assert "tool call time.get_current_time by teller: returned in" in message
        assert 'arguments\n{\n  "timezone": "UTC"\n}' in message
        assert '"datetime":' in message.split("\nresult\n")[1]

        await pilot.press("g", *str(handled), "enter")
        message = str(app.query_one("#message", Static).render())
        journal = message.split("host answers and log lines while handling it\n")[1]
        kinds = [line.split()[0] for line in journal.splitlines()]
        assert journal.startswith("  log info   asking the tool\n  now        ")
        assert kinds == ["log", "now", "random", "call-tool", "log"]
        assert "log info   asking the tool" in journal


async def test_a_handling_that_logs_re_executes_identically(
    recorded: dict[str, tuple[str, list[Recorded]]],
) -> None:
    conversation, history = recorded["teller"]
    recording = record(conversation, history)
    (handled,) = [r.event for r in recording.events if isinstance(r.event, MessageHandled)]
    assert [c.kind for c in handled.journal if c.kind == "log"] == ["log", "log"]
    assert [c.kind for c in answers(handled.journal)] == ["now", "random", "call-tool"]

    report = await reexecute(recording, history, "teller", wat("chatty-caller"), "the same build")

    assert report.identical, [o.surprises for o in report.outcomes]
