"""`caxton cluster members|status`: the nodes of a cluster, their shards and their agents;
`caxton cluster check`: whether an exported log kept the cluster's promises."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from caxton.domain.cluster_audit import Audit, Settled, audit, ranges
from caxton.domain.events import Recorded
from caxton.replay.jsonl import NotAnExport, read_jsonl
from caxton.shell.cli.common import Failure, out, run, server_options
from caxton.shell.cli.events import parse_since
from caxton.shell.client import ClusterView, Connection, LogInfo, MemberInfo

STATES = ("alive", "suspect", "dead", "left")
AGENTS_SHOWN = 5
"""Agents named in a node's row of `members`, before `+N more` (all of them in --json)."""


@click.group()
def cluster() -> None:
    """The nodes of a cluster: their state, and the shards and agents each holds."""


@cluster.command("members")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per node.")
@server_options
@run
async def members(as_json: bool, server: Connection) -> None:
    """One line per node: address, state, incarnation, shards held and agents."""
    async with server.client() as client:
        view = await client.members()
    if as_json:
        for member in view.members:  # one object per line, for `jq` and scripts
            click.echo(json.dumps(member_dict(member, view), ensure_ascii=False))
        return
    out.print(members_table(view))
    for line in members_notes(view):
        out.print(line, markup=False)


@cluster.command("status")
@server_options
@run
async def status(server: Connection) -> None:
    """Whether the server is a node of a cluster, its members by state, the shards this
    node holds and those no node holds, and the log's position."""
    async with server.client() as client:
        view = await client.members()
        log = await client.log_info()
    for line in status_lines(view, log):
        out.print(line, markup=False)


@cluster.command("check")
@click.argument("export", type=click.Path(path_type=Path))
@click.option(
    "--within",
    "within_s",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds a shard may go without a holder.",
)
@click.option(
    "--after",
    default="",
    help="When a fault ended (a log position, or an ISO 8601 time): every shard must be "
    "held again --within seconds later.",
)
@click.option(
    "--gone",
    default="",
    help="Nodes the fault took down (comma-separated): the shards they held count as held "
    "by no one from --after on.",
)
@click.option(
    "--acknowledged",
    type=click.Path(path_type=Path),
    default=None,
    help="A file of message ids clients were told were accepted, one a line: each must "
    "be in the log.",
)
def check(export: Path, within_s: float, after: str, gone: str, acknowledged: Path | None) -> None:
    """Check a log exported as JSON lines (`caxton events export --format jsonl`): lease
    epochs rise, no deposed node commits, every message is accepted once and handled
    once and in order, and no shard stays without a holder. One finding a line, exit 1
    if any."""
    history = read_export(export)
    acked = _lines(acknowledged) if acknowledged is not None else []
    settled = None
    if after:
        nodes = frozenset(n.strip() for n in gone.split(",") if n.strip())
        settled = Settled(after_ms=fault_end(after, history), gone=nodes)
    elif gone:
        raise Failure("--gone names the nodes a fault took down: give --after too")
    found = audit(history, within_ms=round(within_s * 1000), settled=settled, acknowledged=acked)
    for finding in found.findings:
        click.echo(f"✗ {finding}")
    if found.findings:
        raise Failure(f"{export}: {_count(len(found.findings), 'finding')}", code=1)
    out.print(f"✓ {export}: {summary(found, within_s)}", markup=False, highlight=False)


def read_export(path: Path) -> list[Recorded]:
    try:
        with path.open("rb") as lines:
            return list(read_jsonl(lines))
    except NotAnExport as exc:
        raise Failure(
            f"{path}: {exc}; export a log with 'caxton events export --format jsonl -o FILE'"
        ) from None
    except OSError as exc:
        raise Failure(f"{path}: cannot read ({exc.strerror})") from None


def fault_end(after: str, history: Sequence[Recorded]) -> int:
    """--after as milliseconds since the epoch: a position's time, or a time."""
    if after.isdigit():
        position = int(after)
        found = next((r for r in history if r.position >= position), None)
        if found is None:
            raise Failure(f"--after {position}: the export ends before that position")
        return found.at
    if not after[:4].isdigit():  # parse_since also takes durations, which mean nothing here
        raise Failure(f"--after {after!r} is neither a log position nor an ISO 8601 time")
    return parse_since(after)


def summary(found: Audit, within_s: float) -> str:
    """What was checked, in one line."""
    text = (
        f"{_count(found.events, 'event')}, {_count(found.accepted, 'message')} accepted "
        f"once, {_count(found.handled, 'handling')} each once and in order"
    )
    if not found.clustered:
        return text + "; not a cluster's log (no shard claims)"
    fencing = (
        "no deposed node committed"
        if found.stamped
        else "fencing not checked (no event names its node: a log written before nodes "
        "stamped their events)"
    )
    return (
        f"{text}; {_count(found.claims, 'claim')} with rising epochs, {fencing}, no shard "
        f"without a holder beyond {within_s:g} s"
    )


def _lines(path: Path) -> list[str]:
    try:
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise Failure(f"{path}: cannot read ({exc})") from None


def member_dict(member: MemberInfo, view: ClusterView) -> dict[str, Any]:
    return {
        "node": member.node,
        "address": member.address,
        "state": member.state,
        "incarnation": member.incarnation,
        "version": member.version,
        "since_ms": member.since_ms,
        "shards": list(member.shards),
        "agents": list(member.agents),
        "answering": member.node == view.node,
        "clustered": view.clustered,
    }


def members_table(view: ClusterView) -> Table:
    """NODE (the one answering starred), ADDRESS, STATE, INCARNATION, SHARDS, AGENTS."""
    table = Table(box=None, header_style="bold")
    for column in ("NODE", "ADDRESS", "STATE", "INCARNATION", "SHARDS", "AGENTS"):
        # node ids are never cut short: they are what other commands name
        table.add_column(column, no_wrap=column == "NODE", overflow="fold")
    for member in view.members:
        star = "*" if member.node == view.node else ""
        table.add_row(
            Text(member.node + star),  # Text, not markup: ids and addresses are the user's
            Text(member.address or "-"),
            member.state,
            str(member.incarnation),
            str(len(member.shards)) if view.clustered else "-",
            agents_cell(member.agents),
        )
    return table


def members_notes(view: ClusterView) -> list[str]:
    """What the table does not say: which node answered, and what runs nowhere."""
    if not view.clustered:
        return [f"* {view.node} answered; not clustered: it runs every agent"]
    lines = [f"* {view.node} answered; {view.shard_count} shards in the cluster"]
    lines.extend(_unowned(view))
    return lines


def status_lines(view: ClusterView, log: LogInfo) -> list[str]:
    agents = sum(len(m.agents) for m in view.members) + len(view.unowned_agents)
    here = view.member
    if not view.clustered:
        lines = [f"not clustered: {view.node} runs every agent ({_count(agents, 'agent')})"]
    else:
        lines = [
            f"cluster of {_count(len(view.members), 'node')} ({by_state(view.members)}); "
            f"this is {view.node}",
            f"{view.node} holds {len(here.shards) if here else 0} of {view.shard_count} shards "
            f"and runs {len(here.agents) if here else 0} of {_count(agents, 'agent')}",
            *(_unowned(view) or ["every shard is held"]),
        ]
    lines.append(f"log: {log.store}, position {log.last_position:,}")
    return lines


def by_state(members: Sequence[MemberInfo]) -> str:
    """`2 alive, 1 suspect`: the members counted by state, in STATES' order."""
    counts = {state: sum(1 for m in members if m.state == state) for state in STATES}
    return ", ".join(f"{n} {state}" for state, n in counts.items() if n) or "none"


def agents_cell(agents: Sequence[str]) -> str:
    """`a,b,c` up to AGENTS_SHOWN names, then `+N more`; `-` for none."""
    if not agents:
        return "-"
    shown = ",".join(agents[:AGENTS_SHOWN])
    rest = len(agents) - AGENTS_SHOWN
    return f"{shown} +{rest} more" if rest > 0 else shown


def _unowned(view: ClusterView) -> list[str]:
    if not view.unowned_shards:
        return []
    lines = [
        f"{_count(len(view.unowned_shards), 'shard')} held by no node: "
        f"{ranges(view.unowned_shards)}"
    ]
    if view.unowned_agents:
        lines.append(
            f"  their agents run nowhere until a node claims them: {', '.join(view.unowned_agents)}"
        )
    return lines


def _count(n: int, thing: str) -> str:
    return f"{n:,} {thing}{'' if n == 1 else 's'}"
