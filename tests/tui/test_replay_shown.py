"""The replay TUI shows long values in full and `/` finds the text as it is shown."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import DataTable, Static
from textual.widgets.data_table import ColumnKey, RowKey

from caxton.replay.recording import record
from tests.replay.compact_recordings import compact_contract_net
from tests.replay.recordings import CONVERSATION
from tests.tui.test_replay_app import GrowingSource
from tui.replay import ReplayApp

WIDE = (160, 40)
NARROW = (120, 40)
CFP = "manager → bidder-a, bidder-b, bidder-c"
"""Step 3: the call for proposals, to three bidders."""


def app() -> ReplayApp:
    return ReplayApp(record(CONVERSATION, compact_contract_net()))


def text_of(app: ReplayApp, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


def who(app: ReplayApp, step: int) -> str:
    table: DataTable[str | Text] = app.query_one("#timeline", DataTable)
    return str(table.get_cell(str(step), "who"))


async def test_a_search_for_the_content_as_shown_finds_compact_content() -> None:
    replay = app()
    async with replay.run_test(size=NARROW) as pilot:
        await pilot.press("slash", *'"price": 15', "enter")
        assert "step 9/18" in text_of(replay, "#status")
        assert '"price": 15' in text_of(replay, "#message")  # as shown, with its space
        await pilot.press("home", "slash", *'"price":15', "enter")
        assert "step 9/18" in text_of(replay, "#status")
        await pilot.press("home", "slash", *"bidder-b, bidder-c", "enter")
        assert "step 3/18" in text_of(replay, "#status")


async def test_at_160_columns_the_receivers_show_in_full_on_one_line() -> None:
    replay = app()
    async with replay.run_test(size=WIDE):
        assert who(replay, 3) == CFP
        table: DataTable[str | Text] = replay.query_one("#timeline", DataTable)
        assert table.rows[RowKey("3")].height == 1
        assert table.columns[ColumnKey("who")].width == len(CFP)


async def test_narrower_the_receivers_wrap_and_a_resize_widens_the_column() -> None:
    replay = app()
    async with replay.run_test(size=NARROW) as pilot:
        assert who(replay, 3) == "manager → bidder-a,\nbidder-b, bidder-c"
        await pilot.resize_terminal(*WIDE)
        await pilot.pause()
        assert who(replay, 3) == CFP
        assert "step 1/18" in text_of(replay, "#status")


def test_wide_screen_snapshot(snap_compare: Any) -> None:
    assert snap_compare(app(), press=["g", "3", "enter"], terminal_size=WIDE)


async def test_a_live_step_to_more_receivers_widens_the_column() -> None:
    history = compact_contract_net()
    source = GrowingSource(history)
    replay = ReplayApp(record(CONVERSATION, history[:10]), source=source)  # type: ignore[arg-type]
    async with replay.run_test(size=WIDE) as pilot:
        assert replay.cursor.last == 2  # the request and its handling: no cfp yet
        await pilot.pause()  # the first layout (and its resize) settled before the cfp
        source.release.set()
        while replay.cursor.last < 18:
            await pilot.pause()
        assert who(replay, 3) == CFP
        assert replay.query_one("#timeline", DataTable).row_count == 18
