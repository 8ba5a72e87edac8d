"""The replay TUI over a cluster's conversation: a node column, and the takeover as a step."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import DataTable, Static

from caxton.replay.recording import record
from tests.replay.cluster_recordings import clustered_contract_net
from tests.replay.recordings import CONVERSATION, contract_net
from tui.replay import ReplayApp

SIZE = (130, 40)


def text_of(app: ReplayApp, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


def cells(app: ReplayApp, step: int) -> list[str]:
    table: DataTable[str | Text] = app.query_one("#timeline", DataTable)
    return [str(cell).strip() for cell in table.get_row(str(step))]


async def test_a_cluster_s_timeline_names_the_node_of_each_step_and_shows_the_takeover() -> None:
    app = ReplayApp(record(CONVERSATION, clustered_contract_net()))
    async with app.run_test(size=SIZE) as pilot:
        table: DataTable[str | Text] = app.query_one("#timeline", DataTable)
        assert [c.label.plain for c in table.columns.values()][2] == "node"
        assert cells(app, 1)[2:] == ["", "client:cli → manager", "request", "sent"]
        assert cells(app, 2)[2] == "n0"
        assert cells(app, 10)[2:] == ["n2", "shard 23 n1 → n2", "", "takeover"]
        assert cells(app, 11)[2:] == ["n2", "bidder-b", "", "started"]
        await pilot.press("g", *"10", "enter")
        assert "step 10/20" in text_of(app, "#status")
        assert "takeover: shard 23  n1 → n2 (lease expired, epoch 2)" in text_of(app, "#message")
        assert "⇄ n1 → n2" in text_of(app, "#diagram")
        await pilot.press("right", "right")
        assert "handled by manager#0 on n0" in text_of(app, "#message")


async def test_a_search_finds_the_takeover() -> None:
    app = ReplayApp(record(CONVERSATION, clustered_contract_net()))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash", *"takeover", "enter")
        assert "step 10/20" in text_of(app, "#status")


async def test_outside_a_cluster_there_is_no_node_column() -> None:
    app = ReplayApp(record(CONVERSATION, contract_net()))
    async with app.run_test(size=SIZE):
        table: DataTable[str | Text] = app.query_one("#timeline", DataTable)
        assert "node" not in [c.label.plain for c in table.columns.values()]
        assert len(cells(app, 1)) == 5


def test_cluster_screen_snapshot(snap_compare: Any) -> None:
    app = ReplayApp(record(CONVERSATION, clustered_contract_net()))
    assert snap_compare(app, press=["g", *"10", "enter"], terminal_size=SIZE)
