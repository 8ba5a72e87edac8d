"""`caxton tools list` and `caxton tools call`: the server's MCP tool servers, from the shell."""

from __future__ import annotations

import json

import click

from caxton.domain.units import format_duration, format_size
from caxton.shell.cli.common import Failure, flag_text, out, parse_json, run, server_options
from caxton.shell.client import Connection, ToolServerInfo


@click.group()
def tools() -> None:
    """The MCP tool servers agents may call ([tools.NAME] in caxton.toml)."""


@tools.command("list")
@click.option("--no-start", is_flag=True, help="Do not start idle servers to ask for their tools.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per server.")
@server_options
@run
async def list_tools(no_start: bool, as_json: bool, server: Connection) -> None:
    """Each server, its state (running, failed, breaker open) and its tools with input schemas."""
    async with server.client() as client:
        servers = await client.tool_servers(refresh=not no_start)
    if as_json:
        for info in servers:  # one object per line, for `jq` and scripts
            click.echo(json.dumps(_as_dict(info), ensure_ascii=False))
        return
    if not servers:
        out.print("no tool servers are configured (add [tools.NAME] tables to caxton.toml)")
        return
    for info in servers:
        out.print(f"{info.name}  {_state(info)}  {info.transport}: {info.where}", markup=False)
        out.print(
            f"  timeout {format_duration(info.timeout_ms)}, at most {info.max_concurrency} "
            f"at once, breaker after {info.breaker_threshold} failures for "
            f"{format_duration(info.breaker_reset_ms)}, results up to "
            f"{format_size(info.max_result_bytes)}",
            markup=False,
        )
        if info.detail:
            out.print(f"  ✗ {info.detail}", markup=False)
        for breaker in info.breakers:
            whose = f" (agent {breaker.agent})" if breaker.agent else ""
            last = f": {breaker.last_reason}" if breaker.last_reason else ""
            out.print(
                f"  breaker{whose} {breaker.state}, {breaker.failures} failures{last}",
                markup=False,
            )
        for tool in info.tools:
            out.print(f"  • {info.name}.{tool.name}({_arguments(tool.input_schema)})", markup=False)
            if tool.description:
                out.print(f"      {tool.description.strip().splitlines()[0]}", markup=False)


@tools.command("call")
@click.argument("server_name", metavar="SERVER")
@click.argument("tool")
@click.option(
    "--args",
    "arguments",
    default="{}",
    show_default=True,
    help="A JSON object; @FILE reads a file, - reads stdin.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the whole result as JSON.")
@server_options
@run
async def call(
    server_name: str, tool: str, arguments: str, as_json: bool, server: Connection
) -> None:
    """Call one tool, for checking: `caxton tools call db read_query --args '{"query": "…"}'`."""
    arguments = flag_text(arguments, "--args")
    parsed = parse_json(arguments or "{}", "--args")
    if not isinstance(parsed, dict):
        raise Failure('--args: must be a JSON object, like \'{"query": "SELECT 1"}\'', code=2)
    async with server.client() as client:
        result = await client.call_tool(server_name, tool, arguments or "{}")
    took = format_duration(max(1, result.duration_us // 1000))
    if not result.ok:
        raise Failure(f"{server_name}.{tool} failed after {took}: {result.error}")
    if as_json:  # as the server gave it: pretty-printing would recurse as deep as it nests
        out.print(result.result_json, markup=False, highlight=False)
        return
    data = parse_json(result.result_json, f"{server_name}.{tool}'s result")
    if not isinstance(data, dict):
        raise Failure(f"{server_name}.{tool}'s result is not an MCP CallToolResult object")
    texts = [c.get("text", "") for c in data.get("content", []) if c.get("type") == "text"]
    body = "\n".join(texts) if texts else json.dumps(data.get("structuredContent"), indent=2)
    out.print(body, markup=False)
    cut = " (truncated)" if result.truncated else ""
    out.print(f"✓ {server_name}.{tool} answered in {took}{cut}", markup=False)


def _state(info: ToolServerInfo) -> str:
    opened = [b for b in info.breakers if b.state != "closed"]
    if any(not b.agent for b in opened):
        return "breaker open" if opened[0].state == "open" else "breaker half-open"
    return info.state


def _arguments(schema: dict[str, object]) -> str:
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return ""
    required = set(schema.get("required") or [])  # type: ignore[call-overload]
    parts = []
    for name, spec in properties.items():
        kind = spec.get("type", "any") if isinstance(spec, dict) else "any"
        parts.append(f"{name}: {kind}" + ("" if name in required else "?"))
    return ", ".join(parts)


def _as_dict(info: ToolServerInfo) -> dict[str, object]:
    return {
        "name": info.name,
        "transport": info.transport,
        "where": info.where,
        "state": _state(info),
        "detail": info.detail,
        "breakers": [
            {"agent": b.agent, "state": b.state, "failures": b.failures, "last": b.last_reason}
            for b in info.breakers
        ],
        "tools": [
            {"name": t.name, "description": t.description, "input_schema": t.input_schema}
            for t in info.tools
        ],
    }
