"""`caxton replay --fork-at STEP --edit F=V`: the forked conversation beside the original.

Two columns, each a timeline over its selected message: the original as recorded on the
left, the fork on the right with each step's sign (✎ edited, ↻ handled again, = sent as
recorded, ≠ sent otherwise, + not in the record). Moving in one moves the other to the
step about the same message, when it has one. Everything shown comes from
`caxton.replay`; this module only lays it out.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Footer, Header, Static

from caxton.replay.cursor import Cursor, Timeline
from caxton.replay.fork import LEGEND, SIGNS, Fork, Mark, counterpart
from caxton.replay.recording import Recording
from caxton.replay.views import detail, rows
from tui.replay import STATUS_STYLE

SIDES = ("original", "fork")
MARK_STYLE: dict[Mark, str] = {
    "recorded": "",
    "edited": "bold yellow",
    "re-executed": "cyan",
    "same": "green",
    "changed": "bold red",
    "new": "bold magenta",
}


class ForkApp(App[None]):
    """The original conversation and its fork, side by side."""

    CSS_PATH = "fork.tcss"
    TITLE = "Caxton replay — fork"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("tab", "other_side", "Other side", priority=True),
        Binding("home", "edge(0)", "First", show=False, priority=True),
        Binding("end", "edge(1)", "Last", show=False, priority=True),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, result: Fork, edits: list[tuple[str, str]]) -> None:
        super().__init__()
        self.result = result
        self.edits = edits
        self.timelines = {
            "original": Timeline(result.original),
            "fork": Timeline(result.recording),
        }
        self.steps = {"original": result.step, "fork": result.step}
        self._following = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="sides"):
            for side in SIDES:
                with Vertical(id=f"{side}-side", classes="side"):
                    table: DataTable[str | Text] = DataTable(
                        id=f"{side}-timeline", cursor_type="row", classes="timeline"
                    )
                    yield table
                    with VerticalScroll(id=f"{side}-pane", classes="message-pane"):
                        yield Static(id=f"{side}-message")
        yield Static(LEGEND, id="legend")
        yield Footer()

    def on_mount(self) -> None:
        changes = ", ".join(f"{name}={value}" for name, value in self.edits)
        self.sub_title = f"{self.result.original.conversation_id} · fork at step {self.result.step}"
        self.query_one("#original-side").border_title = "Original (as recorded)"
        self.query_one("#fork-side").border_title = f"Fork: step {self.result.step} {changes}"
        for side in SIDES:
            self._fill(side)
        self.query_one("#fork-timeline", DataTable).focus()
        for side in SIDES:
            self._select(side, self.steps[side])

    def _fill(self, side: str) -> None:
        table = self.query_one(f"#{side}-timeline", DataTable)
        table.add_column("", key="sign", width=1)
        table.add_column("#", key="step", width=4)
        table.add_column("time (UTC)", key="time", width=12)
        table.add_column("sender → receivers", key="who", width=28)
        table.add_column("performative", key="performative", width=15)
        table.add_column("status", key="status", width=11)
        marks = self.result.marks if side == "fork" else ()
        for r in rows(self.timelines[side]):
            mark: Mark = marks[r.step - 1] if marks else "recorded"
            table.add_row(
                Text(SIGNS[mark], style=MARK_STYLE[mark]),
                Text(str(r.step)),
                Text(r.time),
                Text(r.arrow),
                Text(r.performative),
                Text(r.status, style=STATUS_STYLE.get(r.status, "magenta")),
                key=str(r.step),
            )

    def _select(self, side: str, step: int) -> None:
        """Shows `step` of one side: its row highlighted, its message in full."""
        self.steps[side] = step
        table = self.query_one(f"#{side}-timeline", DataTable)
        if step and table.cursor_row != step - 1:
            table.move_cursor(row=step - 1, animate=False)
        cursor = Cursor(timeline=self.timelines[side], step=step)
        self.query_one(f"#{side}-message", Static).update(Text(detail(cursor)))

    def _recording(self, side: str) -> Recording:
        return self.timelines[side].recording

    @on(DataTable.RowHighlighted)
    def moved(self, event: DataTable.RowHighlighted) -> None:
        """A step chosen on one side; the other side follows to its counterpart."""
        if self._following or event.cursor_row != event.data_table.cursor_row:
            return  # moved here by the other side, or a stale event from before a move
        side = "fork" if event.data_table.id == "fork-timeline" else "original"
        step = event.cursor_row + 1
        self._select(side, step)
        other = "original" if side == "fork" else "fork"
        there = counterpart(step, self._recording(side), self._recording(other), self.result.step)
        if there is not None and there != self.steps[other]:
            self._following = True
            try:
                self._select(other, there)
            finally:
                self.call_after_refresh(self._followed)

    def _followed(self) -> None:
        self._following = False

    def action_edge(self, last: int) -> None:
        """Home / End: the first or last step of the side in focus."""
        table = self.focused
        if isinstance(table, DataTable):
            table.move_cursor(row=table.row_count - 1 if last else 0, animate=False)

    def action_other_side(self) -> None:
        focused = self.focused
        other = "original" if focused is not None and focused.id == "fork-timeline" else "fork"
        self.query_one(f"#{other}-timeline", DataTable).focus()
