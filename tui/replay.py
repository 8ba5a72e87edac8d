"""`caxton replay`: step through a recorded conversation.

Everything shown is computed by `caxton.replay.views` from a `Cursor`; this module only
lays it out, maps keys to cursor moves, and follows a live log. It reads, and never
re-executes, calls a tool or emits telemetry.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Footer, Header, Input, Static

from caxton.domain.memory import Memory
from caxton.replay.cursor import Cursor, Timeline, about
from caxton.replay.export import jsonl_lines, mermaid
from caxton.replay.memory_view import changed, memory_lines, subject
from caxton.replay.recording import Recording, extend
from caxton.replay.views import (
    Row,
    lane_width,
    phase_line,
    rows,
    search,
    sequence,
    state_view,
    wrapped,
)
from caxton.replay.views import detail as detail_text
from caxton.replay.views import lanes as lanes_of
from caxton.shell.archive import Source

PLAY_INTERVAL_S = 0.4
TIMELINE_WIDTH = 81
"""As in replay.tcss: the timeline's width outside a cluster, its sender → receivers
column at its narrowest."""
NODE_WIDTH = 8
WHO_WIDTH = 26
"""The sender → receivers column at its narrowest; it widens to show its longest value
while the state pane keeps `STATE_WIDTH`, and wraps what is longer still."""
STATE_WIDTH = 39
STATUS_STYLE = {
    "sent": "cyan",
    "handled": "green",
    "failed": "yellow",
    "dead-letter": "red",
    "trapped": "bold red",
    "takeover": "bold magenta",
    "tool call": "blue",
    "tool result": "green",
    "tool failed": "yellow",
    "breaker": "bold yellow",
}
OUTCOME_STYLE = {"open": "cyan", "done": "green", "failed": "red", "violated": "bold red"}


class _Rebuilding:
    """A memory a worker is rebuilding."""


_REBUILDING = _Rebuilding()
Found = Memory | str | None | _Rebuilding
"""A memory asked of the source: it, None when the instance keeps none there, why it
could not be rebuilt, or still rebuilding."""
_MARK_STYLE = {" ": "", "+": "green", "-": "red"}


class ReplayApp(App[None]):
    """One conversation: timeline, sequence diagram, message, state, status bar."""

    CSS_PATH = "replay.tcss"
    TITLE = "Caxton replay"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("right,down,n", "step(1)", "Step", key_display="→/n", priority=True),
        Binding("left,up,p", "step(-1)", "Back", key_display="←/p", priority=True),
        Binding("home", "home", "First", show=False, priority=True),
        Binding("end", "end", "Last", show=False, priority=True),
        Binding("g", "prompt('go')", "Go to"),
        Binding("b", "breakpoint", "Break"),
        Binding("B", "prompt('break')", "Break on"),
        Binding("space", "play", "Play"),
        Binding("slash", "prompt('search')", "Search", key_display="/"),
        Binding("c", "cause", "Cause"),
        Binding("e", "export", "Export"),
        Binding("q", "quit", "Quit"),
        Binding("escape", "cancel_prompt", "Cancel", show=False),
    ]

    def __init__(
        self,
        recording: Recording,
        *,
        source: Source | None = None,
        export_dir: Path | None = None,
    ) -> None:
        super().__init__()
        self.cursor = Cursor.open(recording)
        self.clustered = recording.clustered
        """Whether the timeline has a node column: fixed when opened (a cluster's log
        shows claims before the first handling, so a live one is known from the start)."""
        self.source = source
        self.export_dir = export_dir or Path.cwd()
        self.playing = False
        self.message = ""
        self._prompt = ""
        self._shown = 0
        self._diagram: tuple[int, list[tuple[int, str]]] = (-1, [])
        self._shown_text: dict[str, Text] = {}
        self._shapes: dict[str, tuple[int, int]] = {}
        self._rows: list[Row] = []
        self._who = 0
        """The sender → receivers column's width as drawn (0 before the first drawing)."""
        self._memories: dict[tuple[str, int, int], Found] = {}
        self._asked: tuple[tuple[str, int, int], ...] = ()
        """Memories asked of the source by (agent, replica, position): the memory, None when
        the instance keeps none there, or why it could not be rebuilt."""

    # --- layout ------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="top"):
            table: DataTable[str | Text] = DataTable(id="timeline", cursor_type="row")
            yield table
            with VerticalScroll(id="state-pane"):
                yield Static(id="state")
        with Horizontal(id="bottom"):
            with Vertical(id="diagram-pane"):
                yield Static(id="phase")
                with VerticalScroll(id="diagram-scroll"):
                    yield Static(id="diagram")
            with VerticalScroll(id="message-pane"):
                yield Static(id="message")
        yield Input(id="prompt")
        yield Static(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = self.cursor.timeline.recording.conversation_id
        table = self.query_one("#timeline", DataTable)
        table.border_title = "Timeline"
        self.query_one("#diagram-pane").border_title = "Sequence"
        self.query_one("#message-pane").border_title = "Message"
        self.query_one("#state-pane").border_title = "State at this step"
        self.query_one("#prompt", Input).display = False
        table.focus()
        self._add_rows()
        self.refresh_view()
        if self.source is not None:
            self.follow()

    # --- drawing -----------------------------------------------------------

    def _columns(self, who: int) -> list[tuple[str, str, int]]:
        """The timeline's columns; a cluster's log adds the node of each step."""
        node = [("node", "node", NODE_WIDTH)] if self.clustered else []
        return [
            ("step", "#", 4),
            ("time", "time (UTC)", 12),
            *node,
            ("who", "sender → receivers", who),
            ("performative", "performative", 15),
            ("status", "status", 11),
        ]

    @property
    def _node_width(self) -> int:
        """What the node column adds to the timeline (padding included), so that status
        still shows."""
        return NODE_WIDTH + 2 if self.clustered else 0

    def _who_width(self) -> int:
        """As wide as the longest sender → receivers, while the state pane keeps its
        width; never narrower than `WHO_WIDTH`."""
        room = self.size.width - (TIMELINE_WIDTH - WHO_WIDTH) - self._node_width - STATE_WIDTH
        longest = max((len(r.arrow) for r in self._rows), default=0)
        return max(WHO_WIDTH, min(longest, room))

    def _add_rows(self) -> None:
        """Adds the steps recorded since the last call, and draws the whole table again
        when the sender → receivers column must change its width."""
        self._rows += rows(self.cursor.timeline, start=len(self._rows) + 1)
        if self._who_width() != self._who:
            self._draw_timeline()
            return
        table = self.query_one("#timeline", DataTable)
        for r in self._rows[self._shown :]:
            self._add_row(table, r)
        self._shown = len(self._rows)

    def _draw_timeline(self) -> None:
        table = self.query_one("#timeline", DataTable)
        self._who = self._who_width()
        table.clear(columns=True)
        for key, label, width in self._columns(self._who):
            table.add_column(label, key=key, width=width)
        for r in self._rows:
            self._add_row(table, r)
        self._shown = len(self._rows)
        table.styles.width = TIMELINE_WIDTH + self._node_width + self._who - WHO_WIDTH
        if self.cursor.step:
            table.move_cursor(row=self.cursor.step - 1, animate=False)

    def _add_row(self, table: DataTable[str | Text], r: Row) -> None:
        """One step; a sender → receivers longer than its column wraps onto more lines."""
        who = wrapped(r.arrow, self._who)
        node = (Text(r.node),) if self.clustered else ()
        table.add_row(
            self._marker(r.step),
            Text(r.time),
            *node,
            Text("\n".join(who)),
            Text(r.performative),
            Text(r.status, style=STATUS_STYLE.get(r.status, "magenta")),
            key=str(r.step),
            height=len(who),
        )

    def _marker(self, step: int) -> Text:
        """The step's number, after a red ● when it is a breakpoint."""
        if step in self.cursor.breakpoints.steps:
            return Text(f"●{step}", style="red")
        return Text(f" {step}")

    def refresh_view(self) -> None:
        cursor = self.cursor
        table = self.query_one("#timeline", DataTable)
        if cursor.step and table.cursor_row != cursor.step - 1:
            table.move_cursor(row=cursor.step - 1, animate=False)
        self._show("#message", Text(detail_text(cursor)))
        self._show("#state", self._state_text())
        self._show("#phase", Text(phase_line(cursor), style="bold"))
        self._show("#diagram", self._diagram_text())
        self._show("#status", self._status_text())

    def _show(self, selector: str, text: Text) -> None:
        """Updates a pane only when its text changed, and asks for a new layout only when
        its size did: a step then redraws what moved, not the whole screen."""
        before = self._shown_text.get(selector)
        if before is not None and before == text:
            return
        self._shown_text[selector] = text
        lines = text.plain.split("\n")
        shape = (len(lines), max(map(len, lines)))
        resized = self._shapes.get(selector) != shape
        self._shapes[selector] = shape
        self.query_one(selector, Static).update(text, layout=resized)

    def _diagram_text(self) -> Text:
        timeline = self.cursor.timeline
        pane = self.query_one("#diagram-scroll").size.width or 48
        width = lane_width(lanes_of(timeline), pane)
        if self._diagram[0] != len(timeline) * 100 + width:
            self._diagram = (len(timeline) * 100 + width, sequence(self.cursor, width=width))
        text = Text(no_wrap=True)
        for step, line in self._diagram[1]:
            if step == 0:
                text.append(line + "\n", style="bold")
            elif step == self.cursor.step:
                text.append(line + "\n", style="reverse bold")
            elif step > self.cursor.step:
                text.append(line + "\n", style="dim")
            else:
                text.append(line + "\n")
        return text

    def _state_text(self) -> Text:
        view = state_view(self.cursor)
        text = Text()
        text.append("Conversation\n", style="bold underline")
        text.append(f"  protocol  {view.protocol}\n")
        text.append(f"  phase     {view.phase}\n")
        text.append("  outcome   ")
        text.append(view.outcome + "\n", style=OUTCOME_STYLE.get(view.outcome, ""))
        text.append(f"  messages  {view.messages}\n")
        if view.failure:
            text.append(f"  failure   {view.failure}\n", style="red")
        for violation in view.violations:
            text.append(f"  ⚠ violation {violation}\n", style="bold red")
        text.append("\nAgents at this step\n", style="bold underline")
        for agent in view.agents:
            style = "" if not agent.last_error else "yellow"
            status = "" if agent.status == "running" else f"{agent.status} "
            text.append(f"  {agent.name:<12} {status}{agent.instances}", style=style)
            text.append(f" · {agent.restarts} restarts\n" if agent.restarts else "\n", style=style)
            if agent.last_error:
                text.append(f"    last error: {agent.last_error}\n", style="red")
        self._memory_text(text)
        return text

    def _memory_text(self, text: Text) -> None:
        """The memory of the instance this step is about, marked against the step before."""
        about = subject(self.cursor)
        if about is None or self.source is None:
            return
        here = (about.agent, about.replica, about.position)
        previous = (about.agent, about.replica, about.before) if about.before else None
        self._ask([here] if previous is None else [here, previous])
        now = self._memories.get(here, _REBUILDING)
        before = self._memories.get(previous, _REBUILDING) if previous else None
        text.append(f"\nMemory of {about.agent}#{about.replica}\n", style="bold underline")
        if now is _REBUILDING:
            text.append("  rebuilding…\n", style="italic")
        elif now is None:
            text.append("  keeps no memory\n", style="dim")
        elif isinstance(now, str):
            text.append(f"  {now}\n", style="red")
        elif isinstance(now, Memory):
            base = before if isinstance(before, Memory) else None
            text.append(
                f"  after {now.handled:,} handlings"
                + (" · changed at this step" if changed(now, base) else "")
                + "\n",
                style="dim",
            )
            for mark, line in memory_lines(now, base):
                text.append(f"{mark} {line}\n", style=_MARK_STYLE[mark])

    def _ask(self, keys: list[tuple[str, int, int]]) -> None:
        """Has the memories not known yet rebuilt, by one worker at a time, for the step
        shown: stepping on cancels the rebuild of a step left."""
        missing = tuple(k for k in keys if k not in self._memories)
        if missing and missing != self._asked:
            self._asked = missing

            self._rebuild(missing)

    @work(group="memory", exclusive=True)
    async def _rebuild(self, keys: tuple[tuple[str, int, int], ...]) -> None:
        assert self.source is not None
        for key in keys:
            try:
                found: Memory | str | None = await self.source.memory(*key)
            except asyncio.CancelledError:
                self._asked = ()  # left before it was done: asked again when back
                raise
            except Exception as exc:  # a server gone, a build missing: said in the pane
                found = str(exc) or type(exc).__name__
            self._memories[key] = found
        self._asked = ()
        self._show("#state", self._state_text())

    def _status_text(self) -> Text:
        cursor = self.cursor
        text = Text()
        text.append(f" step {cursor.step}/{cursor.last} ", style="reverse")
        recorded = cursor.recorded
        if recorded is not None:
            text.append(f"  position {recorded.position}")
        text.append("  ▶ playing" if self.playing else "  ■ paused")
        points = cursor.breakpoints
        if points:
            parts = [f"steps {','.join(map(str, sorted(points.steps)))}"] if points.steps else []
            parts += [f"on {p}" for p in sorted(points.performatives)]
            parts += [f"agent {a}" for a in sorted(points.agents)]
            text.append("  ● break: " + "; ".join(parts), style="red")
        if self.message:
            text.append(f"  {self.message}", style="italic")
        return text

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit)

    def _fit(self) -> None:
        """After a resize: the timeline's columns for the new width, then the panes."""
        if self._rows and self._who_width() != self._who:
            self._draw_timeline()
        self.refresh_view()

    def move(self, cursor: Cursor, message: str = "") -> None:
        self.cursor = cursor
        self.message = message
        self.refresh_view()

    # --- actions -------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """While a prompt is open, the keys it needs are its own (arrows move the caret)."""
        return not (action in ("step", "home", "end") and self._prompt_open())

    def _prompt_open(self) -> bool:
        try:
            return bool(self.query_one("#prompt", Input).display)
        except Exception:
            return False

    def action_step(self, delta: int) -> None:
        self.playing = False
        self.move(self.cursor.seek(self.cursor.step + delta))

    def action_home(self) -> None:
        self.move(self.cursor.home())

    def action_end(self) -> None:
        self.move(self.cursor.end())

    def action_breakpoint(self) -> None:
        cursor = self.cursor.toggle_breakpoint()
        on = cursor.step in cursor.breakpoints.steps
        self.cursor = cursor
        self._redraw_row(cursor.step)
        self.move(cursor, f"breakpoint {'set' if on else 'cleared'} at step {cursor.step}")

    def action_play(self) -> None:
        if self.playing:
            self.playing = False
            self.move(self.cursor, "paused")
            return
        if self.cursor.step >= self.cursor.last:
            self.cursor = self.cursor.seek(0)
        self.playing = True
        self.play()

    @work(exclusive=True, group="play")
    async def play(self) -> None:
        while self.playing:
            cursor, stop = self.cursor.play()
            if stop:
                self.playing = False
                why = "breakpoint" if cursor.at_breakpoint() else "end"
                self.move(cursor, f"stopped at {why}")
                return
            self.move(cursor)
            await asyncio.sleep(PLAY_INTERVAL_S)

    def action_cause(self) -> None:
        found = self.cursor.cause()
        if found is None:
            self.move(self.cursor, "no earlier cause in this conversation")
        else:
            self.move(found, f"cause of step {self.cursor.step}")

    def action_export(self) -> None:
        recording = self.cursor.timeline.recording
        base = self.export_dir / recording.conversation_id
        try:
            Path(f"{base}.jsonl").write_bytes(b"".join(jsonl_lines(recording.events)))
            Path(f"{base}.md").write_bytes(mermaid(recording))
        except OSError as exc:
            self.move(self.cursor, f"export failed: {exc.strerror}")
            return
        self.move(self.cursor, f"exported {base}.jsonl and {base}.md")

    def action_prompt(self, kind: str) -> None:
        self.playing = False
        self._prompt = kind
        prompt = self.query_one("#prompt", Input)
        prompt.placeholder = {
            "go": "go to step (number)",
            "break": "break on a performative or an agent (e.g. propose, bidder-b)",
            "search": "search the text shown (content, agents, status, time)",
        }[kind]
        prompt.value = ""
        prompt.display = True
        prompt.focus()

    def action_cancel_prompt(self) -> None:
        prompt = self.query_one("#prompt", Input)
        prompt.display = False
        self.query_one("#timeline", DataTable).focus()

    @on(Input.Submitted, "#prompt")
    def answered(self, event: Input.Submitted) -> None:
        self.action_cancel_prompt()
        value = event.value.strip()
        if not value:
            return
        if self._prompt == "go":
            if not value.isdigit():
                self.move(self.cursor, f"{value!r} is not a step number")
                return
            self.move(self.cursor.seek(int(value)))
        elif self._prompt == "search":
            found = search(self.cursor, value)
            if found is None:
                self.move(self.cursor, f"{value!r} not found")
            else:
                self.move(found, f"found {value!r}")
        elif self._prompt == "break":
            names = {a for r in self.cursor.timeline.recording.events for a in about(r)[1]}
            if value in names:
                self.move(self.cursor.break_on(agent=value), f"break on agent {value}")
            else:
                self.move(self.cursor.break_on(performative=value), f"break on {value}")

    @on(DataTable.RowSelected, "#timeline")
    def row_chosen(self, event: DataTable.RowSelected) -> None:
        """A click on a row (or Enter) goes to its step."""
        step = event.cursor_row + 1
        if step != self.cursor.step:
            self.move(self.cursor.seek(step))

    def _redraw_row(self, step: int) -> None:
        if 0 < step <= self._shown:
            table = self.query_one("#timeline", DataTable)
            table.update_cell(str(step), "step", self._marker(step))

    # --- live ----------------------------------------------------------------

    @work(exclusive=True, group="follow")
    async def follow(self) -> None:
        """Keeps the conversation growing on screen while events are recorded."""
        assert self.source is not None
        recording = self.cursor.timeline.recording
        last = recording.events[-1].position if recording.events else 0
        try:
            async for recorded in self.source.follow(last):
                grown = extend(self.cursor.timeline.recording, recorded)
                if grown is self.cursor.timeline.recording:
                    continue
                self.grow(grown)
        except Exception as exc:  # the server went away: keep what is on screen
            self.move(self.cursor, f"live updates stopped: {exc}")

    def grow(self, recording: Recording) -> None:
        timeline: Timeline = self.cursor.timeline.grown(recording)
        at_end = self.cursor.step == self.cursor.last
        cursor = Cursor(
            timeline=timeline, step=self.cursor.step, breakpoints=self.cursor.breakpoints
        )
        self.cursor = cursor.end() if at_end and not self.playing else cursor
        self._add_rows()
        self.refresh_view()
