"""Commands that open a terminal app (registered on the `caxton` group by `caxton.cli`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from caxton.domain.events import Recorded
from caxton.replay.cursor import Cursor
from caxton.replay.recording import Recording
from caxton.replay.reexec import NotInConversation, render
from caxton.replay.views import story
from caxton.shell.archive import Source
from caxton.shell.cli.common import Failure, out, run
from caxton.shell.cli.events import load, open_for, source_options
from caxton.shell.client import Connection
from caxton.shell.reexec import ReexecFailed, reexecute


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
@click.option("--conversation", "conversation_id", required=True, help="The conversation.")
@click.option("--print", "as_text", is_flag=True, help="Print the story as text; no TUI.")
@click.option(
    "--with",
    "builds",
    multiple=True,
    callback=_with_pairs,
    metavar="AGENT=FILE",
    help="Re-execute the conversation with a new build of AGENT (repeatable).",
)
@source_options
@run
async def replay(
    conversation_id: str,
    as_text: bool,
    builds: dict[str, Path],
    log_path: Path | None,
    server: Connection,
) -> None:
    """Step through a recorded conversation (TUI), print it, or re-execute it."""
    source = await open_for(server, log_path)
    try:
        found, story_events = await load(source, conversation_id)
        if builds:
            await reexecute_command(found, story_events, builds)
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


async def reexecute_command(
    recording: Recording, history: Sequence[Recorded], builds: dict[str, Path]
) -> None:
    """`caxton replay --with AGENT=FILE …`: prints the reports; exit 1 on any divergence."""
    diverged = False
    for agent, path in builds.items():
        try:
            wasm = path.read_bytes()
        except OSError as exc:
            raise Failure(f"{path}: cannot read ({exc.strerror})") from None
        try:
            report = await reexecute(recording, history, agent, wasm, str(path))
        except (NotInConversation, ReexecFailed) as exc:
            raise Failure(str(exc)) from None
        out.print(render(report), markup=False, highlight=False)
        diverged = diverged or not report.identical
    if diverged:
        raise Failure("the new build diverges from the recorded conversation", code=1)
