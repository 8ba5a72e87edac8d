"""The replay TUI over a conversation with tool calls: each call and its answer a step, the
MCP server a lane of the sequence diagram, a handling's host answers and log lines."""

from __future__ import annotations

import re
from typing import Any

from rich.text import Text
from textual.widgets import DataTable, Static

from caxton.replay.recording import record
from tests.replay.tool_recordings import CONVERSATION, time_asked
from tui.replay import ReplayApp

SIZE = (130, 44)


def app_for() -> ReplayApp:
    return ReplayApp(record(CONVERSATION, time_asked()))


def text_of(app: ReplayApp, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


def cells(app: ReplayApp, step: int) -> list[str]:
    table: DataTable[str | Text] = app.query_one("#timeline", DataTable)
    return [" ".join(str(cell).split()) for cell in table.get_row(str(step))][2:]


async def test_each_call_and_its_answer_is_a_step_with_arguments_result_and_duration() -> None:
    app = app_for()
    async with app.run_test(size=SIZE) as pilot:
        assert cells(app, 2) == [
            'clerk → ⚙ time.get_current_time {"timezone": "UTC"}',
            "",
            "tool call",
        ]
        assert cells(app, 3) == [
            '⚙ time.get_current_time → clerk in 3.2ms: {"timezone": "UTC", "datetime": "2025-1…',
            "",
            "tool result",
        ]
        assert cells(app, 5)[0].startswith("⚙ time.convert_time ✗ clerk in 5000ms: timeout: ")
        assert cells(app, 5)[2] == "tool failed"
        assert cells(app, 6) == ["⚙ time: breaker open (calls by clerk)", "", "breaker"]
        await pilot.press("g", "5", "enter")
        message = text_of(app, "#message")
        assert message.startswith(
            "tool call time.convert_time by clerk: failed (timeout) in 5000ms"
        )
        assert '"target_timezone": "Asia/Tokyo"' in message
        assert (
            f"reason          {'timeout: time.convert_time did not answer within 5000ms'}"
            in message
        )


async def test_the_diagram_has_a_lane_per_tool_server_and_arrows_there_and_back() -> None:
    app = app_for()
    async with app.run_test(size=SIZE) as pilot:
        header, *arrows = text_of(app, "#diagram").splitlines()
        assert header.split() == ["client:cli", "clerk", "⚙", "time"]
        assert re.search(r"┼─ get_\S+ ─>$", arrows[1])  # the name as far as the lanes leave room
        assert "3.2ms" in arrows[2] and "<" in arrows[2]
        assert "✗ timeout" in arrows[4]
        assert "⚡ breaker open" in arrows[5]
        await pilot.press("g", "3", "enter")
        assert "returned in 3.2ms" in text_of(app, "#message")


async def test_a_handling_shows_its_now_and_random_answers_and_log_lines() -> None:
    app = app_for()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g", "7", "enter")
        journal = text_of(app, "#message").split("host answers and log lines while handling it\n")[
            1
        ]
        assert journal.splitlines() == [
            "  log info   asking the time",
            "  now        1764000000000 (2025-11-24 16:00:00.000 UTC)",
            "  random     12297829382473034410 (0xaaaaaaaaaaaaaaaa)",
            '  call-tool  time.get_current_time {"timezone": "UTC"} → {"timezone": "UTC", '
            '"datetime": "2025-11-24T16:00:00+00:00"…',
            '  call-tool  time.convert_time {"source_timezone": "UTC", "time": "16:00", '
            '"target_timezon… → ✗ timeout: time.convert_time did not answer within 5000ms',
            "  log warn   convert_time timed out: answering in UTC",
            "  … 3 more log lines dropped (a handling journals at most 64 lines, 16 KiB)",
        ]


def test_tool_steps_snapshot(snap_compare: Any) -> None:
    assert snap_compare(app_for(), press=["g", "7", "enter"], terminal_size=SIZE)
