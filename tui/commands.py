"""Commands that open a terminal app (registered on the `caxton` group by `caxton.cli`)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import click

from caxton.domain.events import Recorded
from caxton.replay.cursor import Cursor
from caxton.replay.fork import Fork
from caxton.replay.fork import render as render_fork
from caxton.replay.recording import Recording
from caxton.replay.reexec import NotInConversation, Script, render, script
from caxton.replay.views import story
from caxton.shell.archive import Source, SourceError
from caxton.shell.cli.common import Failure, err, out, run
from caxton.shell.cli.events import load, open_for, source_options
from caxton.shell.cli.fork import edits_of, fork_command
from caxton.shell.cli.regress import bad_input, regress_command
from caxton.shell.client import Connection
from caxton.shell.reexec import ReexecFailed, rerun_script


def _with_pairs(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, Path]:
    pairs: dict[str, Path] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise click.BadParameter(f"{value!r} is not AGENT=FILE (e.g. bidder-b=bidder.wasm)")
        pairs[name] = Path(path)
    return pairs


@click.command()
@click.option("--conversation", "conversation_id", default="", help="The conversation.")
@click.option("--print", "as_text", is_flag=True, help="Print the story as text; no TUI.")
@click.option(
    "--with",
    "builds",
    multiple=True,
    callback=_with_pairs,
    metavar="AGENT=FILE",
    help="Re-execute the conversation with a new build of AGENT (repeatable).",
)
@click.option(
    "--agent",
    default="",
    help="Re-execute every conversation AGENT took part in (with --with AGENT=FILE).",
)
@click.option("--since", default="", help="With --agent: only since a time (1d ago, ISO 8601).")
@click.option(
    "--fork-at",
    type=int,
    default=None,
    metavar="STEP",
    help="Run the conversation again from the message at STEP, edited by --edit.",
)
@click.option(
    "--edit",
    "edit_values",
    multiple=True,
    metavar="FIELD=VALUE",
    help="With --fork-at: change one field of that message (content, performative, …).",
)
@click.option("--no-tui", is_flag=True, help="With --fork-at: print the fork as text.")
@source_options
@run
async def replay(
    conversation_id: str,
    as_text: bool,
    builds: dict[str, Path],
    agent: str,
    since: str,
    fork_at: int | None,
    edit_values: tuple[str, ...],
    no_tui: bool,
    log_path: Path | None,
    server: Connection,
) -> None:
    """Step through a recorded conversation (TUI), print it, re-execute it (--with), or
    fork it from one edited message (--fork-at STEP --edit FIELD=VALUE).

    With --agent A --with A=FILE: re-execute every conversation A took part in. Exit
    status 0 when all are identical, 1 when any diverged or trapped, 3 when the others
    asked the host for something the record does not hold, 2 for bad input."""
    if agent:
        if conversation_id:
            raise bad_input("pass --conversation ID or --agent NAME, not both")
        try:  # a log or server that cannot be read is not a regression: exit 2, not 1
            source = await open_for(server, log_path)
        except Failure as exc:
            raise bad_input(str(exc)) from None
        try:
            await regress_command(source, agent, builds, since)
        finally:
            await source.close()
        return
    if since:
        raise bad_input("--since goes with --agent NAME")
    if not conversation_id:
        raise bad_input("pass --conversation ID (or --agent NAME with --with NAME=FILE)")
    if edit_values and fork_at is None:
        raise bad_input("--edit goes with --fork-at STEP")
    if fork_at is not None and (not edit_values or builds):
        raise bad_input("--fork-at STEP takes one or more --edit FIELD=VALUE, and no --with")
    edits = edits_of(edit_values)
    source = await open_for(server, log_path)
    try:
        found, story_events = await load(source, conversation_id)
        if fork_at is not None:
            result = await fork_command(source, found, story_events, fork_at, edits)
            if no_tui or as_text or not sys.stdout.isatty():
                out.print(render_fork(result, edits), markup=False, highlight=False)
            else:
                await _open_fork(result, edits)
            return
        if builds:
            await reexecute_command(found, story_events, builds, source)
            return
        if as_text:
            out.print(story(Cursor.open(found)), markup=False, highlight=False)
            return
        await _open_app(source, found)
    finally:
        await source.close()


async def _open_app(source: Source, found: Recording) -> None:
    from tui.replay import ReplayApp  # Textual is imported only when a TUI opens

    await ReplayApp(found, source=source).run_async()


async def _with_memories(source: Source, recording: Recording, plan: Script) -> Script:
    """The script with, for each replica of an agent that keeps memory, its memory just
    before its first input here; says so on stderr."""
    firsts: dict[int, int] = {}
    for item in plan.inputs:
        firsts.setdefault(item.replica, recording.events[item.step - 1].position)
    memories: list[tuple[int, str]] = []
    for replica, position in sorted(firsts.items()):
        try:
            memory = await source.memory(plan.agent, replica, position - 1)
        except SourceError as exc:  # as before memory existed: a fresh init, said so
            err.print(f"⚠ {plan.agent}#{replica} starts fresh: {exc}", markup=False)
            continue
        if memory is not None:
            memories.append((replica, memory.state))
            err.print(
                f"{plan.agent}#{replica} starts from its memory as of position "
                f"{memory.position:,} ({memory.handled:,} handlings), as recorded",
                markup=False,
            )
    return replace(plan, memories=tuple(memories)) if memories else plan


async def _open_fork(result: Fork, edits: list[tuple[str, str]]) -> None:
    from tui.fork import ForkApp  # Textual is imported only when a TUI opens

    await ForkApp(result, edits).run_async()


async def reexecute_command(
    recording: Recording,
    history: Sequence[Recorded],
    builds: dict[str, Path],
    source: Source | None = None,
) -> None:
    """`caxton replay --with AGENT=FILE …`: prints the reports; exit 1 on any divergence.
    An agent with memory starts from its memory as recorded just before its first input
    in this conversation (rebuilt from the source's log), not from a fresh `init`."""
    diverged = False
    for agent, path in builds.items():
        try:
            wasm = path.read_bytes()
        except OSError as exc:
            raise Failure(f"{path}: cannot read ({exc.strerror})") from None
        try:
            plan = script(recording, agent, history)
            if source is not None:
                plan = await _with_memories(source, recording, plan)
            report = await rerun_script(recording, plan, wasm, str(path))
        except (NotInConversation, ReexecFailed) as exc:
            raise Failure(str(exc)) from None
        out.print(render(report), markup=False, highlight=False)
        diverged = diverged or not report.identical
    if diverged:
        raise Failure("the new build diverges from the recorded conversation", code=1)
