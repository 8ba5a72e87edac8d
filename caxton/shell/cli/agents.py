"""`caxton agent ...`: write, build, deploy and manage agents."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import click
from click.core import ParameterSource
from rich.table import Table
from rich.text import Text

from caxton.domain import digests
from caxton.domain.agent_config import AgentConfig
from caxton.domain.agents import STARTED
from caxton.domain.units import format_duration, format_size
from caxton.shell.agent_config import names_a_config_file, read_agent_config
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
from caxton.shell.project import ProjectError

TEMPLATES = ("request-handler", "contract-net-manager", "contract-net-bidder")
T = TypeVar("T")


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


@agent.command("create")
@click.argument("name")
@click.option(
    "--template", type=click.Choice(TEMPLATES), default="request-handler", show_default=True
)
@click.option(
    "--capability",
    "capabilities",
    multiple=True,
    help="A capability it offers (repeatable), recorded where its deploy reads it.",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("."),
    help="A project (holding caxton.toml) to add it to, or where to write NAME/ (default: here).",
)
def create(name: str, template: str, capabilities: tuple[str, ...], directory: Path) -> None:
    """Create an agent from a template with its settings: in a project, agents/NAME.py and
    an [agents.NAME] table in caxton.toml; elsewhere NAME/ with the source and
    agent-config.yaml."""
    from caxton.shell.scaffold import create_agent

    try:
        created = create_agent(
            directory, name, template=template, capabilities=tuple(dict.fromkeys(capabilities))
        )
    except ProjectError as exc:
        raise Failure(str(exc)) from None
    offers = f"; capabilities {', '.join(capabilities)}" if capabilities else ""
    out.print(f"✓ created {name} (template {template}{offers})", markup=False)
    out.print(f"  {created.source}  the agent: edit it", markup=False)
    if created.in_project:
        out.print(f"  {created.settings}  [agents.{name}] added", markup=False)
        where = "" if directory == Path(".") else f" --dir {directory}"
        out.print(f"next: caxton deploy{where}  (builds and deploys it)", markup=False)
        return
    component = f"{name}.wasm"
    out.print(f"  {created.settings}  its settings: edit them", markup=False)
    out.print(f"next: caxton agent build {created.source} -o {component}", markup=False)
    out.print(f"      caxton agent deploy {component} --config {created.settings}", markup=False)


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
@click.option(
    "--name",
    default=None,
    help="Agent name (letters, digits, '_', '-', '.'); default: the config file's name.",
)
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
    metavar="FILE.yaml|JSON|@FILE|-",
    help="An agent configuration file (agent-config.yaml: name, capabilities, resources, "
    "config; flags win over it), or the config passed to init(): JSON, @FILE (a file's "
    "JSON) or - (stdin).",
)
@click.option("--replace", is_flag=True, help="Redeploy over an agent of the same name.")
@click.option(
    "--tools",
    "tool_grants",
    default="",
    help="MCP tools it may call: SERVER.TOOL or SERVER.*, comma-separated (db.read_query,time.*).",
)
@click.option(
    "--keep-memory",
    is_flag=True,
    help="With --replace: the new build re-executes the old one's memory (its inputs) "
    "instead of starting fresh; divergences from the record are reported.",
)
@click.option(
    "--snapshot-every",
    type=click.IntRange(0, 1_000_000),
    default=None,
    help="Handlings between two recorded snapshots of an agent with memory "
    "[default: 100; 0: never].",
)
@server_options
@run
async def deploy(
    component: Path,
    name: str | None,
    capabilities: tuple[str, ...],
    replicas: int,
    memory: int,
    timeout: int,
    mailbox: int,
    config: str,
    replace: bool,
    tool_grants: str,
    keep_memory: bool,
    snapshot_every: int | None,
    server: Connection,
) -> None:
    """Deploy a component: `caxton agent deploy agent.wasm --config agent-config.yaml
    --replicas 3`, or `caxton agent deploy agent.wasm --name N --replicas 3`."""
    if keep_memory and not replace:
        raise Failure("--keep-memory redeploys over a running agent: add --replace", code=2)
    from_file = _config_file(config)
    config_text = from_file.init_config if names_a_config_file(config) else _config_text(config)
    given = _given_flags()  # a flag on the command line wins over the file
    name = name or from_file.name
    if not name:
        raise Failure(
            f"{component}: name the agent: --name N, or name: in an agent configuration "
            "file (--config agent-config.yaml)",
            code=2,
        )
    capabilities = _unless_given(given, "capabilities", capabilities, from_file.capabilities)
    replicas = _unless_given(given, "replicas", replicas, from_file.replicas)
    memory = _unless_given(given, "memory", memory, from_file.memory_bytes)
    timeout = _unless_given(given, "timeout", timeout, from_file.timeout_ms)
    mailbox = _unless_given(given, "mailbox", mailbox, from_file.mailbox)
    file_tools = None if from_file.tools is None else ",".join(from_file.tools)
    tool_grants = _unless_given(given, "tool_grants", tool_grants, file_tools)
    try:
        wasm = component.read_bytes()
    except OSError as exc:
        raise Failure(f"{component}: cannot read ({exc.strerror})") from None
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
                keep_memory=keep_memory,
                snapshot_every=snapshot_every,
            )
            stage.done(f"the server answered in {stage.elapsed():.1f} s")  # not yet: started
    failing = not_started(info)
    version = f" {from_file.version}" if from_file.version else ""
    out.print(
        f"{'' if failing else '✓ '}deployed {info.name}{version} "
        f"({info.component_digest[: len(digests.PREFIX) + 12]}, "
        f"{format_size(info.component_size)})"
    )
    out.print(f"  {info.status_line}", markup=False)
    for line in memory_lines(info):
        out.print(f"  {line}", markup=False)
    if failing:
        raise Failure(
            f"{info.name} did not start: {failing} "
            f"(fix it, then deploy again with --replace; see: caxton agent status {info.name})"
        )


def memory_lines(info: AgentInfo) -> list[str]:
    """What each instance with memory did with it at its start: rebuilt from how many
    handlings, how the new build's re-execution differed from the record."""
    lines: list[str] = []
    for i in info.instances:
        if not i.memory:
            continue
        if i.memory_rebuilt or i.memory_restored:
            restored = f"snapshot of {i.memory_restored:,} + " if i.memory_restored else ""
            lines.append(
                f"memory of replica {i.replica}: rebuilt from "
                f"{restored}{i.memory_rebuilt:,} re-executed handlings"
            )
        if i.memory_diverged:
            lines.append(f"⚠ replica {i.replica}'s new build diverges: {i.memory_diverged}")
        if i.quarantined:
            lines.append(f"⚠ replica {i.replica}: {i.quarantined} message(s) quarantined")
    return lines


def not_started(info: AgentInfo) -> str:
    """Why instances failed to start (`replica 0 failed: init-error: bad config`), or ""
    when every instance runs or is still starting with no error so far."""
    return "; ".join(
        f"replica {i.replica} {i.lifecycle}"
        + (f": {excerpt(i.last_error)}" if i.last_error else "")
        for i in info.instances
        if i.lifecycle not in STARTED
    )


def _config_file(config: str) -> AgentConfig:
    """The agent configuration file `--config` names, or an empty one for JSON."""
    if not names_a_config_file(config):
        return AgentConfig()
    try:
        return read_agent_config(Path(config))
    except ProjectError as exc:
        raise Failure(f"--config {exc}", code=2) from None


def _given_flags() -> set[str]:
    """The parameters the command line set (they win over an agent configuration file)."""
    context = click.get_current_context()
    return {
        name
        for name in context.params
        if context.get_parameter_source(name) is not ParameterSource.DEFAULT
    }


def _unless_given(given: set[str], flag: str, value: T, from_file: T | None) -> T:
    return value if flag in given or from_file is None else from_file


def _config_text(config: str) -> str:
    text = flag_text(config, "--config")
    if text:
        yaml = config.startswith("@") and names_a_config_file(config[1:])
        hint = f"; an agent configuration file is named without the @: {config[1:]}"
        parse_json(text, "--config", hint if yaml else "")
    return text


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
