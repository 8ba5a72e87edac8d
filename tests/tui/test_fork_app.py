"""The fork view: the original and its fork side by side, driven by key presses."""

from __future__ import annotations

from textual.widgets import DataTable, Static

from caxton.replay.edits import parse_edit
from caxton.replay.fork import fork
from caxton.replay.recording import record
from tests.replay.relay_recordings import RELAYED, Agents, relayed
from tui.fork import ForkApp

SIZE = (160, 40)
EDIT = 'content={"price": 5}'


def app_for() -> ForkApp:
    events = relayed()
    edits = [parse_edit(EDIT)]
    return ForkApp(fork(record(RELAYED, events), events, 3, edits, Agents()), edits)


def text_of(app: ForkApp, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


def signs(table: DataTable[object]) -> list[str]:
    return [str(table.get_row_at(i)[0]) for i in range(table.row_count)]


async def test_the_fork_opens_beside_the_original_at_the_edited_step() -> None:
    app = app_for()
    async with app.run_test(size=SIZE):
        original = app.query_one("#original-timeline", DataTable)
        forked = app.query_one("#fork-timeline", DataTable)
        assert original.row_count == forked.row_count == 7
        assert signs(forked) == [" ", " ", "✎", "↻", "≠", "↻", "≠"]
        assert set(signs(original)) == {" "}
        assert original.cursor_row == forked.cursor_row == 2  # both at the edited step
        assert '"price": 7' in text_of(app, "#original-message")
        assert '"price": 5' in text_of(app, "#fork-message")
        assert app.focused is forked
        assert "Fork: step 3" in str(app.query_one("#fork-side").border_title)


async def test_stepping_in_the_fork_moves_the_original_to_the_same_message() -> None:
    app = app_for()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("end")  # the relay's answer to the client
        await pilot.pause()
        original = app.query_one("#original-timeline", DataTable)
        assert app.query_one("#fork-timeline", DataTable).cursor_row == 6
        assert original.cursor_row == 6
        assert '"price": 5' in text_of(app, "#fork-message")
        assert '"price": 7' in text_of(app, "#original-message")
        await pilot.press("tab", "home")  # over to the original, back to its start
        await pilot.pause()
        assert app.focused is original and original.cursor_row == 0
        assert app.query_one("#fork-timeline", DataTable).cursor_row == 0
        await pilot.press("q")
