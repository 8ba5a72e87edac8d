"""The replay TUI, driven by key presses over a recorded contract-net conversation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Static

from caxton.domain.events import Recorded
from caxton.replay.recording import record
from tests.replay.recordings import CONVERSATION, contract_net
from tui.replay import ReplayApp

SIZE = (120, 40)


def app_for(**kwargs: bool) -> ReplayApp:
    return ReplayApp(record(CONVERSATION, contract_net(**kwargs)))


def text_of(app: ReplayApp, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


async def test_keys_step_forward_back_home_and_end() -> None:
    app = app_for()
    async with app.run_test(size=SIZE) as pilot:
        assert "step 1/18" in text_of(app, "#status")
        await pilot.press("right", "right", "n")
        assert "step 4/18" in text_of(app, "#status")
        assert "cfp" in text_of(app, "#message")
        await pilot.press("left", "p")
        assert "step 2/18" in text_of(app, "#status")
        await pilot.press("end")
        assert "step 18/18" in text_of(app, "#status")
        assert "done" in text_of(app, "#state")
        await pilot.press("home")
        assert "step 1/18" in text_of(app, "#status")
        assert app.query_one("#timeline", DataTable).cursor_row == 0


async def test_the_state_pane_shows_the_protocol_phase_at_each_step() -> None:
    app = app_for()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("right", "right")  # the cfp
        assert "cfp sent" in text_of(app, "#state")
        await pilot.press("g")
        await pilot.press(*"10", "enter")
        assert "step 10/18" in text_of(app, "#status")
        assert "proposals in" in text_of(app, "#state")
        assert "fipa-contract-net: proposals in" in text_of(app, "#phase")


async def test_a_violation_is_marked_when_the_cursor_reaches_it() -> None:
    app = app_for(violated=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g", *"13", "enter")
        assert "violation" not in text_of(app, "#state")
        await pilot.press("right")
        assert "accept-proposal" in text_of(app, "#message")
        assert "⚠ violation step 14: accept-proposal to bidder-c" in text_of(app, "#state")
        assert "violated" in text_of(app, "#state")
        assert "⚠ 1 violation" in text_of(app, "#phase")


async def test_play_stops_at_a_breakpoint_and_cause_jumps_to_the_send() -> None:
    app = app_for()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g", *"6", "enter", "b", "home")
        assert "break: steps 6" in text_of(app, "#status")
        await pilot.press("space")
        await app.workers.wait_for_complete()
        assert "step 6/18" in text_of(app, "#status")
        assert "stopped at breakpoint" in text_of(app, "#status")
        await pilot.press("c")  # bidder-b handled the cfp: its send is step 3
        assert "step 3/18" in text_of(app, "#status")
        assert "cfp" in text_of(app, "#message")


async def test_break_on_a_performative_and_search_in_content() -> None:
    app = app_for()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("B", *"accept-proposal", "enter", "space")
        await app.workers.wait_for_complete()
        assert "step 14/18" in text_of(app, "#status")
        await pilot.press("home", "slash", *'"price": 15', "enter")
        assert "step 9/18" in text_of(app, "#status")
        assert "bidder-c" in text_of(app, "#message")
        await pilot.press("slash", *"no such thing", "enter")
        assert "not found" in text_of(app, "#status")
        assert "step 9/18" in text_of(app, "#status")


async def test_a_trap_shows_in_the_agents_state(tmp_path: Path) -> None:
    app = ReplayApp(record(CONVERSATION, contract_net(trap=True)), export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("right", "right", "right")
        assert "last error: trap: unreachable" in text_of(app, "#state")
        await pilot.press("e")
        assert (tmp_path / f"{CONVERSATION}.jsonl").read_text().count("\n") == 15
        assert "sequenceDiagram" in (tmp_path / f"{CONVERSATION}.md").read_text()


@pytest.mark.parametrize("violated", [False, True], ids=["contract-net", "violated"])
def test_main_screen_snapshot(snap_compare: Any, violated: bool) -> None:
    app = app_for(violated=violated)
    keys = ["g", *"14", "enter"]
    assert snap_compare(app, press=keys, terminal_size=SIZE)


class GrowingSource:
    """A source whose log grows while the app is open (the live-server case)."""

    where = "a test"

    def __init__(self, later: list[Recorded]) -> None:
        self.later = later
        self.release = asyncio.Event()

    async def memory(self, agent: str, replica: int, position: int) -> None:
        return None  # no agent of this log keeps memory

    async def follow(self, after: int) -> AsyncIterator[Recorded]:
        await self.release.wait()
        for recorded in self.later:
            if recorded.position > after:
                yield recorded
        await asyncio.Event().wait()  # a live log never ends


async def test_a_live_conversation_keeps_growing_on_screen() -> None:
    history = contract_net()
    source = GrowingSource(history)
    app = ReplayApp(record(CONVERSATION, history[:14]), source=source)  # type: ignore[arg-type]
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("end")
        assert "step 6/6" in text_of(app, "#status")
        source.release.set()
        while app.cursor.last < 18:
            await pilot.pause()
        assert "step 18/18" in text_of(app, "#status")  # it was at the end: it follows
        assert app.query_one("#timeline", DataTable).row_count == 18
