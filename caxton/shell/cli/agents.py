"""`caxton agent ...`: write, build, deploy and manage agents."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table
from rich.text import Text

from caxton.domain import digests
from caxton.domain.agents import STARTED
from caxton.domain.units import format_duration, format_size
from caxton.shell.cli.common import (
    DURATION,
    SIZE,
    Failure,
    excerpt,
    flag_text,
    out,
    parse_json,
    run,
    server_options,
)
from caxton.shell.cli.progress import Stages
from caxton.shell.client import AgentInfo, Connection

TEMPLATES = ("request-handler", "contract-net-manager", "contract-net-bidder")


@click.group()
def agent() -> None:
    """Write, build, deploy and manage agents."""


@agent.command("new")
@click.argument("name")
@click.option(
    "--template", type=click.Choice(TEMPLATES), default="request-handler", show_default=True
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("."),
    help="Where to write NAME.py (default: here).",
)
def new(name: str, template: str, directory: Path) -> None:
    """Write a Python agent source from a template, ready to edit and build."""
    from caxton.shell.agents import AgentToolError, new_agent

    try:
        target = new_agent(name, template, directory)
    except AgentToolError as exc:
        raise Failure(str(exc)) from None
    out.print(f"✓ wrote {target} (template {template}); build it with: caxton agent build {target}")


@agent.command("build")
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Component to write (default SOURCE with .wasm).",
)
def build(source: Path, output: Path | None) -> None:
    """Package a Python agent as a WebAssembly component (componentize-py, caxton:agent world)."""
    from caxton.shell.agents import AgentToolError, build_agent

    if not source.is_file():
        raise Failure(f"{source}: no such file")
    target = output or source.with_suffix(".wasm")
    try:
        with Stages(out) as stages, stages.stage(source.name, "building with componentize-py"):
            result = build_agent(source, target)
    except AgentToolError as exc:
        raise Failure(str(exc)) from None
    out.print(f"✓ built {target} ({format_size(result.size)}) in {result.seconds:.1f}s")


@agent.command("deploy")
@click.argument("component", type=click.Path(path_type=Path))
@click.option("--name", required=True, help="Agent name (letters, digits, '_', '-', '.').")
@click.option(
    "--capability", "capabilities", multiple=True, help="A capability it offers (repeatable)."
)
@click.option("--replicas", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option(
    "--memory",
    type=SIZE,
    default="64MiB",
    show_default=True,
    help="Linear memory limit per instance.",
)
@click.option(
    "--timeout",
    type=DURATION,
    default="5s",
    show_default=True,
    help="Wall-clock budget per message.",
)
@click.option("--mailbox", type=click.IntRange(1, 1_000_000), default=1024, show_default=True)
@click.option(
    "--config",
    "config",
    default="",
    metavar="JSON|@FILE|-",
    help="Config passed to init(): JSON, @FILE (a file's JSON) or - (stdin).",
)
@click.option("--replace", is_flag=True, help="Redeploy over an agent of the same name.")
@click.option(
    "--tools",
    "tool_grants",
    default="",
    help="MCP tools it may call: SERVER.TOOL or SERVER.*, comma-separated (db.read_query,time.*).",
)
@server_options
@run
async def deploy(
    component: Path,
    name: str,
    capabilities: tuple[str, ...],
    replicas: int,
    memory: int,
    timeout: int,
    mailbox: int,
    config: str,
    replace: bool,
    tool_grants: str,
    server: Connection,
) -> None:
    """Deploy a component: `caxton agent deploy agent.wasm --name N --replicas 3`."""
    try:
        wasm = component.read_bytes()
    except OSError as exc:
        raise Failure(f"{component}: cannot read ({exc.strerror})") from None
    config_text = _config_text(config)
    # a deploy has no deadline (a component's first deploy compiles it: minutes on a busy
    # machine), so the progress shows that it is still running
    size = format_size(len(wasm))
    doing = f"deploying {component.name} ({size}; a component's first deploy compiles it)"
    async with server.client() as client:
        with Stages(out) as stages, stages.stage(name, doing) as stage:
            info = await client.deploy(
                wasm,
                name,
                capabilities=capabilities,
                replicas=replicas,
                memory_bytes=memory,
                timeout_ms=timeout,
                mailbox=mailbox,
                config=config_text,
                replace=replace,
                filename=component.name,
                tools=[t.strip() for t in tool_grants.split(",") if t.strip()],
            )
            stage.done(f"the server answered in {stage.elapsed():.1f} s")  # not yet: started
    failing = not_started(info)
    out.print(
        f"{'' if failing else '✓ '}deployed {info.name} "
        f"({info.component_digest[: len(digests.PREFIX) + 12]}, "
        f"{format_size(info.component_size)})"
    )
    out.print(f"  {info.status_line}", markup=False)
    if failing:
        raise Failure(
            f"{info.name} did not start: {failing} "
            f"(fix it, then deploy again with --replace; see: caxton agent status {info.name})"
        )


def not_started(info: AgentInfo) -> str:
    """Why instances failed to start (`replica 0 failed: init-error: bad config`), or ""
    when every instance runs or is still starting with no error so far."""
    return "; ".join(
        f"replica {i.replica} {i.lifecycle}"
        + (f": {excerpt(i.last_error)}" if i.last_error else "")
        for i in info.instances
        if i.lifecycle not in STARTED
    )


def _config_text(config: str) -> str:
    config = flag_text(config, "--config")
    if config:
        parse_json(config, "--config")
    return config


@agent.command("list")
@server_options
@run
async def list_agents(server: Connection) -> None:
    """List deployed agents."""
    async with server.client() as client:
        agents = await client.agents()
    if not agents:
        out.print("no agents deployed")
        return
    table = Table(box=None, header_style="bold")
    for column in (
        "NAME",
        "STATUS",
        "INSTANCES",
        "CAPABILITIES",
        "MEMORY",
        "TIMEOUT",
        "HANDLED",
        "RESTARTS",
        "NODE",
    ):
        table.add_column(column)
    for info in agents:
        table.add_row(
            info.name,
            info.status,
            f"{info.healthy}/{info.replicas}",
            ",".join(info.capabilities) or "-",
            format_size(info.memory_bytes),
            format_duration(info.timeout_ms),
            str(sum(i.handled for i in info.instances)),
            str(sum(i.restarts for i in info.instances)),
            Text(", ".join(_nodes(info)) or "-"),  # Text, not markup: node ids are the user's
        )
    out.print(table)


@agent.command("status")
@click.argument("name")
@server_options
@run
async def status(name: str, server: Connection) -> None:
    """Show an agent's health: `✓ Running (3/3 instances healthy)` or what is wrong."""
    async with server.client() as client:
        info = await client.agent(name)
    out.print(info.status_line, markup=False)  # it may quote an agent's own error text
    nodes = _nodes(info)
    if len(nodes) == 1:
        out.print(f"  node: {nodes[0]}", markup=False)
    elif not nodes and info.instances:
        out.print("  node: none (no node holds its shard yet)")
    _print_instances(info, each_node=len(nodes) > 1)
    if info.tools:
        out.print(f"  tools: {', '.join(info.tools)}", markup=False)
    if info.healthy < info.replicas:
        raise SystemExit(1)


def _nodes(info: AgentInfo) -> list[str]:
    """The nodes running the agent's instances, in replica order, each once."""
    return list(dict.fromkeys(i.node for i in info.instances if i.node))


def _print_instances(info: AgentInfo, *, each_node: bool = False) -> None:
    for instance in info.instances:
        line = (
            f"  #{instance.replica} {instance.lifecycle:<10} incarnation {instance.incarnation}"
            f"  handled {instance.handled}  restarts {instance.restarts}  traps {instance.traps}"
        )
        if each_node:
            line += f"  node {instance.node or '-'}"
        if instance.last_error:
            line += f"  last error: {instance.last_error}"
        out.print(line, markup=False)


@agent.command("stop")
@click.argument("name")
@server_options
@run
async def stop(name: str, server: Connection) -> None:
    """Stop an agent's instances (it stays deployed; messages to it are dead-lettered)."""
    async with server.client() as client:
        info = await client.stop(name)
    out.print(f"✓ stopped {name}: {info.status_line}", markup=False)


@agent.command("remove")
@click.argument("name")
@server_options
@run
async def remove(name: str, server: Connection) -> None:
    """Stop and remove an agent. Its history stays in the log."""
    async with server.client() as client:
        await client.remove(name)
    out.print(f"✓ removed {name}")
