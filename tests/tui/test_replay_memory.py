"""The replay TUI's memory pane: the memory of the agent a step is about, as the source
rebuilds it at that step's position, marked against the step before."""

from __future__ import annotations

import json
from typing import Any

from textual.widgets import Static

from caxton.domain.memory import Memory
from caxton.replay.recording import record
from tests.replay.recordings import CONVERSATION, contract_net
from tui.replay import ReplayApp

SIZE = (120, 48)


class RememberingSource:
    """The manager keeps the bids it has seen (one more per handling from position 18);
    the bidders keep no memory; position 12 cannot be rebuilt."""

    where = "a test"

    def __init__(self) -> None:
        self.asked: list[tuple[str, int, int]] = []

    async def memory(self, agent: str, replica: int, position: int) -> Memory | None:
        self.asked.append((agent, replica, position))
        if agent != "manager":
            return None
        bids = max(0, min(position, 20) - 17)
        state = json.dumps({"bids": bids, "phase": "collecting" if bids < 3 else "deciding"})
        return Memory(
            agent=agent,
            replica=replica,
            state=state,
            handled=1 + bids,
            restored=0,
            rebuilt=1 + bids,
            position=position,
            quarantined=(),
            rebuild_us=10,
        )

    async def follow(self, after: int) -> Any:
        if False:
            yield


def app() -> tuple[ReplayApp, RememberingSource]:
    source = RememberingSource()
    return ReplayApp(record(CONVERSATION, contract_net()), source=source), source  # type: ignore[arg-type]


def state_of(replay: ReplayApp) -> str:
    return str(replay.query_one("#state", Static).render())


async def settled(replay: ReplayApp, pilot: Any) -> str:
    await replay.workers.wait_for_complete()
    await pilot.pause()
    return state_of(replay)


async def test_the_pane_shows_the_memory_at_this_step_and_what_changed() -> None:
    replay, source = app()
    async with replay.run_test(size=SIZE) as pilot:
        await pilot.press("g", "1", "1", "enter")  # manager handles its second proposal
        state = await settled(replay, pilot)
        assert "Memory of manager#0" in state
        assert "after 3 handlings · changed at this step" in state
        assert '-   "bids": 1,' in state and '+   "bids": 2,' in state
        assert ("manager", 0, 19) in source.asked and ("manager", 0, 18) in source.asked

        await pilot.press("g", "1", "4", "enter")  # a send: its memory did not change
        state = await settled(replay, pilot)
        assert "changed at this step" not in state and '"bids": 3' in state

        await pilot.press("g", "4", "enter")  # bidder-a keeps none
        state = await settled(replay, pilot)
        assert "Memory of bidder-a#0" in state and "keeps no memory" in state


async def test_a_client_step_shows_no_memory_and_asks_for_none() -> None:
    replay, source = app()
    async with replay.run_test(size=SIZE) as pilot:
        state = await settled(replay, pilot)  # step 1: the client's cfp request
        assert "Memory of" not in state
        assert source.asked == []


def test_memory_pane_snapshot(snap_compare: Any) -> None:
    replay, _ = app()

    async def at_step_11(pilot: Any) -> None:
        await pilot.press("g", "1", "1", "enter")
        await replay.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(replay, run_before=at_step_11, terminal_size=SIZE)
