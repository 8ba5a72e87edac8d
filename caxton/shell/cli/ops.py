"""Live operations: `caxton config set|get`, `caxton debug agent`, `caxton top`."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from caxton.domain.memory import Memory
from caxton.domain.units import format_duration, format_size
from caxton.replay.views import pretty
from caxton.shell.cli.agents import memory_lines
from caxton.shell.cli.common import DURATION, SIZE, Failure, out, run, server_options
from caxton.shell.client import Connection
from caxton.shell.operations import AgentDebug, AgentFigures, ConversationFigures, Setting


@click.group()
def config() -> None:
    """Change a running agent's settings live (recorded as an event), or show them."""


@config.command("set")
@click.option("--agent", "name", required=True, help="The agent to change.")
@click.option("--memory", type=SIZE, default=None, help="Linear memory per instance: 128MiB.")
@click.option("--timeout", type=DURATION, default=None, help="Time budget per message: 10s.")
@click.option("--mailbox", type=int, default=None, help="Messages queued per instance.")
@click.option("--restart.max", "restart_max", type=int, default=None, help="Restarts allowed…")
@click.option(
    "--restart.window", "restart_window", type=DURATION, default=None, help="…within: 60s."
)
@click.option(
    "--circuit-breaker.timeout",
    "breaker_timeout",
    type=DURATION,
    default=None,
    help="Time one tool call may take: 10s.",
)
@click.option(
    "--circuit-breaker.threshold",
    "breaker_threshold",
    type=int,
    default=None,
    help="Tool failures before the breaker opens.",
)
@click.option(
    "--tools",
    default=None,
    help="Tool grants, comma-separated: db.read_query,time.* (empty: revoke all).",
)
@server_options
@run
async def config_set(
    name: str,
    memory: int | None,
    timeout: int | None,
    mailbox: int | None,
    restart_max: int | None,
    restart_window: int | None,
    breaker_timeout: int | None,
    breaker_threshold: int | None,
    tools: str | None,
    server: Connection,
) -> None:
    """Apply new settings to a running agent without restarting it."""
    grants = None if tools is None else [t.strip() for t in tools.split(",") if t.strip()]
    async with server.client() as client:
        settings = await client.config_set(
            name,
            memory_bytes=memory,
            timeout_ms=timeout,
            mailbox=mailbox,
            max_restarts=restart_max,
            restart_window_ms=restart_window,
            breaker_timeout_ms=breaker_timeout,
            breaker_threshold=breaker_threshold,
            tools=grants,
        )
    out.print(f"✓ {name} reconfigured (applied to its running instances, no restart)")
    _print_settings(settings)


@config.command("get")
@click.option("--agent", "name", required=True, help="The agent to show.")
@server_options
@run
async def config_get(name: str, server: Connection) -> None:
    """Show an agent's effective settings and where each came from."""
    async with server.client() as client:
        settings = await client.config_get(name)
    _print_settings(settings)


def _print_settings(settings: tuple[Setting, ...]) -> None:
    width = max(len(s.name) for s in settings)
    for s in settings:
        out.print(f"  {s.name:<{width}}  {s.value:<16} ({s.source})", markup=False)


@click.group()
def debug() -> None:
    """Look inside a running agent."""


@debug.command("agent")
@click.argument("name")
@click.option("--show-metrics", is_flag=True, help="Print the one-line figures first.")
@click.option(
    "--recent",
    type=int,
    default=10,
    show_default=True,
    help="How many of each (the server keeps an agent's last 16 conversations, 64 traps).",
)
@click.option(
    "--state",
    "state",
    is_flag=True,
    help="Show the agent's own memory (its snapshot()), rebuilt from the log, instead.",
)
@click.option("--replica", type=click.IntRange(0), default=0, show_default=True)
@server_options
@run
async def debug_agent(
    name: str, show_metrics: bool, recent: int, state: bool, replica: int, server: Connection
) -> None:
    """An agent's queue, handling times, recent traps, restarts and conversations; with
    --state, its own memory."""
    if recent < 1:
        raise Failure("--recent must be at least 1", code=2)
    async with server.client() as client:
        if state:
            memory = await client.agent_memory(name, replica)
            for line in memory_state_lines(memory):
                out.print(line, markup=False)
            return
        found = await client.debug_agent(name, recent=recent)
        info = await client.agent(name)
    for line in debug_lines(found, show_metrics=show_metrics):
        out.print(line, markup=False)
    for line in memory_lines(info):
        out.print(line, markup=False)


def memory_state_lines(memory: Memory) -> list[str]:
    """`caxton debug agent NAME --state`: the memory, pretty when it is JSON."""
    source = (
        f"snapshot of {memory.restored:,} + {memory.rebuilt:,} re-executed"
        if memory.restored
        else f"{memory.rebuilt:,} re-executed from the start"
    )
    lines = [
        f"{memory.agent}#{memory.replica} memory at log position {memory.position:,}: "
        f"{memory.handled:,} handlings ({source}, rebuilt in {memory.rebuild_us / 1000:.1f} ms)"
    ]
    if memory.quarantined:
        lines.append(f"Quarantined (skipped): {', '.join(memory.quarantined)}")
    lines.extend(pretty(memory.state, "json").splitlines())
    return lines


def metrics_line(agent: AgentFigures) -> str:
    """`Memory: 3 × 64MiB limit | Queue: 1,523 messages | Handling: 12.4/s (p99: 152ms) | …`."""
    tools = (
        f"{agent.tool_calls_per_second:,.1f}/s (p99: {_ms(agent.tool_p99_ms)})"
        if agent.tool_calls_per_second or agent.tool_p99_ms
        else "none"
    )
    return (
        f"Memory: {agent.running} × {format_size(agent.memory_limit_bytes)} limit"
        f" | Queue: {agent.mailbox_depth:,} messages"
        f" | Handling: {agent.messages_per_second:,.1f}/s (p99: {_ms(agent.p99_handling_ms)})"
        f" | Tool calls: {tools}"
    )


def debug_lines(found: AgentDebug, *, show_metrics: bool) -> list[str]:
    agent = found.agent
    lines = [
        f"{agent.name}: {agent.state} ({agent.running}/{agent.replicas} instances running), "
        f"{agent.handled:,} handled, {agent.traps} traps, {agent.restarts} restarts"
    ]
    if show_metrics:
        lines.insert(0, metrics_line(agent))
    lines.append("Recent traps:" if found.traps else "Recent traps: none")
    lines.extend(
        f"  [{_clock(t.at_ms)}] replica {t.replica} {t.kind}: {t.reason}"
        + (f"  conversation={t.conversation_id}" if t.conversation_id else "")
        for t in found.traps
    )
    lines.append("Recent restarts:" if found.restarts else "Recent restarts: none")
    lines.extend(
        f"  [{_clock(r.at_ms)}] replica {r.replica} attempt {r.attempt} "
        f"after {format_duration(r.delay_ms)}"
        for r in found.restarts
    )
    lines.append("Recent conversations:" if found.conversations else "Recent conversations: none")
    lines.extend(f"  {conversation_line(c)}" for c in found.conversations)
    return lines


def conversation_line(c: ConversationFigures) -> str:
    text = f"{c.id}  {c.protocol or '-'}  {c.state}  {c.messages} messages"
    return f"{text}  ({c.detail})" if c.detail else text


def _ms(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:.1f}s"
    if value >= 10:
        return f"{value:.0f}ms"
    return f"{value:.2f}ms"


def _clock(at_ms: int) -> str:
    moment = datetime.fromtimestamp(at_ms / 1000, tz=UTC)
    return moment.strftime("%H:%M:%S.") + f"{at_ms % 1000:03d}"
