"""`caxton send`, `caxton trace` and `caxton conversations`."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import click
from rich.table import Table
from rich.text import Text

from caxton.domain.acl import PERFORMATIVES
from caxton.domain.errors import quoted
from caxton.domain.events import Recorded
from caxton.domain.ids import conversation_stream
from caxton.replay.nodes import is_shard_event
from caxton.replay.recording import participants
from caxton.replay.trace import (
    TraceLine,
    TraceView,
    claim_streams,
    format_line,
    journal_text,
    trace_lines,
)
from caxton.shell.cli.common import (
    DURATION,
    Failure,
    flag_text,
    out,
    parse_json,
    run,
    server_options,
)
from caxton.shell.client import CaxtonClient, Connection


@click.command()
@click.option(
    "--to",
    "receivers",
    multiple=True,
    required=True,
    help="Agent name or capability:NAME (repeatable).",
)
@click.option(
    "--performative", default="request", show_default=True, help="One of the 22 FIPA performatives."
)
@click.option(
    "--content",
    default="",
    metavar="TEXT|@FILE|-",
    help="Message content (JSON unless --language says otherwise); @FILE reads a file, "
    "- reads stdin, @@ starts text with a literal @.",
)
@click.option("--conversation-id", default="", help="Continue a conversation (default: a new one).")
@click.option("--protocol", default="", help="fipa-request, fipa-query or fipa-contract-net.")
@click.option("--language", default="json", show_default=True)
@click.option("--ontology", default="")
@click.option(
    "--reply-by", type=DURATION, default=None, help="Deadline for replies, from now (e.g. 2s)."
)
@click.option(
    "--wait", type=DURATION, default=None, help="Wait this long for the reply and print it."
)
@click.option(
    "--sender",
    default="",
    metavar="client:NAME",
    help="Send as this client, to keep one identity across the sends of a conversation "
    "(a cfp, then its accept-proposal). Default: a new client:ID for each send.",
)
@server_options
@run
async def send(
    receivers: tuple[str, ...],
    performative: str,
    content: str,
    conversation_id: str,
    protocol: str,
    language: str,
    ontology: str,
    reply_by: int | None,
    wait: int | None,
    sender: str,
    server: Connection,
) -> None:
    """Send an ACL message; with --wait, print the reply."""
    if performative not in PERFORMATIVES:
        raise Failure(
            f"unknown performative {quoted(performative)}; "
            f"expected one of {', '.join(sorted(PERFORMATIVES))}",
            code=2,
        )
    content = flag_text(content, "--content")
    if language == "json" and content:
        parse_json(content, "--content", hint="; quote it like '{\"a\": 1}', or pass @FILE")
    async with server.client() as client:
        result = await client.send(
            list(receivers),
            performative,
            content,
            conversation_id=conversation_id,
            protocol=protocol,
            language=language,
            ontology=ontology,
            reply_by=int(time.time() * 1000) + reply_by if reply_by is not None else None,
            wait_ms=wait or 0,
            sender=sender,
        )
    out.print(f"message {result.message_id}", markup=False)
    out.print(f"conversation {result.conversation_id}", markup=False)
    for receiver, reason in result.dead_letters:
        out.print(f"✗ {receiver}: {reason}", markup=False)
    if wait:
        if result.reply is None:
            raise Failure(
                f"no reply within {wait} ms "
                f"(see: caxton trace --conversation-id {result.conversation_id})"
            )
        reply = result.reply
        out.print(f"reply {reply.performative} from {reply.sender}:", markup=False)
        # not through rich: it would take "[/x]" for markup and ":smile:" for an emoji code
        click.echo(_pretty(reply.content))
        if reply.performative in ("failure", "refuse", "not-understood"):
            raise SystemExit(1)


def _pretty(content: str) -> str:
    """JSON content indented; anything else, or JSON too deep to indent, as it is."""
    try:
        text = json.dumps(json.loads(content), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        return content
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # an escaped lone surrogate ("\ud800") stays escaped
        return json.dumps(json.loads(content), indent=2)
    return text


@click.command()
@click.option("--conversation-id", required=True, help="The conversation to trace.")
@click.option("--last", type=DURATION, default=None, help="Only steps in this window (e.g. 5m).")
@click.option("--follow", is_flag=True, help="Keep printing new steps as they are committed.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    help="Under each handling, the host's answers (now, random, tool results) and the "
    "agent's log lines, in order.",
)
@server_options
@run
async def trace(
    conversation_id: str,
    last: int | None,
    follow: bool,
    as_json: bool,
    verbose: bool,
    server: Connection,
) -> None:
    """One line per step of a conversation, in log order, failures included; in a
    cluster, the node of each step and the takeovers of its agents' shards."""
    since = int(time.time() * 1000) - last if last is not None else 0
    printed = 0

    def show(lines: list[TraceLine]) -> None:
        nonlocal printed
        for line in lines:
            if line.at >= since:
                printed += 1
                text = json.dumps(line.to_json()) if as_json else format_line(line)
                out.print(text, markup=False)
                if line.journal and not as_json:
                    for entry in journal_text(line):
                        out.print(entry, markup=False)

    async with server.client() as client:
        history = await _story(client, conversation_id)
        if not follow:
            show(trace_lines(history, verbose=verbose))
        else:
            view = TraceView(participants(history), verbose=verbose)
            for recorded in history:
                show(view.lines(recorded))
            show(view.flush())
            after = max((r.position for r in history), default=0)
            clustered = any(is_shard_event(r) or r.node for r in history)
            own = conversation_stream(conversation_id)
            # a cluster's takeovers are in shard streams: follow the whole log for them
            async for recorded in client.events(
                from_position=after + 1,
                conversation_id="" if clustered else conversation_id,
                follow=True,
            ):
                if recorded.stream == own or is_shard_event(recorded):
                    show(view.lines(recorded))
    if not printed and not follow:
        raise Failure(
            f"no steps recorded for conversation {conversation_id!r}"
            + (" in that window" if last else "")
        )


async def trace_text(client: CaxtonClient, conversation_id: str) -> list[str]:
    """`caxton trace --conversation-id ID` as lines of text: what `caxton top` shows when
    Enter is pressed on a conversation."""
    return [format_line(line) for line in trace_lines(await _story(client, conversation_id))]


async def _story(client: CaxtonClient, conversation_id: str) -> list[Recorded]:
    """The conversation's events and, in a cluster's log, its participants' shard claims
    (none outside a cluster), in log order."""
    own = [r async for r in client.events(conversation_id=conversation_id)]
    streams = claim_streams(own)
    if not streams:
        return own
    claims = [r async for r in client.events(streams=streams)]
    return sorted([*own, *claims], key=lambda r: r.position)


@click.command()
@click.option(
    "--last",
    type=DURATION,
    default=None,
    help="Only conversations active in this window (e.g. 1h).",
)
@click.option(
    "--limit",
    type=click.IntRange(1, 100_000),
    default=1_000,
    show_default=True,
    help="At most this many: the most recently active.",
)
@server_options
@run
async def conversations(last: int | None, limit: int, server: Connection) -> None:
    """List conversations: participants, protocol, state and message count."""
    since = int(time.time() * 1000) - last if last is not None else 0
    async with server.client() as client:
        found = await client.conversations(since_ms=since, limit=limit)
    if not found:
        out.print("no conversations")
        return
    table = Table(box=None, header_style="bold")
    for column in (
        "CONVERSATION",
        "PROTOCOL",
        "STATE",
        "MESSAGES",
        "PARTICIPANTS",
        "LAST ACTIVITY",
    ):
        # ids are never cut short: they are what `caxton trace` takes
        table.add_column(column, no_wrap=column == "CONVERSATION", overflow="fold")
    for c in found:
        state = c.state if not c.violations else f"{c.state}: {c.violations[0]}"
        table.add_row(
            c.id,
            c.protocol or "-",
            Text(state),  # not markup: a violation may quote what was sent
            str(c.message_count),
            ",".join(c.participants),
            datetime.fromtimestamp(c.last_at_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S"),
        )
    out.print(table)
    if found.truncated:
        out.print(f"(the {len(found):,} most recently active; narrow with --last or raise --limit)")
