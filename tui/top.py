"""`caxton top`: a live view of a server, refreshed every second through the gRPC client.

Tabs for agents (sortable by any column; WAIT, HANDLE and TOOL P99: how long recent
messages waited in the mailbox and were handled, and tool calls took) and for
conversations that need a look (open, stalled past their reply-by, violated); Enter on
an agent opens its detail: recent conversations, traps and restarts; Enter on a
conversation opens its trace, the lines of `caxton trace`, followed live. The rows are
made by pure functions (`agent_rows`, `conversation_rows`, `detail_lines`), tested
without Textual. `caxton monitor --dashboard` serves the same app to web browsers
(tui/dashboard.py).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

import click
from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static, TabbedContent, TabPane

from caxton.domain.units import format_size
from caxton.shell.cli.common import Failure, out, run, server_options
from caxton.shell.cli.messages import trace_text
from caxton.shell.client import CaxtonError, Connection
from caxton.shell.operations import AgentDebug, AgentFigures, ConversationFigures, TopSnapshot

REFRESH_S = 1.0
DEFAULT_LISTEN = "127.0.0.1:8090"
"""`caxton monitor --dashboard`: browsers connect here (the gRPC API is on 50051)."""


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    value: Callable[[AgentFigures], float | str]
    show: Callable[[AgentFigures], str]


def _ms(value: float) -> str:
    return f"{value / 1000:.1f}s" if value >= 1000 else f"{value:.1f}ms"


COLUMNS: tuple[Column, ...] = (
    Column("name", "AGENT", lambda a: a.name, lambda a: a.name),
    Column("instances", "INST", lambda a: a.running, lambda a: f"{a.running}/{a.replicas}"),
    Column("state", "STATE", lambda a: a.state, lambda a: a.state),
    Column(
        "rate", "MSG/S", lambda a: a.messages_per_second, lambda a: f"{a.messages_per_second:.1f}"
    ),
    Column(
        "queue", "QUEUE", lambda a: a.mailbox_depth, lambda a: f"{a.mailbox_depth}/{a.mailbox_size}"
    ),
    Column("wait", "WAIT P99", lambda a: a.p99_queue_wait_ms, lambda a: _ms(a.p99_queue_wait_ms)),
    Column("p99", "HANDLE P99", lambda a: a.p99_handling_ms, lambda a: _ms(a.p99_handling_ms)),
    Column("tools", "TOOL P99", lambda a: a.tool_p99_ms, lambda a: _ms(a.tool_p99_ms)),
    Column(
        "memory",
        "MEM LIMIT",
        lambda a: a.memory_limit_bytes,
        lambda a: format_size(a.memory_limit_bytes),
    ),
    Column(
        "cpu", "CPU MS/S", lambda a: a.cpu_ms_per_second, lambda a: f"{a.cpu_ms_per_second:.1f}"
    ),
    Column("restarts", "RESTARTS", lambda a: a.restarts, lambda a: str(a.restarts)),
    Column("traps", "TRAPS", lambda a: a.traps, lambda a: str(a.traps)),
    Column("node", "NODE", lambda a: a.node, lambda a: a.node or "-"),
)
SORT_KEYS = tuple(c.key for c in COLUMNS)
STATE_STYLE = {
    "running": "green",
    "starting": "cyan",
    "degraded": "yellow",
    "failed": "bold red",
    "stopped": "dim",
    "stalled": "bold red",
    "violated": "bold magenta",
    "open": "cyan",
}


def agent_rows(
    snapshot: TopSnapshot, sort: str = "name", descending: bool = False
) -> list[tuple[str, ...]]:
    """One row of text per agent, sorted by a column."""
    column = next((c for c in COLUMNS if c.key == sort), COLUMNS[0])
    agents = sorted(snapshot.agents, key=column.value, reverse=descending)
    return [tuple(c.show(a) for c in COLUMNS) for a in agents]


def conversation_rows(snapshot: TopSnapshot) -> list[tuple[str, ...]]:
    """Stalled first, then violated, then open, each most recent first."""
    return [_conversation_row(c) for c in snapshot.conversations]


def _conversation_row(c: ConversationFigures) -> tuple[str, ...]:
    return (
        c.id,
        c.protocol or "-",
        c.state,
        str(c.messages),
        ", ".join(c.participants),
        _clock(c.last_at_ms),
        c.detail,
    )


def detail_lines(found: AgentDebug) -> list[str]:
    """The agent screen: figures, then recent conversations, traps and restarts."""
    a = found.agent
    on = f" on {a.node}" if a.node else ""
    lines = [
        f"{a.name}{on}: {a.state}, {a.running}/{a.replicas} instances, {a.handled:,} handled",
        f"queue {a.mailbox_depth}/{a.mailbox_size} · {a.messages_per_second:.1f} msg/s · "
        f"p99 wait {_ms(a.p99_queue_wait_ms)}, handling {_ms(a.p99_handling_ms)}, "
        f"tool {_ms(a.tool_p99_ms)} · cpu {a.cpu_ms_per_second:.1f} ms/s · "
        f"memory limit {format_size(a.memory_limit_bytes)} · {a.restarts} restarts",
        "",
        "Recent conversations",
    ]
    lines.extend(
        f"  {c.id}  {c.state:<8} {c.messages:>3} msgs  {c.detail}" for c in found.conversations
    )
    if not found.conversations:
        lines.append("  none")
    lines.extend(["", "Recent traps"])
    lines.extend(
        f"  [{_clock(t.at_ms)}] replica {t.replica} {t.kind}: {t.reason}" for t in found.traps
    )
    if not found.traps:
        lines.append("  none")
    lines.extend(["", "Recent restarts"])
    lines.extend(
        f"  [{_clock(r.at_ms)}] replica {r.replica} attempt {r.attempt} after {r.delay_ms} ms"
        for r in found.restarts
    )
    if not found.restarts:
        lines.append("  none")
    return lines


def _styled(state: str) -> Text:
    # padded: the table right-aligns a Text narrower than its column
    return Text(state.ljust(9), style=STATE_STYLE.get(state, ""))


def _clock(at_ms: int) -> str:
    if not at_ms:
        return "-"
    moment = datetime.fromtimestamp(at_ms / 1000, tz=UTC)
    return moment.strftime("%H:%M:%S")


Fetch = Callable[[], Awaitable[TopSnapshot]]
FetchAgent = Callable[[str], Awaitable[AgentDebug]]
FetchTrace = Callable[[str], Awaitable[list[str]]]


class AgentScreen(Screen[None]):
    """One agent's detail; Escape goes back."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "app.pop_screen", "Back")]

    def __init__(self, name: str, fetch: FetchAgent) -> None:
        super().__init__()
        self.agent_name = name
        self.fetch = fetch

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"loading {self.agent_name}…", id="agent-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_detail()
        self.set_interval(REFRESH_S, self.refresh_detail)

    @work(exclusive=True, group="detail")
    async def refresh_detail(self) -> None:
        try:
            found = await self.fetch(self.agent_name)
        except CaxtonError as exc:
            self.query_one("#agent-detail", Static).update(Text(f"✗ {exc}", style="red"))
            return
        # Text, not markup: traps and violations quote what agents said
        self.query_one("#agent-detail", Static).update(Text("\n".join(detail_lines(found))))


class TraceScreen(Screen[None]):
    """One conversation's trace, as `caxton trace` prints it, refreshed every second;
    Escape goes back."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "app.pop_screen", "Back")]

    def __init__(self, conversation_id: str, fetch: FetchTrace) -> None:
        super().__init__()
        self.conversation_id = conversation_id
        self.fetch = fetch

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="trace-pane"):
            yield Static(f"loading the trace of {self.conversation_id}…", id="trace")
        yield Static(
            Text(f"step through it: caxton replay --conversation {self.conversation_id}"),
            id="trace-hint",
        )
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"trace of conversation {self.conversation_id}"
        self.refresh_trace()
        self.set_interval(REFRESH_S, self.refresh_trace)

    @work(exclusive=True, group="trace")
    async def refresh_trace(self) -> None:
        try:
            lines = await self.fetch(self.conversation_id)
        except CaxtonError as exc:
            self.query_one("#trace", Static).update(Text(f"✗ {exc}", style="red"))
            return
        # Text, not markup: the lines quote what agents said
        shown = "\n".join(lines) or f"no steps recorded for conversation {self.conversation_id}"
        self.query_one("#trace", Static).update(Text(shown))


class TopApp(App[None]):
    """Agents and conversations of one server, live."""

    CSS_PATH = "top.tcss"
    TITLE = "Caxton top"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "sort_next", "Sort"),
        Binding("r", "reverse", "Reverse"),
        Binding("a", "show_tab('agents')", "Agents"),
        Binding("c", "show_tab('conversations')", "Conversations"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self, fetch: Fetch, fetch_agent: FetchAgent, fetch_trace: FetchTrace, *, where: str = ""
    ) -> None:
        super().__init__()
        self.fetch = fetch
        self.fetch_agent = fetch_agent
        self.fetch_trace = fetch_trace
        self.where = where
        self.sort = "name"
        self.descending = False
        self.snapshot: TopSnapshot | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial="agents"):
            with TabPane("Agents", id="agents"):
                yield DataTable(id="agent-table", cursor_type="row", zebra_stripes=True)
            with TabPane("Conversations", id="conversations"):
                yield DataTable(id="conversation-table", cursor_type="row", zebra_stripes=True)
        yield Static("connecting…", id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = self.where
        agents = self.query_one("#agent-table", DataTable)
        for column in COLUMNS:
            agents.add_column(column.label, key=column.key)
        conversations = self.query_one("#conversation-table", DataTable)
        for label in ("CONVERSATION", "PROTOCOL", "STATE", "MSGS", "PARTIES", "LAST", "WHY"):
            conversations.add_column(label, key=label.lower())
        agents.focus()
        self.refresh_snapshot()
        self.set_interval(REFRESH_S, self.refresh_snapshot)

    @work(exclusive=True, group="snapshot")
    async def refresh_snapshot(self) -> None:
        try:
            snapshot = await self.fetch()
        except CaxtonError as exc:
            self.query_one("#status", Static).update(Text(f"✗ {exc}", style="red"))
            return
        self.show(snapshot)

    def show(self, snapshot: TopSnapshot) -> None:
        self.snapshot = snapshot
        self._fill_agents()
        self._fill_conversations()
        stalled = sum(1 for c in snapshot.conversations if c.state == "stalled")
        self.query_one("#status", Static).update(
            f"{len(snapshot.agents)} agents · {len(snapshot.conversations)} conversations to "
            f"watch ({stalled} stalled) · log position {snapshot.position} · "
            f"sorted by {self.sort}{' ↓' if self.descending else ''} · {_clock(snapshot.at_ms)}"
        )

    def _fill_agents(self) -> None:
        if self.snapshot is None:
            return
        table = self.query_one("#agent-table", DataTable)
        selected = self._selected_agent()
        table.clear()
        for row in agent_rows(self.snapshot, self.sort, self.descending):
            table.add_row(row[0], row[1], _styled(row[2]), *row[3:], key=row[0])
        if selected is not None and selected in table.rows:
            table.move_cursor(row=table.get_row_index(selected))

    def _fill_conversations(self) -> None:
        if self.snapshot is None:
            return
        table = self.query_one("#conversation-table", DataTable)
        selected = _selected(table)
        table.clear()
        for row in conversation_rows(self.snapshot):
            cells = list(row)
            table.add_row(*cells[:2], _styled(cells[2]), *map(Text, cells[3:]), key=row[0])
        if selected is not None and selected in table.rows:  # the cursor stays on its row
            table.move_cursor(row=table.get_row_index(selected))

    def _selected_agent(self) -> str | None:
        return _selected(self.query_one("#agent-table", DataTable))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Sorting and the tabs act on the tables: off (and out of the footer) while an
        agent's detail or a conversation's trace is in front of them."""
        if action in ("sort_next", "reverse", "show_tab"):
            return len(self.screen_stack) == 1
        return True

    def action_sort_next(self) -> None:
        self.sort = SORT_KEYS[(SORT_KEYS.index(self.sort) + 1) % len(SORT_KEYS)]
        self._refill()

    def action_reverse(self) -> None:
        self.descending = not self.descending
        self._refill()

    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        table = "#agent-table" if tab == "agents" else "#conversation-table"
        self.query_one(table, DataTable).focus()

    def _refill(self) -> None:
        if self.snapshot is not None:
            self.show(self.snapshot)

    @on(DataTable.HeaderSelected, "#agent-table")
    def sort_by_header(self, event: DataTable.HeaderSelected) -> None:
        key = str(event.column_key.value)
        self.descending = not self.descending if key == self.sort else False
        self.sort = key
        self._refill()

    @on(DataTable.RowSelected, "#agent-table")
    def open_agent(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.push_screen(AgentScreen(str(event.row_key.value), self.fetch_agent))

    @on(DataTable.RowSelected, "#conversation-table")
    def open_trace(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.push_screen(TraceScreen(str(event.row_key.value), self.fetch_trace))


def _selected(table: DataTable[str | Text]) -> str | None:
    """The key of the row under the table's cursor."""
    if not table.row_count:
        return None
    key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
    return str(key.value) if key.value is not None else None


def snapshot_text(snapshot: TopSnapshot) -> list[str]:
    """`caxton top --once`: the same two tables as text."""
    header = tuple(c.label for c in COLUMNS)
    rows = [header, *agent_rows(snapshot)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.append("")
    if not snapshot.conversations:
        lines.append("no open, stalled or violated conversations")
    for c in snapshot.conversations:
        line = f"{c.state:<8} {c.id}  {c.protocol or '-'}  {c.messages} messages"
        lines.append(f"{line}  ({c.detail})" if c.detail else line)
    return [line.rstrip() for line in lines]


ONCE = click.option("--once", is_flag=True, help="Print one snapshot as text and exit; no TUI.")


@click.command()
@ONCE
@server_options
@run
async def top(once: bool, server: Connection) -> None:
    """A live view of agents and conversations (s: sort, Enter: agent detail or
    conversation trace, q: quit)."""
    await live_view(once, server)


@click.command()
@ONCE
@click.option(
    "--dashboard",
    is_flag=True,
    help="Serve the live view to web browsers instead of showing it here.",
)
@click.option(
    "--listen",
    default=DEFAULT_LISTEN,
    show_default=True,
    metavar="HOST:PORT",
    help="With --dashboard: where browsers connect.",
)
@server_options
def monitor(once: bool, dashboard: bool, listen: str, server: Connection) -> None:
    """`caxton top` under the product page's name; with --dashboard, the same live view in
    a web browser (s: sort, Enter: agent detail or conversation trace, q: quit)."""
    if not dashboard:
        if listen != DEFAULT_LISTEN:
            raise Failure("--listen goes with --dashboard", code=2)
        run(live_view)(once, server)
        return
    if once:
        raise Failure("--once prints a snapshot here; it does not go with --dashboard", code=2)
    from tui.dashboard import serve_dashboard  # textual-serve and aiohttp: only when asked

    serve_dashboard(server, listen)


async def live_view(once: bool, server: Connection) -> None:
    """`caxton top`: one snapshot as text, or the app until q."""
    async with server.client(timeout=10) as client:
        if once:
            for line in snapshot_text(await client.top()):
                out.print(line, markup=False)
            return
        app = TopApp(
            client.top,
            client.debug_agent,
            functools.partial(trace_text, client),
            where=client.address,
        )
        await app.run_async()
